"""``pmc-data inspect DIR``: what a built dataset folder holds, at a glance."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pyarrow.parquet as pq


def _short(value: object, width: int) -> str:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None}
    text = (
        json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    )
    text = " ".join(text.split())
    return textwrap.shorten(text, width, placeholder=" ...") if len(text) > width else text


def summarize(folder: Path, samples: int = 3, width: int = 100) -> str:
    """A printable summary: name, version, splits, steps with drop reasons, mixes, samples."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{folder} has no manifest.json: not a finished pmc-data build")
    m = json.loads(manifest_path.read_text())
    totals = m["totals"]
    lines = [
        f"{m['name']} {m['version']}  (fingerprint {m['fingerprint'][:12]}, "
        f"recipe {m['recipe_file']})",
        "splits: "
        + ", ".join(f"{k} {v:,} rows" for k, v in m["splits"].items())
        + f"; {totals['words']:,} words, {totals['characters']:,} characters",
        f"input items: {m['items_read']:,} read, {m['input_errors']:,} unreadable",
        "",
        f"{'step':<28}{'in':>10}{'out':>10}  dropped",
    ]
    for s in m["steps"]:
        reasons = ", ".join(f"{r} {n:,}" for r, n in s["dropped"].items())
        if s.get("merged"):
            reasons += f"{', ' if reasons else ''}{s['merged']:,} merged into other rows"
        lines.append(f"{s['step']:<28}{s['in']:>10,}{s['out']:>10,}  {reasons}")
    lines += [
        "",
        "licenses: " + ", ".join(f"{k} {v:,}" for k, v in totals["licenses"].items()),
        "sources:  " + ", ".join(f"{k} {v:,}" for k, v in totals["sources"].items()),
    ]
    files = [o for o in m["outputs"] if o["rows"]]
    if files and samples:
        table = pq.ParquetFile(folder / files[0]["path"]).read_row_group(0)
        lines += ["", f"first {min(samples, len(table))} rows of {files[0]['path']}:"]
        for row in table.slice(0, samples).to_pylist():
            lines.append(
                "  - "
                + "; ".join(
                    f"{key}: {_short(value, width)}"
                    for key, value in row.items()
                    if value is not None
                )
            )
    return "\n".join(lines)
