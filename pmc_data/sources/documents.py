"""Readers for generic documents: JSONL (plain, .gz, .zst), Parquet, and Hugging Face datasets.

This is how any text with an ``id`` and a ``text`` field comes in, the general replay corpus
(RedPajama-style JSONL) included. Field names, the source label and the license are reader
arguments::

    inputs:
      general: {help: "RedPajama-style JSONL", required: true}
    read:
      - reader: documents            # picks JSONL / Parquet / dataset folder by path
        input: general
        source: general
        license: ODC-BY-1.0
        metadata_fields: {title: meta_title}

Malformed lines never stop a build: each becomes an input error with a reason
(``invalid_json``, ``invalid_utf8``, ``not_an_object``, ``missing_text``, ``missing_id``,
``truncated_input``, ``corrupt_input``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from pmc_data.registry import Reader, ReadResult, StepArgs, Unit, register_reader
from pmc_data.schema import MEDC_K, MEDC_K_METADATA
from pmc_data.sources.files import (
    FileReader,
    compression_of,
    display_path,
    file_entry,
    line_aligned_ranges,
    list_files,
    open_decompressed,
)

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zst")
PARQUET_SUFFIXES = (".parquet",)
METADATA_KEYS = tuple(field.name for field in MEDC_K_METADATA)
PARQUET_BATCH_ROWS = 4096


class DocumentArgs(StepArgs):
    """How fields of the input records map onto MedC-K rows."""

    #: Field holding the record's id; ``null`` derives the id from a hash of the text.
    id_field: str | None = "id"
    text_field: str = "text"
    #: Source label of every row (default: the input's name), unless ``source_field`` is set.
    source: str | None = None
    source_field: str | None = None
    #: SPDX id of every row, unless ``license_field`` is set. Unknown stays unknown: the
    #: license policy decides what to do with it.
    license: str = "LicenseRef-unknown"
    license_field: str | None = None
    #: Prefix of ids (default ``<source>:``); not added twice.
    id_prefix: str | None = None
    #: Metadata key -> record field, e.g. ``{title: meta_title, year: pub_year}``.
    metadata_fields: dict[str, str] = {}


class RowBuilder:
    """Collects MedC-K rows and input errors from decoded records of one unit."""

    def __init__(self, args: DocumentArgs, input_name: str, input_file: str) -> None:
        unknown = set(args.metadata_fields) - set(METADATA_KEYS)
        if unknown:
            raise ValueError(f"metadata_fields: unknown keys {sorted(unknown)}")
        self.args = args
        self.source = args.source or input_name
        self.input_file = input_file
        self.columns: dict[str, list] = {name: [] for name in MEDC_K.names}
        self.errors: list[dict] = []
        self.items = 0

    def error(self, reason: str, member: str, record: str, detail: str | None = None) -> None:
        self.errors.append(
            {
                "reason": reason,
                "detail": detail,
                "id": None,
                "input_file": self.input_file,
                "input_member": member,
                "record": record,
            }
        )

    def stream_error(self, reason: str, member: str, detail: str) -> None:
        """An unreadable stretch of input (truncated or corrupt file) counts as one item."""
        self.items += 1
        self.error(reason, member, "", detail)

    def add_line(self, line: bytes, member: str) -> None:
        """Decode one JSONL line into a row or an input error."""
        self.items += 1
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raw = line.decode("utf-8", "backslashreplace")
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                self.error("invalid_utf8", member, raw, f"byte {bad.start}: {bad.reason}")
                return
            self.error("invalid_json", member, raw, str(exc))
            return
        self.add_record(record, member, raw=None)

    def add_record(self, record: object, member: str, raw: str | None = "") -> None:
        """Map one decoded record onto a row, or record why it cannot be one."""
        if raw == "":
            self.items += 1
        if not isinstance(record, dict):
            self.error("not_an_object", member, _dump(record), type(record).__name__)
            return
        args = self.args
        text = record.get(args.text_field)
        if not isinstance(text, str):
            reason = "missing_text" if text is None else "text_not_a_string"
            self.error(reason, member, _dump(record), f"field {args.text_field!r}")
            return
        source = self.source
        if args.source_field and record.get(args.source_field) is not None:
            source = str(record[args.source_field])
        if args.id_field is None:
            raw_id = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
        else:
            value = record.get(args.id_field)
            if value is None or value == "":
                self.error("missing_id", member, _dump(record), f"field {args.id_field!r}")
                return
            raw_id = str(value)
        prefix = args.id_prefix if args.id_prefix is not None else f"{source}:"
        license_ = args.license
        if args.license_field and record.get(args.license_field):
            license_ = str(record[args.license_field])
        self.columns["id"].append(raw_id if raw_id.startswith(prefix) else prefix + raw_id)
        self.columns["text"].append(text)
        self.columns["source"].append(source)
        self.columns["license"].append(license_)
        self.columns["metadata"].append(self._metadata(record, member))

    def _metadata(self, record: dict, member: str) -> dict:
        nested = record.get("metadata")
        meta = (
            {k: v for k, v in nested.items() if k in METADATA_KEYS}
            if isinstance(nested, dict)
            else {}
        )
        for key, field in self.args.metadata_fields.items():
            if record.get(field) is not None:
                meta[key] = record[field]
        if "year" in meta:
            meta["year"] = _as_year(meta["year"])
        if "sections" in meta and not isinstance(meta["sections"], list):
            meta["sections"] = [str(meta["sections"])]
        for key in ("title", "pmcid", "pmid", "doi", "journal", "edition", "pages", "extraction"):
            if key in meta and meta[key] is not None:
                meta[key] = str(meta[key])
        meta.setdefault("input_file", self.input_file)
        meta.setdefault("input_member", member)
        return meta

    def result(self) -> ReadResult:
        arrays = [
            pa.array(self.columns[name], field.type)
            for name, field in zip(MEDC_K.names, MEDC_K, strict=True)
        ]
        table = pa.Table.from_arrays(arrays, schema=MEDC_K)
        return ReadResult(table, self.errors, self.items)


def _dump(record: object) -> str:
    return orjson.dumps(record, default=str).decode()


def _as_year(value: object) -> int | None:
    text = str(value).strip()[:4]
    return int(text) if text.isdigit() else None


class _FileReader(FileReader):
    """File readers of documents: rows built by :class:`RowBuilder` from ``DocumentArgs``."""

    Args = DocumentArgs
    # A record costs a few microseconds of Python (orjson decodes it): about a tenth of a
    # de-duplication unit, so the GIL it holds leaves the steps after it room to run.
    threads = True

    def builder(self, unit: Unit) -> RowBuilder:
        return RowBuilder(self.args, self.input_name, unit.display)


@register_reader
class JsonlReader(_FileReader):
    """JSON Lines, plain or compressed (``.gz``, ``.zst``); plain files are split by bytes."""

    name = "jsonl"
    suffixes = JSONL_SUFFIXES

    def plan(self, path: str, unit_bytes: int) -> list[Unit]:
        return self.survey(path, unit_bytes)[1]

    def survey(self, path: str, unit_bytes: int) -> tuple[list[dict], list[Unit]]:
        entries, units = [], []
        for file in self.files(path):
            display = display_path(self.input_name, path, file)
            size = file.stat().st_size
            if compression_of(file):
                entries.append(file_entry(self.input_name, path, file))
                units.append(Unit(str(file), display, 0, None, None, size))
                continue
            digest = hashlib.sha256()
            for start, end, first_line in line_aligned_ranges(file, unit_bytes, digest):
                units.append(Unit(str(file), display, start, end, None, end - start, first_line))
            entries.append({"path": display, "bytes": size, "sha256": digest.hexdigest()})
        return entries, units

    def read(self, unit: Unit) -> ReadResult:
        rows = self.builder(unit)
        number = unit.first_line - 1
        try:
            for number, line in enumerate(_unit_lines(unit), start=unit.first_line):
                if line.strip():
                    rows.add_line(line, f"line {number}")
        except (EOFError, zstandard.ZstdError, OSError) as exc:
            # Truncated or corrupt compressed stream: keep what was read, report the rest.
            reason = "corrupt_input" if number < unit.first_line else "truncated_input"
            rows.stream_error(reason, f"after line {number}", f"{type(exc).__name__}: {exc}")
        return rows.result()


def _unit_lines(unit: Unit) -> Iterator[bytes]:
    if unit.end is None:
        with open_decompressed(unit.path) as stream:
            yield from stream
        return
    with open(unit.path, "rb") as handle:
        handle.seek(unit.start)
        data = handle.read(unit.end - unit.start)
    yield from data.splitlines()


@register_reader
class ParquetReader(_FileReader):
    """Parquet files; large files are split by row groups."""

    name = "parquet"
    suffixes = PARQUET_SUFFIXES

    def plan(self, path: str, unit_bytes: int) -> list[Unit]:
        units = []
        for file in self.files(path):
            display = display_path(self.input_name, path, file)
            meta = pq.ParquetFile(file).metadata
            start, size = 0, 0
            for group in range(meta.num_row_groups):
                size += meta.row_group(group).total_byte_size
                if size >= unit_bytes or group == meta.num_row_groups - 1:
                    units.append(Unit(str(file), display, start, group + 1, None, size))
                    start, size = group + 1, 0
            if meta.num_row_groups == 0:
                units.append(Unit(str(file), display, 0, 0, None, 0))
        return units

    def read(self, unit: Unit) -> ReadResult:
        rows = self.builder(unit)
        groups = list(range(unit.start, unit.end or 0))
        try:
            parquet = pq.ParquetFile(unit.path)
            first = sum(parquet.metadata.row_group(g).num_rows for g in range(unit.start))
            batches = parquet.iter_batches(PARQUET_BATCH_ROWS, row_groups=groups) if groups else []
            for batch in batches:
                for offset, record in enumerate(batch.to_pylist()):
                    rows.add_record(record, f"row {first + offset}")
                first += batch.num_rows
        except (OSError, pa.ArrowException) as exc:
            rows.stream_error("corrupt_input", f"row groups {unit.start}-{unit.end}", str(exc))
        return rows.result()


@register_reader
class DatasetFolderReader(_FileReader):
    """A folder written by ``datasets.Dataset.save_to_disk`` (Arrow stream files)."""

    name = "dataset_folder"

    def files(self, path: str) -> list[Path]:
        state = Path(path) / "state.json"
        if not state.is_file():
            raise FileNotFoundError(f"input {self.input_name!r}: {path} has no state.json")
        names = [f["filename"] for f in json.loads(state.read_text())["_data_files"]]
        return [Path(path) / name for name in names]

    def plan(self, path: str, unit_bytes: int) -> list[Unit]:
        return [
            Unit(str(f), display_path(self.input_name, path, f), size=f.stat().st_size)
            for f in self.files(path)
        ]

    def read(self, unit: Unit) -> ReadResult:
        rows = self.builder(unit)
        try:
            with pa.memory_map(unit.path) as source:
                offset = 0
                for batch in pa.ipc.open_stream(source):
                    for i, record in enumerate(batch.to_pylist()):
                        rows.add_record(record, f"row {offset + i}")
                    offset += batch.num_rows
        except (OSError, pa.ArrowException) as exc:
            rows.stream_error("corrupt_input", unit.display, str(exc))
        return rows.result()


@register_reader
class DocumentsReader(Reader):
    """Picks the reader by what the input path holds.

    A ``.parquet`` file or a folder of them -> ``parquet``; a folder with ``state.json``
    -> ``dataset_folder``; a built pmc-data folder -> its ``data/`` files; else ``jsonl``.
    """

    name = "documents"
    Args = DocumentArgs
    threads = True  # as the readers it hands the units to

    def _delegate(self, path: str) -> tuple[Reader, str]:
        root = Path(path)
        if root.is_dir() and (root / "state.json").is_file():
            kind = DatasetFolderReader
        else:
            if root.is_dir() and (root / "manifest.json").is_file() and (root / "data").is_dir():
                root = root / "data"
            parquet = list_files(root, PARQUET_SUFFIXES)
            kind = (
                ParquetReader if parquet and not list_files(root, JSONL_SUFFIXES) else (JsonlReader)
            )
        return kind(self.args, self.schema, self.input_name), str(root)

    def describe_inputs(self, path: str) -> list[dict]:
        reader, root = self._delegate(path)
        return reader.describe_inputs(root)

    def plan(self, path: str, unit_bytes: int) -> list[Unit]:
        return self.survey(path, unit_bytes)[1]

    def survey(self, path: str, unit_bytes: int) -> tuple[list[dict], list[Unit]]:
        reader, root = self._delegate(path)
        entries, units = reader.survey(root, unit_bytes)
        # The unit remembers its reader so that a worker needs nothing but the unit.
        return entries, [replace(unit, format=reader.name) for unit in units]

    def read(self, unit: Unit) -> ReadResult:
        kind = {r.name: r for r in (JsonlReader, ParquetReader, DatasetFolderReader)}[unit.format]
        return kind(self.args, self.schema, self.input_name).read(unit)


class HubDatasetArgs(DocumentArgs):
    """Documents arguments plus which part of the dataset to stream."""

    split: str = "train"
    config: str | None = None
    revision: str | None = None
    data_files: list[str] | None = None


@register_reader
class HubDatasetReader(Reader):
    """A Hugging Face dataset by Hub id (or local folder), streamed with ``datasets``.

    Each underlying data file is a unit, so workers stream different files in parallel.
    The manifest records the id, config, split and revision instead of file hashes: pin
    ``revision`` for a reproducible build.
    """

    name = "hf_dataset"
    Args = HubDatasetArgs

    def _stream(self, path: str):
        import datasets

        args = self.args
        return datasets.load_dataset(
            path,
            args.config,
            split=args.split,
            revision=args.revision,
            data_files=args.data_files,
            streaming=True,
        )

    def describe_inputs(self, path: str) -> list[dict]:
        args = self.args
        return [
            {
                "path": path if not Path(path).exists() else f"{self.input_name}/",
                "config": args.config,
                "split": args.split,
                "revision": args.revision,
                "data_files": args.data_files,
            }
        ]

    def plan(self, path: str, unit_bytes: int) -> list[Unit]:
        shards = self._stream(path).num_shards
        display = path if not Path(path).exists() else self.input_name
        return [Unit(path, display, i, shards, f"shard {i}") for i in range(shards)]

    def read(self, unit: Unit) -> ReadResult:
        rows = RowBuilder(self.args, self.input_name, unit.display)
        shard = self._stream(unit.path).shard(num_shards=unit.end, index=unit.start)
        try:
            for i, record in enumerate(shard):
                rows.add_record(record, f"{unit.member} row {i}")
        except Exception as exc:
            rows.stream_error("corrupt_input", unit.member or "", f"{type(exc).__name__}: {exc}")
        return rows.result()


def read_all(reader: Reader, path: str, unit_bytes: int = 64 << 20) -> Iterable[ReadResult]:
    """Every unit of an input, read in order (for tests and notebooks; builds use the runner)."""
    for unit in reader.plan(path, unit_bytes):
        yield reader.read(unit)
