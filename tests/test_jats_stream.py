"""The JATS reader's walk in XSLT (pmc_data/sources/jats_text.xsl): its stream markers, the
document encodings it meets, threads, and the constructs whose reading is easy to get wrong
(each found by comparing the stylesheet with the Python walker it replaced on random JATS
trees, and fixed there)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pmc_data.sources import jats
from pmc_data.sources.jats import JatsOptions, UnsafeXML, parse_article
from tests.conftest import SHARED_FIXTURES
from tests.jats_samples import jats as sample

MARK = jats._MARKERS[0]  # the character the stream is cut at, when the document lacks it


def article(body: str, front: str = "", back: str = "", encoding: str = "UTF-8") -> bytes:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>'
        f'<article><front><article-meta><article-id pub-id-type="pmc">7</article-id>'
        f"{front}</article-meta></front><body>{body}</body>{back}</article>"
    ).encode(encoding, "xmlcharrefreplace")


def test_the_marker_character_in_a_document_is_text_like_any_other():
    """A document may hold the private-use character the stream is cut at, literally or as
    a character reference: another marker is taken and the text comes through whole."""
    for written in (MARK, f"&#x{ord(MARK):X};", f"&#{ord(MARK)};"):
        data = article(f"<sec><title>T{written}</title><p>a{written}b <italic>c</italic></p></sec>")
        parsed = parse_article(data)
        assert parsed.blocks == [f"T{MARK}", f"a{MARK}b c"], written
        assert parsed.sections == [f"T{MARK}"]


def test_a_document_in_another_encoding():
    """Latin-1 bytes are not UTF-8: the markers are looked for in the parsed text instead."""
    data = article(f"<p>Caf\xe9 au lait &#x{ord(MARK):x}; (see [1]).</p>", encoding="ISO-8859-1")
    assert b"\xe9" in data
    assert parse_article(data).blocks == [f"Caf\xe9 au lait {MARK} (see [1])."]
    utf16 = article("<p>Two bytes a character.</p>", encoding="UTF-16")
    assert parse_article(utf16).blocks == ["Two bytes a character."]


def test_a_document_holding_every_marker_is_refused_with_a_reason():
    every = "".join(jats._MARKERS)
    with pytest.raises(ValueError, match="every private-use character"):
        parse_article(article(f"<p>{every}</p>"))


def test_undeclared_entities_are_still_refused():
    """The entity-node search is skipped only when no "&" can start one: a document whose
    external DTD might declare ``&foo;`` keeps an unexpanded entity node and is refused."""
    data = (
        b'<?xml version="1.0"?><!DOCTYPE article PUBLIC "-//NLM//DTD JATS//EN" "x.dtd">'
        b"<article><body><p>a &foo; b &lt; &#x3B1;</p></body></article>"
    )
    with pytest.raises(UnsafeXML, match="undeclared entities"):
        parse_article(data)
    predefined = b"<p>a &lt; &amp; &gt; &quot; &apos; &#x3B1; &#945;</p>"
    assert not jats._may_reference_entities(predefined)
    assert jats._may_reference_entities(b"<p>a &foo; b</p>")


def test_threads_share_the_compiled_stylesheet_safely():
    files = sorted((SHARED_FIXTURES / "jats").glob("*.xml")) if SHARED_FIXTURES else []
    documents = [path.read_bytes() for path in files] + [sample()]
    expected = [parse_article(data).text for data in documents]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            assert list(pool.map(lambda data: parse_article(data).text, documents)) == expected


def test_section_paths_in_a_box_inside_a_paragraph_start_afresh():
    data = article(
        "<sec><title>Results</title><p>Seen here.<boxed-text><sec><title>Box method</title>"
        "<p>Inside.</p></sec></boxed-text></p><sec><title>Sub</title><p>After.</p></sec></sec>"
    )
    parsed = parse_article(data)
    assert parsed.sections == ["Results", "Box method", "Results / Sub"]
    assert parsed.blocks == ["Results", "Seen here.", "Box method", "Inside.", "Sub", "After."]


def test_a_dropped_section_takes_its_nested_blocks_and_subsections_with_it():
    data = article(
        "<sec><title>Funding</title><p>Grant 1.<boxed-text><p>Box.</p></boxed-text></p>"
        "<sec><title>More</title><p>x</p></sec></sec>"
        '<sec sec-type="COI-statement"><title>Interests</title><p>None.</p></sec>'
        "<sec><title>Kept</title><p>y</p></sec>"
    )
    parsed = parse_article(data)
    assert (parsed.blocks, parsed.sections) == (["Kept", "y"], ["Kept"])


def test_what_the_reader_strips_is_nowhere_a_block_or_a_part():
    """Footnotes, acknowledgements and citations are gone from the whole tree, so none of
    them is a figure of a group, a caption part or a table row; a formula's content is its
    placeholder, so a formula is no figure with a caption either."""
    keep = JatsOptions(figures="keep", tables="keep")
    groups = article(
        "<table-wrap-group><ack><caption><p>no</p></caption></ack>"
        "<table-wrap><caption><p>Real</p></caption></table-wrap></table-wrap-group>"
        "<fig-group><inline-formula><caption><p>no</p></caption></inline-formula></fig-group>"
    )
    assert parse_article(groups, keep).blocks == ["Table: Real"]
    caption = article(
        '<fig><caption><title>Cells</title><xref ref-type="bibr">3</xref><fn><p>no</p></fn>'
        '<p>Stained <xref ref-type="bibr">4</xref>.</p><sup><xref ref-type="bibr">5</xref>'
        "</sup><break/></caption></fig>"
    )
    # parts: the title, the paragraph, the line break (empty); the rest is no part at all
    assert parse_article(caption, keep).blocks == ["Figure: Cells Stained. "]
    rows = article(
        "<table-wrap><table><tr><td>a</td><td>b<fn><table><tr><td>no</td></tr></table></fn>"
        "</td></tr></table><table-wrap-foot><fig><table><tr><th>c</th></tr></table></fig>"
        "</table-wrap-foot></table-wrap>"
    )
    assert parse_article(rows, keep).blocks == ["Table row: a | b", "Table row: c"]


def test_citation_superscripts_go_only_when_they_hold_nothing_else():
    data = article(
        '<p>Risk<sup><xref ref-type="bibr">1</xref>,<xref ref-type="bibr">2</xref></sup> fell'
        '<sup><xref ref-type="bibr">3</xref>a</sup> and m<sup>2</sup>'
        '<sup><xref ref-type="fig">4</xref></sup>.</p>'
    )
    assert parse_article(data).blocks == ["Risk fella and m24."]
    kept = parse_article(data, JatsOptions(citations=True)).blocks
    assert kept == ["Risk1,2 fell3a and m24."]


def test_formulas_as_text_leave_out_what_inline_text_leaves_out():
    data = article(
        "<p>Let <inline-formula>x + y<fn><p>note</p></fn>"
        '<xref ref-type="bibr">9</xref></inline-formula> hold.</p>'
        "<disp-formula><supplementary-material>no</supplementary-material></disp-formula>"
    )
    assert parse_article(data, JatsOptions(formulas="text")).blocks == [
        "Let x + y hold.",
        "[formula]",
    ]
    assert parse_article(data).blocks == ["Let [formula] hold.", "[formula]"]


def test_front_matter_read_as_written():
    front = (
        '<article-id pub-id-type="pmid"> 123 </article-id>'
        '<article-id pub-id-type="pmc">PMC7</article-id>'
        "<pub-date><year>2020</year></pub-date><pub-date><year> 2019\n</year></pub-date>"
        "<pub-date><year>soon</year></pub-date>"
        "<permissions><copyright-statement>This article is distributed under the Creative "
        "Commons Attribution License</copyright-statement>"
        '<license license-type="open-access"><license-p>Creative Commons <ext-link>'
        "Attribution-NonCommercial</ext-link> 4.0 International License</license-p></license>"
        "</permissions>"
    )
    parsed = parse_article(article("<p>x</p>", front=front))
    assert (parsed.pmid, parsed.pmcid, parsed.year) == ("123", "PMC7", 2019)
    # license texts first, copyright statements after, whatever their order in the file
    assert parsed.license_text == "open-access"
    assert parsed.license == "CC-BY-NC-4.0"


def test_a_narrative_citation_keeps_its_names_and_loses_its_year():
    """A sentence keeps the object of "as described in Theobald and Wuttke (2005).": the names
    stay, the year goes (as ``clean_paper_text`` does with a text citation); a parenthetical
    or numeric citation goes whole; ``citations: true`` keeps everything."""
    data = article(
        '<p>Distances were computed as described in <xref ref-type="bibr" rid="b1">Theobald'
        ' and Wuttke (2005)</xref>. <xref ref-type="bibr" rid="b2">Smith et al. (2020a)</xref>'
        ' showed it (<xref ref-type="bibr" rid="b3">Lee, 2019</xref>), as did others'
        '<sup><xref ref-type="bibr" rid="b4">4</xref></sup>.</p>'
    )
    assert parse_article(data).blocks == [
        "Distances were computed as described in Theobald and Wuttke. Smith et al. showed it,"
        " as did others."
    ]
    kept = parse_article(data, JatsOptions(citations=True)).blocks
    assert kept == [
        "Distances were computed as described in Theobald and Wuttke (2005). Smith et al."
        " (2020a) showed it (Lee, 2019), as did others4."
    ]


@pytest.mark.parametrize(
    ("citation", "kept"),
    [
        ("Jones et al. (2012, 2013)", "Jones et al."),
        ("Smith (2001a)", "Smith"),
        ("(Smith et al., 2020)", ""),  # a parenthetical written inside its xref
        ("Smith et al., 2020 (review)", ""),  # no year in the parentheses: not narrative
        ("Smith et al. (in press)", ""),
        ("12", ""),
    ],
)
def test_only_names_before_a_parenthesised_year_are_kept(citation, kept):
    """A narrative citation is names, then a year in parentheses; anything else goes whole."""
    xref = f'<xref ref-type="bibr" rid="b1">{citation}</xref>'
    data = article(f"<p>As shown by {xref}, it works.</p>")
    assert parse_article(data).blocks == [f"As shown by {kept}, it works.".replace(" ,", ",")]
