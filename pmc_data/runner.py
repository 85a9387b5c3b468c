"""The build runner: inputs -> work units -> steps in a process pool -> the dataset folder.

>>> from pmc_data.recipe import load_recipe
>>> from pmc_data.runner import BuildOptions, build
>>> recipe = load_recipe("demo", inputs={"docs": "examples/demo"}, require_inputs=True)
>>> result = build(recipe, Path("build/demo"), BuildOptions(workers=2))   # doctest: +SKIP
>>> result.rows                                                           # doctest: +SKIP
{'train': 12}

Phases, each resumable:

1. **Plan.** Every input file is hashed (for the fingerprint) and cut into work units (whole
   compressed files, line-aligned byte ranges of plain ones, Parquet row groups).
2. **Units.** Each unit is read and run through the document steps in a worker; its kept rows
   (Arrow IPC), rejects, per-step counts and the global steps' signatures go to
   ``DIR/.work/units/<key>/``, renamed into place when complete. A restarted build skips
   units that are there.
3. **Global steps** decide on the signature tables alone which rows to drop.
4. **Write.** Kept rows are streamed in input order into ``data/<split>-*.parquet`` with fixed
   row groups, so the bytes do not depend on the number of workers or units; rejects, plots,
   the card and ``manifest.json`` (written last: its presence marks a finished build) follow.

Memory is bounded by the unit size times the number of workers, plus the signature tables.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from pmc_data.errors import BuildError
from pmc_data.recipe import Recipe, fingerprint, parse_size
from pmc_data.registry import DECISION_SCHEMA, REJECT_SCHEMA, Dropped, Reader, Unit
from pmc_data.report import MEASURES, CorpusStats, measure
from pmc_data.schema import schema_for, with_hf_metadata
from pmc_data.writer import RejectWriter, SplitWriter, shard_count

log = logging.getLogger("pmc_data")

WORK = ".work"
MANAGED = ("data", "rejects", "report", "README.md", "manifest.json")
DEFAULT_UNIT_BYTES = 32 << 20
ORDER_SHIFT = 32  # _order = unit ordinal << 32 | row within the unit


@dataclass
class BuildOptions:
    workers: int = 1
    #: Input bytes per work unit; smaller units resume finer, larger ones cost less overhead.
    unit_bytes: int = DEFAULT_UNIT_BYTES
    overwrite: bool = False
    progress: bool = True
    keep_work: bool = False


@dataclass
class BuildResult:
    output: Path
    fingerprint: str
    rows: dict[str, int]
    up_to_date: bool = False
    units_total: int = 0
    units_resumed: int = 0
    items_read: int = 0
    input_errors: int = 0
    error_rate_exceeded: bool = False
    manifest: dict = field(default_factory=dict)


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
        return cls(
            schema=recipe.schema,
            readers=[r.build(recipe.schema) for r in recipe.readers],
            reader_labels=labels[:n_read],
            documents=[s.build(recipe.schema) for s in recipe.document_steps],
            document_labels=labels[n_read : n_read + n_doc],
            globals=[s.build(recipe.schema) for s in recipe.global_steps],
            global_labels=labels[n_read + n_doc :],
        )

    @property
    def labels(self) -> list[str]:
        return self.reader_labels + self.document_labels + self.global_labels


def _labels(names: list[str]) -> list[str]:
    counts = Counter(names)
    return [f"{n}@{i}" if counts[n] > 1 else n for i, n in enumerate(names)]


# --------------------------------------------------------------------------- unit processing

_PIPELINE: Pipeline | None = None


def _init_worker(recipe: Recipe) -> None:
    global _PIPELINE
    _PIPELINE = Pipeline.from_recipe(recipe)


def _reject_rows(label: str, dropped: Dropped, schema: str) -> pa.Table:
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


def _count(n_in: int, n_out: int, reasons: list[str]) -> dict:
    return {"in": n_in, "out": n_out, "dropped": dict(sorted(Counter(reasons).items()))}


def process_unit(pipeline: Pipeline, reader_index: int, unit: Unit, target: Path) -> dict:
    """Read one unit, run the document steps, and write its results to ``target``."""
    started = time.perf_counter()
    reader_label = pipeline.reader_labels[reader_index]
    result = pipeline.readers[reader_index].read(unit)
    batch = result.table
    rejects: list[pa.Table] = []
    counts = {reader_label: _count(result.items, len(batch), [e["reason"] for e in result.errors])}
    if result.errors:
        errors = [e | {"step": reader_label} for e in result.errors]
        rejects.append(pa.Table.from_pylist(errors, schema=REJECT_SCHEMA))
    for label, step in zip(pipeline.document_labels, pipeline.documents, strict=True):
        n_in = len(batch)
        output = step.apply(batch)
        batch = output.kept
        reasons = output.dropped.reasons if output.dropped else []
        counts[label] = _count(n_in, len(batch), reasons)
        if output.dropped:
            rejects.append(_reject_rows(label, output.dropped, pipeline.schema))
    scratch = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    for index, step in enumerate(pipeline.globals):
        signatures = step.signatures(batch)
        signatures = signatures.append_column("_row", pa.array(np.arange(len(batch)), pa.int64()))
        pq.write_table(signatures, scratch / f"signatures-{index}.parquet", compression="zstd")
    # Row measures for the card travel with the rows, so the writer only sums them.
    for name, values in measure(batch, pipeline.schema).items():
        batch = batch.append_column(name, pa.array(values, pa.int64()))
    with (
        pa.OSFile(str(scratch / "kept.arrow"), "wb") as sink,
        pa.ipc.new_file(sink, batch.schema) as writer,
    ):
        writer.write_table(batch)
    if rejects:
        pq.write_table(pa.concat_tables(rejects), scratch / "rejects.parquet", compression="zstd")
    stats = {
        "unit": unit.describe(),
        "rows": len(batch),
        "items": result.items,
        "input_errors": len(result.errors),
        "counts": counts,
        "seconds": round(time.perf_counter() - started, 4),
    }
    (scratch / "stats.json").write_text(json.dumps(stats))
    # The rename is the commit point: a unit folder either exists whole or not at all.
    scratch.rename(target)
    return stats


def _work_unit(task: tuple[int, Unit, str]) -> dict:
    reader_index, unit, target = task
    assert _PIPELINE is not None
    return process_unit(_PIPELINE, reader_index, unit, Path(target))


# --------------------------------------------------------------------------------- the build


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


def _prepare_output(output: Path, fp: str, overwrite: bool) -> bool:
    """Check the output folder; True when it already holds this exact build."""
    manifest_path = output / "manifest.json"
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text()).get("fingerprint")
        if previous == fp and not overwrite:
            return True
        if not overwrite:
            raise BuildError(
                f"{output} holds a different build (fingerprint {str(previous)[:12]}); "
                "pass --overwrite to replace it, or choose another --output"
            )
    elif output.exists() and any(output.iterdir()) and not (output / WORK).is_dir():
        raise BuildError(
            f"{output} is not empty and is not a pmc-data build; choose another --output"
        )
    output.mkdir(parents=True, exist_ok=True)
    for name in MANAGED:
        path = output / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    work = output / WORK
    stamp = work / "FINGERPRINT"
    if work.is_dir() and (not stamp.is_file() or stamp.read_text() != fp):
        log.info("discarding unfinished work of another build in %s", work)
        shutil.rmtree(work)
    (work / "units").mkdir(parents=True, exist_ok=True)
    stamp.write_text(fp)
    return False


def _run_units(
    recipe: Recipe, pipeline: Pipeline, tasks: list[tuple[int, Unit, str]], options: BuildOptions
) -> None:
    """Process pending units, inline for one worker, else in a spawned process pool."""
    total_bytes = sum(unit.size for _, unit, _ in tasks)
    bar = tqdm(
        total=total_bytes,
        unit="B",
        unit_scale=True,
        desc="units",
        file=sys.stderr,
        disable=not options.progress or not tasks,
        dynamic_ncols=True,
    )
    started, records = time.perf_counter(), 0

    def advance(unit: Unit, stats: dict) -> None:
        nonlocal records
        records += stats["items"]
        bar.update(unit.size)
        rate = records / max(time.perf_counter() - started, 1e-9)
        bar.set_postfix_str(f"{records:,} records, {rate:,.0f} records/s")

    if options.workers <= 1 or len(tasks) <= 1:
        for reader_index, unit, target in tasks:
            advance(unit, process_unit(pipeline, reader_index, unit, Path(target)))
    else:
        # spawn, not fork: polars and pyarrow hold thread pools that fork would copy broken.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            options.workers, mp_context=context, initializer=_init_worker, initargs=(recipe,)
        ) as pool:
            futures = {pool.submit(_work_unit, task): task for task in tasks}
            for future in as_completed(futures):
                advance(futures[future][1], future.result())
    bar.close()


def _global_drops(pipeline: Pipeline, unit_dirs: list[Path], counts: dict) -> pl.DataFrame:
    """Run the global steps over the units' signatures; the rows to drop, with reasons."""
    drops = pl.DataFrame(schema=DECISION_SCHEMA | {"step": pl.String})
    for index, (label, step) in enumerate(
        zip(pipeline.global_labels, pipeline.globals, strict=True)
    ):
        frames = [
            pl.read_parquet(folder / f"signatures-{index}.parquet")
            .with_columns(_order=pl.lit(ordinal << ORDER_SHIFT, pl.Int64) + pl.col("_row"))
            .drop("_row")
            for ordinal, folder in enumerate(unit_dirs)
        ]
        signatures = pl.concat(frames) if frames else pl.DataFrame()
        if len(drops) and len(signatures):
            signatures = signatures.join(drops.select("_order"), on="_order", how="anti")
        decided = (
            step.decide(signatures) if len(signatures) else pl.DataFrame(schema=DECISION_SCHEMA)
        )
        decided = decided.select(list(DECISION_SCHEMA)).cast(DECISION_SCHEMA)
        counts[label] = _count(
            len(signatures), len(signatures) - len(decided), decided["reason"].to_list()
        )
        drops = pl.concat([drops, decided.with_columns(step=pl.lit(label))])
    return drops.sort("_order")


def split_of(ids: list[str], splits: dict[str, float]) -> np.ndarray:
    """Index of each id's split, from a hash of the id (stable across versions)."""
    if len(splits) == 1:
        return np.zeros(len(ids), dtype=np.int8)
    edges = np.cumsum(list(splits.values()))
    points = (
        np.array(
            [int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest()) for i in ids],
            dtype=np.float64,
        )
        / 2.0**64
    )
    return np.minimum(np.searchsorted(edges, points, side="right"), len(splits) - 1).astype(np.int8)


def _read_kept(folder: Path) -> pa.Table:
    with pa.memory_map(str(folder / "kept.arrow")) as source:
        return pa.ipc.open_file(source).read_all()


def _write_outputs(
    recipe: Recipe, pipeline: Pipeline, unit_dirs: list[Path], drops: pl.DataFrame, output: Path
):
    """Stream kept rows into the split files and rejects into ``rejects/``; gather stats."""
    settings = recipe.model.output
    split_names = list(settings.splits)
    schema = with_hf_metadata(schema_for(recipe.schema))
    drop_orders = drops["_order"].to_numpy()

    def live_mask(ordinal: int, rows: int) -> np.ndarray:
        lo = np.searchsorted(drop_orders, ordinal << ORDER_SHIFT)
        hi = np.searchsorted(drop_orders, (ordinal + 1) << ORDER_SHIFT)
        mask = np.ones(rows, dtype=bool)
        mask[drop_orders[lo:hi] - (ordinal << ORDER_SHIFT)] = False
        return mask

    # Pass 1: rows and bytes per split, to fix the number of files before writing any.
    split_rows = np.zeros(len(split_names), dtype=np.int64)
    split_bytes = np.zeros(len(split_names), dtype=np.int64)
    for ordinal, folder in enumerate(unit_dirs):
        kept = _read_kept(folder)
        if not len(kept):
            continue
        mask = live_mask(ordinal, len(kept))
        which = split_of(kept.column("id").to_pylist(), settings.splits)[mask]
        sizes = kept.column("_bytes").to_numpy()[mask]
        for index in range(len(split_names)):
            chosen = which == index
            split_rows[index] += int(chosen.sum())
            split_bytes[index] += int(sizes[chosen].sum())
    target = parse_size(settings.shard_size)
    data_dir, reject_dir = output / WORK / "final" / "data", output / WORK / "final" / "rejects"
    shutil.rmtree(output / WORK / "final", ignore_errors=True)
    data_dir.mkdir(parents=True)
    writers = [
        SplitWriter(
            data_dir,
            name,
            schema,
            int(split_rows[i]),
            shard_count(int(split_bytes[i]), target),
            settings.row_group_rows,
        )
        for i, name in enumerate(split_names)
    ]
    rejects = RejectWriter(reject_dir, REJECT_SCHEMA)
    stats = {name: CorpusStats() for name in split_names}
    # Pass 2: the rows themselves, unit by unit in input order.
    for ordinal, folder in enumerate(unit_dirs):
        unit_rejects = folder / "rejects.parquet"
        if unit_rejects.is_file():
            table = pq.read_table(unit_rejects)
            for label in pipeline.reader_labels + pipeline.document_labels:
                rejects.write(label, table.filter(pc.equal(table.column("step"), label)))
        kept = _read_kept(folder)
        if not len(kept):
            continue
        mask = live_mask(ordinal, len(kept))
        measures = {name: kept.column(name).to_numpy() for name in MEASURES}
        kept = kept.drop_columns(list(MEASURES))
        if not mask.all():
            lo, hi = ordinal << ORDER_SHIFT, (ordinal + 1) << ORDER_SHIFT
            unit_drops = drops.filter(pl.col("_order").is_between(lo, hi, closed="left"))
            rows = pa.array(unit_drops["_order"].to_numpy() - lo)
            for label in pipeline.global_labels:
                mine = unit_drops["step"].to_numpy() == label
                if mine.any():
                    chosen = pl.Series(mine)
                    dropped = Dropped(
                        kept.take(rows.filter(pa.array(mine))),
                        unit_drops["reason"].filter(chosen).to_list(),
                        unit_drops["detail"].filter(chosen).to_list(),
                    )
                    rejects.write(label, _reject_rows(label, dropped, recipe.schema))
            kept = kept.filter(pa.array(mask))
            measures = {name: values[mask] for name, values in measures.items()}
        which = split_of(kept.column("id").to_pylist(), settings.splits)
        for index, writer in enumerate(writers):
            chosen = which == index
            part = kept if chosen.all() else kept.filter(pa.array(chosen))
            if len(part):
                writer.write(part.cast(schema))
                stats[split_names[index]].add(part, {k: v[chosen] for k, v in measures.items()})
    files = {name: writer.close() for name, writer in zip(split_names, writers, strict=True)}
    reject_rows = rejects.close()
    return files, reject_rows, stats


def _collect_counts(pipeline: Pipeline, unit_stats: list[dict]) -> dict:
    counts: dict[str, dict] = {}
    for stats in unit_stats:
        for label, c in stats["counts"].items():
            total = counts.setdefault(label, {"in": 0, "out": 0, "dropped": Counter()})
            total["in"] += c["in"]
            total["out"] += c["out"]
            total["dropped"].update(c["dropped"])
    for label in pipeline.reader_labels + pipeline.document_labels:
        counts.setdefault(label, {"in": 0, "out": 0, "dropped": Counter()})
    return {k: v | {"dropped": dict(sorted(v["dropped"].items()))} for k, v in counts.items()}


def _unit_size(recipe: Recipe, most: int) -> int:
    """Units of at most ``most`` bytes, and small enough that a small input still makes
    about 32 units to spread over the workers. Depends on the inputs only, never on the
    worker count, so a restart with other ``--workers`` still finds its finished units.
    """
    total = 0
    for path in recipe.input_paths.values():
        root = Path(path)
        if root.is_file():
            total += root.stat().st_size
        elif root.is_dir():
            total += sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return min(most, max(1 << 20, total // 32))


def build(recipe: Recipe, output: Path, options: BuildOptions | None = None) -> BuildResult:
    """Build ``recipe`` into the dataset folder ``output`` (see the module docstring)."""
    from pmc_data.card import write_card
    from pmc_data.manifest import make_manifest
    from pmc_data.report import write_plots

    options = options or BuildOptions()
    output = Path(output)
    pipeline = Pipeline.from_recipe(recipe)
    resolved = recipe.resolved()

    log.info("hashing inputs")
    unit_bytes = _unit_size(recipe, options.unit_bytes)
    inputs, planned = [], []
    for reader_index, (spec, reader) in enumerate(
        zip(recipe.readers, pipeline.readers, strict=True)
    ):
        path = recipe.input_paths.get(spec.input)
        if path is None:
            continue  # an optional input that was not given
        try:
            entries, units = reader.survey(path, unit_bytes)
        except (OSError, ValueError) as exc:
            raise BuildError(f"input {spec.input!r}: {exc}") from exc
        inputs += [{"input": spec.input, "reader": spec.cls.name} | e for e in entries]
        planned += [(reader_index, unit) for unit in units]
    fp = fingerprint(resolved, inputs)
    if _prepare_output(output, fp, options.overwrite):
        manifest = json.loads((output / "manifest.json").read_text())
        log.info("%s is up to date (fingerprint %s)", output, fp[:12])
        return BuildResult(output, fp, manifest["splits"], up_to_date=True, manifest=manifest)

    hashes = {e["path"]: e.get("sha256", "") for e in inputs}
    units_dir = output / WORK / "units"
    for partial in units_dir.glob("*.tmp-*"):
        shutil.rmtree(partial)  # a unit a killed worker left half-written
    tasks, unit_dirs = [], []
    for reader_index, unit in planned:
        folder = units_dir / unit_key(reader_index, unit, hashes)
        unit_dirs.append(folder)
        if not (folder / "stats.json").is_file():
            tasks.append((reader_index, unit, str(folder)))
    resumed = len(planned) - len(tasks)
    if resumed:
        log.info("resuming: %d of %d units already done", resumed, len(planned))
    log.info("processing %d units with %d worker(s)", len(tasks), options.workers)
    _run_units(recipe, pipeline, tasks, options)

    unit_stats = [json.loads((f / "stats.json").read_text()) for f in unit_dirs]
    counts = _collect_counts(pipeline, unit_stats)
    log.info("running %d global step(s)", len(pipeline.globals))
    drops = _global_drops(pipeline, unit_dirs, counts)
    log.info("writing data files")
    files, reject_rows, stats = _write_outputs(recipe, pipeline, unit_dirs, drops, output)

    final = output / WORK / "final"
    for name in ("data", "rejects"):
        if (final / name).is_dir():
            (final / name).rename(output / name)
    items = sum(s["items"] for s in unit_stats)
    errors = sum(s["input_errors"] for s in unit_stats)
    manifest = make_manifest(
        recipe,
        resolved,
        fp,
        inputs,
        counts,
        pipeline.labels,
        files,
        reject_rows,
        stats,
        output,
        items,
        errors,
    )
    write_plots(manifest, stats, output / "report")
    write_card(recipe, manifest, output)
    (output / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    if not options.keep_work:
        shutil.rmtree(output / WORK)
    rate = errors / items if items else 0.0
    limit = recipe.model.max_error_rate
    return BuildResult(
        output,
        fp,
        manifest["splits"],
        units_total=len(planned),
        units_resumed=resumed,
        items_read=items,
        input_errors=errors,
        error_rate_exceeded=limit is not None and rate > limit,
        manifest=manifest,
    )
