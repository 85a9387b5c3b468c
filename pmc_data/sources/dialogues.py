"""Doctor-patient dialogues to MedC-I conversation rows: the ``dialogues`` reader.

Three layouts, detected per record:

- Alpaca-style single turns (ChatDoctor, HealthCareMagic): ``{instruction, input, output}``,
  the patient's message in ``input`` and the doctor's reply in ``output``;
- multi-turn records: a list of turns under ``messages``, ``dialogue``, ``utterances`` or
  ``turns``, each ``{role|speaker, content|text|utterance}`` with patient/doctor (or
  user/assistant) roles;
- MedDialog-style text files: ``id=N`` headers, then ``Patient:`` / ``Doctor:`` blocks.

The seed instruction is the record's own, else ``default_instruction``; the
``paraphrase_instructions`` step then picks one wording per example. A multi-turn dialogue
becomes one row whose ``messages`` hold every turn and whose Alpaca columns hold the last
exchange (``input``: the patient's last message, with the earlier turns as context).

>>> turns = split_transcript("Patient:\\nI have a cough.\\nDoctor:\\nSince when?\\n"
...                          "Patient:\\nA week.")
>>> [(t["role"], t["content"]) for t in turns]
[('user', 'I have a cough.'), ('assistant', 'Since when?'), ('user', 'A week.')]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from pmc_data.registry import ReadResult, StepArgs, Unit, register_reader
from pmc_data.sources.files import FileReader
from pmc_data.sources.qa import load_records
from pmc_data.synth.formats import InstructionRows, Template

DEFAULT_INSTRUCTION = (
    "If you are a doctor, please answer the medical questions based on the patient's description."
)
_PATIENT = {"patient", "user", "human", "client", "questioner"}
_DOCTOR = {"doctor", "assistant", "gpt", "physician", "bot", "chatdoctor"}
_SPEAKER = re.compile(r"^(patient|doctor)\s*[:：]\s*", re.IGNORECASE | re.M)
_TURN_KEYS = ("messages", "dialogue", "utterances", "turns", "conversations")


class DialogueArgs(StepArgs):
    source: str | None = None
    #: SPDX id of the rows (ChatDoctor's data is Apache-2.0; say what yours is).
    license: str = "LicenseRef-unknown"
    default_instruction: str = DEFAULT_INSTRUCTION
    #: Dialogues with fewer doctor turns than this are dropped as ``no_doctor_reply``.
    min_doctor_turns: int = 1


def split_transcript(text: str) -> list[dict]:
    """``Patient:`` / ``Doctor:`` blocks of a transcript as chat turns."""
    parts = _SPEAKER.split(text)
    turns = []
    for speaker, content in zip(parts[1::2], parts[2::2], strict=True):
        content = " ".join(content.split())
        if content:
            role = "user" if speaker.lower() == "patient" else "assistant"
            turns.append({"role": role, "content": content})
    return turns


def _turns(record: dict) -> list[dict] | None:
    for key in _TURN_KEYS:
        if isinstance(record.get(key), list):
            turns = []
            for turn in record[key]:
                if not isinstance(turn, dict):
                    return None
                speaker = str(turn.get("role") or turn.get("speaker") or turn.get("from") or "")
                content = turn.get("content") or turn.get("text") or turn.get("utterance")
                content = turn.get("value") if content is None else content
                if speaker.lower() == "system":
                    continue  # an instruction, not a turn
                if speaker.lower() in _PATIENT:
                    role = "user"
                elif speaker.lower() in _DOCTOR:
                    role = "assistant"
                else:
                    return None
                if isinstance(content, str) and content.strip():
                    turns.append({"role": role, "content": " ".join(content.split())})
            return turns
    return None


def meddialog_records(text: str) -> list[tuple[str, dict]]:
    """``(member, record)`` pairs of a MedDialog text file (``id=N`` ... ``Dialogue`` ...)."""
    records = []
    for block in re.split(r"^id\s*=\s*", text, flags=re.M)[1:]:
        key, _, body = block.partition("\n")
        dialogue = body.split("Dialogue", 1)[-1]
        records.append((f"id={key.strip()}", {"id": key.strip(), "transcript": dialogue}))
    return records


@register_reader
class DialogueReader(FileReader):
    """Doctor-patient dialogue files to conversation rows (see the module docstring)."""

    name = "dialogues"
    Args = DialogueArgs
    suffixes = (".json", ".jsonl", ".json.gz", ".jsonl.gz", ".parquet", ".txt")

    def read(self, unit: Unit) -> Iterator[ReadResult]:
        rows, errors = InstructionRows(), []
        path = Path(unit.path)
        source = self.args.source or self.input_name

        def reject(reason: str, member: str, record: object, detail: str | None = None) -> None:
            errors.append({
                "reason": reason, "detail": detail, "id": None, "input_file": unit.display,
                "input_member": member, "record": json.dumps(record, default=str)[:100_000],
            })  # fmt: skip

        try:
            if path.suffix == ".txt":
                records = meddialog_records(path.read_text(encoding="utf-8"))
            else:
                records = load_records(path)
        except (ValueError, OSError, EOFError) as exc:
            reject("corrupt_input", unit.display, "", f"{type(exc).__name__}: {exc}")
            yield ReadResult(rows.table(), errors, 1)
            return
        for member, record in records:
            if not isinstance(record, dict):
                reject("not_an_object", member, record)
                continue
            instruction = str(record.get("instruction") or self.args.default_instruction).strip()
            if "transcript" in record:
                turns = split_transcript(str(record["transcript"]))
            elif (found := _turns(record)) is not None:
                turns = found
            elif isinstance(record.get("input"), str) and isinstance(record.get("output"), str):
                said = {"user": record["input"], "assistant": record["output"]}
                turns = [{"role": role, "content": " ".join(text.split())}
                         for role, text in said.items() if text.strip()]  # fmt: skip
            else:
                reject("not_a_dialogue", member, record, "no turns and no input/output")
                continue
            while turns and turns[-1]["role"] != "assistant":
                turns.pop()  # a patient message nobody answered teaches nothing
            if sum(t["role"] == "assistant" for t in turns) < self.args.min_doctor_turns or not any(
                t["role"] == "user" for t in turns
            ):
                reject("no_doctor_reply", member, record)
                continue
            # the file is part of the id: dialogue sets reuse ids across files
            item_id = f"{path.name}:{record['id']}" if record.get("id") else f"{path.name}:{member}"
            last_user = max(i for i, t in enumerate(turns) if t["role"] == "user")
            earlier = "\n".join(
                f"{'Patient' if t['role'] == 'user' else 'Doctor'}: {t['content']}"
                for t in turns[:last_user]
            )
            input_ = turns[last_user]["content"]
            if earlier:
                input_ = f"{earlier}\nPatient: {input_}"
            output = "\n".join(t["content"] for t in turns[last_user + 1 :])
            rows.add(
                id=f"{source}:{item_id}",
                source=source,
                task="conversation",
                instruction=instruction,
                input=input_,
                output=output,
                license=self.args.license,
                template=Template("seed", instruction),
                seed=0,
                source_item_id=item_id,
                input_file=unit.display,
                input_member=member,
            )
            # every turn in the chat form, the instruction as the system message
            rows.rows[-1]["messages"] = [{"role": "system", "content": instruction}, *turns]
        yield ReadResult(rows.table(), errors, len(records))
