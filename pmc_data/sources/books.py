"""Textbook PDFs to page rows: the ``pdf_books`` reader.

Each PDF is one unit; each page becomes one MedC-K row (``book:<sha1 of file, 12 hex>:p<page>``)
with page-level provenance: the page number in ``metadata.pages``, the method in
``metadata.extraction`` (``text``, or ``ocr:<Tesseract's mean word confidence>``), and the
chapter the page belongs to in ``metadata.sections`` (from the PDF outline, else heading
typography, else fixed page windows). The ``book_*`` steps then clean the pages and
``book_chapters`` joins them into one row per chapter. In a recipe::

    inputs:
      books: {help: folder of textbook PDFs}
      book_meta: {help: "CSV: file,title,edition,isbn,license,source", required: false}
    read:
      - reader: pdf_books
        input: books
        book_meta: book_meta
        license_policy: research

Book metadata comes from the curator's sidecar CSV (``file`` is the PDF's name) and else from
the PDF's own metadata; a book whose license nobody states is ``LicenseRef-unknown`` and the
license policy decides. Bad files are rejects, never crashes: ``encrypted_pdf``,
``corrupt_input``, ``empty_pdf``, ``too_many_pages`` for a book, ``corrupt_page`` and
``page_timeout`` for a page (the rest of the book goes on).
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from pmc_data.licenses import POLICIES, UNKNOWN, allowed, to_spdx
from pmc_data.registry import ReadResult, StepArgs, Unit, register_reader
from pmc_data.schema import MEDC_K
from pmc_data.sources.files import FileReader
from pmc_data.sources.pdf import OcrOptions, OcrUnavailable, PageText, PageTimeout, extract_page

if TYPE_CHECKING:  # imported where a PDF is opened: see pmc_data.sources.pdf.TEXT_FLAGS
    import pymupdf

log = logging.getLogger(__name__)

_SPDX_ID = re.compile(r"[A-Za-z][A-Za-z0-9.+-]*[A-Za-z0-9+]")
SIDECAR_COLUMNS = ("file", "title", "edition", "isbn", "license", "source")


class BooksArgs(StepArgs):
    #: The row ``source`` of every page and chapter (the trainer's mixture reads it).
    source: str = "book"
    #: The recipe input holding the curator's sidecar CSV, if any.
    book_meta: str | None = None
    #: ``commercial``, ``share-alike``, ``research``, a list of SPDX ids / families, or
    #: ``null`` to keep every book. Checked before a page is read, so refused books cost nothing.
    license_policy: str | list[str] | None = "research"
    #: ``auto`` (OCR pages whose text layer is missing or broken), ``always`` or ``off``.
    ocr: str = "auto"
    #: ``tesseract`` (the system's Tesseract on pages PyMuPDF renders: word confidences and a
    #: hard per-page time limit) or ``pymupdf`` (MuPDF's bundled Tesseract, get_textpage_ocr).
    ocr_engine: str = "tesseract"
    ocr_language: str = "eng"
    ocr_dpi: int = 300
    #: A page with fewer visible characters than this, and an image, is scanned: OCR it.
    ocr_min_chars: int = 40
    #: A text layer scoring below this (:func:`~pmc_data.sources.pdf.text_quality`) is OCRed.
    ocr_min_quality: float = 0.6
    #: A PDF claiming more pages than this is refused (a hostile or broken page tree).
    max_pages: int = 5000
    #: A page whose reading takes longer is rejected as ``page_timeout``: OCR by the
    #: ``tesseract`` engine is stopped at the limit; the text layer (MuPDF cannot be
    #: interrupted mid-page) is checked as each page returns.
    page_seconds: float = 60.0
    #: Chapters from ``outline`` (the PDF bookmarks), ``headings`` (lines set at least
    #: ``heading_scale`` times the body font size), ``pages`` (windows of ``chapter_pages``)
    #: or ``auto`` (the first of these that finds at least two chapters).
    chapters: str = "auto"
    heading_scale: float = 1.5
    chapter_pages: int = 20


def read_sidecar(path: str | Path) -> dict[str, dict]:
    """PDF file name -> its row of the curator's CSV (``file,title,edition,isbn,license,source``).

    Raises ``ValueError`` naming the missing columns when the header lacks ``file``.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "file" not in columns:
            raise ValueError(
                f"{Path(path).name}: the book metadata CSV needs a 'file' column "
                f"(columns: {', '.join(SIDECAR_COLUMNS)}); found: {', '.join(columns) or 'none'}"
            )
        rows = {}
        for row in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            if row.get("file"):
                rows[Path(row["file"]).name] = row
        return rows


def chapter_titles(doc: pymupdf.Document, pages: list[PageText], args: BooksArgs) -> list[str]:
    """The chapter title of every page (``""`` before the first chapter)."""
    # windows of pages are the last resort of every strategy: a book always has chapters
    strategies = ["outline", "headings", "pages"] if args.chapters == "auto" else [args.chapters]
    if strategies[-1] != "pages":
        strategies.append("pages")
    count = doc.page_count
    for strategy in strategies:
        starts: dict[int, str] = {}
        if strategy == "outline":
            for level, title, page in doc.get_toc(simple=True):
                if level == 1 and 1 <= page <= count:
                    starts.setdefault(page, title.strip())
        elif strategy == "headings":
            starts = _heading_starts(pages, args.heading_scale)
        else:
            window = max(1, args.chapter_pages)
            starts = {
                p: f"Pages {p}-{min(p + window - 1, count)}" for p in range(1, count + 1, window)
            }
        if len(starts) >= 2 or strategy == "pages":
            titles, current = [], ""
            for number in range(1, count + 1):
                current = starts.get(number, current)
                titles.append(current)
            return titles
    return []


def _heading_starts(pages: list[PageText], scale: float) -> dict[int, str]:
    """Pages that open with a line set much larger than the body text, and that line."""
    sizes: Counter[float] = Counter()
    for page in pages:
        for block in page.blocks:
            for line in block.lines:
                sizes[line.size] += len(line.text)
    if not sizes:
        return {}
    body = sizes.most_common(1)[0][0]
    starts = {}
    for page in pages:
        for block in page.blocks[:3]:
            big = [line.text for line in block.lines if line.size >= body * scale]
            if big:
                starts[page.number] = " ".join(big)
                break
    return starts


@register_reader
class PdfBooks(FileReader):
    """Textbook PDFs, one row per page, read from the text layer or by OCR."""

    name = "pdf_books"
    Args = BooksArgs
    input_args = ("book_meta",)
    suffixes = (".pdf", ".PDF")

    def __init__(self, args: BooksArgs | None, schema: str, input_name: str) -> None:
        super().__init__(args, schema, input_name)
        args = self.args
        if isinstance(args.license_policy, str) and args.license_policy not in POLICIES:
            raise ValueError(
                f"license_policy {args.license_policy!r}: allowed: {', '.join(POLICIES)} or a list"
            )
        if args.ocr not in ("auto", "always", "off"):
            raise ValueError(f"ocr {args.ocr!r}: allowed: auto, always, off")
        if args.chapters not in ("auto", "outline", "headings", "pages"):
            raise ValueError(f"chapters {args.chapters!r}: allowed: auto, outline, headings, pages")
        if args.ocr_engine not in ("tesseract", "pymupdf"):
            raise ValueError(f"ocr_engine {args.ocr_engine!r}: allowed: tesseract, pymupdf")
        self.ocr = OcrOptions(
            args.ocr, args.ocr_language, args.ocr_dpi, args.ocr_min_chars, args.ocr_min_quality,
            args.ocr_engine, args.page_seconds,
        )  # fmt: skip
        self._sidecar: dict[str, dict] | None = None

    def sidecar(self) -> dict[str, dict]:
        if self._sidecar is None:
            path = self.inputs.get(self.args.book_meta) if self.args.book_meta else None
            self._sidecar = read_sidecar(path) if path else {}
        return self._sidecar

    def plan(self, path: str, unit_bytes: int) -> list[Unit]:
        units = super().plan(path, unit_bytes)
        names = {Path(u.path).name for u in units}
        unmatched = sorted(set(self.sidecar()) - names)  # also validates the CSV up front
        if unmatched:
            log.warning("book metadata names %d file(s) not in the input: %s", len(unmatched),
                        ", ".join(unmatched[:5]))  # fmt: skip
        return units

    def read(self, unit: Unit) -> ReadResult:
        data = Path(unit.path).read_bytes()
        book_id = hashlib.sha1(data).hexdigest()[:12]
        rejects: list[dict] = []

        def reject(reason: str, detail: str, page: int | None = None, record: str = "") -> None:
            rejects.append({
                "reason": reason,
                "detail": detail,
                "id": f"book:{book_id}" + (f":p{page}" if page else ""),
                "input_file": unit.display,
                "input_member": f"p{page}" if page else None,
                "record": record,
            })  # fmt: skip

        meta = self.sidecar().get(Path(unit.path).name, {})
        stated = meta.get("license", "")
        license_ = to_spdx(stated) if stated else UNKNOWN
        if license_ == UNKNOWN and _SPDX_ID.fullmatch(stated):
            # a curator's SPDX id (GFDL-1.3, MIT) or own reference (LicenseRef-agreement-7)
            license_ = (
                stated
                if not stated.lower().startswith("licenseref-")
                else ("LicenseRef-" + stated[len("licenseref-") :])
            )
        policy = self.args.license_policy
        if policy is not None and not allowed(license_, policy):
            reject(f"license:{license_}", f"license policy {policy!r}")
            return ReadResult(MEDC_K.empty_table(), rejects, 1)
        import pymupdf

        try:
            doc = pymupdf.open(stream=data, filetype="pdf")
        except Exception as exc:  # MuPDF raises its own FileDataError, or RuntimeError
            reject("corrupt_input", f"not a readable PDF: {exc}")
            return ReadResult(MEDC_K.empty_table(), rejects, 1)
        with doc:
            if doc.needs_pass:
                reject("encrypted_pdf", "the PDF needs a password")
                return ReadResult(MEDC_K.empty_table(), rejects, 1)
            try:
                count = doc.page_count
            except RuntimeError as exc:  # a page tree that lies about its size ("/Count 0")
                reject("corrupt_input", f"unreadable page tree: {exc}")
                return ReadResult(MEDC_K.empty_table(), rejects, 1)
            if count == 0:
                reject("empty_pdf", "the PDF has no pages")
                return ReadResult(MEDC_K.empty_table(), rejects, 1)
            if doc.page_count > self.args.max_pages:
                reject(
                    "too_many_pages", f"{doc.page_count} pages > max_pages {self.args.max_pages}"
                )
                return ReadResult(MEDC_K.empty_table(), rejects, 1)
            # Font sizes are needed only to find chapters by heading typography.
            outline = len({p for level, _, p in doc.get_toc(simple=True) if level == 1 and p > 0})
            sizes = self.args.chapters == "headings" or (
                self.args.chapters == "auto" and outline < 2
            )
            pages = self._pages(doc, reject, sizes)
            titles = chapter_titles(doc, pages, self.args)
            title = meta.get("title") or (doc.metadata or {}).get("title") or Path(unit.path).stem
            rows = {name: [] for name in MEDC_K.names}
            for page in pages:
                chapter = titles[page.number - 1]
                score = page.confidence if page.confidence is not None else page.quality
                method = "text" if page.method == "text" else f"ocr:{score:.2f}"
                rows["id"].append(f"book:{book_id}:p{page.number}")
                rows["text"].append(page.text)
                rows["source"].append(self.args.source)
                rows["license"].append(license_)
                rows["metadata"].append({
                    "title": title,
                    "edition": meta.get("edition") or None,
                    "pages": str(page.number),
                    "extraction": method,
                    "sections": [chapter] if chapter else [],
                    "input_file": unit.display,
                    "input_member": f"p{page.number}",
                })  # fmt: skip
            table = pa.Table.from_pydict(rows, schema=MEDC_K)
            return ReadResult(table, rejects, doc.page_count)

    def _pages(self, doc: pymupdf.Document, reject, sizes: bool) -> list[PageText]:
        pages = []
        for index in range(doc.page_count):
            started = time.perf_counter()
            try:
                page = extract_page(doc.load_page(index), self.ocr, sizes)
            except OcrUnavailable:
                raise
            except PageTimeout as exc:  # OCR cut off at the limit
                reject("page_timeout", f"page {index + 1}: {exc}", index + 1)
                continue
            except (RuntimeError, ValueError) as exc:  # MuPDF's errors on a broken page
                reject("corrupt_page", f"page {index + 1}: {exc}", index + 1)
                continue
            seconds = time.perf_counter() - started
            if seconds > self.args.page_seconds:
                reject(
                    "page_timeout",
                    f"page {index + 1} took {seconds:.1f} s > {self.args.page_seconds} s",
                    index + 1,
                )
                continue
            pages.append(page)
        return pages
