"""Text of PDF pages in reading order, from the text layer or from OCR, whichever is better.

:func:`extract_page` reads one PyMuPDF page into a :class:`PageText`: its blocks sorted into
reading order (column by column on two-column pages), each line with its font size (the book
reader finds headings by typography), and how it was read. The text layer is scored first
(:func:`text_quality`); a page with too little text or a broken layer (unmapped glyphs such as
``(cid:12)``, private-use code points, garbage words) is read again by Tesseract through
PyMuPDF's ``get_textpage_ocr``.

>>> import pymupdf
>>> doc = pymupdf.open()
>>> page = doc.new_page()
>>> _ = page.insert_text((72, 72), "Bacteria are prokaryotes.", fontsize=11)
>>> extract_page(page, OcrOptions(mode="off")).text
'Bacteria are prokaryotes.'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

import pymupdf

from pmc_data.errors import BuildError

#: get_text flags: ligatures expanded and whitespace kept as MuPDF reads it; images skipped
#: (their pixels are never needed to read text, and decoding them is most of the cost).
TEXT_FLAGS = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP

_CID = re.compile(r"\(cid:\d+\)")
_WORD = re.compile(r"\S+")
_SANE_WORD = re.compile(
    r"^[\W_]*[A-Za-z\u00C0-\u024F]+(?:[-'’][A-Za-z]+)*[\W_]*$|^[\W_]*[\d.,:%/–-]+[\W_]*$"
)


class OcrUnavailable(BuildError):
    """A page needs OCR and Tesseract cannot run: the message says how to fix it."""


@dataclass(frozen=True)
class OcrOptions:
    """When and how pages are read by OCR.

    ``mode``: ``auto`` (pages whose text layer scores below ``min_quality`` or has fewer than
    ``min_chars`` characters), ``always`` or ``off``.
    """

    mode: str = "auto"
    language: str = "eng"
    dpi: int = 300
    min_chars: int = 40
    min_quality: float = 0.6


@dataclass
class Line:
    text: str
    size: float


@dataclass
class Block:
    x0: float
    y0: float
    x1: float
    y1: float
    lines: list[Line]

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@dataclass
class PageText:
    """One page's text and where it came from.

    ``text`` holds blocks separated by blank lines and lines by newlines, so the cleaning steps
    can tell a paragraph from a line break. ``quality`` is :func:`text_quality` of the text read
    (for OCR pages, a measure of how clean the recognised text is; Tesseract's own word
    confidences are not exposed through PyMuPDF).
    """

    number: int
    blocks: list[Block]
    method: str
    quality: float
    has_images: bool = False

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks if b.text.strip())


def text_quality(text: str) -> float:
    """How much of ``text`` looks like real words, from 0 (garbage or empty) to 1.

    Unmapped glyphs (``(cid:12)``), replacement and private-use characters and control
    characters count against it, as do words that are neither letters nor numbers.

    >>> text_quality("The cell membrane is a phospholipid bilayer.")
    1.0
    >>> text_quality("(cid:12)(cid:7)(cid:9) (cid:3)(cid:4)") < 0.2
    True
    """
    cid = len(_CID.findall(text))
    if cid:
        text = _CID.sub("\ufffd", text)
    visible = [c for c in text if not c.isspace()]
    if not visible:
        return 0.0
    bad = sum(c == "\ufffd" or unicodedata.category(c) in ("Co", "Cc", "Cs") for c in visible)
    words = _WORD.findall(text)
    sane = sum(bool(_SANE_WORD.match(w)) for w in words)
    glyph_score = 1.0 - bad / len(visible)
    word_score = sane / len(words) if words else 0.0
    return round(glyph_score * (0.5 + 0.5 * word_score), 4)


def _blocks(textpage_dict: dict) -> list[Block]:
    blocks = []
    for raw in textpage_dict["blocks"]:
        if raw.get("type", 0) != 0:
            continue
        lines = []
        for line in raw["lines"]:
            spans = line["spans"]
            text = "".join(s["text"] for s in spans).strip()
            if text:
                size = max(spans, key=lambda s: len(s["text"].strip()))["size"]
                lines.append(Line(text, round(size, 1)))
        if lines:
            blocks.append(Block(*raw["bbox"], lines))
    return blocks


def reading_order(blocks: list[Block], width: float) -> list[Block]:
    """Blocks in reading order: top to bottom, and on two-column stretches, column by column.

    A block that crosses the page's middle (a title, a full-width paragraph), or that has no
    block beside it on the other half (a running header set flush right), ends a stretch;
    between two such blocks, the left column is read before the right one.
    """
    middle = width / 2
    # Ragged or overhanging lines may cross the middle a little: a block spans only if it
    # reaches well into both halves.
    reach = width * 0.05
    side = {}
    for b in blocks:
        if b.x0 < middle - reach and b.x1 > middle + reach:
            side[id(b)] = "span"
        else:
            side[id(b)] = "left" if (b.x0 + b.x1) / 2 < middle else "right"
    # A one-line block at the very top or bottom with nothing beside it is furniture set
    # flush left or right (a running header, a page number), not a column.
    columns = [b for b in blocks if side[id(b)] != "span"]
    top = min((b.y0 for b in columns), default=0.0)
    bottom = max((b.y1 for b in columns), default=0.0)
    for block in columns:
        edge = block.y0 <= top or block.y1 >= bottom
        if (
            edge
            and len(block.lines) == 1
            and not any(
                side[id(other)] not in ("span", side[id(block)])
                and other.y0 < block.y1
                and block.y0 < other.y1
                for other in columns
            )
        ):
            side[id(block)] = "span"
    ordered: list[Block] = []
    left: list[Block] = []
    right: list[Block] = []

    def flush() -> None:
        ordered.extend(sorted(left, key=lambda b: (b.y0, b.x0)))
        ordered.extend(sorted(right, key=lambda b: (b.y0, b.x0)))
        left.clear()
        right.clear()

    for block in sorted(blocks, key=lambda b: (b.y0, b.x0)):
        if side[id(block)] == "left":
            left.append(block)
        elif side[id(block)] == "right":
            right.append(block)
        else:
            flush()
            ordered.append(block)
    flush()
    return ordered


@cache
def _tessdata() -> str:
    try:
        return pymupdf.get_tessdata()
    except Exception as exc:  # pymupdf raises a bare RuntimeError when it finds none
        raise OcrUnavailable(
            "a page needs OCR but Tesseract is not installed: install it "
            "(apt-get install tesseract-ocr, or brew install tesseract) or set OCR off "
            "(--set read.0.ocr=off)"
        ) from exc


def ocr_page(page: pymupdf.Page, options: OcrOptions) -> list[Block]:
    """Blocks of ``page`` as Tesseract reads them at ``options.dpi``."""
    try:
        textpage = page.get_textpage_ocr(
            language=options.language, dpi=options.dpi, full=True, tessdata=_tessdata()
        )
    except OcrUnavailable:
        raise
    except RuntimeError as exc:
        if "language" in str(exc).lower() or "tessdata" in str(exc).lower():
            raise OcrUnavailable(
                f"Tesseract cannot read language {options.language!r}: install its data "
                f"(apt-get install tesseract-ocr-{options.language}) or set another language"
            ) from exc
        raise
    return _blocks(page.get_text("dict", textpage=textpage, flags=TEXT_FLAGS))


def extract_page(page: pymupdf.Page, options: OcrOptions) -> PageText:
    """The page's text in reading order, read by OCR where the text layer is not good enough."""
    width = page.rect.width
    blocks = reading_order(_blocks(page.get_text("dict", flags=TEXT_FLAGS)), width)
    text = "\n".join(b.text for b in blocks)
    quality = text_quality(text)
    has_images = bool(page.get_images(full=False))
    chars = sum(not c.isspace() for c in text)
    needs_ocr = options.mode == "always" or (
        options.mode == "auto"
        and (
            (chars < options.min_chars and has_images) or (chars and quality < options.min_quality)
        )
    )
    if not needs_ocr:
        return PageText(page.number + 1, blocks, "text", quality, has_images)
    blocks = reading_order(ocr_page(page, options), width)
    quality = text_quality("\n".join(b.text for b in blocks))
    return PageText(page.number + 1, blocks, "ocr", quality, has_images)
