"""The micro-batch when `train.micro_batch_size` is not set: as many sequences as the device's memory holds.

Memory = model state + activations. State per parameter: fp32 weights and gradients (8 bytes) and
AdamW's two fp32 moments (8 bytes, split over the processes under FSDP and ZeRO). Activations kept for
backward, per layer and token, in the compute dtype: the block's inputs, norms, q/k/v and the attention
output (about 12·d values) and the MLP's gate, up, activation and down input (4·mlp_hidden), as counted by
Korthikanti et al. 2022 for a block whose attention never stores the T×T scores (SDPA/flash). The loss
adds one logits chunk and the fp32 gradient of the LM head. A fifth of the memory is left for the
allocator's fragmentation, compile's workspace and the communication buffers.
"""
from __future__ import annotations

from ladder.core.sizes import ModelShape
from train.loss import CHUNK_ROWS

USABLE = 0.8  # of the device's memory


def activation_bytes_per_sequence(shape: ModelShape, precision: str) -> int:
    per_token_layer = 12 * shape.d_model + 4 * shape.mlp_hidden
    return shape.n_layers * shape.seq_len * per_token_layer * (2 if precision == "bf16" else 4)


def derive_micro_batch(shape: ModelShape, precision: str, memory_bytes: int, optimizer_shards: int = 1) -> int:
    """The largest power of two of sequences whose activations fit beside the state, at least 1."""
    state = shape.total_params * (8 + 8 / optimizer_shards)
    loss = CHUNK_ROWS * shape.vocab_size * 4 * 3 + shape.vocab_size * shape.d_model * 4  # logits chunk, head grad
    room = USABLE * memory_bytes - state - loss
    fits = int(room // activation_bytes_per_sequence(shape, precision))
    micro = 1
    while micro * 2 <= fits:
        micro *= 2
    return micro


def device_memory(device) -> int:
    """Bytes of memory one process may use: the GPU's total, or for a CPU the host's RAM over the node's
    processes (the total, not what is free now, so that every process derives the same micro-batch)."""
    import os

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    import psutil

    return psutil.virtual_memory().total // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
