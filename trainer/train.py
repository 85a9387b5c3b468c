"""The training loop: ``python -m trainer --config FILE [key=value ...]``, or under torchrun.

Read top to bottom: set up the process group, tokenizer and data, build and shard the model,
resume from the newest checkpoint, then for each step take this rank's micro-batches, count the
supervised tokens of the whole global batch, and backpropagate each micro-batch's summed loss
divided by that count. That makes the step's gradient the mean over every supervised token of
the global batch, the same at any world size and accumulation (a mean of per-batch means
would weight short batches up).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh

from trainer import checkpoint, config, data, metrics
from trainer import model as models
from trainer.loss import loss_for, loss_sum
from trainer.mixture import Mixture, Prefetcher, micro_batch_rows
from trainer.tokenizer import load_or_train


def setup(cfg: config.Config) -> tuple[int, int, torch.device]:
    """Join the process group (torchrun's, or a one-process one) and pick this rank's device."""
    cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    device = (
        torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    )
    if cfg.train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS starts
        torch.use_deterministic_algorithms(True)
    if cuda:
        torch.cuda.set_device(device)
    backend = "cpu:gloo,cuda:nccl" if cuda else "gloo"
    if "RANK" in os.environ:
        dist.init_process_group(backend, device_id=device if cuda else None)
    else:
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    return dist.get_rank(), dist.get_world_size(), device


def main_first(fn):
    """Run ``fn`` on rank 0, then on the others (which then find its files: cache, tokenizer)."""
    if dist.get_rank() == 0:
        result = fn()
    dist.barrier()
    if dist.get_rank() != 0:
        result = fn()
    return result


def load_data(cfg: config.Config, tokenizer) -> tuple[dict, dict]:
    """Training and held-out rows of every source."""
    cache = Path(cfg.data.cache_dir or Path.home() / ".cache" / "pmc-trainer")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train, held = {}, {}
    for name, source in cfg.data.sources.items():

        def rows(split: str, source=source) -> data.Rows:
            tokens = data.load_tokens(source, split, tokenizer, cfg.task, cfg.data.template, cache)
            return data.Rows(tokens, cfg.data.seq_len, pad, whole_docs=cfg.task == "sft")

        train[name] = rows(source.split)
        if not len(train[name]):
            raise ValueError(f"source {name}: no rows (is every example longer than seq_len?)")
        if source.eval_split:
            held[name] = rows(source.eval_split)
        elif cfg.data.holdout:  # the last rows of the source, never trained on
            n = len(train[name])
            cut = n - max(1, round(n * cfg.data.holdout))
            if cut < 1:
                raise ValueError(f"source {name}: {n} rows, too few to hold out {cfg.data.holdout}")
            held[name] = train[name].select(np.arange(cut, n))
            train[name] = train[name].select(np.arange(cut))
    return train, held


def schedule(step: int, cfg: config.Train, max_steps: int) -> float:
    """LR multiplier after ``step`` optimizer steps: linear warmup, then cosine to the floor."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, max_steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine


def optimizer_for(model, cfg: config.Train) -> torch.optim.Optimizer:
    """AdamW, weight decay on matrices only, fused (one kernel per step, on CPU and CUDA)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=True)


def train_step(model, optimizer, batches: list[dict], amp, clip: float, loss=loss_sum) -> tuple:
    """One optimizer step over this rank's micro-batches; ``loss(model, batch)`` is the
    micro-batch's summed loss (:func:`trainer.loss.loss_for`).

    Returns the global batch's summed loss, the gradient norm and its token counts (supervised,
    and not padding), all summed over ranks.
    """
    device = next(model.parameters()).device
    counts = torch.tensor(
        [sum(int((b["labels"] != data.IGNORE).sum()) for b in batches),
         sum(int(b["lengths"].sum()) for b in batches)],
        dtype=torch.float64, device=device,
    )  # fmt: skip
    dist.all_reduce(counts)  # before any backward: every loss is divided by the global count
    summed = torch.zeros((), dtype=torch.float64, device=device)
    for batch in batches:
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with amp:
            summed_loss = loss(model, batch)
        (summed_loss / counts[0].clamp(min=1)).backward()
        summed += summed_loss.detach()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip > 0 else math.inf)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    dist.all_reduce(summed)
    return summed, norm, counts


@torch.no_grad()
def evaluate(
    model, held: dict[str, data.Rows], cfg: config.Config, amp, loss=loss_sum
) -> dict[str, float]:
    """Mean loss per supervised token on each source's held-out rows (at most eval.max_rows)."""
    rank, world, micro = dist.get_rank(), dist.get_world_size(), cfg.train.micro_batch_rows
    device = next(model.parameters()).device
    model.eval()
    results = {}
    for name, rows in held.items():
        count = min(len(rows), max(1, cfg.eval.max_rows // len(held)))
        totals = torch.zeros(2, dtype=torch.float64, device=device)
        for s in range(math.ceil(count / (world * micro))):  # as many on every rank (FSDP)
            ids = [(s * world + rank) * micro + j for j in range(micro)]
            batch = data.collate([(rows, i if i < count else 0) for i in ids])
            batch["labels"][[j for j, i in enumerate(ids) if i >= count]] = data.IGNORE  # fillers
            with amp:
                on_device = {k: v.to(device) for k, v in batch.items()}
                totals[0] += loss(model, on_device)
            totals[1] += (batch["labels"] != data.IGNORE).sum()
        dist.all_reduce(totals)
        results[f"eval_loss/{name}"] = (totals[0] / totals[1]).item()
    model.train()
    return results


def run(cfg: config.Config) -> None:
    rank, world, device = setup(cfg)
    try:
        train(cfg, rank, world, device)
    finally:
        dist.destroy_process_group()


def train(cfg: config.Config, rank: int, world: int, device: torch.device) -> None:
    out, tc = Path(cfg.out_dir), cfg.train
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        config.save(cfg, out / "config.yaml")
    dist.barrier()

    # tokenizer and data: rank 0 trains the tokenizer and fills the cache, the others read them
    texts = (t for source in cfg.data.sources.values() for t in data.iter_texts(source, cfg.task))
    tokenizer = main_first(lambda: load_or_train(cfg.tokenizer, cfg.model.path, out, texts))
    train_rows, held_rows = main_first(lambda: load_data(cfg, tokenizer))
    for name, rows in train_rows.items():
        if rows.too_long and rank == 0:
            print(f"{name}: left out {rows.too_long} examples longer than data.seq_len")
    weights = {name: source.weight for name, source in cfg.data.sources.items()}
    mixture = Mixture(train_rows, weights, tc.seed)
    if tc.global_batch_rows % (tc.micro_batch_rows * world):
        raise ValueError(
            f"train.global_batch_rows {tc.global_batch_rows} is not a multiple of "
            f"train.micro_batch_rows x world size = {tc.micro_batch_rows * world}"
        )
    accumulation = tc.global_batch_rows // (tc.micro_batch_rows * world)
    rows_wanted = mixture.rows_for_epochs(cfg.data.epoch_source, tc.epochs)
    max_steps = tc.max_steps or math.ceil(rows_wanted / tc.global_batch_rows)

    # model, sharding, optimizer
    model = models.build(cfg.model, tokenizer, device, tc.seed)
    loss = loss_for(model, tc.loss_chunk, cfg.model.compile, device)  # checked before sharding
    flops = metrics.flops_per_token(models.flops_shape(model), cfg.data.seq_len)
    bf16 = tc.dtype == "bf16" or (tc.dtype == "auto" and device.type == "cuda")
    mesh = init_device_mesh(device.type, (world,)) if world > 1 else None
    model = models.parallelize(model.to(device), cfg.model, mesh, torch.bfloat16 if bf16 else None)
    amp = torch.autocast(device.type, torch.bfloat16, enabled=bf16 and mesh is None)
    optimizer = optimizer_for(model, tc)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: schedule(s, tc, max_steps))

    # resume: weights, optimizer, scheduler, RNG and the data position (a global row index)
    step = rows_done = 0
    folder = out / "checkpoints"
    last = checkpoint.latest(folder) if cfg.checkpoint.resume else None
    if last is not None:
        state = checkpoint.load(last, model, optimizer)
        scheduler.load_state_dict(state["scheduler"])
        step, rows_done = state["step"], state["rows"]
        if rank == 0:
            print(f"resumed from {last} (step {step}, row {rows_done})", flush=True)

    first, first_row = step, rows_done  # read by the prefetch thread: never reassigned
    log = metrics.Log(out / "metrics.jsonl", rank == 0, append=step > 0)

    def batches_for(k: int) -> list[dict[str, torch.Tensor]]:  # step k's micro-batches
        start = first_row + (k - first) * tc.global_batch_rows
        ids = micro_batch_rows(start, tc.micro_batch_rows, accumulation, world, rank)
        batches = [mixture.batch(rows) for rows in ids]
        if device.type == "cuda":
            batches = [{key: v.pin_memory() for key, v in b.items()} for b in batches]
        return batches

    def save() -> None:
        trainer_state = {"step": step, "rows": rows_done, "scheduler": scheduler.state_dict()}
        checkpoint.save(folder, step, model, optimizer, trainer_state, cfg.checkpoint.keep)

    def evaluate_now() -> None:
        if held_rows and cfg.eval.max_rows:
            log.write({"step": step, **evaluate(model, held_rows, cfg, amp, loss)})

    peak = metrics.peak_flops(device)
    evaluated = False
    stop = max_steps if tc.run_steps is None else min(max_steps, step + tc.run_steps)
    fetch = Prefetcher(batches_for, first=step, depth=cfg.data.prefetch)
    started = since = time.perf_counter()
    tokens = waiting = 0.0  # since the last log line
    try:
        while step < stop:
            batches, waited = fetch.get()
            lr = scheduler.get_last_lr()[0]
            summed, norm, counts = train_step(model, optimizer, batches, amp, tc.grad_clip, loss)
            scheduler.step()
            step, rows_done = step + 1, rows_done + tc.global_batch_rows
            tokens, waiting = tokens + counts[1], waiting + waited
            if step % tc.log_every == 0 or step == stop:
                if device.type == "cuda":  # kernels run ahead of Python: time what has finished
                    torch.cuda.synchronize()
                now = time.perf_counter()
                seconds, tokens = now - since, float(tokens)
                norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
                log.write({
                    "step": step,
                    "max_steps": max_steps,
                    "epoch": mixture.epoch(cfg.data.epoch_source, rows_done),
                    "loss": (summed / counts[0]).item(),
                    "lr": lr,
                    "grad_norm": norm.item(),
                    "supervised_tokens": int(counts[0]),
                    "tokens": int(tokens),
                    "tokens_per_s": tokens / seconds,
                    "mfu": flops * tokens / seconds / (peak * world),
                    "data_wait": waiting / seconds,
                    "memory_gib": metrics.memory_gib(device),
                    "step_time_s": seconds / (step % tc.log_every or tc.log_every),
                    "elapsed_s": now - started,
                })  # fmt: skip
                since, tokens, waiting = time.perf_counter(), 0.0, 0.0
            paused = time.perf_counter()  # evaluation and checkpoints are not training time
            evaluated = bool(cfg.eval.every) and step % cfg.eval.every == 0
            if evaluated:
                evaluate_now()
            if cfg.checkpoint.every and step % cfg.checkpoint.every == 0 and step < stop:
                save()
            since += time.perf_counter() - paused
    finally:
        fetch.close()
    if step > first:
        save()
    if step >= max_steps:
        if not evaluated:
            evaluate_now()
        if cfg.export.at_end:
            dtype = torch.bfloat16 if cfg.export.dtype == "bf16" else torch.float32
            checkpoint.export(model, tokenizer, out / "hf", dtype)
            if rank == 0:
                print(f"exported {out / 'hf'}", flush=True)
    log.close()
