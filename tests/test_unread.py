"""Cutting what the JATS reader never reads from an article's bytes before parsing
(pmc_data/sources/unread.py): where it cuts, where it must not, and that the article read is
always the one read from the whole document."""

from __future__ import annotations

import random
import re

import pytest
from lxml import etree

from pmc_data.sources import jats as reader
from pmc_data.sources import unread
from pmc_data.sources.jats import JatsOptions, parse_article
from pmc_data.sources.unread import unread_contents
from tests.conftest import SHARED_FIXTURES
from tests.jats_samples import jats

DEFAULT = reader._unread(JatsOptions())
OPTIONS = [
    JatsOptions(),
    JatsOptions(figures="keep"),
    JatsOptions(tables="keep", formulas="text"),
    JatsOptions(sub_articles=True, citations=True),
    JatsOptions(boxed_text=False, appendices=False),
]


def cut(data: bytes, options: JatsOptions | None = None) -> list[bytes]:
    options = options or JatsOptions()
    return [data[start:end] for start, end in unread_contents(data, *reader._unread(options))]


def read(article) -> tuple:
    return (
        article.text,
        article.sections,
        article.title,
        article.license,
        article.license_text,
        article.journal,
        article.pmcid,
        article.year,
    )


def same_as_whole(data: bytes, options: JatsOptions, monkeypatch) -> bool:
    """Whether the article read with cuts is the one read from the whole document."""
    with_cuts = read(parse_article(data, options))
    with monkeypatch.context() as patch:
        patch.setattr(reader, "unread_contents", lambda *args: [])
        whole = read(parse_article(data, options))
    return with_cuts == whole


def test_what_the_default_options_never_read_is_cut():
    data = jats()
    contents = cut(data)
    # the author list, the figure in a paragraph, the formulae (placeholders), the table,
    # the reference list, the floats group and the sub-article: their contents, their own
    # tags kept
    assert [c[:25] for c in contents] == [
        b'<contrib contrib-type="au',
        b"<label>Figure 1</label><c",
        b"<mml:math><mml:mi>E</mml:",
        b"<tex-math>\\frac{a}{b}</te",
        b"<label>Table 1</label><ca",
        b'<ref id="b1"><mixed-citat',
        b'<fig id="f2"><caption><p>',
        b"<body><p>Author response ",
    ]
    for start, end in unread_contents(data, *DEFAULT):
        assert data[start - 1 : start] == b">" and data[end : end + 2] == b"</"
    text = parse_article(data).text
    assert "Study flow" not in text and "Kidney" not in text and "Statins are cheap." in text


def test_options_that_read_them_leave_them():
    data = jats()
    assert not any(b"Study flow" in c for c in cut(data, JatsOptions(figures="keep")))
    assert not any(b"Statin</td>" in c for c in cut(data, JatsOptions(tables="keep")))
    assert not any(b"Study flow" in c for c in cut(data, JatsOptions(formulas="text")))
    assert not any(b"tex-math" in c for c in cut(data, JatsOptions(formulas="text")))
    assert not any(b"Author response" in c for c in cut(data, JatsOptions(sub_articles=True)))
    # a reference list is never read
    assert any(b"Kidney" in c for c in cut(data, JatsOptions(figures="keep", tables="keep")))
    kept = parse_article(data, JatsOptions(figures="keep", tables="keep", sub_articles=True))
    for text in ("Study flow", "Kaplan-Meier", "Statin | 120", "Author response"):
        assert text in kept.text


FIG = '<fig id="f9"><caption><p>Hidden caption.</p></caption></fig>'


@pytest.mark.parametrize(
    ("fig", "reason"),
    [
        (f"<!-- {FIG} -->", "a comment: its tags are text"),
        (f"<?note {FIG}?>", "a processing instruction"),
        ('<fig id="f9"><caption><p>a<!-- x --></p></caption></fig>', "a comment inside"),
        ('<fig id="f9"><caption><p><![CDATA[</fig>]]></p></caption></fig>', "CDATA inside"),
        ('<fig id="f9"/>', "an empty element"),
    ],
)
def test_spans_that_cannot_be_proved_are_not_cut(fig, reason, monkeypatch):
    data = jats().replace(b"</body>", f"{fig}</body>".encode(), 1)
    assert not any(b"f9" in c or b"Hidden" in c or b"a<!--" in c for c in cut(data)), reason
    assert len(cut(data)) == len(cut(jats())), "the other cuts are made"
    assert same_as_whole(data, JatsOptions(), monkeypatch)


def test_a_figure_in_a_figure_is_cut_from_the_inner_one(monkeypatch):
    """The outer figure's span would hold a start tag of its name: not cut; the inner one's
    content is."""
    inner = b'<fig id="f9"><fig id="f10"><p>In.</p></fig></fig></body>'
    data = jats().replace(b"</body>", inner, 1)
    assert b"<p>In.</p>" in cut(data) and not any(b"f10" in c for c in cut(data))
    assert same_as_whole(data, JatsOptions(), monkeypatch)


@pytest.mark.parametrize(
    "twist",
    [
        b"<!DOCTYPE article [<!ELEMENT fig ANY>]>",  # an internal subset
        b'<!DOCTYPE article PUBLIC "\'" \'""a>b<fig>x</fig>\' [ ]>',  # ...after literals
        b'<!ENTITY x "y">',  # a "<!" that opens none of the markup the proof reads
    ],
)
def test_a_document_whose_markup_cannot_be_bounded_is_parsed_whole(twist):
    data = jats()
    start = data.index(b"<!DOCTYPE")
    data = data[:start] + twist + data[data.index(b">", start) + 1 :]
    assert cut(data) == []


def test_the_literals_of_a_doctype_are_walked_over(monkeypatch):
    """A ">" or a tag inside a quoted literal is text: the DOCTYPE ends after the literals."""
    data = jats()
    start = data.index(b"<!DOCTYPE")
    twisted = b'<!DOCTYPE article SYSTEM "a>b<fig>c</fig>">'
    data = data[:start] + twisted + data[data.index(b">", start) + 1 :]
    assert len(cut(data)) == len(cut(jats())) and not any(b"c</fig>" in c for c in cut(data))
    assert same_as_whole(data, JatsOptions(), monkeypatch)


def test_a_default_namespace_stops_every_cut(monkeypatch):
    """Under ``xmlns="..."`` a ``<fig>`` is not the JATS figure the stylesheet leaves out:
    its text would be read."""
    data = jats().replace(b"<sec><title>Discussion", b'<sec xmlns="urn:x"><title>Discussion')
    assert cut(data) == []
    for blanks in (b" " * 100, b"\n" + b"\t" * 100):  # any run of blanks before "="
        spaced = b"<p>Text <italic xmlns" + blanks + b'="urn:x">in <fig>HIDDEN</fig></italic></p>'
        data = jats().replace(b"<p>Doses were 5 mg/kg.</p>", spaced)
        assert cut(data) == []
        assert "Text in HIDDEN" in parse_article(data).text
    assert b'xmlns:xlink="' in jats() and cut(jats())  # a prefix is no default namespace


def test_an_end_tag_written_with_a_space_makes_the_cut_fail_and_the_whole_is_read(monkeypatch):
    """``</fig >`` in a figure inside a figure: the inner one's span runs on to the outer
    one's ``</fig>``, the cut document is not well-formed, and the whole one is parsed."""
    nested = b'<fig id="f9"><fig id="f10"><p>In.</p></fig ></fig></body>'
    data = jats().replace(b"</body>", nested, 1)
    spans = unread_contents(data, *DEFAULT)
    assert b"<p>In.</p></fig >" in [data[start:end] for start, end in spans]
    with pytest.raises(etree.XMLSyntaxError):
        reader._parse_without(data, spans)
    assert same_as_whole(data, JatsOptions(), monkeypatch)
    assert "Statins are cheap." in parse_article(data).text


def test_a_greater_than_in_an_attribute_makes_the_cut_fail(monkeypatch):
    data = jats().replace(b'<fig id="f1">', b'<fig id="f1" alt="a > b">')
    with pytest.raises(etree.XMLSyntaxError, match="attribute"):
        reader._parse_without(data, unread_contents(data, *DEFAULT))
    assert same_as_whole(data, JatsOptions(), monkeypatch)


def test_the_back_matter_is_cut_whole_when_it_holds_no_appendix(monkeypatch):
    """Only the appendices of <back> are read: a back matter that is the root's child (it
    ends right before the trailing children) and holds none is cut whole; one that holds an
    appendix keeps its content (what is never read inside it is cut by name)."""
    no_appendix = re.sub(rb"<app-group>.*</app-group>", b"", jats(), flags=re.DOTALL)
    contents = cut(no_appendix)
    assert any(c.startswith(b"\n <ack><p>Funded") and b"Kidney" in c for c in contents)
    assert not any(b"Funded" in c for c in cut(jats()))
    for options in OPTIONS:
        assert same_as_whole(no_appendix, options, monkeypatch)
        assert same_as_whole(jats(), options, monkeypatch)
    # a back matter that is not the root's child is not cut whole
    inside = no_appendix.replace(b"</back>", b"</back></p>").replace(b"<back>", b"<p><back>")
    assert not any(b"Funded" in c for c in cut(inside))


def test_utf16_bytes_are_never_searched(monkeypatch):
    """UTF-16 with a byte order mark and no declaration (lxml reports it as UTF-8): the
    bytes of "\u663c\u6769\u4e3e" spell "<fig>N"; nothing is cut, and the reader's marker
    is looked for in the text."""
    text = "\u663c\u6769\u4e3e hidden words \u3c41\u662f\u6769\u4e3e"
    data = b"\xff\xfe" + f"<article><body><p>{text}</p></body></article>".encode("utf-16-le")
    assert cut(data) == []
    assert parse_article(data).text == text
    mark = reader._MARKERS[0]
    holding = b"\xff\xfe" + f"<article><body><p>a{mark}b</p></body></article>".encode("utf-16-le")
    assert parse_article(holding).text == f"a{mark}b"


def test_a_span_inside_another_goes_with_it_and_overlapping_ones_cut_nothing(monkeypatch):
    """A formula in a reference list is cut with the list (two spans, one inside the other,
    would make the cut document fail and be parsed twice); spans that overlap otherwise
    come only from a document that is not well-formed: nothing is cut."""
    formula = b"<inline-formula><tex-math>x^2</tex-math></inline-formula>"
    data = jats().replace(b"Smith J. Kidney. 2019.", b"On " + formula + b" flows.")
    assert any(b"On <inline-formula>" in c for c in cut(data))
    assert not any(c.startswith(b"<tex-math>x^2") for c in cut(data))
    reader._parse_without(data, unread_contents(data, *DEFAULT))  # well-formed
    assert same_as_whole(data, JatsOptions(), monkeypatch)
    crossed = (
        jats()
        .replace(b"<p>{extra}</p>", b"")
        .replace(b"</body>", b"<fig><ref-list>a</fig>b</ref-list></body>", 1)
    )
    assert cut(crossed) == []


def test_the_tags_looked_at_are_bounded_in_number():
    """Past 4,096 start tags of a group, the rest of the document is not searched."""
    figures = b'<fig id="x"><p>In.</p></fig>'
    data = jats().replace(b"<body>", b"<body>" + figures * 5000, 1)
    assert cut(data).count(b"<p>In.</p>") == unread._MOST_TAGS
    assert not any(b"Study flow" in c for c in cut(data)), "the figure after them is left"


def test_trailing_children_are_cut_only_when_the_bytes_show_them_children_of_the_root():
    data = jats()
    assert any(b"Author response" in c for c in cut(data))
    for twisted in (
        data.replace(b"</sub-article>\n</article>", b"</sub-article>\n</article>\n<!-- end -->"),
        data.replace(b"</sub-article>\n</article>", b"</sub-article>tail\n</article>"),
        data.replace(b"</sub-article>\n</article>", b"</sub-article></p>\n</article>"),
    ):
        assert not any(b"Author response" in c for c in cut(twisted))
    # a sub-article inside a paragraph is read as its text: never cut from there
    in_a_paragraph = b"<p>Cheap.<sub-article><p>In.</p></sub-article></p>"
    inside = data.replace(b"<p>Statins are cheap.</p>", in_a_paragraph)
    assert not any(b"In.</p>" in c for c in cut(inside))
    assert "Cheap.In." in parse_article(inside).text


@pytest.mark.parametrize(
    "body",
    [
        b"<fig>" * 5000,  # start tags never closed
        b"<fig-group>" * 2500 + b"<fig><p>x</p></fig>" * 2500,
        b"<fig>" * 2000 + b"</fig>" * 2000,  # nested
        b"<fig alt='>'>" * 5000,
        b"<table-wrap>" * 5000 + b"</table-wrap>",
    ],
)
def test_the_search_is_linear_in_the_bytes_on_hostile_documents(body, monkeypatch):
    """Each search is bounded by the next tag found: however the tags of a document are laid
    out, the bytes searched stay a small multiple of its length (an unbounded search for
    each start tag's end would read the rest of the document each time)."""
    searched = 0

    def counting(search, forward):
        def counted(data, needle, start=0, end=None):
            nonlocal searched
            end = len(data) if end is None else min(end, len(data))
            at = search(data, needle, start, end)
            if at == -1:
                searched += end - start
            else:  # up to where it was found
                searched += at + len(needle) - start if forward else end - at
            return at

        return counted

    monkeypatch.setattr(unread, "_find", counting(unread._find, forward=True))
    monkeypatch.setattr(unread, "_rfind", counting(unread._rfind, forward=False))
    data = b"<article><body>" + body + b"</body></article>"
    unread_contents(data, *DEFAULT)
    assert searched < 20 * len(data)


def test_a_document_with_more_markup_than_an_article_holds_is_parsed_whole():
    many = b"".join(b"<!-- note %d -->" % i for i in range(300))
    assert cut(jats().replace(b"<body>", b"<body>" + many)) == []
    few = b"".join(b"<!-- note %d -->" % i for i in range(100))
    assert cut(jats().replace(b"<body>", b"<body>" + few))


def test_a_malformation_inside_a_cut_no_longer_rejects_the_article():
    """What the reader never reads is not parsed: a malformed figure caption leaves the
    article readable; a malformation anywhere else is still the whole document's error."""
    broken = jats().replace(b"Study flow diagram", b"Study & flow <i>diagram")
    assert "Statins are cheap." in parse_article(broken).text
    with pytest.raises(etree.XMLSyntaxError, match="xmlParseEntityRef: no name"):
        parse_article(jats().replace(b"Statins are cheap.", b"Statins & are cheap."))
    assert "Statins are cheap." in parse_article(jats()).text  # the push parser reads on


def test_text_read_as_a_string_leaves_out_what_may_be_cut(monkeypatch):
    """A citation's names, the journal title and the license are read as strings: the text
    of a figure, table, reference list or supplementary material inside one is not part of
    them, cut or not."""
    data = jats().replace(
        b'<xref ref-type="bibr" rid="b4">Lee, 2020</xref>',
        b'<xref ref-type="bibr" rid="b4">Lee<fig><p>Hidden (1999)</p></fig> (2020)</xref>',
    )
    data = data.replace(
        b"<journal-title>Journal of Test Medicine</journal-title>",
        b"<journal-title>Journal of <fig><p>Hidden</p></fig>Test Medicine</journal-title>",
    )
    data = data.replace(
        b"<permissions>",
        b"<permissions><fig><license><license-p>CC BY-NC 4.0</license-p></license></fig>",
    )
    # a license given in words only: they are its text
    data = re.sub(rb"<license [^>]*>", b"<license>", data)
    data = data.replace(b"license.</license-p>", b"license.<fig>Hidden</fig></license-p>")
    for options in OPTIONS:
        article = parse_article(data, options)
        assert article.journal == "Journal of Test Medicine"
        assert article.license_text == "This is an open access article under the CC BY license."
        if not options.citations:
            assert "raises cardiovascular risk (Lee)." in article.text
        assert "Hidden" not in article.text
        assert same_as_whole(data, options, monkeypatch)


def test_front_matter_the_paper_removes_is_never_read_wherever_it_stands(monkeypatch):
    """Author lists, affiliations, author notes and funding are cut from the front matter,
    and left out where they stand elsewhere too (in a paragraph, a formula's text)."""
    data = jats().replace(
        b"<p>Doses were 5 mg/kg.</p>",
        b"<p>Doses were 5 mg/kg.<aff>Dept. of Nephrology</aff><author-notes>Equal.</author-notes>"
        b"<inline-formula>x<funding-group>Grant 7</funding-group></inline-formula></p>",
    )
    assert any(b"jane.doe" in c for c in cut(data))
    for options in OPTIONS:
        text = parse_article(data, options).text
        assert "Doses were 5 mg/kg." in text and "Doe" not in text
        assert "Nephrology" not in text and "Equal." not in text and "Grant" not in text
        assert same_as_whole(data, options, monkeypatch)


def test_the_stylesheet_and_the_reader_name_the_same_unread_elements():
    groups = reader._NEVER_READ + reader._FRONT_MATTER + reader._FLOATS + reader._FORMULAS
    names = {name.decode() for group in groups for name in group}
    xsl = reader.STYLESHEET.read_text()
    entity = re.search(r'<!ENTITY unread "([^"]*)"', xsl).group(1)
    assert {name.strip() for name in entity.split("|")} == names
    is_unread = re.search(r'<!ENTITY is-unread "([^"]*)"', xsl).group(1)
    assert set(re.findall(r"self::([\w-]+)", is_unread)) == names


# --- the article read is the whole document's: random documents ------------------------------

WORDS = ["kidney", "risk", "trial", "(2005)", "[3]", "dose", "Smith", "et", "al.", "mg/kg", "p",
         "<", "0.01", "(", "see", ")", "1999a"]  # fmt: skip


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 5)))


def _element(rng: random.Random, parent: etree._Element, depth: int) -> None:
    """A random JATS-like element under ``parent``: figures, tables, supplementary material
    and reference lists where they belong and where they do not (in citations, titles,
    licenses, formulae), nested and empty ones."""
    tags = [
        "p", "sec", "title", "fig", "fig-group", "table-wrap", "table-wrap-group", "caption",
        "supplementary-material", "ref-list", "italic", "xref", "sup", "boxed-text", "list",
        "list-item", "inline-formula", "disp-formula", "tr", "td", "label", "app", "license-p",
        "aff", "contrib-group",
    ]  # fmt: skip
    tag = rng.choice(tags)
    element = etree.SubElement(parent, tag)
    if tag == "xref":
        element.set("ref-type", rng.choice(["bibr", "bibr", "fig"]))
    if rng.random() < 0.1:
        element.set("alt", rng.choice(["a > b", "x/>y", "<"]))
    if rng.random() < 0.6:
        element.text = _text(rng)
    if depth < 4:
        for _ in range(rng.randint(0, 3)):
            _element(rng, element, depth + 1)
    element.tail = _text(rng) if rng.random() < 0.5 else None


def random_article(seed: int) -> bytes:
    rng = random.Random(seed)
    root = etree.fromstring(jats(seed % 3 + 1))
    for parent in (
        root.find("body"),
        root.find("body/sec/p"),
        root.find("back"),
        root.find(".//journal-title"),
        root.find(".//permissions"),
        root.find(".//abstract/sec/p"),
        root.find("floats-group"),
    ):
        for _ in range(rng.randint(0, 3)):
            _element(rng, parent, 0)
    if rng.random() < 0.3:  # a sub-article or floats group elsewhere than last
        late = etree.Element(rng.choice(["sub-article", "floats-group"]))
        late.text = "Late."
        root.insert(rng.randint(0, len(root)), late)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if rng.random() < 0.3:  # end tags with a blank; a comment holding tags
        data = data.replace(b"</fig>", b"</fig >", 1).replace(b"</sec>", b"</sec\n>", 1)
    if rng.random() < 0.3:
        data = data.replace(b"<body>", b"<body><!-- <fig><p>x</p></fig> -->", 1)
    return data


def test_random_documents_read_the_same_with_and_without_cuts(monkeypatch):
    """Documents where every cut element sits where the stylesheet reads strings (citations,
    titles, licenses, formulae), nested in itself, in comments: read with cuts, each is read
    as from the whole document, under every option; most of them are cut."""
    was_cut = 0
    for seed in range(150):
        data = random_article(seed)
        was_cut += bool(unread_contents(data, *DEFAULT))
        for options in OPTIONS:
            assert same_as_whole(data, options, monkeypatch), (seed, options)
    assert was_cut > 100


@pytest.mark.skipif(not (SHARED_FIXTURES / "jats").is_dir(), reason="shared fixtures absent")
def test_the_real_articles_read_the_same_with_and_without_cuts(monkeypatch):
    for path in sorted((SHARED_FIXTURES / "jats").glob("*.xml")):
        data = path.read_bytes()
        for options in OPTIONS:
            assert same_as_whole(data, options, monkeypatch), (path.name, options)
