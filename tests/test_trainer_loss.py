"""The loss fused with the LM head equals the plain loss: value and gradients, with ignored
labels, uneven chunks, bf16 autocast and no gradients; models that change their logits after
the head keep the plain loss. Selective activation checkpointing changes no gradient and
recomputes no matmul."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F
from conftest import require
from torch.utils._python_dispatch import TorchDispatchMode
from trainer_helpers import tiny_model

from trainer import model as models
from trainer.data import IGNORE
from trainer.loss import (
    cross_entropy_sum,
    fused_loss_sum,
    head_is_linear,
    linear_cross_entropy_sum,
    loss_for,
    loss_sum,
)

CPU = torch.device("cpu")


def inputs(tokens=13, width=16, vocab=50, seed=0):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(1, tokens, width, generator=generator, requires_grad=True)
    weight = torch.randn(vocab, width, generator=generator).mul_(0.3).requires_grad_()
    labels = torch.randint(0, vocab, (1, tokens), generator=generator)
    labels[0, [0, 4, 5]] = IGNORE  # prompt tokens, and a document's first
    return hidden, weight, labels


def plain(hidden, weight, labels):
    return cross_entropy_sum(hidden @ weight.T, labels)


def gradients(loss_fn, *args):
    hidden, weight, labels = args
    loss = loss_fn(hidden, weight, labels)
    grad_hidden, grad_weight = torch.autograd.grad(loss * 0.37, (hidden, weight))
    return loss, grad_hidden, grad_weight


@pytest.mark.parametrize("chunk", [1, 4, 10, 64])
def test_fused_loss_and_gradients_equal_the_plain_ones(chunk):
    args = inputs()
    want = gradients(plain, *args)
    got = gradients(lambda h, w, y: linear_cross_entropy_sum(h, w, y, chunk), *args)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert got[1][0, [0, 4, 5]].abs().max() == 0  # ignored tokens get no gradient


def test_nothing_supervised_gives_zero_loss_and_zero_gradients():
    hidden, weight, labels = inputs()
    labels[:] = IGNORE
    loss, grad_hidden, grad_weight = gradients(linear_cross_entropy_sum, hidden, weight, labels)
    assert loss.item() == 0 and grad_hidden.abs().max() == 0 and grad_weight.abs().max() == 0


def test_without_gradients_only_the_loss_is_computed():
    hidden, weight, labels = inputs()
    with torch.no_grad():
        loss = linear_cross_entropy_sum(hidden, weight, labels, chunk=3)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, plain(hidden, weight, labels).detach())


def test_under_bf16_autocast_the_matmuls_are_bf16_and_the_gradients_keep_their_dtypes():
    args = inputs(tokens=40, width=32, vocab=300)
    with torch.autocast("cpu", torch.bfloat16):
        want = gradients(plain, *args)
        got = gradients(lambda h, w, y: linear_cross_entropy_sum(h, w, y, 16), *args)
    assert got[0].dtype == torch.float32
    assert got[1].dtype == got[2].dtype == torch.float32  # fp32 inputs, fp32 gradients
    torch.testing.assert_close(got[0], want[0], rtol=2e-3, atol=0)  # both from bf16 logits
    for a, b in zip(got[1:], want[1:], strict=True):
        torch.testing.assert_close(a, b, rtol=0.05, atol=2e-3)
    exact = gradients(plain, *args)  # fp32: bf16 rounding is all that separates them
    torch.testing.assert_close(got[0], exact[0], rtol=1e-2, atol=0)


def test_bf16_weight_gradient_is_summed_over_chunks_in_fp32():
    # 64 chunks: summed in bf16 the head's gradient would round 64 times; summed in fp32 it
    # is as close to the exact gradient as autograd's (one bf16 matmul) is
    hidden, weight, labels = inputs(tokens=1024, width=64, vocab=512, seed=3)
    exact = gradients(plain, hidden, weight, labels)[2]
    with torch.autocast("cpu", torch.bfloat16):
        autograd = gradients(plain, hidden, weight, labels)[2]
        fused = gradients(
            lambda h, w, y: linear_cross_entropy_sum(h, w, y, 16), *[hidden, weight, labels]
        )[2]

    def error(grad):
        return ((grad - exact).norm() / exact.norm()).item()

    assert error(fused) < 1.25 * error(autograd)


def tiny(model_type="llama", attn="sdpa", **extra):
    return tiny_model(97, model_type, attn, width=32, head_dim=8, **extra)


def batch(vocab=97):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (2, 24), generator=generator)
    positions = torch.cat([torch.arange(10), torch.arange(14)]).repeat(2, 1)  # two documents
    labels = torch.roll(ids, -1, 1)
    labels[:, [9, 23]] = IGNORE  # no target across a document's end
    labels[1, :6] = IGNORE  # a prompt
    return {"input_ids": ids, "position_ids": positions, "labels": labels}


def test_a_model_trained_with_the_fused_loss_gets_the_plain_gradients():
    model, rows = tiny(), batch()
    assert head_is_linear(model)
    want = loss_sum(model, rows)
    want_grads = torch.autograd.grad(want, list(model.parameters()))
    got = fused_loss_sum(model, rows, chunk=7)
    got_grads = torch.autograd.grad(got, list(model.parameters()))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for (name, _), a, b in zip(model.named_parameters(), got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)
    # and the model is left as it was: its head makes logits again
    assert model(input_ids=rows["input_ids"]).logits.shape[-1] == 97


def test_a_model_that_changes_its_logits_after_the_head_keeps_the_plain_loss():
    # Gemma 2 soft-caps its logits: fusing the head alone would train another function
    model = tiny("gemma2", "eager", final_logit_softcapping=5.0)
    assert not head_is_linear(model)
    assert loss_for(model, None, False, CPU).func is loss_sum
    assert loss_for(tiny(), None, False, CPU).func is fused_loss_sum
    assert loss_for(tiny(), 0, False, CPU).func is loss_sum  # loss_chunk=0: the plain loss


@pytest.mark.parametrize(
    ("model_type", "scale"),
    [("cohere", {"logit_scale": 0.25}), ("granite", {"logits_scaling": 4.0})],
)
def test_a_constant_logit_scale_commutes_with_the_head_and_keeps_the_fused_loss(model_type, scale):
    # Cohere multiplies, Granite divides its logits: the head's input carries the factor
    model, rows = tiny(model_type, "eager", **scale), batch()
    assert head_is_linear(model)
    torch.testing.assert_close(fused_loss_sum(model, rows, 7), loss_sum(model, rows))


def test_a_model_that_cuts_its_logits_after_the_head_keeps_the_plain_loss():
    # a padded vocabulary cut back after the head: the check must say no, not fail
    model = tiny()
    model.register_forward_hook(lambda _, __, out: out.__setitem__("logits", out.logits[..., :90]))
    assert not head_is_linear(model)


def test_the_check_runs_whatever_attention_the_run_uses_and_restores_it():
    model = tiny("llama", "flex_attention")
    assert head_is_linear(model)
    assert model.config._attn_implementation == "flex_attention"


def test_compiled_cross_entropy_equals_eager():
    # model.compile also compiles the plain loss: it must give the loss eager PyTorch gives,
    # ignored labels included, for bf16 logits as autocast makes them.
    require(
        shutil.which("g++") is not None or shutil.which("c++") is not None,
        "a C++ compiler (torch.compile's CPU code generation)",
        "apt-get install g++",
    )
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 16, 50, generator=generator).to(torch.bfloat16)
    labels = torch.randint(0, 50, (2, 16), generator=generator)
    labels[0, :5] = IGNORE
    compiled = torch.compile(cross_entropy_sum)
    eager = cross_entropy_sum(logits, labels)
    assert eager.dtype == torch.float32
    torch.testing.assert_close(compiled(logits, labels), eager, rtol=1e-5, atol=1e-4)
    reference = F.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    torch.testing.assert_close(eager, reference)


class CountOps(TorchDispatchMode):
    """Counts the matmuls that run (forward, recomputation and backward)."""

    def __init__(self):
        super().__init__()
        self.matmuls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
            self.matmuls += 1
        return func(*args, **(kwargs or {}))


def checkpointed_gradients(mode: str | None):
    """Gradients of a tiny LLaMA with each layer checkpointed by ``mode`` (None: not at all),
    and how many matmuls the forward and backward ran."""
    model, rows = tiny(), batch()
    if mode:
        layers = models.decoder_layers(model)
        for i, layer in enumerate(layers):
            layers[i] = models.checkpointed(layer, mode)
    with CountOps() as counted:
        loss = loss_sum(model, rows)
        grads = torch.autograd.grad(loss, list(model.parameters()))
    return grads, counted.matmuls


def test_selective_checkpointing_recomputes_no_matmul_and_changes_no_gradient():
    plain_grads, plain_matmuls = checkpointed_gradients(None)
    full_grads, full_matmuls = checkpointed_gradients("full")
    selective_grads, selective_matmuls = checkpointed_gradients("selective")
    # a layer's forward has 7 matmuls (q, k, v, o, gate, up, down): full redoes the first 6
    # (the backward needs nothing the last one makes: recomputation stops before it)
    assert full_matmuls == plain_matmuls + 2 * 6
    assert selective_matmuls == plain_matmuls
    for a, b, c in zip(plain_grads, full_grads, selective_grads, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
        torch.testing.assert_close(c, a, rtol=0, atol=0)
