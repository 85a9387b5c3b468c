"""The trainer end to end, as processes: FSDP at 2 ranks equals a plain 1-process reference,
resume is bitwise exact at 1 and 2 ranks, and the export loads with ``from_pretrained``.

All runs train a 2-layer, 64-wide LLaMA on CPU with gloo, on three generated sources mixed
15:4:1, with a BPE tokenizer trained on the fly.
"""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from trainer_helpers import metrics, pretrain_sources, run_trainer, tiny_config
from transformers import AutoModelForCausalLM, AutoTokenizer

from trainer import config as configs
from trainer import data
from trainer import model as models
from trainer.data import IGNORE
from trainer.loss import loss_sum
from trainer.mixture import Mixture
from trainer.train import load_data, schedule

# Both checkpointing modes, each held to the same reference: full at 1 rank, selective at 2.
CHECKPOINTING = {1: {"checkpointing_mode": "full"}, 2: {"checkpointing_mode": "selective"}}
STEPS = 5  # the books source (~20 rows of 64 tokens) starts its second epoch after step 2
BATCH = 8


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Uninterrupted runs of STEPS steps at world size 1 and 2, same config."""
    tmp = tmp_path_factory.mktemp("trainer")
    sources = pretrain_sources(tmp)
    out = {}
    for world in (1, 2):
        path = tiny_config(
            tmp, f"straight{world}", sources, train={"max_steps": STEPS}, model=CHECKPOINTING[world]
        )
        run_trainer(path, nproc=world)
        out[world] = tmp / f"straight{world}"
    return tmp, sources, out


def train_reference(run, mean_of_means: bool = False) -> dict:
    """The same training in one process, without FSDP: plain model, plain AdamW, whole batch.

    With ``mean_of_means`` the loss is the mean of the 4 micro-batches' mean losses: the wrong
    normalisation, trained only to show that the comparison can tell the two apart.
    """
    cfg = configs.load(run / "config.yaml")
    tokenizer = AutoTokenizer.from_pretrained(run / "tokenizer")
    rows, held = load_data(cfg, tokenizer)
    mixture = Mixture(rows, {n: s.weight for n, s in cfg.data.sources.items()}, cfg.train.seed)
    model = models.build(cfg.model, tokenizer, torch.device("cpu"), cfg.train.seed)
    tc = cfg.train
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": tc.weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=tc.lr,
        betas=tc.betas,
        eps=tc.eps,
    )
    losses, norms, counts = [], [], []
    for step in range(STEPS):
        batch = mixture.batch(list(range(step * BATCH, (step + 1) * BATCH)))
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
        per_token = F.cross_entropy(
            logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE, reduction="none"
        ).view(BATCH, -1)
        supervised = batch["labels"] != IGNORE
        if mean_of_means:
            parts = [per_token[i : i + 2].sum() / supervised[i : i + 2].sum() for i in (0, 2, 4, 6)]
            loss = torch.stack(parts).mean()
        else:
            loss = per_token.sum() / supervised.sum()
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(params, tc.grad_clip).item())
        for group in optimizer.param_groups:
            group["lr"] = tc.lr * schedule(step, tc, STEPS)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        counts.append(int(supervised.sum()))
    # the final evaluation: the first eval.max_rows held-out book rows, loss per target
    assert len(held["books"]) >= cfg.eval.max_rows
    batch = data.collate([(held["books"], i) for i in range(cfg.eval.max_rows)])
    with torch.no_grad():
        eval_loss = loss_sum(model, batch).item() / int((batch["labels"] != IGNORE).sum())
    return {
        "losses": losses,
        "norms": norms,
        "model": model,
        "counts": counts,
        "tokenizer": tokenizer,
        "eval_loss": eval_loss,
    }


@pytest.fixture(scope="module")
def reference(runs):
    return train_reference(runs[2][2])


@pytest.mark.parametrize("world", [1, 2])
def test_fsdp_equals_the_one_process_reference(runs, reference, world):
    _, _, out = runs
    records = metrics(out[world])
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert [r["supervised_tokens"] for r in records] == reference["counts"]
    assert min(reference["counts"]) < BATCH * 64  # some rows are short (ends of sources)
    for record, loss, norm in zip(records, reference["losses"], reference["norms"], strict=True):
        assert record["loss"] == pytest.approx(loss, abs=1e-5)
        assert record["grad_norm"] == pytest.approx(norm, abs=1e-5)
    trained = load_file(out[world] / "hf" / "model.safetensors")
    expected = reference["model"].state_dict()
    assert set(trained) == set(expected)
    worst = max((trained[k] - expected[k]).abs().max().item() for k in trained)
    assert worst < 1e-5
    # the weights did move: a test of equal parameters must not pass by training nothing
    initial = models.build(
        configs.load(out[world] / "config.yaml").model,
        reference["tokenizer"],
        torch.device("cpu"),
        0,
    ).state_dict()
    assert max((trained[k] - initial[k]).abs().max().item() for k in trained) > 1e-3
    # the held-out evaluation: 7 rows in micro-batches of 2 (per rank), so with a filler row
    (evaluation,) = metrics(out[world], "eval_loss/books")
    assert evaluation["eval_loss/books"] == pytest.approx(reference["eval_loss"], abs=1e-5)


def test_bf16_mixed_precision_fsdp_stays_within_rounding_of_fp32(runs, reference):
    """The GPU path on CPU: 2-rank FSDP2 with bf16 parameters and compute and fp32 reduction
    (``MixedPrecisionPolicy``), the fused loss on the gathered bf16 head, against the fp32 run.
    A gradient scaled by the world size, or one that never reached a weight, is far outside."""
    tmp, sources, out = runs
    path = tiny_config(tmp, "bf16", sources, train={"max_steps": STEPS, "dtype": "bf16"})
    run_trainer(path, nproc=2)
    fp32, bf16 = metrics(out[1]), metrics(tmp / "bf16")
    for a, b in zip(fp32, bf16, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=2e-3)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=0.03)
    initial = models.build(
        configs.load(path).model, reference["tokenizer"], torch.device("cpu"), 0
    ).state_dict()
    want = load_file(out[1] / "hf" / "model.safetensors")
    got = load_file(tmp / "bf16" / "hf" / "model.safetensors")
    for name, weight in want.items():
        update, bf16_update = weight - initial[name], got[name] - initial[name]
        assert (bf16_update - update).norm() < 0.3 * update.norm(), name


def test_a_mean_of_micro_batch_means_would_be_caught(runs, reference):
    """Weighting micro-batches equally moves the weights well past the tolerance used above."""
    wrong = train_reference(runs[2][2], mean_of_means=True)["model"].state_dict()
    right = reference["model"].state_dict()
    assert max((wrong[k] - right[k]).abs().max().item() for k in right) > 1e-4


def test_export_loads_with_from_pretrained_and_gives_the_same_logits(runs, reference):
    _, _, out = runs
    loaded = AutoModelForCausalLM.from_pretrained(out[2] / "hf")
    tokenizer = AutoTokenizer.from_pretrained(out[2] / "hf")
    ids = tokenizer("The patient was given insulin for the glucose.", return_tensors="pt")
    with torch.no_grad():
        got = loaded(**ids).logits
        want = reference["model"](**ids).logits
    assert type(loaded).__name__ == "LlamaForCausalLM"
    assert got.shape == (1, ids["input_ids"].shape[1], len(tokenizer))
    assert (got - want).abs().max().item() < 1e-5


@pytest.mark.parametrize("world", [1, 2])
def test_resume_is_bitwise_exact_across_an_epoch_boundary(runs, world):
    tmp, sources, out = runs
    path = tiny_config(
        tmp,
        f"resume{world}",
        sources,
        train={"max_steps": STEPS},
        checkpoint={"every": 0, "keep": 1},
        model=CHECKPOINTING[world],
    )
    run_trainer(path, "train.run_steps=2", nproc=world)  # stops after step 2, as a job slot ends
    folder = tmp / f"resume{world}"
    checkpoints = folder / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-00000002"]
    # what a run killed while writing leaves: a temp folder and no finished marker
    (checkpoints / "step-00000003.tmp").mkdir()
    (checkpoints / "step-00000003.tmp" / "__0_0.distcp").write_bytes(b"torn")
    shutil.copytree(checkpoints / "step-00000002", checkpoints / "step-00000004")
    (checkpoints / "step-00000004" / "trainer.json").unlink()
    result = run_trainer(path, nproc=world)
    assert "resumed from" in result.stdout and "step-00000002" in result.stdout

    straight, resumed = metrics(out[world]), metrics(folder)
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    assert straight[1]["epoch"] < 1 < straight[-1]["epoch"]  # books' epoch 2 starts after step 2
    for a, b in zip(straight, resumed, strict=True):
        assert (a["loss"], a["grad_norm"], a["lr"]) == (b["loss"], b["grad_norm"], b["lr"])
    want = load_file(out[world] / "hf" / "model.safetensors")
    got = load_file(folder / "hf" / "model.safetensors")
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-00000005"]


def test_a_checkpoint_resumes_at_another_world_size(runs):
    """Saved by one process (plain tensors), resumed by two (FSDP shards): DCP reshards it."""
    tmp, sources, out = runs
    path = tiny_config(tmp, "elastic", sources, train={"max_steps": STEPS})
    run_trainer(path, "train.run_steps=2", nproc=1)
    run_trainer(path, nproc=2)
    straight, resumed = metrics(out[1]), metrics(tmp / "elastic")
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    for a, b in zip(straight, resumed, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5)
    want = load_file(out[1] / "hf" / "model.safetensors")
    got = load_file(tmp / "elastic" / "hf" / "model.safetensors")
    assert max((want[k] - got[k]).abs().max().item() for k in want) < 1e-5
