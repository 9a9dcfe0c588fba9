"""Held-out language-modelling loss: mean token cross-entropy (nats/token) and bits per byte.

Sums are accumulated per sequence in float64 and divided once at the end, so the figures do not
depend on how sequences are batched (tests/eval/test_eval_lm_loss.py) or shared out over processes
(eval/sharding.py: each rank sums its sequences, the sums are all-reduced).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from eval.scoring import pad_right
from eval.sharding import Shards


CHUNK_TOKENS = 4096  # positions whose logits are upcast to fp32 at once: 4096 × 100k vocab × 4 B = 1.6 GB


# no_grad, not inference_mode: in-loop evaluation runs the training model, and under ZeRO-3 the
# parameters it gathers here would become inference tensors that training's backward cannot save.
@torch.no_grad()
def _batch_nll(model, batch: list[Sequence[int]], pad_id: int) -> float:
    """Summed NLL of the batch's predicted tokens. The logits stay in the forward's dtype (bf16 under autocast);
    only `CHUNK_TOKENS` positions at a time are upcast for the cross-entropy, so a batch of long sequences over
    a large vocabulary never holds its logits in fp32 too."""
    device = next(model.parameters()).device
    ids, mask = pad_right(batch, pad_id)
    ids, mask = ids.to(device), mask.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits
    total = torch.zeros((), dtype=torch.float64, device=device)
    for row in range(len(batch)):
        for s in range(0, ids.shape[1] - 1, CHUNK_TOKENS):
            e = min(s + CHUNK_TOKENS, ids.shape[1] - 1)
            nll = torch.nn.functional.cross_entropy(logits[row, s:e].float(), ids[row, s + 1:e + 1], reduction="none")
            total += (nll.double() * mask[row, s + 1:e + 1]).sum()
    return float(total)


def heldout_loss(model, sequences: Sequence[Sequence[int]], *, n_bytes: Optional[int] = None, batch_size: int = 8,
                 pad_id: int = 0, shards: Shards = Shards()) -> dict[str, float]:
    """Loss over every next-token prediction in `sequences` (each token array predicts its own tokens 1..n-1).

    `n_bytes` is the UTF-8 byte count of the text the predicted tokens encode; without it there is no bpb.
    With several `shards`, every rank passes the same `sequences` and scores its share of them.
    """
    max_len = model.config.max_position_embeddings
    count = 0
    for i, seq in enumerate(sequences):  # every rank checks every sequence, so all fail together or none
        if len(seq) < 2:
            raise ValueError(f"sequence {i} has {len(seq)} tokens; at least 2 are needed to predict one")
        if len(seq) > max_len:
            raise ValueError(f"sequence {i} has {len(seq)} tokens, more than the model's {max_len}")
        count += len(seq) - 1
    if count == 0:
        raise ValueError("no sequences to evaluate")
    mine = shards.take(sequences)
    total = shards.sum([shards.run(model, lambda m: sum(_batch_nll(m, mine[i:i + batch_size], pad_id)
                                                        for i in range(0, len(mine), batch_size)))])[0]
    out = {"loss": total / count, "tokens": float(count)}
    if n_bytes is not None:
        if n_bytes <= 0:
            raise ValueError(f"n_bytes must be positive, got {n_bytes}")
        out["bpb"] = total / math.log(2) / n_bytes
    return out
