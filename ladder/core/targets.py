"""Prediction targets: the one type (`Target`), the named ones, and the one reader of a target as a ladder config
(`ladder.targets`) or a fit config (`targets`) gives it.

A target is a name of NAMED (`13B-5T`), `SIZE-MULT` (`190M-20`; `xC` multiplies by 20, Chinchilla's D/N), or a
mapping {name?, params or size, tokens or multiplier, flops_per_token?}. Sizes mean what the caller says (a ladder:
a model config or a parameter count; a fit: a size of its data), so a spec with a size is resolved by the caller's
`params_of`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any, Callable, Optional, Union

from ladder.core.configs import ConfigError


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

    def as_spec(self) -> dict:
        """The mapping `read_target` reads back as this target (how the pipeline hands targets to the fit)."""
        spec = {"name": self.name, "params": self.params, "tokens": self.tokens}
        return spec if self.flops_per_token is None else {**spec, "flops_per_token": self.flops_per_token}


# OLMo-ladder scaling/utils.py MODEL_FLOPS gives the per-token training FLOPs of the two target models (Bhagia et
# al. 2024's targets; N in its convention, D the tokens the released models trained on).
NAMED = {t.name: t for t in (
    Target("7B-4T", 6887575552, 3945065873408, 49412071424),
    Target("13B-5T", 13202396160, 5000088518656, 91335915520),
)}

SIZE_MULTIPLIER = re.compile(r"(.+)-([\d.]+)(xC|x)?")  # 190M-20, 190M-1xC (× 20), 1.4B-640x


@dataclass(frozen=True)
class TargetSpec:
    """A target as a config gives it, its size not yet resolved: exactly one of params or size, and of tokens or
    multiplier."""
    name: str
    params: Optional[float] = None
    size: Optional[str] = None
    tokens: Optional[float] = None
    multiplier: Optional[float] = None
    flops_per_token: Optional[float] = None

    def resolve(self, params_of: Callable[[str], float], where: str) -> Target:
        """The target, a size's N from `params_of` (whose ValueError is named, one line)."""
        try:
            params = self.params if self.size is None else float(params_of(self.size))
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        tokens = self.tokens if self.multiplier is None else self.multiplier * params
        return Target(self.name, params, tokens, self.flops_per_token)


def read_target(spec: Any, where: str = "targets") -> Union[Target, TargetSpec]:
    """A named target as it is, else the spec to resolve; ConfigError (one line naming `where` and the target)
    where it is neither."""
    if isinstance(spec, str):
        if spec in NAMED:
            return NAMED[spec]
        match = SIZE_MULTIPLIER.fullmatch(spec)
        if not match:
            raise ConfigError(f"{where}: unknown target {spec!r}: not a named one ({', '.join(NAMED)}) and not "
                              f"SIZE-MULT; give its N and D instead: {{name: {spec}, params: N, tokens: D}}")
        size, multiplier, unit = match.groups()
        value = _positive({"multiplier": multiplier}, "multiplier", spec, where)
        return TargetSpec(spec, size=size, multiplier=value * (20 if unit == "xC" else 1))
    if not hasattr(spec, "keys"):
        raise ConfigError(f"{where}: cannot read target {spec!r} (a name like 13B-5T, SIZE-MULT, or "
                          f"{{name: ..., params: N, tokens: D}})")
    spec = dict(spec)
    label = spec.get("name") or spec
    unknown = sorted(set(spec) - {f.name for f in fields(TargetSpec)})
    if unknown:
        raise ConfigError(f"{where}: target {label!r} has unknown key(s) {', '.join(map(str, unknown))} (its keys: "
                          f"name, params or size, tokens or multiplier, flops_per_token)")
    for one, other in (("params", "size"), ("tokens", "multiplier")):
        if (spec.get(one) is None) == (spec.get(other) is None):
            raise ConfigError(f"{where}: target {label!r}: give exactly one of {one} or {other}")
    numbers = {k: _positive(spec, k, label, where) for k in ("params", "tokens", "multiplier", "flops_per_token")
               if spec.get(k) is not None}
    size = None if spec.get("size") is None else str(spec["size"])
    name = spec.get("name") or (f"{size}-M{numbers['multiplier']:g}" if size is not None and "multiplier" in numbers
                                else _default_name(numbers, size))
    return TargetSpec(str(name), size=size, **numbers)


def _default_name(numbers: dict, size: Optional[str]) -> str:
    n = f"N={numbers['params']:.3g}" if size is None else size
    d = f"D={numbers['tokens']:.3g}" if "tokens" in numbers else f"M={numbers['multiplier']:g}"
    return f"{n},{d}"


def _positive(spec: dict, key: str, label, where: str) -> float:
    try:
        value = float(spec[key])
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or not math.isfinite(value):
        raise ConfigError(f"{where}: {key}={spec[key]!r} of target {label!r} must be a positive number")
    return value
