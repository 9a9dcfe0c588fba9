"""Causal LMs built from a ladder shape: standard transformers models, no weights downloaded."""
from __future__ import annotations

import importlib.util
import logging
from typing import Optional

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Olmo2Config, Olmo2ForCausalLM, PreTrainedModel

from ladder.core.sizes import ModelShape

log = logging.getLogger(__name__)

# arch -> (config class, model class, RoPE base): OLMo 2 (OLMo et al. 2024) uses θ = 500k;
# open_lm, the Gadre et al. ladder's code base, keeps Llama's 10k.
ARCHITECTURES = {
    "olmo2": (Olmo2Config, Olmo2ForCausalLM, 500_000.0),
    "llama": (LlamaConfig, LlamaForCausalLM, 10_000.0),
}


def attention(requested: str, cuda: bool) -> str:
    """The attention implementation to build with (`requested` is one of train.config.ATTENTION, checked
    there): the one asked for, or sdpa (with one warning line) where flash-attn is not installed or there
    is no GPU. On GPUs in bf16 sdpa itself runs a flash kernel."""
    if requested == "flash_attention_2" and not (cuda and importlib.util.find_spec("flash_attn")):
        log.warning("train.attention=flash_attention_2: %s; using sdpa",
                    "flash-attn is not installed" if cuda else "it needs a CUDA device")
        return "sdpa"
    return requested


def hf_config(shape: ModelShape, eos_token_id: Optional[int] = None, pad_token_id: Optional[int] = None,
              attn_implementation: str = "sdpa"):
    config_cls, _, rope_theta = ARCHITECTURES[shape.arch]
    return config_cls(
        vocab_size=shape.vocab_size, hidden_size=shape.d_model, intermediate_size=shape.mlp_hidden,
        num_hidden_layers=shape.n_layers, num_attention_heads=shape.n_heads, num_key_value_heads=shape.n_heads,
        max_position_embeddings=shape.seq_len, rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        tie_word_embeddings=False, attention_bias=False,
        bos_token_id=None, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
        attn_implementation=attn_implementation,
    )


def build_model(shape: ModelShape, seed: int = 0, attn_implementation: str = "sdpa", **token_ids) -> PreTrainedModel:
    """A freshly initialised model whose parameter count is exactly `shape.total_params`."""
    _, model_cls, _ = ARCHITECTURES[shape.arch]
    torch.manual_seed(seed)
    return model_cls(hf_config(shape, attn_implementation=attn_implementation, **token_ids))


def decoder_blocks(model: PreTrainedModel) -> list[torch.nn.Module]:
    """The model's transformer blocks, in order: the unit of regional compilation and of FSDP sharding."""
    return list(model.model.layers)


# What the graphs Dynamo holds in this process were compiled for (compile_blocks' `key`).
_COMPILED_FOR: list = [None]


def compile_blocks(model: PreTrainedModel, key=None, **options) -> PreTrainedModel:
    """torch.compile each transformer block in place (regional compilation, as torchtitan and OLMo-core do).

    The blocks share one code path and one shape, so all of them run the same compiled graph (training runs
    without a KV cache, whose per-layer index would recompile each block). Outside the blocks, the causal
    mask is built eagerly, where transformers sees no tracing and leaves it out: SDPA then runs with
    is_causal=True and no mask, on the flash kernel on GPUs. (Compiling the whole model makes transformers
    <= 5.17 build an explicit (B, 1, T, T) mask inside the graph, which sends SDPA to the memory-efficient
    kernel computing the masked half too.) Parameter names, and so checkpoints, stay those of the plain model.

    `key` names what the graphs are for (the loop's: the shape and micro-batch). Where it differs from the last
    one compiled in this process, Dynamo's caches are reset first: every size runs the same block code, so a
    process that trains several sizes would otherwise recompile that code once per size, with the dimensions
    that changed marked dynamic after the first change (symbolic-shape graphs), and past Dynamo's recompile
    limit (8) run the blocks eagerly. One compile per shape per process; the same shape again compiles nothing.
    """
    if key is not None and key != _COMPILED_FOR[0]:
        torch.compiler.reset()
        _COMPILED_FOR[0] = key
    for block in decoder_blocks(model):
        block.compile(**options)
    return model
