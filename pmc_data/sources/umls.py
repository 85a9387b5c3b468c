"""UMLS knowledge-graph prompts from a user's own UMLS release (``META/``).

UMLS content may not be redistributed: this reader reads the release you licensed, and every
row carries the license ``LicenseRef-UMLS`` so that the card of any dataset built from it
says so. Files are pipe-delimited with a trailing ``|``; the column layout comes from
``MRFILES.RRF`` when present (else the documented default).

- Names (MRCONSO): English (``LAT=ENG``), not suppressible (``SUPPRESS=N``), from the source
  vocabularies you select (``vocabularies``); one name per concept, its preferred one
  (``TS=P``, then ``STT=PF``, then ``ISPREF=Y``).
- Descriptions (MRDEF) -> ``entity_description`` rows: "What is X?" -> the definition.
- Relations (MRREL, with ``RELA``) -> ``entity_relation`` rows: "How is A related to B?" ->
  "A <relation> B.", with the semantic types of both (MRSTY).

Each fact appears once (the same definition text or the same (CUI1, RELA, CUI2) never twice),
and its question wording is one of several templates, chosen by a seeded RNG.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from pmc_data.registry import Reader, ReadResult, StepArgs, Unit, register_reader
from pmc_data.sources.files import file_entry
from pmc_data.synth.formats import InstructionRows, choose

DEFAULT_COLUMNS = {
    "MRCONSO": "CUI,LAT,TS,LUI,STT,SUI,ISPREF,AUI,SAUI,SCUI,SDUI,SAB,TTY,CODE,STR,SRL,SUPPRESS,CVF",
    "MRDEF": "CUI,AUI,ATUI,SATUI,SAB,DEF,SUPPRESS,CVF",
    "MRREL": "CUI1,AUI1,STYPE1,REL,CUI2,AUI2,STYPE2,RELA,RUI,SRUI,SAB,SL,RG,DIR,SUPPRESS,CVF",
    "MRSTY": "CUI,TUI,STN,STY,ATUI,CVF",
}
LICENSE = "LicenseRef-UMLS"
BATCH = 5000


class UmlsArgs(StepArgs):
    #: Source vocabularies to take names, definitions and relations from (empty: all).
    vocabularies: list[str] = []
    seed: int = 0
    #: Relations to skip: RELA values that say nothing ("same_as", "mapped_to"...).
    skip_relations: list[str] = [
        "same_as",
        "mapped_to",
        "mapped_from",
        "has_sort_version",
        "sort_version_of",
        "permuted_term_of",
        "has_permuted_term",
    ]
    max_relations: int | None = None


def layout(meta: Path) -> dict[str, list[str]]:
    """Column names per file, from MRFILES.RRF when it is there."""
    columns = {name: cols.split(",") for name, cols in DEFAULT_COLUMNS.items()}
    files = meta / "MRFILES.RRF"
    if files.is_file():
        for line in files.read_text(encoding="utf-8").splitlines():
            parts = line.split("|")
            if len(parts) > 2 and parts[0].endswith(".RRF"):
                columns[parts[0].removesuffix(".RRF")] = parts[2].split(",")
    return columns


def rows_of(meta: Path, name: str, columns: dict[str, list[str]]) -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` of an RRF file; malformed lines are skipped by the caller."""
    path = meta / f"{name}.RRF"
    if not path.is_file():
        return
    names = columns[name]
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            values = line.rstrip("\n").split("|")
            if values and values[-1] == "":
                values = values[:-1]  # the trailing "|"
            yield (
                number,
                dict(zip(names, values, strict=False)) if len(values) == len(names) else {},
            )


@register_reader
class UmlsReader(Reader):
    """UMLS descriptions and relations as instruction rows (see the module docstring)."""

    name = "umls_kg"
    Args = UmlsArgs

    def _meta(self, path: str) -> Path:
        root = Path(path)
        meta = root / "META" if (root / "META").is_dir() else root
        if not (meta / "MRCONSO.RRF").is_file():
            raise FileNotFoundError(f"input {self.input_name!r}: no MRCONSO.RRF in {meta}")
        return meta

    def describe_inputs(self, path: str) -> list[dict]:
        meta = self._meta(path)
        return [
            file_entry(self.input_name, meta, meta / f"{n}.RRF")
            for n in ("MRCONSO", "MRDEF", "MRREL", "MRSTY", "MRFILES")
            if (meta / f"{n}.RRF").is_file()
        ]

    def plan(self, path: str, unit_bytes: int) -> list[Unit]:
        meta = self._meta(path)
        return [Unit(str(meta), self.input_name, size=(meta / "MRCONSO.RRF").stat().st_size)]

    def read(self, unit: Unit) -> Iterator[ReadResult]:
        meta, args = Path(unit.path), self.args
        columns = layout(meta)
        wanted = set(args.vocabularies)
        errors: list[dict] = []
        items = 0

        def reject(reason: str, file: str, number: int, detail: str | None = None) -> None:
            errors.append(
                {
                    "reason": reason,
                    "detail": detail,
                    "id": None,
                    "input_file": f"{self.input_name}/{file}",
                    "input_member": f"line {number}",
                    "record": "",
                }
            )

        # MRCONSO and MRSTY are lookup tables, not items: only definitions and relations
        # become rows (or rejects), so only they are counted.
        names: dict[str, tuple[int, str]] = {}
        for _, row in rows_of(meta, "MRCONSO", columns):
            if (
                not row
                or row["LAT"] != "ENG"
                or (row["SUPPRESS"] != "N" or (wanted and row["SAB"] not in wanted))
            ):
                continue
            # The concept's preferred name: TS=P, then STT=PF, then ISPREF=Y.
            rank = (row["TS"] != "P") * 4 + (row["STT"] != "PF") * 2 + (row["ISPREF"] != "Y")
            if row["CUI"] not in names or rank < names[row["CUI"]][0]:
                names[row["CUI"]] = (rank, row["STR"])
        types: dict[str, list[str]] = {}
        for _, row in rows_of(meta, "MRSTY", columns):
            if row:
                types.setdefault(row["CUI"], []).append(row["STY"])
        rows = InstructionRows()
        seen: set[str] = set()
        for number, row in rows_of(meta, "MRDEF", columns):
            items += 1
            if not row:
                reject("malformed_line", "MRDEF.RRF", number)
            elif row.get("SUPPRESS", "N") != "N" or (wanted and row["SAB"] not in wanted):
                reject("not_selected", "MRDEF.RRF", number)
            elif row["CUI"] not in names:
                reject("no_english_name", "MRDEF.RRF", number)
            else:
                term, definition = names[row["CUI"]][1], row["DEF"].strip()
                fact = hashlib.sha1(f"def|{row['CUI']}|{definition.lower()}".encode()).hexdigest()
                if fact in seen:
                    reject("duplicate_fact", "MRDEF.RRF", number)
                    continue
                seen.add(fact)
                template = choose("entity_description", fact, args.seed)
                rows.add(
                    id=f"umls:def:{row['CUI']}:{fact[:12]}",
                    source="umls",
                    task="entity_description",
                    instruction=template.text.format(term=term),
                    input="",
                    output=f"{term}: {definition}",
                    license=LICENSE,
                    template=template,
                    seed=args.seed,
                    source_item_id=row["CUI"],
                    input_file=f"{self.input_name}/MRDEF.RRF",
                    input_member=f"line {number}",
                )
            if len(rows.rows) >= BATCH:
                yield ReadResult(rows.table(), errors, items)
                rows, errors, items = InstructionRows(), [], 0
        relations = 0
        for number, row in rows_of(meta, "MRREL", columns):
            items += 1
            if not row:
                reject("malformed_line", "MRREL.RRF", number)
                continue
            rela = row.get("RELA", "")
            if (
                not rela
                or rela in args.skip_relations
                or row.get("SUPPRESS", "N") != "N"
                or (wanted and row["SAB"] not in wanted)
            ):
                reject("not_selected", "MRREL.RRF", number)
                continue
            if row["CUI1"] not in names or row["CUI2"] not in names or row["CUI1"] == row["CUI2"]:
                reject("no_english_name", "MRREL.RRF", number)
                continue
            fact = hashlib.sha1(f"rel|{row['CUI1']}|{rela}|{row['CUI2']}".encode()).hexdigest()
            if fact in seen or (args.max_relations is not None and relations >= args.max_relations):
                reject("duplicate_fact" if fact in seen else "over_limit", "MRREL.RRF", number)
                continue
            seen.add(fact)
            relations += 1
            # In MRREL, CUI2 <RELA> CUI1 reads as a sentence ("X has_finding_site Y").
            a, b = names[row["CUI2"]][1], names[row["CUI1"]][1]
            relation = rela.replace("_", " ")
            kinds = (
                f" ({', '.join(types.get(row['CUI2'], []))} -> "
                f"{', '.join(types.get(row['CUI1'], []))})"
                if types
                else ""
            )
            template = choose("entity_relation", fact, args.seed)
            rows.add(
                id=f"umls:rel:{fact[:16]}",
                source="umls",
                task="entity_relation",
                instruction=template.text.format(a=a, b=b),
                input="",
                output=f"{a} {relation} {b}.{kinds}",
                license=LICENSE,
                template=template,
                seed=args.seed,
                source_item_id=f"{row['CUI2']}|{rela}|{row['CUI1']}",
                input_file=f"{self.input_name}/MRREL.RRF",
                input_member=f"line {number}",
            )
            if len(rows.rows) >= BATCH:
                yield ReadResult(rows.table(), errors, items)
                rows, errors, items = InstructionRows(), [], 0
        yield ReadResult(rows.table(), errors, items)
