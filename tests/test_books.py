"""Textbook PDFs end to end: extraction, OCR routing, cleaning, chapters, hostile files.

The book is typeset in the test (pmc_data.textbook_pdf) from the OpenStax Microbiology CNXML
fixture, so what each page holds is known and extraction is compared with the source text.
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pymupdf
import pytest
from conftest import run_cli
from textbook_fixture import microbiology_book

from pmc_data.registry import Unit
from pmc_data.sources import pdf
from pmc_data.sources.books import BooksArgs, PdfBooks, read_sidecar
from pmc_data.sources.pdf import OcrOptions, OcrUnavailable, extract_page, text_quality
from pmc_data.steps.books import (
    BookChapters,
    BookFurniture,
    BookMatter,
    CleanBookText,
    CleanBookTextArgs,
    MatterArgs,
    furniture_key,
)
from pmc_data.textbook_pdf import Book, Chapter, typeset

SCANNED_PAGE = 6  # a body page of chapter 1, replaced by an image of itself
TWO_COLUMN = {1}  # chapter 2 is set in two columns


def similarity(a: str, b: str) -> float:
    """Character-level similarity of two texts, whitespace runs counted as one space."""
    a, b = " ".join(a.split()), " ".join(b.split())
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


@pytest.fixture(scope="module")
def book() -> Book:
    return microbiology_book()


@pytest.fixture(scope="module")
def layout(book):
    return typeset(book, two_column=TWO_COLUMN, scanned={SCANNED_PAGE})


@pytest.fixture(scope="module")
def books_dir(tmp_path_factory, layout) -> Path:
    folder = tmp_path_factory.mktemp("books")
    (folder / "microbiology.pdf").write_bytes(layout.pdf)
    return folder


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("meta") / "books.csv"
    path.write_text(
        "file,title,edition,isbn,license,source\n"
        "microbiology.pdf,Microbiology,1st,978-1-947172-23-4,CC BY-NC-SA 4.0,OpenStax\n"
    )
    return path


def read_pages(folder: Path, **args) -> tuple:
    reader = PdfBooks(BooksArgs(license_policy=None, **args), "medc_k", "books")
    reader.bind({})
    units = reader.plan(str(folder), 1 << 30)
    results = [reader.read(u) for u in units]
    return reader, results


def cleaned_pages(table):
    for step in (BookFurniture(), BookMatter(), CleanBookText()):
        table = step.apply(table).kept
    return table


@pytest.fixture(scope="module")
def pages(books_dir, tesseract):
    _, results = read_pages(books_dir)
    (result,) = results
    return result


def test_pages_have_provenance_and_route_the_scan_to_ocr(pages, layout):
    assert pages.items == len(layout.pages) and not pages.errors
    rows = pages.table.to_pylist()
    assert [int(r["metadata"]["pages"]) for r in rows] == list(range(1, len(layout.pages) + 1))
    methods = {int(r["metadata"]["pages"]): r["metadata"]["extraction"] for r in rows}
    assert methods[SCANNED_PAGE].startswith("ocr:")
    assert float(methods[SCANNED_PAGE].split(":")[1]) > 0.8
    assert {m for p, m in methods.items() if p != SCANNED_PAGE} == {"text"}
    assert re.fullmatch(r"book:[0-9a-f]{12}:p1", rows[0]["id"])
    # chapters from the outline
    chapter_of = {int(r["metadata"]["pages"]): r["metadata"]["sections"] for r in rows}
    (first_start, first_end), (second_start, _) = layout.chapter_pages
    assert chapter_of[first_start] == chapter_of[first_end] == ["An Invisible World"]
    assert chapter_of[second_start] == ["The Cell"]


def test_text_pages_and_ocr_page_match_the_source(pages, layout):
    table = cleaned_pages(pages.table)
    numbers = [int(m["pages"]) for m in table.column("metadata").to_pylist()]
    got = dict(zip(numbers, table.column("text").to_pylist(), strict=True))
    scores = {}
    for record in layout.pages:
        if record.kind != "body":
            assert record.number not in got, f"{record.kind} page {record.number} was kept"
            continue
        expected = record.text.replace("\u2029", "")
        scores[record.number] = similarity(got[record.number], expected)
    text_scores = [s for p, s in scores.items() if p != SCANNED_PAGE]
    assert min(text_scores) >= 0.97, scores
    assert scores[SCANNED_PAGE] >= 0.90, scores[SCANNED_PAGE]
    two_column = [r.number for r in layout.pages if r.chapter in TWO_COLUMN]
    assert min(scores[p] for p in two_column) >= 0.97


def test_no_header_footer_or_page_number_is_left(pages, book, layout):
    table = cleaned_pages(pages.table)
    headers = {book.title} | {f"Chapter {i + 1} {c.title}" for i, c in enumerate(book.chapters)}
    openings = {start for start, _ in layout.chapter_pages}
    numbers = [int(m["pages"]) for m in table.column("metadata").to_pylist()]
    for number, text in zip(numbers, table.column("text").to_pylist(), strict=True):
        lines = text.split("\n")
        if number in openings and " ".join(lines[0].split()) in headers:
            lines = lines[1:]  # a chapter's first page may open with its title: a heading
        for line in lines:
            assert " ".join(line.split()) not in headers
            assert not re.fullmatch(r"\d{1,3}", line.strip()), line
        assert "....." not in text  # contents leaders


def test_build_gives_one_row_per_chapter(books_dir, sidecar, layout, book, tmp_path, tesseract):
    out = tmp_path / "out"
    result = run_cli("build", "medc_k/books", "--input", f"books={books_dir}",
                     "--input", f"book_meta={sidecar}", "--output", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(next((out / "data").glob("*.parquet"))).to_pylist()
    rows.sort(key=lambda r: int(r["id"].rsplit(":", 1)[1]))
    assert [r["metadata"]["sections"] for r in rows] == [[c.title] for c in book.chapters]
    assert [r["metadata"]["pages"] for r in rows] == [f"{a}-{b}" for a, b in layout.chapter_pages]
    assert rows[0]["metadata"]["extraction"] == "text+ocr"
    assert rows[1]["metadata"]["extraction"] == "text"
    assert {r["license"] for r in rows} == {"CC-BY-NC-SA-4.0"}
    assert rows[0]["metadata"]["edition"] == "1st"
    assert rows[0]["metadata"]["title"] == "Microbiology"
    assert similarity(rows[1]["text"], layout.chapter_text(1)) >= 0.97
    assert similarity(rows[0]["text"], layout.chapter_text(0)) >= 0.95  # one OCR page inside
    manifest = json.loads((out / "manifest.json").read_text())
    steps = {s["step"]: s for s in manifest["steps"]}
    assert steps["book_matter"]["dropped"] == {
        "contents": 1, "copyright_page": 1, "index": 2, "title_page": 1
    }  # fmt: skip
    chapters = steps["book_chapters"]
    assert chapters["out"] == 2 and chapters["in"] == chapters["out"] + chapters["merged"]
    for step in manifest["steps"]:
        assert step["in"] == step["out"] + sum(step["dropped"].values()) + step.get("merged", 0)
    card = (out / "README.md").read_text()
    assert "merged into other rows" in card


# ------------------------------------------------------------------ hostile input


def _minimal_pdf(count: int, kids: str) -> bytes:
    """A hand-written PDF whose page tree claims ``count`` pages."""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {count} >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 300] >>",
    ]
    body, offsets = b"%PDF-1.4\n", []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(body))
        body += f"{number} 0 obj\n{obj}\nendobj\n".encode()
    xref = len(body)
    body += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    body += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return body + trailer.encode()


def test_hostile_files_are_rejects_and_the_build_goes_on(tmp_path, layout):
    folder = tmp_path / "books"
    folder.mkdir()
    small = typeset(Book("Small", [Chapter("One", ["Cells divide by mitosis. " * 30])]))
    (folder / "good.pdf").write_bytes(small.pdf)
    doc = pymupdf.open(stream=small.pdf, filetype="pdf")
    doc.save(folder / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret",
             owner_pw="owner")  # fmt: skip
    (folder / "truncated.pdf").write_bytes(layout.pdf[: len(layout.pdf) // 3])
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    (folder / "zero.pdf").write_bytes(_minimal_pdf(0, ""))
    (folder / "huge.pdf").write_bytes(_minimal_pdf(100_000, "3 0 R"))
    (folder / "large.pdf").write_bytes(
        typeset(Book("Large", [Chapter("A", ["Cells. " * 9000])])).pdf
    )
    out = tmp_path / "out"
    result = run_cli("build", "medc_k/books", "--input", f"books={folder}", "--output", str(out),
                     "--set", "read.0.license_policy=null", "--set", "max_error_rate=1",
                     "--set", "read.0.max_pages=20")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rejects = pq.read_table(out / "rejects").to_pylist()
    by_file = {}
    for r in rejects:
        by_file.setdefault(r["input_file"].split("/")[-1], set()).add(r["reason"])
    assert by_file["encrypted.pdf"] == {"encrypted_pdf"}
    assert by_file["corrupt.pdf"] == {"corrupt_input"}
    assert by_file["zero.pdf"] <= {"empty_pdf", "corrupt_input"}
    assert by_file["large.pdf"] == {"too_many_pages"}
    # MuPDF refuses a page tree whose /Count its kids do not hold
    assert by_file["huge.pdf"] <= {"too_many_pages", "corrupt_input"}
    rows = pq.read_table(out / "data").to_pylist()
    # MuPDF repairs what it can of a truncated file: its pages are rows or page rejects
    truncated = [r for r in rows if r["metadata"]["input_file"] == "books/truncated.pdf"]
    assert truncated or by_file["truncated.pdf"]
    assert any(r["metadata"]["input_file"] == "books/good.pdf" for r in rows)
    manifest = json.loads((out / "manifest.json").read_text())
    reader = next(s for s in manifest["steps"] if s["step"].startswith("pdf_books"))
    assert reader["in"] == reader["out"] + sum(reader["dropped"].values())


def test_a_slow_page_is_rejected_and_the_rest_of_the_book_is_read(books_dir, tesseract):
    # OCR of the scanned page takes far longer (about a second) than reading a text layer
    # (about 5 ms); Tesseract is stopped at the limit
    _, (result,) = read_pages(books_dir, page_seconds=0.3)
    reasons = {e["reason"]: e["id"] for e in result.errors}
    assert reasons.get("page_timeout", "").endswith(f":p{SCANNED_PAGE}")
    assert len(result.table) == result.items - len(result.errors)


@pytest.mark.parametrize("engine", ["tesseract", "pymupdf"])
def test_missing_tesseract_is_a_clear_error_not_a_silent_skip(books_dir, monkeypatch, engine):
    def no_tesseract():
        raise RuntimeError("No tessdata specified and Tesseract is not installed")

    monkeypatch.setattr(pymupdf, "get_tessdata", no_tesseract)
    monkeypatch.setattr(pdf.shutil, "which", lambda name: None)
    pdf._tessdata.cache_clear()
    pdf._tesseract.cache_clear()
    try:
        with pytest.raises(OcrUnavailable, match=r"apt-get install tesseract-ocr.*OCR off"):
            read_pages(books_dir, ocr_engine=engine)
        _, (result,) = read_pages(books_dir, ocr="off")  # OCR off: the scan is read as empty
        scanned = result.table.to_pylist()[SCANNED_PAGE - 1]
        assert scanned["text"] == "" and scanned["metadata"]["extraction"] == "text"
    finally:
        pdf._tessdata.cache_clear()
        pdf._tesseract.cache_clear()


def test_both_ocr_engines_read_the_scan(books_dir, layout, tesseract):
    expected = layout.pages[SCANNED_PAGE - 1].text.replace("\u2029", "")
    doc = pymupdf.open(books_dir / "microbiology.pdf")
    for engine in ("tesseract", "pymupdf"):
        page = extract_page(doc[SCANNED_PAGE - 1], OcrOptions(engine=engine))
        assert page.method == "ocr"
        assert (page.confidence is not None) == (engine == "tesseract")
        text = CleanBookText().transform(page.text)  # a running header is left: one page
        assert similarity(text, expected) >= 0.9, engine


def test_bad_sidecar_is_refused_with_its_columns(tmp_path, books_dir):
    bad = tmp_path / "meta.csv"
    bad.write_text("name,license\nmicrobiology.pdf,CC-BY-4.0\n")
    with pytest.raises(ValueError, match="needs a 'file' column"):
        read_sidecar(bad)
    result = run_cli("build", "medc_k/books", "--input", f"books={books_dir}",
                     "--input", f"book_meta={bad}", "--output", str(tmp_path / "o"))  # fmt: skip
    assert result.returncode == 2 and "needs a 'file' column" in result.stderr


def test_unknown_license_is_decided_by_the_policy(books_dir):
    reader = PdfBooks(BooksArgs(), "medc_k", "books")  # research policy, no sidecar
    reader.bind({})
    (unit,) = reader.plan(str(books_dir), 1 << 30)
    result = reader.read(unit)
    assert len(result.table) == 0 and result.items == 1
    assert [e["reason"] for e in result.errors] == ["license:LicenseRef-unknown"]


# ------------------------------------------------------------------ rules, one by one


def test_text_quality_routes_a_broken_text_layer_to_ocr(tesseract):
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=200)
    clean = "Gram-negative bacteria have an outer membrane."
    page.insert_text((20, 50), clean, fontsize=11)
    assert extract_page(page, OcrOptions()).method == "text"
    pixmap = page.get_pixmap(dpi=200)
    broken = doc.new_page(width=300, height=200)
    broken.insert_image(broken.rect, pixmap=pixmap)
    # a text layer whose glyphs map to nothing, drawn invisibly over the scan (as OCRed PDFs
    # with a broken font are): the picture says one thing, the text layer garbage
    broken.insert_text((20, 150), "(cid:71)(cid:85)(cid:68) (cid:80)(cid:72)", fontsize=6,
                       render_mode=3)  # fmt: skip
    assert text_quality("(cid:71)(cid:85)(cid:68) (cid:80)(cid:72)") < 0.6
    read = extract_page(broken, OcrOptions())
    assert read.method == "ocr" and similarity(read.text, clean) > 0.9


def test_furniture_key_normalises_numbers():
    assert furniture_key("12 | Chapter 3  The Cell") == furniture_key("13 | Chapter 3 The Cell")
    assert furniture_key("xii") == furniture_key("7") == "#"


def test_dehyphenation_keeps_real_hyphens():
    step = CleanBookText()
    text = "A beta-blocker was given.\n\nThe beta-\nblocker and treat-\nment of COVID-\n19 cases."
    assert step.transform(text) == (
        "A beta-blocker was given.\n\nThe beta-blocker and treatment of COVID-19 cases."
    )


def test_captions_tables_authors_urls_and_mentions():
    text = (
        "John Smith, MD, PhD, Jane Doe, MD\n\n"
        "Sepsis is a dysregulated host response (Fig. 3.2) to infection [4, 5].\n\n"
        "Figure 3.2 Organ failure in sepsis.\n\n"
        "Table 3.1 Scores\n\nqSOFA\n2\nSOFA\n4\n\n"
        "Guidance is at https://www.sccm.org/guidelines (Smith et al., 2020)."
    )
    assert CleanBookText().transform(text) == (
        "Sepsis is a dysregulated host response to infection.\n\nGuidance is at."
    )
    kept = CleanBookText(CleanBookTextArgs(captions="keep", author_lists=False)).transform(text)
    assert "Figure: Figure 3.2 Organ failure in sepsis." in kept
    assert "qSOFA | 2 | SOFA | 4" in kept and kept.startswith("John Smith")


def test_matter_reasons_by_content():
    body = "Bacteria are single cells. " * 20
    pages = (
        [
            "Clinical Microbiology\nA. Author",
            "Copyright 2026 A. Author. All rights reserved.\nISBN 978-0-00-000000-0",
            "Contents\n1 The Cell ........ 5\n2 Immunity ........ 9",
            "Preface\nThis book grew out of our lectures. " + body,
        ]
        + [body] * 16
        + [
            "References\nSmith AB, Jones C. Sepsis. N Engl J Med. 2010;362:1-10.",
            "1. Lee K, Park J. Shock. Lancet. 2015;3:4-9.\n2. Wu T et al. Fever. 2012;1:2.\n"
            "3. Ng P, Ho Q. Cells. BMJ. 2001;4:5-6.\n4. Li X, Yu Z. Gut. Gut. 1999;8:1-2.",
            "Answer Key\n1. B\n2. C",
            "Index\nabscess, 12\nbacteria, 3, 7\ncell wall, 5-6",
            "fever, 9\nglucose, 10\nhepatitis, 11\nimmunity, 4",
        ]
    )
    reasons = BookMatter().book_reasons(pages, [""] * len(pages))
    assert reasons[:4] == ["title_page", "copyright_page", "contents", "preface"]
    assert reasons[4:20] == [None] * 16
    assert reasons[20:] == ["references", "references", "answer_key", "index", "index"]
    keep_preface = BookMatter(MatterArgs(preface=False)).book_reasons(pages, [""] * len(pages))
    assert keep_preface[3] is None


def test_matter_fallback_only_when_content_finds_nothing():
    body = ["Bacteria are single cells that divide. " * 20] * 120
    reasons = BookMatter().book_reasons(body, [""] * 120)
    front = int(0.018 * 120 + 3)
    assert reasons[:front] == ["front_matter_fallback"] * front
    assert reasons[front:-5] == [None] * (120 - front - 5)
    assert reasons[-5:] == ["back_matter_fallback"] * 5
    assert BookMatter(MatterArgs(fallback=False)).book_reasons(body, [""] * 120) == [None] * 120


def test_chapters_from_headings_when_there_is_no_outline(tmp_path):
    book = Book(
        "Small", [Chapter(f"Topic {i}", ["Cells divide by mitosis. " * 60]) for i in range(3)]
    )
    layout = typeset(book, outline=False)
    (tmp_path / "b.pdf").write_bytes(layout.pdf)
    reader = PdfBooks(BooksArgs(license_policy=None, ocr="off"), "medc_k", "books")
    reader.bind({})
    (unit,) = reader.plan(str(tmp_path), 1 << 30)
    table = reader.read(unit).table
    chapters = BookChapters().apply(BookMatter().apply(table).kept)
    titles = [m["sections"] for m in chapters.kept.column("metadata").to_pylist()]
    assert titles == [[f"Chapter {i + 1} Topic {i}"] for i in range(3)]
    assert chapters.merged == len(table) - 4 - 3  # title, copyright, contents, index dropped
    windows = PdfBooks(BooksArgs(license_policy=None, ocr="off", chapters="pages",
                                 chapter_pages=2), "medc_k", "books")  # fmt: skip
    windows.bind({})
    pages = windows.read(unit).table
    assert pages.column("metadata").to_pylist()[2]["sections"] == ["Pages 3-4"]


def test_unit_roundtrip_is_deterministic(books_dir, tesseract):
    reader = PdfBooks(BooksArgs(license_policy=None), "medc_k", "books")
    reader.bind({})
    unit = Unit(str(books_dir / "microbiology.pdf"), "books/microbiology.pdf")
    assert reader.read(unit).table.equals(reader.read(unit).table)


def test_review_regressions_prose_is_not_matter_captions_or_furniture():
    prose = "Bacteria are single cells that divide by binary fission. " * 12
    pages = (
        [prose] * 10 + ["Chapter Outline\nAnatomy of the heart 3\nCardiac cycle 5"] + [prose] * 9
    )
    chapters = ["One"] * 10 + ["Two"] * 10
    reasons = BookMatter(MatterArgs(fallback=False)).book_reasons(pages, chapters)
    assert reasons == [None] * 20  # a content match never spreads to the chapter's other pages
    clean = CleanBookText()
    for text in ("Table 1 summarizes the first-line drugs.",
                 "Figure 2 shows that the left ventricle hypertrophies.",
                 "Contributors to mortality in sepsis include age and comorbidity.",
                 "John Smith, MD, and Mary Jones, MD, treated the patient."):  # fmt: skip
        assert clean.transform(text) == text
    assert furniture_key("CML") == "cml" and furniture_key("xiv") == "#"
    assert (
        BookChapters().join("used in the treat-", "ment of shock.")
        == "used in the treatment of shock."
    )
    assert text_quality("心脏是一个中空的肌性器官。Сердце это мышечный орган.") > 0.9


def test_review_regressions_chapters_and_licenses(tmp_path):
    small = typeset(
        Book("Small", [Chapter("One", ["Cells divide by mitosis. " * 200])]), outline=False
    )
    (tmp_path / "b.pdf").write_bytes(small.pdf)
    (tmp_path / "meta.csv").write_text("file,license\nb.pdf,GFDL-1.3\n")
    reader = PdfBooks(BooksArgs(license_policy=["GFDL-1.3"], ocr="off", chapters="outline",
                                chapter_pages=2, book_meta="meta"), "medc_k", "books")  # fmt: skip
    reader.bind({"meta": str(tmp_path / "meta.csv")})
    (unit,) = reader.plan(str(tmp_path), 1 << 30)
    rows = reader.read(unit).table.to_pylist()  # no outline: page windows, not a crash
    assert rows[0]["license"] == "GFDL-1.3"
    assert rows[2]["metadata"]["sections"] == ["Pages 3-4"]


def test_text_flags_are_pymupdfs_and_the_registry_does_not_import_it():
    # TEXT_FLAGS is spelled as a number so that pmc_data.sources.pdf need not import PyMuPDF
    # (its layout model and onnxruntime cost every worker of every build ~110 MiB).
    assert pdf.TEXT_FLAGS == pymupdf.TEXT_PRESERVE_WHITESPACE
    code = "import sys, pmc_data.registry, pmc_data.recipe; print('pymupdf' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_text_set_outside_the_page_is_not_read():
    # TEXT_FLAGS leaves MuPDF's mediabox clipping off (it is slow): text set outside the
    # visible page must still not be read.
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=400)
    page.insert_text((40, 100), "Inside the page.", fontsize=11)
    page.insert_text((40, 380), "Printer slug below the page.", fontsize=11)
    page.insert_text((320, 100), "Crop mark beside it.", fontsize=11)
    page.set_cropbox(pymupdf.Rect(0, 0, 300, 300))
    assert extract_page(page, OcrOptions(mode="off"), sizes=False).text == "Inside the page."
    assert extract_page(page, OcrOptions(mode="off")).text == "Inside the page."
