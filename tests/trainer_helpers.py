"""Shared by the trainer tests: small dataset folders, a tiny-LLaMA config and model, running
the trainer."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
import yaml
from transformers import AutoConfig, AutoModelForCausalLM

ROOT = Path(__file__).resolve().parents[1]

_WORDS = (  # noqa: SIM905 - a word list reads better as prose
    "patient patients clinical trial randomised cohort mortality infection antibiotic dose renal "
    "hepatic cardiac pulmonary therapy outcome risk ratio serum plasma insulin glucose pressure "
    "artery vein tumour lesion biopsy diagnosis prognosis treatment placebo adverse event "
    "hospital admission baseline increase decrease significant association incidence anaemia "
    "haemoglobin fracture mobilisation surgery recovery chapter textbook physiology"
).split()


def text(rng: random.Random, words: int) -> str:
    """Medical-sounding sentences, ``words`` words long."""
    out = []
    while len(out) < words:
        sentence = [rng.choice(_WORDS) for _ in range(rng.randint(6, 14))]
        sentence[0] = sentence[0].capitalize()
        sentence[-1] += "."
        out += sentence
    return " ".join(out[:words])


def write_dataset(folder: Path, rows: list[dict], split: str = "train") -> Path:
    """A folder shaped like a pmc-data build: ``DIR/data/<split>-00000-of-00001.parquet``."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "data" / f"{split}-00000-of-00001.parquet")
    return folder


def documents(n: int, seed: int, source: str, words: tuple[int, int] = (40, 90)) -> list[dict]:
    """MedC-K-shaped rows: id, text, source, license."""
    rng = random.Random(seed)
    return [
        {
            "id": f"{source}:{i}",
            "text": text(rng, rng.randint(*words)),
            "source": source,
            "license": "CC-BY-4.0",
        }
        for i in range(n)
    ]


def instructions(n: int, seed: int) -> list[dict]:
    """MedC-I-shaped rows: instruction, input, output and the same as chat messages."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        instruction = "Answer the question. " + text(rng, rng.randint(4, 10))
        given = text(rng, rng.randint(5, 30)) if i % 3 else ""
        output = "###Answer: " + text(rng, rng.randint(3, 25))
        user = instruction + (f"\n\n{given}" if given else "")
        rows.append(
            {
                "id": f"qa:{i}",
                "source": "qa",
                "task": "qa_answer",
                "instruction": instruction,
                "input": given,
                "output": output,
                "license": "MIT",
                "messages": [
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": output},
                ],
            }
        )
    return rows


def pretrain_sources(tmp: Path) -> dict[str, dict]:
    """Three sources of different sizes; ``general`` is one short document (one short row).

    ``books`` also has a validation split (3 documents) to evaluate on.
    """
    write_dataset(tmp / "books", documents(3, 9, "book"), split="validation")
    books = write_dataset(tmp / "books", documents(6, 1, "book"))
    return {
        "books": {"path": str(books), "weight": 15, "eval_split": "validation"},
        "papers": {"path": str(write_dataset(tmp / "papers", documents(8, 2, "pmc"))), "weight": 4},
        "general": {
            "path": str(write_dataset(tmp / "general", documents(1, 3, "web", (20, 20)))),
            "weight": 1,
        },
    }


def tiny_model(vocab_size: int, model_type="llama", attn="sdpa", width=64, **extra):
    """A randomly initialised 2-layer causal LM (seed 0), ``width`` wide, 4 heads, 2 KV heads."""
    config = AutoConfig.for_model(
        model_type,
        vocab_size=vocab_size,
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        **extra,
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn)


def tiny_config(tmp: Path, out: str, sources: dict, **sections) -> Path:
    """A YAML config for a 2-layer, 64-wide LLaMA on CPU; ``sections`` update its sections."""
    cfg = {
        "task": "pretrain",
        "out_dir": str(tmp / out),
        "device": "cpu",
        "tokenizer": "train:384",
        "data": {"sources": sources, "seq_len": 64, "cache_dir": str(tmp / "cache")},
        "model": {
            "config": {
                "model_type": "llama",
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "max_position_embeddings": 256,
            },
            "attn": "sdpa",
        },
        "train": {
            "global_batch_rows": 8,
            "micro_batch_rows": 2,
            "max_steps": 3,
            "lr": 3e-3,
            "warmup_steps": 1,
            "weight_decay": 0.1,
            "deterministic": True,
        },
        "eval": {"max_rows": 7},
        "checkpoint": {"every": 0},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    path = tmp / f"{out}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def run_trainer(config: Path, *overrides: str, nproc: int = 1) -> subprocess.CompletedProcess:
    """``python -m trainer`` (or ``torchrun --nproc_per_node N -m trainer``); fails loudly."""
    if nproc == 1:
        command = [sys.executable, "-m", "trainer"]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(nproc),
            "-m",
            "trainer",
        ]
    env = {
        **os.environ,
        # one thread per process: with OpenMP spinning, two threads on a busy 2-core machine are
        # many times slower than one
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(config.parent / "hf-datasets"),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [*command, "--config", str(config), *overrides],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, (
        f"trainer failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return result


def metrics(out_dir: Path, kind: str = "loss") -> list[dict]:
    """The training records of ``metrics.jsonl`` (``kind="eval_loss/books"``: evaluations)."""
    lines = (out_dir / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if kind in record]
