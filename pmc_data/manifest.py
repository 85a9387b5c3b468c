"""``manifest.json``: everything needed to audit or reproduce a build.

It holds the resolved recipe, the fingerprint, package and dependency versions, every input
(path inside its input, bytes, sha256), every step's in / out / dropped-by-reason, and every
output file (rows, bytes, sha256). Paths are relative: no absolute or home path, no token.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from pmc_data import __version__
from pmc_data.report import CorpusStats, merged_stats
from pmc_data.writer import RejectWriter, file_record

DEPENDENCIES = (
    "polars",
    "pyarrow",
    "datasets",
    "huggingface-hub",
    "datasketch",
    "pymupdf",
    "spacy",
    "orjson",
    "zstandard",
    "pydantic",
    "torch",
    "transformers",
)


def dependency_versions() -> dict[str, str]:
    versions = {}
    for name in DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def step_table(counts: dict, labels: list[str], readers: int) -> list[dict]:
    """Every reader and step in order with its in / out / dropped-by-reason."""
    return [
        {"step": label, "kind": "reader" if i < readers else "step"} | counts[label]
        for i, label in enumerate(labels)
    ]


def make_manifest(
    recipe,
    resolved: dict,
    fp: str,
    inputs: list[dict],
    steps: list[dict],
    files: dict[str, list[Path]],
    reject_rows: dict[str, int],
    stats: dict[str, CorpusStats],
    output: Path,
    items: int,
    errors: int,
) -> dict:
    """The manifest of a finished build (data files must already be in ``output/data``)."""
    outputs = [
        file_record(output / "data" / path.name, output) | {"split": split}
        for split, paths in files.items()
        for path in paths
    ]
    rejects = [
        file_record(output / "rejects" / RejectWriter.file_name(label), output) | {"step": label}
        for label in (s["step"] for s in steps)
        if label in reject_rows
    ]
    return {
        "name": recipe.name,
        "version": recipe.model.version,
        "fingerprint": fp,
        "recipe_file": recipe.path,
        "recipe": resolved,
        "package": {"pmc-data": __version__, "python": platform.python_version()},
        "dependencies": dependency_versions(),
        "inputs": inputs,
        "items_read": items,
        "input_errors": errors,
        "steps": steps,
        "splits": {split: s.rows for split, s in stats.items()},
        "split_stats": {split: s.summary() for split, s in stats.items()},
        "totals": merged_stats(stats),
        "outputs": outputs,
        "rejects": rejects,
    }
