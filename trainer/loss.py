"""The loss: summed cross-entropy over the supervised tokens, with the LM head fused in.

A causal LM's last matmul makes logits of shape (tokens, vocabulary): 67 MB in fp32 for 2,048
tokens of an 8k vocabulary, 1 GB for one 2,048-token row of LLaMA-3's 128k. The plain loss
upcasts them, takes their log-softmax, and its backward makes as many again. The fused loss
(:func:`linear_cross_entropy_sum`) never holds more than a chunk of them: for each chunk of
tokens it computes the logits, the loss and, while they are at hand, the gradients of the
hidden states and of the head's weight (softmax minus the one-hot target); the backward only
scales those by the incoming gradient. The same matmuls, a fraction of the memory traffic:
on a CPU the loss and head went from 282 to 190 ms for 2,048 tokens x 8,192 words x 256 wide.
The idea is Liger Kernel's fused linear cross-entropy, in plain PyTorch.

>>> generator = torch.Generator().manual_seed(0)
>>> hidden, weight = torch.randn(6, 4, generator=generator), torch.randn(10, 4, generator=generator)
>>> labels = torch.tensor([1, 2, IGNORE, 3, 4, 5])
>>> fused = linear_cross_entropy_sum(hidden, weight, labels, chunk=4)
>>> plain = F.cross_entropy(hidden @ weight.T, labels, ignore_index=IGNORE, reduction="sum")
>>> torch.allclose(fused, plain)
True

A model's forward makes the logits itself; :func:`hidden_states_out` makes it hand over what
its LM head gets instead, for models whose logits are just that head's linear map (checked
once by :func:`head_is_linear`: a model that soft-caps its logits, Gemma 2, keeps the plain
loss; a constant scale, Cohere's or Granite's, commutes with the head and is kept).
"""

from __future__ import annotations

import contextlib
import functools

import torch
import torch.nn.functional as F
from torch import nn

from trainer.data import IGNORE


def cross_entropy_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of the supervised tokens, logits upcast to fp32 (the plain loss).

    With ``model.compile`` the run compiles this too: fused, the upcast and log-softmax over
    the vocabulary never materialise, which made bf16 CPU steps a fifth faster.
    """
    return F.cross_entropy(
        logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE, reduction="sum"
    )


class _LinearCrossEntropy(torch.autograd.Function):
    """sum(cross_entropy(hidden @ weight.T, targets)), gradients made in the forward."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, dtype: torch.dtype):
        h, w = hidden.to(dtype), weight.to(dtype)
        grad_hidden = torch.empty_like(h)
        # summed over chunks in fp32: a bf16 sum would round once per chunk, not once
        grad_weight = torch.zeros_like(w, dtype=torch.float32)
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        for start in range(0, h.shape[0], chunk):
            rows, target = h[start : start + chunk], targets[start : start + chunk]
            logits = (rows @ w.T).float()
            log_norm = torch.logsumexp(logits, dim=1)
            total += (log_norm - logits.gather(1, target[:, None]).squeeze(1)).sum()
            # d loss / d logits = softmax - one_hot(target), made in place
            probs = logits.sub_(log_norm[:, None]).exp_()
            probs[torch.arange(len(target), device=h.device), target] -= 1
            probs = probs.to(dtype)
            torch.mm(probs, w, out=grad_hidden[start : start + chunk])
            if dtype == torch.float32:
                grad_weight.addmm_(probs.T, rows)
            else:  # a bf16 matmul (fp32 inside), its result added in fp32
                grad_weight += probs.T @ rows
        ctx.save_for_backward(grad_hidden, grad_weight)
        ctx.dtypes = hidden.dtype, weight.dtype
        return total

    @staticmethod
    def backward(ctx, grad_total):
        grad_hidden, grad_weight = ctx.saved_tensors
        hidden_dtype, weight_dtype = ctx.dtypes
        return (
            (grad_hidden * grad_total).to(hidden_dtype),
            (grad_weight * grad_total).to(weight_dtype),
            None,
            None,
            None,
        )


def linear_cross_entropy_sum(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, chunk: int = 256
) -> torch.Tensor:
    """``cross_entropy_sum(hidden @ weight.T, labels)`` in chunks of ``chunk`` supervised
    tokens, the logits in fp32 and never all at once; the matmuls in autocast's dtype when it
    is on (else ``weight``'s). Only supervised tokens reach the head: prompt tokens of
    instruction data cost nothing."""
    supervised = labels.flatten() != IGNORE
    rows = hidden.flatten(0, -2)[supervised]
    targets = labels.flatten()[supervised]
    device = hidden.device.type
    autocast = torch.is_autocast_enabled(device)
    dtype = torch.get_autocast_dtype(device) if autocast else weight.dtype
    if not (torch.is_grad_enabled() and (rows.requires_grad or weight.requires_grad)):
        return _loss_only(rows.to(dtype), weight.to(dtype), targets, chunk)
    with torch.autocast(device, enabled=False):  # the dtypes are chosen here
        return _LinearCrossEntropy.apply(rows, weight, targets, chunk, dtype)


def _loss_only(rows, weight, targets, chunk: int) -> torch.Tensor:
    """The forward alone (evaluation): no gradients made."""
    total = torch.zeros((), dtype=torch.float32, device=rows.device)
    for start in range(0, rows.shape[0], chunk):
        logits = (rows[start : start + chunk] @ weight.T).float()
        total += F.cross_entropy(logits, targets[start : start + chunk], reduction="sum")
    return total


def _pass_through(hidden: torch.Tensor) -> torch.Tensor:
    # a copy, not the view the model hands its head: FSDP2 warns about a root returning views
    return hidden.clone()


@contextlib.contextmanager
def hidden_states_out(model: nn.Module):
    """Within, ``model(...).logits`` holds what the LM head gets (the final hidden states):
    the head's forward is the identity, its weight still the model's own (under FSDP2 the root
    keeps it gathered after the forward, for the loss to use)."""
    head = model.get_output_embeddings()
    patched = head.__dict__.get("forward")  # a hook library may have wrapped it already
    head.forward = _pass_through  # an instance attribute: only this module, only here
    try:
        yield head
    finally:
        if patched is None:
            del head.forward
        else:
            head.forward = patched


def head_is_linear(model: nn.Module) -> bool:
    """Whether the model's logits are its LM head's bias-free linear map of what the head
    gets: tried on a few tokens (a model that soft-caps its logits is not; one that scales
    them by a constant is, the factor applied to what the head gets)."""
    head = model.get_output_embeddings()
    if not isinstance(head, nn.Linear) or head.bias is not None:
        return False
    ids = torch.arange(8, device=head.weight.device)[None] % head.out_features
    training, attention = model.training, model.config._attn_implementation
    model.eval()  # no dropout: the two forwards must see the same network
    if attention not in ("eager", "sdpa"):  # flash-attention cannot run on the CPU, in fp32
        model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits
            with hidden_states_out(model):
                hidden = model(input_ids=ids, use_cache=False).logits
    finally:
        model.train(training)
        if model.config._attn_implementation != attention:
            model.set_attn_implementation(attention)
    if hidden.shape[-1] != head.in_features:
        return False
    mapped = F.linear(hidden, head.weight)
    # a model may cut its logits after the head (a padded vocabulary): not a plain map either
    return mapped.shape == logits.shape and torch.allclose(mapped, logits, rtol=1e-4, atol=1e-5)


def loss_sum(model, batch: dict[str, torch.Tensor], criterion=cross_entropy_sum) -> torch.Tensor:
    """Summed cross-entropy over the batch's supervised tokens (labels are already shifted),
    from the model's logits: the plain loss.

    ``use_cache=False`` matters: with a KV cache transformers ignores what the position ids say
    about packed documents and attends across them.
    """
    logits = model(
        input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
    ).logits
    return criterion(logits, batch["labels"])


def fused_loss_sum(model, batch: dict[str, torch.Tensor], chunk: int = 256) -> torch.Tensor:
    """:func:`loss_sum` with the LM head fused into the loss (:func:`linear_cross_entropy_sum`);
    for models :func:`head_is_linear` accepts."""
    with hidden_states_out(model) as head:
        hidden = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
    return linear_cross_entropy_sum(hidden, head.weight, batch["labels"], chunk)


def default_chunk(vocabulary: int, device: torch.device) -> int:
    """Tokens per chunk: on CUDA 2,048 (big enough for the matmuls to run at speed: 1 GB of
    fp32 logits for a 128k vocabulary); on CPU what keeps a chunk's logits near 8 MB, about
    the cache (256 tokens for an 8k vocabulary, where 1,024 was a fifth slower, measured).

    >>> default_chunk(8192, torch.device("cpu")), default_chunk(512, torch.device("cpu"))
    (256, 4096)
    """
    if device.type == "cuda":
        return 2048
    return max(128, min(4096, 2**21 // vocabulary))


def loss_for(model: nn.Module, chunk: int | None, compile: bool, device: torch.device):
    """The run's loss, ``(model, batch) -> summed loss``: fused with the head in chunks of
    ``chunk`` tokens (None: :func:`default_chunk`), or with ``chunk=0``, or for a model
    whose logits are more than a linear map, the plain one (compiled with ``compile``)."""
    if chunk != 0 and head_is_linear(model):
        if chunk is None:  # (the check accepts only a head with a weight)
            chunk = default_chunk(model.get_output_embeddings().weight.shape[0], device)
        return functools.partial(fused_loss_sum, chunk=chunk)
    criterion = torch.compile(cross_entropy_sum) if compile else cross_entropy_sum
    return functools.partial(loss_sum, criterion=criterion)
