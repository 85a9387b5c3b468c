"""Sources to training rows: load a dataset, tokenise it once (cached), pack it into windows.

A tokenised source stores each document (or instruction example) as ``[BOS, tokens..., EOS]``
back to back, with a per-token flag saying whether the token is a training target (SFT masks
the prompt). Its *input stream* is every token but each document's last; the target of an input
is the next token of the same document, so no document ever predicts the next one.

``pack`` cuts the input stream into rows of ``seq_len`` inputs. Pretraining cuts at fixed
strides (documents run on into the next row); SFT keeps whole examples (an example longer than
a row is left out). A row's position ids restart at each document and at the row's start, and
that is all the model needs to keep attention within documents: transformers turns restarting
position ids into a block-diagonal causal mask (SDPA) or variable-length spans (flash-attention).

>>> rows = Rows(Tokens(np.array([1, 5, 6, 2, 1, 7, 2]), None, np.array([4, 3])), 4, pad_id=0)
>>> len(rows), rows.get(0)
(2, (array([1, 5, 6, 1]), array([5, 6, 2, 7]), array([0, 1, 2, 0])))
>>> rows.get(1)  # the tail is padding: id 0, no target, its own segment
(array([7, 0, 0, 0]), array([   2, -100, -100, -100]), array([0, 0, 1, 2]))
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainer.config import Source
from trainer.tokenizer import chat_template, fingerprint

IGNORE = -100
CACHE_VERSION = "1"

ALPACA = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)


@dataclass
class Tokens:
    """One tokenised source: documents as [BOS, ..., EOS] back to back."""

    tokens: np.ndarray  # uint16 or int32, memory-mapped when read from the cache
    targets: np.ndarray | None  # uint8 per token: 1 if the token is a target; None = all are
    doc_lengths: np.ndarray  # int64 tokens per document, BOS and EOS included


class Rows:
    """A tokenised source packed into rows of ``seq_len`` input tokens."""

    def __init__(self, tokens: Tokens, seq_len: int, pad_id: int, whole_docs: bool = False) -> None:
        self.data, self.seq_len, self.pad_id = tokens, seq_len, pad_id
        inputs = tokens.doc_lengths - 1  # a document's last token is only ever a target
        self.doc_starts = np.concatenate([[0], np.cumsum(inputs)[:-1]]).astype(np.int64)
        total = int(inputs.sum())
        self.too_long = int((inputs > seq_len).sum()) if whole_docs else 0
        if whole_docs:
            self.starts, self.lengths = _pack_whole(self.doc_starts, inputs, seq_len)
        else:
            self.starts = np.arange(0, total, seq_len, dtype=np.int64)
            self.lengths = np.minimum(seq_len, total - self.starts)

    def __len__(self) -> int:
        return len(self.starts)

    def select(self, index: np.ndarray) -> Rows:
        """The rows at ``index`` (a held-out split, say), sharing the token data."""
        rows = object.__new__(Rows)
        rows.__dict__.update(self.__dict__)
        rows.starts, rows.lengths = self.starts[index], self.lengths[index]
        return rows

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row ``i`` as (input ids, labels, position ids), each ``seq_len`` long."""
        start, n = int(self.starts[i]), int(self.lengths[i])
        p = np.arange(start, start + n, dtype=np.int64)
        doc = np.searchsorted(self.doc_starts, p, side="right") - 1
        index = p + doc  # the input stream skips one token (the EOS) per earlier document
        low = int(index[0])
        chunk = np.asarray(self.data.tokens[low : int(index[-1]) + 2], dtype=np.int64)
        inputs, labels = chunk[index - low], chunk[index + 1 - low]
        if self.data.targets is not None:
            keep = np.asarray(self.data.targets[low : int(index[-1]) + 2])[index + 1 - low]
            labels = np.where(keep.astype(bool), labels, IGNORE)
        positions = p - np.maximum(self.doc_starts[doc], start)
        pad = self.seq_len - n
        if pad:
            inputs = np.concatenate([inputs, np.full(pad, self.pad_id)])
            labels = np.concatenate([labels, np.full(pad, IGNORE)])
            positions = np.concatenate([positions, np.arange(pad)])
        return inputs, labels, positions


def collate(rows: list[tuple[Rows, int]]) -> dict[str, torch.Tensor]:
    """Rows as a batch: input_ids, labels, position_ids (rows x seq_len) and lengths.

    ``lengths`` counts each row's tokens that are not padding.
    """
    parts = [source.get(i) for source, i in rows]
    batch = {
        key: torch.from_numpy(np.stack([part[j] for part in parts]))
        for j, key in enumerate(("input_ids", "labels", "position_ids"))
    }
    batch["lengths"] = torch.tensor([int(source.lengths[i]) for source, i in rows])
    return batch


def _pack_whole(
    doc_starts: np.ndarray, inputs: np.ndarray, seq_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy in-order packing of whole documents; one longer than a row is left out.

    (Truncating would cut off the response, the only part of an SFT example that is trained.)
    """
    starts, lengths = [], []
    row_start, row_len = 0, 0
    for start, n in zip(doc_starts.tolist(), inputs.tolist(), strict=True):
        if row_len and (row_len + n > seq_len or n > seq_len):
            starts.append(row_start)
            lengths.append(row_len)
            row_len = 0
        if n > seq_len:
            continue
        if not row_len:
            row_start = start
        row_len += n
    if row_len:
        starts.append(row_start)
        lengths.append(row_len)
    return np.array(starts, dtype=np.int64), np.array(lengths, dtype=np.int64)


def load_split(path: str, split: str):
    """A split of a built dataset folder (``DIR/data/<split>-*.parquet``) or of a Hub dataset."""
    from datasets import load_dataset

    folder = Path(path)
    if (folder / "data").is_dir():
        files = sorted(str(f) for f in (folder / "data").glob(f"{split}-*.parquet"))
        if not files:
            found = sorted({f.name.split("-")[0] for f in (folder / "data").glob("*.parquet")})
            raise FileNotFoundError(f"{path}: no {split!r} split (it has {found})")
        return load_dataset("parquet", data_files={split: files}, split=split)
    if folder.exists():
        return load_dataset(str(folder), split=split)
    return load_dataset(path, split=split)


def segments(row: dict, task: str, template: str, text_column: str, tokenizer) -> list:
    """A record as (text, is_target) pieces: the whole text, or prompt and response.

    >>> segments({"instruction": "Define anaemia.", "input": "", "output": "Low haemoglobin."},
    ...          "sft", "alpaca", "text", None)[1]
    ('Low haemoglobin.', True)
    """
    if task == "pretrain":
        return [(row[text_column] or "", True)]
    if template == "alpaca":
        prompt = ALPACA if (row.get("input") or "").strip() else ALPACA_NO_INPUT
        return [(prompt.format(**row), False), (row["output"], True)]
    messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    pieces, done = [], ""
    for i, message in enumerate(messages):
        if message["role"] == "assistant":  # the reply's header is prompt, the reply a target
            head = _render(tokenizer, messages[:i], generation=True)
            pieces.append((_after(done, head), False))
            done = head
        full = _render(tokenizer, messages[: i + 1], generation=False)
        pieces.append((_after(done, full), message["role"] == "assistant"))
        done = full
    if tokenizer.bos_token and pieces and pieces[0][0].startswith(tokenizer.bos_token):
        pieces[0] = (pieces[0][0][len(tokenizer.bos_token) :], False)  # BOS is added once, below
    return [piece for piece in pieces if piece[0]]


def _render(tokenizer, messages: list[dict], generation: bool) -> str:
    return tokenizer.apply_chat_template(
        messages,
        chat_template=chat_template(tokenizer),
        tokenize=False,
        add_generation_prompt=generation,
    )


def _after(prefix: str, text: str) -> str:
    if not text.startswith(prefix):
        raise ValueError("the chat template does not render conversations incrementally")
    return text[len(prefix) :]


def tokenize(dataset, tokenizer, task: str, template: str, text_column: str, folder: Path) -> None:
    """Tokenise every record into ``folder`` (tokens.bin, targets.bin, doc_lengths.npy).

    Batches go to the Rust tokenizer, which encodes them on all cores; memory stays bounded
    by the batch size, whatever the corpus size.
    """
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max else np.int32
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    eos, lengths = tokenizer.eos_token_id, []
    with open(folder / "tokens.bin", "wb") as tokens, open(folder / "targets.bin", "wb") as flags:
        for batch in dataset.iter(batch_size=1024):
            columns = list(batch)
            records = [
                dict(zip(columns, v, strict=True)) for v in zip(*batch.values(), strict=True)
            ]
            pieces = [segments(r, task, template, text_column, tokenizer) for r in records]
            texts = [text for record in pieces for text, _ in record]
            encoded = iter(tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else [])
            for record in pieces:
                ids, targets = [bos], [0]
                for _, is_target in record:
                    piece = next(encoded)
                    ids += piece
                    targets += [is_target] * len(piece)
                if template != "chat" or task == "pretrain":  # chat templates end turns
                    ids.append(eos)
                    targets.append(record[-1][1] if record else 0)
                if len(ids) <= 2:  # an empty document teaches nothing
                    continue
                tokens.write(np.asarray(ids, dtype=dtype).tobytes())
                if task == "sft":  # in pretraining every target is trained: no flags needed
                    flags.write(np.asarray(targets, dtype=np.uint8).tobytes())
                lengths.append(len(ids))
    np.save(folder / "doc_lengths.npy", np.asarray(lengths, dtype=np.int64))
    (folder / "meta.json").write_text(json.dumps({"dtype": np.dtype(dtype).name}))


def load_tokens(
    source: Source, split: str, tokenizer, task: str, template: str, cache_dir: Path
) -> Tokens:
    """A source's split tokenised, from the cache when the same data and tokenizer were seen."""
    dataset = load_split(source.path, split)
    key = hashlib.sha256(
        "|".join(
            [
                CACHE_VERSION,
                dataset._fingerprint,
                split,
                task,
                template,
                source.text_column,
                fingerprint(tokenizer),
            ]
        ).encode()
    ).hexdigest()[:24]
    folder = cache_dir / key
    if not (folder / "meta.json").exists():
        partial = cache_dir / f"{key}.tmp{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        tokenize(dataset, tokenizer, task, template, source.text_column, partial)
        try:
            partial.rename(folder)  # atomic: a reader never sees a half-written cache
        except OSError:  # another process finished first
            shutil.rmtree(partial, ignore_errors=True)
    dtype = json.loads((folder / "meta.json").read_text())["dtype"]
    lengths = np.load(folder / "doc_lengths.npy")
    if not len(lengths):
        raise ValueError(f"{source.path} split {split!r}: no non-empty records to train on")
    tokens = np.memmap(folder / "tokens.bin", dtype=dtype, mode="r")
    targets = None
    if task == "sft":
        targets = np.memmap(folder / "targets.bin", dtype=np.uint8, mode="r")
    return Tokens(tokens, targets, lengths)


def iter_texts(source: Source, task: str, limit: int = 20_000):
    """Raw text of a source's first records (what a tokenizer is trained on)."""
    dataset = load_split(source.path, source.split)
    for row in dataset.select(range(min(limit, len(dataset)))):
        if task == "pretrain":
            yield row[source.text_column] or ""
        else:
            yield "\n".join(str(row.get(k) or "") for k in ("instruction", "input", "output"))
