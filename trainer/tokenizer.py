"""The run's tokenizer: a pretrained one by path or Hub id, or a small BPE trained on the data.

``tokenizer: train:N`` trains an N-token byte-level BPE on the run's training text, for demos
and tests on machines with no Hub access; it is saved in ``out_dir/tokenizer`` and reused when
the run resumes, so a restart never re-tokenises with a different vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

SPECIALS = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}

# Used for `data.template: chat` when the tokenizer brings no chat template of its own. Each turn
# ends with EOS, so a model learns to stop after its answer.
DEFAULT_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_bpe(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with ``<s>``, ``</s>``, ``<pad>`` and ``<unk>``.

    >>> tok = train_bpe(["the patient was given insulin"] * 20, vocab_size=300)
    >>> tok.decode(tok("the patient")["input_ids"]), tok.eos_token, tok.bos_token_id
    ('the patient', '</s>', 1)
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE(unk_token=SPECIALS["unk_token"]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIALS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIALS)


def load_or_train(
    spec: str | None, model_path: str | None, out_dir: Path, texts: Iterable[str]
) -> PreTrainedTokenizerBase:
    """The tokenizer named by ``spec`` (``train:N``, a path or Hub id; None = the model's).

    A trained tokenizer already in ``out_dir/tokenizer`` is loaded instead of trained again.
    """
    saved = out_dir / "tokenizer"
    if spec and spec.startswith("train:"):
        if not (saved / "tokenizer.json").exists():
            tokenizer = train_bpe(texts, int(spec.removeprefix("train:")))
            tokenizer.save_pretrained(saved)
        tokenizer = AutoTokenizer.from_pretrained(saved)
    else:
        name = spec or model_path
        if name is None:
            raise ValueError("set tokenizer: a path, a Hub id or train:N (no model.path to use)")
        tokenizer = AutoTokenizer.from_pretrained(name)
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer {spec or model_path} has no EOS token; documents need one")
    return tokenizer


def chat_template(tokenizer: PreTrainedTokenizerBase) -> str:
    """The tokenizer's own chat template, or the default one."""
    return tokenizer.chat_template or DEFAULT_CHAT_TEMPLATE


def fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """What identifies a tokenizer's output (the tokenised-data cache is keyed on it)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return f"{body}|{tokenizer.bos_token_id}|{tokenizer.eos_token_id}|{chat_template(tokenizer)}"
