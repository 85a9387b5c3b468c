"""Runner throughput and memory: `pmc-data build` against `datasets` on the same JSONL.

    python benchmarks/runner.py                      # 200k documents, workers 1 and 2
    python benchmarks/runner.py --docs 20000 --scale 5 --workers 1 2

Both sides do the same work on the same generated input: read JSONL, apply pmc-data's
``normalize_text`` to every text, write Parquet. The peer is the idiomatic `datasets` path,
``load_dataset("json") .map(batched=True, num_proc=N) .to_parquet()``. Each side runs in its
own subprocess; peak memory is the summed RSS of that process tree, sampled every 20 ms.
Then the pmc-data build is repeated on an input ``--scale`` times larger, to show that peak
memory does not grow with the corpus.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import textwrap
from importlib import metadata
from pathlib import Path

import psutil
from measure import measure

HERE = Path(__file__).resolve().parent

RECIPE = """
name: bench
version: 0.0.1
inputs:
  docs: {help: JSONL}
read:
  - {reader: jsonl, input: docs, source: web, license: ODC-BY-1.0}
steps:
  - {step: normalize_text}
output: {shard_size: 256MB}
"""

PEER = textwrap.dedent(
    """
    import sys
    from datasets import load_dataset
    from pmc_data.steps.text import NormalizeText

    source, output, workers, cache = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    step = NormalizeText()

    def normalise(batch):
        return {"text": [step.transform(t) for t in batch["text"]]}

    ds = load_dataset("json", data_files=source, split="train", cache_dir=cache)
    ds = ds.map(normalise, batched=True, num_proc=workers if workers > 1 else None)
    ds.to_parquet(output)
    """
)

WORDS = (  # noqa: SIM905 - a word list reads better as prose
    "the patient patients were was with of and in to a for on by clinical trial randomised "
    "cohort mortality infection antibiotic dose renal hepatic cardiac pulmonary therapy "
    "outcome risk ratio confidence interval serum plasma insulin glucose pressure artery "
    "tumour lesion biopsy diagnosis prognosis treatment placebo adverse event hospital "
    "admission follow-up months years baseline increase decrease significant association"
).split()


def generate(path: Path, n: int, seed: int = 0) -> int:
    """``n`` JSONL documents of 60-300 words with some Unicode and whitespace noise."""
    rng = random.Random(seed)
    noise = ["  ", "\u00a0", " \t", "\u200b", "\r\n", "Cafe\u0301"]
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            words = [rng.choice(WORDS) for _ in range(rng.randint(60, 300))]
            for _ in range(rng.randint(0, 4)):
                words.insert(rng.randrange(len(words)), rng.choice(noise))
            record = {"id": f"doc-{i}", "text": " ".join(words), "url": f"https://example.org/{i}"}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path.stat().st_size


def ours(data: Path, recipe: Path, out: Path, workers: int, *extra: str) -> tuple[float, int]:
    command = [
        sys.executable,
        "-m",
        "pmc_data",
        "-q",
        "build",
        str(recipe),
        "--input",
        f"docs={data}",
        "--output",
        str(out),
        "--workers",
        str(workers),
        "--overwrite",
        *extra,
    ]
    return measure(command, HERE.parent)


def peer(data: Path, out: Path, workers: int, cache: Path) -> tuple[float, int]:
    script = out.parent / "peer.py"
    script.write_text(PEER)
    command = [sys.executable, str(script), str(data), str(out), str(workers), str(cache)]
    return measure(command, HERE.parent)


def versions() -> str:
    names = ("pmc-data", "datasets", "pyarrow", "polars")
    return (
        ", ".join(f"{n} {metadata.version(n)}" for n in names)
        + f", Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--scale", type=int, default=5, help="growth factor for the memory check")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pmc-bench-") as tmp:
        tmp = Path(tmp)
        recipe = tmp / "bench.yaml"
        recipe.write_text(RECIPE)
        data = tmp / "docs.jsonl"
        size = generate(data, args.docs)
        print(f"input: {args.docs:,} documents, {size / 1e6:.0f} MB; {versions()}")
        print(
            f"machine: {platform.machine()}, {psutil.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
        )
        print(
            "| workers | pmc-data s | datasets s | pmc-data rec/s | datasets rec/s | ratio "
            "| pmc-data peak MiB | datasets peak MiB |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for workers in args.workers:
            t_ours, m_ours = ours(data, recipe, tmp / f"ours-{workers}", workers)
            t_peer, m_peer = peer(
                data, tmp / f"peer-{workers}.parquet", workers, tmp / f"cache-{workers}"
            )
            print(
                f"| {workers} | {t_ours:.1f} | {t_peer:.1f} | {args.docs / t_ours:,.0f} | "
                f"{args.docs / t_peer:,.0f} | {t_peer / t_ours:.2f}x | {m_ours / 2**20:,.0f} | "
                f"{m_peer / 2**20:,.0f} |"
            )
        if args.scale > 1:
            big = tmp / "docs-big.jsonl"
            generate(big, args.docs * args.scale, seed=1)
            workers = max(args.workers)
            # The same unit size for both, so the comparison isolates the corpus size
            # (by default small inputs get smaller units, up to the 16 MiB cap).
            fixed = ("--unit-size", "16MiB")
            t_small, m_small = ours(data, recipe, tmp / "mem-small", workers, *fixed)
            t_big, m_big = ours(big, recipe, tmp / "mem-big", workers, *fixed)
            mib_small, mib_big = m_small / 2**20, m_big / 2**20
            print(
                f"\nmemory, {workers} workers: {args.docs:,} docs -> peak {mib_small:,.0f} MiB "
                f"({t_small:.1f} s); {args.docs * args.scale:,} docs -> peak {mib_big:,.0f} MiB "
                f"({t_big:.1f} s); growth {m_big / m_small:.2f}x for {args.scale}x input"
            )


if __name__ == "__main__":
    main()
