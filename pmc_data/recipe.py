"""Recipes: YAML data describing a build, validated before anything runs.

A recipe names its inputs, the readers that turn them into rows, ordered steps with typed
arguments, and output settings::

    name: demo
    version: 0.1.0
    description: A small general-text corpus.
    schema: medc_k
    card: demo
    inputs:
      docs: {help: JSONL documents with id and text}
    read:
      - {reader: documents, input: docs, source: general, license: CC-BY-4.0}
    steps:
      - {step: normalize_text}
      - {step: length_filter, min_words: 20}
      - {step: exact_dedup}
    output: {shard_size: 256MB, splits: {train: 1.0}}

Recipes are data only: parsed with ``yaml.safe_load``, never evaluated. Every mistake is a
:class:`RecipeError`, one line naming the file, the key and what is allowed:

>>> load_recipe("demo", overrides=["steps.length_filter.min_words=abc"])
Traceback (most recent call last):
pmc_data.errors.RecipeError: recipes/demo.yaml: steps[1].min_words: Input should be a valid \
integer, unable to parse string as an integer (got 'abc')
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pmc_data import __version__
from pmc_data.errors import RecipeError
from pmc_data.registry import (
    GlobalStep,
    Reader,
    Step,
    reader_class,
    reader_names,
    referenced_inputs,
    step_class,
    step_names,
)
from pmc_data.schema import SCHEMAS

PACKAGE_DIR = Path(__file__).resolve().parent
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def bundled_dir(kind: str) -> Path:
    """Where the built-in ``recipes`` or ``datacards`` live (source tree or installed wheel)."""
    installed = PACKAGE_DIR / "_bundled" / kind
    return installed if installed.is_dir() else PACKAGE_DIR.parent / kind


def parse_size(value: int | str) -> int:
    """Bytes in ``"256MB"``, ``"1GiB"`` or ``1000``.

    >>> parse_size("256MB"), parse_size("1GiB"), parse_size(42)
    (256000000, 1073741824, 42)
    """
    if isinstance(value, int):
        return value
    match = SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 256MB, 1GiB or a number of bytes)")
    return int(float(match.group(1)) * UNITS[(match.group(2) or "b").lower()])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Strict):
    help: str = ""
    required: bool = True


class OutputSpec(_Strict):
    #: Target size of one data file (uncompressed Arrow bytes); rows split evenly.
    shard_size: int | str = "256MB"
    #: Rows per Parquet row group (fixed, so files are identical however the input was split).
    row_group_rows: int = 1000
    #: Split name -> fraction of rows, assigned by a hash of the row id (stable across
    #: versions: a document stays in its split when the corpus grows).
    splits: dict[str, float] = {"train": 1.0}

    @field_validator("shard_size")
    @classmethod
    def _size(cls, value: int | str) -> int | str:
        if parse_size(value) <= 0:
            raise ValueError("must be positive")
        return value

    @field_validator("splits")
    @classmethod
    def _splits(cls, value: dict[str, float]) -> dict[str, float]:
        if not value or abs(sum(value.values()) - 1.0) > 1e-9 or min(value.values()) < 0:
            raise ValueError(f"fractions must be >= 0 and sum to 1, got {value}")
        bad = [name for name in value if not re.fullmatch(r"[a-z][a-z0-9_]*", name)]
        if bad:
            raise ValueError(f"split names must be lowercase identifiers, got {bad}")
        return value


class RecipeModel(_Strict):
    name: str
    version: str
    description: str = ""
    schema_: Literal["medc_k", "medc_i"] = Field("medc_k", alias="schema")
    card: str = "default"
    inputs: dict[str, InputSpec]
    read: list[dict[str, Any]]
    steps: list[dict[str, Any]] = []
    output: OutputSpec = OutputSpec()
    #: Fail the build (exit 3, after writing everything) when more than this fraction of
    #: input items were unreadable.
    max_error_rate: float | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", value):
            raise ValueError("use lowercase letters, digits, '.', '_' and '-'")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> str:
        # YAML reads an unquoted 1.2 as a number: say what is wrong with it, not its type.
        if not SEMVER.match(str(value)):
            raise ValueError("not a semantic version (X.Y.Z)")
        return str(value)


@dataclass
class StepSpec:
    """One validated reader or step: its class, typed arguments and where it came from."""

    label: str
    cls: type[Step] | type[Reader]
    args: Any
    input: str | None = None

    def build(self, schema: str) -> Any:
        if self.input is not None:
            return self.cls(self.args, schema, self.input)
        return self.cls(self.args, schema)

    def as_dict(self) -> dict:
        key = "reader" if self.input is not None else "step"
        head = {key: self.cls.name} | ({"input": self.input} if self.input else {})
        return head | self.args.model_dump(mode="json")


@dataclass
class Recipe:
    """A validated recipe with its overrides applied and every default filled in."""

    path: str
    model: RecipeModel
    readers: list[StepSpec]
    steps: list[StepSpec]
    input_paths: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def schema(self) -> str:
        return self.model.schema_

    @property
    def document_steps(self) -> list[StepSpec]:
        return [s for s in self.steps if not issubclass(s.cls, GlobalStep)]

    @property
    def global_steps(self) -> list[StepSpec]:
        return [s for s in self.steps if issubclass(s.cls, GlobalStep)]

    def resolved(self) -> dict:
        """The recipe as it will run: defaults filled, overrides applied, no input paths."""
        model = self.model
        return {
            "name": model.name,
            "version": model.version,
            "description": model.description,
            "schema": model.schema_,
            "card": model.card,
            "inputs": {k: v.model_dump() for k, v in model.inputs.items()},
            "read": [r.as_dict() for r in self.readers],
            "steps": [s.as_dict() for s in self.steps],
            "output": model.output.model_dump()
            | {"shard_size": parse_size(model.output.shard_size)},
            "max_error_rate": model.max_error_rate,
        }


def find_recipe(ref: str) -> Path:
    """A recipe file from a path, or a built-in name such as ``medc_k/pmc_oa`` or ``demo``."""
    path = Path(ref)
    if path.is_file():
        return path
    builtin = bundled_dir("recipes") / f"{ref.removesuffix('.yaml')}.yaml"
    if builtin.is_file():
        return builtin
    names = ", ".join(name for name, _ in list_recipes()) or "none"
    raise RecipeError(ref, "", f"no such recipe file or built-in recipe; built-in: {names}")


def list_recipes() -> list[tuple[str, Path]]:
    """Built-in recipes as ``(name, path)``, name being the path under ``recipes/``."""
    root = bundled_dir("recipes")
    return [
        (p.relative_to(root).with_suffix("").as_posix(), p) for p in sorted(root.rglob("*.yaml"))
    ]


def _display(path: Path) -> str:
    """The recipe path as the user would recognise it, never an absolute home path."""
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        root = bundled_dir("recipes")
        try:
            return "recipes/" + path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return path.name


def apply_override(data: dict, assignment: str, file: str) -> None:
    """Apply one ``a.b.c=value`` override in place; the value is parsed as a YAML scalar.

    List items are addressed by index (``steps.1.min_words``) or, for steps and readers, by
    name (``steps.length_filter.min_words``).
    """
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise RecipeError(file, assignment, "an override looks like key.path=value")
    parts = key.split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            index = _list_index(node, part, file, where)
            if last:
                node[index] = yaml.safe_load(raw)
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = yaml.safe_load(raw)
            else:
                node = node.setdefault(part, {})
        else:
            raise RecipeError(file, where, f"cannot set a key inside a {type(node).__name__}")


def _list_index(items: list, part: str, file: str, where: str) -> int:
    if part.isdigit():
        if int(part) >= len(items):
            raise RecipeError(file, where, f"index out of range (there are {len(items)} items)")
        return int(part)
    matches = [
        i
        for i, item in enumerate(items)
        if isinstance(item, dict) and part in (item.get("step"), item.get("reader"))
    ]
    if len(matches) != 1:
        names = [i.get("step") or i.get("reader") for i in items if isinstance(i, dict)]
        problem = "is ambiguous" if matches else "names no item"
        raise RecipeError(file, where, f"{part!r} {problem}; items: {names}")
    return matches[0]


def _loc(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text.replace("schema_", "schema")


def _one_line(exc: ValidationError, model: type[BaseModel], prefix: str) -> tuple[str, str]:
    """The first error of ``exc`` as ``(key, message)`` with allowed keys for unknown ones."""
    error = exc.errors()[0]
    key = _loc(tuple(error["loc"]))
    if error["type"] == "extra_forbidden":
        # The model that owns the unknown key: inputs.<name>.x is an InputSpec, output.x...
        nested = {"inputs": (InputSpec, 3), "output": (OutputSpec, 2)}.get(error["loc"][0])
        if model is RecipeModel and nested and len(error["loc"]) == nested[1]:
            model = nested[0]
        allowed = ", ".join(f.alias or n for n, f in model.model_fields.items()) or "none"
        message = f"unknown key; allowed: {allowed}"
    elif error["type"] == "missing":
        message = "required key is missing"
    else:
        message = error["msg"].removeprefix("Value error, ")
        if "input" in error and not isinstance(error["input"], dict | list):
            message += f" (got {error['input']!r})"
    full_key = f"{prefix}.{key}" if prefix and key else prefix or key
    return full_key, message


def _spec(raw: Any, family: str, position: int, file: str, inputs: dict) -> StepSpec:
    """Validate one ``read`` or ``steps`` entry into a :class:`StepSpec`."""
    label = f"{family}[{position}]"
    names, lookup = (reader_names, reader_class) if family == "read" else (step_names, step_class)
    kind_key = "reader" if family == "read" else "step"
    if not isinstance(raw, dict) or kind_key not in raw:
        raise RecipeError(file, label, f"each entry is a mapping with a '{kind_key}' key")
    args = dict(raw)
    name = args.pop(kind_key)
    if name not in names():
        allowed = ", ".join(names())
        raise RecipeError(
            file, f"{label}.{kind_key}", f"unknown {kind_key} {name!r}; allowed: {allowed}"
        )
    cls = lookup(name)
    input_name = None
    if family == "read":
        input_name = args.pop("input", None)
        if input_name not in inputs:
            allowed = ", ".join(inputs) or "none declared"
            raise RecipeError(
                file, f"{label}.input", f"{input_name!r} is not an input; inputs: {allowed}"
            )
    try:
        parsed = cls.Args(**args)
    except ValidationError as exc:
        raise RecipeError(file, *_one_line(exc, cls.Args, label)) from None
    for referenced in referenced_inputs(cls, parsed):
        if referenced not in inputs:
            allowed = ", ".join(inputs) or "none declared"
            raise RecipeError(file, label, f"{referenced!r} is not an input; inputs: {allowed}")
    return StepSpec(f"{name}:{input_name}" if input_name else name, cls, parsed, input_name)


def load_recipe(
    ref: str | Path,
    overrides: list[str] | None = None,
    inputs: dict[str, str] | None = None,
    require_inputs: bool = False,
) -> Recipe:
    """Load, override and validate a recipe; raise :class:`RecipeError` on the first problem.

    ``inputs`` maps input names to paths (``--input NAME=PATH``). With ``require_inputs``
    every required input must be given and exist.
    """
    path = find_recipe(str(ref))
    file = _display(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise RecipeError(file, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise RecipeError(file, "", "a recipe is a YAML mapping")
    for assignment in overrides or []:
        apply_override(data, assignment, file)
    try:
        model = RecipeModel(**data)
    except ValidationError as exc:
        raise RecipeError(file, *_one_line(exc, RecipeModel, "")) from None
    if model.schema_ not in SCHEMAS:
        raise RecipeError(file, "schema", f"allowed: {', '.join(SCHEMAS)}")
    if not model.read:
        raise RecipeError(file, "read", "a recipe needs at least one reader")
    readers = [_spec(r, "read", i, file, model.inputs) for i, r in enumerate(model.read)]
    steps = [_spec(s, "steps", i, file, model.inputs) for i, s in enumerate(model.steps)]
    seen_global = None
    for position, spec in enumerate(steps):
        if issubclass(spec.cls, GlobalStep):
            seen_global = spec
        elif seen_global is not None:
            raise RecipeError(
                file,
                f"steps[{position}]",
                f"document step {spec.cls.name!r} after global step {seen_global.cls.name!r}; "
                "global steps (dedup) run last",
            )
    given = dict(inputs or {})
    for name in given:
        if name not in model.inputs:
            allowed = ", ".join(model.inputs)
            raise RecipeError(
                file, f"inputs.{name}", f"not an input of this recipe; inputs: {allowed}"
            )
    if require_inputs:
        for name, spec in model.inputs.items():
            if spec.required and name not in given:
                raise RecipeError(
                    file, f"inputs.{name}", f"required input not given; pass --input {name}=PATH"
                )
        for name, value in given.items():
            if not _is_hub_id(value, readers + steps, name) and not Path(value).exists():
                raise RecipeError(file, f"inputs.{name}", f"path does not exist: {value}")
    return Recipe(file, model, readers, steps, given)


def _is_hub_id(value: str, recipe_steps: list[StepSpec], name: str) -> bool:
    """A Hub dataset id (``org/name``, optionally ``:split``) given where one is accepted."""
    accepts = any(
        (s.input == name and s.cls.name == "hf_dataset")
        or (getattr(s.cls, "accepts_hub_ids", False) and name in referenced_inputs(s.cls, s.args))
        for s in recipe_steps
    )
    return accepts and bool(re.fullmatch(r"[\w.-]+(/[\w.-]+)?(:[\w.-]+)?", value))


def fingerprint(resolved: dict, input_manifest: list[dict]) -> str:
    """sha256 of the resolved recipe, the package version and the input manifest."""
    payload = {"recipe": resolved, "package": __version__, "inputs": input_manifest}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
