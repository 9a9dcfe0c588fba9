"""Causal LMs built from a ladder shape: standard transformers models, no weights downloaded."""
from __future__ import annotations

from typing import Optional

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Olmo2Config, Olmo2ForCausalLM, PreTrainedModel

from ladder.core.sizes import ModelShape

# arch -> (config class, model class, RoPE base): OLMo 2 (OLMo et al. 2024) uses θ = 500k;
# open_lm, the Gadre et al. ladder's code base, keeps Llama's 10k.
ARCHITECTURES = {
    "olmo2": (Olmo2Config, Olmo2ForCausalLM, 500_000.0),
    "llama": (LlamaConfig, LlamaForCausalLM, 10_000.0),
}


def hf_config(shape: ModelShape, eos_token_id: Optional[int] = None, pad_token_id: Optional[int] = None):
    config_cls, _, rope_theta = ARCHITECTURES[shape.arch]
    return config_cls(
        vocab_size=shape.vocab_size, hidden_size=shape.d_model, intermediate_size=shape.mlp_hidden,
        num_hidden_layers=shape.n_layers, num_attention_heads=shape.n_heads, num_key_value_heads=shape.n_heads,
        max_position_embeddings=shape.seq_len, rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        tie_word_embeddings=False, attention_bias=False,
        bos_token_id=None, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
    )


def build_model(shape: ModelShape, seed: int = 0, **token_ids) -> PreTrainedModel:
    """A freshly initialised model whose parameter count is exactly `shape.total_params`."""
    _, model_cls, _ = ARCHITECTURES[shape.arch]
    torch.manual_seed(seed)
    return model_cls(hf_config(shape, **token_ids))
