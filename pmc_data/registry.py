"""The step and reader families, and the registry that recipes name them through.

A recipe step is one of three kinds, each a small class with one job:

- a :class:`Reader` turns one input unit (a file, a byte range of a file, an archive member)
  into rows of the recipe's schema, and malformed input into :data:`REJECT_SCHEMA` rows;
- a :class:`DocumentStep` is a pure function of one batch (a ``pyarrow.Table``): it returns the
  rows it keeps and the rows it drops, each with a short machine-readable reason;
- a :class:`GlobalStep` needs the whole corpus (dedup): it computes a compact signature per
  row inside the worker pool, then decides on the signature table alone which rows to drop.

Steps know nothing of the runner: counting, timing, rejects and resume live in
:mod:`pmc_data.runner`. Registering a step makes it available to recipes by name::

    @register_step
    class Shout(TextTransform):
        '''Upper-cases the text (an example, not a built-in).'''
        name = "shout"

        def transform(self, text: str) -> str:
            return text.upper()
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from pmc_data.schema import TEXT_COLUMN

#: One row per dropped record or unreadable input, in every step's rejects.
REJECT_SCHEMA = pa.schema(
    [
        ("step", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("id", pa.string()),
        ("input_file", pa.string()),
        ("input_member", pa.string()),
        ("record", pa.string()),
    ]
)

#: Reader reasons that mean "this input could not be read": they count towards a recipe's
#: ``max_error_rate``. Every other reader reason is a selection (a license policy, no PMC
#: id, a retraction...), counted as dropped like any step's.
UNREADABLE = frozenset({
    "invalid_json", "invalid_utf8", "not_an_object", "missing_text", "text_not_a_string",
    "missing_id", "truncated_input", "corrupt_input", "invalid_xml", "unsafe_xml",
    "not_an_article", "unsafe_member", "member_too_large", "corrupt_archive",
    "truncated_archive", "encrypted_pdf", "empty_pdf", "too_many_pages", "corrupt_page",
    "page_timeout",
})  # fmt: skip

#: Columns a global step's ``decide`` returns: which row (``_order``) to drop, and why.
DECISION_SCHEMA = {"_order": pl.Int64, "reason": pl.String, "detail": pl.String}

#: Where each built-in reader and step is defined. A module is imported (which registers its
#: classes) when a recipe first names one of them, so a build loads only the code it runs.
BUILTIN_READERS = {
    "documents": "pmc_data.sources.documents",
    "jsonl": "pmc_data.sources.documents",
    "parquet": "pmc_data.sources.documents",
    "dataset_folder": "pmc_data.sources.documents",
    "hf_dataset": "pmc_data.sources.documents",
    "pmc_oa": "pmc_data.sources.pmc",
    "s2orc": "pmc_data.sources.s2orc",
    "pubmed": "pmc_data.sources.pubmed",
    "qa_extractive": "pmc_data.sources.qa",
    "umls_kg": "pmc_data.sources.umls",
    "pdf_books": "pmc_data.sources.books",
    "dialogues": "pmc_data.sources.dialogues",
}
BUILTIN_STEPS = {
    "pubmed_versions": "pmc_data.sources.pubmed",
    "normalize_text": "pmc_data.steps.text",
    "length_filter": "pmc_data.steps.filters",
    "clean_paper_text": "pmc_data.steps.papers",
    "license_filter": "pmc_data.steps.papers",
    "quality_filter": "pmc_data.steps.quality",
    "book_chapters": "pmc_data.steps.books",
    "book_furniture": "pmc_data.steps.books",
    "book_matter": "pmc_data.steps.books",
    "clean_book_text": "pmc_data.steps.books",
    "llm_rationale": "pmc_data.synth.rationale",
    "mask_phi": "pmc_data.synth.conversation",
    "paraphrase_instructions": "pmc_data.synth.conversation",
    "exact_dedup": "pmc_data.dedup.exact",
    "near_dedup": "pmc_data.dedup.minhash",
    "dedup_against": "pmc_data.dedup.against",
    "decontaminate": "pmc_data.dedup.decontaminate",
}
BUILTIN_MODULES = tuple(dict.fromkeys([*BUILTIN_READERS.values(), *BUILTIN_STEPS.values()]))


def decisions(orders, reason: str, details: list[dict]) -> pl.DataFrame:
    """A global step's drops: row ``orders``, one ``reason``, a JSON ``detail`` per row."""
    return pl.DataFrame(
        {
            "_order": orders,
            "reason": [reason] * len(details),
            "detail": [orjson.dumps(d).decode() for d in details],
        },
        schema=DECISION_SCHEMA,
    ).sort("_order")


class StepArgs(BaseModel):
    """Base of every step's arguments: typed, defaulted, and strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class Dropped:
    """Rows a step dropped, with one reason (and optional detail) per row."""

    table: pa.Table
    reasons: list[str]
    details: list[str | None] | None = None


@dataclass
class StepOutput:
    kept: pa.Table
    dropped: Dropped | None = None
    #: Rows folded into other rows (pages joined into a chapter): neither kept nor dropped,
    #: so that every step still accounts ``in = out + dropped + merged``.
    merged: int = 0


class Step:
    """Common base: a registered name, an ``Args`` model, and the dataset kind it runs on."""

    name: ClassVar[str]
    kind: ClassVar[str]
    Args: ClassVar[type[StepArgs]] = StepArgs
    #: Arguments whose values name recipe inputs (a name, or a mapping of names): the recipe
    #: checks them, the manifest hashes those inputs, and :meth:`bind` hands over the paths.
    input_args: ClassVar[tuple[str, ...]] = ()
    #: Spends its time on a unit in native code that releases the GIL (Arrow, polars, numpy),
    #: or little time at all. When every reader and step of a build says so, its units run
    #: in threads of one process (one copy of the imports) instead of worker processes.
    threads: ClassVar[bool] = False

    def __init__(self, args: StepArgs | None = None, schema: str = "medc_k") -> None:
        self.args = args if args is not None else self.Args()
        self.schema = schema
        self.inputs: dict[str, str | None] = {}

    def bind(self, paths: dict[str, str]) -> None:
        """Receive the paths of the inputs this step's arguments name (``--input`` values)."""
        self.inputs = {name: paths.get(name) for name in referenced_inputs(self)}

    @property
    def text_column(self) -> str:
        return TEXT_COLUMN[self.schema]

    def content(self, batch: pa.Table) -> pa.Array:
        """The text that identifies a row for de-duplication and decontamination.

        A document's text; for an instruction row its input and output (not the instruction,
        a template: the same question under two wordings is still the same item).
        """
        if self.schema == "medc_i":
            parts = [pc.fill_null(batch.column(c), "") for c in ("input", "output")]
            return pc.binary_join_element_wise(*parts, "\n").combine_chunks()
        return pc.fill_null(batch.column(self.text_column), "").combine_chunks()


def referenced_inputs(step, args: StepArgs | None = None) -> list[str]:
    """Input names that a step's ``input_args`` hold, in order."""
    args = args if args is not None else step.args
    names: list[str] = []
    for field in getattr(step, "input_args", ()):
        value = getattr(args, field)
        if isinstance(value, str):
            names.append(value)
        elif isinstance(value, dict):
            names.extend(value.values())
    return names


class DocumentStep(Step):
    """A pure function of one batch; override :meth:`apply`, or use a subclass below."""

    kind = "document"

    def apply(self, batch: pa.Table) -> StepOutput:
        raise NotImplementedError

    def take_report(self) -> dict:
        """What the step did since the last call (JSON numbers, dicts of numbers, lists).

        The runner takes it after each unit and sums it over units into the manifest's step
        entry as ``report`` (an LLM step's requests, tokens and cost, say).
        """
        return {}


def merge_reports(total: dict, part: dict) -> dict:
    """Sum two step reports: numbers add, dicts merge, lists extend (at most 3 items).

    >>> merge_reports({"requests": 2, "failures": {"timeout": 1}}, {"requests": 3,
    ...               "failures": {"timeout": 1, "http_500": 2}, "samples": ["p"]})
    {'requests': 5, 'failures': {'timeout': 2, 'http_500': 2}, 'samples': ['p']}
    """
    merged = dict(total)
    for key, value in part.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(value, dict):
            merged[key] = merge_reports(merged[key], value)
        elif isinstance(value, list):
            merged[key] = (merged[key] + value)[:3]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            merged[key] = merged[key] + value
        else:
            merged[key] = value
    return merged


class TextTransform(DocumentStep):
    """Rewrites text columns row by row; never drops. Override :meth:`transform`."""

    def columns(self) -> Sequence[str]:
        return (self.text_column,)

    def transform(self, text: str) -> str:
        raise NotImplementedError

    def apply(self, batch: pa.Table) -> StepOutput:
        for column in self.columns():
            index = batch.schema.get_field_index(column)
            values = batch.column(index).to_pylist()
            rewritten = [None if v is None else self.transform(v) for v in values]
            batch = batch.set_column(index, column, pa.array(rewritten, pa.string()))
        return StepOutput(batch)


class Filter(DocumentStep):
    """Keeps or drops each row. Override :meth:`reasons`: ``None`` keeps, a string drops."""

    def reasons(self, batch: pa.Table) -> Sequence[str | None] | pa.Array:
        raise NotImplementedError

    def apply(self, batch: pa.Table) -> StepOutput:
        reasons = self.reasons(batch)
        if not isinstance(reasons, pa.Array):
            reasons = pa.array(reasons, pa.string())
        keep = pc.is_null(reasons)
        if pc.all(keep).as_py() is not False:
            return StepOutput(batch)
        drop = pc.invert(keep)
        dropped = Dropped(batch.filter(drop), reasons.filter(drop).to_pylist())
        return StepOutput(batch.filter(keep), dropped)


class TextFilter(Filter):
    """A filter that only needs the text. Override :meth:`check`."""

    def check(self, text: str) -> str | None:
        raise NotImplementedError

    def reasons(self, batch: pa.Table) -> list[str | None]:
        return [self.check(t or "") for t in batch.column(self.text_column).to_pylist()]


class GlobalStep(Step):
    """A step over the whole corpus, split so that it scales with signatures, not texts.

    :meth:`signatures` runs per batch in the worker pool and returns one row per input row;
    :meth:`decide` gets every live row's signature plus an ``_order`` column (the row's place
    in the corpus, which also breaks ties), in input order, as a lazy frame over the units'
    tables - collect only the columns and rows needed, since this table is the largest the
    build holds - and returns the rows to drop as a frame with :data:`DECISION_SCHEMA`
    columns. A ``DataFrame`` is accepted too (``.lazy()`` turns either into a lazy frame).
    """

    kind = "global"

    def signatures(self, batch: pa.Table) -> pa.Table:
        raise NotImplementedError

    def decide(self, signatures: pl.LazyFrame) -> pl.DataFrame:
        raise NotImplementedError

    def report(self) -> dict:
        """What the last :meth:`decide` found, for the manifest and the card (JSON values)."""
        return {}

    def tables(self) -> dict[str, pl.DataFrame]:
        """Tables the last :meth:`decide` made, written to ``report/<step>-<name>.parquet``."""
        return {}


@dataclass(frozen=True)
class Unit:
    """One piece of input a worker reads on its own: a whole file or a byte range of one."""

    path: str
    display: str
    start: int = 0
    end: int | None = None
    member: str | None = None
    size: int = 0
    first_line: int = 1
    #: Which concrete reader handles the unit, when a reader delegates by file type.
    format: str = ""

    def describe(self) -> str:
        span = "" if self.end is None else f"[{self.start}:{self.end}]"
        return f"{self.display}{span}" + (f"!{self.member}" if self.member else "")


@dataclass
class ReadResult:
    """What a reader made of one unit: rows, input errors (REJECT_SCHEMA dicts), items seen."""

    table: pa.Table
    errors: list[dict]
    items: int


class Reader:
    """Turns the files behind one named input into units, and each unit into rows."""

    name: ClassVar[str]
    kind: ClassVar[str] = "reader"
    Args: ClassVar[type[StepArgs]] = StepArgs
    #: As for steps: arguments naming other recipe inputs (a file list, a sidecar CSV).
    input_args: ClassVar[tuple[str, ...]] = ()
    #: As for steps: runs well in a worker thread (see ``Step.threads``).
    threads: ClassVar[bool] = False

    def __init__(self, args: StepArgs | None, schema: str, input_name: str) -> None:
        self.args = args if args is not None else self.Args()
        self.schema = schema
        self.input_name = input_name
        self.inputs: dict[str, str | None] = {}

    def bind(self, paths: dict[str, str]) -> None:
        """Receive the paths of the other inputs this reader's arguments name."""
        self.inputs = {name: paths.get(name) for name in referenced_inputs(self)}

    def plan(self, path: str, unit_bytes: int) -> list[Unit]:
        raise NotImplementedError

    def read(self, unit: Unit) -> ReadResult:
        raise NotImplementedError

    def describe_inputs(self, path: str) -> list[dict]:
        """Input manifest entries (path, bytes, sha256 or revision) for the fingerprint."""
        raise NotImplementedError

    def survey(self, path: str, unit_bytes: int) -> tuple[list[dict], list[Unit]]:
        """Manifest entries and units together; readers that can, do both in one read."""
        return self.describe_inputs(path), self.plan(path, unit_bytes)


STEPS: dict[str, type[Step]] = {}
READERS: dict[str, type[Reader]] = {}


def register_step(cls: type[Step]) -> type[Step]:
    if cls.name in STEPS and STEPS[cls.name] is not cls:
        raise ValueError(f"step {cls.name!r} is registered twice")
    STEPS[cls.name] = cls
    return cls


def register_reader(cls: type[Reader]) -> type[Reader]:
    if cls.name in READERS and READERS[cls.name] is not cls:
        raise ValueError(f"reader {cls.name!r} is registered twice")
    READERS[cls.name] = cls
    return cls


def load_builtins() -> None:
    """Import every module that registers built-in steps and readers (idempotent)."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def step_names() -> list[str]:
    """Every step a recipe can name: the built-in ones and any registered since."""
    return sorted(set(BUILTIN_STEPS) | set(STEPS))


def reader_names() -> list[str]:
    """Every reader a recipe can name: the built-in ones and any registered since."""
    return sorted(set(BUILTIN_READERS) | set(READERS))


def step_class(name: str) -> type[Step]:
    """The step registered as ``name``, importing its built-in module on first use."""
    if name not in STEPS and name in BUILTIN_STEPS:
        importlib.import_module(BUILTIN_STEPS[name])
    return STEPS[name]


def reader_class(name: str) -> type[Reader]:
    """The reader registered as ``name``, importing its built-in module on first use."""
    if name not in READERS and name in BUILTIN_READERS:
        importlib.import_module(BUILTIN_READERS[name])
    return READERS[name]
