"""Decontamination against evaluation sets, and de-duplication against a reference release."""

from __future__ import annotations

import json

import polars as pl
import pyarrow.parquet as pq
import pytest

from pmc_data.dedup.decontaminate import item_text, load_items
from pmc_data.recipe import load_recipe
from pmc_data.runner import BuildOptions, build
from tests.conftest import SHARED_FIXTURES, make_documents, write_jsonl

PUBMEDQA = SHARED_FIXTURES / "pubmedqa" / "ori_pqal_sample.json"

RECIPE = """
name: decontam
version: 1.0.0
inputs:
  docs: {help: JSONL}
  medqa: {help: MedQA test, required: false}
  pubmedqa: {help: PubMedQA test, required: false}
  previous: {help: an earlier release, required: false}
read:
  - {reader: jsonl, input: docs, source: pmc, license: CC0-1.0, id_prefix: ""}
steps:
  - {step: dedup_against, reference: previous}
  - step: decontaminate
    benchmarks: {medqa: medqa, pubmedqa: pubmedqa}
"""

QUESTION = (
    "A 67-year-old woman with atrial fibrillation on warfarin presents with melena and an INR "
    "of 9.2. Which of the following is the most appropriate next step in management?"
)
MEDQA = [
    {
        "question": QUESTION,
        "options": {
            "A": "Vitamin K and prothrombin complex concentrate",
            "B": "Stop warfarin only",
        },
        "answer_idx": "A",
    },
    {
        "question": "Which vitamin deficiency causes scurvy in sailors on long voyages without "
        "fresh fruit or vegetables of any kind?",
        "options": {"A": "C", "B": "D"},
    },
]


@pytest.fixture
def setup(tmp_path):
    docs = make_documents(40, seed=8)
    docs[5]["text"] += " Case discussion. " + QUESTION.lower().replace("?", ".") + " We discuss it."
    docs[9]["text"] += " " + MEDQA[1]["question"][:40]  # too short an overlap to count
    docs_path = write_jsonl(tmp_path / "docs.jsonl", docs)
    medqa = write_jsonl(tmp_path / "medqa_test.jsonl", MEDQA)
    recipe = tmp_path / "decontam.yaml"
    recipe.write_text(RECIPE)
    return tmp_path, recipe, docs_path, medqa, docs


def test_item_text_and_loaders(tmp_path):
    assert item_text(MEDQA[0], ["question", "options"]).endswith("Stop warfarin only")
    path = write_jsonl(tmp_path / "t.jsonl", MEDQA)
    assert [i for i, _ in load_items(str(path))] == ["t.jsonl:0", "t.jsonl:1"]


def test_planted_benchmark_question_is_removed(setup):
    tmp_path, recipe, docs_path, medqa, _ = setup
    loaded = load_recipe(
        recipe, inputs={"docs": str(docs_path), "medqa": str(medqa)}, require_inputs=True
    )
    result = build(loaded, tmp_path / "out", BuildOptions(progress=False))
    step = next(s for s in result.manifest["steps"] if s["step"] == "decontaminate")
    assert step["dropped"] == {"contaminated:medqa": 1}
    rejects = pq.read_table(tmp_path / "out" / "rejects" / "decontaminate.parquet").to_pylist()
    assert rejects[0]["id"] == "doc-000005"
    detail = json.loads(rejects[0]["detail"])
    assert detail["medqa"]["item"] == "medqa_test.jsonl:0" and detail["medqa"]["ngrams"] >= 10
    report = result.manifest["global_steps"]["decontaminate"]
    assert report["documents_matched"] == {"medqa": 1, "pubmedqa": 0}
    assert report["benchmark_items"] == {"medqa": 2, "pubmedqa": 0}
    assert {i["input"] for i in result.manifest["inputs"]} == {"docs", "medqa"}
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Documents matched: medqa: 1; pubmedqa: 0." in card


def test_flag_mode_keeps_and_lists(setup):
    tmp_path, recipe, docs_path, medqa, _ = setup
    loaded = load_recipe(
        recipe,
        inputs={"docs": str(docs_path), "medqa": str(medqa)},
        overrides=["steps.decontaminate.mode=flag"],
        require_inputs=True,
    )
    result = build(loaded, tmp_path / "out", BuildOptions(progress=False))
    assert result.rows == {"train": 40}
    flagged = pl.read_parquet(tmp_path / "out" / "report" / "decontaminate-contaminated.parquet")
    assert flagged.select("id", "benchmark").rows() == [("doc-000005", "medqa")]


@pytest.mark.skipif(not PUBMEDQA.is_file(), reason="needs ../shared/fixtures (PubMedQA sample)")
def test_pubmedqa_contexts_from_the_real_file(setup):
    tmp_path, recipe, _, _, docs = setup
    items = json.loads(PUBMEDQA.read_text())
    pmid, item = next(iter(items.items()))
    docs[3]["text"] = "Background. " + " ".join(item["CONTEXTS"]) + " Further reading follows."
    docs_path = write_jsonl(tmp_path / "docs2.jsonl", docs)
    loaded = load_recipe(
        recipe, inputs={"docs": str(docs_path), "pubmedqa": str(PUBMEDQA)}, require_inputs=True
    )
    result = build(loaded, tmp_path / "out", BuildOptions(progress=False))
    rejects = pq.read_table(tmp_path / "out" / "rejects" / "decontaminate.parquet").to_pylist()
    assert [r["id"] for r in rejects] == ["doc-000003"]
    assert json.loads(rejects[0]["detail"])["pubmedqa"]["item"] == pmid
    assert result.manifest["global_steps"]["decontaminate"]["benchmark_items"]["pubmedqa"] == 150


def test_dedup_against_a_previous_release(setup):
    tmp_path, recipe, docs_path, _, docs = setup
    previous = load_recipe(recipe, inputs={"docs": str(docs_path)}, require_inputs=True)
    build(previous, tmp_path / "v1", BuildOptions(progress=False))
    new_docs = [dict(d, id=f"new-{i}") for i, d in enumerate(docs[:10])]
    new_docs[2]["text"] += " An erratum was published."
    new_docs += make_documents(15, seed=77)
    new_path = write_jsonl(tmp_path / "new.jsonl", new_docs)
    loaded = load_recipe(
        recipe,
        inputs={"docs": str(new_path), "previous": str(tmp_path / "v1")},
        require_inputs=True,
    )
    result = build(loaded, tmp_path / "v2", BuildOptions(progress=False))
    step = next(s for s in result.manifest["steps"] if s["step"] == "dedup_against")
    rejects = pq.read_table(tmp_path / "v2" / "rejects" / "dedup_against.parquet").to_pylist()
    matched = {r["id"]: json.loads(r["detail"])["matched_id"] for r in rejects}
    short = [f"new-{i}" for i, d in enumerate(docs[:10]) if len(d["text"].split()) < 5]
    assert not short
    assert matched == {f"new-{i}": f"doc-{i:06d}" for i in range(10)}
    assert step["dropped"] == {"in_reference": 10}
    assert result.manifest["global_steps"]["dedup_against"]["reference_documents"] == 40
