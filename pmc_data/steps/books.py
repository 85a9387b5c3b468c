"""Cleaning textbook pages, and joining them into chapters.

The ``pdf_books`` reader yields one row per page, all pages of a book in one batch; these
steps run in this order, each rule a named option with its default:

- ``book_furniture``: running headers, footers and page numbers, found by repetition across
  pages (digits and roman numerals normalised, odd and even pages counted apart);
- ``book_matter``: drops front matter (title and copyright pages, contents, optionally the
  preface) and back matter (index, references, answer keys) pages, found by content, with
  MMedLM's page-count rule only as a fallback;
- ``clean_book_text``: de-hyphenation, paragraph reflow, ligatures; URLs, author lists,
  citation markers, figure and table mentions; captions and table bodies;
- ``book_chapters``: one row per chapter, with the book's fields and the page range.

>>> CleanBookText().transform(
...     "Beta-blockers slow the heart (Fig. 3.2). Treat-\\nment with beta-\\nblockers [4]\\n"
...     "lowers mortality; see https://example.org.\\n\\nFigure 3.2 A heart.")
'Beta-blockers slow the heart. Treatment with beta-blockers lowers mortality; see.'
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from pmc_data.registry import DocumentStep, Filter, StepArgs, StepOutput, register_step
from pmc_data.steps.papers import CleanPaperText, CleanPaperTextArgs


def book_of(row_id: str) -> str:
    """``book:ab12cd34ef56`` for the page row ``book:ab12cd34ef56:p17``."""
    return row_id.rsplit(":p", 1)[0]


def _page_groups(batch: pa.Table) -> list[list[int]]:
    """Row indices of each book in the batch, in page order."""
    groups: dict[str, list[int]] = {}
    for index, row_id in enumerate(batch.column("id").to_pylist()):
        groups.setdefault(book_of(row_id), []).append(index)
    return list(groups.values())


def _metadata_field(batch: pa.Table, name: str) -> list:
    """One field of the metadata struct as Python values (without converting whole structs)."""
    return pc.struct_field(batch.column("metadata").combine_chunks(), name).to_pylist()


def _page_numbers(batch: pa.Table) -> list[int]:
    return [int(p) for p in _metadata_field(batch, "pages")]


def _replace_text(batch: pa.Table, texts: list[str]) -> pa.Table:
    index = batch.schema.get_field_index("text")
    return batch.set_column(index, "text", pa.array(texts, pa.string()))


# ------------------------------------------------------------------------ furniture

# Roman page numbers (front matter, up to lxxxix): not "mild", "dic" or "cml".
_ROMAN = re.compile(r"\b(?=[ivxl])(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})\b")
_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(r"[-–—\s]*(?:page\s+)?#(?:\s*(?:of|/)\s*#)?[-–—\s]*")


def furniture_key(line: str) -> str:
    """A line with its numbers made equal: ``"12 | Chapter III"`` -> ``"# | chapter #"``."""
    key = _DIGITS.sub("#", line.strip().lower())
    return " ".join(_ROMAN.sub("#", key).split())


class FurnitureArgs(StepArgs):
    #: How many lines at the top and at the bottom of a page may be furniture.
    edge_lines: int = 2
    #: A top or bottom line seen on at least this many pages (of the same parity) repeats.
    min_repeats: int = 3
    #: Count odd and even pages apart (books set different headers on facing pages).
    odd_even: bool = True
    #: Lines that are only a page number ("17", "xii", "Page 3 of 40") at an edge go too.
    page_numbers: bool = True


@register_step
class BookFurniture(DocumentStep):
    """Removes running headers, footers and page numbers found by repetition across pages."""

    name = "book_furniture"
    Args = FurnitureArgs

    def apply(self, batch: pa.Table) -> StepOutput:
        texts = batch.column("text").to_pylist()
        numbers = _page_numbers(batch)
        for group in _page_groups(batch):
            for index, text in self.strip_pages([texts[i] for i in group],
                                                [numbers[i] for i in group]):  # fmt: skip
                texts[group[index]] = text
        return StepOutput(_replace_text(batch, texts))

    def strip_pages(self, texts: list[str], numbers: list[int]) -> Iterable[tuple[int, str]]:
        args = self.args
        seen: Counter[tuple[int, str, str]] = Counter()
        edges = []
        for text, number in zip(texts, numbers, strict=True):
            lines = [line for line in text.split("\n") if line.strip()]
            parity = number % 2 if args.odd_even else 0
            top = {furniture_key(line) for line in lines[: args.edge_lines]}
            bottom = {furniture_key(line) for line in lines[-args.edge_lines :]}
            seen.update((parity, "top", key) for key in top)
            seen.update((parity, "bottom", key) for key in bottom)
            edges.append(parity)

        def furniture(line: str, parity: int, edge: str) -> bool:
            key = furniture_key(line)
            if args.page_numbers and _PAGE_NUMBER.fullmatch(key):
                return True
            return seen[(parity, edge, key)] >= args.min_repeats

        for index, (text, parity) in enumerate(zip(texts, edges, strict=True)):
            lines = text.split("\n")
            content = [i for i, line in enumerate(lines) if line.strip()]
            drop = set()
            for edge, order in (("top", content), ("bottom", content[::-1])):
                for i in order[: args.edge_lines]:
                    if not furniture(lines[i], parity, edge):
                        break
                    drop.add(i)
            if drop:
                kept = "\n".join(line for i, line in enumerate(lines) if i not in drop)
                yield index, re.sub(r"\n{3,}", "\n\n", kept).strip()


# --------------------------------------------------------------------------- matter

_LEADER_LINE = re.compile(r"^.{3,}?(?:\s*\.{2,}\s*|\s+)(?:\d{1,4}|[ivxlc]{1,6})$", re.IGNORECASE)
_INDEX_LINE = re.compile(
    r"^[A-Za-z(][^.!?]{0,80}?,\s*(?:\d{1,4}(?:[-–]\d{1,4})?[tf]?)(?:,\s*\d{1,4}(?:[-–]\d{1,4})?[tf]?)*$"
    r"|^[A-Z]$"
)
_CITATION_LINE = re.compile(
    r"\bet al\b|\bdoi\b|(?:19|20)\d{2}\s*;\s*\d+|\((?:19|20)\d{2}\)|\b(?:19|20)\d{2}[a-z]?\.\s|"
    r"^\s*\d{1,3}\.\s+[A-Z][A-Za-z'-]+,?\s+[A-Z]{1,3}[,.]|^[A-Z][A-Za-z'-]+,\s+[A-Z]\.",
    re.IGNORECASE,
)
# "\b(?:19|20)\d\d" with the word boundary checked after the "19"/"20", not tried at every
# position: three times faster.
_YEAR = re.compile(r"(?:19|20)(?<!\w\d\d)\d\d")


def _citation_hints(text: str) -> int:
    """At least the number of citation-shaped lines: every reference names a year, "et al."
    or a DOI. A fast bound, so that prose pages skip the per-line patterns."""
    lowered = text.lower()
    return len(_YEAR.findall(text)) + lowered.count("et al") + lowered.count("doi")


_COPYRIGHT = re.compile(
    r"©|\bcopyright\b|all rights reserved|\bISBN\b|library of congress|printed in|"
    r"\bpublished by\b|\bfirst (?:edition|published)\b",
    re.IGNORECASE,
)
_HEADINGS = {
    "contents": re.compile(r"^(?:table of )?contents$|^brief contents$", re.IGNORECASE),
    "preface": re.compile(
        r"^(?:preface|foreword|acknowledge?ments?|dedication|about the authors?|"
        r"how to use this book|list of contributors|contributors)\b",
        re.IGNORECASE,
    ),
    "index": re.compile(r"^(?:subject |general )?index$", re.IGNORECASE),
    "references": re.compile(
        r"^(?:references|bibliography|further reading|suggested readings?|works cited)$",
        re.IGNORECASE,
    ),
    "answer_key": re.compile(
        r"^(?:answer key|answers|solutions|answers to (?:the )?(?:review |end-of-chapter )?"
        r"(?:questions|exercises|problems))$",
        re.IGNORECASE,
    ),
}
_FRONT = {"title_page", "copyright_page", "contents", "preface"}
#: Sections that run over several pages after their heading.
_SECTIONS = {"preface", "answer_key", "index", "contents"}


class MatterArgs(StepArgs):
    title_page: bool = True
    copyright_page: bool = True
    contents: bool = True
    #: Preface, foreword, acknowledgements, dedication, contributors.
    preface: bool = True
    index: bool = True
    #: Pages that are (mostly) reference lists, wherever they are in the book.
    references: bool = True
    answer_key: bool = True
    #: Front matter is looked for in this leading share of the pages, back matter after it.
    front_share: float = 0.15
    #: Share of a page's lines that must look like contents / index / citation lines.
    min_line_share: float = 0.5
    #: MMedLM's rule, applied only when content finds no front (back) matter in a book of at
    #: least ``fallback_min_pages`` pages: skip the first 0.018*N+3 (the last 5) pages.
    fallback: bool = True
    fallback_min_pages: int = 100


@register_step
class BookMatter(Filter):
    """Drops front and back matter pages, each with the reason found (``contents``...)."""

    name = "book_matter"
    Args = MatterArgs

    def reasons(self, batch: pa.Table) -> list[str | None]:
        texts = batch.column("text").to_pylist()
        sections = _metadata_field(batch, "sections")
        reasons: list[str | None] = [None] * len(texts)
        for group in _page_groups(batch):
            found = self.book_reasons(
                [texts[i] for i in group],
                [(sections[i] or [""])[0] for i in group],
            )
            for i, reason in zip(group, found, strict=True):
                reasons[i] = reason
        return reasons

    def book_reasons(self, texts: list[str], chapters: list[str]) -> list[str | None]:
        """One reason (or ``None``) per page of one book, pages in order."""
        args = self.args
        n = len(texts)
        front_end = max(3, round(n * args.front_share))
        reasons: list[str | None] = []
        chapter_reason: dict[str, str] = {}
        titled: dict[str, str | None] = {}
        for position, (text, chapter) in enumerate(zip(texts, chapters, strict=True)):
            lines = [line.strip() for line in text.split("\n") if line.strip()]
            reason = self.page_reason(lines, position, n, front_end)
            if chapter and chapter not in titled:  # the chapter's title, judged once
                titled[chapter] = self.heading_reason([chapter], position, front_end)
            if reason is None and chapter:
                reason = chapter_reason.get(chapter) or titled[chapter]
            # a section opened by its own heading ("Preface", "Index") runs on to the
            # following pages of that chapter; a page matched by content alone does not
            if chapter and chapter not in chapter_reason:
                headed = titled[chapter]
                if reason in _SECTIONS and not headed:
                    headed = self.heading_reason(lines, position, front_end)
                if headed in _SECTIONS:
                    chapter_reason[chapter] = headed
            reasons.append(reason if reason and getattr(args, reason) else None)
        if args.fallback and n >= args.fallback_min_pages:
            front = [i for i, r in enumerate(reasons) if r in _FRONT]
            back = [i for i, r in enumerate(reasons) if r and r not in _FRONT]
            if not front:
                for i in range(min(n, int(0.018 * n + 3))):
                    reasons[i] = reasons[i] or "front_matter_fallback"
            if not back:
                for i in range(max(0, n - 5), n):
                    reasons[i] = reasons[i] or "back_matter_fallback"
        return reasons

    def heading_reason(self, lines: list[str], position: int, front_end: int) -> str | None:
        for line in lines[:2]:
            for reason, pattern in _HEADINGS.items():
                if pattern.match(line):
                    front = reason in ("contents", "preface")
                    if front == (position < front_end):
                        return reason
        return None

    def page_reason(self, lines: list[str], position: int, n: int, front_end: int) -> str | None:
        if not lines:
            return None
        share = self.args.min_line_share
        in_front = position < front_end
        reason = self.heading_reason(lines, position, front_end)
        if reason:
            return reason
        if in_front and sum(bool(_LEADER_LINE.match(line)) for line in lines) >= share * len(lines):
            return "contents"
        if in_front and len(_COPYRIGHT.findall("\n".join(lines))) >= 2:
            return "copyright_page"
        words = sum(len(line.split()) for line in lines)
        if (
            position < 3
            and words < 60
            and not any(len(line.split()) >= 8 and line.endswith(".") for line in lines)
        ):
            return "title_page"
        # Cheap upper bounds first (a line ending in a digit; any citation-shaped match in the
        # page): most pages are prose and never reach the per-line patterns.
        if (
            not in_front
            and sum(line[-1].isdigit() or len(line) == 1 for line in lines) >= share * len(lines)
            and sum(bool(_INDEX_LINE.match(line)) for line in lines) >= share * len(lines)
        ):
            return "index"
        enough = max(share, 0.6) * len(lines)
        if (
            len(lines) >= 4
            and _citation_hints("\n".join(lines)) >= enough
            and sum(bool(_CITATION_LINE.search(line)) for line in lines) >= enough
        ):
            return "references"
        return None


# ----------------------------------------------------------------------------- text

_CAPTION = re.compile(
    r"^(?P<kind>fig(?:ure)?|table|box|chart|plate)\.?\s+\d+(?:[.-]\d+)*[a-z]?\b", re.IGNORECASE
)
_DEGREES = (
    r"(?:MD|M\.D\.|PhD|Ph\.D\.|RN|MBBS|MBChB|FRCS|FRCP|FACP|FACS|DO|MPH|MSc|BSc|DSc|MS|MA"
    r"|PharmD|DVM|DDS|BS)"
)
_NAME_WITH_DEGREE = re.compile(rf"[A-Z][a-z]+(?:\s+[A-Z]\.)*\s+[A-Z][A-Za-z'-]+,\s+{_DEGREES}\b")
_AUTHOR_HEAD = re.compile(r"^(?:contributors?|authors?)\s*:|^(?:edited|written) by\b", re.I)
_TAIL_WORD = re.compile(r"\w+$")
_HEAD_WORD = re.compile(r"\w+")
# Words after "Table 1" / "Figure 2" that make it prose, not a caption.
_PROSE_AFTER_LABEL = frozenset(
    {
        "shows",
        "show",
        "summarizes",
        "summarises",
        "lists",
        "illustrates",
        "presents",
        "gives",
        "compares",
        "depicts",
        "describes",
        "outlines",
        "contains",
        "provides",
        "displays",
        "demonstrates",
        "indicates",
        "suggests",
        "reports",
        "highlights",
        "includes",
        "is",
        "are",
        "was",
        "were",
        "and",
        "or",
        "in",
        "of",
        "from",
        "also",
        "above",
        "below",
    }
)
_SENTENCE = re.compile(r"[a-z]{3,}[.!?]\s*$")
_DEGREE_AFTER_COMMA = re.compile(rf",\s+{_DEGREES}\b")
_IN_LINE_HYPHENATED = re.compile(r"\b\w+(?:-\w+)+\b")
_WORD = re.compile(r"\w+")
_LIGATURES = re.compile("[\ufb00-\ufb06]")


class CleanBookTextArgs(StepArgs):
    #: Join words broken at line ends ("treat-\nment"), keeping real hyphens: a compound the
    #: book prints whole elsewhere ("beta-blocker"), or a digit or capital after the hyphen
    #: ("COVID-19").
    dehyphenate: bool = True
    #: Lines of a paragraph joined into one; paragraphs separated by a blank line.
    reflow: bool = True
    #: Ligatures (ﬁ, ﬂ) to letters, and Unicode NFKC on them.
    ligatures: bool = True
    urls: bool = True
    emails: bool = True
    #: Blocks that list authors with degrees ("Jane Doe, MD, PhD") or open with "Contributors".
    author_lists: bool = True
    #: Bracketed numbers and (Author et al., 2020) references.
    citation_markers: bool = True
    #: "(Fig. 3.2)", "(see Table 4)".
    figure_mentions: bool = True
    #: Figure and table captions and the table body after a table caption: ``drop``, or
    #: ``keep`` as typed blocks ("Figure: ...", "Table: ...").
    captions: Literal["drop", "keep"] = "drop"


@register_step
class CleanBookText(DocumentStep):
    """The paper's removals and the PDF repairs, on the text of each page."""

    name = "clean_book_text"
    Args = CleanBookTextArgs

    def __init__(self, args: CleanBookTextArgs | None = None, schema: str = "medc_k") -> None:
        super().__init__(args, schema)
        a = self.args
        self.paper_rules = CleanPaperText(
            CleanPaperTextArgs(
                dehyphenate=False,
                urls=a.urls,
                emails=a.emails,
                citation_markers=a.citation_markers,
                figure_mentions=a.figure_mentions,
            )
        )

    def apply(self, batch: pa.Table) -> StepOutput:
        texts = batch.column("text").to_pylist()
        for group in _page_groups(batch):
            compounds = self.compounds(texts[i] for i in group)
            for i in group:
                texts[i] = self.transform(texts[i], compounds)
        return StepOutput(_replace_text(batch, texts))

    @staticmethod
    def compounds(texts: Iterable[str]) -> set[str]:
        """Hyphenated words a book prints whole on one line: their hyphens are real."""
        found: set[str] = set()
        for text in texts:
            # only the words with a hyphen are looked at: a regex over the page would try
            # every word
            for word in text.split():
                if "-" in word and (compound := _IN_LINE_HYPHENATED.search(word)):
                    found.add(compound.group(0).lower())
        return found

    def transform(self, text: str, compounds: set[str] | None = None) -> str:
        args = self.args
        if args.ligatures and _LIGATURES.search(text):
            text = _LIGATURES.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), text)
        if args.dehyphenate and "-\n" in text:
            known = compounds if compounds is not None else self.compounds([text])
            text = dehyphenate(text, known)
        blocks = []
        in_table = False
        for block in text.split("\n\n"):
            block = block.strip()
            if not block:
                continue
            caption = _CAPTION.match(block)
            if caption and _caption_like(block, caption):
                in_table = caption.group("kind").lower() == "table"
                if args.captions == "keep":
                    kind = "Table" if in_table else "Figure"
                    blocks.append(f"{kind}: {' '.join(block.split())}")
                continue
            if in_table and _tabular(block):
                if args.captions == "keep":
                    blocks.append(" | ".join(line.strip() for line in block.split("\n")))
                continue
            in_table = False
            if args.author_lists and _author_list(block):
                continue
            if args.reflow:
                block = " ".join(block.split())
            blocks.append(block)
        text = "\n\n".join(blocks)
        if not text:
            return text
        # the paper rules end with tidy(), once over the page; it keeps paragraph breaks
        text = self.paper_rules.transform(text)
        return "\n\n".join(b for b in (b.strip() for b in text.split("\n\n")) if b)


def dehyphenate(text: str, compounds: set[str]) -> str:
    """Words broken at line ends joined: "treat-\\nment" -> "treatment", "beta-\\nblocker" ->
    "beta-blocker" when the book prints that compound whole, "COVID-\\n19" -> "COVID-19".

    Walks the line-end hyphens only (a regex over the whole page would try every word).
    """
    parts = text.split("-\n")
    out = [parts[0]]
    for part in parts[1:]:
        left = _TAIL_WORD.search(out[-1][-64:])
        right = _HEAD_WORD.match(part)
        if not (left and right):
            out[-1] += "-\n" + part
            continue
        word, rest = left.group(0), right.group(0)
        real = f"{word}-{rest}".lower() in compounds or not rest[0].islower() or word[-1].isdigit()
        out[-1] += ("-" if real else "") + part
    return "".join(out)


def _caption_like(block: str, label: re.Match) -> bool:
    """A caption, not prose that begins with a reference ("Table 1 summarizes ...").

    Captions may start in lower case ("Figure 3 mRNA levels ..."): prose is told by the
    verb or joining word that follows the label.
    """
    rest = block[label.end() :].lstrip(" .:-—").split(maxsplit=1)
    first = rest[0].strip(",;:").lower() if rest else ""
    return first not in _PROSE_AFTER_LABEL and len(block.split()) <= 120


def _tabular(block: str) -> bool:
    """Short cells, not prose: what a table body reads like as text."""
    lines = [line for line in block.split("\n") if line.strip()]
    words = sum(len(line.split()) for line in lines)
    return bool(lines) and words / len(lines) < 6 and not block.rstrip().endswith(".")


def _author_list(block: str) -> bool:
    if _SENTENCE.search(block[-40:]):  # "... treated the patient." is prose, whoever is named
        return False
    has_degree = _DEGREE_AFTER_COMMA.search(block)  # a fast literal-led scan first
    return bool(has_degree and len(_NAME_WITH_DEGREE.findall(block)) >= 2) or bool(
        _AUTHOR_HEAD.match(block) and len(block.split()) < 80 and "," in block
    )


# ------------------------------------------------------------------------- chapters

_SENTENCE_END = re.compile(r"[.!?:;)\]\"”’]$")


class ChaptersArgs(StepArgs):
    #: Rejoin a paragraph that runs on from one page to the next (no sentence end, and the
    #: next page starts in lower case).
    join_paragraphs: bool = True


@register_step
class BookChapters(DocumentStep):
    """Joins a book's page rows into one row per chapter: ``book:<id>:<chapter number>``.

    Pages belong to the chapter the reader found for them (``metadata.sections``);
    ``metadata.pages`` becomes the page range and ``metadata.extraction`` says ``text``,
    ``ocr`` or ``text+ocr``. Pages folded into another row are counted as merged, not dropped.
    """

    name = "book_chapters"
    Args = ChaptersArgs

    def apply(self, batch: pa.Table) -> StepOutput:
        rows = batch.to_pylist()
        chapters = []
        for group in _page_groups(batch):
            current: dict | None = None
            number = 0
            for i in group:
                row = rows[i]
                meta = row["metadata"]
                title = (meta["sections"] or [""])[0]
                if current is None or title != current["metadata"]["sections"][0]:
                    number += 1
                    current = {
                        "id": f"{book_of(row['id'])}:{number}",
                        "text": row["text"],
                        "source": row["source"],
                        "license": row["license"],
                        "metadata": meta | {"sections": [title], "input_member": None},
                        "_pages": [int(meta["pages"])],
                        "_methods": {meta["extraction"].split(":")[0]},
                    }
                    chapters.append(current)
                    continue
                current["text"] = self.join(current["text"], row["text"])
                current["_pages"].append(int(meta["pages"]))
                current["_methods"].add(meta["extraction"].split(":")[0])
        for chapter in chapters:
            pages = chapter.pop("_pages")
            methods = chapter.pop("_methods")
            chapter["metadata"]["pages"] = f"{pages[0]}-{pages[-1]}"
            chapter["metadata"]["extraction"] = "+".join(sorted(methods, key=["text", "ocr"].index))
            if not chapter["metadata"]["sections"][0]:
                chapter["metadata"]["sections"] = []
        table = pa.Table.from_pylist(chapters, schema=batch.schema)
        return StepOutput(table, merged=len(rows) - len(chapters))

    def join(self, text: str, following: str) -> str:
        if not text:
            return following
        if not following:
            return text
        if self.args.join_paragraphs and following[:1].islower():
            if text.endswith("-") and text[-2:-1].isalpha():  # "treat-" | "ment": a broken word
                return text[:-1] + following
            if not _SENTENCE_END.search(text):
                return f"{text} {following}"
        return f"{text}\n\n{following}"
