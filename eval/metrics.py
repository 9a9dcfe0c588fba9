"""RC metrics from per-choice log-likelihoods, defined as in the OLMo ladder (Bhagia et al. 2024).

Per example: the choices' summed continuation log-probabilities (nats), their token, character and
UTF-8 byte counts, and optionally their log-probabilities given only an "Answer:" context (PMI).
Character and byte counts exclude the continuation's leading space, as OLMo's `cont_str_len` and
`cont_byte_len` do. Ties go to the lowest index (the first choice), never to the gold by default.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

ACCURACIES = ("acc", "acc_raw", "acc_token", "acc_pmi")  # a guess scores the task's chance level on each
METRICS = (*ACCURACIES, "bpb", "gold_prob")


@dataclass
class ScoredExample:
    logprobs: Sequence[float]
    n_tokens: Sequence[int]
    n_chars: Sequence[int]
    n_bytes: Sequence[int]
    gold: int
    uncond: Optional[Sequence[float]] = None  # log p(choice | "Answer:"); None: PMI falls back to raw


def _hit(scores: np.ndarray, gold: int) -> float:
    return float(int(np.argmax(scores)) == gold)


def example_metrics(ex: ScoredExample) -> dict[str, float]:
    lp = np.asarray(ex.logprobs, dtype=np.float64)
    probs = np.exp(lp - lp.max())
    pmi = lp - np.asarray(ex.uncond, dtype=np.float64) if ex.uncond is not None else lp
    return {
        "acc": _hit(lp / np.maximum(np.asarray(ex.n_chars), 1), ex.gold),  # len_norm: the OLMo ladder's accuracy
        "acc_raw": _hit(lp, ex.gold),
        "acc_token": _hit(lp / np.asarray(ex.n_tokens), ex.gold),
        "acc_pmi": _hit(pmi, ex.gold),
        # task loss: the gold continuation's NLL per UTF-8 byte, in bits
        "bpb": -lp[ex.gold] / max(ex.n_bytes[ex.gold], 1) / math.log(2),
        "gold_prob": float(probs[ex.gold] / probs.sum()),
    }


def rc_metrics(examples: Sequence[ScoredExample]) -> dict[str, float]:
    """Every metric of METRICS, averaged over examples."""
    if not examples:
        raise ValueError("no examples to score")
    per = [example_metrics(ex) for ex in examples]
    return {name: float(np.mean([p[name] for p in per])) for name in METRICS}


def group_mean(metrics: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]) -> dict[str, float]:
    """Weighted mean of several metric sets (MMLU's subject groups), over the groups present."""
    present = [k for k in weights if k in metrics]
    if not present:
        raise ValueError(f"none of {sorted(weights)} was scored")
    total = sum(weights[k] for k in present)
    return {name: sum(weights[k] * metrics[k][name] for k in present) / total for name in METRICS}
