"""Intervals that mean what they say: the run bootstrap only sees how the fit moves when runs are
resampled, not how wrong the law is when it extrapolates. Each method is therefore backtested inside
its own fit set (its largest size, then its two largest, predicted from the rest, while two sizes
remain to fit), and every interval is widened by that backtest's RMS error of the same metric:
half-width = sqrt(bootstrap half-width² + (z·RMS)²), z the normal quantile of the interval. Coverage
before and after, on the backtests the published data allows: scripts/coverage.py, docs/fit.md."""
import inspect
from dataclasses import replace
from typing import Callable, List, Tuple

import numpy as np
import pandas as pd
from scipy.stats import norm

from fit.chain import MethodOutput
from fit.errors import FitInputError
from fit.points import PointSet
from fit.runs import RunTable, olmo_fit_runs
from ladder.core.plan import Target


def inner_backtests(table: RunTable) -> List[Tuple[List[str], List[Target]]]:
    """(fit runs, held-out targets) inside the fit set: its largest size predicted from the rest, and its
    two largest sizes from the rest while at least two sizes remain to fit."""
    sizes = sorted({table.info[r][0] for r in table.runs})
    out = []
    for k in (1, 2):
        if len(sizes) - k < 2:
            break
        held = [r for r in table.runs if table.info[r][0] >= sizes[-k]]
        out.append(([r for r in table.runs if r not in held],
                    [Target(r, table.info[r][0], table.info[r][1]) for r in held]))
    return out


def widen(out: MethodOutput, errors: pd.DataFrame, interval: float, held: List[str]):
    """Widen every interval by the RMS of `errors` (columns metric, error) of its metric."""
    rms = errors.dropna().groupby("metric")["error"].apply(lambda e: float(np.sqrt(np.mean(e ** 2))))
    z = float(norm.ppf(0.5 + interval / 2))
    for p in out.predictions:
        if p["metric"] in rms and np.isfinite(p["lower"]):
            lo, hi = p["predicted"] - p["lower"], p["upper"] - p["predicted"]
            p["lower"] = p["predicted"] - np.hypot(lo, z * rms[p["metric"]])
            p["upper"] = p["predicted"] + np.hypot(hi, z * rms[p["metric"]])
    held = list(dict.fromkeys(held))
    out.notes.append(f"{out.method}: intervals widened by its inner backtests (runs {', '.join(held)} left out "
                     f"and predicted from the smaller rungs): half-width = sqrt(bootstrap half-width² + "
                     f"({z:.3g}·RMS error)²)")
    out.fits["backtest"] = {"held_out": held, "rms_error": rms.to_dict(), "params": {},
                            "note": f"inner backtests of {out.method}; intervals widened by z·RMS"}
    out.calibrated = True


def calibrate(method: Callable, ps: PointSet, targets: List[Target], cfg, out: MethodOutput):
    """Backtest `method` inside the runs it fitted (`out.runs`), passing each inner fit set as its
    `runs`, and widen `out`'s intervals by its errors. A method whose fit set is its paper's fixed one
    (gadre: no `runs` argument) cannot be backtested so; said."""
    if "runs" not in inspect.signature(method).parameters:
        out.warnings.append(f"{out.method}: its fit set is its paper's own and cannot be backtested inside; "
                            "intervals are bootstrap only (calibrate)")
        return
    backtests = inner_backtests(RunTable(ps, out.runs or olmo_fit_runs(ps, targets)))
    rows, held = [], []
    quiet = replace(cfg, bootstrap=0)
    for fit_runs, tgt in backtests:
        try:
            rows += method(ps, tgt, quiet, runs=fit_runs).predictions
        except FitInputError as e:
            out.warnings.append(f"{out.method}: inner backtest with {len(fit_runs)} fit runs skipped: {e}")
            continue
        held += [t.name for t in tgt]
    errors = pd.DataFrame(rows, columns=["metric", "predicted", "actual"])
    errors["error"] = errors["predicted"] - errors["actual"]
    if errors["error"].notna().any():
        widen(out, errors[["metric", "error"]], cfg.interval, held)
    else:
        out.warnings.append(f"{out.method}: no inner backtest could be scored (the fit set needs 3 sizes); "
                            "intervals are bootstrap only and too narrow for an extrapolation")
