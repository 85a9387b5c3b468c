"""Presentation MathML as one line of plain text, the way people type formulae.

Scripts become ``_`` and ``^`` (grouped in parentheses when longer than one token),
fractions ``a/b``, roots ``sqrt(x)`` and ``x^(1/3)``, table rows are separated by ``;``;
operators get spaces around them, brackets and commas do not; invisible operators (function
application, invisible times) and annotations are dropped. The JATS reader uses it for
``formulas: text`` when a formula has no TeX.

>>> from lxml import etree
>>> math = etree.fromstring(
...     '<math><mi>E</mi><mo>=</mo><mi>m</mi><msup><mi>c</mi><mn>2</mn></msup></math>')
>>> mathml_text(math)
'E = mc^2'
>>> mathml_text(etree.fromstring(
...     '<math><msub><mi>x</mi><mrow><mi>i</mi><mo>+</mo><mn>1</mn></mrow></msub><mo>=</mo>'
...     '<mfrac><mn>1</mn><msqrt><mi>n</mi></msqrt></mfrac></math>'))
'x_(i + 1) = 1/sqrt(n)'
"""

from __future__ import annotations

import re

from lxml import etree

_TOKENS = {"mi", "mn", "mtext", "ms"}
_SKIPPED = {"annotation", "annotation-xml", "none", "mprescripts", "mphantom", "maligngroup"}
#: Operators written without spaces: brackets, and marks that follow what they apply to.
_OPENING = set("([{\u27e8\u2329\u230a\u2308")
_CLOSING = set(")]}\u27e9\u232a\u230b\u2309")
_POSTFIX = {"!", "%", "'", "\u2032", "\u2033", "\u2034", "\u00b0"}
_SEPARATORS = {",", ";"}
#: Function application, invisible times, invisible separator, invisible plus.
_INVISIBLE = {"\u2061", "\u2062", "\u2063", "\u2064", ""}
_AFTER_OPENING = re.compile(r"([(\[{\u27e8\u2329\u230a\u2308]) +")
_ONE_TOKEN = re.compile(r"(?:[^\W_]|\.)+(?:\([^()]*\))?")
_BEFORE_CLOSING = re.compile(r" +([)\]}\u27e9\u232a\u230b\u2309,;])")


def mathml_text(element: etree._Element) -> str:
    """One line of text for a MathML element (``math`` or any part of it)."""
    text = " ".join(_linear(element).split())
    return _BEFORE_CLOSING.sub(r"\1", _AFTER_OPENING.sub(r"\1", text)).strip()


def _name(element: etree._Element) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _group(text: str) -> str:
    """A script or a fraction's part: in parentheses unless it is one token ("0.5", "n",
    "sqrt(n)")."""
    text = text.strip()
    if len(text) <= 1 or _ONE_TOKEN.fullmatch(text) or _bracketed(text):
        return text
    return f"({text})"


def _bracketed(text: str) -> bool:
    """``(...)`` whose first parenthesis closes at its end: "(a + b)", not "(a)(b)"."""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    for position, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if depth == 0:
            return position == len(text) - 1
    return False


def _scripted(base: str, marks: list[tuple[str, str]]) -> str:
    """``base`` with ``_sub`` / ``^sup`` for the marks that are not empty (an empty accent
    or a lost operator leaves nothing), then a space: "R_nn β_j", not "R_nnβ_j"."""
    out = base.strip()
    for mark, script in marks:
        if script.strip():
            out += f"{mark}{_group(script)}" if out else _group(script)
    return f"{out} " if out else ""


def _linear(element: etree._Element) -> str:
    name = _name(element)
    if name in _SKIPPED or not name:
        return ""
    if name in _TOKENS:
        return "".join(element.itertext())
    if name == "mo":
        op = " ".join("".join(element.itertext()).split())
        if op in _INVISIBLE:
            return ""
        if op in _OPENING or op in _CLOSING or op in _POSTFIX:
            return op
        return f"{op} " if op in _SEPARATORS else f" {op} "
    if name == "mspace":
        return " "
    children = [child for child in element if _name(child)]
    if name == "semantics":  # the presentation; annotations are alternatives to it
        return _linear(children[0]) if children else ""
    parts = [_linear(child) for child in children] + ["", "", ""]
    if name in ("msub", "munder"):
        return _scripted(parts[0], [("_", parts[1])])
    if name in ("msup", "mover"):
        return _scripted(parts[0], [("^", parts[1])])
    if name in ("msubsup", "munderover"):
        return _scripted(parts[0], [("_", parts[1]), ("^", parts[2])])
    if name == "mfrac":
        return f"{_group(parts[0])}/{_group(parts[1])} "
    if name == "msqrt":
        return f"sqrt({''.join(parts)})"
    if name == "mroot":
        if not parts[1].strip():
            return f"sqrt({parts[0]})"
        return f"{_group(parts[0])}^(1/{_group(parts[1])}) "
    if name == "mfenced":
        opening, closing = element.get("open", "("), element.get("close", ")")
        separator = (element.get("separators", ",").strip() or ",")[0]
        return f"{opening}{f'{separator} '.join(p.strip() for p in parts if p.strip())}{closing}"
    if name == "mtable":
        return "; ".join(p.strip() for p in parts if p.strip())
    if name in ("mtr", "mlabeledtr"):  # a labelled row's first cell is its label
        cells = parts[1:] if name == "mlabeledtr" else parts
        return ", ".join(p.strip() for p in cells if p.strip())
    if children and _name(children[0]) == "mo":  # a leading operator is a sign: "-0.3"
        parts[0] = parts[0].strip()
    return "".join(parts)  # math, mrow, mstyle, mpadded, menclose, mtd, merror, ...
