"""Medical QA sets to MedC-I rows, extractive (no LLM): MedQA-USMLE, MedMCQA, PubMedQA.

- **MedQA-USMLE** JSONL (``question``, ``options`` A-E or A-D, ``answer``, ``answer_idx``,
  ``meta_info``): answer-only rows (``qa_answer``); the gold answer text must match its letter.
- **MedMCQA** (``question``, ``opa``..``opd``, ``cop``, ``exp``, ``choice_type``,
  ``subject_name``, ``topic_name``): ``exp`` is the rationale (``rationale_qa``). The raw
  files number ``cop`` from 1, the Hub copy from 0 with -1 for unlabelled rows: the numbering
  is detected per file (a 0 or -1 means from 0, a 4 means from 1); a file that shows neither
  is refused (``ambiguous_cop_numbering``) unless ``cop_base`` says which.
- **PubMedQA** PQA-L/A/U JSON keyed by PMID (``QUESTION``, ``CONTEXTS``, ``LABELS``,
  ``final_decision``, ``LONG_ANSWER``): options yes / no / maybe, ``LONG_ANSWER`` the
  rationale (``research_qa``); PQA-U has no decision and is refused as ``unlabelled``.

Output format ``paper`` ("###Rationale: ...", "###Answer: OPTION X IS CORRECT.") or ``plain``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pyarrow.parquet as pq

from pmc_data.registry import ReadResult, StepArgs, Unit, register_reader
from pmc_data.sources.files import (
    FileReader,
    open_decompressed,
)
from pmc_data.synth.formats import InstructionRows, answer_output, choose, question_input

#: Licenses the datasets' own repositories state; a recipe may override.
DEFAULT_LICENSES = {"medqa": "MIT", "medmcqa": "MIT", "pubmedqa": "MIT"}
LETTERS = "ABCDE"
PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}


class QaArgs(StepArgs):
    dataset: Literal["auto", "medqa", "medmcqa", "pubmedqa"] = "auto"
    style: Literal["paper", "plain"] = "paper"
    #: Seeds the choice of instruction template per item.
    seed: int = 0
    #: SPDX id of the rows (default: what the dataset's repository states).
    license: str | None = None
    #: MedMCQA ``cop`` numbering: ``auto`` detects it per file, or say 0 or 1.
    cop_base: Literal["auto", 0, 1] = "auto"


def load_records(path: Path) -> list[tuple[str, dict]]:
    """``(member, record)`` pairs from JSONL, a JSON list, a JSON mapping, or Parquet."""
    if path.name.endswith(".parquet"):
        return [(f"row {i}", r) for i, r in enumerate(pq.read_table(path).to_pylist())]
    with open_decompressed(path) as handle:
        data = handle.read()
    stripped = data.lstrip()
    if stripped.startswith(b"{") and b"\n{" not in stripped.strip():
        loaded = json.loads(data)
        if not loaded or not all(isinstance(v, dict) for v in loaded.values()):
            return [("line 1", loaded)]  # one record, not a mapping of records
        # PubMedQA: {pmid: item}; keep the key as the item's id.
        return [(str(k), {"_key": str(k)} | v) for k, v in loaded.items()]
    if stripped.startswith(b"["):
        return [(f"item {i}", r) for i, r in enumerate(json.loads(data))]
    records = []
    for number, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            records.append((f"line {number}", json.loads(line)))
    return records


def detect(record: dict) -> str:
    if "opa" in record and "cop" in record:
        return "medmcqa"
    if "QUESTION" in record or "final_decision" in record:
        return "pubmedqa"
    if "options" in record and "question" in record:
        return "medqa"
    raise ValueError(f"not a MedQA, MedMCQA or PubMedQA record (fields {sorted(record)[:8]})")


def cop_base(records: list[dict]) -> int | None:
    """0 or 1 from the ``cop`` values seen, or None when they cannot tell."""
    values = {r.get("cop") for r in records}
    if values & {0, -1}:
        return 0
    if 4 in values:
        return 1
    return None


@register_reader
class QaExtractiveReader(FileReader):
    """MedQA / MedMCQA / PubMedQA files to instruction rows (see the module docstring)."""

    name = "qa_extractive"
    Args = QaArgs
    suffixes = (".json", ".jsonl", ".json.gz", ".jsonl.gz", ".parquet")

    def read(self, unit: Unit) -> Iterator[ReadResult]:
        rows, errors = InstructionRows(), []

        def reject(reason: str, member: str, record: object, detail: str | None = None) -> None:
            errors.append(
                {
                    "reason": reason,
                    "detail": detail,
                    "id": None,
                    "input_file": unit.display,
                    "input_member": member,
                    "record": json.dumps(record, default=str)[:100_000],
                }
            )

        try:
            records = load_records(Path(unit.path))
        except (ValueError, OSError, EOFError) as exc:
            reject("corrupt_input", unit.display, "", f"{type(exc).__name__}: {exc}")
            yield ReadResult(rows.table(), errors, 1)
            return
        base = None
        medmcqa = [r for _, r in records if isinstance(r, dict) and "cop" in r]
        if medmcqa:
            base = int(self.args.cop_base) if self.args.cop_base != "auto" else cop_base(medmcqa)
        for member, record in records:
            if not isinstance(record, dict):
                reject("not_an_object", member, record)
                continue
            try:
                kind = self.args.dataset if self.args.dataset != "auto" else detect(record)
                reason = getattr(self, f"_{kind}")(rows, record, member, unit, base)
            except (KeyError, TypeError, ValueError) as exc:
                reason = (
                    f"missing_field:{exc.args[0]}"
                    if isinstance(exc, KeyError)
                    else (f"invalid_record: {exc}")
                )
            if reason:
                detail = None
                if reason.startswith("invalid_record: "):
                    reason, detail = "invalid_record", reason.removeprefix("invalid_record: ")
                reject(reason, member, record, detail)
        yield ReadResult(rows.table(), errors, len(records))

    def _row(
        self,
        rows: InstructionRows,
        kind: str,
        task: str,
        item_id: str,
        question: str,
        input_: str,
        output: str,
        unit: Unit,
        member: str,
    ) -> None:
        template = choose(task, f"{kind}:{item_id}", self.args.seed)
        rows.add(
            id=f"{kind}:{item_id}",
            source=kind,
            task=task,
            instruction=template.text,
            input=input_,
            output=output,
            license=self.args.license or DEFAULT_LICENSES[kind],
            template=template,
            seed=self.args.seed,
            source_item_id=item_id,
            input_file=unit.display,
            input_member=member,
        )

    def _medqa(self, rows, record, member, unit, base) -> str | None:
        options = {k: str(v) for k, v in record["options"].items()}
        letter = str(record["answer_idx"]).strip().upper()
        if letter not in options:
            return "answer_not_an_option"
        if "answer" in record and str(record["answer"]).strip() != options[letter].strip():
            return "answer_mismatch"
        item_id = str(record.get("id") or f"{Path(unit.path).name}:{member}")
        style = self.args.style
        self._row(
            rows,
            "medqa",
            "qa_answer",
            item_id,
            record["question"],
            question_input(record["question"], options, style),
            answer_output(letter, None, style, options[letter]),
            unit,
            member,
        )
        return None

    def _medmcqa(self, rows, record, member, unit, base) -> str | None:
        if base is None:
            return "ambiguous_cop_numbering"
        cop = record["cop"]
        if cop is None or cop == -1:
            return "unlabelled"
        index = int(cop) - base
        if not 0 <= index < 4:
            return "invalid_answer"
        options = {
            LETTERS[i]: str(record[key]) for i, key in enumerate(("opa", "opb", "opc", "opd"))
        }
        letter = LETTERS[index]
        rationale = (record.get("exp") or "").strip() or None
        item_id = str(record.get("id") or f"{Path(unit.path).name}:{member}")
        style = self.args.style
        task = "rationale_qa" if rationale else "qa_answer"
        self._row(
            rows,
            "medmcqa",
            task,
            item_id,
            record["question"],
            question_input(record["question"], options, style),
            answer_output(letter, rationale, style, options[letter]),
            unit,
            member,
        )
        return None

    def _pubmedqa(self, rows, record, member, unit, base) -> str | None:
        decision = (record.get("final_decision") or "").strip().lower()
        if not decision:
            return "unlabelled"
        letters = {v: k for k, v in PUBMEDQA_OPTIONS.items()}
        if decision not in letters:
            return "invalid_answer"
        labels = record.get("LABELS") or []
        contexts = record["CONTEXTS"]
        context = "\n".join(
            f"{labels[i].capitalize()}: {c}" if i < len(labels) else c
            for i, c in enumerate(contexts)
        )
        style = self.args.style
        question = record["QUESTION"]
        input_ = f"###Context:\n{context}\n" if style == "paper" else f"Context:\n{context}\n"
        input_ += question_input(question, PUBMEDQA_OPTIONS, style)
        item_id = str(record.get("_key") or record.get("pmid") or member)
        rationale = (record.get("LONG_ANSWER") or "").strip() or None
        letter = letters[decision]
        self._row(
            rows,
            "pubmedqa",
            "research_qa",
            item_id,
            question,
            input_,
            answer_output(letter, rationale, style, decision),
            unit,
            member,
        )
        return None
