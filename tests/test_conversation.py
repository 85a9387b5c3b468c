"""Conversations: dialogue loaders, instruction paraphrases, PHI masking with counts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ROOT, run_cli

from pmc_data.sources.dialogues import DialogueArgs, DialogueReader, split_transcript
from pmc_data.synth.conversation import MaskPhi, MaskPhiArgs, ParaphraseArgs, ParaphraseInstructions
from pmc_data.synth.formats import TEMPLATES

DIALOGUES = ROOT / "examples" / "dialogues"


def read(path: Path, **args):
    reader = DialogueReader(DialogueArgs(**args), "medc_i", "dialogues")
    (result,) = list(reader.read(reader.plan(str(path), 1 << 30)[0]))
    return result


def test_alpaca_style_records_and_rejects():
    result = read(DIALOGUES / "chatdoctor_sample.json", source="chatdoctor")
    rows = result.table.to_pylist()
    assert result.items == 4 and len(rows) == 3
    assert [e["reason"] for e in result.errors] == ["no_doctor_reply"]  # empty input
    first = rows[0]
    assert first["id"] == "chatdoctor:chatdoctor_sample.json:item 0"
    assert first["task"] == "conversation" and first["input"].startswith("Hi doctor, I am 34")
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["messages"][0]["content"] == first["instruction"]


def test_multi_turn_json_and_meddialog_text():
    result = read(DIALOGUES / "transcripts_sample.jsonl")
    rows = {r["id"]: r for r in result.table.to_pylist()}
    # ids carry the file: dialogue sets reuse record ids across files
    assert set(rows) == {
        "dialogues:transcripts_sample.jsonl:t1",
        "dialogues:transcripts_sample.jsonl:t2",
    }
    assert [e["reason"] for e in result.errors] == ["no_doctor_reply"]  # t3: never answered
    t1 = rows["dialogues:transcripts_sample.jsonl:t1"]
    assert [m["role"] for m in t1["messages"]] == ["system", "user", "assistant", "user",
                                                    "assistant"]  # fmt: skip
    assert t1["input"].startswith("Patient: I have had a headache every morning")
    assert t1["input"].endswith(
        "Patient: Yes, my wife says I snore loudly and I feel tired all day."
    )
    assert t1["output"].startswith("Morning headaches with loud snoring")
    text = read(DIALOGUES / "meddialog_sample.txt").table.to_pylist()
    assert [r["source_item_id"] for r in (r["provenance"] for r in text)] == [
        "meddialog_sample.txt:101",
        "meddialog_sample.txt:102",
    ]
    assert text[0]["output"].startswith("If it spreads, blisters")
    assert split_transcript("Doctor: Hello.") == [{"role": "assistant", "content": "Hello."}]


def test_phi_is_masked_and_counted():
    step = MaskPhi()
    text = ("Write to jo.doe@mail.com, call +44 20 7946 0958 or (555) 123-4567; MRN: A1234567; "
            "NHS number 943 476 5919 see https://x.org/a. Dose 500 mg, BP 120/80, in 2021, "
            "weight 72.5 kg, glucose 7.8 mmol/L.")  # fmt: skip
    masked, found = step.mask(text)
    assert masked == (
        "Write to [EMAIL], call [PHONE] or [PHONE]; MRN: [ID]; NHS number [ID] see [URL]. "
        "Dose 500 mg, BP 120/80, in 2021, weight 72.5 kg, glucose 7.8 mmol/L."
    )
    assert found == Counter({"phone": 2, "id": 2, "email": 1, "url": 1})


def test_national_phone_formats_are_masked_and_lab_values_are_not():
    step = MaskPhi()
    text = (
        "UK: 07700 900123. India: 98765 43210 or +91 98765 43210. London 020 7946 0958. "
        "Platelets 150 000-450 000/uL, WBC 4 000-11 000 cells, count 1 200 000 per mL."
    )
    masked, found = step.mask(text)
    assert masked == (
        "UK: [PHONE]. India: [PHONE] or [PHONE]. London [PHONE]. "
        "Platelets 150 000-450 000/uL, WBC 4 000-11 000 cells, count 1 200 000 per mL."
    )
    assert found == Counter({"phone": 4})
    # Regions decide how numbers without a country code are read.
    us_only = MaskPhi(MaskPhiArgs(phone_regions=["us"]))
    assert us_only.mask("Call 07700 900123.")[0] == "Call 07700 900123."
    assert us_only.mask("Call +44 7700 900123.")[0] == "Call [PHONE]."
    with pytest.raises(ValueError, match="unknown region"):
        MaskPhiArgs(phone_regions=["XX"])


def test_bank_paraphrases_are_seeded_and_recorded():
    table = read(DIALOGUES / "chatdoctor_sample.json").table
    step = ParaphraseInstructions(ParaphraseArgs(seed=3))
    first = step.apply(table).kept.to_pylist()
    again = ParaphraseInstructions(ParaphraseArgs(seed=3)).apply(table).kept.to_pylist()
    assert first == again
    bank = {t.id: t.text for t in TEMPLATES["conversation"]}
    for row in first:
        template_id = row["provenance"]["template_id"]
        assert row["instruction"] == bank[template_id] == row["messages"][0]["content"]
    other = ParaphraseInstructions(ParaphraseArgs(seed=4)).apply(table).kept.to_pylist()
    assert [r["instruction"] for r in other] != [r["instruction"] for r in first]


def test_conversation_recipe_reports_masking_counts(tmp_path):
    out = tmp_path / "out"
    result = run_cli("build", "medc_i/conversation", "--input", f"dialogues={DIALOGUES}",
                     "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    steps = {s["step"]: s for s in manifest["steps"]}
    assert steps["mask_phi"]["report"] == {"masked": {"email": 1, "id": 1, "phone": 1, "url": 1}}
    assert steps["dialogues:dialogues"]["dropped"] == {"no_doctor_reply": 2}
    rows = pq.read_table(out / "data").to_pylist()
    assert len(rows) == 7
    assert not any("@" in r["input"] or "123-4567" in r["input"] for r in rows)
    assert "mask_phi" in (out / "README.md").read_text()


def paraphraser(model: str, messages: list[dict]) -> str:
    """A stand-in LLM: numbered paraphrases of the instruction it is given."""
    seed = messages[-1]["content"].rsplit("Instruction: ", 1)[1]
    return "Here you go:\n" + "\n".join(f"{i}. {seed} (wording {i})" for i in range(1, 4))


def test_llm_paraphrases_are_written_once_per_seed_and_cached(tmp_path):
    from llm_server import FakeServer

    from pmc_data.synth.llm import LLMArgs

    table = read(DIALOGUES / "chatdoctor_sample.json").table
    with FakeServer(responder=paraphraser) as server:
        llm = LLMArgs(model="m", base_url=server.base_url, cache_dir=str(tmp_path))
        args = ParaphraseArgs(variants_from="llm", variants=3, seed=1, llm=llm)
        rows = ParaphraseInstructions(args).apply(table).kept.to_pylist()
        again = ParaphraseInstructions(args).apply(table).kept.to_pylist()
        assert len(server.ok()) == 1  # one seed instruction, one request, then the cache
    assert rows == again
    seed = table.column("instruction")[0].as_py()
    allowed = {seed} | {f"{seed} (wording {i})" for i in range(1, 4)}
    assert {r["instruction"] for r in rows} <= allowed
    assert len({r["instruction"] for r in rows}) > 1
    for row in rows:
        assert row["provenance"]["generator_model"] == "m"
        assert row["provenance"]["template_id"] in {"seed", "para.llm.1", "para.llm.2",
                                                    "para.llm.3"}  # fmt: skip
