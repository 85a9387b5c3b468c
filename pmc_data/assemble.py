"""The last phase of a build: finished units plus global drops -> split files and rejects.

Two passes over the units' kept rows (memory-mapped Arrow, one unit at a time):

1. :meth:`Assembly.measure` counts rows, bytes and corpus statistics per split, so the
   number of files per split is fixed before any is written;
2. :meth:`Assembly.write` streams the rows, in input order, into ``data/<split>-*.parquet``
   and every dropped row into ``rejects/<step>.parquet``.

Rows are addressed by ``_order = unit ordinal << 32 | row in unit``: the global steps decide
on it, and it sorts rows in input order however the input was cut into units.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pmc_data import allocators
from pmc_data.recipe import Recipe, parse_size
from pmc_data.registry import REJECT_SCHEMA, Dropped
from pmc_data.report import MEASURES, CorpusStats
from pmc_data.schema import schema_for, with_hf_metadata
from pmc_data.units import Pipeline, reject_rows
from pmc_data.writer import RejectWriter, SplitWriter, shard_count

ORDER_SHIFT = 32


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


def read_kept(folder: Path) -> pa.Table:
    with pa.memory_map(str(folder / "kept.arrow")) as source:
        return pa.ipc.open_file(source).read_all()


class Assembly:
    """Writes one build's data and rejects from its unit folders and global drops."""

    def __init__(
        self, recipe: Recipe, pipeline: Pipeline, unit_dirs: list[Path], drops: pl.DataFrame
    ) -> None:
        self.recipe, self.pipeline, self.unit_dirs, self.drops = recipe, pipeline, unit_dirs, drops
        self.settings = recipe.model.output
        self.split_names = list(self.settings.splits)
        self.drop_orders = drops["_order"].to_numpy()
        self.rows = np.zeros(len(self.split_names), dtype=np.int64)
        self.bytes = np.zeros(len(self.split_names), dtype=np.int64)

    def _live(self, ordinal: int, rows: int) -> np.ndarray:
        """Which rows of a unit no global step dropped."""
        base = ordinal << ORDER_SHIFT
        lo = np.searchsorted(self.drop_orders, base)
        hi = np.searchsorted(self.drop_orders, base + (1 << ORDER_SHIFT))
        mask = np.ones(rows, dtype=bool)
        mask[self.drop_orders[lo:hi] - base] = False
        return mask

    def _units(self):
        """Each unit's live rows with their split index and measures, in input order."""
        for ordinal, folder in enumerate(self.unit_dirs):
            kept = read_kept(folder)
            mask = self._live(ordinal, len(kept))
            measures = {name: kept.column(name).to_numpy()[mask] for name in MEASURES}
            rows = kept.drop_columns(list(MEASURES))
            which = split_of(rows.column("id").to_pylist(), self.settings.splits)[mask]
            yield ordinal, folder, rows, mask, which, measures
            # as in the workers: a unit's freed Arrow pages are not kept for the next one
            allocators.release()

    def measure(self) -> dict[str, CorpusStats]:
        """Pass 1: rows, bytes and statistics per split (reads no text)."""
        stats = {name: CorpusStats() for name in self.split_names}
        for _, _, rows, mask, which, measures in self._units():
            live = rows.select(["source", "license"]).filter(pa.array(mask))
            for index, name in enumerate(self.split_names):
                chosen = which == index
                if chosen.any():
                    part = live if chosen.all() else live.filter(pa.array(chosen))
                    stats[name].add(part, {k: v[chosen] for k, v in measures.items()})
                    self.rows[index] += int(chosen.sum())
                    self.bytes[index] += int(measures["_bytes"][chosen].sum())
        return stats

    def write(self, folder: Path) -> tuple[dict[str, list[Path]], dict[str, int]]:
        """Pass 2: the data files under ``folder/data``, rejects under ``folder/rejects``."""
        schema = with_hf_metadata(schema_for(self.recipe.schema))
        (folder / "data").mkdir(parents=True)
        target = parse_size(self.settings.shard_size)
        writers = [
            SplitWriter(
                folder / "data",
                name,
                schema,
                int(self.rows[i]),
                shard_count(int(self.bytes[i]), target),
                self.settings.row_group_rows,
            )
            for i, name in enumerate(self.split_names)
        ]
        rejects = RejectWriter(folder / "rejects", REJECT_SCHEMA)
        step_labels = self.pipeline.reader_labels + self.pipeline.document_labels
        for ordinal, unit, rows, mask, which, _ in self._units():
            unit_rejects = unit / "rejects.parquet"
            if unit_rejects.is_file():
                table = pq.read_table(unit_rejects)
                for label in step_labels:
                    rejects.write(label, table.filter(pc.equal(table.column("step"), label)))
            if not mask.all():
                self._reject_global(ordinal, rows, rejects)
                rows = rows.filter(pa.array(mask))
            for index, writer in enumerate(writers):
                chosen = which == index
                part = rows if chosen.all() else rows.filter(pa.array(chosen))
                if len(part):
                    writer.write(part.cast(schema))
        files = {name: w.close() for name, w in zip(self.split_names, writers, strict=True)}
        return files, rejects.close()

    def _reject_global(self, ordinal: int, rows: pa.Table, rejects: RejectWriter) -> None:
        base = ordinal << ORDER_SHIFT
        mine = self.drops.filter(
            pl.col("_order").is_between(base, base + (1 << ORDER_SHIFT), closed="left")
        )
        positions = pa.array(mine["_order"].to_numpy() - base)
        for label in self.pipeline.global_labels:
            chosen = (mine["step"] == label).to_numpy()
            if chosen.any():
                dropped = Dropped(
                    rows.take(positions.filter(pa.array(chosen))),
                    mine["reason"].filter(pl.Series(chosen)).to_list(),
                    mine["detail"].filter(pl.Series(chosen)).to_list(),
                )
                rejects.write(label, reject_rows(label, dropped, self.recipe.schema))
