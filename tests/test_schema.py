"""Row schemas: Arrow and datasets.Features agree, and Parquet carries the features."""

from __future__ import annotations

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from pmc_data.schema import (
    derive_features,
    features_for,
    schema_for,
    stored_features,
    with_hf_metadata,
)


def test_medc_k_features():
    features = features_for("medc_k")
    assert list(features) == ["id", "text", "source", "license", "metadata"]
    assert features["metadata"]["year"] == datasets.Value("int32")
    assert features["metadata"]["sections"] == datasets.List(datasets.Value("string"))


def test_medc_i_features_have_alpaca_columns_and_chat_messages():
    features = features_for("medc_i")
    assert list(features)[:6] == ["id", "source", "task", "instruction", "input", "output"]
    assert features["messages"] == datasets.List(
        {"role": datasets.Value("string"), "content": datasets.Value("string")}
    )
    assert features["provenance"]["seed"] == datasets.Value("int64")
    assert features.arrow_schema == schema_for("medc_i")


def test_parquet_round_trip_keeps_features(tmp_path):
    schema = with_hf_metadata(schema_for("medc_i"))
    row = {
        "id": "medqa:1",
        "source": "medqa",
        "task": "rationale_qa",
        "instruction": "Answer.",
        "input": "Q?",
        "output": "###Answer: OPTION A IS CORRECT.",
        "messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"}],
        "license": "MIT",
        "provenance": {"seed": 3, "template_id": "t1"},
    }
    pq.write_table(pa.Table.from_pylist([row], schema=schema), tmp_path / "x.parquet")
    loaded = datasets.load_dataset("parquet", data_files=str(tmp_path / "x.parquet"), split="train")
    assert loaded.features == features_for("medc_i")
    assert loaded[0]["messages"][1] == {"role": "assistant", "content": "A"}


def test_stored_features_are_what_datasets_derives():
    # Builds read the stored copy instead of importing datasets; a datasets upgrade that
    # changes its output shows here (rewrite the file with `python -m pmc_data.schema`).
    for name in ("medc_k", "medc_i"):
        assert stored_features()[name] == json.loads(json.dumps(derive_features(name))), name


def test_hf_metadata_of_an_unknown_schema_is_derived():
    schema = pa.schema([("id", pa.string()), ("n", pa.int64())])
    info = json.loads(with_hf_metadata(schema).metadata[b"huggingface"])
    assert info["info"]["features"] == datasets.Features.from_arrow_schema(schema).to_dict()
