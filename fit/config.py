"""Schema of the `fit/` config group (docs/fit.md)."""
from dataclasses import dataclass, field, fields
from typing import Any, List, Optional

from omegaconf import DictConfig, OmegaConf

from fit.errors import FitInputError


@dataclass
class FitConfig:
    results: Optional[str] = None  # a ladder out_dir, OLMo-ladder CSVs, a Gadre et al. exp_data folder or a CSV
    format: str = "auto"  # auto, harness, olmo, gadre or csv
    method: str = "best"  # a key of fit.registry.METHODS
    dataset: Optional[str] = None  # Gadre data: c4_original, rpj or rw_original
    # names (13B-5T), SIZE-MULT, runs of the data, or {name, params or size, tokens or multiplier, flops_per_token}:
    # ladder.core.targets
    targets: List[Any] = field(default_factory=list)
    # Runs at or above a target's N that the fit may still take (by default a ladder fits only what is smaller
    # than every target: fit.runs.fit_runs).
    include: List[str] = field(default_factory=list)
    out: Optional[str] = None  # where predictions.csv, fits.json and the report go
    bootstrap: int = 1000  # resamples of the runs; 0: no intervals
    interval: float = 0.9
    seed: int = 0
    # null, or "largest": leave every run of the largest size out of the fit and predict those runs
    # (actuals from their final points) as a backtest, next to any `targets`.
    holdout: Optional[str] = None
    # widen every interval by the method's own inner backtests (fit.calibration); false: bootstrap only
    calibrate: bool = True


def as_fit_config(cfg) -> FitConfig:
    """Accept a FitConfig, an OmegaConf DictConfig or a plain mapping."""
    return _as(FitConfig, cfg, "fit")


def _as(schema, cfg, group: str):
    if isinstance(cfg, schema):
        return cfg
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    unknown = set(cfg) - {f.name for f in fields(schema)}
    if unknown:
        raise FitInputError(f"unknown {group} config key(s): {', '.join(sorted(unknown))}")
    return schema(**cfg)


def check_numbers(cfg: FitConfig) -> None:
    """The settings whose wrong values would give NaN intervals rather than an error."""
    if not 0 < cfg.interval < 1:
        raise FitInputError(f"fit.interval={cfg.interval}: must lie in (0, 1)")
    if cfg.bootstrap < 0:
        raise FitInputError(f"fit.bootstrap={cfg.bootstrap}: must be 0 (no intervals) or a number of resamples")


@dataclass
class CompareConfig:
    """Schema of the `compare/` config group: what `ladder compare` compares. How each variant is fitted (method,
    targets, bootstrap, interval, seed, include, calibrate, format) is the `fit` group's."""
    # One source whose datasets are the variants (a ladder out_dir, a Gadre et al. folder, a CSV with a `dataset`
    # or `variant` column), or a list of sources, each a variant (or its datasets, where it holds several).
    results: Any = None
    variants: List[str] = field(default_factory=list)  # the variants to compare, by name (default: all)
    out: Optional[str] = None  # where report.md, report.html, compare.csv and compare.json go
    backtest: bool = True  # decision backtests: fit the smaller sizes, predict the order at each larger one
    # The losses by one law over all variants (shared shape, a scale per variant: fit.joint); false: each variant
    # by the method alone. Metrics the joint law does not predict (accuracies) are the method's either way.
    joint: bool = True


def as_compare_config(cfg) -> CompareConfig:
    return _as(CompareConfig, cfg, "compare")
