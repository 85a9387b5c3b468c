"""A build killed with SIGKILL and started again ends identical, without redoing units."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, make_documents, run_cli, write_jsonl

RECIPE = """
name: resumable
version: 1.0.0
inputs:
  docs: {help: JSONL}
read:
  - {reader: jsonl, input: docs, source: pmc, license: CC0-1.0}
steps:
  - {step: normalize_text}
  - {step: length_filter, min_words: 30}
  - {step: exact_dedup}
output: {shard_size: 100KB}
"""


def data_digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((folder / "data").iterdir())
    }


def finished_units(folder: Path) -> dict[str, tuple[int, int]]:
    """Unit folder -> (inode, mtime) of its stats.json: changes if the unit is redone."""
    units = folder / ".work" / "units"
    if not units.is_dir():
        return {}
    found = {}
    for stats in units.glob("*/stats.json"):
        if ".tmp-" in stats.parent.name:
            continue  # a worker's scratch folder, not yet renamed into place: not finished
        info = stats.stat()
        found[stats.parent.name] = (info.st_ino, info.st_mtime_ns)
    return found


def test_sigkill_then_restart_matches_uninterrupted_run(tmp_path):
    inputs = write_jsonl(
        tmp_path / "in" / "docs.jsonl", make_documents(6000, seed=5, duplicate_every=13)
    )
    recipe = tmp_path / "resumable.yaml"
    recipe.write_text(RECIPE)
    args = [
        "build",
        str(recipe),
        "--input",
        f"docs={inputs}",
        "--unit-size",
        "8KB",
        "--keep-work",
        "--workers",
        "2",
    ]

    reference = run_cli(*args, "--output", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "pmc_data", *args, "--output", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(finished_units(out)) < 20 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)  # the workers die with it
    process.wait()
    before = finished_units(out)
    assert len(before) >= 20, "the build finished before it could be killed"
    assert not (out / "manifest.json").exists()

    restarted = run_cli(*args, "--output", str(out))
    assert restarted.returncode == 0, restarted.stderr
    total = int(restarted.stdout.split(" of ")[-1].split()[0])
    resumed = int(restarted.stdout.split("unreadable; ")[1].split(" of ")[0])
    assert resumed >= len(before) and total > resumed
    after = finished_units(out)
    assert {k: after[k] for k in before} == before  # finished units were not reprocessed
    assert data_digests(out) == data_digests(tmp_path / "reference")
    assert (out / "manifest.json").read_text() == (
        tmp_path / "reference" / "manifest.json"
    ).read_text()
