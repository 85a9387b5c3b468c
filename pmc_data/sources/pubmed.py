"""PubMed baseline and update files (``pubmed25n0001.xml.gz``): titles and abstracts.

Each ``PubmedArticle`` becomes a row ``pubmed:<PMID>`` with the title, the abstract (labelled
sections as headings: ``BACKGROUND``, ``METHODS``...; inline markup flattened), and metadata
(PMID, PMC id when present, DOI, journal, year, publication types and MeSH headings in
``sections``). Update files revise and delete records: a ``DeleteCitation`` PMID becomes a
deletion marker, and the ``pubmed_versions`` step keeps only the newest version of each PMID
and drops deleted ones, so a baseline plus its updates builds the current PubMed.

Files are streamed with ``lxml.etree.iterparse`` (no DTD, no network, no entity expansion),
one article at a time. Deletion markers are rows until ``pubmed_versions`` removes them: put
no filter before that step (``recipes/medc_k/pubmed_abstracts.yaml`` shows the order).
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator

import polars as pl
from lxml import etree

from pmc_data.registry import (
    GlobalStep,
    ReadResult,
    StepArgs,
    Unit,
    decisions,
    register_reader,
    register_step,
)
from pmc_data.sources.documents import DocumentArgs, RowBuilder
from pmc_data.sources.files import FileReader
from pmc_data.sources.jats import normalise_pmcid

BATCH = 2000
DELETION = "pubmed-deletion"


class PubmedArgs(StepArgs):
    source: str = "pubmed"
    #: PubMed abstracts belong to their publishers; the license policy decides.
    license: str = "LicenseRef-pubmed-abstract"
    #: Keep records without an abstract (title only).
    require_abstract: bool = True


def _text(element: etree._Element | None) -> str:
    return re.sub(r"\s+", " ", "".join(element.itertext())).strip() if element is not None else ""


def article_record(article: etree._Element) -> dict:
    """The row fields of one ``PubmedArticle`` element."""
    citation = article.find("MedlineCitation")
    pmid = _text(citation.find("PMID"))
    art = citation.find("Article")
    title = _text(art.find("ArticleTitle")) if art is not None else ""
    blocks = [title] if title else []
    abstract = art.find("Abstract") if art is not None else None
    pieces = abstract.findall("AbstractText") if abstract is not None else []
    if pieces:
        blocks.append("Abstract")
    for piece in pieces:
        label = piece.get("Label")
        if label and len(pieces) > 1:
            blocks.append(label.capitalize() if label.isupper() else label)
        blocks.append(_text(piece))
    ids = {
        i.get("IdType"): (i.text or "").strip()
        for i in article.iterfind("PubmedData/ArticleIdList/ArticleId")
    }
    year = None
    for path in (
        "Article/Journal/JournalIssue/PubDate/Year",
        "Article/ArticleDate/Year",
        "Article/Journal/JournalIssue/PubDate/MedlineDate",
    ):
        node = citation.find(path)
        if node is not None and node.text and node.text[:4].isdigit():
            year = int(node.text[:4])
            break
    journal = _text(citation.find("Article/Journal/Title"))
    types = [_text(t) for t in citation.iterfind("Article/PublicationTypeList/PublicationType")]
    mesh = [_text(m) for m in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName")]
    return {
        "pmid": pmid,
        "title": title,
        "has_abstract": bool(pieces),
        "text": "\n\n".join(b for b in blocks if b),
        "pmcid": normalise_pmcid(ids.get("pmc")),
        "doi": ids.get("doi") or None,
        "journal": journal or None,
        "year": year,
        "sections": [f"publication type: {t}" for t in types] + [f"MeSH: {m}" for m in mesh],
    }


@register_reader
class PubmedReader(FileReader):
    """PubMed XML (baseline and updates, ``.xml`` or ``.xml.gz``)."""

    name = "pubmed"
    Args = PubmedArgs
    suffixes = (".xml", ".xml.gz")

    def _builder(self, display: str) -> RowBuilder:
        args = DocumentArgs(
            source=self.args.source, license=self.args.license, source_field="source"
        )
        return RowBuilder(args, self.input_name, display)

    def read(self, unit: Unit) -> Iterator[ReadResult]:
        rows = self._builder(unit.display)
        opener = gzip.open if unit.path.endswith(".gz") else open
        count = 0
        try:
            with opener(unit.path, "rb") as stream:
                events = etree.iterparse(
                    stream,
                    events=("end",),
                    tag=("PubmedArticle", "DeleteCitation"),
                    resolve_entities=False,
                    no_network=True,
                    load_dtd=False,
                    huge_tree=False,
                )
                for _, element in events:
                    count += 1
                    self._element(rows, element, f"article {count}")
                    element.clear(keep_tail=True)
                    while element.getprevious() is not None:
                        del element.getparent()[0]
                    if rows.items >= BATCH:
                        yield rows.result()
                        rows = self._builder(unit.display)
        except etree.XMLSyntaxError as exc:
            rows.stream_error("invalid_xml", f"after article {count}", str(exc))
        except (EOFError, OSError, zlib.error) as exc:
            rows.stream_error("truncated_input", f"after article {count}", f"{type(exc).__name__}")
        yield rows.result()

    def _element(self, rows: RowBuilder, element: etree._Element, member: str) -> None:
        if element.tag == "DeleteCitation":
            for pmid in element.iterfind("PMID"):
                rows.items += 1
                rows.add_record(
                    {"id": (pmid.text or "").strip(), "text": "", "source": DELETION},
                    member,
                    raw=None,
                )
            return
        rows.items += 1
        try:
            record = article_record(element)
        except (AttributeError, ValueError) as exc:
            rows.error("invalid_xml", member, "", f"{type(exc).__name__}: {exc}")
            return
        if not record["pmid"]:
            rows.error("missing_id", member, "", "no PMID")
            return
        if self.args.require_abstract and not record["has_abstract"]:
            rows.error("no_abstract", member, "", None)
            rows.errors[-1]["id"] = f"{self.args.source}:{record['pmid']}"
            return
        rows.add_record(
            {
                "id": record["pmid"],
                "text": record["text"],
                "metadata": {
                    k: record[k] for k in ("title", "pmcid", "doi", "journal", "year", "sections")
                }
                | {"pmid": record["pmid"]},
            },
            f"{member} (PMID {record['pmid']})",
            raw=None,
        )


class PubmedVersionsArgs(StepArgs):
    pass


@register_step
class PubmedVersions(GlobalStep):
    """Newest version of each PMID wins; deleted PMIDs and deletion markers are dropped.

    Input order is update order (baseline files first, then updates by number), so the last
    occurrence of a PMID is its current version. Reasons: ``superseded``, ``deleted``,
    ``deletion_marker``.
    """

    name = "pubmed_versions"
    Args = PubmedVersionsArgs

    def signatures(self, batch):
        import pyarrow as pa

        return pa.table({"id": batch.column("id"), "source": batch.column("source")})

    def decide(self, signatures: pl.LazyFrame) -> pl.DataFrame:
        frame = (
            signatures.lazy()
            .sort("_order")
            .collect()
            .with_columns(
                pmid=pl.col("id").str.replace(r"^[^:]*:", ""),
                marker=pl.col("source") == DELETION,
            )
        )
        last = frame.group_by("pmid").agg(pl.col("_order").max().alias("last"))
        frame = frame.join(last, on="pmid")
        deleted = (
            frame.filter(pl.col("marker"))
            .group_by("pmid")
            .agg(pl.col("_order").max().alias("deleted_at"))
        )
        frame = frame.join(deleted, on="pmid", how="left")
        reason = (
            pl.when(pl.col("marker"))
            .then(pl.lit("deletion_marker"))
            .when(pl.col("deleted_at").is_not_null() & (pl.col("_order") < pl.col("deleted_at")))
            .then(pl.lit("deleted"))
            .when(pl.col("_order") < pl.col("last"))
            .then(pl.lit("superseded"))
            .otherwise(None)
        )
        dropped = frame.with_columns(reason=reason).filter(pl.col("reason").is_not_null())
        parts = [
            decisions(group["_order"], reason, [{"pmid": p} for p in group["pmid"].to_list()])
            for (reason,), group in dropped.group_by("reason", maintain_order=True)
        ]
        return pl.concat(parts).sort("_order") if parts else decisions([], "superseded", [])
