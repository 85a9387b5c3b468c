"""PubMed Central Open Access: loose ``.nxml`` files, per-article packages, bulk archives.

    inputs:
      pmc: {help: .nxml/.xml files, or .tar.gz packages / bulk archives}
      file_list: {help: oa_file_list.csv or a bulk file list, required: false}
    read:
      - reader: pmc_oa
        input: pmc
        file_list: file_list
        license_policy: commercial

Archives are streamed member by member (``tarfile`` stream mode): nothing is ever extracted
to disk, links and members named outside the archive (``../x``, ``/etc/passwd``) are
refused, and a member larger than ``max_member_bytes`` is skipped unread. With a file list,
license and retraction are known before parsing, so excluded articles cost nothing; without
one, the license comes from the article's own ``permissions``.

Rejects (all with the file and member): ``license:<SPDX>``, ``retracted``,
``article_type:<type>``, ``invalid_xml``, ``unsafe_xml`` (declared entities), ``not_an_article``,
``empty_article``, ``missing_id``, ``unsafe_member``, ``member_too_large``,
``corrupt_archive``, ``truncated_archive``.
"""

from __future__ import annotations

import csv
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from lxml import etree
from pydantic import Field

from pmc_data.licenses import POLICIES, UNKNOWN, allowed, to_spdx
from pmc_data.registry import ReadResult, StepArgs, Unit, register_reader
from pmc_data.sources.documents import RowBuilder
from pmc_data.sources.files import FileReader, display_path
from pmc_data.sources.jats import JatsOptions, UnsafeXML, normalise_pmcid, parse_article

XML_SUFFIXES = (".nxml", ".xml")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
BATCH_ARTICLES = 500
_PMCID_IN_NAME = re.compile(r"PMC\d+", re.IGNORECASE)


class PmcArgs(StepArgs):
    source: str = "pmc"
    #: The recipe input holding a PMC OA file list (legacy or bulk CSV), if any.
    file_list: str | None = None
    #: ``commercial``, ``share-alike``, ``research``, a list of SPDX ids / families, or
    #: ``null`` to keep every license (the license column still says which).
    license_policy: str | list[str] | None = "commercial"
    drop_retracted: bool = True
    #: Article types (``article-type``) to drop.
    exclude_article_types: list[str] = [
        "correction", "retraction", "expression-of-concern", "addendum", "abstract",
    ]  # fmt: skip
    max_member_bytes: int = Field(64 << 20, gt=0)
    figures: str = Field("drop", pattern="^(drop|keep)$")
    tables: str = Field("drop", pattern="^(drop|keep)$")
    formulas: str = Field("placeholder", pattern="^(placeholder|text)$")
    boxed_text: bool = True
    appendices: bool = True
    sub_articles: bool = False
    citations: bool = False

    def jats(self) -> JatsOptions:
        return JatsOptions(
            figures=self.figures,
            tables=self.tables,
            formulas=self.formulas,
            boxed_text=self.boxed_text,
            appendices=self.appendices,
            sub_articles=self.sub_articles,
            citations=self.citations,
        )


def read_file_list(path: str | Path) -> dict[str, dict]:
    """PMCID -> ``{license, retracted, pmid, last_updated, file}`` from either CSV layout.

    Legacy: ``File, Article Citation, Accession ID, Last Updated (YYYY-MM-DD HH:MM:SS), PMID,
    License``; bulk: ``Article File, Article Citation, AccessionID, LastUpdated (...), PMID,
    License, Retracted``.
    """
    entries: dict[str, dict] = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        fields = {
            re.sub(r"[\s(].*$", "", f.replace(" ", "")).lower(): f for f in reader.fieldnames or []
        }
        for name in ("accessionid", "license"):
            if name not in fields:
                raise ValueError(
                    f"{path}: not a PMC OA file list (no {name} column): {reader.fieldnames}"
                )
        for row in reader:
            pmcid = normalise_pmcid(row.get(fields["accessionid"]))
            if not pmcid:
                continue
            entries[pmcid] = {
                "license": to_spdx(row.get(fields["license"])),
                "retracted": (row.get(fields.get("retracted", ""), "") or "").strip().lower()
                in ("yes", "y", "true", "1"),
                "pmid": (row.get(fields.get("pmid", ""), "") or "").strip() or None,
                "last_updated": (row.get(fields.get("lastupdated", ""), "") or "").strip(),
                "file": row.get(fields.get("file") or fields.get("articlefile") or "", ""),
            }
    return entries


@register_reader
class PmcOaReader(FileReader):
    """PMC OA articles in JATS/NLM XML (see the module docstring)."""

    name = "pmc_oa"
    Args = PmcArgs
    input_args = ("file_list",)
    suffixes = XML_SUFFIXES + ARCHIVE_SUFFIXES

    def __init__(self, args: PmcArgs | None, schema: str, input_name: str) -> None:
        super().__init__(args, schema, input_name)
        self._file_list: dict[str, dict] | None = None
        policy = self.args.license_policy
        if isinstance(policy, str) and policy not in POLICIES:
            raise ValueError(f"license_policy {policy!r}: allowed: {', '.join(POLICIES)} or a list")

    def file_list(self) -> dict[str, dict]:
        if self._file_list is None:
            path = self.inputs.get(self.args.file_list) if self.args.file_list else None
            self._file_list = read_file_list(path) if path else {}
        return self._file_list

    # ----------------------------------------------------------------------- planning

    def plan(self, path: str, unit_bytes: int) -> list[Unit]:
        units: list[Unit] = []
        files = self.files(path)
        start, size = 0, 0
        for index, file in enumerate(files):
            if file.name.endswith(ARCHIVE_SUFFIXES):
                if index > start:
                    units.append(
                        Unit(path, self.input_name, start, index, size=size, format="files")
                    )
                display = display_path(self.input_name, path, file)
                units.append(Unit(str(file), display, size=file.stat().st_size, format="archive"))
                start, size = index + 1, 0
                continue
            size += file.stat().st_size
            if size >= unit_bytes:
                units.append(
                    Unit(path, self.input_name, start, index + 1, size=size, format="files")
                )
                start, size = index + 1, 0
        if start < len(files) and not files[-1].name.endswith(ARCHIVE_SUFFIXES):
            units.append(Unit(path, self.input_name, start, len(files), size=size, format="files"))
        return units

    # ------------------------------------------------------------------------ reading

    def read(self, unit: Unit) -> Iterator[ReadResult]:
        """Rows in batches of at most ``BATCH_ARTICLES`` articles: memory stays bounded."""
        items = self._archive(unit) if unit.format == "archive" else self._loose(unit)
        rows = self._builder(unit.display)
        for display, member, data, error in items:
            rows.input_file = display
            if error:
                rows.stream_error(error[0], member or "", error[1])
            else:
                self._article(rows, data, member or "")
            if rows.items >= BATCH_ARTICLES:
                yield rows.result()
                rows = self._builder(unit.display)
        yield rows.result()

    def _builder(self, display: str) -> RowBuilder:
        from pmc_data.sources.documents import DocumentArgs

        args = DocumentArgs(source=self.args.source, id_prefix="", license_field="license")
        return RowBuilder(args, self.input_name, display)

    def _loose(self, unit: Unit) -> Iterator[tuple[str, str | None, bytes, tuple | None]]:
        for file in self.files(unit.path, unit.start, unit.end):
            display = display_path(self.input_name, unit.path, file)
            if file.stat().st_size > self.args.max_member_bytes:
                yield display, None, b"", ("member_too_large", f"{file.stat().st_size} bytes")
                continue
            yield display, None, file.read_bytes(), None

    def _archive(self, unit: Unit) -> Iterator[tuple[str, str | None, bytes, tuple | None]]:
        display, last = unit.display, None
        try:
            with tarfile.open(unit.path, mode="r|gz") as archive:
                for member in archive:
                    name = last = member.name
                    if member.issym() or member.islnk():
                        yield display, name, b"", ("unsafe_member", "a link: never followed")
                        continue
                    if name.startswith(("/", "\\")) or ".." in Path(name).parts:
                        yield display, name, b"", ("unsafe_member", "a path outside the archive")
                        continue
                    if not member.isfile() or not name.endswith(XML_SUFFIXES):
                        continue  # images, PDFs and media of per-article packages
                    if member.size > self.args.max_member_bytes:
                        yield display, name, b"", ("member_too_large", f"{member.size} bytes")
                        continue
                    pre = self._preselect(name)
                    if pre:
                        yield display, name, b"", pre
                        continue
                    handle = archive.extractfile(member)
                    yield display, name, handle.read() if handle else b"", None
        except (tarfile.ReadError, zlib.error, OSError, EOFError) as exc:
            kind = (
                "truncated_archive"
                if "unexpected end" in str(exc).lower() or isinstance(exc, EOFError)
                else "corrupt_archive"
            )
            where = f"after {last}" if last else "archive"
            yield display, where, b"", (kind, f"{type(exc).__name__}: {exc}")

    def _preselect(self, name: str) -> tuple[str, str] | None:
        """License and retraction from the file list, before any parsing."""
        match = _PMCID_IN_NAME.search(Path(name).name)
        entry = self.file_list().get(match.group(0).upper()) if match else None
        if entry is None:
            return None
        if self.args.drop_retracted and entry["retracted"]:
            return ("retracted", "file list: Retracted = yes")
        policy = self.args.license_policy
        if (
            policy is not None
            and entry["license"] != UNKNOWN
            and not allowed(entry["license"], policy)
        ):
            return (f"license:{entry['license']}", "file list")
        return None

    def _article(self, rows: RowBuilder, data: bytes, member: str) -> None:
        rows.items += 1
        where = member or rows.input_file
        pre = self._preselect(where) if not member else None
        if pre:
            rows.error(pre[0], where, "", pre[1])
            return
        try:
            article = parse_article(data, self.args.jats())
        except UnsafeXML as exc:
            rows.error("unsafe_xml", where, "", str(exc))
            return
        except etree.XMLSyntaxError as exc:
            rows.error("invalid_xml", where, "", str(exc))
            return
        except ValueError as exc:
            rows.error("not_an_article", where, "", str(exc))
            return
        match = _PMCID_IN_NAME.search(Path(where).name)
        pmcid = article.pmcid or (match.group(0).upper() if match else None)
        entry = self.file_list().get(pmcid or "", {})
        license_ = entry.get("license", UNKNOWN)
        if license_ == UNKNOWN:
            license_ = article.license
        reason = self._reject_reason(article, entry, license_)
        record = {"pmcid": pmcid, "doi": article.doi, "title": article.title}
        if reason:
            rows.error(reason, where, _dump(record), article.license_text[:200] or None)
            return
        text = article.text  # (joined from the blocks at each use: once here)
        if not text.strip() or text.strip() == article.title.strip():
            rows.error("empty_article", where, _dump(record), "no abstract or body text")
            return
        if not pmcid and not article.doi:
            rows.error("missing_id", where, _dump(record), "no PMC id and no DOI")
            return
        identifier = pmcid or f"doi:{article.doi}"
        rows.add_record(
            {
                "id": f"{self.args.source}:{identifier}",
                "text": text,
                "license": license_,
                "metadata": {
                    "title": article.title,
                    "pmcid": pmcid,
                    "pmid": article.pmid or entry.get("pmid"),
                    "doi": article.doi,
                    "journal": article.journal,
                    "year": article.year,
                    "sections": article.sections,
                }
                | ({"input_member": member} if member else {}),
            },
            where,
            raw=None,
        )

    def _reject_reason(self, article, entry: dict, license_: str) -> str | None:
        if self.args.drop_retracted and (entry.get("retracted") or article.retracted):
            return "retracted"
        if article.article_type in self.args.exclude_article_types:
            return f"article_type:{article.article_type}"
        policy = self.args.license_policy
        if policy is not None and not allowed(license_, policy):
            return f"license:{license_}"
        return None


def _dump(record: dict) -> str:
    import orjson

    return orjson.dumps(record).decode()
