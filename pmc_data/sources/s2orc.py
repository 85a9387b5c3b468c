"""S2ORC papers, in both shapes, keeping those with a PubMed Central id (the paper's selection).

- **2020 static release**: ``metadata_N.jsonl.gz`` (``paper_id``, ``pmc_id``, ``pubmed_id``,
  ``title``, ``abstract``...) and, when present, the matching ``pdf_parses_N.jsonl.gz``
  (``abstract[]`` and ``body_text[]`` paragraphs with ``section``, ``cite_spans``,
  ``ref_spans``). Put them under one folder (``metadata/`` and ``pdf_parses/``, or side by
  side); shards pair by their number. Citation and figure/table reference spans are cut out
  by their offsets, not by pattern.
- **Current API dataset**: one record per line with ``corpusid``,
  ``externalids.pubmedcentral``, ``content.text`` and ``content.annotations.*`` holding
  JSON-encoded span lists (abstract, paragraph, sectionheader, bibref, figureref, tableref,
  formula...), and ``oainfo.license``.

Ids are ``s2orc:<paper id>``. Papers without a PMC id are dropped as ``no_pmc_id`` (only the
id is kept in the reject: the selection drops most of S2ORC, and the input still has them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson

from pmc_data.licenses import to_spdx
from pmc_data.registry import ReadResult, StepArgs, Unit, register_reader
from pmc_data.sources.documents import JSONL_SUFFIXES, DocumentArgs, RowBuilder
from pmc_data.sources.files import (
    FileReader,
    display_path,
    open_decompressed,
)
from pmc_data.sources.jats import normalise_pmcid
from pmc_data.tidy import tidy

BATCH = 2000
_SHARD = re.compile(r"(\d+)(?:\.jsonl|\.json)")
_CUT_SPANS = ("bibref", "figureref", "tableref")


class S2orcArgs(StepArgs):
    source: str = "s2orc"
    #: Keep only papers with a PubMed Central id, as the paper did.
    require_pmc_id: bool = True
    #: License of papers that do not state one (the 2020 release states none).
    license: str = "LicenseRef-unknown"


def cut_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` without the ``[start, end)`` spans, and without what they leave behind.

    >>> cut_spans("Risk fell [3] (Fig. 2).", [(10, 13), (15, 21)])
    'Risk fell.'
    """
    kept, position = [], 0
    for start, end in sorted(spans):
        if start >= position:
            kept.append(text[position:start])
            position = max(position, end)
    kept.append(text[position:])
    return tidy(re.sub(r"\s+", " ", "".join(kept)))


def _spans(values: list[dict] | None) -> list[tuple[int, int]]:
    return [(int(v["start"]), int(v["end"])) for v in values or [] if "start" in v and "end" in v]


def paragraphs_2020(paragraphs: list[dict]) -> tuple[list[str], list[str]]:
    """Blocks (section headings on change, then paragraph text) and section names."""
    blocks, sections, current = [], [], None
    for paragraph in paragraphs or []:
        section = (paragraph.get("section") or "").strip()
        if section and section != current:
            blocks.append(section)
            sections.append(section)
        current = section or current
        spans = _spans(paragraph.get("cite_spans")) + _spans(paragraph.get("ref_spans"))
        text = cut_spans(paragraph.get("text") or "", spans)
        if text:
            blocks.append(text)
    return blocks, sections


def api_text(record: dict) -> tuple[str, list[str]]:
    """Title, abstract and sectioned body of a current-API S2ORC record."""
    content = record.get("content") or {}
    text = content.get("text") or ""
    notes = content.get("annotations") or {}

    def spans(name: str) -> list[dict]:
        value = notes.get(name)
        if isinstance(value, str):
            value = orjson.loads(value) if value.strip() else []
        return sorted(value or [], key=lambda s: int(s.get("start", 0)))

    cut = [s for name in _CUT_SPANS for s in _spans(spans(name))]
    blocks: list[str] = []
    sections: list[str] = []
    if record.get("title"):
        blocks.append(str(record["title"]).strip())
    abstract = _spans(spans("abstract"))
    for start, end in abstract:
        blocks += [
            "Abstract",
            cut_spans(
                text[start:end], [(a - start, b - start) for a, b in cut if a >= start and b <= end]
            ),
        ]
    if abstract:
        sections.append("Abstract")
    events = [(int(s["start"]), 0, s) for s in spans("sectionheader")]
    events += [(int(s["start"]), 1, s) for s in spans("paragraph")]
    for start, kind, span in sorted(events, key=lambda e: (e[0], e[1])):
        end = int(span["end"])
        if any(a <= start and end <= b for a, b in abstract):
            continue  # the abstract's own paragraphs
        piece = text[start:end]
        if kind == 0:
            heading = piece.strip()
            if heading:
                blocks.append(heading)
                sections.append(heading)
            continue
        inner = [(a - start, b - start) for a, b in cut if a >= start and b <= end]
        paragraph = cut_spans(piece, inner)
        if paragraph:
            blocks.append(paragraph)
    return "\n\n".join(b for b in blocks if b), sections


def _license_of(record: dict) -> str | None:
    for holder in (
        record,
        record.get("content") or {},
        (record.get("content") or {}).get("source") or {},
    ):
        info = holder.get("oainfo") if isinstance(holder, dict) else None
        if isinstance(info, dict) and info.get("license"):
            return to_spdx(str(info["license"]))
    return None


@register_reader
class S2orcReader(FileReader):
    """S2ORC in either release shape (see the module docstring)."""

    name = "s2orc"
    Args = S2orcArgs
    suffixes = JSONL_SUFFIXES

    def plan(self, path: str, unit_bytes: int) -> list[Unit]:
        """One unit per metadata or API file; a 2020 pdf_parses shard rides with its metadata."""
        files = self.files(path)
        parses = {self._shard(f): f for f in files if "pdf_parse" in f.name}
        units = []
        for file in files:
            if "pdf_parse" in file.name:
                continue
            pair = parses.get(self._shard(file)) if "metadata" in file.name else None
            units.append(
                Unit(
                    str(file),
                    display_path(self.input_name, path, file),
                    member=str(pair) if pair else None,
                    size=file.stat().st_size,
                )
            )
        return units

    @staticmethod
    def _shard(file: Path) -> str | None:
        match = _SHARD.search(file.name)
        return match.group(1) if match else None

    def _builder(self, display: str) -> RowBuilder:
        args = DocumentArgs(
            source=self.args.source,
            license=self.args.license,
            license_field="license",
            id_prefix=f"{self.args.source}:",
        )
        return RowBuilder(args, self.input_name, display)

    def read(self, unit: Unit) -> Iterator[ReadResult]:
        rows = self._builder(unit.display)
        parses = self._load_parses(unit.member) if unit.member else {}
        number = 0
        try:
            with open_decompressed(unit.path) as stream:
                for number, line in enumerate(stream, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        rows.items += 1
                        rows.error(
                            "invalid_json",
                            f"line {number}",
                            line.decode("utf-8", "backslashreplace"),
                            str(exc),
                        )
                        continue
                    self._record(rows, record, parses, f"line {number}")
                    if rows.items >= BATCH:
                        yield rows.result()
                        rows = self._builder(unit.display)
        except (EOFError, OSError) as exc:
            rows.stream_error("truncated_input", f"after line {number}", f"{type(exc).__name__}")
        yield rows.result()

    def _load_parses(self, path: str) -> dict[str, dict]:
        """The pdf_parses shard of a metadata shard, keyed by paper id (PMC papers are few)."""
        parses = {}
        with open_decompressed(path) as stream:
            for line in stream:
                if line.strip():
                    record = orjson.loads(line)
                    parses[str(record.get("paper_id"))] = record
        return parses

    def _record(self, rows: RowBuilder, record: dict, parses: dict, member: str) -> None:
        rows.items += 1
        if not isinstance(record, dict):
            rows.error("not_an_object", member, "", type(record).__name__)
            return
        if "corpusid" in record:
            paper_id = str(record["corpusid"])
            ids = record.get("externalids") or {}
            pmcid, pmid, doi = ids.get("pubmedcentral"), ids.get("pubmed"), ids.get("doi")
            text, sections = api_text(record)
            title, year, journal = record.get("title"), record.get("year"), record.get("venue")
            license_ = _license_of(record)
        else:
            paper_id = str(record.get("paper_id"))
            pmcid, pmid, doi = record.get("pmc_id"), record.get("pubmed_id"), record.get("doi")
            title, year, journal = record.get("title"), record.get("year"), record.get("journal")
            parse = parses.get(paper_id) or {}
            blocks = [title.strip()] if title else []
            if parse.get("abstract"):
                more, _ = paragraphs_2020(parse["abstract"])
                blocks += ["Abstract", *[b for b in more if b.lower() != "abstract"]]
            elif record.get("abstract"):
                blocks += ["Abstract", str(record["abstract"]).strip()]
            body, sections = paragraphs_2020(parse.get("body_text") or [])
            text = "\n\n".join(blocks + body)
            sections = (["Abstract"] if len(blocks) > 1 else []) + sections
            license_ = None
        pmcid = normalise_pmcid(str(pmcid)) if pmcid else None
        if self.args.require_pmc_id and not pmcid:
            rows.error("no_pmc_id", member, "", None)
            rows.errors[-1]["id"] = f"{self.args.source}:{paper_id}"
            return
        if not text.strip() or text.strip() == (title or "").strip():
            rows.error(
                "empty_article",
                member,
                orjson.dumps({"paper_id": paper_id}).decode(),
                "no abstract or body text",
            )
            return
        rows.add_record(
            {
                "id": paper_id,
                "text": text,
                "license": license_,
                "metadata": {
                    "title": title,
                    "pmcid": pmcid,
                    "pmid": str(pmid) if pmid else None,
                    "doi": doi,
                    "journal": journal,
                    "year": year,
                    "sections": sections,
                },
            },
            member,
            raw=None,
        )
