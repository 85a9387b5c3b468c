"""MedC-I without an LLM: QA loaders, extractive rationales, UMLS knowledge-graph prompts."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from pmc_data.errors import PublishError
from pmc_data.publish import publish_to_hub
from pmc_data.recipe import load_recipe
from pmc_data.runner import BuildOptions, build
from pmc_data.synth.formats import TEMPLATES, choose
from tests.conftest import SHARED_FIXTURES, write_jsonl

MEDQA = [
    {
        "question": "A 30-year-old woman has fatigue and a microcytic anemia. What is next?",
        "options": {
            "A": "Serum ferritin",
            "B": "Bone marrow biopsy",
            "C": "Vitamin B12 level",
            "D": "Hemoglobin electrophoresis",
        },
        "answer": "Serum ferritin",
        "answer_idx": "A",
        "meta_info": "step2&3",
    },
    {
        "question": "Which nerve is injured in wrist drop?",
        "options": {
            "A": "Median",
            "B": "Ulnar",
            "C": "Radial",
            "D": "Axillary",
            "E": "Musculocutaneous",
        },
        "answer": "Radial",
        "answer_idx": "C",
        "meta_info": "step1",
    },
    {
        "question": "Mismatched gold answer?",
        "options": {"A": "x", "B": "y"},
        "answer": "z",
        "answer_idx": "A",
    },
]


def medmcqa(cops: list[int]) -> list[dict]:
    return [
        {
            "id": f"m{i}",
            "question": f"Drug of choice for condition {i}?",
            "opa": "Aspirin",
            "opb": "Heparin",
            "opc": "Warfarin",
            "opd": "Alteplase",
            "cop": cop,
            "exp": "Explanation of the answer." if i % 2 == 0 else None,
            "choice_type": "single",
            "subject_name": "Pharmacology",
            "topic_name": "Anticoagulants",
        }
        for i, cop in enumerate(cops)
    ]


def build_rows(tmp_path, inputs: dict, *overrides: str):
    recipe = load_recipe(
        "medc_i/rationale_extractive", inputs=inputs, require_inputs=True, overrides=list(overrides)
    )
    out = tmp_path / "out"
    result = build(recipe, out, BuildOptions(progress=False, overwrite=True))
    rejects = {}
    for file in (out / "rejects").glob("*.parquet") if (out / "rejects").is_dir() else []:
        for row in pq.read_table(file).to_pylist():
            rejects.setdefault(row["reason"], []).append(row)
    return result, {r["id"]: r for r in pq.read_table(out / "data").to_pylist()}, rejects


def test_medqa_answer_rows_in_the_papers_format(tmp_path):
    path = write_jsonl(tmp_path / "medqa.jsonl", MEDQA)
    _, rows, rejects = build_rows(tmp_path, {"medqa": str(path)})
    assert len(rows) == 2 and [r["input_member"] for r in rejects["answer_mismatch"]] == ["line 3"]
    row = rows["medqa:medqa.jsonl:line 2"]
    assert row["input"] == (
        "###Question: Which nerve is injured in wrist drop?\n###Options:\n"
        "A. Median\nB. Ulnar\nC. Radial\nD. Axillary\nE. Musculocutaneous"
    )
    assert row["output"] == "###Answer: OPTION C IS CORRECT."
    assert row["task"] == "qa_answer" and row["license"] == "MIT"
    assert row["messages"] == [
        {"role": "user", "content": row["instruction"] + "\n\n" + row["input"]},
        {"role": "assistant", "content": row["output"]},
    ]
    template = choose("qa_answer", "medqa:medqa.jsonl:line 2", 0)
    assert row["instruction"] == template.text
    assert row["provenance"]["template_id"] == template.id
    assert row["provenance"]["template_hash"] == template.hash and row["provenance"]["seed"] == 0


def test_templates_vary_with_the_seed_and_are_stable():
    picks = {choose("rationale_qa", f"item-{i}", 7).id for i in range(30)}
    assert picks == {t.id for t in TEMPLATES["rationale_qa"]}
    assert choose("rationale_qa", "item-1", 7) == choose("rationale_qa", "item-1", 7)


def test_medmcqa_cop_numbering_is_detected_never_guessed(tmp_path):
    raw = write_jsonl(tmp_path / "raw" / "train.json", medmcqa([1, 2, 3, 4]))  # 1-based
    hub = write_jsonl(tmp_path / "hub" / "train.json", medmcqa([0, 1, 2, 3, -1]))  # 0-based
    _, raw_rows, _ = build_rows(tmp_path, {"medmcqa": str(raw)})
    letters = [r["output"].rsplit("OPTION ", 1)[1][0] for r in raw_rows.values()]
    assert letters == ["A", "B", "C", "D"]
    first = raw_rows["medmcqa:m0"]
    assert first["task"] == "rationale_qa"
    assert first["output"] == (
        "###Rationale: Explanation of the answer.\n\n###Answer: OPTION A IS CORRECT."
    )
    assert raw_rows["medmcqa:m1"]["task"] == "qa_answer"
    _, hub_rows, rejects = build_rows(tmp_path, {"medmcqa": str(hub)})
    assert [r["output"][-13] for r in hub_rows.values()] == ["A", "B", "C", "D"]
    assert [r["id"] for r in rejects["unlabelled"]] == [None]
    ambiguous = write_jsonl(tmp_path / "amb" / "train.json", medmcqa([1, 2, 3]))
    _, rows, rejects = build_rows(tmp_path, {"medmcqa": str(ambiguous)})
    assert not rows and len(rejects["ambiguous_cop_numbering"]) == 3
    _, rows, _ = build_rows(tmp_path, {"medmcqa": str(ambiguous)}, "read.1.cop_base=1")
    assert len(rows) == 3


@pytest.mark.skipif(not (SHARED_FIXTURES / "pubmedqa").is_dir(), reason="needs ../shared/fixtures")
def test_pubmedqa_long_answers_as_rationales(tmp_path):
    path = SHARED_FIXTURES / "pubmedqa" / "ori_pqal_sample.json"
    items = json.loads(path.read_text())
    result, rows, _ = build_rows(tmp_path, {"pubmedqa": str(path)}, "read.2.style=plain")
    assert len(rows) == 150
    pmid, item = next(iter(items.items()))
    row = rows[f"pubmedqa:{pmid}"]
    letter = {"yes": "A", "no": "B", "maybe": "C"}[item["final_decision"]]
    assert row["output"] == f"{item['LONG_ANSWER']}\n\nAnswer: {letter}. {item['final_decision']}"
    assert row["input"].startswith("Context:\nIntroduction: Patients transported by helicopter")
    assert row["input"].endswith("Options:\nA. yes\nB. no\nC. maybe")
    assert result.manifest["totals"]["sources"] == {"pubmedqa": 150}


def test_training_rows_matching_a_test_question_are_removed(tmp_path):
    test_item = dict(MEDQA[0])
    train = write_jsonl(tmp_path / "train.jsonl", MEDQA[:2])
    test = write_jsonl(tmp_path / "test.jsonl", [test_item])
    _, rows, rejects = build_rows(tmp_path, {"medqa": str(train), "medqa_test": str(test)})
    assert list(rows) == ["medqa:train.jsonl:line 2"]
    assert [r["reason"] for r in rejects["contaminated:medqa"]] == ["contaminated:medqa"]


MRREL = (
    "C0000039|A1|SCUI|RO|C0000005|A2|SCUI|has_component|R1||MSH|MSH|||N||\n"
    "C0000039|A1|SCUI|RO|C0000005|A2|SCUI|has_component|R2||MSH|MSH|||N||\n"
    "C0000039|A1|SCUI|RB|C0000005|A2|SCUI||R3||MSH|MSH|||N||\n"
    "C0000005|A1|SCUI|SY|C0000005|A2|SCUI|same_as|R4||MSH|MSH|||N||\n"
    "broken|line\n"
)


@pytest.mark.skipif(not (SHARED_FIXTURES / "umls").is_dir(), reason="needs ../shared/fixtures")
def test_umls_descriptions_and_relations(tmp_path):
    meta = tmp_path / "2024AB" / "META"
    shutil.copytree(SHARED_FIXTURES / "umls", meta)  # a scratch copy: the test adds MRREL
    (meta / "MRREL.RRF").write_text(MRREL)
    recipe = load_recipe(
        "medc_i/knowledge_graph", inputs={"umls": str(meta.parent)}, require_inputs=True
    )
    result = build(recipe, tmp_path / "out", BuildOptions(progress=False))
    rows = pq.read_table(tmp_path / "out" / "data").to_pylist()
    by_task = {r["task"]: r for r in rows}
    description = by_task["entity_description"]
    assert description["output"] == (
        "1,2-Dipalmitoylphosphatidylcholine: Synthetic phospholipid used in liposomes and lipid "
        "bilayers to study biological membranes."
    )
    assert "1,2-Dipalmitoylphosphatidylcholine" in description["instruction"]
    relation = by_task["entity_relation"]
    assert relation["output"] == (
        "(131)I-Macroaggregated Albumin has component 1,2-Dipalmitoylphosphatidylcholine. "
        "(Amino Acid, Peptide, or Protein -> Organic Chemical, Pharmacologic Substance)"
    )
    assert len(rows) == 2 and {r["license"] for r in rows} == {"LicenseRef-UMLS"}
    reader = result.manifest["steps"][0]
    assert reader["dropped"] == {"duplicate_fact": 1, "malformed_line": 1, "not_selected": 2}
    assert reader["in"] == 6
    # the card says it, and a public Hub upload is refused before anything is sent
    assert "**Not redistributable.** 2 rows are" in (tmp_path / "out" / "README.md").read_text()
    with pytest.raises(PublishError, match="may not be redistributed: publish with --private"):
        publish_to_hub(tmp_path / "out", "org/kg", api=object())
