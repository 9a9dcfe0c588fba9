from dataclasses import asdict, dataclass, field, fields
from typing import Any, List, Optional


@dataclass
class FitConfig:
    results: Optional[str] = None
    format: str = "auto"
    method: str = "best"
    dataset: Optional[str] = None
    targets: List[Any] = field(default_factory=list)
    out: Optional[str] = None
    bootstrap: int = 1000
    interval: float = 0.9
    seed: int = 0
    # null, or "largest": leave every run of the largest size out of the fit and predict those runs
    # (actuals from their final points) as a backtest, next to any `targets`.
    holdout: Optional[str] = None


def as_fit_config(cfg) -> FitConfig:
    """Accept a FitConfig, an OmegaConf DictConfig or a plain mapping."""
    if isinstance(cfg, FitConfig):
        return cfg
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # omegaconf is only needed for DictConfig input
        pass
    names = {f.name for f in fields(FitConfig)}
    unknown = set(cfg) - names
    if unknown:
        from fit.errors import FitInputError

        raise FitInputError(f"unknown fit config key(s): {', '.join(sorted(unknown))}")
    return FitConfig(**{k: v for k, v in dict(cfg).items()})


__all__ = ["FitConfig", "as_fit_config", "asdict"]
