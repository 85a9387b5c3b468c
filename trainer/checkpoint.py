"""Checkpoints with torch.distributed.checkpoint (sharded, atomic, last k kept) and HF export.

A checkpoint is a folder ``step-00000120/``: the DCP shards of the model and optimizer (every
rank writes its own; a later run may use another world size), ``rank-<r>.pt`` with that rank's
RNG states, and ``trainer.json`` (step, data position, LR scheduler). Ranks write into
``step-00000120.tmp`` and rank 0 renames it when all are done, so a run killed mid-write leaves
no folder that looks complete; the newest complete folder is where a run resumes.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from transformers import AutoModelForCausalLM

NAME = re.compile(r"^step-(\d{8})$")


def latest(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder``, or None."""
    done = [
        p for p in folder.glob("step-*") if NAME.match(p.name) and (p / "trainer.json").exists()
    ]
    return max(done, key=lambda p: p.name) if done else None


def rng_states() -> dict:
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state(states["cuda"])


def save(folder: Path, step: int, model, optimizer, trainer_state: dict, keep: int) -> Path:
    """Write checkpoint ``step`` (a collective: every rank calls it), then prune to ``keep``."""
    rank = dist.get_rank()
    final = folder / f"step-{step:08d}"
    partial = folder / f"{final.name}.tmp"
    if rank == 0:
        for stale in folder.glob("step-*.tmp"):  # left by a run killed while writing
            shutil.rmtree(stale)
        partial.mkdir(parents=True)
    dist.barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=partial)
    torch.save(rng_states(), partial / f"rank-{rank}.pt")
    dist.barrier()
    if rank == 0:
        state = {**trainer_state, "world_size": dist.get_world_size()}
        (partial / "trainer.json").write_text(json.dumps(state, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        old = sorted(p for p in folder.glob("step-*") if NAME.match(p.name))[:-keep]
        for path in old:
            shutil.rmtree(path)
    dist.barrier()
    return final


def load(path: Path, model, optimizer) -> dict:
    """Restore model, optimizer and this rank's RNG states from ``path``; return trainer.json.

    RNG states come back only at the world size that saved them (they are per rank); the
    weights, optimizer and data position load at any world size.
    """
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    dcp.load(state, checkpoint_id=path)
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"]
    )
    trainer_state = json.loads((path / "trainer.json").read_text())
    rng = path / f"rank-{dist.get_rank()}.pt"
    if trainer_state["world_size"] == dist.get_world_size() and rng.exists():
        set_rng_states(torch.load(rng, weights_only=False))
    return trainer_state


def export(model, tokenizer, folder: Path, dtype: torch.dtype) -> None:
    """Gather the full weights and write a folder ``from_pretrained`` loads (safetensors).

    A collective: every rank calls it; rank 0 writes.
    """
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(model, options=options)
    if dist.get_rank() == 0:
        # a fresh, unsharded model of the same class: FSDP renames the class it wraps
        with torch.device("meta"):
            plain = AutoModelForCausalLM.from_config(model.config)
        plain.load_state_dict(state, assign=True)
        plain.tie_weights()
        plain.to(dtype)
        partial = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(partial, ignore_errors=True)
        plain.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    dist.barrier()
