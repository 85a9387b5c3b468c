"""What removing citations and references leaves behind, tidied away.

Removing "[3]" or "(Smith et al., 2020; Lee, 2021)" from running text leaves empty brackets,
doubled separators and spaces before punctuation; every remover calls :func:`tidy` after.

>>> tidy("risk fell ( ; ) and rose [ , ] .  Next ,;")
'risk fell and rose. Next;'
"""

from __future__ import annotations

import re

_EMPTY_BRACKETS = re.compile(r"\s*[(\[](?:\s|[,;\u2013\u2014-]|and)*[)\]]")
_DOUBLE_PUNCT = re.compile(r"([,;])\s*([.;,])")
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([.,;:])(?=\s|$)")
_SPACES = re.compile(r"[ \t]{2,}")


def tidy(text: str) -> str:
    """Drop empty brackets and doubled separators; no space before punctuation or doubled."""
    text = _EMPTY_BRACKETS.sub("", text)
    text = _DOUBLE_PUNCT.sub(r"\2", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()
