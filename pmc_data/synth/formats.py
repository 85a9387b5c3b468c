"""Instruction templates, output formats and MedC-I rows.

Every row records which template made its instruction (``template_id`` and the sha256 of the
template text) and the seed that picked it, so a row can be regenerated exactly. The output
format is the paper's by default:

>>> answer_output("B", "Beta-blockers reduce shear stress.", "paper")
'###Rationale: Beta-blockers reduce shear stress.\\n\\n###Answer: OPTION B IS CORRECT.'
>>> answer_output("B", None, "plain", "Aortic dissection")
'Answer: B. Aortic dissection'
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import pyarrow as pa

from pmc_data.schema import MEDC_I


@dataclass(frozen=True)
class Template:
    id: str
    text: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


#: Instruction wordings per task; one is chosen per item by a seeded RNG.
TEMPLATES: dict[str, list[Template]] = {
    "rationale_qa": [
        Template(
            "rqa.1",
            "Answer the following multiple-choice medical question. Explain your "
            "reasoning first, then state the correct option.",
        ),
        Template(
            "rqa.2",
            "You are a medical expert. Read the question and the options, reason "
            "step by step, and give the correct answer.",
        ),
        Template(
            "rqa.3",
            "Choose the correct answer to this medical exam question and justify your choice.",
        ),
    ],
    "qa_answer": [
        Template(
            "qa.1", "Answer the following multiple-choice medical question with the correct option."
        ),
        Template("qa.2", "Which option correctly answers this medical question?"),
    ],
    "research_qa": [
        Template(
            "pqa.1",
            "Read the abstract and answer the research question with yes, no or "
            "maybe, explaining your reasoning.",
        ),
        Template(
            "pqa.2",
            "Based on the study described, answer the question (yes, no or maybe) "
            "and give the evidence for your answer.",
        ),
    ],
    # Paraphrases of the seed instruction of doctor-patient dialogues (ChatDoctor's), one
    # picked per example: a curated bank, for builds without an LLM.
    "conversation": [
        Template(
            "conv.1",
            "If you are a doctor, please answer the medical questions based on "
            "the patient's description.",
        ),
        Template("conv.2", "Act as a physician and reply to the patient's message below."),
        Template(
            "conv.3",
            "You are a doctor. Read what the patient says and give helpful medical advice.",
        ),
        Template("conv.4", "Respond to this patient as an experienced clinician would."),
        Template(
            "conv.5",
            "As a medical doctor, answer the patient's question based on the "
            "symptoms they describe.",
        ),
        Template("conv.6", "Please give a doctor's answer to the following patient query."),
        Template(
            "conv.7",
            "Imagine you are a general practitioner. Answer the patient's "
            "concerns clearly and kindly.",
        ),
        Template(
            "conv.8",
            "Reply to the patient's description of their problem with a "
            "doctor's assessment and advice.",
        ),
    ],
    "entity_description": [
        Template("kg.def.1", "What is {term}?"),
        Template("kg.def.2", "Give a short definition of {term}."),
        Template("kg.def.3", 'Explain the medical term "{term}".'),
    ],
    "entity_relation": [
        Template("kg.rel.1", "What is the relationship between {a} and {b}?"),
        Template("kg.rel.2", "How is {a} related to {b}?"),
        Template("kg.rel.3", "Describe the relation of {a} to {b} in a medical ontology."),
    ],
}


def choose(task: str, item_id: str, seed: int) -> Template:
    """The template of ``task`` for one item: the same for a given seed, on any machine."""
    options = TEMPLATES[task]
    return options[random.Random(f"{seed}:{task}:{item_id}").randrange(len(options))]


def question_input(question: str, options: dict[str, str], style: str) -> str:
    lines = "\n".join(f"{letter}. {text}" for letter, text in options.items())
    if style == "paper":
        return f"###Question: {question}\n###Options:\n{lines}"
    return f"Question: {question}\nOptions:\n{lines}"


def answer_output(letter: str, rationale: str | None, style: str, option_text: str = "") -> str:
    if style == "paper":
        answer = f"###Answer: OPTION {letter} IS CORRECT."
        return f"###Rationale: {rationale}\n\n{answer}" if rationale else answer
    answer = f"Answer: {letter}. {option_text}".rstrip()
    return f"{rationale}\n\n{answer}" if rationale else answer


class InstructionRows:
    """Collects MedC-I rows (Alpaca columns, chat messages, provenance) into a table."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(
        self,
        *,
        id: str,
        source: str,
        task: str,
        instruction: str,
        input: str,
        output: str,
        license: str,
        template: Template,
        seed: int,
        source_item_id: str,
        input_file: str,
        input_member: str,
    ) -> None:
        prompt = f"{instruction}\n\n{input}" if input else instruction
        self.rows.append(
            {
                "id": id,
                "source": source,
                "task": task,
                "instruction": instruction,
                "input": input,
                "output": output,
                "messages": [
                    {"role": "user", "content": prompt},
                    {"role": "assistant", "content": output},
                ],
                "license": license,
                "provenance": {
                    "source_item_id": source_item_id,
                    "generator_model": None,
                    "generator_revision": None,
                    "template_id": template.id,
                    "template_hash": template.hash,
                    "temperature": None,
                    "top_p": None,
                    "max_new_tokens": None,
                    "seed": seed,
                    "input_file": input_file,
                    "input_member": input_member,
                },
            }
        )

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rows, schema=MEDC_I)
