"""Recipe loading, overrides, validation errors and the CLI's handling of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pmc_data.errors import RecipeError
from pmc_data.recipe import find_recipe, fingerprint, load_recipe, parse_size
from pmc_data.registry import (
    BUILTIN_READERS,
    BUILTIN_STEPS,
    READERS,
    STEPS,
    load_builtins,
    step_names,
)
from tests.conftest import DEMO_INPUTS, ROOT, run_cli

#: The error lists every step, built in or registered.
ALL_STEPS = ", ".join(step_names())


def test_builtin_tables_name_what_each_module_registers():
    load_builtins()
    ours = {n: c.__module__ for n, c in STEPS.items() if c.__module__.startswith("pmc_data.")}
    assert ours == BUILTIN_STEPS
    ours = {n: c.__module__ for n, c in READERS.items() if c.__module__.startswith("pmc_data.")}
    assert ours == BUILTIN_READERS


def test_a_recipe_imports_only_the_modules_it_names():
    code = (
        "import sys; from pmc_data.recipe import load_recipe; load_recipe('dedup'); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('pmc_data.'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    loaded = set(done.stdout.split())
    assert {"pmc_data.sources.documents", "pmc_data.dedup.minhash"} <= loaded
    assert not loaded & {"pmc_data.synth.rationale", "pmc_data.sources.pmc", "pmc_data.steps.books"}


GOOD = """
name: tiny
version: 1.2.3
inputs:
  docs: {help: JSONL}
read:
  - {reader: jsonl, input: docs, source: web, license: CC0-1.0}
steps:
  - {step: normalize_text}
  - {step: length_filter, min_words: 3}
  - {step: exact_dedup}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def error_of(path: Path, **kwargs) -> str:
    with pytest.raises(RecipeError) as info:
        load_recipe(path, **kwargs)
    return str(info.value)


def test_defaults_are_filled_and_resolved(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD))
    resolved = recipe.resolved()
    assert resolved["steps"][0] == {
        "step": "normalize_text",
        "form": "NFC",
        "strip_invisible": True,
        "collapse_spaces": True,
        "max_blank_lines": 1,
        "columns": None,
    }
    assert resolved["read"][0]["reader"] == "jsonl" and resolved["read"][0]["input"] == "docs"
    assert resolved["output"] == {
        "shard_size": 256_000_000,
        "row_group_rows": 1000,
        "splits": {"train": 1.0},
    }
    assert [s.label for s in recipe.global_steps] == ["exact_dedup"]


def test_overrides_by_name_and_index(tmp_path):
    path = write(tmp_path, GOOD)
    recipe = load_recipe(
        path,
        overrides=[
            "steps.length_filter.min_words=50",
            "steps.0.form=NFKC",
            "output.shard_size=1GiB",
            "version=2.0.0",
        ],
    )
    resolved = recipe.resolved()
    assert resolved["steps"][1]["min_words"] == 50
    assert resolved["steps"][0]["form"] == "NFKC"
    assert resolved["output"]["shard_size"] == 2**30
    assert resolved["version"] == "2.0.0"


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        (
            GOOD.replace("normalize_text", "normalise_text"),
            [],
            f"recipe.yaml: steps[0].step: unknown step 'normalise_text'; allowed: {ALL_STEPS}",
        ),
        (
            GOOD,
            ["steps.length_filter.min_words=many"],
            "recipe.yaml: steps[1].min_words: Input should be a valid integer, unable to parse "
            "string as an integer (got 'many')",
        ),
        (
            GOOD,
            ["steps.normalize_text.form=NFX"],
            "recipe.yaml: steps[0].form: Input should be 'NFC', 'NFKC', 'NFD', 'NFKD' or 'none' "
            "(got 'NFX')",
        ),
        (
            GOOD,
            ["steps.length_filter.min_word=3"],
            "recipe.yaml: steps[1].min_word: unknown key; allowed: min_words, max_words, "
            "min_chars, max_chars",
        ),
        (GOOD, ["version=1.2"], "recipe.yaml: version: not a semantic version (X.Y.Z) (got 1.2)"),
        (
            GOOD,
            ["colour=blue"],
            "recipe.yaml: colour: unknown key; allowed: name, version, "
            "description, schema, card, inputs, read, steps, output, max_error_rate",
        ),
        (
            GOOD.replace("input: docs", "input: papers"),
            [],
            "recipe.yaml: read[0].input: 'papers' is not an input; inputs: docs",
        ),
        (
            GOOD,
            ["output.splits={train: 0.5}"],
            "recipe.yaml: output.splits: fractions must be >= 0 and sum to 1, got {'train': 0.5}",
        ),
        (
            GOOD + "  - {step: normalize_text}\n",
            [],
            "recipe.yaml: steps[3]: document step 'normalize_text' after global step "
            "'exact_dedup'; global steps (dedup) run last",
        ),
        ("name: [unclosed", [], "recipe.yaml: line 1: not valid YAML"),
        (GOOD, ["steps.nope.x=1"], "recipe.yaml: steps.nope: 'nope' names no item"),
    ],
)
def test_errors_are_one_clear_line(tmp_path, text, overrides, expected):
    message = error_of(write(tmp_path, text), overrides=overrides)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_missing_and_unknown_inputs(tmp_path):
    path = write(tmp_path, GOOD)
    assert error_of(path, inputs={}, require_inputs=True) == (
        "recipe.yaml: inputs.docs: required input not given; pass --input docs=PATH"
    )
    assert error_of(path, inputs={"doc": "x"}, require_inputs=True) == (
        "recipe.yaml: inputs.doc: not an input of this recipe; inputs: docs"
    )
    assert error_of(
        path, inputs={"docs": str(tmp_path / "absent")}, require_inputs=True
    ).startswith("recipe.yaml: inputs.docs: path does not exist:")


def test_builtin_recipes_by_name():
    assert find_recipe("demo").name == "demo.yaml"
    with pytest.raises(RecipeError, match="built-in: dedup, demo"):
        find_recipe("no/such/recipe")


def test_parse_size():
    assert parse_size("256MB") == 256_000_000
    assert parse_size("64KiB") == 65536
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_fingerprint_depends_on_recipe_and_inputs(tmp_path):
    resolved = load_recipe(write(tmp_path, GOOD)).resolved()
    inputs = [{"path": "docs/a.jsonl", "bytes": 3, "sha256": "ab"}]
    base = fingerprint(resolved, inputs)
    assert base == fingerprint(resolved, [dict(inputs[0])])
    assert base != fingerprint(resolved, [inputs[0] | {"sha256": "cd"}])
    assert base != fingerprint(resolved | {"version": "9.9.9"}, inputs)


def test_cli_bad_recipe_exits_2_and_writes_nothing(tmp_path):
    path = write(tmp_path, GOOD.replace("length_filter", "lenght_filter"))
    output = tmp_path / "out"
    result = run_cli("build", str(path), "--input", f"docs={DEMO_INPUTS}", "--output", str(output))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "pmc-data: error: recipe.yaml: steps[1].step: unknown step 'lenght_filter'; "
        f"allowed: {ALL_STEPS}"
    ]
    assert len(lines) == 1
    assert not output.exists()


def test_cli_missing_input_and_wrong_type_exit_2(tmp_path):
    output = tmp_path / "out"
    missing = run_cli("build", "demo", "--output", str(output))
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "pmc-data: error: recipes/demo.yaml: inputs.docs: required input not given; "
        "pass --input docs=PATH"
    )
    wrong = run_cli(
        "build",
        "demo",
        "--input",
        f"docs={DEMO_INPUTS}",
        "--output",
        str(output),
        "--set",
        "output.row_group_rows=many",
    )
    assert wrong.returncode == 2
    assert (
        "recipes/demo.yaml: output.row_group_rows: Input should be a valid integer" in wrong.stderr
    )
    assert not output.exists()


def test_cli_validate_and_recipes():
    ok = run_cli("validate", "demo")
    assert ok.returncode == 0
    assert ok.stdout.strip() == "recipes/demo.yaml: ok (demo 0.1.0, 1 reader(s), 5 step(s))"
    listing = run_cli("recipes")
    assert listing.returncode == 0
    assert "demo" in listing.stdout and "--input docs=PATH" in listing.stdout


def test_every_builtin_recipe_validates():
    from pmc_data.recipe import list_recipes

    names = [name for name, _ in list_recipes()]
    assert {
        "demo",
        "dedup",
        "medc_k/pmc_oa",
        "medc_k/s2orc",
        "medc_k/pubmed_abstracts",
        "medc_i/rationale_extractive",
        "medc_i/knowledge_graph",
    } <= set(names)
    for _, path in list_recipes():
        recipe = load_recipe(path)
        assert recipe.readers and recipe.model.version
