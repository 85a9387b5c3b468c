"""Unicode normalisation and whitespace clean-up.

The step runs vectorised in Arrow (RE2 and utf8proc, no Python loop over rows);
:meth:`NormalizeText.transform` is the same rule set for one string:

>>> from pmc_data.steps.text import NormalizeText
>>> NormalizeText().transform("Cafe\\u0301  au\\u00a0lait\\u200b \\r\\n\\n\\n\\nNext ")
'Café au lait\\n\\nNext'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pmc_data.registry import StepArgs, StepOutput, TextTransform, register_step

# Each rule is written once, in the syntax both Python's re and RE2 accept.
# Line separators other than "\n" ("\r\n" is replaced first, as a literal: much faster).
_NEWLINES = r"[\r\x{2028}\x{2029}\x{85}]"
# C0/C1 controls except tab and newline, zero-width characters, byte-order marks and soft
# hyphens: invisible in print, harmful to tokenisers and to exact-duplicate hashing.
_INVISIBLE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\x{ad}\x{200b}-\x{200d}\x{2060}\x{feff}]"
# A run of horizontal space that is not already one plain space: tabs, no-break, thin and
# ideographic spaces, or two or more spaces. (Matching single spaces too would make RE2
# rewrite every word boundary.)
_OTHER_SPACES = r"\t\x{a0}\x{1680}\x{2000}-\x{200a}\x{202f}\x{205f}\x{3000}"
_SPACES = f" *[{_OTHER_SPACES}][ {_OTHER_SPACES}]*| {{2,}}"
_AROUND_NEWLINE = r" *\n *"


def _python(pattern: str) -> re.Pattern:
    """RE2's ``\\x{2028}`` is Python's ``\\u2028``."""
    return re.compile(re.sub(r"\\x\{([0-9a-f]+)\}", lambda m: chr(int(m.group(1), 16)), pattern))


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
    threads = True  # Arrow's regex and normalisation kernels

    def __init__(self, args: NormalizeTextArgs | None = None, schema: str = "medc_k") -> None:
        super().__init__(args, schema)
        keep = max(self.args.max_blank_lines, 0)
        rules = [(_NEWLINES, "\n")]
        if self.args.strip_invisible:
            rules.append((_INVISIBLE, ""))
        if self.args.collapse_spaces:
            rules += [(_SPACES, " "), (_AROUND_NEWLINE, "\n")]
        rules.append((f"\n{{{keep + 2},}}", "\n" * (keep + 1)))
        self.rules = rules
        self._compiled = [(_python(p), r) for p, r in rules]

    def columns(self) -> Sequence[str]:
        if self.args.columns:
            return self.args.columns
        return ("instruction", "input", "output") if self.schema == "medc_i" else ("text",)

    def transform(self, text: str) -> str:
        form = self.args.form
        if form != "none" and not unicodedata.is_normalized(form, text):
            text = unicodedata.normalize(form, text)
        text = text.replace("\r\n", "\n")
        for pattern, replacement in self._compiled:
            text = pattern.sub(replacement, text)
        return text.strip()

    def normalize_array(self, values: pa.ChunkedArray | pa.Array) -> pa.Array:
        """The same rules over a whole Arrow string column."""
        form = self.args.form
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        values = values.cast(pa.string())
        if form != "none":
            # Only non-ASCII strings can change, and most of those are in the form already:
            # Python's quick check finds them ten times faster than utf8proc rewrites them.
            ascii_ = pc.fill_null(pc.string_is_ascii(values), True)
            if not pc.all(ascii_).as_py():
                others = np.flatnonzero(~ascii_.to_numpy(zero_copy_only=False))
                texts = values.take(pa.array(others)).to_pylist()
                changing = [not unicodedata.is_normalized(form, text) for text in texts]
                if any(changing):
                    mask = np.zeros(len(values), dtype=bool)
                    mask[others[np.array(changing)]] = True
                    mask = pa.array(mask)
                    normalised = pc.utf8_normalize(values.filter(mask), form)
                    values = pc.replace_with_mask(values, mask, normalised)
        values = pc.replace_substring(values, "\r\n", "\n")
        for pattern, replacement in self.rules:
            values = pc.replace_substring_regex(values, pattern, replacement)
        return pc.utf8_trim_whitespace(values)

    def apply(self, batch: pa.Table) -> StepOutput:
        for column in self.columns():
            index = batch.schema.get_field_index(column)
            batch = batch.set_column(index, column, self.normalize_array(batch.column(index)))
        return StepOutput(batch)
