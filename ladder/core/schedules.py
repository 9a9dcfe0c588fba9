"""A ladder's LR schedule (`ladder.lr_schedule`), one object per schedule: how its rungs become training runs
(jobs), the LR each run follows, where each run checkpoints and which rung owns each checkpoint, what a job
trains after its first run, and what it costs.

    cosine  every rung its own run, cosine to the recipe's final LR (both papers' ladders)
    wsd     every rung its own run, warmup-stable-decay: the peak LR, then a decay over the last
            `lr_decay_fraction` of its steps (Hägele et al. 2024)
    wsds    one run per size (a trunk) to its largest D, with a decay over the last `lr_decay_fraction` of
            every rung's period and a jump back to the peak after it (WSD-S, Wen et al. 2024; OLMo-core's
            WSDSChinchillaRunConfigurator): the bottom of each decay is that rung's final checkpoint
    branch  one constant-LR trunk per size to its last fork; each rung a branch that starts from the trunk's
            checkpoint at its fork and decays to its D in the rung's own directory (Hägele et al. 2024)

Every decay falls in the shape `lr_decay_shape` names (ladder.core.lr.DECAY_SHAPES: linear, 1-sqrt). Each run
carries its LR curve (ladder.core.lr). Orchestration and the training loop only read what a `Job` and a `Run`
say; a new schedule is one class with its `jobs` here and one line in SCHEDULES (docs/train.md shows one).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

from ladder.core.configs import ConfigError
from ladder.core.layout import rung_dir, trunk_dir
from ladder.core.lr import Cosine, Curve, WarmupStableDecay, curve_from_dict
from ladder.core.recipes import Hyperparams
from ladder.core.sizes import ModelShape


class RunMismatch(ConfigError):
    """A directory's checkpoints were trained by another run than the one asked to continue them."""


def describe(differences: dict) -> str:
    """{key: (before, now)} as "key: before → now, ..." for a one-line message."""
    def short(value) -> str:
        text = str(list(value) if isinstance(value, tuple) else value)
        return text if len(text) <= 80 else text[:77] + "..."
    return ", ".join(f"{key}: {short(old)} → {short(new)}" for key, (old, new) in differences.items())


def checkpoint_steps(steps: int, fractions) -> list[int]:
    """Steps at which a run of `steps` checkpoints for `fractions` in (0, 1] (train.config.check), the end always."""
    # The first step by which the fraction of the run is done (the epsilon absorbs 0.1·3 > 0.3 in floats).
    return sorted({max(1, math.ceil(f * steps - 1e-9)) for f in fractions} | {steps})


# The fields of Hyperparams that a run's curve covers, so Run.differences compares them through its description:
# a trunk continued to a longer D has more steps and decays, and the same LR on every step it shares.
_CURVE = ("steps", "warmup_steps")


@dataclass(frozen=True)
class Run:
    """One training run: a model of `shape` trained on `dataset` with the recipe `hp` (its steps) and the LR curve
    `curve` in its own directory, named `name` (a rung's id, or a trunk's)."""
    name: str
    shape: ModelShape
    dataset: str
    params: int  # N in the ladder's convention
    hp: Hyperparams
    curve: Curve  # the multiplier of hp.lr at each step; of the run's steps, warmup and final LR
    save_steps: tuple = ()  # steps it checkpoints besides train.checkpoint_fractions (a decay's bottom, a fork)
    keep_steps: tuple = ()  # checkpoints that keep their resume state: where other runs start (a trunk's forks)
    start_step: int = 0  # > 0: it starts from the checkpoint at this step, linked into its directory (a branch)
    # The rung whose directory it trains in, as Rung.as_dict() gives it (training writes it into config.yaml,
    # where evaluation reads it); None for a trunk, whose checkpoints are linked into several rungs.
    rung: Optional[dict] = field(default=None, compare=False)

    def __post_init__(self):
        if not self.curve.fits(self.hp):
            raise ValueError(f"{self.name}: LR curve {self.curve} is not one of its recipe {self.hp}")

    @property
    def tokens_per_step(self) -> int:
        return self.hp.batch_size * self.shape.seq_len

    @property
    def tokens(self) -> int:
        """What it trains on to its end, D rounded up to whole optimizer steps."""
        return self.hp.steps * self.tokens_per_step

    @property
    def compute(self) -> float:
        """6ND of the steps it trains itself (after its start)."""
        return 6.0 * self.params * (self.hp.steps - self.start_step) * self.tokens_per_step

    @property
    def compute_exact(self) -> float:
        return float(self.shape.flops_per_token()) * (self.hp.steps - self.start_step) * self.tokens_per_step

    def saved_steps(self, fractions) -> list[int]:
        """Every step it checkpoints at: train.checkpoint_fractions' and its own `save_steps`."""
        return sorted(set(checkpoint_steps(self.hp.steps, fractions)) | set(self.save_steps))

    def differences(self, other: "Run", upto: int) -> dict[str, tuple]:
        """{key: (this run's value, `other`'s)} of what makes `other` train steps 0 … upto−1 otherwise than this
        run: its model, data, recipe or LR curve (not where it checkpoints or keeps state). Empty where a
        directory this run trained to step `upto` can be continued, or reused, by `other`."""
        out = {k: (getattr(self, k), getattr(other, k)) for k in ("name", "shape", "dataset", "params", "start_step")
               if getattr(self, k) != getattr(other, k)}
        mine, theirs = asdict(self.hp), asdict(other.hp)
        out.update({f"hp.{k}": (mine[k], theirs[k]) for k in mine if k not in _CURVE and mine[k] != theirs[k]})
        curves = self.curve.describe(upto), other.curve.describe(upto)
        if curves[0] != curves[1]:
            out["lr_curve"] = curves
        return out

    def as_dict(self) -> dict:
        d = asdict(self)
        d["shape"], d["hp"], d["curve"] = asdict(self.shape), asdict(self.hp), self.curve.as_dict()
        d["save_steps"], d["keep_steps"] = list(self.save_steps), list(self.keep_steps)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Run":
        hp = dict(d["hp"])
        # Runs written before curves were objects kept theirs in the recipe: lr_schedule (cosine or wsd) and
        # decays (wsd's windows, linear).
        kind, decays = hp.pop("lr_schedule", "cosine"), hp.pop("decays", ())
        hp = Hyperparams(**hp)
        curve = curve_from_dict(d["curve"]) if "curve" in d else (
            Cosine.of(hp) if kind == "cosine" else WarmupStableDecay.of(hp, decays=decays))
        return cls(d["name"], ModelShape(**d["shape"]), d["dataset"], d["params"], hp, curve,
                   tuple(d["save_steps"]), tuple(d["keep_steps"]), d["start_step"], d.get("rung"))


@dataclass(frozen=True)
class Job:
    """A ladder's unit of work (one lock, one record, one Slurm job): `run`, trained in its directory, then
    `follow_ups`, each in its rung's directory, together yielding `rungs` (ladder.core.plan.Rung, by D)."""
    run: Run
    rungs: tuple
    segment_ends: tuple  # a checkpoint of `run` at step s belongs to rungs[k], the first k with s <= segment_ends[k]
    compute: float  # 6ND of the job, D counted as the rungs count it (so a cosine job costs its rung's C)
    linked: bool = False  # its run trains in trunks/ and its checkpoints are linked into their rungs' directories
    derives_records: bool = False  # the rungs' records follow the run's (wsds); else each run writes its own
    follow_ups: tuple = ()  # of Run: trained after `run`, each from a checkpoint of it (a branch's decay)

    @property
    def name(self) -> str:
        return self.run.name

    def directory(self, out_dir: str | Path) -> Path:
        return (trunk_dir if self.linked else rung_dir)(out_dir, self.name)

    def owner(self, step: int):
        """The rung a checkpoint of `run` at `step` belongs to."""
        return next(r for r, end in zip(self.rungs, self.segment_ends) if step <= end)

    def history(self, rung) -> list[tuple[Run, int, int]]:
        """(run, first, end): the runs that train `rung`'s checkpoints, each over its steps first … end−1."""
        shared = [(self.run, 0, self.segment_ends[self.rungs.index(rung)])] if self.linked else []
        return shared + [(r, r.start_step, r.hp.steps) for r in (self.run, *self.follow_ups) if r.name == rung.rung_id]

    @property
    def decays(self) -> tuple:
        """Every (first, end) step window in which one of its runs decays the LR from a stable peak."""
        return tuple(d for r in (self.run, *self.follow_ups) for d in r.curve.decays)

    @property
    def decay_shape(self) -> Optional[str]:
        """The shape its runs decay in (ladder.core.lr.DECAY_SHAPES); None where none decays from a stable LR."""
        return next((r.curve.shape for r in (self.run, *self.follow_ups) if r.curve.decays), None)


def _run_of(rung, hp: Hyperparams, curve: Curve) -> Run:
    """A rung trained alone, in its own directory."""
    return Run(rung.rung_id, rung.shape, rung.dataset, rung.params, hp, curve, rung=rung.as_dict())


def _alone(rung, run: Run) -> Job:
    """The job of a rung trained alone by `run`."""
    return Job(run, (rung,), (run.hp.steps,), rung.compute)


@dataclass(frozen=True)
class Periods:
    """The rungs of one size and dataset as consecutive periods of one run: rung k ends at step ends[k] and
    decays from forks[k], over the last `lr_decay_fraction` of its period (at least one step), in `decay_shape`."""
    rungs: tuple  # by increasing D
    forks: tuple
    ends: tuple
    warmup_steps: int  # the first rung's own (the recipe's for its D), ending by its decay at the latest
    decay_shape: str  # a key of ladder.core.lr.DECAY_SHAPES

    @classmethod
    def of(cls, rungs, schedule: str, decay_fraction: float, decay_shape: str) -> "Periods":
        """ConfigError where the rungs cannot share one run."""
        rungs = tuple(sorted(rungs, key=lambda r: r.tokens))
        first, where = rungs[0], f"ladder.lr_schedule={schedule} for {rungs[0].shape.name}"
        shared = {k: v for k, v in asdict(first.hp).items() if k not in ("steps", "warmup_steps")}
        for r in rungs[1:]:
            if {k: v for k, v in asdict(r.hp).items() if k in shared} != shared:
                raise ConfigError(f"{where}: the recipe gives M={r.multiplier:g} other hyperparameters than "
                                  f"M={first.multiplier:g} (batch, LR, ...), so they cannot share one run")
        ends = tuple(r.hp.steps for r in rungs)
        if len(set(ends)) < len(ends):
            raise ConfigError(f"{where}: multipliers {[r.multiplier for r in rungs]} round to the same number "
                              f"of steps; give multipliers further apart")
        starts = (0,) + ends[:-1]
        forks = tuple(e - max(1, round(decay_fraction * (e - s))) for s, e in zip(starts, ends))
        return cls(rungs, forks, ends, min(first.hp.warmup_steps, forks[0]), decay_shape)

    @property
    def tokens_per_step(self) -> int:
        return self.rungs[0].hp.batch_size * self.rungs[0].shape.seq_len

    def hp(self, rung, steps: int) -> Hyperparams:
        """`rung`'s recipe for a run of `steps` that warms up as the first period does."""
        return replace(rung.hp, steps=steps, warmup_steps=self.warmup_steps)

    def curve(self, hp: Hyperparams, decays: tuple) -> Curve:
        return WarmupStableDecay.of(hp, decays=decays, shape=self.decay_shape)

    def rung_run(self, rung, decays: tuple) -> Run:
        """`rung`'s own run to its D, decaying in the windows `decays`."""
        hp = self.hp(rung, rung.hp.steps)
        return _run_of(rung, hp, self.curve(hp, decays))

    def trunk(self, schedule: str, steps: int, decays: tuple, save_steps: tuple, keep_steps: tuple = ()) -> Run:
        last = self.rungs[-1]
        hp = self.hp(last, steps)
        return Run(f"{last.shape.name}-{last.dataset}-{schedule}", last.shape, last.dataset, last.params,
                   hp, self.curve(hp, decays), save_steps, keep_steps)


class Schedule:
    """How a ladder's rungs train (the module docstring); `jobs` turns the plan's rungs into its jobs."""
    name: str
    stable_then_decays: bool = True  # it reads ladder.lr_decay_fraction and ladder.lr_decay_shape

    def jobs(self, rungs: list, decay_fraction: float, decay_shape: str = "linear") -> list[Job]:
        raise NotImplementedError

    @staticmethod
    def by_size(rungs: list) -> list[list]:
        """The rungs grouped by model shape and dataset, in the plan's order."""
        groups: dict[tuple, list] = {}
        for rung in rungs:
            groups.setdefault((rung.shape, rung.dataset), []).append(rung)
        return list(groups.values())


class CosineSchedule(Schedule):
    name, stable_then_decays = "cosine", False

    def jobs(self, rungs, decay_fraction, decay_shape="linear"):
        return [_alone(r, _run_of(r, r.hp, Cosine.of(r.hp))) for r in rungs]


class WSD(Schedule):
    """Each rung alone, its one decay at the end: WSD-S of a single period, in the rung's own directory."""
    name = "wsd"

    def jobs(self, rungs, decay_fraction, decay_shape="linear"):
        out = []
        for rung in rungs:
            p = Periods.of([rung], self.name, decay_fraction, decay_shape)
            out.append(_alone(rung, p.rung_run(rung, ((p.forks[0], p.ends[0]),))))
        return out


class WSDS(Schedule):
    name = "wsds"

    def jobs(self, rungs, decay_fraction, decay_shape="linear"):
        out = []
        for group in self.by_size(rungs):
            p = Periods.of(group, self.name, decay_fraction, decay_shape)
            # Every bottom but the last, which ends the run anyway, is a rung's final checkpoint.
            run = p.trunk(self.name, p.ends[-1], tuple(zip(p.forks, p.ends)), save_steps=p.ends[:-1])
            out.append(Job(run, p.rungs, p.ends, p.rungs[-1].compute, linked=True, derives_records=True))
        return out


class Branch(Schedule):
    name = "branch"

    def jobs(self, rungs, decay_fraction, decay_shape="linear"):
        out = []
        for group in self.by_size(rungs):
            p = Periods.of(group, self.name, decay_fraction, decay_shape)
            if p.forks[-1] <= p.warmup_steps:
                raise ConfigError(f"ladder.lr_schedule=branch for {p.rungs[0].shape.name}: the trunk would end "
                                  f"({p.forks[-1]} steps) before its warmup does")
            trunk = p.trunk(self.name, p.forks[-1], (), save_steps=p.forks, keep_steps=p.forks)
            branches = tuple(replace(p.rung_run(r, ((f, e),)), start_step=f) for r, f, e in zip(p.rungs, p.forks, p.ends))
            # D as the rungs count it, plus the decays of every branch but the last, which the last rung's D holds.
            extra = sum(e - f for f, e in zip(p.forks[:-1], p.ends[:-1])) * p.tokens_per_step
            out.append(Job(trunk, p.rungs, p.forks, p.rungs[-1].compute + 6.0 * p.rungs[-1].params * extra,
                           linked=True, follow_ups=branches))
        return out


SCHEDULES: dict[str, Schedule] = {s.name: s for s in (CosineSchedule(), WSD(), WSDS(), Branch())}
