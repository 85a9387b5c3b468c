"""Typesetting a textbook into a PDF whose every page is known: for the demo, tests and benchmarks.

The books pipeline is only as trustworthy as the PDFs it is proven on, so this module sets a
book the way publishers do, with everything the cleaning must remove: a title page, a
copyright page, a contents page with dotted leaders, running headers (the book title on even
pages, the chapter on odd ones), page numbers, figure captions, words hyphenated at line ends,
an index, optionally a two-column chapter and pages replaced by a scan of themselves (an image
with no text layer). :func:`typeset` returns a :class:`Layout` saying what body text went on
each page, which tests compare with what extraction gives back.

>>> book = Book("Clinical Microbiology", [Chapter("The Cell", ["Cells are the units of life."])])
>>> layout = typeset(book)
>>> [p.kind for p in layout.pages]
['title', 'copyright', 'contents', 'body', 'index']
>>> layout.chapter_text(0)
'Cells are the units of life.'
"""

from __future__ import annotations

import argparse
import csv
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf

WIDTH, HEIGHT = 432.0, 648.0  # 6 x 9 inches, a common textbook trim
MARGIN = 54.0
BODY_SIZE, LEADING = 10.0, 13.0
FONT, BOLD = "helv", "hebo"


@dataclass
class Chapter:
    title: str
    #: Paragraphs of body text; a paragraph starting "Figure N.N" or "Table N" is set as a
    #: caption under a grey box (and is not body text).
    paragraphs: list[str]


@dataclass
class Book:
    title: str
    chapters: list[Chapter]
    authors: str = "A. Author, MD and B. Writer, PhD"
    index_terms: list[str] = field(default_factory=list)


@dataclass
class PageRecord:
    """What was set on one page: its kind, chapter (index or ``None``) and body paragraphs."""

    number: int
    kind: str
    chapter: int | None = None
    paragraphs: list[str] = field(default_factory=list)
    scanned: bool = False

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


@dataclass
class Layout:
    pdf: bytes
    pages: list[PageRecord]
    chapter_pages: list[tuple[int, int]]

    def chapter_text(self, index: int) -> str:
        """The chapter's body text as set (captions excluded), paragraphs joined."""
        paragraphs: list[str] = []
        for page in self.pages:
            if page.chapter != index:
                continue
            for paragraph in page.paragraphs:
                if paragraphs and paragraphs[-1].endswith("\u2029"):  # continued from last page
                    head = paragraphs[-1][:-1]
                    if head.endswith("-") and head[-2:-1].isalpha():  # a word broken overleaf
                        paragraphs[-1] = head[:-1] + paragraph
                    else:
                        paragraphs[-1] = f"{head} {paragraph}"
                else:
                    paragraphs.append(paragraph)
        return "\n\n".join(p.rstrip("\u2029") for p in paragraphs)


_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                        "\u2013": "-", "\u2014": "-", "\u2026": "..."})  # fmt: skip


def printable(text: str) -> str:
    """``text`` in the characters the PDF's base-14 fonts show (Latin-1; quotes made plain)."""
    text = " ".join(unicodedata.normalize("NFKC", text).translate(_PLAIN).split())
    return text.encode("latin-1", "replace").decode("latin-1")


def is_caption(paragraph: str) -> bool:
    head = paragraph.split(" ", 2)
    return len(head) > 1 and head[0] in ("Figure", "Table") and head[1][:1].isdigit()


class _Setter:
    def __init__(self, book: Book, two_column: set[int]) -> None:
        self.book = book
        self.two_column = two_column
        self.doc = pymupdf.open()
        self.records: list[PageRecord] = []

    def new_page(self, kind: str, chapter: int | None = None) -> pymupdf.Page:
        page = self.doc.new_page(width=WIDTH, height=HEIGHT)
        self.records.append(PageRecord(page.number + 1, kind, chapter))
        return page

    def furniture(self, page: pymupdf.Page, chapter: int | None, opening: bool) -> None:
        number = page.number + 1
        if not opening:
            header = (
                self.book.title
                if number % 2 == 0
                else f"Chapter {chapter + 1}  {self.book.chapters[chapter].title}"
                if chapter is not None
                else "Index"
            )
            x = MARGIN if number % 2 == 0 else WIDTH - MARGIN - _width(header, 8)
            page.insert_text((x, MARGIN - 20), printable(header), fontname=FONT, fontsize=8)
        label = str(number)
        page.insert_text(((WIDTH - _width(label, 9)) / 2, HEIGHT - MARGIN + 24), label,
                         fontname=FONT, fontsize=9)  # fmt: skip

    def chapter(self, index: int) -> None:
        chapter = self.book.chapters[index]
        page = self.new_page("body", index)
        self.furniture(page, index, opening=True)
        title = printable(f"Chapter {index + 1}  {chapter.title}")
        page.insert_text((MARGIN, MARGIN + 24), title, fontname=BOLD, fontsize=18)
        columns = 2 if index in self.two_column else 1
        gap = 18.0
        width = (WIDTH - 2 * MARGIN - gap * (columns - 1)) / columns
        column, y = 0, MARGIN + 60

        def advance() -> None:
            nonlocal page, column, y
            column += 1
            if column == columns:
                page = self.new_page("body", index)
                self.furniture(page, index, opening=False)
                column = 0
            y = MARGIN

        for paragraph in chapter.paragraphs:
            paragraph = printable(paragraph)
            caption = is_caption(paragraph)
            if caption:  # a figure: a grey box, then its caption in smaller type
                if y + 64 + 11.0 * len(_break_lines(paragraph, width, 8.5)) > HEIGHT - MARGIN:
                    advance()
                x0 = MARGIN + column * (width + gap)
                page.draw_rect(pymupdf.Rect(x0, y, x0 + width, y + 50), color=None, fill=(0.8,) * 3)
                y += 64
            size, leading = (8.5, 11.0) if caption else (BODY_SIZE, LEADING)
            lines = _break_lines(paragraph, width, size)
            if caption and y + leading * len(lines) > HEIGHT - MARGIN:
                advance()  # a caption is never split across columns or pages
            record = self.records[-1]
            if not caption:
                record.paragraphs.append("")
            for line in lines:
                if y + leading > HEIGHT - MARGIN:
                    advance()
                    if not caption:
                        self.records[-1].paragraphs.append("")
                        record.paragraphs[-1] += "\u2029"  # the paragraph goes on overleaf
                        record = self.records[-1]
                x0 = MARGIN + column * (width + gap)
                page.insert_text((x0, y + size), line, fontname=FONT, fontsize=size)
                if not caption:
                    record.paragraphs[-1] = _append_line(record.paragraphs[-1], line)
                y += leading
            y += leading * 0.8

    def front_matter(self) -> None:
        page = self.new_page("title")
        page.insert_text((MARGIN, 200), printable(self.book.title), fontname=BOLD, fontsize=24)
        page.insert_text((MARGIN, 240), printable(self.book.authors), fontname=FONT, fontsize=12)
        page = self.new_page("copyright")
        notice = [
            f"Copyright (c) 2026 {self.book.authors}. All rights reserved.",
            "ISBN 978-0-00-000000-0",
            "Printed in the pmc-data test suite. First edition.",
        ]
        for i, line in enumerate(notice):
            page.insert_text((MARGIN, 400 + 14 * i), printable(line), fontname=FONT, fontsize=8)

    def contents(self, starts: list[int]) -> None:
        page = self.doc[2]
        page.insert_text((MARGIN, MARGIN + 24), "Contents", fontname=BOLD, fontsize=18)
        for i, (chapter, start) in enumerate(zip(self.book.chapters, starts, strict=True)):
            title = printable(f"{i + 1}  {chapter.title}")
            number = str(start)
            dots = "." * int((WIDTH - 2 * MARGIN - _width(title, 10) - _width(number, 10)) / 3.2)
            line = f"{title} {dots} {number}"
            page.insert_text((MARGIN, MARGIN + 70 + i * 18), line, fontname=FONT, fontsize=10)

    def index(self) -> None:
        terms = sorted(self.book.index_terms, key=str.lower) or ["cell, 4"]
        page = self.new_page("index")
        page.insert_text((MARGIN, MARGIN + 24), "Index", fontname=BOLD, fontsize=18)
        y = MARGIN + 60
        for term in terms:
            if y + LEADING > HEIGHT - MARGIN:
                page = self.new_page("index")
                self.furniture(page, None, opening=False)
                y = MARGIN
            page.insert_text((MARGIN, y + 9), printable(term), fontname=FONT, fontsize=9)
            y += 12


def typeset(
    book: Book,
    *,
    two_column: set[int] | None = None,
    scanned: set[int] | None = None,
    outline: bool = True,
    scan_dpi: int = 200,
) -> Layout:
    """Set ``book`` as a PDF. ``two_column``: chapter indices set in two columns; ``scanned``:
    page numbers (1-based) replaced by an image of themselves; ``outline``: PDF bookmarks."""
    setter = _Setter(book, two_column or set())
    setter.front_matter()
    setter.new_page("contents")
    starts = []
    for index in range(len(book.chapters)):
        starts.append(len(setter.records) + 1)
        setter.chapter(index)
    setter.index()
    setter.contents(starts)
    doc = setter.doc
    if outline:
        toc = [[1, "Contents", 3]] + [
            [1, printable(c.title), start] for c, start in zip(book.chapters, starts, strict=True)
        ]
        doc.set_toc(
            [*toc, [1, "Index", starts[-1] + _pages_of(setter.records, len(book.chapters) - 1)]]
        )
    doc.set_metadata({"title": book.title, "author": book.authors})
    for number in sorted(scanned or ()):
        _rasterise(doc, number - 1, scan_dpi)
        setter.records[number - 1].scanned = True
    pdf = doc.tobytes(garbage=3, deflate=True)
    ends = [s - 1 for s in starts[1:]] + [
        starts[-1] + _pages_of(setter.records, len(starts) - 1) - 1
    ]
    return Layout(pdf, setter.records, list(zip(starts, ends, strict=True)))


def _pages_of(records: list[PageRecord], chapter: int) -> int:
    return sum(r.chapter == chapter and r.kind == "body" for r in records)


def _rasterise(doc: pymupdf.Document, index: int, dpi: int) -> None:
    """Replace page ``index`` by a picture of itself: a scanned page with no text layer."""
    pixmap = doc[index].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    doc.delete_page(index)
    page = doc.new_page(index, width=WIDTH, height=HEIGHT)
    page.insert_image(page.rect, pixmap=pixmap)


def _width(text: str, size: float, font: str = FONT) -> float:
    return pymupdf.get_text_length(printable(text), fontname=font, fontsize=size)


def _break_lines(text: str, width: float, size: float) -> list[str]:
    """Greedy line breaking; a long word that does not fit is hyphenated, as typesetters do."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if _width(candidate, size) <= width:
            line = candidate
            continue
        head = _hyphenate(word, width - _width(f"{line} ", size), size) if line else None
        if head:
            lines.append(f"{line} {head}-")
            line = word[len(head) :]
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def _hyphenate(word: str, room: float, size: float) -> str | None:
    """The longest head of a long lowercase word that fits in ``room`` with a hyphen."""
    if len(word) < 8 or not word.isalpha() or not word.islower():
        return None
    for cut in range(len(word) - 3, 2, -1):
        if _width(word[:cut] + "-", size) <= room:
            return word[:cut]
    return None


def _append_line(paragraph: str, line: str) -> str:
    """Body text as a reader should get it back: hyphenated breaks joined, lines re-flowed."""
    if paragraph.endswith("-") and paragraph[-2:-1].isalpha():
        return paragraph[:-1] + line
    return f"{paragraph} {line}" if paragraph else line


def load_book(path: str | Path) -> tuple[Book, dict]:
    """A :class:`Book` from JSON (``title``, ``authors``, ``chapters`` of ``title`` and
    ``paragraphs``, ``index_terms``), and the JSON's other fields (``license``...)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    chapters = [Chapter(c["title"], c["paragraphs"]) for c in data.pop("chapters")]
    book = Book(data.pop("title"), chapters, data.pop("authors", Book.authors),
                data.pop("index_terms", []))  # fmt: skip
    return book, data


def main(argv: list[str] | None = None) -> None:
    """Typeset a book JSON into ``OUT/<name>.pdf`` with the sidecar ``OUT/books.csv``.

    ``python -m pmc_data.textbook_pdf examples/books/handbook.json build/books_src`` is how
    ``make demo`` makes its textbook; ``--scanned 6`` turns page 6 into an image-only page.
    """
    parser = argparse.ArgumentParser(
        prog="python -m pmc_data.textbook_pdf", description=main.__doc__
    )
    parser.add_argument("book", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--scanned", type=int, nargs="*", default=[], help="pages to rasterise")
    parser.add_argument("--two-column", type=int, nargs="*", default=[], help="chapter numbers")
    args = parser.parse_args(argv)
    book, extra = load_book(args.book)
    layout = typeset(book, scanned=set(args.scanned), two_column={c - 1 for c in args.two_column})
    args.out.mkdir(parents=True, exist_ok=True)
    pdf_path = args.out / f"{args.book.stem}.pdf"
    pdf_path.write_bytes(layout.pdf)
    with open(args.out / "books.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "title", "edition", "isbn", "license", "source"])
        writer.writerow([pdf_path.name, book.title, extra.get("edition", ""), extra.get("isbn", ""),
                         extra.get("license", ""), extra.get("source", "")])  # fmt: skip
    print(f"wrote {pdf_path} ({len(layout.pages)} pages) and {args.out / 'books.csv'}")


if __name__ == "__main__":
    main()
