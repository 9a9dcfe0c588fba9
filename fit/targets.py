"""Prediction targets: named ones, {params, tokens} dicts, or a run of the data named by size and multiplier."""
import re
from typing import Any, List

import numpy as np

from fit.errors import FitInputError
from fit.points import PointSet
from ladder.core.plan import Target


# OLMo-ladder scaling/utils.py MODEL_FLOPS gives the per-token training FLOPs of the two target models.
NAMED = {
    "7B-4T": Target("7B-4T", 6887575552, 3945065873408, 49412071424),
    "13B-5T": Target("13B-5T", 13202396160, 5000088518656, 91335915520),
}


def _run_target(ps: PointSet, run: str) -> Target:
    pts = ps.points[ps.points["run"] == run]
    r = pts.iloc[0]
    return Target(run, float(r["params"]), float(r["run_tokens"]))


def resolve_targets(specs: List[Any], ps: PointSet, fit_runs: List[str], used_runs: List[str] = ()) -> List[Target]:
    if not specs:
        return default_targets(ps, fit_runs, used_runs)
    out = []
    for spec in specs:
        if isinstance(spec, str) and spec in NAMED:
            out.append(NAMED[spec])
        elif isinstance(spec, str) and spec in set(ps.points["run"]):
            out.append(_run_target(ps, spec))
        elif isinstance(spec, str) and re.fullmatch(r"(.+)-([\d.]+)(xC|x)?", spec):
            size, mult, unit = re.fullmatch(r"(.+)-([\d.]+)(xC|x)?", spec).groups()
            out.append(_size_mult(ps, size, float(mult) * (20 if unit == "xC" else 1), spec))
        elif hasattr(spec, "keys") and "params" in spec and "tokens" in spec:
            params, tokens = _positive(spec, "params"), _positive(spec, "tokens")
            name = spec.get("name") or f"N={params:.3g},D={tokens:.3g}"
            out.append(Target(name, params, tokens, spec.get("flops_per_token")))
        elif hasattr(spec, "keys") and "size" in spec and "multiplier" in spec:
            out.append(_size_mult(ps, str(spec["size"]), _positive(spec, "multiplier"), f"{spec['size']}-M{spec['multiplier']}"))
        elif isinstance(spec, str):
            raise FitInputError(f"targets: unknown target {spec!r}: not a named one ({', '.join(NAMED)}), not a run of "
                                f"the data, and size {spec.split('-')[0]!r} is not in the data (sizes: {_sizes(ps)}); "
                                f"give its N and D instead: targets=[{{name: {spec}, params: N, tokens: D}}]")
        else:
            raise FitInputError(f"targets: cannot read target {spec!r} (a name like 13B-5T, SIZE-MULTxC, or {{params: N, tokens: D}})")
    return out


def _positive(spec, key: str) -> float:
    """A target's number, which must be positive (like ladder.targets in `ladder plan`)."""
    try:
        value = float(spec[key])
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or not np.isfinite(value):
        raise FitInputError(f"targets: {key}={spec[key]!r} of target {dict(spec)!r} must be a positive number")
    return value


def _sizes(ps: PointSet) -> str:
    runs = ps.points.drop_duplicates("run")
    return ", ".join(str(s) for s in runs.sort_values("params")["size"].astype(str).drop_duplicates())


def _size_mult(ps: PointSet, size: str, mult: float, name: str) -> Target:
    runs = ps.points.drop_duplicates("run")
    same = runs[runs["size"].astype(str) == size]
    if same.empty:
        raise FitInputError(f"targets: size {size!r} is not in the data (sizes: {_sizes(ps)})")
    hit = same[np.isclose(same["multiplier"].astype(float), mult, rtol=1e-3)]
    if not hit.empty:
        return _run_target(ps, hit.iloc[0]["run"])
    n = float(same.iloc[0]["params"])
    return Target(name, n, mult * n)


def default_targets(ps: PointSet, fit_runs: List[str], used_runs: List[str] = ()) -> List[Target]:
    """The source's own targets (the OLMo paper's two), else every run larger than the fit set and not used by
    any fit."""
    if ps.profile.targets:
        return list(ps.profile.targets)
    runs = ps.points.drop_duplicates("run").set_index("run")
    biggest = runs.loc[list(fit_runs), "params"].max() if fit_runs else -np.inf
    larger = [r for r in runs.index if runs.loc[r, "params"] > biggest and r not in fit_runs and r not in used_runs]
    if not larger:
        raise FitInputError("targets: the data has no run larger than the fit set; name targets=[...]")
    return [_run_target(ps, r) for r in sorted(larger, key=lambda r: (runs.loc[r, "params"], runs.loc[r, "run_tokens"]))]


def at_target(points, target: Target) -> np.ndarray:
    """Which rows of `points` (params, run_tokens) are a run of the target's N and D."""
    return (np.isclose(points["params"].astype(float), target.params, rtol=1e-3)
            & np.isclose(points["run_tokens"].astype(float), target.tokens, rtol=1e-2))


def actual_value(ps: PointSet, target: Target, metric: str, last: int) -> float:
    """The data's value for a target: the mean of its run's last `last` evaluations (5 is the OLMo
    paper's convention; a single-point run gives its one value). NaN when no run matches."""
    p = ps.points
    rows = p[(p["metric"] == metric) & at_target(p, target)]
    if rows.empty:
        return float("nan")
    run = rows["run"].iloc[0]
    rows = rows[rows["run"] == run].sort_values("tokens")
    return float(rows["value"].tail(last).mean())
