"""Unicode normalisation and whitespace clean-up.

>>> from pmc_data.steps.text import NormalizeText
>>> NormalizeText().transform("Caf\\u0065\\u0301  au\\u00a0lait\\u200b \\r\\n\\n\\n\\nNext ")
'Café au lait\\n\\nNext'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Literal

from pmc_data.registry import StepArgs, TextTransform, register_step

# C0/C1 controls except tab and newline, zero-width characters, byte-order marks and soft
# hyphens: invisible in print, harmful to tokenisers and to exact-duplicate hashing.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200d\u2060\ufeff]")
# Every horizontal space, the Unicode ones (no-break, thin, ideographic...) included.
_SPACES = re.compile("[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_TRAILING = re.compile(" +\n| +$|^ +", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n{3,}")
_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029\x85]")


class NormalizeTextArgs(StepArgs):
    #: Unicode normal form. NFC by default: NFKC would turn "10⁹" into "109" and "m²" into
    #: "m2", which damages measurements in medical text.
    form: Literal["NFC", "NFKC", "NFD", "NFKD", "none"] = "NFC"
    #: Drop control, zero-width and soft-hyphen characters.
    strip_invisible: bool = True
    #: Collapse runs of spaces and tabs (any Unicode space) into one space; trim lines.
    collapse_spaces: bool = True
    #: Keep at most this many empty lines in a row (paragraphs stay apart).
    max_blank_lines: int = 1
    #: Columns to normalise; default: the schema's text column(s).
    columns: list[str] | None = None


@register_step
class NormalizeText(TextTransform):
    """Unicode normal form, invisible characters, spaces, line ends and blank lines."""

    name = "normalize_text"
    Args = NormalizeTextArgs

    def __init__(self, args: NormalizeTextArgs | None = None, schema: str = "medc_k") -> None:
        super().__init__(args, schema)
        blank = self.args.max_blank_lines
        self._blank_lines = re.compile(f"\n{{{blank + 2},}}") if blank >= 0 else _BLANK_LINES
        self._blank_replacement = "\n" * (blank + 1)

    def columns(self) -> Sequence[str]:
        if self.args.columns:
            return self.args.columns
        return ("instruction", "input", "output") if self.schema == "medc_i" else ("text",)

    def transform(self, text: str) -> str:
        args = self.args
        if args.form != "none" and not unicodedata.is_normalized(args.form, text):
            text = unicodedata.normalize(args.form, text)
        text = _NEWLINES.sub("\n", text)
        if args.strip_invisible:
            text = _INVISIBLE.sub("", text)
        if args.collapse_spaces:
            text = _SPACES.sub(" ", text)
            text = _TRAILING.sub(lambda m: "\n" if m.group().endswith("\n") else "", text)
        text = self._blank_lines.sub(self._blank_replacement, text)
        return text.strip()
