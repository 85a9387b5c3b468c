"""Writing the final Parquet files: ``data/<split>-NNNNN-of-NNNNN.parquet`` and rejects.

Shard and row-group boundaries depend only on global row positions, never on how the input
was split into work units or how many workers ran, so the bytes are identical across runs.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_OPTIONS = {"compression": "zstd", "write_statistics": True}


def shard_count(total_bytes: int, target_bytes: int) -> int:
    """How many files hold ``total_bytes`` at about ``target_bytes`` each (at least one)."""
    return max(1, math.ceil(total_bytes / target_bytes))


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


class SplitWriter:
    """Streams one split's rows into ``count`` files of near-equal row counts.

    ::

        writer = SplitWriter(Path("out/data"), "train", schema, total_rows=10, count=2,
                             row_group_rows=4)
        writer.write(table_of_10_rows)
        writer.close()  # [.../train-00000-of-00002.parquet, .../train-00001-of-00002.parquet]
    """

    def __init__(
        self,
        folder: Path,
        split: str,
        schema: pa.Schema,
        total_rows: int,
        count: int,
        row_group_rows: int,
    ) -> None:
        self.folder, self.split, self.schema = folder, split, schema
        self.count = count
        self.row_group_rows = row_group_rows
        # Cumulative row index at which each file ends.
        self.ends = [total_rows * (i + 1) // count for i in range(count)]
        self.index = 0
        self.written = 0
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.writer: pq.ParquetWriter | None = None
        self.paths: list[Path] = []

    def write(self, table: pa.Table) -> None:
        offset = 0
        while offset < len(table):
            room = self.ends[self.index] - self.written - self.pending_rows
            take = min(room, len(table) - offset)
            self.pending.append(table.slice(offset, take))
            self.pending_rows += take
            offset += take
            self._flush()

    def _flush(self) -> None:
        file_full = self.written + self.pending_rows == self.ends[self.index]
        while self.pending_rows >= self.row_group_rows or (file_full and self.pending_rows):
            buffered = pa.concat_tables(self.pending)
            size = min(self.row_group_rows, len(buffered))
            self._file().write_table(buffered.slice(0, size), row_group_size=size)
            rest = buffered.slice(size)
            self.pending, self.pending_rows = ([rest] if len(rest) else []), len(rest)
            self.written += size
        if file_full:
            self._next_file()

    def _file(self) -> pq.ParquetWriter:
        if self.writer is None:
            path = self.folder / shard_name(self.split, self.index, self.count)
            self.writer = pq.ParquetWriter(path, self.schema, **PARQUET_OPTIONS)
            self.paths.append(path)
        return self.writer

    def _next_file(self) -> None:
        self._file().close()
        self.writer = None
        self.index += 1

    def close(self) -> list[Path]:
        """Finish every file (empty ones too, so ``-of-N`` always holds) and list them."""
        while self.index < self.count:
            have = self.written + self.pending_rows
            if have != self.ends[self.index]:
                raise RuntimeError(
                    f"split {self.split!r}: file {self.index} expects {self.ends[self.index]} "
                    f"rows, got {have}"
                )
            self._flush()
        return self.paths


class RejectWriter:
    """One Parquet file of rejects per step, opened on that step's first reject.

    Rows are written in fixed row groups, so the files, like the data, do not depend on how
    the input was split into units.
    """

    def __init__(self, folder: Path, schema: pa.Schema, row_group_rows: int = 1000) -> None:
        self.folder, self.schema, self.row_group_rows = folder, schema, row_group_rows
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.pending: dict[str, list[pa.Table]] = {}
        self.rows: dict[str, int] = {}

    @staticmethod
    def file_name(label: str) -> str:
        return label.replace(":", "-").replace("@", "-") + ".parquet"

    def write(self, label: str, table: pa.Table) -> None:
        if not len(table):
            return
        if label not in self.writers:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / self.file_name(label)
            self.writers[label] = pq.ParquetWriter(path, self.schema, **PARQUET_OPTIONS)
            self.pending[label], self.rows[label] = [], 0
        self.pending[label].append(table.cast(self.schema))
        self.rows[label] += len(table)
        self._flush(label, final=False)

    def _flush(self, label: str, final: bool) -> None:
        buffered = pa.concat_tables(self.pending[label])
        size = self.row_group_rows
        while len(buffered) >= size or (final and len(buffered)):
            chunk = buffered.slice(0, size)
            self.writers[label].write_table(chunk, row_group_size=len(chunk))
            buffered = buffered.slice(len(chunk))
        self.pending[label] = [buffered] if len(buffered) else []

    def close(self) -> dict[str, int]:
        for label, writer in self.writers.items():
            self._flush(label, final=True)
            writer.close()
        return self.rows


def file_record(path: Path, root: Path) -> dict:
    """Manifest entry of an output file: relative path, rows, bytes, sha256."""
    with open(path, "rb") as handle:  # streamed: a shard is up to shard_size (256 MB)
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {
        "path": path.relative_to(root).as_posix(),
        "rows": pq.ParquetFile(path).metadata.num_rows,
        "bytes": path.stat().st_size,
        "sha256": digest,
    }
