"""S2ORC: the 2020 release (metadata + pdf_parses) and the current API shape."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from pmc_data.recipe import load_recipe
from pmc_data.runner import BuildOptions, build
from pmc_data.sources.s2orc import api_text, cut_spans
from tests.conftest import SHARED_FIXTURES, write_jsonl

PARAGRAPH = "Statin use lowered LDL cholesterol [3,4] and mortality (Figure 2)."
METADATA = [
    {
        "paper_id": "111",
        "title": "Statins in CKD",
        "abstract": "Short abstract.",
        "pmc_id": "PMC5001",
        "pubmed_id": "2901",
        "doi": "10.1/x",
        "year": 2018,
        "journal": "Kidney J",
    },
    {"paper_id": "222", "title": "Not in PMC", "abstract": "Other abstract.", "pmc_id": None},
    {
        "paper_id": "333",
        "title": "Metadata only",
        "abstract": "An abstract with enough words.",
        "pmc_id": "5003",
        "year": 2011,
    },
]
PARSES = [
    {
        "paper_id": "111",
        "abstract": [
            {
                "text": "We studied statins.",
                "cite_spans": [],
                "ref_spans": [],
                "section": "Abstract",
            }
        ],
        "body_text": [
            {
                "text": PARAGRAPH,
                "section": "Results",
                "cite_spans": [{"start": 35, "end": 40, "text": "[3,4]", "ref_id": "BIBREF3"}],
                "ref_spans": [{"start": 55, "end": 65, "text": "(Figure 2)", "ref_id": "FIGREF1"}],
            },
            {
                "text": "The effect was larger in diabetes.",
                "section": "Results",
                "cite_spans": [],
                "ref_spans": [],
            },
            {"text": "Statins help.", "section": "Discussion", "cite_spans": [], "ref_spans": []},
        ],
        "bib_entries": {"BIBREF3": {"title": "x"}},
        "ref_entries": {"FIGREF1": {"text": "y"}},
    },
]


def api_record() -> dict:
    text = (
        "Statins in CKD\nWe studied statins.\nResults\nLDL fell [3] as shown in Fig. 2. "
        "Mortality also fell.\nReferences\n[3] Smith J."
    )

    def span(part: str, start_at: int = 0) -> dict:
        start = text.index(part, start_at)
        return {"start": start, "end": start + len(part)}

    body = "LDL fell [3] as shown in Fig. 2. Mortality also fell."
    annotations = {
        "abstract": [span("We studied statins.")],
        "sectionheader": [span("Results")],
        "paragraph": [span("We studied statins."), span(body)],
        "bibref": [span("[3]")],
        "figureref": [span("Fig. 2")],
        "bibentry": [span("[3] Smith J.")],
    }
    return {
        "corpusid": 424242,
        "title": "Statins in CKD",
        "externalids": {"pubmedcentral": "7001", "pubmed": "3001", "doi": "10.2/y"},
        "content": {
            "text": text,
            "annotations": {k: json.dumps(v) for k, v in annotations.items()},
            "source": {"oainfo": {"license": "CCBY"}},
        },
    }


def test_cut_spans():
    assert cut_spans(PARAGRAPH, [(35, 40), (55, 65)]) == (
        "Statin use lowered LDL cholesterol and mortality."
    )


def test_api_text_cuts_references_and_keeps_sections():
    text, sections = api_text(api_record())
    assert text == (
        "Statins in CKD\n\nAbstract\n\nWe studied statins.\n\nResults\n\n"
        "LDL fell as shown in. Mortality also fell."
    )
    assert sections == ["Abstract", "Results"]


def run(tmp_path, folder, **kw):
    recipe = load_recipe(
        "medc_k/s2orc",
        inputs={"s2orc": str(folder)},
        require_inputs=True,
        overrides=["steps.length_filter.min_words=1"],
    )
    result = build(recipe, tmp_path / "out", BuildOptions(progress=False, **kw))
    return result, {r["id"]: r for r in pq.read_table(tmp_path / "out" / "data").to_pylist()}


def test_2020_release_pairs_metadata_with_pdf_parses(tmp_path):
    folder = tmp_path / "s2orc"
    write_jsonl(folder / "metadata" / "metadata_0.jsonl", METADATA)
    write_jsonl(folder / "pdf_parses" / "pdf_parses_0.jsonl", PARSES)
    result, rows = run(tmp_path, folder)
    assert set(rows) == {"s2orc:111", "s2orc:333"}
    assert rows["s2orc:111"]["text"] == (
        "Statins in CKD\n\nAbstract\n\nWe studied statins.\n\nResults\n\n"
        "Statin use lowered LDL cholesterol and mortality.\n\n"
        "The effect was larger in diabetes.\n\nDiscussion\n\nStatins help."
    )
    meta = rows["s2orc:111"]["metadata"]
    assert (meta["pmcid"], meta["pmid"], meta["doi"], meta["year"]) == (
        "PMC5001",
        "2901",
        "10.1/x",
        2018,
    )
    assert meta["sections"] == ["Abstract", "Results", "Discussion"]
    assert (
        rows["s2orc:333"]["text"] == "Metadata only\n\nAbstract\n\nAn abstract with enough words."
    )
    reader = result.manifest["steps"][0]
    assert reader["dropped"] == {"no_pmc_id": 1} and result.input_errors == 0


def test_api_shape_with_license(tmp_path):
    folder = tmp_path / "api"
    write_jsonl(folder / "s2orc-0.jsonl", [api_record(), {"corpusid": 5, "externalids": {}}])
    _, rows = run(tmp_path, folder)
    row = rows["s2orc:424242"]
    assert row["license"] == "LicenseRef-CC-BY" and row["metadata"]["pmcid"] == "PMC7001"
    assert "[3]" not in row["text"] and "Smith J." not in row["text"]


@pytest.mark.skipif(not (SHARED_FIXTURES / "s2orc").is_dir(), reason="needs ../shared/fixtures")
def test_real_metadata_sample(tmp_path):
    result, rows = run(tmp_path, SHARED_FIXTURES / "s2orc")
    sample = [
        json.loads(line)
        for line in (SHARED_FIXTURES / "s2orc" / "metadata_sample.jsonl").read_text().splitlines()
    ]
    expected = {f"s2orc:{r['paper_id']}" for r in sample if r["pmc_id"] and r["abstract"]}
    assert set(rows) == expected and len(expected) == 13
    reader = result.manifest["steps"][0]
    assert reader["in"] == 300
    assert reader["dropped"] == {"no_pmc_id": 286, "empty_article": 1}
    assert all(r["metadata"]["pmcid"].startswith("PMC") for r in rows.values())
