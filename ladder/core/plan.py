"""Planning: a ladder config becomes a table of rungs with every derived quantity."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Optional

from omegaconf import DictConfig

from ladder.core.configs import ConfigError, load_model
from ladder.core.recipes import Hyperparams, hyperparams
from ladder.core.sizes import CONVENTIONS, ModelShape, format_count, parse_count, shape_for_params

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rung:
    shape: ModelShape
    dataset: str
    multiplier: float
    params: int  # N in the ladder's convention
    tokens: int  # D = M·N
    hp: Hyperparams
    name: str = ""  # a run that is not itself a rung (a WSD-S or branch trunk) names itself
    checkpoint_steps: tuple = ()  # steps that must be checkpointed besides train.checkpoint_fractions

    @property
    def rung_id(self) -> str:
        return self.name or f"{self.shape.name}-{self.dataset}-M{self.multiplier:g}"

    @property
    def compute(self) -> float:
        return 6.0 * self.params * self.tokens  # Kaplan et al. 2020 C ≈ 6ND

    @property
    def compute_exact(self) -> float:
        return float(self.shape.flops_per_token()) * self.tokens

    @property
    def trained_tokens(self) -> int:
        """D rounded up to whole optimizer steps: what training actually consumes."""
        return self.hp.steps * self.hp.batch_size * self.shape.seq_len

    def as_dict(self) -> dict:
        return {
            "rung_id": self.rung_id, "size": self.shape.name, "dataset": self.dataset,
            "multiplier": self.multiplier, "params": self.params, "tokens": self.tokens,
            "compute": self.compute, "compute_exact": self.compute_exact,
            "total_params": self.shape.total_params, "non_embedding_params": self.shape.non_embedding_params,
            "shape": asdict(self.shape), "hp": asdict(self.hp),
            **({"name": self.name, "checkpoint_steps": list(self.checkpoint_steps)} if self.name else {}),
        }


@dataclass(frozen=True)
class Target:
    """A model to predict: N in the ladder's convention and D."""
    name: str
    params: float
    tokens: float
    flops_per_token: Optional[float] = None  # training FLOPs per token, where the model's is known

    @property
    def compute(self) -> float:
        return 6.0 * self.params * self.tokens


SCHEDULES = ("cosine", "wsds", "branch")


@dataclass(frozen=True)
class Trunk:
    """One training run of a size that yields a rung at every multiplier (`ladder.schedule`).

    wsds (WSD-S, Wen et al. 2024; OLMo-core's WSDSChinchillaRunConfigurator): the trunk trains to
    the largest D; over the last `decay_fraction` of each rung's period (its steps since the
    previous rung's end) the LR falls linearly to the recipe's final LR and then jumps back to the
    peak. The checkpoint at the bottom of rung k's decay (step `ends[k]`) is rung k's final one.
    branch (Hägele et al. 2024): the trunk stays at the peak LR up to the last fork; rung k is a
    branch that starts from the trunk's checkpoint at `forks[k]` and decays to `ends[k]`.
    Either way each trunk checkpoint belongs to the one rung whose segment holds it: (ends[k-1],
    ends[k]] under wsds, (forks[k-1], forks[k]] under branch.
    """
    rungs: tuple  # of Rung, by increasing D: same shape, dataset, batch and LR
    schedule: str
    forks: tuple  # first step of each rung's decay
    ends: tuple  # each rung's last step (its hp.steps)
    warmup_steps: int

    @property
    def name(self) -> str:
        return f"{self.rungs[0].shape.name}-{self.rungs[0].dataset}-{self.schedule}"

    @property
    def run(self) -> Rung:
        """What the trunk itself trains."""
        last = self.rungs[-1]
        decays = tuple(zip(self.forks, self.ends)) if self.schedule == "wsds" else ()
        steps = self.ends[-1] if self.schedule == "wsds" else self.forks[-1]
        hp = replace(last.hp, schedule="wsds", decays=decays, steps=steps, warmup_steps=self.warmup_steps)
        keep = self.ends[:-1] if self.schedule == "wsds" else self.forks
        return replace(last, hp=hp, tokens=steps * self.tokens_per_step, name=self.name, checkpoint_steps=keep)

    def branch(self, k: int) -> Rung:
        """Rung k's decay from the trunk (branch form), trained in the rung's own directory."""
        rung = self.rungs[k]
        hp = replace(rung.hp, schedule="wsds", decays=((self.forks[k], self.ends[k]),),
                     warmup_steps=self.warmup_steps)
        return replace(rung, hp=hp)

    @property
    def tokens_per_step(self) -> int:
        return self.rungs[0].hp.batch_size * self.rungs[0].shape.seq_len

    def segment_ends(self) -> tuple:
        return self.ends if self.schedule == "wsds" else self.forks

    def owner(self, step: int) -> int:
        """Index of the rung a trunk checkpoint at `step` belongs to."""
        return next(k for k, end in enumerate(self.segment_ends()) if step <= end)

    @property
    def branch_compute(self) -> float:
        """6ND of the branches' decays that the trunk does not train (branch form; 0 under wsds)."""
        extra = sum(e - f for f, e in zip(self.forks[:-1], self.ends[:-1])) if self.schedule == "branch" else 0
        return 6.0 * self.rungs[-1].params * extra * self.tokens_per_step

    @property
    def compute(self) -> float:
        """6ND of what the trunk and its branches train, D counted as the rungs count it."""
        return self.rungs[-1].compute + self.branch_compute


def make_trunk(rungs: list[Rung], schedule: str, decay_fraction: float) -> Trunk:
    """The trunk of one size's rungs; ConfigError where they cannot share one run."""
    rungs = sorted(rungs, key=lambda r: r.tokens)
    first, where = rungs[0], f"ladder.schedule={schedule} for {rungs[0].shape.name}"
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
    # The first rung's own warmup (the recipe's for its D), ending by its decay at the latest.
    warmup = min(first.hp.warmup_steps, forks[0])
    if schedule == "branch" and forks[-1] <= warmup:
        raise ConfigError(f"{where}: the trunk would end ({forks[-1]} steps) before its warmup does")
    return Trunk(tuple(rungs), schedule, forks, ends, warmup)


@dataclass(frozen=True)
class Plan:
    name: str
    rungs: list[Rung]
    targets: list[Target]
    schedule: str = "cosine"
    trunks: list[Trunk] = field(default_factory=list)  # one per size and dataset unless cosine

    @property
    def compute(self) -> float:
        """What training the ladder costs (6ND): the rungs', or under wsds/branch the trunks'."""
        return sum(t.compute for t in self.trunks) if self.trunks else self.cosine_compute

    @property
    def cosine_compute(self) -> float:
        """What it costs with every rung trained on its own."""
        return sum(r.compute for r in self.rungs)

    def trunk(self, name: str) -> Optional[Trunk]:
        """The trunk of that name (a job's rung id under wsds/branch), or None."""
        return next((t for t in self.trunks if t.name == name), None)


def resolve_size(size: str, ladder: DictConfig) -> ModelShape:
    """A size entry is a model config name or a parameter count ('50M')."""
    try:
        count = parse_count(size)
    except ValueError:
        return ModelShape(**load_model(size))
    return shape_for_params(count, arch=ladder.arch, vocab_size=ladder.vocab_size,
                            seq_len=ladder.seq_len, convention=ladder.convention)


def _check_multiplier(m: float, key: str = "ladder.multipliers") -> float:
    if m <= 0:
        raise ConfigError(f"{key}: token multiplier must be positive, got {m:g}")
    if not 1 <= m <= 1000:
        log.warning("token multiplier M=%g is outside 1–1000, far from any published ladder", m)
    return float(m)


def _rung(shape: ModelShape, dataset: str, multiplier: float, ladder: DictConfig) -> Rung:
    n = shape.params(ladder.convention)
    tokens = round(multiplier * n)
    try:
        hp = hyperparams(ladder.recipe, n, tokens, shape.seq_len)
    except ValueError as exc:
        raise ConfigError(f"ladder.recipe={ladder.recipe} for {shape.name} at M={multiplier:g}: {exc}") from exc
    return Rung(shape, dataset, multiplier, n, tokens, hp)


def _target(spec: DictConfig, ladder: DictConfig) -> Target:
    where = f"ladder.targets[{spec.name}]"
    if (spec.params is None) == (spec.size is None):
        raise ConfigError(f"{where}: give exactly one of params or size")
    if (spec.tokens is None) == (spec.multiplier is None):
        raise ConfigError(f"{where}: give exactly one of tokens or multiplier")
    try:
        params = spec.params if spec.params is not None else resolve_size(spec.size, ladder).params(ladder.convention)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    tokens = spec.tokens if spec.tokens is not None else spec.multiplier * params
    if params <= 0 or tokens <= 0:
        raise ConfigError(f"{where}: params and tokens must be positive")
    return Target(spec.name, float(params), float(tokens))


def build_plan(cfg: DictConfig) -> Plan:
    ladder = cfg.ladder
    if ladder.convention not in CONVENTIONS:
        raise ConfigError(f"ladder.convention: expected one of {CONVENTIONS}, got '{ladder.convention}'")
    if not ladder.sizes or not ladder.multipliers or not ladder.datasets:
        raise ConfigError("ladder.sizes, ladder.multipliers and ladder.datasets must each name at least one entry")
    try:
        shapes = [resolve_size(size, ladder) for size in ladder.sizes]
    except ValueError as exc:
        raise ConfigError(f"ladder.sizes: {exc}") from exc
    try:
        extra = [(resolve_size(r.size, ladder), r.multiplier) for r in ladder.extra_rungs]
    except ValueError as exc:
        raise ConfigError(f"ladder.extra_rungs: {exc}") from exc
    extra = [(shape, _check_multiplier(m, "ladder.extra_rungs")) for shape, m in extra]
    grid = [(shape, _check_multiplier(m)) for shape in shapes for m in ladder.multipliers]
    rungs = [_rung(shape, dataset, m, ladder) for dataset in ladder.datasets for shape, m in grid + extra]
    ids = [r.rung_id for r in rungs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"ladder lists the same rung twice: {', '.join(duplicates)}")
    targets = [_target(t, ladder) for t in ladder.targets]
    if ladder.schedule not in SCHEDULES:
        raise ConfigError(f"ladder.schedule: expected one of {SCHEDULES}, got '{ladder.schedule}'")
    if ladder.schedule == "cosine":
        return Plan(ladder.name, rungs, targets)
    train = cfg.get("train")
    if train is not None and train.get("schedule"):  # it would replace the trunks' decays with its own
        raise ConfigError(f"train.schedule={train.schedule} cannot be combined with ladder.schedule={ladder.schedule}")
    if not 0 < ladder.decay_fraction < 0.5:
        raise ConfigError(f"ladder.decay_fraction: must lie in (0, 0.5), got {ladder.decay_fraction:g}")
    groups: dict[tuple, list[Rung]] = {}
    for rung in rungs:
        groups.setdefault((rung.shape, rung.dataset), []).append(rung)
    trunks = [make_trunk(group, ladder.schedule, ladder.decay_fraction) for group in groups.values()]
    return Plan(ladder.name, rungs, targets, ladder.schedule, trunks)


def describe_target(target: Target) -> str:
    return f"{target.name} (N={format_count(target.params)}, D={format_count(target.tokens)})"
