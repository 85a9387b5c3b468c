"""The trainer's data path in one process: packing, SFT masking, the mixture, config, cache."""

from __future__ import annotations

import doctest
import importlib
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from trainer_helpers import documents, instructions, text, write_dataset
from trainer_helpers import tiny_model as tiny_lm

from trainer import __main__ as cli
from trainer import config as configs
from trainer.config import Source
from trainer.data import ALPACA, ALPACA_NO_INPUT, IGNORE, Rows, Tokens, load_tokens
from trainer.loss import loss_sum
from trainer.mixture import Mixture, micro_batch_rows
from trainer.tokenizer import train_bpe

SEQ = 64


@pytest.fixture(scope="module")
def tokenizer():
    rng = random.Random(0)
    return train_bpe([text(rng, 200) for _ in range(50)], vocab_size=384)


@pytest.fixture(scope="module")
def tiny_model(tokenizer):
    return tiny_lm(len(tokenizer)).eval()


def token_losses(model, input_ids, position_ids, labels) -> torch.Tensor:
    # use_cache=False: with a KV cache transformers does not read packing from position ids
    with torch.no_grad():
        logits = model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits
    return F.cross_entropy(
        logits.flatten(0, 1), labels.flatten(), reduction="none", ignore_index=IGNORE
    ).view(labels.shape)


def test_packed_rows_give_each_document_the_loss_it_has_alone(tmp_path, tokenizer, tiny_model):
    folder = write_dataset(tmp_path / "docs", documents(12, 5, "pmc", words=(5, 60)))
    tokens = load_tokens(
        Source(path=str(folder)), "train", tokenizer, "pretrain", "alpaca", tmp_path / "cache"
    )
    rows = Rows(tokens, SEQ, pad_id=tokenizer.pad_token_id)
    packed, alone, segments, split_docs = {}, {}, 0, set()
    for i in range(len(rows)):
        ids, labels, positions = (torch.from_numpy(a)[None] for a in rows.get(i))
        losses = token_losses(tiny_model, ids, positions, labels)[0]
        # a segment starts where the position id restarts; score it again on its own
        starts = [j for j in range(SEQ) if positions[0, j] == 0] + [SEQ]
        docs = np.searchsorted(rows.doc_starts, rows.starts[i] + np.array(starts[:-1]), "right")
        for a, b, doc in zip(starts, starts[1:], docs, strict=False):
            if (labels[0, a:b] == IGNORE).all():
                continue  # padding
            segments += 1
            split_docs.add(doc) if doc in packed else None
            own = token_losses(tiny_model, ids[:, a:b], positions[:, a:b], labels[:, a:b])[0]
            packed[doc] = packed.get(doc, 0.0) + losses[a:b].sum().item()
            alone[doc] = alone.get(doc, 0.0) + own.sum().item()
    assert len(packed) == 12 and segments > len(rows)  # rows do hold several documents
    assert split_docs  # and some documents run on into the next row
    for doc, loss in packed.items():
        assert loss == pytest.approx(alone[doc], abs=1e-4 * max(1.0, abs(alone[doc])))

    # the same rows with positions that never restart attend across documents: the losses move
    shared = next(i for i in range(len(rows) - 1) if (rows.get(i)[2] == 0).sum() > 1)
    ids, labels, positions = (torch.from_numpy(a)[None] for a in rows.get(shared))
    flat = token_losses(tiny_model, ids, torch.arange(SEQ)[None], labels)
    masked = token_losses(tiny_model, ids, positions, labels)
    assert (flat - masked).abs().max().item() > 1e-3


def test_sft_trains_only_responses_and_matches_a_padded_reference(tmp_path, tokenizer, tiny_model):
    rows_in = instructions(10, 7)
    folder = write_dataset(tmp_path / "instr", rows_in)
    tokens = load_tokens(
        Source(path=str(folder)), "train", tokenizer, "sft", "alpaca", tmp_path / "cache"
    )
    rows = Rows(tokens, 1024, pad_id=tokenizer.pad_token_id, whole_docs=True)
    assert rows.too_long == 0 and len(rows) < len(rows_in)  # whole examples share rows
    batch = {
        k: torch.from_numpy(np.stack([rows.get(i)[j] for i in range(len(rows))]))
        for j, k in enumerate(("input_ids", "labels", "position_ids"))
    }
    supervised = int((batch["labels"] != IGNORE).sum())
    responses = [tokenizer(r["output"], add_special_tokens=False)["input_ids"] for r in rows_in]
    assert supervised == sum(len(ids) + 1 for ids in responses)  # each response and its EOS
    with torch.no_grad():
        packed_loss = (loss_sum(tiny_model, batch) / supervised).item()

    # the padded reference: one example per row, HF's own shift and loss, prompt labels -100
    examples, labels = [], []
    for row, response in zip(rows_in, responses, strict=True):
        template = ALPACA if row["input"] else ALPACA_NO_INPUT
        prompt = tokenizer(template.format(**row), add_special_tokens=False)["input_ids"]
        ids = [tokenizer.bos_token_id, *prompt, *response, tokenizer.eos_token_id]
        examples.append(ids)
        labels.append([IGNORE] * (1 + len(prompt)) + [*response, tokenizer.eos_token_id])
    width = max(map(len, examples))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([e + [pad] * (width - len(e)) for e in examples])
    label_ids = torch.tensor([lab + [IGNORE] * (width - len(lab)) for lab in labels])
    mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in examples])
    with torch.no_grad():
        padded_loss = tiny_model(input_ids=input_ids, attention_mask=mask, labels=label_ids).loss
    assert packed_loss == pytest.approx(padded_loss.item(), abs=1e-5)


def test_chat_template_targets_are_exactly_the_assistant_replies(tmp_path, tokenizer):
    rows_in = instructions(4, 8)
    folder = write_dataset(tmp_path / "chat", rows_in)
    tokens = load_tokens(
        Source(path=str(folder)), "train", tokenizer, "sft", "chat", tmp_path / "cache"
    )
    rows = Rows(tokens, 512, pad_id=tokenizer.pad_token_id, whole_docs=True)
    targets = []
    for i in range(len(rows)):
        _, labels, _ = rows.get(i)
        targets += labels[labels != IGNORE].tolist()
    replies = "".join(f"{r['messages'][1]['content']}</s>\n" for r in rows_in)
    assert tokenizer.decode(targets) == replies


def test_sft_examples_longer_than_a_row_are_left_out():
    # documents of 5, 9 and 4 tokens (4, 8 and 3 inputs) in rows of 6: the 8-input one is dropped
    lengths = np.array([5, 9, 4])
    tokens = Tokens(np.arange(18) % 7 + 1, None, lengths)
    rows = Rows(tokens, 6, pad_id=0, whole_docs=True)
    assert rows.too_long == 1
    assert rows.starts.tolist() == [0, 12] and rows.lengths.tolist() == [4, 3]


def fake_source(n_docs: int, seed: int, seq_len: int = 32) -> Rows:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 90, n_docs)
    return Rows(Tokens(rng.integers(4, 300, int(lengths.sum())), None, lengths), seq_len, 0)


def test_mixture_holds_15_4_1_within_one_row_and_the_same_order_at_any_world_size():
    sources = {
        "books": fake_source(40, 1),
        "papers": fake_source(9, 2),
        "general": fake_source(3, 3),
    }
    weights = {"books": 15, "papers": 4, "general": 1}
    mixture = Mixture(sources, weights, seed=0)
    located = [mixture.locate(g) for g in range(2000)]
    counts = dict.fromkeys(weights, 0)
    tokens = dict.fromkeys(weights, 0)
    for g, (name, row) in enumerate(located, start=1):
        counts[name] += 1
        tokens[name] += int(sources[name].lengths[row])
        for other, weight in weights.items():  # at every prefix, within one row of the share
            assert abs(counts[other] - g * weight / 20) < 1
    assert counts == {"books": 1500, "papers": 400, "general": 100}
    # tokens: every row is full but a source's last one, so the token ratio is the row ratio
    # up to one short row per epoch
    for name, weight in weights.items():
        epochs = counts[name] / len(sources[name]) + 1
        assert abs(tokens[name] - 2000 * weight / 20 * 32) <= 32 * epochs
    # each epoch of a source visits each of its rows once, in a new order
    n = len(sources["books"])
    books = [row for name, row in located if name == "books"]
    assert sorted(books[:n]) == sorted(books[n : 2 * n]) == list(range(n))
    assert books[:n] != books[n : 2 * n]
    assert Mixture(sources, weights, seed=0).locate(1234) == located[1234]
    assert [Mixture(sources, weights, seed=1).locate(g) for g in range(100)] != located[:100]

    # ranks split each step's global batch; together they read the same rows in the same order
    def global_order(world: int, micro: int, steps: int = 25, batch: int = 8) -> list:
        accumulation = batch // (micro * world)
        order = []
        for step in range(steps):
            taken = [
                row
                for rank in range(world)
                for rows in micro_batch_rows(step * batch, micro, accumulation, world, rank)
                for row in rows
            ]
            order += [mixture.locate(g) for g in sorted(taken)]
            assert sorted(taken) == list(range(step * batch, (step + 1) * batch))
        return order

    assert global_order(1, 2) == global_order(2, 2) == global_order(2, 4) == located[:200]


def test_epochs_are_counted_on_the_chosen_source():
    sources = {"books": fake_source(40, 1), "papers": fake_source(9, 2)}
    mixture = Mixture(sources, {"books": 3, "papers": 1}, seed=0)
    n = len(sources["books"])
    end = mixture.rows_for_epochs("books", 5)
    assert mixture.rows_taken("books", end) == 5 * n
    assert mixture.rows_taken("books", end - 1) == 5 * n - 1
    assert mixture.epoch("books", end) == 5.0
    assert mixture.epoch("papers", end) > 5  # the smaller source repeats as often as needed


def test_tokenised_sources_are_cached(tmp_path, tokenizer):
    folder = write_dataset(tmp_path / "docs", documents(5, 1, "pmc"))
    source = Source(path=str(folder))
    first = load_tokens(source, "train", tokenizer, "pretrain", "alpaca", tmp_path / "cache")
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")}
    again = load_tokens(source, "train", tokenizer, "pretrain", "alpaca", tmp_path / "cache")
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*")} == stamp
    assert np.array_equal(first.tokens, again.tokens) and len(stamp) == 5  # 1 folder, 4 files
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    expected = [bos, *tokenizer(documents(5, 1, "pmc")[0]["text"])["input_ids"], eos]
    assert first.tokens[: len(expected)].tolist() == expected


def test_config_overrides_and_one_line_errors(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(
        "out_dir: runs/x\nmodel: {config: {model_type: llama}}\n"
        "data: {sources: {books: {path: b, weight: 15}, papers: {path: p, weight: 4}}}\n"
    )
    cfg = configs.load(
        path,
        [
            "data.sources.papers=null",
            "data.sources.general.path=g",
            "train.betas=[0.9, 0.95]",
            "data.seq_len=128",
        ],
    )
    assert list(cfg.data.sources) == ["books", "general"]
    assert cfg.data.epoch_source == "books" and cfg.train.betas == (0.9, 0.95)
    assert cfg.data.seq_len == 128 and cfg.train.lr == 2e-5
    assert cli.main(["--config", str(path), "train.learning_rate=1"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {path}: train.learning_rate: Extra inputs are not permitted (got 1)"
    )
    assert cli.main(["--config", str(path), "data.epoch_source=atlas"]) == 2
    assert "epoch_source 'atlas' is not one of ['books', 'papers']" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["config", "data", "loss", "mixture", "metrics", "tokenizer"])
def test_docstring_examples(module):
    """The examples in the trainer's docstrings run (pytest collects doctests in pmc_data only)."""
    result = doctest.testmod(importlib.import_module(f"trainer.{module}"))
    assert result.attempted > 0 and result.failed == 0
