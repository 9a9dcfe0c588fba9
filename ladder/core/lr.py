"""The LR curve a training run follows: one object per kind of curve, owning the multiplier of the peak LR at every
optimizer step (`factor`, for torch's LambdaLR) and a line that describes it (`describe`, for a rung's identity
and `ladder plan`).

    cosine  linear warmup, then a half cosine from the peak to the floor at the last step
    wsd     linear warmup, then the peak except inside each decay window, which falls from the peak to the floor
            in a decay shape and is followed by the peak again (warmup-stable-decay, Hägele et al. 2024; with
            several windows WSD-S, Wen et al. 2024)

A ladder's schedule (ladder.core.schedules) chooses each run's curve. A new kind of curve is one class here and
one entry in CURVES; a new decay shape is one entry in DECAY_SHAPES.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

from ladder.core.recipes import Hyperparams

# How far from the floor a decay still is (1 at its first step, 0 at its last), by its progress p in [0, 1].
DECAY_SHAPES: dict[str, Callable[[float], float]] = {
    "linear": lambda p: 1 - p,
    # Hägele et al. 2024 ("Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations"): their
    # 1-sqrt cooldown reaches a lower loss than the linear one
    "1-sqrt": lambda p: 1 - math.sqrt(p),
}


@dataclass(frozen=True)
class Curve:
    """Warmup reaching the peak on step `warmup - 1` (so step 0 already trains); after it, the kind's own curve.
    `steps`, `warmup` and `floor` are the run's recipe's (ladder.core.recipes.Hyperparams: steps, warmup_steps,
    final_lr / lr)."""
    steps: int
    warmup: int
    floor: float  # the lowest factor: final LR / peak LR

    kind = ""  # its key in CURVES, written with it

    @classmethod
    def of(cls, hp: Hyperparams, **kind_fields) -> "Curve":
        """The curve of a run with the recipe `hp` (which checks its steps, warmup and LRs)."""
        return cls(hp.steps, hp.warmup_steps, hp.final_lr / hp.lr, **kind_fields)

    def fits(self, hp: Hyperparams) -> bool:
        """Whether it is a curve of a run with the recipe `hp`."""
        return (self.steps, self.warmup, self.floor) == (hp.steps, hp.warmup_steps, hp.final_lr / hp.lr)

    @property
    def decays(self) -> tuple:
        """The (first, end) step windows in which it decays from a stable peak; none where it never is stable."""
        return ()

    def factor(self, step: int) -> float:
        """Multiplier of the peak LR before optimizer step `step` (0-based)."""
        return (step + 1) / self.warmup if step < self.warmup else self.after_warmup(step)

    def after_warmup(self, step: int) -> float:
        raise NotImplementedError

    def describe(self, end: int) -> str:
        """What `factor` gives steps 0 … end−1, as a line a person can read: two runs with equal descriptions (and
        equal peak and final LRs) train those steps at equal LRs, so a directory one trained to `end` can be
        continued by the other."""
        raise NotImplementedError

    def as_dict(self) -> dict:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class Cosine(Curve):
    kind = "cosine"

    def after_warmup(self, step: int) -> float:
        progress = (step - self.warmup) / max(1, self.steps - 1 - self.warmup)
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    def describe(self, end: int) -> str:
        return f"cosine to step {self.steps}, warmup {self.warmup}"  # every step's LR depends on where it ends


@dataclass(frozen=True)
class WarmupStableDecay(Curve):
    """Each window (a, b) of `decays` falls in `shape` from the peak at step a to the floor at step b − 1; the next
    step is back at the peak. A decay's first step is still at the peak, so a branch forked there from a constant
    trunk continues the trunk's LR exactly. No windows: constant after warmup."""
    decays: tuple = ()
    shape: str = "linear"  # a key of DECAY_SHAPES

    kind = "wsd"

    def __post_init__(self):
        object.__setattr__(self, "decays", tuple((int(a), int(b)) for a, b in self.decays))  # JSON gives lists
        if self.shape not in DECAY_SHAPES:
            raise ValueError(f"decay shape must be one of {tuple(DECAY_SHAPES)}, got '{self.shape}'")
        ends = [0] + [b for _, b in self.decays]
        if any(not ends[i] <= a < b for i, (a, b) in enumerate(self.decays)) or ends[-1] > self.steps:
            raise ValueError(f"decays {list(self.decays)} must be increasing, non-overlapping windows "
                             f"within the run's {self.steps} steps")

    def after_warmup(self, step: int) -> float:
        for start, end in self.decays:
            if start <= step < end:
                progress = (step - start) / max(1, end - 1 - start)
                return self.floor + (1 - self.floor) * DECAY_SHAPES[self.shape](progress)
        return 1.0

    def describe(self, end: int) -> str:
        windows = " ".join(f"[{a}, {b})" for a, b in self.decays if a < end)
        # linear, the first shape, goes unnamed: identities written before there were shapes still match
        shape = "" if self.shape == "linear" or not windows else f"{self.shape} "
        return f"wsd, warmup {self.warmup}, {shape}decays {windows or 'none'}"


CURVES: dict[str, type[Curve]] = {c.kind: c for c in (Cosine, WarmupStableDecay)}


def curve_from_dict(d: dict) -> Curve:
    d = dict(d)
    return CURVES[d.pop("kind")](**d)
