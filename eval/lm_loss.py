"""Held-out language-modelling loss: mean token cross-entropy (nats/token) and bits per byte.

Sums are accumulated per sequence in float64 and divided once at the end, so the figures do not
depend on how sequences are batched (tests/eval/test_eval_lm_loss.py).
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import torch

from eval.scoring import pad_right


@torch.inference_mode()
def _batch_nll(model, batch: list[Sequence[int]], pad_id: int) -> float:
    device = next(model.parameters()).device
    ids, mask = pad_right(batch, pad_id)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:].to(device), reduction="none")
    return float((nll.double() * mask[:, 1:].to(device)).sum())


def heldout_loss(model, sequences: Iterable[Sequence[int]], *, n_bytes: Optional[int] = None, batch_size: int = 8,
            pad_id: int = 0) -> dict[str, float]:
    """Loss over every next-token prediction in `sequences` (each token array predicts its own tokens 1..n-1).

    `n_bytes` is the UTF-8 byte count of the text the predicted tokens encode; without it there is no bpb.
    """
    max_len = model.config.max_position_embeddings
    total, count, batch = 0.0, 0, []
    for i, seq in enumerate(sequences):
        if len(seq) < 2:
            raise ValueError(f"sequence {i} has {len(seq)} tokens; at least 2 are needed to predict one")
        if len(seq) > max_len:
            raise ValueError(f"sequence {i} has {len(seq)} tokens, more than the model's {max_len}")
        batch.append(seq)
        count += len(seq) - 1
        if len(batch) == batch_size:
            total += _batch_nll(model, batch, pad_id)
            batch = []
    if batch:
        total += _batch_nll(model, batch, pad_id)
    if count == 0:
        raise ValueError("no sequences to evaluate")
    out = {"loss": total / count, "tokens": float(count)}
    if n_bytes is not None:
        if n_bytes <= 0:
            raise ValueError(f"n_bytes must be positive, got {n_bytes}")
        out["bpb"] = total / math.log(2) / n_bytes
    return out
