"""The ``pmc-data`` command line.

    pmc-data build RECIPE --input NAME=PATH ... --output DIR [--set a.b=value] [--workers N]
                   [--executor auto|processes|threads]
    pmc-data validate RECIPE [--input NAME=PATH ...] [--set a.b=value]
    pmc-data recipes
    pmc-data inspect DIR
    pmc-data publish DIR (--repo ORG/NAME | --to PATH) [--version X.Y.Z]

Exit codes: 0 done, 1 unexpected failure, 2 bad recipe / arguments / refused, 3 built but
more input was unreadable than the recipe's ``max_error_rate`` allows.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pmc_data import __version__, allocators
from pmc_data.errors import BuildError, PublishError, RecipeError

log = logging.getLogger("pmc_data")


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise SystemExit(_usage_error(f"{flag} {value!r}: expected NAME=PATH"))
        pairs[name] = path
    return pairs


def _usage_error(message: str) -> int:
    print(f"pmc-data: error: {message}", file=sys.stderr)
    return 2


def _add_recipe_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "recipe", help="recipe file, or built-in name such as demo or medc_k/pmc_oa"
    )
    parser.add_argument(
        "--input",
        "-i",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="fill a named input of the recipe (repeatable)",
    )
    parser.add_argument(
        "--set",
        "-s",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a recipe field, e.g. steps.length_filter.min_words=50",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pmc-data", description=__doc__.split("\n")[0])
    top.add_argument("--version", action="version", version=f"pmc-data {__version__}")
    top.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    commands = top.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build a recipe into a dataset folder")
    _add_recipe_args(build)
    build.add_argument("--output", "-o", required=True, type=Path, help="dataset folder to write")
    build.add_argument("--workers", "-w", type=int, default=1, help="parallel workers (default 1)")
    build.add_argument(
        "--executor",
        choices=("auto", "processes", "threads"),
        default="auto",
        help="what the workers are: auto (default) uses threads of one process when every "
        "step of the recipe runs in Arrow/polars/NumPy (less memory), else processes",
    )
    build.add_argument(
        "--unit-size",
        default="16MiB",
        help="most input bytes per work unit (default 16MiB; smaller inputs get smaller units)",
    )
    build.add_argument(
        "--overwrite", action="store_true", help="replace a different build in --output"
    )
    build.add_argument(
        "--keep-work", action="store_true", help="keep DIR/.work (unit results, signatures)"
    )
    build.add_argument(
        "--dry-run",
        action="store_true",
        help="send no LLM request: print sample prompts and the estimated tokens and cost "
        "(nothing is written to --output)",
    )

    validate = commands.add_parser("validate", help="check a recipe without running it")
    _add_recipe_args(validate)

    commands.add_parser("recipes", help="list the built-in recipes and their inputs")

    inspect = commands.add_parser("inspect", help="summarise a built dataset folder")
    inspect.add_argument("folder", type=Path)
    inspect.add_argument("-n", "--samples", type=int, default=3, help="sample rows to show")

    publish = commands.add_parser("publish", help="publish a built folder to the Hub or a store")
    publish.add_argument("folder", type=Path)
    where = publish.add_mutually_exclusive_group(required=True)
    where.add_argument("--repo", help="Hub dataset repo ORG/NAME")
    where.add_argument("--to", help="local folder or fsspec URL of a versioned store")
    publish.add_argument("--name", help="dataset name in the store (default: the recipe's name)")
    publish.add_argument("--version", help="X.Y.Z; must equal the built version (the default)")
    publish.add_argument("--private", action="store_true", help="create the Hub repo private")
    return top


def _dry_run(recipe, output: Path, options) -> int:
    """Build into a scratch folder with LLM requests switched off; print what they would cost.

    LLM steps see ``PMC_DATA_DRY_RUN=1`` (workers inherit it): cached answers count, every
    other item is estimated and dropped as ``dry_run`` instead of being requested.
    """
    import shutil
    import tempfile

    from pmc_data.runner import build

    os.environ["PMC_DATA_DRY_RUN"] = "1"
    scratch = Path(tempfile.mkdtemp(prefix="pmc-data-dry-run-"))
    try:
        result = build(recipe, scratch / "out", options)
    finally:
        os.environ.pop("PMC_DATA_DRY_RUN", None)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"dry run of {recipe.name}: no request sent; nothing written to {output}")
    reported = False
    for step in result.manifest["steps"]:
        report = step.get("report")
        if not report:
            continue
        reported = True
        print(f"\n{step['step']}: {step['in']:,} rows in")
        for key, value in report.items():
            if not isinstance(value, list | dict):
                print(f"  {key}: {value:,}" if isinstance(value, int) else f"  {key}: {value}")
        for number, sample in enumerate(report.get("sample_prompts", []), 1):
            print(f"  sample prompt {number}:")
            print("    " + str(sample).replace("\n", "\n    "))
    if not reported:
        print("no step of this recipe calls an LLM")
    return 0


def _build(args) -> int:
    from pmc_data.recipe import load_recipe, parse_size
    from pmc_data.runner import BuildOptions, build

    allocators.pyarrow_without_pandas()  # a build process never needs pandas (45 MiB)
    recipe = load_recipe(
        args.recipe, args.overrides, _pairs(args.input, "--input"), require_inputs=True
    )
    if args.workers < 1:
        return _usage_error("--workers must be at least 1")
    options = BuildOptions(
        workers=args.workers,
        unit_bytes=parse_size(args.unit_size),
        overwrite=args.overwrite,
        progress=(not args.quiet and sys.stderr.isatty())
        or os.environ.get("PMC_DATA_PROGRESS") == "1",
        keep_work=args.keep_work,
        executor=args.executor,
    )
    if args.dry_run:
        return _dry_run(recipe, args.output, options)
    result = build(recipe, args.output, options)
    if result.up_to_date:
        fp = result.fingerprint[:12]
        print(f"{args.output}: already built with this recipe and inputs (fingerprint {fp})")
        return 0
    rows = ", ".join(f"{split} {n:,}" for split, n in result.rows.items())
    print(
        f"built {args.output}: {rows} rows; {result.input_errors:,} of {result.items_read:,} "
        f"input items unreadable; {result.units_resumed} of {result.units_total} units resumed"
    )
    if result.error_rate_exceeded:
        print(
            f"pmc-data: error: unreadable input above max_error_rate "
            f"{recipe.model.max_error_rate}; see {args.output}/rejects",
            file=sys.stderr,
        )
        return 3
    return 0


def _validate(args) -> int:
    from pmc_data.recipe import load_recipe

    inputs = _pairs(args.input, "--input")
    recipe = load_recipe(args.recipe, args.overrides, inputs, require_inputs=bool(inputs))
    print(
        f"{recipe.path}: ok ({recipe.name} {recipe.model.version}, "
        f"{len(recipe.readers)} reader(s), {len(recipe.steps)} step(s))"
    )
    return 0


def _recipes(_args) -> int:
    from pmc_data.recipe import list_recipes, load_recipe

    for name, path in list_recipes():
        recipe = load_recipe(path)
        inputs = " ".join(
            f"--input {n}=PATH" if spec.required else f"[--input {n}=PATH]"
            for n, spec in recipe.model.inputs.items()
        )
        print(f"{name:<28} {recipe.model.version:<8} {inputs}")
        if recipe.model.description:
            print(f"{'':<28} {recipe.model.description}")
    return 0


def _inspect(args) -> int:
    from pmc_data.inspect import summarize

    print(summarize(args.folder, samples=args.samples))
    return 0


def _publish(args) -> int:
    from pmc_data.publish import publish_to_hub, publish_to_store

    if args.repo:
        commit = publish_to_hub(args.folder, args.repo, args.version, private=args.private)
        print(f"published {args.folder} to hf://datasets/{args.repo} (commit {commit})")
    else:
        name = args.name
        location = publish_to_store(args.folder, args.to, name, args.version)
        print(f"published {args.folder} to {location}")
    return 0


def main(argv: list[str] | None = None) -> int:
    # Before the commands import polars and pyarrow (the CLI imports neither up front).
    allocators.configure()
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    handler = {
        "build": _build,
        "validate": _validate,
        "recipes": _recipes,
        "inspect": _inspect,
        "publish": _publish,
    }[args.command]
    try:
        return handler(args)
    except (RecipeError, BuildError, PublishError, FileNotFoundError) as exc:
        return _usage_error(str(exc))


if __name__ == "__main__":
    sys.exit(main())
