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

import codecs
import re
import string
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
_ASCII = [chr(code) for code in range(128)]
#: ASCII characters by class, as bytes for ``bytes.translate(None, delete)``.
_ASCII_SPACE = "".join(c for c in _ASCII if c.isspace()).encode()
_ASCII_LETTERS = string.ascii_letters.encode()
_ASCII_SYMBOLS = "".join(c for c in _ASCII if unicodedata.category(c).startswith("S")).encode()
_ALL_ASCII = bytes(range(128))


def character_counts(text: str) -> tuple[int, int, int]:
    """``(visible, letters, symbols)``: characters that are not whitespace
    (``str.isspace``), letters (``str.isalpha``) and symbols (Unicode category ``S*``).

    The ASCII part is counted by ``bytes.translate`` in C; only the non-ASCII characters
    (a few per cent of a paper) are looked at, once per distinct character. A Python loop
    over every character took most of a build's time.

    >>> character_counts("p < 0.05 ± 2 µm")
    (10, 3, 2)
    """
    ascii_part = text.encode("ascii", "ignore")
    size = len(ascii_part)
    visible = len(ascii_part.translate(None, _ASCII_SPACE))
    letters = size - len(ascii_part.translate(None, _ASCII_LETTERS))
    symbols = size - len(ascii_part.translate(None, _ASCII_SYMBOLS))
    if size != len(text):
        # UTF-8 less its ASCII bytes is the non-ASCII characters, in C.
        others = text.encode("utf-8", "surrogatepass").translate(None, _ALL_ASCII)
        for char, count in Counter(others.decode("utf-8", "surrogatepass")).items():
            visible += 0 if char.isspace() else count
            letters += count if char.isalpha() else 0
            symbols += count if unicodedata.category(char).startswith("S") else 0
    return visible, letters, symbols


# Words are the runs of _WORD: letters, and other word characters that are not decimal
# digits. Counted on ASCII bytes, with each non-ASCII character encoded as its class
# (by _word_classes): a word character as _OTHER_LETTER, a decimal digit as "0", the rest as
# a space. The bytes are then lower-cased and every non-letter made a space by one
# translate, and split in C.
_OTHER_LETTER = b"\x80"  # never in ASCII text, and in no English function word
_WORD_BYTES = bytes(
    code | 0x20 if chr(code).isascii() and chr(code).isalpha() else 0x80 if code == 0x80 else 32
    for code in range(256)
)
_ENGLISH_BYTES = frozenset(word.encode() for word in ENGLISH)


def _character_class(char: str) -> bytes:
    if _WORD.fullmatch(char):
        return _OTHER_LETTER
    return b"0" if char.isdecimal() else b" "


def _word_classes(error: UnicodeError) -> tuple[bytes, int]:
    """``codecs`` error handler: a run of non-ASCII characters as their classes."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    run = error.object[error.start : error.end]
    return b"".join(map(_character_class, run)), error.end


codecs.register_error("pmc_data.word_classes", _word_classes)


def word_counts(text: str) -> tuple[int, int, int]:
    """``(words, english, ascii)``: how many runs of ``[^\\W\\d_]`` the text has, how
    many of them are English function words (ignoring case), and how many are ASCII;
    the same as counting ``_WORD.findall(text)``, without a Python object per word.

    >>> word_counts("The IL-6 level fell, and Müller's 2nd test was the same.")
    (12, 4, 11)
    """
    coded = text.encode("ascii", "pmc_data.word_classes").translate(_WORD_BYTES)
    words = coded.split()
    english = sum(map(_ENGLISH_BYTES.__contains__, words))
    if _OTHER_LETTER not in coded:
        return len(words), english, len(words)
    # The words holding a non-ASCII word character: one per distinct start of a word.
    starts, at = set(), coded.find(_OTHER_LETTER)
    while at != -1:
        starts.add(coded.rfind(b" ", 0, at))
        at = coded.find(_OTHER_LETTER, at + 1)
    return len(words), english, len(words) - len(starts)


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
        visible, letters, symbols = character_counts(text)
        if visible < args.min_chars_to_judge:
            return None
        if args.min_english_ratio is not None:
            words, english, latin = word_counts(text)
            if not words:  # judged as one empty word, which is ASCII and not English
                words = latin = 1
            if english / words < args.min_english_ratio or latin / words < 0.5:
                return "not_english"
        if args.max_symbol_ratio is not None and symbols / visible > args.max_symbol_ratio:
            return "too_many_symbols"
        if args.min_alpha_ratio is not None and letters / visible < args.min_alpha_ratio:
            return "too_few_letters"
        if args.max_repeated_line_ratio is not None:
            lines = [line.strip() for line in text.split("\n") if len(line.strip()) > 20]
            if len(lines) >= 5:
                repeats = sum(n - 1 for n in Counter(lines).values())
                if repeats / len(lines) > args.max_repeated_line_ratio:
                    return "repeated_lines"
        return None
