"""Size rules: every training hyperparameter of a rung as a short function of its N, and the LR curve they give.

Each recipe reproduces the ladder of one paper; `smoke` scales the OLMo rules down to CPU models. A recipe's
LR schedule is cosine; a ladder's `lr_schedule` (ladder.core.schedules) may turn it into warmup-stable-decay.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

LR_SCHEDULES = ("cosine", "wsd")


@dataclass(frozen=True)
class Hyperparams:
    batch_size: int  # sequences per optimizer step
    lr: float
    warmup_steps: int
    steps: int
    final_lr: float  # absolute LR at the end of the schedule
    weight_decay: float
    z_loss: float
    grad_clip: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.95
    lr_schedule: str = "cosine"  # cosine, or wsd: warmup, then the peak LR except inside `decays`
    # wsd only: (first step, end step) of each linear decay to final_lr, by 0-based optimizer step; the LR
    # is at its peak outside them (and rises back at once after each: WSD-S). Empty: constant after warmup.
    decays: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "decays", tuple((int(a), int(b)) for a, b in self.decays))  # JSON gives lists
        if self.batch_size <= 0 or self.steps <= 0:
            raise ValueError(f"batch_size and steps must be positive, got {self.batch_size} and {self.steps}")
        if not 0 < self.lr < 1:
            raise ValueError(f"learning rate {self.lr:g} is outside (0, 1)")
        if not 0 <= self.final_lr <= self.lr:
            raise ValueError(f"final LR {self.final_lr:g} must lie in [0, peak LR {self.lr:g}]")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"warmup of {self.warmup_steps} steps does not fit in a run of {self.steps} steps")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got '{self.lr_schedule}'")
        if self.decays and self.lr_schedule != "wsd":
            raise ValueError(f"decays {list(self.decays)} belong to the wsd schedule, not {self.lr_schedule}")
        ends = [0] + [b for _, b in self.decays]
        if any(not ends[i] <= a < b for i, (a, b) in enumerate(self.decays)) or ends[-1] > self.steps:
            raise ValueError(f"decays {list(self.decays)} must be increasing, non-overlapping windows "
                             f"within the run's {self.steps} steps")


def lr_factor(hp: Hyperparams) -> Callable[[int], float]:
    """Multiplier of the peak LR before optimizer step `step` (0-based), for torch's LambdaLR.

    Linear warmup reaching the peak on step `warmup_steps - 1` (so step 0 already trains), then
    cosine: a half cosine from the peak to `final_lr` at the last step;
    wsd (warmup-stable-decay, Hägele et al. 2024; with several decays WSD-S, Wen et al. 2024): the peak,
    except in each window (a, b) of `hp.decays`, which falls linearly from the peak at step a to
    `final_lr` at step b - 1; the next step is back at the peak. A decay's first step is still at the
    peak, so a branch forked there from a constant trunk continues the trunk's LR exactly.
    """
    floor, warmup, steps = hp.final_lr / hp.lr, hp.warmup_steps, hp.steps

    def cosine(step: int) -> float:
        progress = (step - warmup) / max(1, steps - 1 - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    def wsd(step: int) -> float:
        for start, end in hp.decays:
            if start <= step < end:
                return 1 - (1 - floor) * (step - start) / max(1, end - 1 - start)
        return 1.0

    after_warmup = {"cosine": cosine, "wsd": wsd}[hp.lr_schedule]
    return lambda step: (step + 1) / warmup if step < warmup else after_warmup(step)


def lr_curve(hp: Hyperparams, end: int) -> str:
    """What `lr_factor(hp)` gives steps 0 … end−1, as a line a person can read: two runs with equal curves (and
    equal `lr`, `final_lr`) train those steps at equal LRs, so a directory one trained to `end` can be
    continued by the other."""
    if hp.lr_schedule == "cosine":  # every step's LR depends on where the run ends
        return f"cosine to step {hp.steps}, warmup {hp.warmup_steps}"
    decays = " ".join(f"[{a}, {b})" for a, b in hp.decays if a < end)
    return f"wsd, warmup {hp.warmup_steps}, decays {decays or 'none'}"


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
