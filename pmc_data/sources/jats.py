"""JATS / NLM (PMC OA ``.nxml``) articles to structured text, safely.

Parsing never loads a DTD, never touches the network and never expands entities: a document
that declares entities (the "billion laughs" or an external entity pointing at a local file)
is refused with :class:`UnsafeXML`. Both NLM 2.3 and JATS 1.x tag sets are read.

::

    article = parse_article(open("PMC176545.nxml", "rb").read())
    article.pmcid, article.license, article.sections[:2]
    # ('PMC176545', 'CC-BY-4.0', ['Introduction', 'Methods'])

What the text keeps is a set of named options (:class:`JatsOptions`) with the paper's rules
as defaults: title, abstracts and body in order, headings as their own lines, nested section
titles kept; reference lists, acknowledgements, funding, conflicts of interest, author
contributions, supplementary material, footnotes and sub-articles dropped; citation xrefs
removed; figure and table captions and table cells dropped (or kept as typed blocks);
formulae as a placeholder (or their linear text).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from lxml import etree

from pmc_data.licenses import UNKNOWN, to_spdx
from pmc_data.sources.mathml import mathml_text
from pmc_data.tidy import tidy, tidy_lines

XLINK = "{http://www.w3.org/1999/xlink}href"
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
    huge_tree=False, remove_comments=True, remove_pis=True, recover=False,
)  # fmt: skip

#: Section types and titles whose content is not article text (the paper's removals).
DROPPED_SECTION_TYPES = {
    "supplementary-material", "COI-statement", "conflict", "funding-information",
    "author-contributions", "acknowledgments", "acknowledgements", "data-availability",
    "ethics-statement", "abbreviations",
}  # fmt: skip
DROPPED_SECTION_TITLE = re.compile(
    r"^\s*(?:\d+\.?\s*)?(?:acknowledge?ments?|funding|financial (?:support|disclosure)|"
    r"(?:declaration of |potential )?(?:conflicts? of interests?|competing interests?)|"
    r"author(?:s'?|'s)? contributions?|supplementary (?:material|information|data)|"
    r"supporting information|additional information|disclosures?)\s*:?\s*$",
    re.IGNORECASE,
)
#: Inline elements whose text never belongs in the article's prose.
SKIPPED_INLINE = {"supplementary-material", "fn", "fn-group", "ref-list", "ack", "glossary"}
#: Block elements that JATS allows inside a paragraph: they become blocks of their own.
NESTED_BLOCKS = {"fig", "table-wrap", "fig-group", "table-wrap-group", "boxed-text"}


#: ``iter()`` arguments for NESTED_BLOCKS in any namespace or none.
_NESTED_TAGS = tuple(f"{{*}}{name}" for name in sorted(NESTED_BLOCKS))


class UnsafeXML(ValueError):
    """The document declares entities or is otherwise unsafe to parse."""


@dataclass(frozen=True)
class JatsOptions:
    #: ``drop`` or ``keep``: figure captions (kept as "Figure: ..." blocks).
    figures: str = "drop"
    #: ``drop`` or ``keep``: table captions and cells (kept as "Table: ..." rows).
    tables: str = "drop"
    #: ``placeholder`` ("[formula]") or ``text`` (MathML / TeX as linear text).
    formulas: str = "placeholder"
    #: Keep ``boxed-text`` panels (they are usually part of the argument).
    boxed_text: bool = True
    #: Keep appendices from ``back/app-group``.
    appendices: bool = True
    #: Keep ``sub-article`` elements (peer reviews, author responses, translations).
    sub_articles: bool = False
    #: Keep bibliographic citation xrefs ([1], superscript numbers).
    citations: bool = False


@dataclass
class Article:
    """What the reader needs of one article."""

    pmcid: str | None = None
    pmid: str | None = None
    doi: str | None = None
    title: str = ""
    journal: str | None = None
    year: int | None = None
    article_type: str | None = None
    license: str = UNKNOWN
    license_text: str = ""
    retracted: bool = False
    sections: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(b for b in self.blocks if b.strip())


_LOCAL_NAMES: dict[object, str] = {}


def _local(tag: object) -> str:
    """An element's tag without its namespace; ``""`` for comments and processing
    instructions (whose ``tag`` is a function). Memoised: a document has few distinct tags
    and this runs for every element."""
    try:
        return _LOCAL_NAMES[tag]
    except KeyError:
        name = tag.rpartition("}")[2] if isinstance(tag, str) else ""
        if len(_LOCAL_NAMES) < 4096:  # a hostile document cannot grow it without bound
            _LOCAL_NAMES[tag] = name
        return name


def _norm(text: str) -> str:
    """Runs of whitespace as one space, trimmed (``str.split`` splits on the same Unicode
    whitespace as the regex ``\\s+``, several times faster)."""
    return " ".join(text.split())


def normalise_pmcid(value: str | None) -> str | None:
    """``"176545"``, ``"pmc176545"`` or ``"PMC176545"`` -> ``"PMC176545"``."""
    if not value:
        return None
    digits = re.sub(r"^\s*pmc(?:id)?[:\s]*", "", value.strip(), flags=re.IGNORECASE)
    return f"PMC{digits}" if digits.isdigit() else None


def parse_xml(data: bytes) -> etree._Element:
    """Parse with no DTD, no network and no entity expansion; refuse declared entities."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        if "entity" in str(exc).lower() and b"<!ENTITY" in data[:65536]:
            raise UnsafeXML(f"declares entities: {exc}") from None
        raise
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise UnsafeXML("the document declares entities (expansion is never performed)")
    if any(isinstance(node, etree._Entity) for node in root.iter(etree.Entity)):
        raise UnsafeXML("the document references undeclared entities")
    return root


_REWRITTEN_TAGS = tuple(
    f"{{*}}{name}" for name in ("xref", "sup", "sub", "inline-formula", "disp-formula", "break")
)
#: A tag no JATS document uses: elements renamed to it go in one ``strip_elements`` call.
_DROP = "pmc-data-drop"


def _only_citations(element: etree._Element) -> bool:
    """``<sup><xref ref-type="bibr">3</xref>,<xref ...>4</xref></sup>``: nothing but
    citations and the punctuation between them."""
    xrefs = [c for c in element if _local(c.tag) == "xref"]
    leftover = "".join([element.text or ""] + [c.tail or "" for c in element])
    return (
        bool(xrefs)
        and all(x.get("ref-type") == "bibr" for x in xrefs)
        and not re.search(r"[A-Za-z0-9]", leftover)
    )


def _formula(element: etree._Element, options: JatsOptions) -> str:
    """The placeholder, or the formula as text: its TeX, else its MathML linearised, else
    its plain text (label left out); the placeholder when it has none (an image)."""
    if options.formulas == "placeholder":
        return "[formula]"
    tex = next((c for c in element.iter() if _local(c.tag) == "tex-math"), None)
    if tex is not None and tex.text and tex.text.strip():
        return _norm(tex.text)
    math = next((c for c in element.iter() if _local(c.tag) == "math"), None)
    if math is not None:
        text = mathml_text(math)
    else:
        pieces = [element.text or ""]
        for child in element:
            if _local(child.tag) != "label":
                pieces += child.itertext()
            pieces.append(child.tail or "")
        text = _norm(" ".join(pieces))
    return text or "[formula]"


def _prepare(root: etree._Element, options: JatsOptions) -> None:
    """Rewrite the tree in place so that an element's text nodes, in document order, are
    exactly the prose the options keep: footnotes, supplementary material and reference
    lists gone, citation xrefs (and superscripts holding only citations) gone, formulae
    replaced by their placeholder or linear text, line breaks as spaces. Tails (the text
    after an element) always stay.

    Then :class:`_Text` reads a paragraph with one C-level serialisation instead of a walk
    in Python over its inline elements, which took most of the parse."""
    formulas, breaks = [], []
    for element in root.iter(*_REWRITTEN_TAGS):  # one C-level walk finds every candidate
        name = _local(element.tag)
        if name == "xref":
            if not options.citations and element.get("ref-type") == "bibr":
                element.tag = _DROP
        elif name in ("sup", "sub"):  # seen before its xrefs: they still have their names
            if not options.citations and len(element) and _only_citations(element):
                element.tag = _DROP
        elif name == "break":
            breaks.append(element)
        else:
            formulas.append(element)
    etree.strip_elements(root, _DROP, *(f"{{*}}{name}" for name in SKIPPED_INLINE), with_tail=False)
    # In document order: clearing an outer formula detaches the ones inside it.
    for formula in formulas:
        value = _formula(formula, options)
        if _local(formula.tag) == "disp-formula":  # a display inside a paragraph stands apart
            value = f" {value} "
        formula.clear(keep_tail=True)
        formula.text = value
    for line_break in breaks:
        line_break.clear(keep_tail=True)
        line_break.text = " "


class _Text:
    """Linear text of inline content, on a tree rewritten by :func:`_prepare`.

    Blocks that JATS allows inside a paragraph (figures, tables, boxes) are not part of its
    text: the caller emits them as blocks of their own."""

    def __init__(self, root: etree._Element) -> None:
        #: Every element with a nested block below it: only those need the slow path.
        self.holds_nested: set[etree._Element] = set()
        for nested in root.iter(*_NESTED_TAGS):
            for ancestor in nested.iterancestors():
                if ancestor in self.holds_nested:
                    break  # and so are its ancestors: each element is added once
                self.holds_nested.add(ancestor)

    def __call__(self, element: etree._Element) -> str:
        """The element's text, whitespace normalised and tidied."""
        return tidy(_norm(self.raw(element)))

    def raw(self, element: etree._Element) -> str:
        """The element's text as it stands in the document (for :meth:`_Body.finish`)."""
        if element in self.holds_nested:
            element = copy.deepcopy(element)
            etree.strip_elements(element, *_NESTED_TAGS, with_tail=False)
        return etree.tostring(element, method="text", encoding=str, with_tail=False)

    def formula(self, element: etree._Element) -> str:
        """A block-level formula (already rewritten by :func:`_prepare`)."""
        return _norm("".join(element.itertext()))


def _front(root: etree._Element, article: Article) -> None:
    """Identifiers, journal, year and license (read before :func:`_prepare` rewrites the
    tree: license text may hold footnotes or links)."""
    meta = root.find("front/article-meta")
    if meta is None:
        return
    for node in meta.findall("article-id"):
        kind, value = node.get("pub-id-type"), (node.text or "").strip()
        if kind in ("pmc", "pmcid") and not article.pmcid:
            article.pmcid = normalise_pmcid(value)
        elif kind == "pmid" and value:
            article.pmid = value
        elif kind == "doi" and value:
            article.doi = value
    journal = root.find("front/journal-meta//journal-title")
    article.journal = _norm("".join(journal.itertext())) if journal is not None else None
    years = [y.text for y in meta.findall("pub-date/year") if y.text and y.text.strip().isdigit()]
    article.year = int(min(years)) if years else None
    _license(meta, article)


def _license(meta: etree._Element, article: Article) -> None:
    permissions = meta.find("permissions")
    if permissions is None:
        return
    candidates: list[str] = []
    for node in permissions.iter():
        name = _local(node.tag)
        if name == "license_ref" and node.text:
            candidates.append(node.text)
        elif name == "license":
            candidates += [node.get(XLINK) or "", node.get("license-type") or ""]
    for node in permissions.iter():
        if _local(node.tag) in ("license-p", "license"):
            candidates.append(_norm(" ".join(node.itertext())))
    candidates += [
        _norm(" ".join(n.itertext()))
        for n in permissions.iter()
        if _local(n.tag) == "copyright-statement"
    ]
    article.license_text = next((c for c in candidates if c), "")
    for candidate in candidates:
        spdx = to_spdx(candidate)
        if spdx != UNKNOWN:
            article.license = spdx
            return


class _Body:
    """Walks abstracts, body, back and floats into blocks and section titles."""

    def __init__(self, article: Article, options: JatsOptions, text: _Text) -> None:
        self.article, self.options, self.text = article, options, text
        #: Paragraphs waiting for :meth:`finish`: (index in ``blocks``, prefix).
        self.untidy: list[tuple[int, str]] = []

    def block(self, value: str) -> None:
        if value:
            self.article.blocks.append(value)

    def prose(self, element: etree._Element, prefix: str = "") -> None:
        """A paragraph as a block, tidied in :meth:`finish` with all the others at once."""
        self.untidy.append((len(self.article.blocks), prefix))
        self.article.blocks.append(self.text.raw(element))

    def finish(self) -> None:
        """Whitespace normalised and :func:`tidy` applied to all paragraphs at once."""
        blocks = self.article.blocks
        tidied = tidy_lines([_norm(blocks[index]) for index, _ in self.untidy])
        for (index, prefix), value in zip(self.untidy, tidied, strict=True):
            blocks[index] = prefix + value
        self.article.blocks = [block for block in blocks if block]
        self.untidy = []

    def heading(self, title: str, path: list[str]) -> None:
        self.block(title)
        self.article.sections.append(" / ".join(path))

    def container(self, element: etree._Element, path: list[str]) -> None:
        for child in element:
            name = _local(child.tag)
            if name == "sec":
                self.section(child, path)
            elif name in ("p", "list", "disp-quote", "statement", "def-list"):
                self.paragraph(child)
            elif name == "disp-formula":
                self.block(self.text.formula(child))
            elif name in ("fig", "fig-group", "table-wrap", "table-wrap-group"):
                self.float(child)
            elif name == "boxed-text" and self.options.boxed_text:
                self.boxed(child, path)
            elif name in ("app", "app-group") and self.options.appendices:
                self.section(child, path)

    def section(self, sec: etree._Element, path: list[str]) -> None:
        title_node = sec.find("title")
        title = self.text(title_node) if title_node is not None else ""
        if sec.get("sec-type") in DROPPED_SECTION_TYPES or DROPPED_SECTION_TITLE.match(title):
            return
        here = [*path, title] if title else path
        if title:
            self.heading(title, here)
        self.container(sec, here)

    def boxed(self, box: etree._Element, path: list[str]) -> None:
        """A box: its title, its caption's paragraphs (part of the box's text, unlike a
        figure's caption), then its content."""
        title = box.find("caption/title")
        if title is None:
            title = box.find("title")
        if title is not None:
            self.block(self.text(title))
        for paragraph in box.findall("caption/p"):
            self.prose(paragraph)
        self.container(box, path)

    def paragraph(self, element: etree._Element) -> None:
        name = _local(element.tag)
        if name in ("list", "def-list"):
            for item in element.xpath("*[local-name()='list-item' or local-name()='def-item']"):
                self.prose(item, "- ")
        else:
            self.prose(element)
        if element not in self.text.holds_nested:
            return
        # Blocks nested in a paragraph follow it as blocks of their own (outermost only).
        for nested in element.iterdescendants(*_NESTED_TAGS):  # a C-level filter on the tag
            if any(_local(a.tag) in NESTED_BLOCKS for a in _between(element, nested)):
                continue  # inside another nested block, which handles it
            if _local(nested.tag) == "boxed-text":
                if self.options.boxed_text:
                    self.boxed(nested, [])
            else:
                self.float(nested)

    def float(self, element: etree._Element) -> None:
        name = _local(element.tag)
        if name in ("fig-group", "table-wrap-group"):
            for child in element:
                self.float(child)
            return
        is_table = name == "table-wrap"
        if (self.options.tables if is_table else self.options.figures) != "keep":
            return
        caption = element.find("caption")
        label = "Table" if is_table else "Figure"
        if caption is not None:
            self.block(f"{label}: " + " ".join(self.text(p) for p in caption))
        if is_table:
            for row in element.xpath(".//*[local-name()='tr']"):
                cells = [self.text(c) for c in row if _local(c.tag) in ("td", "th")]
                self.block(tidy("Table row: " + " | ".join(cells)))


def _between(outer: etree._Element, inner: etree._Element) -> list[etree._Element]:
    """The elements strictly between ``outer`` and its descendant ``inner``."""
    chain = []
    for ancestor in inner.iterancestors():
        if ancestor is outer:
            break
        chain.append(ancestor)
    return chain


def _markup_at(data: bytes, start: int) -> bool:
    """Whether a comment, CDATA section or processing instruction is open at ``start``.

    Every ``<!`` and ``<?`` before it is looked at, found from its second byte with
    single-byte searches (C ``memrchr``), which a long document makes much faster than
    searching for the openers themselves."""
    for mark, kinds in ((b"!", ((b"--", b"-->"), (b"[CDATA[", b"]]>"))), (b"?", ((b"", b"?>"),))):
        at = data.rfind(mark, 0, start)
        while at > 0:
            if data[at - 1 : at] == b"<":
                for rest, closing in kinds:
                    if data.startswith(rest, at + 1) and data.find(closing, at + 1, start) == -1:
                        return True
            at = data.rfind(mark, 0, at)
    return False


def _holds_markup(data: bytes, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` holds a ``<!`` or ``<?`` (single-byte searches too)."""
    for mark in (b"!", b"?"):
        at = data.find(mark, start, end)
        while at != -1:
            if data[at - 1 : at] == b"<":
                return True
            at = data.find(mark, at + 1, end)
    return False


def _without_references(data: bytes) -> bytes:
    """``data`` less its first reference list, cut as bytes before parsing: the reader drops
    it anyway, and it is a third of a typical article's bytes and of lxml's time.

    The span runs from the first ``<ref-list`` tag to its ``</ref-list>``: the first
    ``ref-list`` after the start tag must be that end tag (not another list's start, nor an
    end tag written ``</ref-list >``, which could carry the span on to a later list's end,
    over what lies between), and no comment, CDATA section or processing instruction may be
    open where it starts or be in it. Then every ``<`` in it starts a tag and the span is
    exactly that element. The caller also parses the whole document whenever the cut one is
    not well-formed. A malformation inside the reference list thus no longer rejects an
    article. Returns ``data`` itself when nothing is cut.
    """
    start = data.find(b"<ref-list")
    if start == -1 or data[start + 9 : start + 10] not in (b" ", b"\t", b"\r", b"\n", b">"):
        return data
    at = data.find(b"ref-list", start + 9)
    while at != -1 and data[at - 1 : at] not in (b"<", b"/"):  # "ref-list" as text
        at = data.find(b"ref-list", at + 8)
    if at == -1 or data[at - 2 : at] != b"</" or data[at + 8 : at + 9] != b">":
        return data
    end = at + 9
    if _holds_markup(data, start, end) or _markup_at(data, start):
        return data
    return data[:start] + data[end:]


def parse_article(data: bytes, options: JatsOptions | None = None) -> Article:
    """Parse one JATS/NLM article (bytes of ``.nxml``) into an :class:`Article`."""
    options = options or JatsOptions()
    cut = _without_references(data)
    try:
        root = parse_xml(cut)
    except etree.XMLSyntaxError:
        if cut is data:
            raise
        root = parse_xml(data)  # the errors, or a cut that was not harmless, are the whole's
    if _local(root.tag) != "article":
        raise ValueError(f"root element is <{_local(root.tag)}>, not <article>")
    article = Article(article_type=root.get("article-type"))
    _front(root, article)
    _prepare(root, options)
    text = _Text(root)
    title = root.find("front/article-meta/title-group/article-title")
    article.title = text(title) if title is not None else ""
    article.retracted = article.article_type == "retraction"
    walker = _Body(article, options, text)
    if article.title:
        article.blocks.append(article.title)
    for abstract in root.xpath("front/article-meta/abstract | front/article-meta/trans-abstract"):
        kind = abstract.get("abstract-type")
        if kind in ("toc", "teaser", "web-summary"):
            continue
        title_node = abstract.find("title")
        heading = self_title = text(title_node) if title_node is not None else ""
        if not self_title:
            heading = "Abstract" if not kind else kind.replace("-", " ").capitalize()
        walker.heading(heading, [heading])
        walker.container(abstract, [heading])
    body = root.find("body")
    if body is not None:
        walker.container(body, [])
    back = root.find("back")
    if back is not None and options.appendices:
        for group in back.xpath("app-group | app"):
            walker.section(group, [])
    floats = root.find("floats-group")
    if floats is not None:
        for element in floats:
            walker.float(element)
    if options.sub_articles:
        for sub in root.xpath("sub-article"):
            sub_body = sub.find("body")
            if sub_body is not None:
                walker.container(sub_body, [])
    walker.finish()
    return article
