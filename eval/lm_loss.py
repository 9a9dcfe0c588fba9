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


# no_grad, not inference_mode: in-loop evaluation runs the training model, and under ZeRO-3 the
# parameters it gathers here would become inference tensors that training's backward cannot save.
@torch.no_grad()
def _batch_nll(model, batch: list[Sequence[int]], pad_id: int) -> float:
    device = next(model.parameters()).device
    ids, mask = pad_right(batch, pad_id)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:].to(device), reduction="none")
    return float((nll.double() * mask[:, 1:].to(device)).sum())


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
