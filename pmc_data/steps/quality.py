"""Quality filters calibrated on scientific text.

Web-text heuristics (Gopher, C4) drop what papers are full of: numbers, parentheses, brackets,
units, Greek letters and formula placeholders. These thresholds were set on papers instead
(the eLife articles in the shared fixtures and the project's own samples pass with room to
spare); each rule is an option and each drop has its own reason:

- ``not_english``: too few English function words (a tested heuristic: no model download),
  or mostly non-Latin letters;
- ``too_few_letters``: letters are less than ``min_alpha_ratio`` of the non-space characters
  (tables of numbers, sequence dumps);
- ``too_many_symbols``: math, currency and other symbol characters above
  ``max_symbol_ratio`` (extraction garbage, encoded formulae);
- ``repeated_lines``: more than ``max_repeated_line_ratio`` of the non-trivial lines are
  repeats (headers, boilerplate, broken extraction).

>>> QualityFilter().check("Der Patient erhielt eine Therapie, und die Werte wurden über "
...                       "den gesamten Zeitraum der Studie täglich gemessen und verglichen.")
'not_english'
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from pydantic import Field

from pmc_data.registry import StepArgs, TextFilter, register_step

#: English function words: frequent in any English prose, scientific included.
ENGLISH = frozenset(
    "the of and in to a is was were with for that by on as are at from be this these an or "  # noqa: SIM905
    "which not but we it than have has had been their its between after both all also more "
    "most other such into during there can may our".split()
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


class QualityFilterArgs(StepArgs):
    #: Share of words that must be English function words; scientific English is about
    #: 0.25-0.40, German, French or Spanish text under 0.05.
    min_english_ratio: float | None = Field(0.12, ge=0, le=1)
    min_alpha_ratio: float | None = Field(0.5, ge=0, le=1)
    max_symbol_ratio: float | None = Field(0.1, ge=0, le=1)
    max_repeated_line_ratio: float | None = Field(0.3, ge=0, le=1)
    #: Texts with fewer visible characters are not judged (the length filter's job).
    min_chars_to_judge: int = 100


@register_step
class QualityFilter(TextFilter):
    """Language, letter, symbol and repetition checks for scientific text."""

    name = "quality_filter"
    Args = QualityFilterArgs

    def check(self, text: str) -> str | None:
        args = self.args
        visible = [c for c in text if not c.isspace()]
        if len(visible) < args.min_chars_to_judge:
            return None
        words = _WORD.findall(text) or [""]
        if args.min_english_ratio is not None:
            english = sum(w.lower() in ENGLISH for w in words) / len(words)
            latin = sum(w.isascii() for w in words) / len(words)
            if english < args.min_english_ratio or latin < 0.5:
                return "not_english"
        if args.max_symbol_ratio is not None:
            symbols = sum(unicodedata.category(c).startswith("S") for c in visible)
            if symbols / len(visible) > args.max_symbol_ratio:
                return "too_many_symbols"
        letters = sum(c.isalpha() for c in visible) / len(visible)
        if args.min_alpha_ratio is not None and letters < args.min_alpha_ratio:
            return "too_few_letters"
        if args.max_repeated_line_ratio is not None:
            lines = [line.strip() for line in text.split("\n") if len(line.strip()) > 20]
            if len(lines) >= 5:
                repeats = sum(n - 1 for n in Counter(lines).values())
                if repeats / len(lines) > args.max_repeated_line_ratio:
                    return "repeated_lines"
        return None
