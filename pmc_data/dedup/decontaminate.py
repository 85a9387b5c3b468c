"""Decontamination: documents that share word n-grams with evaluation sets.

Each benchmark is a recipe input holding its test or dev split: a JSON file (a list, or a
mapping from item id to item as in PubMedQA's ``ori_pqal.json``), JSONL, Parquet, or a Hub id
``org/name:split`` read with ``datasets``. An item's text is the join of the ``fields`` it
has (question, options, contexts...). A document that shares at least ``min_matches`` word
13-grams (normalised as for near-dedup) with a benchmark is removed as
``contaminated:<benchmark>``, or, with ``mode: flag``, kept and listed in
``report/<step>-contaminated.parquet``. The card counts matches per benchmark.

    inputs:
      medqa_test: {help: MedQA-USMLE test JSONL, required: false}
    steps:
      - step: decontaminate
        benchmarks: {medqa: medqa_test}
        ngram: 13
        mode: remove

Items shorter than ``ngram`` words cannot match: a shorter window would flag common phrases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from pmc_data.dedup.shingles import shingle_hashes, words
from pmc_data.registry import DECISION_SCHEMA, GlobalStep, StepArgs, register_step
from pmc_data.sources.files import list_files, open_decompressed

ITEM_FIELDS = [
    "question", "QUESTION", "options", "opa", "opb", "opc", "opd", "CONTEXTS", "context",
    "text",
]  # fmt: skip


class DecontaminateArgs(StepArgs):
    #: Benchmark name -> the recipe input holding its evaluation split.
    benchmarks: dict[str, str]
    ngram: int = Field(13, ge=5, le=50)
    mode: Literal["remove", "flag"] = "remove"
    min_matches: int = Field(1, ge=1)
    #: Item fields whose text is compared (those an item has, in this order).
    fields: list[str] = ITEM_FIELDS


def item_text(item: dict, fields: list[str]) -> str:
    """The comparable text of one benchmark item.

    >>> item_text({"question": "Q?", "options": {"A": "x", "B": "y"}, "answer": "x"},
    ...           ["question", "options"])
    'Q?\\nx\\ny'
    """
    parts: list[str] = []
    for field in fields:
        value = item.get(field)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.extend(str(v) for v in value)
        elif isinstance(value, dict):
            parts.extend(str(v) for v in value.values())
    return "\n".join(parts)


def load_items(value: str) -> list[tuple[str, dict]]:
    """``(item id, item)`` pairs of a benchmark split from a path or a Hub id."""
    path = Path(value)
    if not path.exists():
        import datasets

        name, _, split = value.partition(":")
        rows = datasets.load_dataset(name, split=split or "test")
        return [(str(row.get("id", i)), row) for i, row in enumerate(rows)]
    items: list[tuple[str, dict]] = []
    for file in list_files(path, (".json", ".jsonl", ".json.gz", ".jsonl.gz", ".parquet")):
        if file.name.endswith(".parquet"):
            rows = pq.read_table(file).to_pylist()
            items += [(str(r.get("id", f"{file.name}:{i}")), r) for i, r in enumerate(rows)]
            continue
        with open_decompressed(file) as handle:
            data = handle.read()
        if ".jsonl" in file.name:
            rows = [json.loads(line) for line in data.splitlines() if line.strip()]
            items += [(str(r.get("id", f"{file.name}:{i}")), r) for i, r in enumerate(rows)]
            continue
        loaded = json.loads(data)
        if isinstance(loaded, dict):  # PubMedQA: {pmid: item}
            items += [(str(k), v) for k, v in loaded.items() if isinstance(v, dict)]
        else:
            items += [(str(r.get("id", f"{file.name}:{i}")), r) for i, r in enumerate(loaded)]
    return items


class BenchmarkIndex:
    """Sorted n-gram hashes of every benchmark, each with its benchmark and first item."""

    def __init__(
        self, benchmarks: dict[str, list[tuple[str, dict]]], ngram: int, fields: list[str]
    ) -> None:
        self.names = list(benchmarks)
        self.items = {name: len(items) for name, items in benchmarks.items()}
        hashes, owners, item_ids = [], [], []
        for index, items in enumerate(benchmarks.values()):
            texts = pa.array([item_text(item, fields) for _, item in items], pa.string())
            grams, offsets = shingle_hashes(texts, ngram)
            per_item = np.diff(offsets)
            long_enough = pc.list_value_length(words(texts)).to_numpy(zero_copy_only=False)
            usable = np.repeat(long_enough >= ngram, per_item)
            hashes.append(grams[usable])
            owners.append(np.full(int(usable.sum()), index, dtype=np.int32))
            ids = np.repeat(np.arange(len(items)), per_item)[usable]
            item_ids += [items[i][0] for i in ids.tolist()]
        flat = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
        order = np.argsort(flat, kind="stable")
        self.hashes = flat[order]
        self.owners = np.concatenate(owners)[order] if owners else np.zeros(0, dtype=np.int32)
        self.item_ids = [item_ids[i] for i in order]
        self.ngrams = {name: int((self.owners == i).sum()) for i, name in enumerate(self.names)}

    def matches(self, grams: np.ndarray, offsets: np.ndarray) -> list[dict | None]:
        """Per document: ``{benchmark: {"ngrams": k, "item": first matched item}}`` or None."""
        found: list[dict | None] = [None] * (len(offsets) - 1)
        if not len(self.hashes) or not len(grams):
            return found
        where = np.searchsorted(self.hashes, grams)
        where[where == len(self.hashes)] = 0
        hit = np.flatnonzero(self.hashes[where] == grams)
        if not len(hit):
            return found
        docs = np.searchsorted(offsets, hit, side="right") - 1
        for doc, position in zip(docs.tolist(), where[hit].tolist(), strict=True):
            name = self.names[self.owners[position]]
            entry = (found[doc] or {}).get(name)
            if entry is None:
                found[doc] = (found[doc] or {}) | {
                    name: {"ngrams": 1, "item": self.item_ids[position]}
                }
            else:
                entry["ngrams"] += 1
        return found


@register_step
class Decontaminate(GlobalStep):
    """Removes (or flags) documents sharing word n-grams with evaluation sets."""

    name = "decontaminate"
    Args = DecontaminateArgs
    threads = True  # NumPy hashes and looks up the n-grams; Python touches only the hits
    input_args = ("benchmarks",)
    accepts_hub_ids = True

    def __init__(self, args: DecontaminateArgs | None = None, schema: str = "medc_k") -> None:
        super().__init__(args, schema)
        self._index: BenchmarkIndex | None = None
        self._report: dict = {}
        self._table = pl.DataFrame()

    def index(self) -> BenchmarkIndex:
        if self._index is None:
            loaded = {}
            for benchmark, input_name in self.args.benchmarks.items():
                path = self.inputs.get(input_name)
                loaded[benchmark] = load_items(path) if path else []
            self._index = BenchmarkIndex(loaded, self.args.ngram, self.args.fields)
        return self._index

    def signatures(self, batch: pa.Table) -> pa.Table:
        grams, offsets = shingle_hashes(self.content(batch), self.args.ngram)
        matches = self.index().matches(grams, offsets)
        return pa.table(
            {
                "id": batch.column("id"),
                "source": batch.column("source"),
                "matches": pa.array(
                    [orjson.dumps(m).decode() if m else None for m in matches], pa.string()
                ),
            }
        )

    def decide(self, signatures: pl.LazyFrame) -> pl.DataFrame:
        index = self.index()
        found = signatures.lazy().filter(pl.col("matches").is_not_null()).collect()
        rows = []
        for order, doc_id, source, matches in found.select(
            "_order", "id", "source", "matches"
        ).iter_rows():
            parsed = json.loads(matches)
            strong = {k: v for k, v in parsed.items() if v["ngrams"] >= self.args.min_matches}
            if strong:
                top = max(strong, key=lambda k: (strong[k]["ngrams"], k))
                rows.append(
                    (
                        order,
                        doc_id,
                        source,
                        top,
                        strong[top]["ngrams"],
                        strong[top]["item"],
                        orjson.dumps(strong).decode(),
                    )
                )
        table = pl.DataFrame(
            rows,
            orient="row",
            schema={
                "_order": pl.Int64,
                "id": pl.String,
                "source": pl.String,
                "benchmark": pl.String,
                "ngrams": pl.Int64,
                "item": pl.String,
                "detail": pl.String,
            },
        )
        per_benchmark = dict(table["benchmark"].value_counts().iter_rows()) if len(table) else {}
        self._report = {
            "mode": self.args.mode,
            "ngram": self.args.ngram,
            "min_matches": self.args.min_matches,
            "benchmark_items": index.items,
            "benchmark_ngrams": index.ngrams,
            "documents_matched": {name: per_benchmark.get(name, 0) for name in index.names},
        }
        self._table = table.drop("_order", "detail")
        if self.args.mode == "flag" or not len(table):
            return pl.DataFrame(schema=DECISION_SCHEMA)
        return table.select(
            "_order", reason=pl.lit("contaminated:") + pl.col("benchmark"), detail="detail"
        ).sort("_order")

    def report(self) -> dict:
        return self._report

    def tables(self) -> dict[str, pl.DataFrame]:
        return {"contaminated": self._table} if len(self._table) else {}
