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

The walk over the article is an XSLT stylesheet (``jats_text.xsl``, beside this file) that
libxslt runs in C: it writes the article as a stream of marked parts (identifiers, titles,
sections, paragraphs, captions, rows), which :func:`_read` turns into an :class:`Article`,
whitespace collapsed and paragraphs tidied all at once. Walking the tree in Python, element
by element, took most of the time an article took.

Before parsing, what the options never read (reference lists, supplementary material, the
front matter the paper removes, figures and tables when dropped, formulae as placeholders,
sub-articles when not kept) is cut from the bytes where that is provably harmless
(:mod:`pmc_data.sources.unread`): lxml parses about a third of an eLife article's bytes,
and the article read is the one the whole document gives.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from pmc_data.licenses import UNKNOWN, to_spdx
from pmc_data.sources.mathml import mathml_text
from pmc_data.sources.unread import starts_ascii_compatible, unread_contents
from pmc_data.tidy import collapse_utf8_whitespace, tidy, tidy_lines

_PARSER_OPTIONS = dict(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
    huge_tree=False, remove_comments=True, remove_pis=True, recover=False,
)  # fmt: skip
_PARSER = etree.XMLParser(**_PARSER_OPTIONS)

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
#: Elements whose text never belongs in the article's prose, wherever they stand (the
#: stylesheet's ``&omitted;``, the same list; this one serves ``formulas: text``, read in
#: Python): footnotes, supplementary material, reference lists, acknowledgements, glossaries,
#: and the front matter the paper removes (author lists, affiliations, notes, funding).
SKIPPED_INLINE = {
    "supplementary-material", "fn", "fn-group", "ref-list", "ack", "glossary",
    "contrib-group", "aff", "author-notes", "funding-group",
}  # fmt: skip


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
    #: Keep bibliographic citation xrefs ([1], superscript numbers). Left out, a narrative
    #: one (names, then a year in parentheses) keeps its names: "as described in Theobald
    #: and Wuttke (2005)." -> "as described in Theobald and Wuttke."; "(Lee, 2019)" and
    #: "[3]" go whole.
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
    return _checked(root, data)


def _checked(root: etree._Element, *pieces: bytes) -> etree._Element:
    """``root``, parsed from ``pieces`` (of a document) joined, unless it declares or
    references entities."""
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise UnsafeXML("the document declares entities (expansion is never performed)")
    if (
        not _ascii_compatible(root, pieces[0])
        # (a "&" is a memchr away; most pieces of a cut document hold none)
        or any(_may_reference_entities(piece) for piece in pieces if b"&" in piece)
    ) and any(isinstance(node, etree._Entity) for node in root.iter(etree.Entity)):
        raise UnsafeXML("the document references undeclared entities")
    return root


def _ascii_compatible(root: etree._Element, data: bytes) -> bool:
    """Whether the document's bytes (``data``, or its first piece) hold ASCII characters as
    themselves (so that a byte search finds them): UTF-8 (JATS's encoding), ASCII or an ISO
    8859 part. The bytes must start as those do: lxml reports a document in UTF-16 with a
    byte order mark and no declaration as UTF-8."""
    encoding = (root.getroottree().docinfo.encoding or "UTF-8").upper()
    return (
        encoding in ("UTF-8", "UTF8", "ASCII", "US-ASCII") or encoding.startswith("ISO-8859")
    ) and starts_ascii_compatible(data)


#: What may follow a "&" without making an entity node: a character reference, or one of
#: XML's five predefined entities (which the parser replaces by their characters).
_NOT_AN_ENTITY = (b"#", b"lt;", b"gt;", b"amp;", b"quot;", b"apos;")


def _ampersands(data: bytes) -> Iterator[int]:
    """Where each "&" is: rare in JATS and found with ``memchr`` (a search for a longer
    needle such as ``&#`` is several times slower)."""
    at = data.find(b"&")
    while at != -1:
        yield at
        at = data.find(b"&", at + 1)


def _may_reference_entities(data: bytes) -> bool:
    """Whether the document may hold an entity reference (then its tree is searched for
    them): a "&" not starting a character reference or a predefined entity, where walking
    the whole tree takes ~0.08 ms."""
    return any(not data.startswith(_NOT_AN_ENTITY, at + 1) for at in _ampersands(data))


def _formula_text(element: etree._Element) -> str:
    """A formula as text: its TeX, else its MathML linearised, else its plain text (label
    left out); the placeholder when it has none (an image)."""
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


def _only_citations(element: etree._Element) -> bool:
    """``<sup><xref ref-type="bibr">3</xref>,<xref ...>4</xref></sup>``: nothing but
    citations and the punctuation between them (the stylesheet's test, for formulae)."""
    xrefs = [c for c in element if c.tag == "xref"]
    leftover = "".join([element.text or ""] + [c.tail or "" for c in element])
    return (
        bool(xrefs)
        and all(x.get("ref-type") == "bibr" for x in xrefs)
        and not re.search(r"[A-Za-z0-9]", leftover)
    )


def _left_out(element: etree._Element, citations: bool) -> bool:
    """Whether inline text leaves ``element`` out (a footnote, supplementary material...,
    or a citation when ``citations`` are not kept)."""
    if element.tag in SKIPPED_INLINE:
        return True
    if citations:
        return False
    if element.tag == "xref":
        return element.get("ref-type") == "bibr"
    return element.tag in ("sup", "sub") and _only_citations(element)


def _formulas_as_text(root: etree._Element, citations: bool) -> None:
    """``formulas: text``: each formula's content becomes its text, which the stylesheet
    then reads (in document order: clearing an outer formula detaches those inside it).
    What inline text leaves out (footnotes, citations...) is left out of a formula first."""
    for formula in list(root.iter("inline-formula", "disp-formula")):
        left_out = [
            element
            for element in formula.iter(*SKIPPED_INLINE, "xref", "sup", "sub")
            if _left_out(element, citations)
        ]
        for element in left_out:
            element.tag = _DROP
        etree.strip_elements(formula, _DROP, with_tail=False)
        value = _formula_text(formula)
        formula.clear(keep_tail=True)
        formula.text = value


#: A tag no JATS document uses: elements renamed to it go in one ``strip_elements`` call.
_DROP = "pmc-data-drop"

#: The walk over the article, in XSLT: see the file for the stream it writes.
STYLESHEET = Path(__file__).with_name("jats_text.xsl")
_XSL = "{http://www.w3.org/1999/XSL/Transform}"
_COMPILED = threading.local()


def _stylesheet(options: JatsOptions) -> etree.XSLT:
    """The stylesheet with its parameters set to ``options``, compiled once per options in
    each thread (compiling takes about a millisecond; running it a few hundred µs)."""
    cache = _COMPILED.__dict__.setdefault("cache", {})
    compiled = cache.get(options)
    if compiled is None:
        document = etree.parse(str(STYLESHEET), etree.XMLParser(no_network=True))
        for param in document.getroot().iterfind(f"{_XSL}param"):
            name = param.get("name")
            if name == "m":
                continue
            value = getattr(options, name)
            if isinstance(value, bool):
                param.set("select", "true()" if value else "false()")
            elif isinstance(value, str) and value.replace("-", "").isalnum():
                param.set("select", f"'{value}'")
            else:
                raise ValueError(f"JatsOptions.{name}: {value!r} is not an option value")
        access = etree.XSLTAccessControl.DENY_ALL
        compiled = cache[options] = etree.XSLT(document, access_control=access)
    return compiled


#: The stream's marker: a character the document does not hold, from the private use area
#: of plane 16 (which text almost never holds).
_MARKERS = tuple(chr(code) for code in range(0x10FFFD, 0x10FFF5, -1))
#: A character reference that may name one of the markers.
_MARKER_REFERENCE = re.compile(rb"&#(?:[xX]0*10[fF]{3}[0-9a-fA-F]|0*11141[0-9]{2});")


def _may_refer(data: bytes) -> bool:
    """Whether a character reference in ``data`` may name a marker."""
    return any(_MARKER_REFERENCE.match(data, at) for at in _ampersands(data))


_HOLDS = etree.XPath("boolean(//text()[contains(., $m)] | //@*[contains(., $m)])")


def _marker(data: bytes, root: etree._Element) -> str:
    """A marker the document holds nowhere: looked for in the UTF-8 bytes (fast), else in
    the parsed text and attribute values."""
    if _ascii_compatible(root, data) and not _may_refer(data):
        if data.find(b"\xf4") == -1:  # the first byte of every character of plane 16
            return _MARKERS[0]
        for marker in _MARKERS:
            if marker.encode() not in data:
                return marker
    for marker in _MARKERS:
        if not _HOLDS(root, m=marker):
            return marker
    raise ValueError("the document holds every private-use character the reader can mark with")


def _front(head: list[str], article: Article) -> None:
    """Identifiers, journal, year and license from the stream's ``head`` (its parts before
    "#", as they are in the document: see the stylesheet's ``meta`` mode)."""
    if not head or head[0] != "M":
        return  # no article-meta
    years, candidates, kind = [], [], None
    for part in head[1:]:
        tag, value = part[:1], part[1:]
        if tag == "i":
            kind = value
        elif tag == "v":
            value = value.strip()
            if kind in ("pmc", "pmcid") and not article.pmcid:
                article.pmcid = normalise_pmcid(value)
            elif kind == "pmid" and value:
                article.pmid = value
            elif kind == "doi" and value:
                article.doi = value
        elif tag == "j":
            article.journal = _norm(value)
        elif tag == "y":
            if value.strip().isdigit():
                years.append(value)
        elif tag == "r":
            candidates.append(value)
        elif tag == "n":
            candidates.append(_norm(value))
    article.year = int(min(years)) if years else None
    article.license_text = next((c for c in candidates if c), "")
    for candidate in candidates:
        spdx = to_spdx(candidate)
        if spdx != UNKNOWN:
            article.license = spdx
            return


def _read(stream: bytes, marker: str, article: Article) -> None:
    """The blocks, title and section paths of ``article`` from the stylesheet's stream (its
    UTF-8 bytes).

    Sections whose type or title is dropped are dropped here, with all they hold; paragraphs
    and list items are whitespace-normalised and tidied all at once, as the lines of one
    text (:func:`tidy_lines`), headings and caption parts one at a time."""
    # Whitespace collapsed once for the whole stream, mostly in its bytes: the marker is no
    # whitespace, so each part's text is then whitespace-normalised but for a space at
    # either end.
    head, _, stream = stream.partition(f"{marker}#".encode())
    _front(head.decode().split(marker)[1:], article)
    parts = collapse_utf8_whitespace(stream).split(marker)
    blocks, sections = article.blocks, article.sections
    prose: list[tuple[int, str]] = []  # (index in blocks, prefix) of what is tidied last
    # The open sections, abstracts and boxes: (title, dropped, starts a section path).
    frames: list[tuple[str, bool, bool]] = []
    dropped = False
    i, count = 1, len(parts)  # parts[0] is what came before the first marker: nothing
    while i < count:
        part = parts[i]
        kind = part[:1]
        i += 1
        if kind in "PL":
            if not dropped:
                prose.append((len(blocks), "- " if kind == "L" else ""))
                blocks.append(part[1:])
        elif kind == "E":
            frames.pop()
            dropped = frames[-1][1] if frames else False
        elif kind == "S":
            title = parts[i][1:]  # the "t" part
            i += 1
            if not dropped:
                title = tidy(title)
                sec_type = part[1:].strip(" ")
                if sec_type in DROPPED_SECTION_TYPES or DROPPED_SECTION_TITLE.match(title):
                    dropped = True
                elif title:
                    blocks.append(title)
                    sections.append(" / ".join([*_path(frames), title]))
            frames.append((title, dropped, False))
        elif kind == "A":
            title = tidy(parts[i][1:])
            i += 1
            abstract_type = part[1:].strip(" ")
            heading = title or (
                abstract_type.replace("-", " ").capitalize() if abstract_type else "Abstract"
            )
            blocks.append(heading)
            sections.append(heading)
            frames.append((heading, False, True))
        elif kind == "B":
            frames.append(("", dropped, True))
        elif kind == "I":
            article.title = tidy(part[1:])
            if article.title:
                blocks.append(article.title)
        elif dropped:
            continue  # F, C, R and the c parts after them
        elif kind == "F":
            value = part[1:].strip(" ")
            if value:
                blocks.append(value)
        elif kind in "CR":
            cells = []
            while i < count and parts[i][:1] == "c":
                cells.append(tidy(parts[i][1:]))
                i += 1
            if kind == "C":
                blocks.append(f"{part[1:].strip(' ')}: " + " ".join(cells))
            else:
                blocks.append(tidy("Table row: " + " | ".join(cells)))
    tidied = tidy_lines([blocks[index].strip(" ") for index, _ in prose], single_spaced=True)
    for (index, prefix), value in zip(prose, tidied, strict=True):
        blocks[index] = prefix + value
    article.blocks = [block for block in blocks if block]


def _path(frames: list[tuple[str, bool, bool]]) -> list[str]:
    """The titles of the open sections, from the innermost frame that starts a path."""
    path = []
    for title, _, starts in reversed(frames):
        if title:
            path.append(title)
        if starts:
            break
    return path[::-1]


#: What the stylesheet never reads, in any mode (its ``&omitted;``): cut from the bytes
#: wherever it is (:func:`unread_contents`'s groups of names)...
_NEVER_READ = ((b"ref-list",), (b"supplementary-material",))
#: ...and the front matter it never reads either, looked for only before the body (where it
#: stands: a search of the whole article for each would cost more than it saves).
_FRONT_MATTER = ((b"contrib-group",), (b"author-notes",), (b"funding-group",), (b"aff",))
#: Figures and tables: never read when both are dropped and formulae are placeholders (a
#: formula's text would hold the text of a figure inside it). Searched for first: what
#: they hold (supplementary material in a figure's caption) is not searched for again.
_FLOATS = ((b"fig-group", b"fig"), (b"table-wrap-group", b"table-wrap"))
#: Formulae, never read as placeholders (each is "[formula]", whatever it holds).
_FORMULAS = ((b"inline-formula",), (b"disp-formula",))


@functools.cache  # (one per options: computed once, not for every article)
def _unread(options: JatsOptions) -> tuple:
    """What ``options`` never read, as :func:`unread_contents` takes it: the names cut
    anywhere (formulae too, as placeholders), those cut before the body, those cut where
    they are the root's last children (sub-articles, unless kept; the floats group, whose
    figures and tables are all the stylesheet reads of it), and what the back matter must
    not hold to be cut whole."""
    floats = (options.figures, options.tables, options.formulas) == ("drop", "drop", "placeholder")
    formulas = _FORMULAS if options.formulas == "placeholder" else ()
    anywhere = (_FLOATS if floats else ()) + formulas + _NEVER_READ
    trailing = (() if options.sub_articles else (b"sub-article",)) + (
        (b"floats-group",) if floats else ()
    )
    # the back matter: only its appendices are read (back[1]/app-group | back[1]/app)
    return anywhere, _FRONT_MATTER, trailing, b"<app"


_PUSH_PARSERS = threading.local()


def _parse_without(data: bytes, spans: list[tuple[int, int]]) -> etree._Element:
    """:func:`parse_xml` of ``data`` less ``spans``, its pieces fed to a push parser (one per
    thread: a parser that is fed holds state) instead of joined: the copy of a whole
    article that joining makes costs 4 % of reading it. A syntax error is raised from the
    pieces' parse; the caller then parses the whole document, whose errors are the ones to
    report."""
    pieces, done = [], 0
    for start, end in spans:
        pieces.append(data[done:start])
        done = end
    pieces.append(data[done:])
    if max(map(len, pieces)) > _MOST_FED:
        return parse_xml(b"".join(pieces))
    parser = getattr(_PUSH_PARSERS, "parser", None)
    if parser is None:
        parser = _PUSH_PARSERS.parser = etree.XMLParser(**_PARSER_OPTIONS)
    try:
        for piece in pieces:
            parser.feed(piece)
        root = parser.close()
    except BaseException:
        # A parser stopped mid-document (a syntax error, or an interrupt between feeds) is
        # never reused: its next document would be read as the rest of this one.
        _PUSH_PARSERS.parser = None
        raise
    return _checked(root, *pieces)


#: The most bytes fed at once: libxml2 refuses a chunk of over 10,000,000 bytes where
#: ``huge_tree`` is off ("Buffer size limit exceeded"); a larger piece is joined and parsed
#: as the whole is.
_MOST_FED = 8 << 20


def parse_article(data: bytes, options: JatsOptions | None = None) -> Article:
    """Parse one JATS/NLM article (bytes of ``.nxml``) into an :class:`Article`.

    What ``options`` never read (reference lists, figures and tables that are dropped,
    sub-articles...) is cut from the bytes first where that is provably harmless
    (:mod:`pmc_data.sources.unread`), and lxml parses the rest: the article is the one
    read from the whole document, which is parsed instead whenever the cut one is not
    well-formed."""
    options = options or JatsOptions()
    root = None
    spans = unread_contents(data, *_unread(options))
    if spans:
        try:
            root = _parse_without(data, spans)
        except etree.XMLSyntaxError:
            pass  # the errors, or a cut that was not harmless, are the whole's
        else:
            if not _ascii_compatible(root, data):
                root = None  # the bytes searched were not its characters
    if root is None:
        root = parse_xml(data)
    if _local(root.tag) != "article":
        raise ValueError(f"root element is <{_local(root.tag)}>, not <article>")
    article = Article(article_type=root.get("article-type"))
    if options.formulas == "text":
        _formulas_as_text(root, options.citations)
    marker = _marker(data, root)
    # The stream's bytes: its output encoding is UTF-8 (the stylesheet's xsl:output)
    stream = bytes(_stylesheet(options)(root, m=etree.XSLT.strparam(marker)))
    _read(stream, marker, article)
    article.retracted = article.article_type == "retraction"
    return article
