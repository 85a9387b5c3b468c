"""Readers: JSONL (plain, .gz, .zst), Parquet, dataset folders, Hub datasets; bad input."""

from __future__ import annotations

import gzip
import itertools
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from pmc_data.registry import reader_class
from pmc_data.sources.documents import DocumentArgs, HubDatasetArgs, read_all
from pmc_data.sources.files import line_aligned_ranges
from tests.conftest import make_documents, write_jsonl


def read(name: str, path, unit_bytes: int = 1 << 20, **args):
    cls = reader_class(name)
    reader = cls(cls.Args(**args), "medc_k", "docs")
    results = list(read_all(reader, str(path), unit_bytes))
    table = pa.concat_tables([r.table for r in results])
    errors = [e for r in results for e in r.errors]
    return table, errors, sum(r.items for r in results)


ROWS = [
    {
        "id": 7,
        "text": "Aspirin inhibits platelet cyclo-oxygenase.",
        "title": "Aspirin",
        "year": "2019-05",
        "license": "CC-BY-4.0",
    },
    {
        "id": "b",
        "text": "Warfarin needs INR monitoring.",
        "metadata": {"doi": "10.1/x", "year": 2001},
    },
]


def test_jsonl_maps_fields_ids_licenses_and_provenance(tmp_path):
    path = write_jsonl(tmp_path / "in" / "a.jsonl", ROWS)
    table, errors, items = read(
        "jsonl",
        path.parent,
        source="web",
        license_field="license",
        metadata_fields={"title": "title", "year": "year"},
    )
    assert errors == [] and items == 2
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == ["web:7", "web:b"]
    assert [r["license"] for r in rows] == ["CC-BY-4.0", "LicenseRef-unknown"]
    assert rows[0]["metadata"]["title"] == "Aspirin" and rows[0]["metadata"]["year"] == 2019
    assert rows[1]["metadata"]["doi"] == "10.1/x" and rows[1]["metadata"]["year"] == 2001
    assert rows[1]["metadata"]["input_file"] == "docs/a.jsonl"
    assert rows[1]["metadata"]["input_member"] == "line 2"


def test_ids_not_prefixed_twice_and_hashed_when_absent(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"id": "web:1", "text": "x y"}, {"text": "x y"}])
    table, _, _ = read("jsonl", path, source="web")
    assert table.column("id").to_pylist()[0] == "web:1"
    hashed, _, _ = read("jsonl", path, source="web", id_field=None)
    ids = hashed.column("id").to_pylist()
    assert ids[0] == ids[1] and ids[0].startswith("web:") and len(ids[0]) == 4 + 16


def test_compressed_inputs_read_the_same(tmp_path):
    lines = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(lines))
    (tmp_path / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    table, errors, _ = read("jsonl", tmp_path, source="web")
    assert errors == []
    assert table.column("text").to_pylist() == [r["text"] for r in ROWS] * 2
    assert {m["input_file"] for m in table.column("metadata").to_pylist()} == {
        "docs/a.jsonl.gz",
        "docs/b.jsonl.zst",
    }


def test_bad_lines_become_input_errors_with_reasons(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"id": 1, "text": "fine"}\n'
        b'{"id": 2, "text": "broken\n'
        b'{"id": 3, "text": "caf\xe9"}\n'
        b"[1, 2]\n"
        b'{"id": 5}\n'
        b'{"id": 6, "text": 42}\n'
        b'{"text": "no id"}\n'
        b"\n"
    )
    table, errors, items = read("jsonl", path, source="web")
    assert table.column("id").to_pylist() == ["web:1"]
    assert [(e["reason"], e["input_member"]) for e in errors] == [
        ("invalid_json", "line 2"),
        ("invalid_utf8", "line 3"),
        ("not_an_object", "line 4"),
        ("missing_text", "line 5"),
        ("text_not_a_string", "line 6"),
        ("missing_id", "line 7"),
    ]
    # Nothing is lost: the raw line is kept, undecodable bytes escaped.
    assert errors[1]["record"] == '{"id": 3, "text": "caf\\xe9"}'
    assert items == len(table) + len(errors)


def test_truncated_and_fake_gzip(tmp_path):
    lines = "".join(json.dumps({"id": i, "text": f"text {i}"}) + "\n" for i in range(2000))
    blob = gzip.compress(lines.encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(blob[: len(blob) // 2])
    table, errors, items = read("jsonl", tmp_path / "cut.jsonl.gz", source="web")
    assert 0 < len(table) < 2000
    assert [e["reason"] for e in errors] == ["truncated_input"]
    assert errors[0]["input_member"] == f"after line {len(table)}"
    assert items == len(table) + 1
    (tmp_path / "fake.jsonl.gz").write_text('{"id": 1, "text": "plain text, not gzip"}\n')
    table, errors, _ = read("jsonl", tmp_path / "fake.jsonl.gz", source="web")
    assert len(table) == 0 and [e["reason"] for e in errors] == ["corrupt_input"]


def test_byte_range_units_cover_every_line_once(tmp_path):
    docs = make_documents(500, seed=3)
    path = write_jsonl(tmp_path / "docs.jsonl", docs)
    ranges = line_aligned_ranges(path, 10_000)
    assert len(ranges) > 10
    assert ranges[0][0] == 0 and ranges[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    whole, _, _ = read("jsonl", path, unit_bytes=1 << 30, source="web")
    split, _, _ = read("jsonl", path, unit_bytes=10_000, source="web")
    assert split.equals(whole)
    members = [m["input_member"] for m in split.column("metadata").to_pylist()]
    assert members == [f"line {i}" for i in range(1, 501)]


def test_parquet_reader_by_row_groups(tmp_path):
    docs = make_documents(300, seed=1)
    pq.write_table(pa.Table.from_pylist(docs), tmp_path / "docs.parquet", row_group_size=50)
    table, errors, items = read(
        "parquet", tmp_path, unit_bytes=1, source="pmc", metadata_fields={"title": "title"}
    )
    assert errors == [] and items == 300
    assert table.column("id").to_pylist() == [f"pmc:{d['id']}" for d in docs]
    assert table.column("metadata").to_pylist()[120]["input_member"] == "row 120"


def test_documents_reader_picks_format(tmp_path):
    docs = make_documents(20, seed=2)
    pq.write_table(pa.Table.from_pylist(docs), tmp_path / "p.parquet")
    table, _, _ = read("documents", tmp_path, source="x")
    assert len(table) == 20
    import datasets

    datasets.Dataset.from_list(docs).save_to_disk(str(tmp_path / "saved"))
    table, _, _ = read("documents", tmp_path / "saved", source="x")
    assert table.column("text").to_pylist() == [d["text"] for d in docs]


def test_hf_dataset_reader_streams_a_local_dataset(tmp_path):
    docs = make_documents(30, seed=4)
    write_jsonl(tmp_path / "hub" / "part-0.jsonl", docs[:15])
    write_jsonl(tmp_path / "hub" / "part-1.jsonl", docs[15:])
    cls = reader_class("hf_dataset")
    reader = cls(HubDatasetArgs(source="general", license="ODC-BY-1.0"), "medc_k", "general")
    units = reader.plan(str(tmp_path / "hub"), 1 << 20)
    assert len(units) == 2
    tables = [reader.read(u).table for u in units]
    ids = [i for t in tables for i in t.column("id").to_pylist()]
    assert sorted(ids) == sorted(f"general:{d['id']}" for d in docs)
    assert set(pa.concat_tables(tables).column("license").to_pylist()) == {"ODC-BY-1.0"}


def test_unknown_metadata_field_is_an_error():
    with pytest.raises(ValueError, match="unknown keys"):
        from pmc_data.sources.documents import RowBuilder

        RowBuilder(DocumentArgs(metadata_fields={"colour": "c"}), "docs", "docs/a.jsonl")
