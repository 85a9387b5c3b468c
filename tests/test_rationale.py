"""LLM rationales end to end: a local OpenAI-compatible server plays the LLM.

The server answers like a model asked for a rationale (it reads the gold answer from the
prompt) except on planted questions, where it argues for a wrong option or skips one.
"""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, run_cli, write_jsonl
from llm_server import FakeServer

from pmc_data.synth.rationale import QaItem, check_general, check_optionwise, parse_item, prompt

QA = ROOT / "examples" / "qa"


def rationale_model(model: str, messages: list[dict]) -> str:
    """A stand-in for an LLM following the rationale prompts (wrong on purpose when planted)."""
    text = messages[-1]["content"]
    gold = re.search(r"The correct answer is option ([A-E])", text).group(1)
    letters = re.findall(r"^([A-E])\. ", text, re.M)
    if "option from A to" in text:
        skip = "SKIP" in text
        return "\n".join(
            f"Option {x} is {'TRUE' if x == gold else 'FALSE'} because it "
            f"{'fits' if x == gold else 'does not fit'} the findings."
            for x in letters
            if not (skip and x == letters[-1])
        )
    stated = letters[0] if "PLANTED" in text and gold != letters[0] else gold
    if "PLANTED" in text and stated == gold:
        stated = letters[1]
    return f"The findings point to option {gold}'s mechanism. Therefore, the answer is {stated}."


@pytest.fixture
def server():
    with FakeServer(responder=rationale_model) as running:
        yield running


@pytest.fixture
def medqa(tmp_path):
    rows = [json.loads(line) for line in (QA / "medqa_train_sample.jsonl").read_text().splitlines()]
    planted = dict(rows[0], question="PLANTED " + rows[0]["question"])
    return write_jsonl(tmp_path / "medqa.jsonl", [*rows, planted])


def build(server, tmp_path, *extra: str, mode: str = "general", inputs=()):
    out = tmp_path / "out"
    args = [
        "build", "medc_i/rationale", "--output", str(out), "--overwrite", *inputs,
        "--set", f"steps.llm_rationale.llm.base_url={server.base_url}",
        "--set", "steps.llm_rationale.llm.model=test-model",
        "--set", f"steps.llm_rationale.llm.cache_dir={tmp_path / 'cache'}",
        "--set", "steps.llm_rationale.llm.price_per_million_input=2",
        "--set", f"steps.llm_rationale.mode={mode}", *extra,
    ]  # fmt: skip
    result = run_cli(*args, env={"OPENAI_API_KEY": "test"})
    return result, out


def test_general_rationales_agree_and_a_planted_one_is_rejected(server, medqa, tmp_path):
    inputs = ("--input", f"medqa={medqa}", "--input", f"pubmedqa={QA / 'pubmedqa_sample.json'}")
    result, out = build(server, tmp_path, inputs=inputs)
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(out / "data").to_pylist()
    manifest = json.loads((out / "manifest.json").read_text())
    step = next(s for s in manifest["steps"] if s["step"] == "llm_rationale")
    assert step["dropped"] == {"rationale_disagrees": 1}
    assert step["in"] == len(rows) + 1
    assert step["report"]["requests"] == step["in"] == len(server.ok())
    assert step["report"]["cache_hits"] == 0
    for row in rows:
        gold = re.search(r"OPTION ([A-E]) IS CORRECT", row["output"]).group(1)
        assert row["output"].startswith("###Rationale: The findings point to option")
        assert row["output"].endswith(f"Therefore, the answer is {gold}.\n\n###Answer: "
                                      f"OPTION {gold} IS CORRECT.")  # fmt: skip
        assert row["task"] in ("rationale_qa", "research_qa")
        provenance = row["provenance"]
        assert provenance["generator_model"] == "test-model"
        assert re.fullmatch(r"(rqa|pqa)\.\d\+gen\.general\.1", provenance["template_id"])
        assert row["messages"][-1]["content"] == row["output"]
    # the same build again: every answer comes from the cache, no request is made twice
    again, out = build(server, tmp_path, inputs=inputs)
    assert again.returncode == 0, again.stderr
    assert len(server.ok()) == step["in"]
    report = next(s for s in json.loads((out / "manifest.json").read_text())["steps"]
                  if s["step"] == "llm_rationale")["report"]  # fmt: skip
    assert report["cache_hits"] == step["in"] and report["requests"] == 0
    assert pq.read_table(out / "data").to_pylist() == rows


def test_option_wise_rationales_cover_every_option(server, tmp_path):
    items = [
        json.loads(line) for line in (QA / "medqa_train_sample.jsonl").read_text().splitlines()
    ]
    items.append(dict(items[1], question="SKIP " + items[1]["question"]))
    medqa = write_jsonl(tmp_path / "medqa.jsonl", items)
    result, out = build(server, tmp_path, mode="option", inputs=("--input", f"medqa={medqa}"))
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(out / "data").to_pylist()
    assert len(rows) == 3 and {r["task"] for r in rows} == {"rationale_qa_optionwise"}
    assert all(r["output"].count(" is FALSE because") == 3 for r in rows)
    manifest = json.loads((out / "manifest.json").read_text())
    step = next(s for s in manifest["steps"] if s["step"] == "llm_rationale")
    assert step["dropped"] == {"rationale_missing_option": 1}


def test_dry_run_sends_nothing_and_estimates(server, medqa, tmp_path):
    result, out = build(server, tmp_path, "--dry-run", inputs=("--input", f"medqa={medqa}"))
    assert result.returncode == 0, result.stderr
    assert server.log == [] and not out.exists()
    assert "no request sent" in result.stdout
    assert "estimated_requests: 4" in result.stdout
    assert "sample prompt 1:" in result.stdout and "The correct answer is option" in result.stdout


def test_checks_and_prompt():
    item = parse_item(
        "###Context:\nObjective: Does X help?\n###Question: Does X help?\n###Options:\nA. yes\n"
        "B. no\nC. maybe",
        "###Rationale: because.\n\n###Answer: OPTION B IS CORRECT.",
    )
    assert item == QaItem("Does X help?", {"A": "yes", "B": "no", "C": "maybe"}, "B",
                          "Objective: Does X help?")  # fmt: skip
    assert "The correct answer is option B: no." in prompt(item, "general")
    assert prompt(item, "option").startswith("Context:\nObjective: Does X help?")
    assert check_general("It is B. Some say A but the answer is B.", item) is None
    assert check_general("No conclusion here.", item) == "rationale_no_answer"
    lines = "Option A is FALSE because.\nOption B is TRUE because.\n**Option C** is FALSE: no."
    assert check_optionwise(lines, item) is None
    assert check_optionwise(lines.replace("A is FALSE", "A is TRUE"), item) == "rationale_disagrees"
    assert parse_item("free text", "no answer") is None


def test_checks_accept_common_model_formatting():
    item = QaItem("q", {"A": "Ethosuximide", "B": "Phenytoin"}, "A")
    assert check_general("Therefore, the answer is **A**.", item) is None
    numbered = "1. Option A (Ethosuximide) is TRUE because it works.\n2. **Option B** is FALSE: no."
    assert check_optionwise(numbered, item) is None
