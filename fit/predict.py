"""The one way a method predicts from data, used by `ladder fit`, `ladder compare`, the calibration backtests and the
scripts: the method by name (fit.registry), the runs held out, the targets, and the calibrated fit on the method's
own fit set (its record's rule) or on the runs a caller names."""
from dataclasses import replace
from typing import List, Optional, Sequence

import numpy as np

from fit import calibration
from fit.chain import Method, MethodOutput
from fit.config import FitConfig
from fit.errors import FitInputError
from fit.points import PointSet
from fit.registry import METHODS
from fit.targets import resolve_targets
from ladder.core.plan import Target

HOLDOUTS = (None, "largest")


def method_named(name: str) -> Method:
    if name not in METHODS:
        raise FitInputError(f"method={name}: unknown (one of {', '.join(METHODS)})")
    return METHODS[name]


def apply_holdout(cfg: FitConfig, ps: PointSet):
    """(points to fit, held-out targets). `largest` removes every run of the largest size from the
    points the method sees; those runs become targets, scored against their own final points."""
    if cfg.holdout not in HOLDOUTS:
        raise FitInputError(f"holdout={cfg.holdout}: unknown (null or largest)")
    if cfg.holdout is None:
        return ps, []
    runs = ps.points.drop_duplicates("run")
    held = runs[np.isclose(runs["params"].astype(float), runs["params"].astype(float).max(), rtol=1e-6)]
    if len(held) == len(runs):
        raise FitInputError("holdout=largest: every run is at the largest size; nothing is left to fit")
    kept = ps.points[~ps.points["run"].isin(set(held["run"]))].reset_index(drop=True)
    targets = [Target(r.run, float(r.params), float(r.run_tokens)) for r in held.sort_values("run_tokens").itertuples()]
    fit_ps = replace(ps, points=kept, notes=ps.notes + [
        f"holdout=largest: runs {', '.join(t.name for t in targets)} are left out of the fit and predicted"])
    return fit_ps, targets


def choose_targets(cfg: FitConfig, ps: PointSet, held: Sequence[Target] = ()) -> List[Target]:
    """The held-out runs and `cfg.targets`; else the targets `cfg.targets` names; else the source's own (the OLMo
    paper's two), or the runs larger than its fit sets."""
    runs = ps.points.drop_duplicates("run")
    if runs["params"].nunique() < 2:
        raise FitInputError(f"results={ps.source}: its {len(runs)} run(s) are all at one size (N = "
                            f"{runs['params'].iloc[0]:.4g}); a scaling law needs runs at two sizes or more")
    if held:
        return list(held) + (resolve_targets(cfg.targets, ps, []) if cfg.targets else [])
    if ps.profile.fit_sets is not None:  # the runs larger than the paper's fit sets
        loss_runs, err_runs = ps.profile.fit_sets(ps)
        return resolve_targets(cfg.targets, ps, loss_runs, err_runs)
    smaller = list(runs[runs["params"] < runs["params"].max()]["run"])
    return resolve_targets(cfg.targets, ps, smaller)


def predict(method: Method, ps: PointSet, targets: List[Target], cfg: FitConfig,
            runs: Optional[List[str]] = None) -> MethodOutput:
    """The method's predictions of `targets` with its intervals calibrated (fit.calibrate), fitted on `runs` (in
    the order its bootstrap indexes them) or, where None, on its record's default fit set."""
    out = method(ps, targets, cfg, runs=runs)
    if calibration.wanted(cfg) and not method.calibrates_itself:
        calibration.calibrate(method, ps, targets, cfg, out)
    return out
