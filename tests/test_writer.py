"""Shard and row-group layout does not depend on how rows arrive."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from pmc_data.writer import SplitWriter, shard_count, shard_name


def write(folder, chunks, total, count, group):
    folder.mkdir()
    schema = pa.schema([("n", pa.int64())])
    writer = SplitWriter(folder, "train", schema, total, count, group)
    for chunk in chunks:
        writer.write(pa.table({"n": pa.array(chunk, pa.int64())}))
    return writer.close()


def test_layout_and_bytes_independent_of_chunking(tmp_path):
    rows = list(range(1000))
    one = write(tmp_path / "one", [rows], 1000, 3, 128)
    many = write(tmp_path / "many", [rows[i : i + 37] for i in range(0, 1000, 37)], 1000, 3, 128)
    assert [p.name for p in one] == [shard_name("train", i, 3) for i in range(3)]
    for a, b in zip(one, many, strict=True):
        assert a.read_bytes() == b.read_bytes()
    files = [pq.ParquetFile(p) for p in one]
    assert [f.metadata.num_rows for f in files] == [333, 333, 334]
    assert [files[0].metadata.row_group(i).num_rows for i in range(3)] == [128, 128, 77]
    assert pq.read_table(one[2]).column("n").to_pylist() == rows[666:]


def test_empty_split_still_writes_one_file(tmp_path):
    paths = write(tmp_path / "empty", [], 0, 1, 10)
    assert len(paths) == 1 and pq.ParquetFile(paths[0]).metadata.num_rows == 0


def test_shard_count():
    assert shard_count(0, 100) == 1
    assert shard_count(250, 100) == 3
