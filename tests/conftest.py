"""Shared fixtures: realistic generated documents, the demo inputs, a CLI runner."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO_INPUTS = ROOT / "examples" / "demo"
EVAL_SAMPLE = ROOT / "examples" / "eval" / "medqa_test_sample.jsonl"
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"

if not os.environ.get("PMC_DATA_HUB_TEST_REPO"):  # tests never touch the network otherwise
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

_WORDS = (  # noqa: SIM905 - a word list reads better as prose
    "patient patients clinical trial randomised cohort mortality infection antibiotic dose "
    "renal hepatic cardiac pulmonary therapy outcome risk ratio confidence interval serum "
    "plasma insulin glucose pressure artery vein tumour lesion biopsy diagnosis prognosis "
    "treatment placebo adverse event hospital admission follow-up months years baseline "
    "increase decrease significant association analysis model population incidence"
).split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 20))]
    words[0] = words[0].capitalize()
    if rng.random() < 0.3:
        words.insert(rng.randint(1, len(words) - 1), f"{rng.randint(1, 99)}.{rng.randint(0, 9)}%")
    return " ".join(words) + "."


def make_documents(n: int, seed: int = 0, duplicate_every: int = 0) -> list[dict]:
    """``n`` paper-like documents; every ``duplicate_every``-th repeats an earlier text."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        if duplicate_every and i and i % duplicate_every == 0:
            text = docs[rng.randrange(len(docs))]["text"].upper()
        else:
            text = " ".join(sentence(rng) for _ in range(rng.randint(3, 12)))
        docs.append({"id": f"doc-{i:06d}", "text": text, "title": f"Document {i}"})
    return docs


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def run_cli(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``pmc-data`` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "pmc_data", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@pytest.fixture
def demo_inputs() -> Path:
    return DEMO_INPUTS


def require(available: bool, what: str, install: str) -> None:
    """Skip a test whose tool is missing on a user's machine, but fail in CI.

    CI (``CI`` set, as ``.ci/run`` does) installs everything the mission needs, so a missing tool
    there is a broken set-up, never a reason to skip.
    """
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: the set-up must install it ({install})")
    pytest.skip(f"{what} is not installed ({install})")


@pytest.fixture(scope="session")
def tesseract() -> str:
    """The tesseract binary's path, for OCR tests."""
    import shutil

    path = shutil.which("tesseract")
    require(path is not None, "tesseract", "apt-get install tesseract-ocr")
    return path
