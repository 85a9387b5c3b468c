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

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from pmc_data.errors import BuildError

if TYPE_CHECKING:
    import pymupdf

#: get_text flags: ligatures expanded and whitespace kept as MuPDF reads it; images skipped
#: (their pixels are never needed to read text, and decoding them is most of the cost).
#: MuPDF leaves out text set outside the page by itself (a test checks it);
#: ``TEXT_MEDIABOX_CLIP`` on top of that costs a tenth of the page's read time.
#: The value of ``pymupdf.TEXT_PRESERVE_WHITESPACE`` (a test checks it): importing PyMuPDF 2
#: loads its layout model and onnxruntime (~110 MiB), so no module the step registry imports
#: may import it at the top.
TEXT_FLAGS = 2

_CID = re.compile(r"\(cid:\d+\)")
# Replacement, private-use, surrogate and control characters: glyphs that mapped to nothing.
_BAD_CHAR = re.compile(
    "[\ufffd\ue000-\uf8ff\U000f0000-\U0010ffff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)
_SANE_WORD = re.compile(r"^[\W_]*[^\W\d_]+(?:[-'’][^\W_]+)*[\W_]*$|^[\W_]*[\d.,:%/–-]+[\W_]*$")
_WIDE_PUNCT = re.compile("[\u3000-\u303f\uff00-\uff0f\uff1a-\uff20]")
# The same, counted in one pass over space-joined words.
_SANE_WORDS = re.compile(
    r"(?<!\S)(?:[^\w\s]*[^\W\d_]+(?:[-'’][^\W_]+)*[^\w\s]*|[^\w\s]*[\d.,:%/–-]+[^\w\s]*)(?!\S)"
)


class OcrUnavailable(BuildError):
    """A page needs OCR and Tesseract cannot run: the message says how to fix it."""


class PageTimeout(Exception):
    """Reading a page took longer than its limit."""


@dataclass(frozen=True)
class OcrOptions:
    """When and how pages are read by OCR.

    ``mode``: ``auto`` (pages whose text layer scores below ``min_quality`` or has fewer than
    ``min_chars`` characters), ``always`` or ``off``. ``engine``: ``tesseract`` runs the
    system's Tesseract on the page rendered by PyMuPDF (word confidences, a hard time limit,
    and the machine's optimised build), ``pymupdf`` uses MuPDF's bundled Tesseract
    (``get_textpage_ocr``; no confidences, about half as fast here).
    """

    mode: str = "auto"
    language: str = "eng"
    dpi: int = 300
    min_chars: int = 40
    min_quality: float = 0.6
    engine: str = "tesseract"
    #: Seconds one page's OCR may take (``None``: no limit); over it, :class:`PageTimeout`.
    timeout_s: float | None = None


@dataclass(slots=True)
class Line:
    text: str
    size: float


@dataclass(slots=True)
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
    #: Tesseract's mean word confidence (0-1, weighted by word length) on OCR pages.
    confidence: float | None = None

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
    words = text.split()
    visible = sum(map(len, words))
    if not visible:
        return 0.0
    bad = len(_BAD_CHAR.findall(text))
    joined = " ".join(words)
    if not joined.isascii():  # CJK runs have no spaces: their punctuation separates words
        joined = _WIDE_PUNCT.sub(" ", joined)
        words = joined.split()
    sane = len(_SANE_WORDS.findall(joined))
    glyph_score = 1.0 - bad / visible
    word_score = sane / len(words)
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


def reading_order(blocks: list[Block], width: float, height: float = 0.0) -> list[Block]:
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
    # A one-line block in the page's top or bottom margin with nothing beside it is
    # furniture set flush left or right (a running header, a page number), not a column.
    columns = [b for b in blocks if side[id(b)] != "span"]
    top = min((b.y0 for b in columns), default=0.0)
    bottom = max((b.y1 for b in columns), default=0.0)
    margin = (height or width * 1.3) * 0.09
    for block in columns:
        edge = (block.y0 <= top and block.y1 < margin) or (
            block.y1 >= bottom and block.y0 > (height or width * 1.3) - margin
        )
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


_INSTALL = (
    "install it (apt-get install tesseract-ocr, or brew install tesseract) or set OCR off "
    "(--set read.0.ocr=off)"
)


@cache
def _tesseract() -> str:
    path = shutil.which("tesseract")
    if path is None:
        raise OcrUnavailable(f"a page needs OCR but Tesseract is not installed: {_INSTALL}")
    return path


@cache
def _tessdata() -> str:
    import pymupdf

    try:
        return pymupdf.get_tessdata()
    except Exception as exc:  # pymupdf raises a bare RuntimeError when it finds none
        raise OcrUnavailable(
            f"a page needs OCR but Tesseract is not installed: {_INSTALL}"
        ) from exc


def ocr_page(page: pymupdf.Page, options: OcrOptions) -> tuple[list[Block], float | None]:
    """Blocks of ``page`` as Tesseract reads them at ``options.dpi``, and its confidence."""
    if options.engine == "pymupdf":
        return _mupdf_ocr(page, options), None
    import pymupdf

    pixmap = page.get_pixmap(dpi=options.dpi, colorspace=pymupdf.csGRAY)
    command = [_tesseract(), "stdin", "stdout", "--dpi", str(options.dpi),
               "-l", options.language, "tsv"]  # fmt: skip
    try:
        done = subprocess.run(
            command,
            # PNG: Tesseract reads it faster than an uncompressed PNM, encoding included
            input=pixmap.tobytes("png"),
            capture_output=True,
            timeout=options.timeout_s,
            # one thread per page: the build's workers are the parallelism
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PageTimeout(f"OCR took over {options.timeout_s} s") from None
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip()
        if "language" in error.lower() or "traineddata" in error:
            raise OcrUnavailable(
                f"Tesseract cannot read language {options.language!r}: install its data "
                f"(apt-get install tesseract-ocr-{options.language}) or set another language"
            )
        raise RuntimeError(f"tesseract failed: {error[-300:]}")
    return _tsv_blocks(done.stdout.decode("utf-8", errors="replace"), 72 / options.dpi)


def _tsv_blocks(tsv: str, scale: float) -> tuple[list[Block], float | None]:
    """Tesseract's TSV words grouped into paragraph blocks of lines, in points."""
    paragraphs: dict[tuple[int, int], dict[int, list[list[str]]]] = {}
    weighted = chars = 0.0
    for row in tsv.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or cells[0] != "5" or not cells[11].strip():
            continue
        block, par, line = int(cells[2]), int(cells[3]), int(cells[4])
        paragraphs.setdefault((block, par), {}).setdefault(line, []).append(cells)
        if (confidence := float(cells[10])) >= 0:
            weighted += confidence * len(cells[11])
            chars += len(cells[11])
    blocks = []
    for lines in paragraphs.values():
        made, boxes = [], []
        for words in lines.values():
            boxes.extend(
                (int(w[6]), int(w[7]), int(w[6]) + int(w[8]), int(w[7]) + int(w[9])) for w in words
            )
            height = max(int(w[9]) for w in words) * scale
            made.append(Line(" ".join(w[11] for w in words), round(height, 1)))
        x0, y0 = min(b[0] for b in boxes) * scale, min(b[1] for b in boxes) * scale
        x1, y1 = max(b[2] for b in boxes) * scale, max(b[3] for b in boxes) * scale
        blocks.append(Block(x0, y0, x1, y1, made))
    return blocks, (round(weighted / chars / 100, 4) if chars else None)


def _mupdf_ocr(page: pymupdf.Page, options: OcrOptions) -> list[Block]:
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


def extract_page(page: pymupdf.Page, options: OcrOptions, sizes: bool = True) -> PageText:
    """The page's text in reading order, read by OCR where the text layer is not good enough.

    ``sizes``: keep each line's font size (for chapters found by heading typography); without
    them the text layer is read about a third faster.
    """
    rect = page.rect
    width = rect.width
    if sizes:
        blocks = _blocks(page.get_text("dict", flags=TEXT_FLAGS))
    else:
        raw = page.get_text("blocks", flags=TEXT_FLAGS)
        blocks = [
            Block(x0, y0, x1, y1, [Line(t.strip(), 0.0) for t in text.split("\n") if t.strip()])
            for x0, y0, x1, y1, text, _, kind in raw
            if kind == 0 and text.strip()
        ]
    blocks = reading_order(blocks, width, rect.height)
    if options.mode == "off":
        return PageText(page.number + 1, blocks, "text", 1.0)
    text = "\n".join(b.text for b in blocks)
    quality = text_quality(text)
    has_images = bool(page.get_images(full=False))
    chars = len(text) - text.count(" ") - text.count("\n")
    needs_ocr = options.mode == "always" or (
        (chars < options.min_chars and has_images) or (chars and quality < options.min_quality)
    )
    if not needs_ocr:
        return PageText(page.number + 1, blocks, "text", quality, has_images)
    blocks, confidence = ocr_page(page, options)
    blocks = reading_order(blocks, width, page.rect.height)
    quality = text_quality("\n".join(b.text for b in blocks))
    return PageText(page.number + 1, blocks, "ocr", quality, has_images, confidence)
