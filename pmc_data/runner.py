"""The build runner: inputs -> work units -> steps in a process pool -> the dataset folder.

::

    from pmc_data.recipe import load_recipe
    from pmc_data.runner import BuildOptions, build

    recipe = load_recipe("demo", inputs={"docs": "examples/demo"}, require_inputs=True)
    result = build(recipe, Path("build/demo"), BuildOptions(workers=2))
    result.rows     # {'train': 13}

Phases, each resumable:

1. **Plan.** Every input file is hashed (for the fingerprint) and cut into work units (whole
   compressed files, line-aligned byte ranges of plain ones, Parquet row groups).
2. **Units.** Each unit is read and run through the document steps in a worker (a process,
   or a thread when every reader and step spends its time in native code: see
   :func:`use_threads`); its kept rows (Arrow IPC), rejects, per-step counts and the global
   steps' signatures go to
   ``DIR/.work/units/<key>/``, renamed into place when complete. A restarted build skips
   units that are there.
3. **Global steps** decide on the signature tables alone which rows to drop.
4. **Write.** Kept rows are streamed in input order into ``data/<split>-*.parquet`` with fixed
   row groups, so the bytes do not depend on the number of workers or units; rejects, plots,
   the card and ``manifest.json`` (written last: its presence marks a finished build) follow.

Memory is bounded by the unit size times the number of workers, plus the signature tables.
"""

from __future__ import annotations

import fcntl
import json
import logging
import multiprocessing
import shutil
import sys
import time
from collections import Counter
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl
from tqdm import tqdm

from pmc_data import allocators
from pmc_data.assemble import ORDER_SHIFT, Assembly
from pmc_data.errors import BuildError
from pmc_data.recipe import Recipe, fingerprint
from pmc_data.registry import DECISION_SCHEMA, Unit, merge_reports, referenced_inputs
from pmc_data.sources.files import describe_path
from pmc_data.units import (
    Pipeline,
    count,
    init_worker,
    init_worker_process,
    process_unit,
    unit_key,
    work_unit,
)

log = logging.getLogger("pmc_data")

WORK = ".work"
MANAGED = ("data", "rejects", "report", "README.md", "manifest.json")
DEFAULT_UNIT_BYTES = 16 << 20


@dataclass
class BuildOptions:
    workers: int = 1
    #: Most input bytes per work unit; smaller units resume finer, larger ones cost less.
    unit_bytes: int = DEFAULT_UNIT_BYTES
    overwrite: bool = False
    progress: bool = True
    keep_work: bool = False
    #: How ``workers > 1`` run: ``auto`` picks threads when the recipe allows (see
    #: :func:`use_threads`), else processes.
    executor: Literal["auto", "processes", "threads"] = "auto"


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


def use_threads(recipe: Recipe, executor: str = "auto") -> bool:
    """Whether a build's workers are threads of this process rather than processes.

    Threads share one copy of the imports (polars and pyarrow alone are ~70 MiB a process)
    but also the GIL: ``auto`` picks them only when every reader and step declares
    ``threads`` (its time goes to Arrow, polars or NumPy kernels that release the GIL).
    """
    if executor != "auto":
        return executor == "threads"
    return all(spec.cls.threads for spec in recipe.readers + recipe.steps)


def _start_pool(recipe: Recipe, workers: int, threads: bool = False) -> Executor:
    """A warm pool: workers start importing while the main process hashes the inputs."""
    if threads:
        return ThreadPoolExecutor(workers, initializer=init_worker, initargs=(recipe,))
    # spawn, not fork: polars and pyarrow hold thread pools that fork would copy broken.
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker_process,
        initargs=(recipe,),
    )
    for _ in range(workers):
        pool.submit(time.sleep, 0)
    return pool


def _start_plotter() -> ProcessPoolExecutor:
    """One process for the report's plots, importing matplotlib while the main process runs
    the global steps."""
    from pmc_data.report import load_plotting

    plotter = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    plotter.submit(load_plotting)
    return plotter


def _run_units(
    pipeline: Pipeline,
    tasks: list[tuple[int, Unit, str]],
    pool: Executor | None,
    progress: bool,
) -> None:
    """Process pending units, inline without a pool, else in the pool."""
    bar = tqdm(
        total=sum(unit.size for _, unit, _ in tasks),
        unit="B",
        unit_scale=True,
        desc="units",
        file=sys.stderr,
        disable=not progress or not tasks,
        dynamic_ncols=True,
    )
    started, records = time.perf_counter(), 0

    def advance(unit: Unit, stats: dict) -> None:
        nonlocal records
        records += stats["items"]
        bar.update(unit.size)
        rate = records / max(time.perf_counter() - started, 1e-9)
        bar.set_postfix_str(f"{records:,} records, {rate:,.0f} records/s")

    if pool is None:
        for reader_index, unit, target in tasks:
            advance(unit, process_unit(pipeline, reader_index, unit, Path(target)))
    else:
        futures = {pool.submit(work_unit, task): task for task in tasks}
        for future in as_completed(futures):
            advance(futures[future][1], future.result())
    bar.close()


def _signature_scan(unit_dirs: list[Path], index: int, dropped: pl.Series) -> pl.LazyFrame:
    """The live rows of every unit's signature table for global step ``index``, in input
    order, with their ``_order``: lazily, so that a step reads only the columns (and, by
    filtering, the rows) it asks for."""
    if not unit_dirs:
        return pl.LazyFrame()
    # One scan over all the files, not a concat of one scan per unit: polars keeps ~60 KB
    # per scanned file, which was 20 MiB a step for a 20,000-article build's 308 units.
    paths = [str((folder / f"signatures-{index}.parquet").resolve()) for folder in unit_dirs]
    starts = [ordinal << ORDER_SHIFT for ordinal in range(len(paths))]
    signatures = (
        pl.scan_parquet(paths, include_file_paths="_file", glob=False, hive_partitioning=False)
        .with_columns(
            _order=pl.col("_file").replace_strict(paths, starts, return_dtype=pl.Int64)
            + pl.col("_row")
        )
        .drop("_row", "_file")
    )
    if len(dropped):
        # Rows earlier steps dropped, filtered as each unit is read.
        signatures = signatures.filter(~pl.col("_order").is_in(dropped.implode()))
    return signatures


def _global_drops(
    pipeline: Pipeline, unit_dirs: list[Path], counts: dict, reports: dict, tables: dict
) -> pl.DataFrame:
    """Run the global steps over the units' signatures; the rows to drop, with reasons."""
    drops = pl.DataFrame(schema=DECISION_SCHEMA | {"step": pl.String})
    for index, (label, step) in enumerate(
        zip(pipeline.global_labels, pipeline.globals, strict=True)
    ):
        signatures = _signature_scan(unit_dirs, index, drops["_order"])
        rows = signatures.select(pl.len()).collect().item()
        decided = step.decide(signatures) if rows else pl.DataFrame(schema=DECISION_SCHEMA)
        decided = decided.select(list(DECISION_SCHEMA)).cast(DECISION_SCHEMA)
        counts[label] = count(rows, rows - len(decided), decided["reason"].to_list())
        drops = pl.concat([drops, decided.with_columns(step=pl.lit(label))])
        reports[label] = step.report()
        for name, table in step.tables().items():
            tables[f"{label}-{name}"] = table
    return drops.sort("_order")


def _collect_counts(pipeline: Pipeline, unit_stats: list[dict]) -> dict:
    counts: dict[str, dict] = {}
    for stats in unit_stats:
        for label, c in stats["counts"].items():
            total = counts.setdefault(label, {"in": 0, "out": 0, "dropped": Counter()})
            total["in"] += c["in"]
            total["out"] += c["out"]
            total["dropped"].update(c["dropped"])
            if c.get("merged"):
                total["merged"] = total.get("merged", 0) + c["merged"]
        for label, report in stats.get("reports", {}).items():
            total = counts.setdefault(label, {"in": 0, "out": 0, "dropped": Counter()})
            total["report"] = merge_reports(total.get("report", {}), report)
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


def _survey(recipe: Recipe, pipeline: Pipeline, unit_bytes: int):
    """Input manifest entries and ``(reader index, unit)`` pairs of every given input."""
    inputs, planned = [], []
    for index, (spec, reader) in enumerate(zip(recipe.readers, pipeline.readers, strict=True)):
        path = recipe.input_paths.get(spec.input)
        if path is None:
            continue  # an optional input that was not given
        try:
            entries, units = reader.survey(path, unit_bytes)
        except (OSError, ValueError) as exc:
            raise BuildError(f"input {spec.input!r}: {exc}") from exc
        inputs += [{"input": spec.input, "reader": spec.cls.name} | e for e in entries]
        planned += [(index, unit) for unit in units]
    # Inputs that steps read themselves (a reference dataset, benchmark test sets).
    for spec in recipe.readers + recipe.steps:
        for name in referenced_inputs(spec.cls, spec.args):
            path = recipe.input_paths.get(name)
            if path is not None and not any(e["input"] == name for e in inputs):
                inputs += [
                    {"input": name, "reader": spec.cls.name} | e for e in describe_path(name, path)
                ]
    return inputs, planned


@contextmanager
def _exclusive(output: Path):
    """Hold ``DIR.lock`` beside the output: two builds into one folder would corrupt it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    lock = output.parent / f".{output.name}.lock"
    with open(lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildError(f"another pmc-data build is writing {output}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(recipe: Recipe, output: Path, options: BuildOptions | None = None) -> BuildResult:
    """Build ``recipe`` into the dataset folder ``output`` (see the module docstring)."""
    options = options or BuildOptions()
    output = Path(output)
    with ExitStack() as stack:
        stack.enter_context(_exclusive(output))
        pool = None
        if options.workers > 1:
            pool = _start_pool(recipe, options.workers, use_threads(recipe, options.executor))
            stack.callback(pool.shutdown, cancel_futures=True)
        return _build(recipe, output, options, pool, stack)


def _build(
    recipe: Recipe,
    output: Path,
    options: BuildOptions,
    pool: Executor | None,
    stack: ExitStack,
) -> BuildResult:
    from pmc_data.card import write_card
    from pmc_data.manifest import make_manifest, step_table
    from pmc_data.report import write_plots

    pipeline = Pipeline.from_recipe(recipe)
    resolved = recipe.resolved()
    log.info("hashing inputs")
    inputs, planned = _survey(recipe, pipeline, _unit_size(recipe, options.unit_bytes))
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
    threads = isinstance(pool, ThreadPoolExecutor)
    where = "in this process"
    if pool is not None:
        where = f"with {options.workers} worker {'threads' if threads else 'processes'}"
    log.info("processing %d units %s", len(tasks), where)
    _run_units(pipeline, tasks, pool, options.progress)
    plotter = None
    if pool is not None:
        # Worker processes keep their imports, pipelines and allocator caches (~150-250 MiB
        # each): gone before this process loads the global steps' tables. After them the
        # plots get one fresh process that imports only the plotting code, warming up
        # meanwhile; after threads, a process would add its own imports to the peak.
        pool.shutdown()
        if not threads:
            plotter = _start_plotter()
            stack.callback(plotter.shutdown, cancel_futures=True)

    unit_stats = [json.loads((f / "stats.json").read_text()) for f in unit_dirs]
    counts = _collect_counts(pipeline, unit_stats)
    log.info("running %d global step(s)", len(pipeline.globals))
    reports: dict[str, dict] = {}
    tables: dict[str, pl.DataFrame] = {}
    drops = _global_drops(pipeline, unit_dirs, counts, reports, tables)
    allocators.release()
    log.info("writing data files")
    assembly = Assembly(recipe, pipeline, unit_dirs, drops)
    stats = assembly.measure()
    steps = step_table(counts, pipeline.labels, len(pipeline.readers))
    # The plots need only the counts: drawn by the plotting process while this one writes
    # the data, or here once the data are written (matplotlib's ~40 MiB on top of the
    # writing's peak would be the build's peak).
    plots: Future | None = None
    if plotter is not None:
        plots = plotter.submit(write_plots, steps, stats, output / "report")
    final = output / WORK / "final"
    shutil.rmtree(final, ignore_errors=True)
    files, reject_rows = assembly.write(final)
    for name in ("data", "rejects"):
        if (final / name).is_dir():
            (final / name).rename(output / name)
    if plots is not None:
        plots.result()
    else:
        allocators.release()  # the plots' imports come on top of what the writing left
        write_plots(steps, stats, output / "report")
    (output / "report").mkdir(exist_ok=True)
    for name, table in tables.items():
        table.write_parquet(output / "report" / f"{name.replace(':', '-')}.parquet")

    items = sum(s["items"] for s in unit_stats)
    errors = sum(s["input_errors"] for s in unit_stats)
    manifest = make_manifest(
        recipe, resolved, fp, inputs, steps, files, reject_rows, stats, output, items, errors
    )
    manifest["global_steps"] = reports
    write_card(recipe, manifest, output)
    # Written last: a manifest marks a finished build.
    (output / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if not options.keep_work:
        shutil.rmtree(output / WORK)
    limit = recipe.model.max_error_rate
    return BuildResult(
        output,
        fp,
        manifest["splits"],
        units_total=len(planned),
        units_resumed=resumed,
        items_read=items,
        input_errors=errors,
        error_rate_exceeded=limit is not None and items > 0 and errors / items > limit,
        manifest=manifest,
    )
