"""The run's configuration: one YAML file plus dotted ``key=value`` overrides, validated.

Every key has a documented default (see trainer/README.md); unknown keys are errors, so a typo
never silently trains with a default. Overrides create keys inside mappings, which is how a
source is added or re-pointed from the command line:

>>> raw = {"out_dir": "runs/x", "model": {"path": "meta-llama/Llama-2-7b-hf"},
...        "data": {"sources": {"books": {"path": "build/books"}}}}
>>> cfg = resolve(raw, ["train.lr=1e-4", "data.sources.papers.path=build/papers"])
>>> cfg.train.lr, sorted(cfg.data.sources), cfg.data.sources["papers"].weight
(0.0001, ['books', 'papers'], 1)
>>> resolve(raw, ["train.lr=fast"])
Traceback (most recent call last):
trainer.config.ConfigError: train.lr: Input should be a valid number, unable to parse string \
as a number (got 'fast')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(Exception):
    """A bad config file or override: one line naming the key and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Strict):
    path: str  # a built dataset folder or a Hub id
    weight: int = Field(1, ge=1)  # rows of this source per cycle of sum(weights) rows
    split: str = "train"
    eval_split: str | None = None  # held-out split to evaluate on (else data.holdout)
    text_column: str = "text"  # pretraining only; SFT reads instruction/input/output/messages


class Data(_Strict):
    sources: dict[str, Source]
    epoch_source: str | None = None  # epochs count passes over this source; default: the first
    seq_len: int = Field(2048, ge=8)
    template: Literal["alpaca", "chat"] = "alpaca"  # SFT prompt format
    holdout: float = Field(0.0, ge=0.0, lt=1.0)  # fraction of each source's rows kept for eval
    cache_dir: str | None = None  # tokenised sources; default ~/.cache/pmc-trainer
    prefetch: int = Field(2, ge=1)  # steps of batches a background thread prepares ahead

    @model_validator(mode="after")
    def _epoch_source_exists(self) -> Data:
        if not self.sources:
            raise ValueError("name at least one source")
        if self.epoch_source is None:
            self.epoch_source = next(iter(self.sources))
        if self.epoch_source not in self.sources:
            raise ValueError(
                f"epoch_source {self.epoch_source!r} is not one of {list(self.sources)}"
            )
        return self


class Model(_Strict):
    path: str | None = None  # from_pretrained folder or Hub id
    config: dict[str, Any] | None = None  # random init: {model_type: llama, hidden_size: ...}
    attn: Literal["auto", "sdpa", "flash_attention_2", "flex_attention", "eager"] = "auto"
    activation_checkpointing: int = Field(1, ge=0)  # 0 off, 1 every layer, k every k-th layer
    # full: recompute each checkpointed layer's forward; selective: keep matmul and attention
    # outputs, recompute only the cheap ops (faster, more memory)
    checkpointing_mode: Literal["full", "selective"] = "full"
    compile: bool = False  # torch.compile each decoder layer, and the loss

    @model_validator(mode="after")
    def _one_source(self) -> Model:
        if (self.path is None) == (self.config is None):
            raise ValueError("set exactly one of model.path (pretrained) or model.config (random)")
        return self


class Train(_Strict):
    global_batch_rows: int = Field(8, ge=1)  # rows of seq_len tokens per optimizer step
    micro_batch_rows: int = Field(1, ge=1)  # rows per forward pass on one rank
    epochs: float = Field(1.0, gt=0)  # passes over data.epoch_source
    max_steps: int | None = None  # overrides epochs
    run_steps: int | None = None  # stop this invocation after so many steps (time-slotted jobs)
    lr: float = 2e-5
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0)  # cosine floor, as a fraction of lr
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = 0.0  # applied to matrices only, never to norms and biases
    betas: tuple[float, float] = (0.9, 0.999)  # torch / HF Trainer defaults
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 turns clipping off
    # tokens per chunk of the loss fused with the LM head (trainer/loss.py); None: 2048 on CUDA,
    # ~8 MB of logits on CPU; 0: the plain loss over the whole micro-batch's logits
    loss_chunk: int | None = Field(None, ge=0)
    dtype: Literal["auto", "bf16", "fp32"] = "auto"  # compute dtype; auto = bf16 on CUDA
    deterministic: bool = False  # deterministic kernels (bitwise resume); on in tiny_cpu
    seed: int = 0
    log_every: int = Field(1, ge=1)


class Eval(_Strict):
    every: int = Field(0, ge=0)  # steps between evaluations; 0 = only at the end
    max_rows: int = Field(256, ge=0)  # 0 turns evaluation off


class Checkpoint(_Strict):
    every: int = Field(500, ge=0)  # steps between checkpoints; 0 = only at the end
    keep: int = Field(2, ge=1)  # newest checkpoints kept
    resume: bool = True  # continue from the newest checkpoint in out_dir/checkpoints


class Export(_Strict):
    at_end: bool = True  # write out_dir/hf (safetensors, config, tokenizer) when training ends
    dtype: Literal["fp32", "bf16"] = "fp32"


class Config(_Strict):
    task: Literal["pretrain", "sft"] = "pretrain"
    out_dir: str
    device: Literal["auto", "cpu", "cuda"] = "auto"
    tokenizer: str | None = None  # path or Hub id; "train:N" trains an N-token BPE; None = model
    data: Data
    model: Model
    train: Train = Train()
    eval: Eval = Eval()
    checkpoint: Checkpoint = Checkpoint()
    export: Export = Export()


def parse_value(text: str) -> Any:
    """A command-line value as YAML would read it, with ``1e-4`` read as a number.

    >>> parse_value("1e-4"), parse_value("true"), parse_value("[1, 2]"), parse_value("a/b")
    (0.0001, True, [1, 2], 'a/b')
    """
    value = yaml.safe_load(text) if text else ""
    if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value


def apply_override(raw: dict, override: str) -> None:
    """Set ``a.b.c=value`` in a nested dict, creating mappings on the way."""
    key, sep, text = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"{override!r}: overrides look like key.sub=value")
    *parents, last = key.split(".")
    node = raw
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {part!r} is a value, not a mapping")
        node = child
    node[last] = parse_value(text)


def resolve(raw: dict, overrides: list[str] = ()) -> Config:
    """The validated config from a parsed YAML mapping and overrides."""
    raw = yaml.safe_load(yaml.safe_dump(raw))  # a deep copy
    for override in overrides:
        apply_override(raw, override)
    # a source set to null on the command line is dropped
    sources = (raw.get("data") or {}).get("sources") or {}
    for name in [name for name, spec in sources.items() if spec is None]:
        del sources[name]
    try:
        return Config.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        value = first.get("input")
        shown = first["type"] != "missing" and not isinstance(value, dict | list)
        got = f" (got {value!r})" if shown else ""
        raise ConfigError(f"{where}: {first['msg']}{got}") from None


def load(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read a YAML config file and apply ``key=value`` overrides."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None
    try:
        return resolve(raw, overrides)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def save(cfg: Config, path: Path) -> None:
    """Write the resolved config, so that a run folder says exactly what ran."""
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
