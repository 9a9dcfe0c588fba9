"""Size rules: every training hyperparameter of a rung as a short function of its N.

Each recipe reproduces the ladder of one paper; `smoke` scales the OLMo rules down to CPU models. The LR curve a
run follows from them (cosine in both papers) is its schedule's choice (ladder.core.schedules, ladder.core.lr).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Hyperparams:
    batch_size: int  # sequences per optimizer step
    lr: float
    warmup_steps: int
    steps: int
    final_lr: float  # absolute LR at the end of the LR curve
    weight_decay: float
    z_loss: float
    grad_clip: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.95

    def __post_init__(self):
        if self.batch_size <= 0 or self.steps <= 0:
            raise ValueError(f"batch_size and steps must be positive, got {self.batch_size} and {self.steps}")
        if not 0 < self.lr < 1:
            raise ValueError(f"learning rate {self.lr:g} is outside (0, 1)")
        if not 0 <= self.final_lr <= self.lr:
            raise ValueError(f"final LR {self.final_lr:g} must lie in [0, peak LR {self.lr:g}]")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"warmup of {self.warmup_steps} steps does not fit in a run of {self.steps} steps")


def _steps(tokens: float, batch_size: int, seq_len: int) -> int:
    return max(1, math.ceil(tokens / (batch_size * seq_len)))


def olmo(n: float, tokens: float, seq_len: int) -> Hyperparams:
    """Bhagia et al. 2024 (OLMo ladder, `olmo/scaling/model_ladder.py`), sequences of 4096 (or any length)."""
    # DeepSeek LLM (2024) batch rule for 2048-token sequences, halved for 4096 (the same tokens a batch at any
    # length), in multiples of 64 sequences
    batch = max(64, 64 * round(160 * (n / 1.08e8) ** (2 / 3) * 2048 / seq_len / 64))
    lr = 0.0047 * (n / 1.08e8) ** (-1 / 3) / 4  # DeepSeek LLM LR rule, divided by 4 in the OLMo ladder
    steps = _steps(tokens, batch, seq_len)
    warmup = min(steps - 1, _steps(n, batch, seq_len))  # warm up over N tokens
    return Hyperparams(batch, lr, warmup, steps, final_lr=0.1 * lr, weight_decay=0.1, z_loss=1e-5)


def open_lm(n: float, tokens: float, seq_len: int) -> Hyperparams:
    """Gadre et al. 2024, the released `exp_data/models/*.json` hyperparameters (2048-token sequences)."""
    batch = 64 if n < 2e7 else 512 if n < 1e9 else 256  # per-size global batch of the released runs
    lr = 3e-3 if n < 5e9 else 3e-4  # 3e-3 throughout, 3e-4 for the 6.9B run
    warmup = 100 if n < 2e7 else 400 if n < 2e8 else 2000 if n < 1e9 else 5000  # per-size warmup steps
    steps = _steps(tokens, batch, seq_len)
    return Hyperparams(batch, lr, min(warmup, steps - 1), steps, final_lr=3e-5, weight_decay=0.033, z_loss=1e-4)


def smoke(n: float, tokens: float, seq_len: int) -> Hyperparams:
    """The OLMo rules scaled to CPU models: a fixed 16-sequence batch so small rungs still take many steps."""
    batch = 16
    lr = min(1e-2, 0.0047 * (n / 1.08e8) ** (-1 / 3) / 4)  # OLMo LR rule, capped where tiny models diverge
    steps = _steps(tokens, batch, seq_len)
    warmup = min(steps - 1, max(1, steps // 10))  # N tokens is most of a short run; warm up over 10 %
    return Hyperparams(batch, lr, warmup, steps, final_lr=0.1 * lr, weight_decay=0.1, z_loss=1e-5)


RECIPES = {"olmo": olmo, "open_lm": open_lm, "smoke": smoke}


def hyperparams(recipe: str, n: float, tokens: float, seq_len: int) -> Hyperparams:
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe '{recipe}', expected one of {sorted(RECIPES)}")
    return RECIPES[recipe](n, tokens, seq_len)
