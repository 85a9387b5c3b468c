"""The model: any Hugging Face causal LM, built and sharded with FSDP2 (``fully_shard``).

``parallelize`` applies, per decoder layer and in this order: activation checkpointing
(non-reentrant, full or selective), ``torch.compile``, then ``fully_shard``; the root is sharded
last, so the embeddings and the LM head form one more unit. Gradients are reduced as a plain
SUM: the loop scales each loss by 1 / (supervised tokens in the global batch), so the summed
gradient is already the global mean, whatever the world size and accumulation (FSDP's default
AVG would divide by the world size once more, and gloo has no AVG at all).

With one process there is nothing to shard, and FSDP would only add copies (about 15 % of a
CPU step, measured), so the model stays a plain module, as in torchtitan; bf16 compute then
comes from autocast instead of FSDP's ``MixedPrecisionPolicy``.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    CheckpointImpl,
    checkpoint_wrapper,
)
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.utils.checkpoint import create_selective_checkpoint_contexts
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from trainer.config import Model


def attention(choice: str, device: torch.device) -> str:
    """The attention kernel: flash-attention (varlen) on CUDA when installed, else SDPA."""
    if choice != "auto":
        return choice
    flash = device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None
    return "flash_attention_2" if flash else "sdpa"


def build(cfg: Model, tokenizer, device: torch.device, seed: int) -> PreTrainedModel:
    """The model in fp32 on CPU: ``from_pretrained(cfg.path)`` or a random init of ``cfg.config``.

    Every rank builds the same weights (same seed) before sharding, so each keeps its shard.
    """
    attn = attention(cfg.attn, device)
    if cfg.path is not None:
        model = AutoModelForCausalLM.from_pretrained(
            cfg.path, dtype=torch.float32, attn_implementation=attn
        )
    else:
        fields = dict(cfg.config)
        fields.setdefault("vocab_size", len(tokenizer))
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            fields.setdefault(name, getattr(tokenizer, name))
        config = AutoConfig.for_model(**fields)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(
            config, dtype=torch.float32, attn_implementation=attn
        )
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's embedding only "
            f"{model.get_input_embeddings().num_embeddings}: use the model's own tokenizer "
            "(or, for a random init, a larger model.config.vocab_size)"
        )
    model.config.use_cache = False
    return model


aten = torch.ops.aten
#: What selective checkpointing keeps: the outputs of the matmuls and of attention, the
#: FLOPs of a layer; the cheap ops between them (norms, rotary, SiLU, products) are recomputed.
KEPT_BY_SELECTIVE = [
    aten.mm.default,
    aten.addmm.default,
    aten.bmm.default,
    aten._scaled_dot_product_flash_attention.default,
    aten._scaled_dot_product_efficient_attention.default,
    aten._scaled_dot_product_cudnn_attention.default,
    aten._scaled_dot_product_flash_attention_for_cpu.default,
]
# flash-attention's kernels, when the package is installed (its ops register on import)
if importlib.util.find_spec("flash_attn") is not None:
    try:
        import flash_attn  # noqa: F401

        KEPT_BY_SELECTIVE += [
            getattr(torch.ops.flash_attn, name).default
            for name in ("_flash_attn_forward", "_flash_attn_varlen_forward")
            if hasattr(torch.ops.flash_attn, name)
        ]
    except ImportError:  # a build that does not match this torch: flash-attention is not used
        pass


def _keep_matmuls():
    """A fresh pair of selective-checkpoint contexts (one per checkpointed forward)."""
    return create_selective_checkpoint_contexts(KEPT_BY_SELECTIVE)


def checkpointed(layer: nn.Module, mode: str) -> nn.Module:
    """``layer`` with non-reentrant activation checkpointing: ``full`` keeps only its input
    and recomputes its whole forward in the backward; ``selective`` also keeps what the
    matmuls and attention made (:data:`KEPT_BY_SELECTIVE`), so the backward recomputes only
    the cheap ops: less work per step than ``full``, for more memory. (torchtitan's op-level
    policy keeps every other matmul, for less memory; this keeps them all. With ``eager``
    attention the score matrices are matmul outputs too, and kept: use SDPA or flash.)"""
    extra = {"context_fn": _keep_matmuls} if mode == "selective" else {}
    return checkpoint_wrapper(layer, checkpoint_impl=CheckpointImpl.NO_REENTRANT, **extra)


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of decoder layers (``model.model.layers`` for LLaMA, ``transformer.h`` ...)."""
    count = model.config.num_hidden_layers
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise ValueError(f"no list of {count} decoder layers found in {type(model).__name__}")


def parallelize(
    model: PreTrainedModel,
    cfg: Model,
    mesh: DeviceMesh | None,
    param_dtype: torch.dtype | None,
) -> PreTrainedModel:
    """Checkpoint, compile and (with a mesh) shard each decoder layer, then shard the root."""
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    layers = decoder_layers(model)
    for i, layer in enumerate(layers):
        if cfg.activation_checkpointing and i % cfg.activation_checkpointing == 0:
            layer = checkpointed(layer, cfg.checkpointing_mode)
        if cfg.compile:
            layer = torch.compile(layer)
        if mesh is not None:
            # the last layer's weights are needed again at once by the backward: keep them
            last = i == len(layers) - 1
            fully_shard(layer, mesh=mesh, mp_policy=policy, reshard_after_forward=not last)
        layers[i] = layer
    if mesh is None:
        return model
    fully_shard(model, mesh=mesh, mp_policy=policy)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)
    return model


def flops_shape(model: PreTrainedModel) -> dict[str, int]:
    """What the FLOPs formula needs, read before sharding hides the full parameter sizes."""
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "embedding": model.get_input_embeddings().weight.numel(),
        "layers": model.config.num_hidden_layers,
        "hidden": model.config.hidden_size,
    }
