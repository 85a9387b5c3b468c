"""Throughput, MFU and memory, and where they are written: metrics.jsonl and a progress line.

MFU counts the model FLOPs of the tokens trained, as in PaLM (appendix B), nanoGPT and
torchtitan: ``6 N`` per token for the matrix multiplies of forward and backward (N = parameters
less the input embedding, a lookup), plus ``12 L d T`` for attention scores and their weighted
sums over a window of ``T`` tokens (no discount for causal or document masks). Recomputation by
activation checkpointing is not counted: it is overhead, not useful work.

>>> shape = {"params": 1_000_000, "embedding": 100_000, "layers": 2, "hidden": 64}
>>> flops_per_token(shape, seq_len=128)
5596608
"""

from __future__ import annotations

import json
import resource
import time
from functools import cache
from pathlib import Path

import torch

# dense bf16 tensor-core peaks, FLOP/s (vendor data sheets, without sparsity)
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12}


def flops_per_token(shape: dict[str, int], seq_len: int) -> int:
    """Model FLOPs to train on one token (forward and backward)."""
    dense = shape["params"] - shape["embedding"]
    return 6 * dense + 12 * shape["layers"] * shape["hidden"] * seq_len


@cache
def measured_peak(device: str = "cpu", n: int = 1024, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a large square matmul on this device with the current thread count."""
    a, b = (
        torch.randn(n, n, dtype=dtype, device=device),
        torch.randn(n, n, dtype=dtype, device=device),
    )
    for _ in range(3):
        a @ b
    reps, started = 10, time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - started)


def peak_flops(device: torch.device) -> float:
    """The device's peak FLOP/s: the data-sheet bf16 figure on known GPUs, else measured."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, flops in PEAK_BF16.items():
            if key in name:
                return flops
        return measured_peak(str(device), 8192, torch.bfloat16)
    return measured_peak()


def memory_gib(device: torch.device) -> float:
    """Peak memory: CUDA allocations on a GPU, the process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


class Log:
    """Appends one JSON object per line to ``path`` and prints a progress line (rank 0 only)."""

    def __init__(self, path: Path, enabled: bool, append: bool) -> None:
        self.enabled = enabled
        mode = "a" if append else "w"  # a resumed run continues the file, a new one replaces it
        self.file = open(path, mode, encoding="utf-8") if enabled else None  # noqa: SIM115

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        print(progress_line(record), flush=True)

    def close(self) -> None:
        if self.file:
            self.file.close()


def progress_line(record: dict) -> str:
    """A metrics record as one readable line.

    >>> progress_line({"step": 3, "max_steps": 10, "loss": 2.5, "lr": 1e-4, "tokens_per_s": 1234.5})
    'step 3/10 | loss 2.5000 | lr 1.00e-04 | 1,234 tok/s'
    """
    evals = [(k.removeprefix("eval_loss/"), v) for k, v in record.items() if k.startswith("eval_")]
    if evals:
        return f"step {record['step']} | " + " | ".join(f"eval {k} {v:.4f}" for k, v in evals)
    formats = [
        ("epoch", "epoch {:.3f}"),
        ("loss", "loss {:.4f}"),
        ("lr", "lr {:.2e}"),
        ("grad_norm", "gnorm {:.3f}"),
        ("tokens_per_s", "{:,.0f} tok/s"),
        ("mfu", "mfu {:.1%}"),
        ("data_wait", "data {:.1%}"),
        ("memory_gib", "mem {:.2f} GiB"),
    ]
    head = f"step {record['step']}/{record['max_steps']}"
    return " | ".join([head] + [f.format(record[k]) for k, f in formats if k in record])
