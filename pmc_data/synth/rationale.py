"""Rationales for medical QA from an LLM, checked against the gold answer: ``llm_rationale``.

The paper gave ChatGPT each training question with its options and the gold answer and asked
for the reasoning, in two shapes: *general-wise* (one paragraph ending in the answer) and
*option-wise* (one line per option: "Option A is TRUE/FALSE because ..."). This step does the
same on the rows of the ``qa_extractive`` reader, and keeps a rationale only if it agrees:

>>> item = parse_item("###Question: Drug of choice for absence seizures?\\n###Options:\\n"
...                   "A. Ethosuximide\\nB. Phenytoin", "###Answer: OPTION A IS CORRECT.")
>>> item.answer, item.options["B"]
('A', 'Phenytoin')
>>> check_general("Ethosuximide blocks T-type calcium channels. Therefore, the answer is A.", item)
>>> check_general("Phenytoin is first line. Therefore, the answer is B.", item)
'rationale_disagrees'
>>> check_optionwise("Option A is TRUE because it blocks T-type channels.", item)
'rationale_missing_option'

Drops: ``rationale_disagrees``, ``rationale_no_answer``, ``rationale_missing_option``,
``not_a_qa_item``, ``llm_failed:<reason>`` (retries exhausted), ``dry_run``. In a recipe::

    steps:
      - step: llm_rationale
        mode: mixed            # general | option | mixed (option_share of items option-wise)
        llm: {model: meta-llama/Llama-3.1-70B-Instruct, base_url: http://gpu-box:8000/v1}
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from pmc_data.registry import DocumentStep, Dropped, StepArgs, StepOutput, register_step
from pmc_data.synth.formats import Template, answer_output, choose
from pmc_data.synth.llm import LLMArgs, LLMStep

_QUESTION = re.compile(r"^(?:###)?Question:\s*(?P<q>.*?)\n(?:###)?Options:\n(?P<o>.*)$", re.S)
_CONTEXT = re.compile(r"^(?:###)?Context:\n(?P<c>.*?)\n(?=(?:###)?Question:)", re.S)
_OPTION_LINE = re.compile(r"^([A-E])\. (.*)$")
_GOLD = re.compile(r"OPTION ([A-E]) IS CORRECT|^Answer: ([A-E])\.", re.M)
_STATED = re.compile(
    r"answer is:?\s*\**\s*(?:option\s*)?\(?\**([A-E])\b|OPTION ([A-E]) IS CORRECT",
    re.IGNORECASE,
)
# "Option A is TRUE", also numbered, bulleted, bold, or with the option's text in brackets
_VERDICT = re.compile(
    r"^\W*(?:\d+[.)]\s*)?\W*option\s+([A-E])\W*(?:\([^)\n]*\)\W*)?\s*is\s+\**(true|false)\b",
    re.IGNORECASE | re.M,
)

#: Rows this step gives rationales; every other task passes through untouched.
QA_TASKS = frozenset({"qa_answer", "rationale_qa", "research_qa"})
SYSTEM = "You are a medical expert who explains exam answers clearly and accurately."
PROMPTS = {
    "general": Template(
        "gen.general.1",
        "{context}Question: {question}\nOptions:\n{options}\n\nThe correct answer is option "
        "{answer}: {answer_text}.\n\nExplain in one paragraph of medical reasoning why option "
        '{answer} is correct. End with the sentence "Therefore, the answer is {answer}."',
    ),
    "option": Template(
        "gen.option.1",
        "{context}Question: {question}\nOptions:\n{options}\n\nThe correct answer is option "
        "{answer}: {answer_text}.\n\nFor each option from A to {last}, write one line: "
        '"Option X is TRUE because ..." or "Option X is FALSE because ...". Only option '
        "{answer} is TRUE.",
    ),
}


@dataclass
class QaItem:
    question: str
    options: dict[str, str]
    answer: str
    context: str = ""


def parse_item(input_: str, output: str) -> QaItem | None:
    """The question, options, gold letter (and context) of a QA row, or ``None``."""
    context = ""
    if found := _CONTEXT.match(input_):
        context = found.group("c").strip()
        input_ = input_[found.end() :]
    match = _QUESTION.match(input_.strip())
    gold = _GOLD.search(output)
    if not match or not gold:
        return None
    options = {}
    for line in match.group("o").splitlines():
        if option := _OPTION_LINE.match(line.strip()):
            options[option.group(1)] = option.group(2)
    answer = gold.group(1) or gold.group(2)
    if answer not in options:
        return None
    return QaItem(match.group("q").strip(), options, answer, context)


def check_general(text: str, item: QaItem) -> str | None:
    """``None`` if the paragraph's last stated answer is the gold one, else the reason."""
    stated = [a or b for a, b in _STATED.findall(text)]
    if not stated:
        return "rationale_no_answer"
    return None if stated[-1].upper() == item.answer else "rationale_disagrees"


def check_optionwise(text: str, item: QaItem) -> str | None:
    """``None`` if every option has a verdict and only the gold one is TRUE."""
    verdicts: dict[str, set[str]] = {}
    for letter, verdict in _VERDICT.findall(text):
        verdicts.setdefault(letter.upper(), set()).add(verdict.lower())
    if set(item.options) - set(verdicts):
        return "rationale_missing_option"
    for letter, seen in verdicts.items():
        if seen != ({"true"} if letter == item.answer else {"false"}):
            return "rationale_disagrees"
    return None


class RationaleArgs(StepArgs):
    #: ``general`` (a paragraph), ``option`` (a verdict per option), or ``mixed``.
    mode: Literal["general", "option", "mixed"] = "mixed"
    #: In ``mixed`` mode, the share of items (chosen by ``seed``) given option-wise rationales.
    option_share: float = 0.5
    style: Literal["paper", "plain"] = "paper"
    seed: int = 0
    llm: LLMArgs


@register_step
class LlmRationale(LLMStep, DocumentStep):
    """Generates a rationale per QA row with an LLM and keeps it only if it agrees."""

    name = "llm_rationale"
    Args = RationaleArgs

    def __init__(self, args: RationaleArgs | None = None, schema: str = "medc_i") -> None:
        if args is None:
            raise ValueError("llm_rationale needs llm: {model: ...}")
        super().__init__(args, schema)

    def shape(self, row_id: str) -> str:
        if self.args.mode != "mixed":
            return self.args.mode
        draw = random.Random(f"{self.args.seed}:shape:{row_id}").random()
        return "option" if draw < self.args.option_share else "general"

    def apply(self, batch: pa.Table) -> StepOutput:
        rows = batch.to_pylist()
        items = [
            parse_item(r["input"], r["output"]) if r["task"] in QA_TASKS else None for r in rows
        ]
        shapes = [self.shape(r["id"]) for r in rows]
        todo = [i for i, item in enumerate(items) if item is not None]
        passing = {i for i, r in enumerate(rows) if r["task"] not in QA_TASKS}
        chats = [
            [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": prompt(items[i], shapes[i])}]
            for i in todo
        ]  # fmt: skip
        completions = dict(zip(todo, self.llm.complete(chats) if chats else [], strict=True))
        kept, dropped, reasons = [], [], []
        for i, row in enumerate(rows):
            item, completion = items[i], completions.get(i)
            if i in passing:  # conversations, knowledge-graph rows: not this step's business
                kept.append(row)
                continue
            if item is None:
                reason = "not_a_qa_item"
            elif completion.text is not None and completion.finish_reason == "length":
                reason = "rationale_truncated"
            elif completion.text is None:
                reason = (
                    "dry_run" if completion.error == "dry_run" else f"llm_failed:{completion.error}"
                )
            else:
                check = check_optionwise if shapes[i] == "option" else check_general
                reason = check(completion.text, item)
            if reason:
                dropped.append(row)
                reasons.append(reason)
            else:
                kept.append(self.rewrite(row, item, shapes[i], completion.text.strip()))
        out = StepOutput(pa.Table.from_pylist(kept, schema=batch.schema))
        if dropped:
            out.dropped = Dropped(pa.Table.from_pylist(dropped, schema=batch.schema), reasons)
        return out

    def rewrite(self, row: dict, item: QaItem, shape: str, rationale: str) -> dict:
        research = row["task"] == "research_qa"
        task = "research_qa" if research else "rationale_qa"
        instruction = choose(task, row["id"], self.args.seed)
        output = answer_output(item.answer, rationale, self.args.style, item.options[item.answer])
        user = f"{instruction.text}\n\n{row['input']}"
        generator = PROMPTS[shape]
        llm = self.llm.describe()
        return row | {
            "task": task if shape == "general" else f"{task}_optionwise",
            "instruction": instruction.text,
            "output": output,
            "messages": [
                {"role": "user", "content": user},
                {"role": "assistant", "content": output},
            ],
            "provenance": row["provenance"]
            | {
                "generator_model": llm["model"],
                "generator_revision": llm.get("revision"),
                # the instruction's template and the prompt that asked for the rationale
                "template_id": f"{instruction.id}+{generator.id}",
                "template_hash": hashlib.sha256(
                    f"{instruction.text}\n{SYSTEM}\n{generator.text}".encode()
                ).hexdigest()[:16],
                "temperature": self.args.llm.temperature,
                "top_p": self.args.llm.top_p,
                "max_new_tokens": self.args.llm.max_new_tokens,
                "seed": self.args.llm.seed,
            },
        }


def prompt(item: QaItem, shape: str) -> str:
    """The user message asking for one rationale of ``shape`` (``general`` or ``option``)."""
    options = "\n".join(f"{letter}. {text}" for letter, text in item.options.items())
    context = f"Context:\n{item.context}\n\n" if item.context else ""
    return PROMPTS[shape].text.format(
        context=context,
        question=item.question,
        options=options,
        answer=item.answer,
        answer_text=item.options[item.answer],
        last=list(item.options)[-1],
    )
