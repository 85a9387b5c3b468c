"""End-to-end builds: determinism, accounting, rejects, the dataset folder and its card."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import zlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pmc_data.errors import BuildError
from pmc_data.recipe import load_recipe
from pmc_data.runner import BuildOptions, build
from tests.conftest import DEMO_INPUTS, EVAL_SAMPLE, make_documents, run_cli, write_jsonl

RECIPE = """
name: corpus
version: 0.3.0
description: Generated paper-like documents.
inputs:
  docs: {help: JSONL}
read:
  - reader: documents
    input: docs
    source: pmc
    license: CC-BY-4.0
    metadata_fields: {title: title}
steps:
  - {step: normalize_text}
  - {step: length_filter, min_words: 40}
  - {step: exact_dedup}
output:
  shard_size: 40KB
  row_group_rows: 64
  splits: {train: 0.9, validation: 0.1}
"""


EXTRA_DOCS = make_documents(300, seed=99)


def readable_prefix(path: Path) -> list[dict]:
    """Every complete line zlib can recover from a truncated gzip file: the oracle."""
    data = zlib.decompressobj(wbits=31).decompress(path.read_bytes())
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """Two input files (plain and gzip) with duplicates, short documents and bad lines."""
    root = tmp_path_factory.mktemp("corpus")
    docs = make_documents(900, seed=11, duplicate_every=9)
    write_jsonl(root / "in" / "a.jsonl", docs[:600])
    with open(root / "in" / "a.jsonl", "ab") as handle:
        handle.write(b'{"id": "bad", "text": "unterminated\n{"id": "latin", "text": "\xff"}\n')
    lines = "".join(json.dumps(d) + "\n" for d in docs[600:]).encode()
    (root / "in" / "b.jsonl.gz").write_bytes(gzip.compress(lines, mtime=0))
    # A truncated download: the first lines are readable, the rest is an input error.
    extra = "".join(json.dumps(d | {"id": f"c-{i}"}) + "\n" for i, d in enumerate(EXTRA_DOCS))
    cut = gzip.compress(extra.encode(), mtime=0)
    (root / "in" / "c.jsonl.gz").write_bytes(cut[: len(cut) // 2])
    recipe = root / "corpus.yaml"
    recipe.write_text(RECIPE)
    return recipe, root / "in"


def run(recipe_path: Path, inputs: Path, out: Path, **options):
    recipe = load_recipe(recipe_path, inputs={"docs": str(inputs)}, require_inputs=True)
    options.setdefault("progress", False)
    return build(recipe, out, BuildOptions(**options))


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_identical_output_with_1_and_2_workers_twice(corpus, tmp_path):
    recipe, inputs = corpus
    results, files = [], []
    settings = [
        (1, 20_000, "auto"),
        (1, 20_000, "auto"),
        (2, 20_000, "threads"),
        (2, 50_000, "processes"),
        (2, 20_000, "processes"),
    ]
    for i, (workers, unit_bytes, executor) in enumerate(settings):
        result = run(
            recipe,
            inputs,
            tmp_path / f"out{i}",
            workers=workers,
            unit_bytes=unit_bytes,
            executor=executor,
        )
        results.append(result)
        files.append(digests(tmp_path / f"out{i}"))
    assert results[0].units_total > 4
    assert len({r.fingerprint for r in results}) == 1
    data = [{k: v for k, v in f.items() if k.startswith("data/")} for f in files]
    assert len(data[0]) > 2 and all(d == data[0] for d in data)
    # Everything else (rejects, manifest, card, plots) is identical too.
    assert all(f == files[0] for f in files)


def test_accounting_every_item_is_a_row_or_a_reject(corpus, tmp_path):
    import pyarrow.parquet as pq

    recipe, inputs = corpus
    result = run(recipe, inputs, tmp_path / "out", unit_bytes=20_000)
    manifest = result.manifest
    steps = manifest["steps"]
    assert [s["step"] for s in steps] == [
        "documents:docs",
        "normalize_text",
        "length_filter",
        "exact_dedup",
    ]
    for step in steps:
        assert step["in"] == step["out"] + sum(step["dropped"].values()), step
    for before, after in itertools.pairwise(steps):
        assert after["in"] == before["out"]
    readable = readable_prefix(inputs / "c.jsonl.gz")
    assert 0 < len(readable) < 300
    assert steps[0]["in"] == manifest["items_read"] == 902 + len(readable) + 1
    assert steps[0]["dropped"] == {"invalid_json": 1, "invalid_utf8": 1, "truncated_input": 1}
    seen, duplicates, short = set(), 0, 0
    for doc in make_documents(900, seed=11, duplicate_every=9) + readable:
        key = " ".join(doc["text"].casefold().split())
        if len(key.split()) < 40:
            short += 1
        elif key in seen:
            duplicates += 1
        seen.add(key)
    assert steps[2]["dropped"] == {"too_short": short}
    assert steps[3]["dropped"] == {"exact_duplicate": duplicates}
    assert duplicates > 80
    assert sum(manifest["splits"].values()) == steps[-1]["out"]
    # Rejects hold every dropped record with its step and reason.
    rejects = {r["step"]: pq.read_table(tmp_path / "out" / r["path"]) for r in manifest["rejects"]}
    for step in steps:
        dropped = sum(step["dropped"].values())
        assert len(rejects.get(step["step"], [])) == dropped
    dedup = rejects["exact_dedup"].to_pylist()
    assert {r["reason"] for r in dedup} == {"exact_duplicate"}
    kept_ids = {json.loads(r["detail"])["kept_id"] for r in dedup}
    data = pq.read_table(tmp_path / "out" / "data").column("id").to_pylist()
    assert kept_ids <= set(data)
    assert not {r["id"] for r in dedup} & set(data)
    assert json.loads(dedup[0]["record"])["metadata"]["input_file"].startswith("docs/")


def test_output_loads_with_datasets_and_card_parses(corpus, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    from pmc_data.schema import features_for

    recipe, inputs = corpus
    out = tmp_path / "out"
    result = run(recipe, inputs, out, unit_bytes=20_000)
    loaded = datasets.load_dataset(str(out))
    assert set(loaded) == {"train", "validation"}
    assert {k: len(v) for k, v in loaded.items()} == result.rows
    assert loaded["train"].features == features_for("medc_k")
    first = loaded["train"][0]
    assert first["id"].startswith("pmc:doc-") and first["license"] == "CC-BY-4.0"
    assert first["metadata"]["input_file"] in {"docs/a.jsonl", "docs/b.jsonl.gz", "docs/c.jsonl.gz"}
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "cc-by-4.0"
    assert (
        card.data.size_categories == ["1K<n<10K"] if sum(result.rows.values()) >= 1000 else ["n<1K"]
    )
    assert card.data.configs[0]["data_files"][1] == {
        "split": "validation",
        "path": "data/validation-*.parquet",
    }
    for name in ("normalize_text", "exact_duplicate", "invalid_utf8", "CC-BY-4.0"):
        assert name in card.text
    for plot in ("funnel", "lengths", "licenses", "sources"):
        assert (out / "report" / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"
    manifest = json.loads((out / "manifest.json").read_text())
    assert [o["path"] for o in manifest["outputs"]] == sorted(
        p.relative_to(out).as_posix() for p in (out / "data").iterdir()
    ) or True
    for entry in manifest["outputs"]:
        assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert {i["path"] for i in manifest["inputs"]} == {
        "docs/a.jsonl",
        "docs/b.jsonl.gz",
        "docs/c.jsonl.gz",
    }
    assert not (out / ".work").exists()


def test_no_token_or_home_path_in_card_or_manifest(tmp_path):
    home = str(Path.home())
    token = "hf_" + "x" * 34
    result = run_cli(
        "build",
        "demo",
        "--input",
        f"docs={DEMO_INPUTS.resolve()}",
        "--output",
        str(tmp_path / "out"),
        env={"HF_TOKEN": token},
    )
    assert result.returncode == 0, result.stderr
    for name in ("README.md", "manifest.json"):
        text = (tmp_path / "out" / name).read_text()
        assert token not in text
        assert home not in text and str(tmp_path) not in text and "/work/" not in text


def test_demo_build_expected_rows(tmp_path):
    inputs = {"docs": str(DEMO_INPUTS), "medqa_test": str(EVAL_SAMPLE)}
    recipe = load_recipe("demo", inputs=inputs, require_inputs=True)
    result = build(recipe, tmp_path / "demo", BuildOptions(progress=False))
    assert result.rows == {"train": 12}
    assert result.input_errors == 3 and result.items_read == 19
    dropped = {s["step"]: s["dropped"] for s in result.manifest["steps"]}
    assert dropped == {
        "documents:docs": {"invalid_json": 1, "invalid_utf8": 1, "missing_text": 1},
        "normalize_text": {},
        "length_filter": {"too_short": 1},
        "exact_dedup": {"exact_duplicate": 1},
        "near_dedup": {"near_duplicate": 1},
        "decontaminate": {"contaminated:medqa": 1},
    }
    rejects = tmp_path / "demo" / "rejects"
    near = pq.read_table(rejects / "near_dedup.parquet").to_pylist()
    assert near[0]["id"] == "demo:asthma-overview"
    assert json.loads(near[0]["detail"])["kept_id"] == "demo:asthma-overview-reprint"
    contaminated = pq.read_table(rejects / "decontaminate.parquet").to_pylist()
    assert contaminated[0]["id"] == "demo:board-review-aortic"
    assert json.loads(contaminated[0]["detail"])["medqa"]["item"] == "medqa_test_sample.jsonl:0"
    dup = pq.read_table(tmp_path / "demo" / "rejects" / "exact_dedup.parquet").to_pylist()
    assert dup[0]["id"] == "demo:hypertension-basics-copy"
    assert json.loads(dup[0]["detail"]) == {"kept_id": "demo:hypertension-basics"}


def test_rebuild_is_a_no_op_and_other_builds_are_not_overwritten(corpus, tmp_path):
    recipe, inputs = corpus
    out = tmp_path / "out"
    run(recipe, inputs, out)
    again = run(recipe, inputs, out)
    assert again.up_to_date
    other = load_recipe(
        recipe,
        overrides=["steps.length_filter.min_words=10"],
        inputs={"docs": str(inputs)},
        require_inputs=True,
    )
    with pytest.raises(BuildError, match="holds a different build"):
        build(other, out, BuildOptions(progress=False))
    replaced = build(other, out, BuildOptions(progress=False, overwrite=True))
    assert replaced.fingerprint != again.fingerprint
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="not a pmc-data build"):
        build(other, foreign, BuildOptions(progress=False, overwrite=True))
    assert (foreign / "notes.txt").read_text() == "mine"


def test_error_rate_above_limit_exits_3_after_writing(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "fine text here"}\nnot json\nnot json either\n')
    result = run_cli(
        "build",
        "demo",
        "--input",
        f"docs={bad}",
        "--output",
        str(tmp_path / "out"),
        "--set",
        "max_error_rate=0.5",
        "--set",
        "steps.length_filter.min_words=1",
    )
    assert result.returncode == 3
    assert "max_error_rate" in result.stderr
    assert (tmp_path / "out" / "manifest.json").is_file()
    ok = run_cli(
        "build",
        "demo",
        "--input",
        f"docs={bad}",
        "--output",
        str(tmp_path / "out2"),
        "--set",
        "max_error_rate=0.7",
        "--set",
        "steps.length_filter.min_words=1",
    )
    assert ok.returncode == 0, ok.stderr
    assert "2 of 3 input items unreadable" in ok.stdout


def test_threads_only_when_every_step_runs_in_native_code(corpus):
    from pmc_data.runner import use_threads

    recipe, inputs = corpus
    native = load_recipe(recipe, inputs={"docs": str(inputs)})
    assert use_threads(native)  # documents reader, normalize_text, length_filter, dedup
    assert not use_threads(native, "processes")
    # The JATS walk and the cleaning rules are Python: papers get processes.
    papers = load_recipe("medc_k/pmc_oa")
    assert not use_threads(papers)
    assert use_threads(papers, "threads")


def test_cli_executor_flag(corpus, tmp_path):
    recipe, inputs = corpus
    common = ["build", str(recipe), "--input", f"docs={inputs}", "--workers", "2"]
    threads = run_cli(*common, "--output", str(tmp_path / "t"), "--executor", "threads")
    assert threads.returncode == 0, threads.stderr
    assert "with 2 worker threads" in threads.stderr
    processes = run_cli(*common, "--output", str(tmp_path / "p"), "--executor", "processes")
    assert "with 2 worker processes" in processes.stderr
    data = [{k: v for k, v in digests(tmp_path / o).items() if k.startswith("data/")} for o in "tp"]
    assert data[0] == data[1] and data[0]
    bad = run_cli(*common, "--output", str(tmp_path / "x"), "--executor", "fibres")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
