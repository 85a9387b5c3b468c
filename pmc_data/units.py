"""Worker side of a build: the recipe's steps over one work unit, results to disk.

:func:`process_unit` is what a worker runs: read the unit, apply the document steps, compute
the global steps' signatures and the rows' measures, and write everything into the unit's
folder, renamed into place at the end so that a unit is either finished or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pmc_data import allocators
from pmc_data.recipe import Recipe
from pmc_data.registry import REJECT_SCHEMA, UNREADABLE, Dropped, Reader, ReadResult, Unit
from pmc_data.report import MEASURES, measure
from pmc_data.schema import schema_for


@dataclass
class Pipeline:
    """The recipe's steps, instantiated once per process."""

    schema: str
    readers: list[Reader]
    reader_labels: list[str]
    documents: list
    document_labels: list[str]
    globals: list
    global_labels: list[str]

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> Pipeline:
        labels = _labels([r.label for r in recipe.readers] + [s.label for s in recipe.steps])
        n_read, n_doc = len(recipe.readers), len(recipe.document_steps)
        documents = [s.build(recipe.schema) for s in recipe.document_steps]
        globals_ = [s.build(recipe.schema) for s in recipe.global_steps]
        readers = [r.build(recipe.schema) for r in recipe.readers]
        for step in readers + documents + globals_:
            step.bind(recipe.input_paths)
        return cls(
            schema=recipe.schema,
            readers=readers,
            reader_labels=labels[:n_read],
            documents=documents,
            document_labels=labels[n_read : n_read + n_doc],
            globals=globals_,
            global_labels=labels[n_read + n_doc :],
        )

    @property
    def labels(self) -> list[str]:
        return self.reader_labels + self.document_labels + self.global_labels


def _labels(names: list[str]) -> list[str]:
    counts = Counter(names)
    return [f"{n}@{i}" if counts[n] > 1 else n for i, n in enumerate(names)]


# Each worker's own pipeline: steps keep per-unit state (reports), so threads of one
# process must not share one.
_WORKER = threading.local()


def init_worker(recipe: Recipe) -> None:
    """Pool initializer, in a worker process or a worker thread."""
    _WORKER.pipeline = Pipeline.from_recipe(recipe)


def init_worker_process(recipe: Recipe) -> None:
    """Pool initializer of a worker process: a process of ours, which never needs pandas."""
    allocators.pyarrow_without_pandas()
    init_worker(recipe)


def reject_rows(label: str, dropped: Dropped, schema: str) -> pa.Table:
    """REJECT_SCHEMA rows for records a step dropped; the whole record is kept as JSON."""
    table = dropped.table
    where = "metadata" if schema == "medc_k" else "provenance"
    place = table.column(where).combine_chunks()
    records = [orjson.dumps(r, default=str).decode() for r in table.to_pylist()]
    return pa.table(
        {
            "step": pa.array([label] * len(table), pa.string()),
            "reason": pa.array(dropped.reasons, pa.string()),
            "detail": pa.array(dropped.details or [None] * len(table), pa.string()),
            "id": table.column("id"),
            "input_file": pc.struct_field(place, "input_file"),
            "input_member": pc.struct_field(place, "input_member"),
            "record": pa.array(records, pa.string()),
        },
        schema=REJECT_SCHEMA,
    )


def count(n_in: int, n_out: int, reasons: list[str]) -> dict:
    return {"in": n_in, "out": n_out, "dropped": dict(sorted(Counter(reasons).items()))}


def _add(
    counts: dict, label: str, n_in: int, n_out: int, reasons: list[str], merged: int = 0
) -> None:
    total = counts.setdefault(label, {"in": 0, "out": 0, "dropped": Counter()})
    total["in"] += n_in
    total["out"] += n_out
    total["dropped"].update(reasons)
    if merged:
        total["merged"] = total.get("merged", 0) + merged


def process_unit(pipeline: Pipeline, reader_index: int, unit: Unit, target: Path) -> dict:
    """Read one unit, run the document steps, and write its results to ``target``.

    A reader may return one :class:`ReadResult` or yield several (archives of thousands of
    articles): each batch goes through the steps and onto disk before the next is read.
    """
    started = time.perf_counter()
    reader_label = pipeline.reader_labels[reader_index]
    results = pipeline.readers[reader_index].read(unit)
    if isinstance(results, ReadResult):
        results = [results]
    scratch = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    counts: dict[str, dict] = {}
    rejects: list[pa.Table] = []
    signatures: list[list[pa.Table]] = [[] for _ in pipeline.globals]
    rows = items = errors = 0
    writer = None
    with pa.OSFile(str(scratch / "kept.arrow"), "wb") as sink:
        for result in results:
            batch = result.table
            items += result.items
            errors += sum(e["reason"] in UNREADABLE for e in result.errors)
            reasons = [e["reason"] for e in result.errors]
            _add(counts, reader_label, result.items, len(batch), reasons)
            if result.errors:
                named = [e | {"step": reader_label} for e in result.errors]
                rejects.append(pa.Table.from_pylist(named, schema=REJECT_SCHEMA))
            for label, step in zip(pipeline.document_labels, pipeline.documents, strict=True):
                n_in = len(batch)
                output = step.apply(batch)
                batch = output.kept
                reasons = output.dropped.reasons if output.dropped else []
                _add(counts, label, n_in, len(batch), reasons, output.merged)
                if output.dropped:
                    rejects.append(reject_rows(label, output.dropped, pipeline.schema))
            for index, step in enumerate(pipeline.globals):
                sig = step.signatures(batch)
                positions = pa.array(np.arange(rows, rows + len(batch)), pa.int64())
                signatures[index].append(sig.append_column("_row", positions))
            # Row measures for the card travel with the rows, so the writer only sums them.
            for name, values in measure(batch, pipeline.schema).items():
                batch = batch.append_column(name, pa.array(values, pa.int64()))
            if writer is None:
                writer = pa.ipc.new_file(sink, batch.schema)
            writer.write_table(batch)
            rows += len(batch)
        if writer is None:  # a reader that yielded nothing: an empty, well-formed file
            empty = schema_for(pipeline.schema).empty_table()
            for name in MEASURES:
                empty = empty.append_column(name, pa.array([], pa.int64()))
            writer = pa.ipc.new_file(sink, empty.schema)
        writer.close()
    for index, parts in enumerate(signatures):
        if parts:
            table = pa.concat_tables(parts)
            pq.write_table(table, scratch / f"signatures-{index}.parquet", compression="zstd")
    if rejects:
        pq.write_table(pa.concat_tables(rejects), scratch / "rejects.parquet", compression="zstd")
    reports = {}
    for label, step in zip(pipeline.document_labels, pipeline.documents, strict=True):
        if report := step.take_report():
            reports[label] = report
    stats = {
        "unit": unit.describe(),
        "reports": reports,
        "rows": rows,
        "items": items,
        "input_errors": errors,
        "counts": {
            k: c | {"dropped": dict(sorted(c["dropped"].items()))} for k, c in counts.items()
        },
        "seconds": round(time.perf_counter() - started, 4),
    }
    (scratch / "stats.json").write_text(json.dumps(stats))
    # Arrow's allocator keeps freed pages for reuse; a unit's peak would otherwise stay
    # resident in every worker for the rest of the build (~50 MiB each).
    allocators.release()
    # The rename is the commit point: a unit folder either exists whole or not at all.
    scratch.rename(target)
    return stats


def work_unit(task: tuple[int, Unit, str]) -> dict:
    reader_index, unit, target = task
    return process_unit(_WORKER.pipeline, reader_index, unit, Path(target))


def unit_key(reader_index: int, unit: Unit, input_hashes: dict[str, str]) -> str:
    """A unit's folder name: stable across restarts with the same inputs and unit size."""
    identity = [
        reader_index,
        unit.display,
        unit.start,
        unit.end,
        unit.member,
        input_hashes.get(unit.display, ""),
    ]
    return hashlib.sha1(json.dumps(identity).encode()).hexdigest()[:16]
