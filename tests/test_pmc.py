"""PMC OA ingestion: JATS constructs, licenses, file lists, archives, hostile input."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pmc_data.licenses import allowed, family, to_spdx
from pmc_data.recipe import load_recipe
from pmc_data.runner import BuildOptions, build
from pmc_data.sources.jats import JatsOptions, UnsafeXML, normalise_pmcid, parse_article
from pmc_data.sources.pmc import read_file_list
from pmc_data.steps.papers import CleanPaperText
from tests.conftest import SHARED_FIXTURES
from tests.jats_samples import BILLION_LAUGHS, CC_BY_NC, EXTERNAL_ENTITY, NLM23, jats

ELIFE = SHARED_FIXTURES / "jats"
LEGACY_LIST = (
    "File,Article Citation,Accession ID,Last Updated (YYYY-MM-DD HH:MM:SS),PMID,License\n"
    "oa_package/08/e0/PMC1000001.tar.gz,J Test Med. 2021;1:1,PMC1000001,2021-04-03 10:00:00,"
    "31000001,CC BY\n"
    "oa_package/08/e1/PMC1000002.tar.gz,J Test Med. 2021;1:2,PMC1000002,2021-04-03 10:00:00,,"
    "CC BY-NC\n"
)
BULK_LIST = (
    "Article File,Article Citation,AccessionID,LastUpdated (YYYY-MM-DD HH:MM:SS),PMID,License,"
    "Retracted\n"
    "PMC001xxxxxx/PMC1000003.xml,J Test Med. 2021;1:3,PMC1000003,2022-01-01 00:00:00,31000003,"
    "CC0,no\n"
    "PMC001xxxxxx/PMC1000004.xml,J Test Med. 2021;1:4,PMC1000004,2022-01-01 00:00:00,31000004,"
    "CC BY,yes\n"
)


def test_article_text_structure_and_metadata():
    article = parse_article(jats())
    assert (article.pmcid, article.pmid, article.doi, article.year, article.license) == (
        "PMC1000001",
        "31000001",
        "10.1234/jtm.1",
        2021,
        "CC-BY-4.0",
    )
    assert article.journal == "Journal of Test Medicine"
    assert article.sections == [
        "Abstract",
        "Abstract / Background",
        "Abstract / Results",
        "Plain language summary",
        "Introduction",
        "Discussion",
        "Methods",
        "Methods / Study design",
        "Appendix A",
    ]
    text = article.text
    assert text.startswith("Statins and renal outcomes in trial 1\n\nAbstract\n\nBackground\n\n")
    # Content that must survive.
    for kept in (
        "0.82 [95% CI 0.71-0.95], p < 0.01",
        "20 mg/day",
        "HMGCR and IL-6",
        "- o-phenylenediamine was used",
        "5 mg/kg",
        "Box 1. Key points",
        "Statins are cheap.",
        "Sensitivity analyses",
        "[formula]",
    ):
        assert kept in text, kept
    # The paper's removals: citations, affiliations, e-mails, acknowledgements, funding,
    # conflicts, supplementary material, references, captions, tables, sub-articles.
    for gone in (
        "adults1",
        "Smith et al.",
        "Example University",
        "jane.doe",
        "nurses",
        "Example Foundation",
        "None declared",
        "competing interests",
        "Supplementary file",
        "Kidney. 2019",
        "Study flow",
        "Kaplan-Meier",
        "Baseline characteristics",
        "Statin | 120",
        "Author response",
        "()",
        "(; )",
    ):
        assert gone not in text, gone
    assert "of adults and raises cardiovascular risk." in text


REFS = (
    '<ref-list><ref id="b1"><mixed-citation>Smith J. Kidney. 2019.</mixed-citation></ref>'
    "</ref-list>"
)


@pytest.mark.parametrize(
    ("references", "cut"),
    [
        (REFS, 1),  # the common case: its content is cut before parsing
        # a comment open where "<ref-list" stands: it is text, nothing is cut
        (f"<!-- {REFS}", 0),
        # a span holding another list's start, or touching a comment, is not cut (a list
        # inside a list: the inner one is); where a list's end tag is written
        # "</ref-list >", the span of the first list runs on to the next list's end and
        # holds its start: the first is not cut, the next one is
        ('<ref-list><ref-list><ref id="b1"/></ref-list></ref-list>', 1),
        ('<ref-list><!-- </ref-list> --><ref id="b1"/></ref-list>', 0),
        (
            '<ref-list content-type="none" /><app-group><app><title>Early</title><p>E.</p></app>'
            f"</app-group>{REFS}",
            1,
        ),
        (
            '<ref-list><ref id="b0"/></ref-list ><app-group><app><title>Early</title><p>E.</p>'
            f"</app></app-group>{REFS}",
            1,
        ),
        (
            "<ref-list><!-- </ref-list><app-group><app><title>Old</title><p>Commented.</p></app>"
            '</app-group><ref-list> --><ref id="b1"/></ref-list>',
            0,
        ),
        # a processing instruction open where one stands, a CDATA section in one
        (f"<?note {REFS} ?>{REFS}", 1),
        (
            '<ref-list><ref id="b1"><mixed-citation><![CDATA[a < b]]></mixed-citation></ref>'
            "</ref-list>",
            0,
        ),
    ],
)
def test_reference_lists_are_cut_before_parsing_only_where_harmless(references, cut, monkeypatch):
    """The reader drops reference lists, so their contents are cut from the bytes before
    parsing (a third of lxml's time, see pmc_data/sources/unread.py); the article is the
    same as when parsed whole."""
    from pmc_data.sources import jats as reader

    data = jats().replace(REFS.encode(), references.encode())
    if references.startswith("<!--"):
        data = data.replace(b"</back>", b"--></back>")
    spans = reader.unread_contents(data, *reader._unread(JatsOptions()))
    assert sum(b"<ref id=" in data[start:end] for start, end in spans) == cut
    article = parse_article(data)
    monkeypatch.setattr(reader, "unread_contents", lambda *args: [])
    whole = parse_article(data)
    assert (article.text, article.sections) == (whole.text, whole.sections)
    assert "Kidney. 2019" not in article.text and "Appendix A" in article.text
    assert "Commented" not in article.text


def test_what_follows_a_cut_reference_list_is_read():
    data = jats().replace(REFS.encode(), b"").replace(b" <ack>", REFS.encode() + b" <ack>")
    text = parse_article(data).text
    assert "Appendix A" in text and "Sensitivity analyses" in text and "Kidney" not in text


def test_a_malformed_reference_list_no_longer_rejects_the_article():
    """What the reader drops is not parsed: a malformation inside the reference list leaves
    the article readable; one anywhere else is still a syntax error."""
    from lxml import etree

    broken = jats().replace(b"Kidney. 2019.", b"Kidney & 2019 <i>.")
    assert "Appendix A" in parse_article(broken).text
    # the error is the whole document's (the cut one is fed to a push parser, whose message
    # for the same fault may differ), and the thread's push parser reads the next article
    with pytest.raises(etree.XMLSyntaxError, match="xmlParseEntityRef: no name"):
        parse_article(jats().replace(b"Statins are cheap.", b"Statins & are cheap."))
    assert parse_article(jats()).text == parse_article(jats()).text
    assert "Statins are cheap." in parse_article(jats()).text


def test_the_push_parser_reads_what_the_whole_document_parse_reads(monkeypatch):
    """The article less what is cut from it is fed to a push parser in pieces (one per
    thread). Pieces too large to feed at once are joined and parsed whole; a parser stopped
    mid-document by any exception is dropped, never given the next article."""
    from pmc_data.sources import jats as reader

    expected = parse_article(jats())
    monkeypatch.setattr(reader, "_MOST_FED", 100)  # every piece "too large"
    assert parse_article(jats()).blocks == expected.blocks
    monkeypatch.undo()

    class Interrupted:
        def feed(self, data):
            raise KeyboardInterrupt

    reader._PUSH_PARSERS.parser = Interrupted()
    with pytest.raises(KeyboardInterrupt):
        parse_article(jats())
    assert reader._PUSH_PARSERS.parser is None
    assert parse_article(jats()).blocks == expected.blocks


def test_options_keep_figures_tables_formulas_and_citations():
    options = JatsOptions(
        figures="keep", tables="keep", formulas="text", citations=True, sub_articles=True
    )
    text = parse_article(jats(), options).text
    for kept in (
        "Figure: Study flow diagram of trial 1.",
        "Figure: Kaplan-Meier curves.",
        "Table: Baseline characteristics.",
        "Table row: Statin | 120",
        "E = mc^2",
        "\\frac{a}{b}",
        "(Smith et al., 2019; Lee, 2020)",
        "Author response",
    ):
        assert kept in text, kept


def test_nlm_23_ids_without_prefix_and_no_pmid():
    article = parse_article(NLM23.encode())
    assert (article.pmcid, article.pmid, article.year, article.license) == (
        "PMC176545",
        None,
        2003,
        "LicenseRef-unknown",
    )
    assert article.journal == "Old Journal of Medicine"
    assert normalise_pmcid("pmc176545") == normalise_pmcid("176545") == "PMC176545"
    assert normalise_pmcid("12a") is None


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_entities_are_refused_unexpanded(data):
    with pytest.raises(UnsafeXML, match="declares entities"):
        parse_article(data)


@pytest.mark.parametrize(
    ("text", "spdx"),
    [
        ("http://creativecommons.org/licenses/by-nc-sa/3.0/", "CC-BY-NC-SA-3.0"),
        ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0-1.0"),
        ("CC BY", "LicenseRef-CC-BY"),
        ("CC BY-NC", "LicenseRef-CC-BY-NC"),
        ("CC BY-NC-ND", "LicenseRef-CC-BY-NC-ND"),
        ("CC0", "CC0-1.0"),
        ("NO-CC CODE", "LicenseRef-PMC-no-cc"),
        ("Creative Commons Attribution-NonCommercial 4.0 International License", "CC-BY-NC-4.0"),
        ("distributed under the Creative Commons Attribution License", "LicenseRef-CC-BY"),
        ("CC BY-XY", "LicenseRef-unknown"),
        ("", "LicenseRef-unknown"),
    ],
)
def test_license_normalisation_never_by_prefix(text, spdx):
    assert to_spdx(text) == spdx


def test_license_policies():
    assert allowed("CC-BY-4.0", "commercial") and allowed("LicenseRef-CC-BY", "commercial")
    assert not allowed("LicenseRef-CC-BY-NC", "commercial")
    assert not allowed("CC-BY-SA-4.0", "commercial") and allowed("CC-BY-SA-4.0", "share-alike")
    assert allowed("CC-BY-NC-ND-4.0", "research") and not allowed("LicenseRef-unknown", "research")
    assert allowed("CC-BY-NC-4.0", ["CC-BY-NC"]) and not allowed("CC-BY-4.0", ["CC-BY-NC"])
    assert family("CC-BY-3.0-IGO") == "CC-BY"


def test_both_file_list_layouts(tmp_path):
    (tmp_path / "legacy.csv").write_text(LEGACY_LIST)
    (tmp_path / "bulk.csv").write_text(BULK_LIST)
    legacy = read_file_list(tmp_path / "legacy.csv")
    bulk = read_file_list(tmp_path / "bulk.csv")
    assert legacy["PMC1000002"]["license"] == "LicenseRef-CC-BY-NC"
    assert legacy["PMC1000002"]["pmid"] is None and legacy["PMC1000001"]["pmid"] == "31000001"
    assert bulk["PMC1000003"]["license"] == "CC0-1.0" and not bulk["PMC1000003"]["retracted"]
    assert bulk["PMC1000004"]["retracted"]
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a PMC OA file list"):
        read_file_list(tmp_path / "other.csv")


def test_figure_mentions_go_and_the_rest_of_their_parentheticals_stays():
    clean = CleanPaperText()
    assert clean.transform("shown (Figure 2\u2014figure supplement 1) and (Figs. 1 and 3B).") == (
        "shown and."
    )
    # the publishers' other forms: Nature's, BMC's, eLife's, appendices'
    for mention in (
        "Extended Data Fig. 2",
        "Additional file 1",
        "Figure 6\u2014figure supplements 1\u20136",
        "Appendix 2 Figure 1",
        "Supplementary Table S1",
        "Fig. 2A, B",
    ):
        assert clean.transform(f"as shown ({mention}).") == "as shown.", mention
    # A mention that is an item of a parenthetical goes with its separator; the rest stays.
    for text, expected in (
        (
            "to an alanine (Figure 2, note Ala103 was mutated to a serine).",
            "to an alanine (note Ala103 was mutated to a serine).",
        ),
        ("the loop (Figure 7E, RMSD 0.9 A excluding it).", "the loop (RMSD 0.9 A excluding it)."),
        ("enzyme (AncMDH2-INS, Figure 6). In", "enzyme (AncMDH2-INS). In"),
        ("spectra (NMR, 600 MHz, Table 3) show", "spectra (NMR, 600 MHz) show"),
        ("the plate (Fraction F; Fig. S2) that", "the plate (Fraction F) that"),
        ("cells (19.2 \u00b1 4.6%; Figure 4).", "cells (19.2 \u00b1 4.6%)."),
        ("x (1,000 cells, Figure 2, p < 0.05) y", "x (1,000 cells, p < 0.05) y"),
        # the panels or places that continue a mention go with it when nothing else follows
        # them (a number before other items may be a value: kept); after a semicolon, an
        # item is an item
        ("(X, Figure 1, 2 and 3; S2) z", "(X; S2) z"),
        ("(TP53; Supplementary Table S1, S2) z", "(TP53) z"),
        ("(Fig. 2, upper panel)", ""),
        ("(A, Figure 2; B) c", "(A; B) c"),
        # brackets too, and a first item that is not a mention keeps its words
        ("[Table 3] and (n = 3, Figure 2)", "and (n = 3)"),
        # a bracket of references and citations is one of citations once the references go
        ("fell (Figure 1; Allmann and Baldwin, 2010) and [3, Table 2].", "fell and."),
        ("as Jones et al. (2020; Fig. 3) showed", "as Jones et al. showed"),
    ):
        assert clean.transform(text) == expected, text
    # What is not a reference stays: values, doses, alleles, groups, statistics.
    for text, expected in (
        ("(Table 2, 1,200 patients)", "(1,200 patients)"),
        ("(Figure 2, 10,000 cells per well)", "(10,000 cells per well)"),
        ("(Figure 1, 5, 10 and 20 mg)", "(5, 10 and 20 mg)"),
        ("(Figure 1, 2 or 4 h)", "(2 or 4 h)"),
        ("(Table 2, A, B and AB blood groups)", "(A, B and AB blood groups)"),
        ("(Fig. 2, C, T alleles)", "(C, T alleles)"),
        ("(Figure 1, P < 0.05)", "(P < 0.05)"),
        ("(Table 2; n = 12)", "(n = 12)"),
        ("(Table 2, OR 12)", "(OR 12)"),
        ("(Fig. 3, additional data)", "(additional data)"),
        ("(HR 0.82, 95% CI 0.71-0.95, Table 2)", "(HR 0.82, 95% CI 0.71-0.95)"),
    ):
        assert clean.transform(f"seen {text} here.") == f"seen {expected} here.", text
    # Kept: a mention that is part of a phrase, or on another line than its bracket.
    for kept in ("(highlighted in cyan in Figure 7C)", "a (x,\nFigure 2) b", "(Figures are new)"):
        assert clean.transform(kept) == kept
    # A mention inside another goes first, then the outer one if it was a mention too.
    assert clean.transform("as shown [(Fig. 1) Table 2] and [see (Figure 3) below].") == (
        "as shown and [see below]."
    )
    # ...whichever bracket is outside, and with the separator the inner one left behind
    assert clean.transform("fell [(Fig. 1), Table 2] and (Fig. 1 [Table 2]) then.") == (
        "fell and then."
    )


def test_a_box_inside_a_paragraph_keeps_its_paragraphs_apart():
    xml = (
        b"<article><front><article-meta><article-id pub-id-type='pmc'>1</article-id>"
        b"<title-group><article-title>T</article-title></title-group></article-meta></front>"
        b"<body><p>Intro text.<boxed-text><caption><title>Box 2</title><p>About the box."
        b"</p></caption><p>Box one.</p><p><bold>Image</bold> two.</p>"
        b"</boxed-text></p></body></article>"
    )
    assert parse_article(xml).blocks == [
        "T",
        "Intro text.",
        "Box 2",
        "About the box.",
        "Box one.",
        "Image two.",
    ]


def test_clean_paper_text_joins_words_broken_at_line_ends():
    clean = CleanPaperText()
    assert clean.transform("The treat-\nment worked; COVID-\n19 and beta-\nBlockers stay.") == (
        "The treatment worked; COVID-\n19 and beta-\nBlockers stay."
    )
    # Blanks on either side of the line break, as PDF text has them.
    assert clean.transform("The treat-\t\n  ment and the fol-  \nlow-up.") == (
        "The treatment and the follow-up."
    )


def test_clean_paper_text_tidies_what_its_removals_leave():
    """Lines a removal changed are tidied; lines it did not touch stay as the reader wrote
    them (dehyphenation joins words, which leaves nothing to tidy); "DOI:" lines whose link
    went are dropped."""
    clean = CleanPaperText()
    assert clean.transform("Seen [1] , [2] .\nKept as is ( n = 3 ) .\nWWW.X.ORG/a lists it .") == (
        "Seen.\nKept as is ( n = 3 ) .\nlists it."
    )
    assert clean.transform("A treat-\nment [4] .\nKept ( n = 3 ) .") == (
        "A treatment.\nKept ( n = 3 ) ."
    )
    assert clean.transform("  Nothing to remove .  ") == "Nothing to remove ."
    # DOIs, labelled or bare, go with the URLs; numbers that only look like one stay.
    assert clean.transform(
        "eLife 1: e00007. doi: 10.7554/eLife.00007\nMethods (see 10.1186/1471-2180-11-174). "
        "Dose 10.5 mg; 10.12/3 and 210.1234/5 stay."
    ) == ("eLife 1: e00007.\nMethods. Dose 10.5 mg; 10.12/3 and 210.1234/5 stay.")
    # A DOI that was a sentence of its own takes its full stop with it; one ending a
    # sentence leaves the stop.
    assert (
        clean.transform(
            "PLOS ONE. 10.1371/journal.pone.0120221.g001. DOI: 10.6084/m9.figshare.1263506 "
            "Molecule 2. Data are at doi: 10.5061/dryad.x2. Next."
        )
        == "PLOS ONE. Molecule 2. Data are at. Next."
    )
    assert clean.transform("Intro [1] .\n\nDOI: https://doi.org/10.7554/x\n\nNext") == (
        "Intro.\n\nNext"
    )


def test_author_year_citations_in_their_usual_forms_go():
    """Name particles, letters after the year, papers not out yet, pages, "see also", square
    brackets; of a narrative citation only the year goes. Parentheticals that only look like
    one stay."""
    clean = CleanPaperText()
    for citation in (
        "(van der Berg et al., 2020)",
        "(de Souza et al., 2021; d'Angelo, 2019)",
        "(al-Rashid et al., 2018)",
        "(Smith et al. 2020a, b)",
        "(Smith et al., in press)",
        "(Smith et al., 2020, p. 5)",
        "(Smith et al., 2020; see also Lee, 2019)",
        "(M\u00fcller & Jones, 2019; O'Brien, 2018)",
        "[Eventoff et al., 1977]",
        "[Bridgham et al., 2006; Carroll et al., 2008, 2011]",
    ):
        assert clean.transform(f"Risk fell {citation}.") == "Risk fell.", citation
    assert clean.transform("as Smith et al. (2020a) showed") == "as Smith et al. showed"
    assert clean.transform("as Smith et al. (2020, 2021) showed") == "as Smith et al. showed"
    for citation in (
        "(Van der Berg et al., 2020)",
        "(De Souza, 2020)",
        "(\u00d6zt\u00fcrk et al., 2020)",
        "(Winter et al., 2003; May, 2001)",
    ):
        assert clean.transform(f"Risk fell {citation}.") == "Risk fell.", citation
    kept = (
        "Kept: (de novo, 2020 cases), (Smith, 2020, a new study), (in 2020), "
        "(Phase II, 2019 cohort), the year (2020) alone, [Type 2, 2020 data], "
        "(December 2019), [Spring 2020]."
    )
    assert clean.transform(kept) == kept


def test_clean_paper_text_keeps_real_content():
    clean = CleanPaperText()
    text = (
        "Risk fell [1-3, 7] (Smith et al., 2020; Lee and Park, 2019) (Fig. 1B) "
        "(see Supplementary Figure S3) (Table 2). OR 1.4 [1.1, 1.9]; dose 5 mg/kg (n = 12); "
        "BRCA1 (P < 0.05). See www.example.org or mail me@example.org.\no The bullet stays."
    )
    assert clean.transform(text) == (
        "Risk fell. OR 1.4 [1.1, 1.9]; dose 5 mg/kg (n = 12); BRCA1 (P < 0.05). See or mail.\n"
        "o The bullet stays."
    )


def references_by_words(text: str) -> bool:
    """``papers._references_only`` read word by word, as the tests' reference: no character
    but letters, digits, blanks, points and dashes; each word (letters, or digits with at most
    one letter) a reference word, "and"/"or" in lower case only, or a panel ("2", "2B", "B")."""
    from pmc_data.steps import papers as p

    if re.search(r"[^A-Za-z0-9\s.\u2013\u2014-]", text):
        return False
    for token in re.findall(r"[A-Za-z]+|\d+[A-Za-z]?", text):
        word = token.lower()
        if word in p._CONNECTIVES and token != word:
            return False
        if word not in p._REFERENCE_WORDS and not re.fullmatch(r"\d+[A-Za-z]?|[A-Za-z]", token):
            return False
    return True


def test_substitutions_on_candidates_equal_the_whole_text_ones():
    """The e-mail and spacing patterns run only on lines that hold one of their needles, the
    URL and DOI patterns only at the starts :func:`_starts` finds, blanks before punctuation are
    found from the punctuation, "DOI:" lines from the labels' colons, figure mentions behind
    a first-letter test, patterns that start with "[" at the "[" found: on random texts made
    of the patterns' building blocks, each result equals the plain ``sub``."""
    import random

    from pmc_data import tidy as t
    from pmc_data.steps import papers as p

    on_lines = [(p._EMAIL, "", ("@",)), (t._SPACES, " ", ("\t", "  "))]
    pieces = ["a", "Zz", "w", "WWW.", "Www.", "www.", "http://", "HTTPS://", "Ftp://", "://",
              "x.org/", "İ", "@", "me@", "b.c", "-", "+", "_", ".", ",", ";", ":", " ", "  ", "\t",
              "\n", "\n\n", "(", ")", "[", "]", "1", "é", "\xa0", "doi", "DOI: ", "10.", "1234",
              "/", "<", ":", "DOI:", "doi:", "Doi:", "\u2003", "Fig. 1", "(see ", "Table 2",
              "(\u017fee ", "FIGURE 3", "(e.g., ", "Extended Data Fig. 2", "Movie 1", "[panel B",
              "n = 3", "cf. ", "also ", "Suppl. File S1", "video 2", "(cf. ", "(Compare ",
              "(as shown in ", "(Panel ", "(Movie ", "(Video ", "(table ", "(file ",
              "(Extended Data ", "(supplementary ", "(Additional ", "[Also ", ", Figure 6",
              "; Fig. S2", ", see Table 1", ",\u017fee fig 3", ", as we", ", the", "; also",
              ", Appendix 2 Figure 1", ", 2", ", figures", ", f\u0130g. 4", ", v\u0131deo 1",
              "; a\u017f shown in Fig 2", "(\u0130.e. ", "(\u0131.e., ", "(AND ", "(Or ", "( ; ",
              "(\u2013 ", "(- ", "()", "[]", "(\n)", "(\xa0)", "2and", "OR ", " or 2", "3.2",
              "S2", "upper panel", "AND", " < ", "%"]  # fmt: skip
    # the figure-mention patterns less their letter tests, and items read without their
    # possessive skip
    later = rf"(?=[^()\[\]\n]{{0,200}}?[,;](?=(?i:{p._FIGURE_START})))"
    unfiltered = [
        re.compile(
            rf"\{o}(?:(?=[\s,;]*(?i:{p._FIGURE_START}))|{later})"
            r"(?P<content>[^()\[\]]{1,200})[)\]]"
        )
        for o in "(["
    ]
    # the empty-bracket patterns less their test of the character after the bracket
    empty = [re.compile(rf"\{o}(?:[^\S\n]|[,;\u2013\u2014-]|(?i:{t._FILLER}))*[)\]]") for o in "(["]
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        for fast, plain in zip(t._EMPTY_BRACKETS, empty, strict=True):
            assert fast.subn("\x00", text) == plain.subn("\x00", text), text
        # a bracket's item read as references in one match, and word by word
        for item in text.split(","):
            assert p._references_only(item) == references_by_words(item), item
        for pattern, repl, needles in on_lines:
            result = t.sub_on_lines(pattern, repl, text, needles)
            assert result == pattern.sub(repl, text), (pattern.pattern, text)
        for pattern, repl, needles in (
            (p._URL, "", p._URL_STARTS),
            (p._DOI, p._drop_doi, p._DOI_STARTS),
        ):
            result = t.sub_at(pattern, repl, text, p._starts(text, needles))
            assert result == pattern.sub(repl, text), (pattern.pattern, text)
        expected = t._SPACE_BEFORE_PUNCT.sub(r"\1\2", text)
        assert t._drop_blanks_before_punctuation(text) == expected, text
        # "DOI:" lines, tried only at the line starts before a label's colon
        starts = p._doi_line_starts(text)
        assert t.sub_at(p._DOI_LINE, "", text, starts) == p._DOI_LINE.sub("", text), text
        for fast, plain in zip(p._FIGURE_MENTIONS, unfiltered, strict=True):
            assert fast.sub(p._drop_figure_mention, text) == plain.sub(
                p._drop_figure_mention, text
            ), text
        # patterns that start with "[" tried only at the "[" str.find finds (or, past a few
        # of them, by the engine as usual), with their counts
        many = text + "[1] [" * rng.choice([0, 20])  # past _FEW candidates too
        for pattern, repl in (
            (p._NUMERIC_CITATION, ""),
            (p._FIGURE_MENTIONS[1], p._drop_figure_mention),
            (t._EMPTY_BRACKETS[1], "\x00"),
            (t._AFTER_OPENING_SINGLE[1], "["),
        ):
            assert t.subn_from(pattern, repl, many, "[") == pattern.subn(repl, many), many
    # A callable replacement, and starts that fall inside an earlier match.
    numbers = re.compile(r"\d+")
    assert t.sub_at(numbers, lambda m: f"<{m[0]}>", "a 12 b 345", [2, 3, 7, 8]) == "a <12> b <345>"


def test_tidy_never_joins_lines_and_tidies_lines_in_one_pass():
    """``tidy_lines`` (the JATS reader tidies all paragraphs at once) equals ``tidy`` line by
    line; ``tidy`` keeps every line break and is idempotent; ``BLANKS`` is ``\\s`` less the
    line break."""
    from pmc_data import tidy as t

    assert t.tidy("cutin , , . As ( [ ] ) shown") == "cutin. As shown"
    assert t.tidy("mechanism (; see also; ) and (e.g., ) (see below) (seed).") == (
        "mechanism and (see below) (seed)."
    )
    # What removing citations leaves inside brackets and after "et al."
    assert t.tidy("a fold (; Figure 1), MDH (62% identity, ) and (2011; ) [, their fig 5].") == (
        "a fold (Figure 1), MDH (62% identity) and (2011) [their fig 5]."
    )
    # A full stop on both sides of what was removed is one; an ellipsis stays.
    assert t.tidy("SIS, Inc. (see ). Next (see). (see). Wait... (see ). x") == (
        "SIS, Inc. Next. Wait.... x"
    )
    assert t.tidy("cells ( seen in 5 ) by Amir et al.. Is it...? [0, 1) stays") == (
        "cells (seen in 5) by Amir et al. Is it...? [0, 1) stays"
    )
    import random
    import sys

    assert set(t.BLANKS) == {
        c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace() and c != "\n"
    }
    pieces = ["a", "and", " and ", "see", "Also", "e.g.", "cf.", "et al", "etc", "d", "(", ")",
              "[", "]", ",", ";", ".", "..", ":", "-", "\u2013", " ",
              "  ", "\t", "\xa0", "\u2009", "x", "1"]  # fmt: skip
    rng = random.Random(11)
    for _ in range(3000):
        lines = [
            "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
            for _ in range(rng.randint(1, 6))
        ]
        assert t.tidy_lines(lines) == [t.tidy(line) for line in lines], lines
        once = t.tidy("\n".join(lines))
        assert t.tidy(once) == once, lines  # clean_paper_text leaves tidy lines alone
        assert t.tidy("\n".join(lines)).count("\n") <= len(lines) - 1
        assert t.tidy("x\n" + "\n".join(lines) + "\nx").count("\n") == len(lines) + 1
    with pytest.raises(ValueError, match="line break"):
        t.tidy_lines(["a\nb"])


def test_collapse_whitespace_equals_split_and_join():
    """The JATS reader collapses its whole stream at once with ``collapse_whitespace``: the
    same as ``" ".join(text.split())`` for every whitespace character, in ASCII and other
    texts, at the ends and in runs."""
    import random
    import sys

    from pmc_data import tidy as t

    blanks = t._ASCII_WHITESPACE + t._OTHER_WHITESPACE + " "
    assert sorted(blanks) == sorted(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    rng = random.Random(5)
    alphabet = ["a", "b", ".", "\u2013", "\U0010fffd", " ", "  ", *blanks]
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        assert t.collapse_whitespace(text) == " ".join(text.split()), repr(text)
        # the reader's path: the same collapsed in the stream's UTF-8 bytes
        assert t.collapse_utf8_whitespace(text.encode()) == " ".join(text.split()), repr(text)


def drop_empty_brackets_by_passes(text: str) -> str:
    """The reference for ``tidy._drop_empty_brackets``: each pair replaced by a mark, the text
    split at the marks, and the whole again whenever a join may have made a new pair."""
    import itertools

    from pmc_data import tidy as t

    while True:
        holes = 0
        for pattern in t._EMPTY_BRACKETS:
            text, found = pattern.subn("\x00", text)
            holes += found
        if not holes:
            return text
        pieces = text.split("\x00")
        pieces = [piece.rstrip(t.BLANKS) for piece in pieces[:-1]] + [pieces[-1]]
        end = pieces[0][-2:]
        for i in range(1, len(pieces)):
            right = pieces[i]
            if end[-1:] == "." and end != ".." and right[:1] == "." and right[:2] != "..":
                right = pieces[i] = right[1:]
            end = (end + right)[-2:]
        text = "".join(pieces)
        if not any(
            left[-1:] in t._MAY_OPEN and right.lstrip(t.BLANKS)[:1] in t._MAY_CLOSE
            for left, right in itertools.pairwise(pieces)
        ):
            return text


def test_empty_brackets_found_once_and_again_only_across_a_join():
    """The empty pairs are found in one pass and looked for again only across the joins the
    removal made ("(or [ ] )", a filler cut in two: "(s [ ]ee)"): the same as replacing,
    splitting and passing over the whole text again whenever a join might make a pair."""
    import random

    from pmc_data import tidy as t

    assert t._drop_empty_brackets("a (or [ ] ) b (s [ ]ee) c (x [ ] )") == "a b c (x )"
    assert t._drop_empty_brackets("see [ ] also (\u017f [ ]ee) c") == "see also c"  # long s
    pieces = ["a", "and", " and ", "s", "ee", "see", "Also", "e.g.", "e", ".g.", "cf.", "x",
              "(", ")", "[", "]", ",", ";", ".", "..", "-", "\u2013", " ", "\t", "\xa0",
              "\n", "\u017f", "\u0130"]  # fmt: skip
    rng = random.Random(23)
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        assert t._drop_empty_brackets(text) == drop_empty_brackets_by_passes(text), repr(text)
    many = "(see [ ] ) x " * 30 + "[ , ] y " * 30  # past _FEW openings of each kind
    assert t._drop_empty_brackets(many) == drop_empty_brackets_by_passes(many)
    # long runs of holes between characters a pair can hold: each join's walk back stops at
    # the previous join (walking to the bracket from every join took seconds: quadratic)
    for runs in ("see [] " * 5000, "and ( ) " * 5000, "refs " + "[], " * 3000 + "done."):
        assert t._drop_empty_brackets(runs) == drop_empty_brackets_by_passes(runs)
    # a filler's case-insensitive forms after a hole: tidying twice changes nothing
    for text in ("a ( [ ]\u017fee) b", "a ( [ ]\u0130.e.) b", "a ( [ ]\u0131.e.) b"):
        assert t.tidy(t.tidy(text)) == t.tidy(text) == "a b", text


def test_tidying_single_spaced_lines_skips_only_what_cannot_match():
    """The reader's paragraphs are single-spaced (collapsed) and it says so: no rule makes a
    run of blanks from such text, so skipping the pass for runs changes nothing."""
    import random

    from pmc_data import tidy as t

    pieces = ["a", "and", "see", "Also", "e.g.", "cf.", "et al", "etc", "(", ")", "[", "]",
              ",", ";", ".", "..", ":", "-", "\u2013", " ", "x", "1"]  # fmt: skip
    rng = random.Random(17)
    for _ in range(5000):
        lines = [
            " ".join("".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))).split())
            for _ in range(rng.randint(1, 6))
        ]
        tidied = t.tidy_lines(lines, single_spaced=True)
        assert tidied == t.tidy_lines(lines), lines
        assert not any("  " in line for line in tidied), lines


# --- the reader on archives and hostile input ------------------------------------------


def tar_gz(path: Path, members: list[tuple[str, bytes | None, str]]) -> Path:
    """A .tar.gz with (name, data, kind) members; kind: file, symlink."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return path


def build_pmc(tmp_path: Path, pmc: Path, file_list: Path | None = None, *overrides: str):
    inputs = {"pmc": str(pmc)} | ({"file_list": str(file_list)} if file_list else {})
    recipe = load_recipe(
        "medc_k/pmc_oa",
        inputs=inputs,
        require_inputs=True,
        overrides=["steps.length_filter.min_words=5", *overrides],
    )
    out = tmp_path / "out"
    result = build(recipe, out, BuildOptions(progress=False, overwrite=True))
    rejects = {}
    if (out / "rejects" / "pmc_oa-pmc.parquet").is_file():
        for row in pq.read_table(out / "rejects" / "pmc_oa-pmc.parquet").to_pylist():
            rejects[f"{row['input_file']}!{row['input_member']}"] = row["reason"]
    return result, pq.read_table(out / "data").to_pylist(), rejects


def test_archives_file_list_and_every_kind_of_bad_member(tmp_path):
    pmc = tmp_path / "pmc"
    pmc.mkdir()
    (pmc / "PMC1000001.nxml").write_bytes(jats(1, "PMC1000001"))
    # A legacy per-article package: the .nxml inside, images ignored.
    tar_gz(
        pmc / "PMC1000005.tar.gz",
        [
            ("PMC1000005/article.nxml", jats(5, "PMC1000005"), "file"),
            ("PMC1000005/f1.jpg", b"\xff\xd8", "file"),
        ],
    )
    # A bulk archive with every hazard.
    huge = b"<article>" + b" " * (2 << 20) + b"</article>"
    tar_gz(
        pmc / "bulk.tar.gz",
        [
            ("PMC001xxxxxx/PMC1000003.xml", jats(3, "PMC1000003"), "file"),
            ("PMC001xxxxxx/PMC1000004.xml", jats(4, "PMC1000004"), "file"),  # retracted
            ("PMC001xxxxxx/PMC1000002.xml", jats(2, "PMC1000002", license=CC_BY_NC), "file"),
            ("../../x.xml", jats(9, "PMC1000009"), "file"),
            ("PMC001xxxxxx/link.xml", None, "symlink"),
            ("PMC001xxxxxx/PMC1000010.xml", huge, "file"),
            ("PMC001xxxxxx/PMC1000011.xml", b"<article><body><p>unclosed", "file"),
            ("PMC001xxxxxx/PMC1000012.xml", BILLION_LAUGHS, "file"),
            ("PMC001xxxxxx/PMC1000013.xml", EXTERNAL_ENTITY, "file"),
            (
                "PMC001xxxxxx/PMC1000014.xml",
                b'<article xmlns:xlink="http://www.w3.org/1999/xlink"><front><article-meta>'
                b'<article-id pub-id-type="pmc">1000014</article-id><permissions><license '
                b'xlink:href="http://creativecommons.org/licenses/by/4.0/"/></permissions>'
                b"</article-meta></front></article>",
                "file",
            ),
        ],
    )
    (pmc / "fake.tar.gz").write_text("this is not gzip")
    cut = tar_gz(
        tmp_path / "whole.tar.gz",
        [(f"PMC20000{i}.xml", jats(i, f"PMC20000{i}"), "file") for i in range(10)],
    ).read_bytes()
    (pmc / "truncated.tar.gz").write_bytes(cut[: len(cut) // 2])
    file_list = tmp_path / "list.csv"
    file_list.write_text(
        BULK_LIST + "PMC001xxxxxx/PMC1000002.xml,x,PMC1000002,2022-01-01 00:00:00,,CC BY-NC,no\n"
    )
    result, rows, rejects = build_pmc(
        tmp_path, pmc, file_list, "read.pmc_oa.max_member_bytes=1000000"
    )
    ids = [r["id"] for r in rows]
    assert "pmc:PMC1000001" in ids and "pmc:PMC1000005" in ids and "pmc:PMC1000003" in ids
    assert rejects["pmc/bulk.tar.gz!PMC001xxxxxx/PMC1000004.xml"] == "retracted"
    assert rejects["pmc/bulk.tar.gz!PMC001xxxxxx/PMC1000002.xml"] == "license:LicenseRef-CC-BY-NC"
    assert rejects["pmc/bulk.tar.gz!../../x.xml"] == "unsafe_member"
    assert rejects["pmc/bulk.tar.gz!PMC001xxxxxx/link.xml"] == "unsafe_member"
    assert rejects["pmc/bulk.tar.gz!PMC001xxxxxx/PMC1000010.xml"] == "member_too_large"
    assert rejects["pmc/bulk.tar.gz!PMC001xxxxxx/PMC1000011.xml"] == "invalid_xml"
    assert rejects["pmc/bulk.tar.gz!PMC001xxxxxx/PMC1000012.xml"] == "unsafe_xml"
    assert rejects["pmc/bulk.tar.gz!PMC001xxxxxx/PMC1000013.xml"] == "unsafe_xml"
    assert rejects["pmc/bulk.tar.gz!PMC001xxxxxx/PMC1000014.xml"] == "empty_article"
    assert rejects["pmc/fake.tar.gz!archive"] == "corrupt_archive"
    truncated = [k for k, v in rejects.items() if v == "truncated_archive"]
    assert len(truncated) == 1 and truncated[0].startswith("pmc/truncated.tar.gz!after PMC20000")
    # Some members of the truncated archive were read before the cut.
    assert any(i.startswith("pmc:PMC20000") for i in ids)
    assert not (tmp_path / "x.xml").exists() and not (tmp_path.parent / "x.xml").exists()
    step = result.manifest["steps"][0]
    assert step["in"] == step["out"] + sum(step["dropped"].values())
    row = next(r for r in rows if r["id"] == "pmc:PMC1000005")
    assert row["metadata"]["input_file"] == "pmc/PMC1000005.tar.gz"
    assert row["metadata"]["input_member"] == "PMC1000005/article.nxml"
    assert row["metadata"]["pmid"] == "31000001" and row["license"] == "CC-BY-4.0"


def test_license_from_the_article_without_a_file_list(tmp_path):
    pmc = tmp_path / "pmc"
    pmc.mkdir()
    (pmc / "a.nxml").write_bytes(jats(1, "PMC1000001"))
    (pmc / "b.nxml").write_bytes(jats(2, "PMC1000002", license=CC_BY_NC))
    (pmc / "c.nxml").write_bytes(NLM23.encode())
    _, rows, rejects = build_pmc(tmp_path, pmc)
    assert [r["id"] for r in rows] == ["pmc:PMC1000001"]
    assert rejects == {
        "pmc/b.nxml!pmc/b.nxml": "license:CC-BY-NC-4.0",
        "pmc/c.nxml!pmc/c.nxml": "license:LicenseRef-unknown",
    }
    _, rows, _ = build_pmc(tmp_path, pmc, None, "read.pmc_oa.license_policy=research")
    assert [r["license"] for r in rows] == ["CC-BY-4.0", "CC-BY-NC-4.0"]


def test_loose_files_are_listed_once_and_read_in_small_units(tmp_path, monkeypatch):
    """Units of loose articles are ranges of one sorted listing, made once per reader (a
    listing per unit made reading a big folder quadratic); hidden files and folders and
    links to folders are skipped, a link to a file is read."""
    from pmc_data.registry import reader_class
    from pmc_data.sources import files

    pmc = tmp_path / "pmc"
    (pmc / "b").mkdir(parents=True)
    (pmc / ".work").mkdir()
    for i in range(6):
        (pmc / ("b" if i % 2 else "") / f"PMC100000{i}.nxml").write_bytes(jats(i, f"PMC100000{i}"))
    (pmc / ".work" / "PMC1000009.nxml").write_bytes(jats(9, "PMC1000009"))
    (pmc / ".hidden.nxml").write_bytes(jats(8, "PMC1000008"))
    (pmc / "link").symlink_to(pmc / "b", target_is_directory=True)
    (pmc / "z.nxml").symlink_to(pmc / "PMC1000000.nxml")
    calls = []
    listing = files.list_file_names
    monkeypatch.setattr(files, "list_file_names", lambda *a: calls.append(a) or listing(*a))
    cls = reader_class("pmc_oa")
    reader = cls(cls.Args(license_policy="research"), "medc_k", "pmc")
    units = reader.plan(str(pmc), 1)  # one article a unit
    ids = [r["id"] for u in units for result in reader.read(u) for r in result.table.to_pylist()]
    assert len(calls) == 1 and len(units) == 7
    # In the listing's order (by path below the input); z.nxml is a link to the first.
    assert ids == [f"pmc:PMC100000{i}" for i in (0, 2, 4, 1, 3, 5, 0)]
    assert files.list_files(tmp_path / "missing", (".nxml",)) == []  # the reader says which
    names = [p.relative_to(pmc).as_posix() for p in files.list_files(pmc, (".nxml",))]
    assert names == ["PMC1000000.nxml", "PMC1000002.nxml", "PMC1000004.nxml",
                     "b/PMC1000001.nxml", "b/PMC1000003.nxml", "b/PMC1000005.nxml",
                     "z.nxml"]  # fmt: skip


@pytest.mark.skipif(not ELIFE.is_dir(), reason="needs ../shared/fixtures (eLife JATS articles)")
def test_cleaning_real_articles_twice_changes_nothing_and_leaves_no_mention():
    """On the real eLife articles, with citations kept in the text or not: a second cleaning
    changes nothing (a bracket of citations and a mention goes in one), and no figure/table
    mention is left in a parenthetical but one that is part of a phrase."""
    clean = CleanPaperText()
    mention = re.compile(r"[(\[][^()\[\]]*\b(?:[Ff]ig(?:ure)?s?|[Tt]ables?)\b[^()\[\]]*[)\]]")
    left = []
    for options in (JatsOptions(), JatsOptions(citations=True)):
        for path in sorted(ELIFE.glob("*.xml")):
            once = clean.transform(parse_article(path.read_bytes(), options).text)
            assert clean.transform(once) == once, (path.name, options)
            left += [m.group(0) for m in mention.finditer(once)]
    assert set(left) == {"(highlighted in cyan in Figure 7C)"}


@pytest.mark.skipif(not ELIFE.is_dir(), reason="needs ../shared/fixtures (eLife JATS articles)")
def test_real_elife_articles(tmp_path):
    result, rows, _ = build_pmc(tmp_path, ELIFE)
    by_doi = {r["metadata"]["doi"]: r for r in rows}
    assert set(by_doi) == {
        f"10.7554/eLife.{n}" for n in ("00013", "00240", "00270", "00351", "02304")
    }
    sink = by_doi["10.7554/eLife.00013"]
    assert sink["id"] == "pmc:doi:10.7554/eLife.00013"  # the kitchen sink has no PMC id
    assert sink["license"] == "CC-BY-4.0" and sink["metadata"]["year"] == 2014
    assert "Introduction" in sink["metadata"]["sections"]
    assert "eLife digest" in sink["metadata"]["sections"]
    text = by_doi["10.7554/eLife.00351"]["text"]
    assert text.startswith("Bad medicine\n\nAbstract\n\nIn his new book Ben Goldacre argues")
    assert "against placebo ()" not in text and "against placebo." in text
    for row in rows:
        assert "http://" not in row["text"] and "References" not in row["metadata"]["sections"]
    assert result.manifest["totals"]["licenses"] == {"CC-BY-3.0": 3, "CC-BY-4.0": 2}
    # Several elife articles carry xref citations; none is left as a bare year reference.
    assert not any("et al., 20" in r["text"] for r in rows)
    assert (
        json.loads((tmp_path / "out" / "manifest.json").read_text())["inputs"][0]["input"] == "pmc"
    )
