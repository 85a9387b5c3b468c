"""Conversation rows: instruction paraphrases and PHI masking.

``paraphrase_instructions`` gives each dialogue one wording of its seed instruction, picked
by a seeded RNG from a curated bank (:data:`~pmc_data.synth.formats.TEMPLATES`
``["conversation"]``) or from ``variants`` paraphrases an LLM wrote once per seed instruction
(as the paper did). ``mask_phi`` masks what identifies a person in dialogue text and counts
each kind:

>>> MaskPhi().mask("Mail jo.doe@mail.com or call (555) 123-4567, MRN 00482913.")[0]
'Mail [EMAIL] or call [PHONE], MRN [ID].'
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from typing import Literal

import pyarrow as pa
from pydantic import field_validator

from pmc_data.registry import DocumentStep, Dropped, StepArgs, StepOutput, register_step
from pmc_data.steps.papers import _EMAIL, _URL, URL_NEEDLES
from pmc_data.synth.formats import TEMPLATES
from pmc_data.synth.llm import LLMArgs, LLMStep

# Phone numbers, first pass: 9+ digits in the groups North American style numbers are
# written in, also the fictional ones ("(555) 123-4567") that libphonenumber calls invalid;
# doses ("500 mg"), blood pressures ("120/80") and dates have too few digits or other
# separators, and a group that runs on into another one ("150 000-450 000/uL") is a number
# range, not a phone.
_PHONE = re.compile(
    r"(?<![\w/])(?<!\d\s)(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)\s?|\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}"
    r"(?![\w/])(?!\s\d)"
)
# Second pass, libphonenumber's: any text with 8+ digits in a row or in phone-like groups.
_MAYBE_PHONE = re.compile(r"\d(?:[\s().+-]{0,2}\d){7,}")
_LABELLED_ID = re.compile(
    r"\b(?P<label>MRN|UHID|NHS(?: number)?|(?:medical )?record(?: number| no\.?| #)?|"
    r"patient id|hospital (?:number|no\.?))(?P<sep>\s*[:#]?\s*)"
    r"[A-Z]{0,3}\d(?:[\dA-Z-]| (?=\d)){4,}",
    re.IGNORECASE,
)
_LONG_NUMBER = re.compile(r"(?<![\w.,/])\d{7,}(?![\w.,/])")

PARAPHRASE_PROMPT = (
    "Rewrite the following instruction in {n} different ways. Keep its meaning and keep each "
    "one a single sentence. Answer with a numbered list, one per line.\n\nInstruction: {text}"
)
_NUMBERED = re.compile(r"^\s*\d{1,2}[.)]\s*(.+?)\s*$", re.M)


class MaskPhiArgs(StepArgs):
    emails: bool = True
    phones: bool = True
    #: Record numbers ("MRN 00482913") and bare numbers of 7 or more digits.
    ids: bool = True
    urls: bool = True
    #: Where numbers written without a country code are read as phone numbers (by
    #: libphonenumber's rules for each region: "07700 900123" in GB, "98765 43210" in IN);
    #: numbers with "+" and a country code are found whatever the list. HealthCareMagic and
    #: iCliniq patients write mostly from these three.
    phone_regions: list[str] = ["US", "GB", "IN"]

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: list[str]) -> list[str]:
        import phonenumbers

        unknown = [r for r in regions if r.upper() not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown region(s) {unknown}: use ISO 3166 codes such as US, GB, IN")
        return [r.upper() for r in regions]


@register_step
class MaskPhi(DocumentStep):
    """Masks e-mails, phone numbers, record ids and URLs in instruction rows, with counts."""

    name = "mask_phi"
    Args = MaskPhiArgs

    def __init__(self, args: MaskPhiArgs | None = None, schema: str = "medc_i") -> None:
        super().__init__(args, schema)
        self.counts: Counter[str] = Counter()

    def mask(self, text: str) -> tuple[str, Counter[str]]:
        """``text`` with PHI replaced by ``[EMAIL]``, ``[URL]``, ``[ID]``, ``[PHONE]``."""
        found: Counter[str] = Counter()
        a = self.args

        def sub(pattern: re.Pattern, kind: str, replacement, text: str) -> str:
            text, n = pattern.subn(replacement, text)
            found[kind] += n
            return text

        if a.emails and "@" in text:
            text = sub(_EMAIL, "email", "[EMAIL]", text)
        if a.urls and any(needle in text for needle in URL_NEEDLES):
            text = sub(_URL, "url", "[URL]", text)
        if a.ids:
            text = sub(_LABELLED_ID, "id", lambda m: f"{m['label']}{m['sep']}[ID]", text)
        if a.phones:
            text = sub(_PHONE, "phone", "[PHONE]", text)
            if _MAYBE_PHONE.search(text):
                text, n = _mask_phones(text, a.phone_regions)
                found["phone"] += n
        if a.ids:
            text = sub(_LONG_NUMBER, "id", "[ID]", text)
        return text, +found

    def apply(self, batch: pa.Table) -> StepOutput:
        rows = batch.to_pylist()
        for row in rows:
            for column in ("instruction", "input", "output"):
                row[column], found = self.mask(row[column] or "")
                self.counts.update(found)
            for message in row["messages"] or []:
                # the chat form repeats the Alpaca columns: masked, but counted once
                message["content"] = self.mask(message["content"] or "")[0]
        return StepOutput(pa.Table.from_pylist(rows, schema=batch.schema))

    def take_report(self) -> dict:
        report = {"masked": dict(sorted(self.counts.items()))} if self.counts else {}
        self.counts = Counter()
        return report


def _mask_phones(text: str, regions: list[str]) -> tuple[str, int]:
    """``text`` with every number libphonenumber finds valid in any of ``regions`` masked."""
    from phonenumbers import Leniency, PhoneNumberMatcher

    spans: list[tuple[int, int]] = []
    for region in regions:
        spans += [(m.start, m.end) for m in PhoneNumberMatcher(text, region, Leniency.VALID)]
    if not spans:
        return text, 0
    merged: list[list[int]] = []
    for start, end in sorted(spans):  # one number found under two regions is masked once
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        text = text[:start] + "[PHONE]" + text[end:]
    return text, len(merged)


class ParaphraseArgs(StepArgs):
    #: ``bank``: the curated paraphrases; ``llm``: ``variants`` written by ``llm`` per seed.
    variants_from: Literal["bank", "llm"] = "bank"
    variants: int = 8
    #: Also keep the seed instruction itself among the LLM's variants.
    keep_seed: bool = True
    seed: int = 0
    llm: LLMArgs | None = None


@register_step
class ParaphraseInstructions(LLMStep, DocumentStep):
    """Gives each conversation row one paraphrase of its instruction (seeded choice)."""

    name = "paraphrase_instructions"
    Args = ParaphraseArgs

    def __init__(self, args: ParaphraseArgs | None = None, schema: str = "medc_i") -> None:
        super().__init__(args, schema)
        if self.args.variants_from == "llm" and self.args.llm is None:
            raise ValueError("variants_from: llm needs llm: {model: ...}")

    def variants(self, seeds: list[str]) -> dict[str, list[tuple[str, str]] | str]:
        """Seed instruction -> ``[(template id, text)]``, or the reason there are none."""
        if self.args.variants_from == "bank":
            bank = [(t.id, t.text) for t in TEMPLATES["conversation"]]
            return dict.fromkeys(seeds, bank)
        n = self.args.variants
        chats = [[{"role": "user", "content": PARAPHRASE_PROMPT.format(n=n, text=s)}]
                 for s in seeds]  # fmt: skip
        found: dict[str, list[tuple[str, str]] | str] = {}
        for seed, completion in zip(seeds, self.llm.complete(chats), strict=True):
            if completion.text is None:
                found[seed] = (
                    "dry_run"
                    if completion.error == "dry_run"
                    else (f"llm_failed:{completion.error}")
                )
                continue
            texts = list(dict.fromkeys(m.strip("\"' ") for m in _NUMBERED.findall(completion.text)))
            texts = [t for t in texts if t][:n]
            if not texts:
                found[seed] = "paraphrase_unparsed"
                continue
            variants = [("seed", seed)] if self.args.keep_seed else []
            found[seed] = variants + [(f"para.llm.{i + 1}", t) for i, t in enumerate(texts)]
        return found

    def apply(self, batch: pa.Table) -> StepOutput:
        rows = batch.to_pylist()
        seeds = list(dict.fromkeys(r["instruction"] for r in rows if r["task"] == "conversation"))
        variants = self.variants(seeds) if seeds else {}
        kept, dropped, reasons = [], [], []
        for row in rows:
            if row["task"] != "conversation":
                kept.append(row)
                continue
            options = variants[row["instruction"]]
            if isinstance(options, str):
                dropped.append(row)
                reasons.append(options)
                continue
            template_id, text = random.Random(f"{self.args.seed}:para:{row['id']}").choice(options)
            kept.append(self.rewrite(row, template_id, text))
        out = StepOutput(pa.Table.from_pylist(kept, schema=batch.schema))
        if dropped:
            out.dropped = Dropped(pa.Table.from_pylist(dropped, schema=batch.schema), reasons)
        return out

    def rewrite(self, row: dict, template_id: str, text: str) -> dict:
        messages = [dict(m) for m in row["messages"]]
        if messages and messages[0]["role"] == "system":
            messages[0]["content"] = text
        provenance = row["provenance"] | {
            "template_id": template_id,
            "template_hash": hashlib.sha256(text.encode()).hexdigest()[:16],
            "seed": self.args.seed,
        }
        if self.args.variants_from == "llm":
            llm = self.args.llm
            provenance |= {
                "generator_model": llm.model,
                "generator_revision": llm.revision,
                "temperature": llm.temperature,
                "top_p": llm.top_p,
                "max_new_tokens": llm.max_new_tokens,
            }
        return row | {"instruction": text, "messages": messages, "provenance": provenance}
