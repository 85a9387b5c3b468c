"""PubMed baseline + update XML: abstracts with labels and markup, revisions and deletions."""

from __future__ import annotations

import gzip

import pyarrow.parquet as pq

from pmc_data.recipe import load_recipe
from pmc_data.runner import BuildOptions, build


def article(pmid: str, title: str, abstract: str, pmc: str | None = None) -> str:
    pmc_id = f'<ArticleId IdType="pmc">{pmc}</ArticleId>' if pmc else ""
    return f"""<PubmedArticle><MedlineCitation Status="MEDLINE"><PMID Version="1">{pmid}</PMID>
<Article><Journal><JournalIssue><PubDate><Year>2019</Year></PubDate></JournalIssue>
<Title>Test Journal</Title></Journal><ArticleTitle>{title}</ArticleTitle>{abstract}
<PublicationTypeList><PublicationType UI="D016449">Randomized Controlled Trial</PublicationType>
</PublicationTypeList></Article><MeshHeadingList><MeshHeading><DescriptorName UI="D006973">
Hypertension</DescriptorName></MeshHeading></MeshHeadingList></MedlineCitation>
<PubmedData><ArticleIdList><ArticleId IdType="pubmed">{pmid}</ArticleId>
<ArticleId IdType="doi">10.9/{pmid}</ArticleId>{pmc_id}</ArticleIdList></PubmedData>
</PubmedArticle>"""


LABELLED = (
    '<Abstract><AbstractText Label="BACKGROUND">Blood pressure <i>control</i> matters.'
    '</AbstractText><AbstractText Label="RESULTS">Systolic pressure fell by '
    "12 mm Hg (95% CI 9-15).</AbstractText></Abstract>"
)


def xml_gz(path, body: str):
    path.write_bytes(
        gzip.compress(
            f'<?xml version="1.0"?>\n<PubmedArticleSet>{body}</PubmedArticleSet>'.encode(), mtime=0
        )
    )
    return path


def test_baseline_and_updates(tmp_path):
    folder = tmp_path / "pubmed"
    folder.mkdir()
    xml_gz(
        folder / "pubmed25n0001.xml.gz",
        article("100", "Trial one", LABELLED, pmc="PMC900")
        + article(
            "101",
            "Old title",
            "<Abstract><AbstractText>First version of the abstract.</AbstractText></Abstract>",
        )
        + article(
            "102",
            "Deleted later",
            "<Abstract><AbstractText>Soon retracted.</AbstractText></Abstract>",
        )
        + article("103", "No abstract", ""),
    )
    xml_gz(
        folder / "pubmed25n0002.xml.gz",
        article(
            "101",
            "New title",
            "<Abstract><AbstractText>Second version of the abstract.</AbstractText></Abstract>",
        )
        + '<DeleteCitation><PMID Version="1">102</PMID></DeleteCitation>',
    )
    (folder / "pubmed25n0003.xml.gz").write_bytes(gzip.compress(b"<PubmedArticleSet><Pubmed")[:-6])
    recipe = load_recipe(
        "medc_k/pubmed_abstracts", inputs={"pubmed": str(folder)}, require_inputs=True
    )
    result = build(recipe, tmp_path / "out", BuildOptions(progress=False))
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "data").to_pylist()}
    assert set(rows) == {"pubmed:100", "pubmed:101"}
    assert rows["pubmed:100"]["text"] == (
        "Trial one\n\nAbstract\n\nBackground\n\nBlood pressure control matters.\n\nResults\n\n"
        "Systolic pressure fell by 12 mm Hg (95% CI 9-15)."
    )
    meta = rows["pubmed:100"]["metadata"]
    assert (meta["pmid"], meta["pmcid"], meta["doi"], meta["year"], meta["journal"]) == (
        "100",
        "PMC900",
        "10.9/100",
        2019,
        "Test Journal",
    )
    assert meta["sections"] == [
        "publication type: Randomized Controlled Trial",
        "MeSH: Hypertension",
    ]
    assert rows["pubmed:101"]["text"].startswith("New title")
    steps = {s["step"]: s for s in result.manifest["steps"]}
    assert steps["pubmed:pubmed"]["dropped"] == {"no_abstract": 1, "truncated_input": 1}
    assert steps["pubmed_versions"]["dropped"] == {
        "deleted": 1,
        "deletion_marker": 1,
        "superseded": 1,
    }
