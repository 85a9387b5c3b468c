"""The test textbook: OpenStax Microbiology modules (CNXML) from ../shared/fixtures/textbook,
or the project-written demo handbook when that folder is absent."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from pmc_data.textbook_pdf import Book, Chapter, load_book
from pmc_data.tidy import tidy

ROOT = Path(__file__).resolve().parents[1]
TEXTBOOK = ROOT.parent / "shared" / "fixtures" / "textbook"
HANDBOOK = ROOT / "examples" / "books" / "handbook.json"
CNXML = "{http://cnx.rice.edu/cnxml}"
COLLXML = "{http://cnx.rice.edu/collxml}"
MDML = "{http://cnx.rice.edu/mdml}"
#: CNXML elements whose text is not running prose: left out of the typeset book.
_SKIPPED = {f"{CNXML}{n}" for n in ("exercise", "note", "list", "table", "footnote", "equation")}


def _text(element) -> str:
    parts = [element.text or ""]
    for child in element:
        if child.tag != f"{CNXML}footnote":
            parts.append(_text(child))
        parts.append(child.tail or "")
    # a link or footnote left out can leave "()" behind: tidy it as the cleaner would
    return tidy(" ".join("".join(parts).split()))


def _module(path: Path, chapter_number: int, figures: list[int]) -> tuple[list[str], list[str]]:
    """Paragraphs (captions as "Figure N.k ...") and index terms of one CNXML module."""
    root = etree.parse(str(path)).getroot()
    paragraphs, terms = [], []
    for element in root.iter(f"{CNXML}para", f"{CNXML}figure"):
        if any(a.tag in _SKIPPED for a in element.iterancestors()):
            continue
        if element.tag == f"{CNXML}figure":
            caption = element.find(f"{CNXML}caption")
            if caption is not None and _text(caption):
                figures[0] += 1
                paragraphs.append(f"Figure {chapter_number}.{figures[0]} {_text(caption)}")
            continue
        if any(a.tag == f"{CNXML}figure" for a in element.iterancestors()):
            continue
        text = _text(element)
        if len(text.split()) >= 8:
            paragraphs.append(text)
        terms.extend(_text(t).lower() for t in element.iter(f"{CNXML}term") if _text(t))
    return paragraphs, terms


def microbiology_book() -> Book:
    """Chapters of the fixture modules, in the collection's order; the handbook if absent."""
    if not TEXTBOOK.is_dir():
        return handbook()
    collection = etree.parse(str(TEXTBOOK / "microbiology.collection.xml")).getroot()
    chapters, terms = [], []
    for sub in collection.iter(f"{COLLXML}subcollection"):
        modules = [m.get("document") for m in sub.iter(f"{COLLXML}module")]
        present = [TEXTBOOK / f"{m}.cnxml" for m in modules if (TEXTBOOK / f"{m}.cnxml").exists()]
        if not present:
            continue
        paragraphs: list[str] = []
        figures = [0]
        for path in present:
            found, found_terms = _module(path, len(chapters) + 1, figures)
            paragraphs.extend(found)
            terms.extend(found_terms)
        chapters.append(Chapter(sub.find(f"{MDML}title").text, paragraphs))
    index = sorted({f"{t}, {4 + i % 40}" for i, t in enumerate(terms)})
    return Book("Microbiology", chapters, "Nina Parker, PhD and Mark Schneegurt, PhD", index)


def handbook() -> Book:
    """The project-written demo handbook (examples/books/handbook.json)."""
    return load_book(HANDBOOK)[0]
