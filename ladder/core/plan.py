"""Planning: a ladder config becomes a table of rungs with every derived quantity, and the jobs that train them."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from omegaconf import DictConfig, OmegaConf

from ladder.core.configs import ConfigError, load_model
from ladder.core.lr import DECAY_SHAPES
from ladder.core.recipes import Hyperparams, hyperparams
from ladder.core.schedules import SCHEDULES, Job
from ladder.core.sizes import CONVENTIONS, ModelShape, format_count, parse_count, shape_for_params
from ladder.core.targets import Target, TargetSpec, read_target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rung:
    shape: ModelShape
    dataset: str
    multiplier: float
    params: int  # N in the ladder's convention
    tokens: int  # D = M·N
    hp: Hyperparams  # its recipe's (its schedule's runs may change the steps and warmup, and choose the LR curve)

    @property
    def rung_id(self) -> str:
        return f"{self.shape.name}-{self.dataset}-M{self.multiplier:g}"

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
        }


@dataclass(frozen=True)
class Plan:
    name: str
    rungs: list[Rung]
    targets: list[Target]
    lr_schedule: str  # a key of ladder.core.schedules.SCHEDULES
    jobs: list[Job]  # what the schedule makes of the rungs: every rung belongs to exactly one

    @property
    def compute(self) -> float:
        """What training the ladder costs (6ND), its jobs'."""
        return sum(j.compute for j in self.jobs)

    @property
    def cosine_compute(self) -> float:
        """What it costs with every rung trained on its own."""
        return sum(r.compute for r in self.rungs)

    def job(self, name: str) -> Job:
        job = next((j for j in self.jobs if j.name == name), None)
        if job is None:
            raise ValueError(f"'{name}' is not a job of ladder '{self.name}' (its jobs: {', '.join(j.name for j in self.jobs)})")
        return job


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


def _target(i: int, spec, ladder: DictConfig) -> Target:
    """A ladder's target (ladder.core.targets), its sizes the ladder's: model configs or parameter counts."""
    label = spec if isinstance(spec, str) else spec.get("name") if isinstance(spec, dict) else None
    where = f"ladder.targets[{label or i}]"
    target = read_target(spec, where)
    if isinstance(target, TargetSpec):
        target = target.resolve(lambda size: resolve_size(size, ladder).params(ladder.convention), where)
    return target


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
    targets = [_target(i, t, ladder) for i, t in enumerate(OmegaConf.to_container(ladder.targets, resolve=True))]
    schedule = SCHEDULES.get(ladder.lr_schedule)
    if schedule is None:
        raise ConfigError(f"ladder.lr_schedule: expected one of {tuple(SCHEDULES)}, got '{ladder.lr_schedule}'")
    if schedule.stable_then_decays and not 0 < ladder.lr_decay_fraction < 0.5:
        raise ConfigError(f"ladder.lr_decay_fraction: must lie in (0, 0.5), got {ladder.lr_decay_fraction:g}")
    if ladder.lr_decay_shape not in DECAY_SHAPES:
        raise ConfigError(f"ladder.lr_decay_shape: expected one of {tuple(DECAY_SHAPES)}, got '{ladder.lr_decay_shape}'")
    jobs = schedule.jobs(rungs, ladder.lr_decay_fraction, ladder.lr_decay_shape)
    return Plan(ladder.name, rungs, targets, schedule.name, jobs)


def describe_target(target: Target) -> str:
    return f"{target.name} (N={format_count(target.params)}, D={format_count(target.tokens)})"
