"""Prediction targets of a fit: what needs the data (a run of it named as a target, a size of it, the runs larger
than the fit set); the target type, the named targets and the reading of a spec are ladder.core.targets'."""
from typing import Any, List

import numpy as np

from fit.errors import FitInputError
from fit.points import PointSet
from ladder.core.configs import ConfigError
from ladder.core.targets import NAMED, SIZE_MULTIPLIER, Target, TargetSpec, read_target


def _run_target(ps: PointSet, run: str) -> Target:
    pts = ps.points[ps.points["run"] == run]
    r = pts.iloc[0]
    return Target(run, float(r["params"]), float(r["run_tokens"]))


def resolve_targets(specs: List[Any], ps: PointSet, fit_runs: List[str], used_runs: List[str] = ()) -> List[Target]:
    """`targets=[...]` (ladder.core.targets.read_target's specs, or runs of the data by name) on the data `ps`; none:
    `default_targets`. A size is one of the data's, and a size at a multiplier the data has a run of is that run."""
    if not specs:
        return default_targets(ps, fit_runs, used_runs)
    return [_target(spec, ps) for spec in specs]


def _target(spec: Any, ps: PointSet) -> Target:
    if isinstance(spec, str) and spec not in NAMED:
        if spec in set(ps.points["run"]):
            return _run_target(ps, spec)
        if not SIZE_MULTIPLIER.fullmatch(spec):
            raise FitInputError(f"targets: unknown target {spec!r}: not a named one ({', '.join(NAMED)}), not a run "
                                f"of the data, and size {spec.split('-')[0]!r} is not in the data (sizes: "
                                f"{_sizes(ps)}); give its N and D instead: targets=[{{name: {spec}, params: N, "
                                f"tokens: D}}]")
    try:
        target = read_target(spec)
        if not isinstance(target, TargetSpec):
            return target
        if target.size is not None and target.multiplier is not None:
            run = _run_at(ps, target.size, target.multiplier)
            if run is not None:
                return _run_target(ps, run)
        return target.resolve(lambda size: _size_params(ps, size), "targets")
    except ConfigError as exc:
        raise FitInputError(str(exc)) from None
    except FitInputError as exc:  # a size the data lacks
        raise FitInputError(f"targets: {exc}") from None


def _sizes(ps: PointSet) -> str:
    runs = ps.points.drop_duplicates("run")
    return ", ".join(str(s) for s in runs.sort_values("params")["size"].astype(str).drop_duplicates())


def _same_size(ps: PointSet, size: str):
    runs = ps.points.drop_duplicates("run")
    same = runs[runs["size"].astype(str) == size]
    if same.empty:
        raise FitInputError(f"size {size!r} is not in the data (sizes: {_sizes(ps)})")
    return same


def _size_params(ps: PointSet, size: str) -> float:
    return float(_same_size(ps, size).iloc[0]["params"])


def _run_at(ps: PointSet, size: str, multiplier: float):
    """The data's run of `size` at `multiplier`, if it has one."""
    same = _same_size(ps, size)
    hit = same[np.isclose(same["multiplier"].astype(float), multiplier, rtol=1e-3)]
    return None if hit.empty else hit.iloc[0]["run"]


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
