"""Intervals that mean what they say: the run bootstrap only sees how the fit moves when runs are
resampled, not how wrong the law is when it extrapolates. Each method is therefore backtested inside
its own fit set, and every interval is widened by that backtest's RMS error:
half-width = sqrt(bootstrap half-width² + (z·RMS)²), z the normal quantile of the interval.

The backtests (`calibration_backtests`): the fit set's largest size, then its two largest, predicted
from the rest while two sizes remain (extrapolations in N), and each size's longest run predicted
from the rest (an extrapolation in D, the one a fit set of two sizes still allows). A method whose
fit set is its paper's fixed one (gadre) is scored instead on every run of the data outside that set,
and its interval is z·RMS alone: its run bootstrap cannot refit the law on most resamples.

One RMS per kind of metric, pooled over its metrics: accuracies and errors as they are (fractions),
everything else (losses, bpb, NLL) relative to the measured value. One or two errors per metric, which is what
a ladder gives, say little about that metric; pooled, they say how far the method's extrapolations
miss. Coverage before and after, on the backtests the published data allows: scripts/coverage.py,
docs/fit.md."""
from dataclasses import replace
from typing import List, Tuple

import numpy as np
import pandas as pd
from scipy.optimize import nnls
from scipy.stats import norm

from fit.chain import Method, MethodOutput, progress
from fit.errors import FitInputError
from fit.points import PointSet, is_accuracy
from fit.runs import RunTable
from fit.targets import at_target
from ladder.core.plan import Target

Backtest = Tuple[List[str], List[Target]]  # (fit runs, held-out targets)
MISS_COLUMNS = ["backtest", "params", "tokens", "metric", "predicted", "actual"]  # a backtest's miss and its cell


def inner_backtests(table: RunTable) -> List[Backtest]:
    """The fit set's largest size predicted from the rest, and its two largest sizes from the rest
    while at least two sizes remain to fit."""
    sizes = sorted({table.info[r][0] for r in table.runs})
    out = []
    for k in (1, 2):
        if len(sizes) - k < 2:
            break
        out.append(_hold_out(table, [r for r in table.runs if table.info[r][0] >= sizes[-k]]))
    return out


def longest_runs_backtest(table: RunTable) -> List[Backtest]:
    """Each size's longest run (largest D) predicted from the rest; a size with one run stays whole."""
    held = []
    for size in sorted({table.info[r][0] for r in table.runs}):
        runs = [r for r in table.runs if table.info[r][0] == size]
        if len(runs) > 1:
            held.append(max(runs, key=lambda r: table.info[r][1]))
    return [_hold_out(table, held)] if held else []


def calibration_backtests(table: RunTable) -> List[Backtest]:
    return inner_backtests(table) + longest_runs_backtest(table)


def _hold_out(table: RunTable, held: List[str]) -> Backtest:
    return ([r for r in table.runs if r not in held],
            [Target(r, table.info[r][0], table.info[r][1]) for r in held])


def _misses(errors: pd.DataFrame) -> dict:
    """{kind: misses}: "absolute", accuracies and errors as they are (fractions); "relative", every other metric's
    (predicted - actual)/|actual|; each a Series indexed as `errors` (columns metric, predicted, actual), a kind
    without misses absent."""
    e = errors.dropna(subset=["predicted", "actual"])
    acc = e["metric"].map(is_accuracy).astype(bool)
    miss = {"absolute": e.loc[acc, "predicted"] - e.loc[acc, "actual"],
            "relative": (e.loc[~acc, "predicted"] - e.loc[~acc, "actual"]) / e.loc[~acc, "actual"].abs()}
    return {k: v for k, v in miss.items() if len(v)}


def pooled_rms(errors: pd.DataFrame) -> dict:
    """{kind: RMS miss} over `errors` (`_misses`' kinds)."""
    return {k: float(np.sqrt(np.mean(v ** 2))) for k, v in _misses(errors).items()}


def box_distance(table: RunTable, runs: List[str], params: float, tokens: float) -> float:
    """How far (N, D) lies beyond the box of the fit runs `runs` in log N and log D (0 inside it): ln(N / their
    largest N) plus ln(D / their largest D), each where positive. Backtest misses and targets are placed by it."""
    N, D = (max(table.info[r][i] for r in runs) for i in (0, 1))
    return max(0.0, float(np.log(params / N))) + max(0.0, float(np.log(tokens / D)))


def with_distance(errors: pd.DataFrame, table: RunTable, backtests: List[Backtest]) -> pd.DataFrame:
    """`errors` (columns backtest, params, tokens, ...; `backtest` indexing `backtests`) with each miss's distance
    beyond its own backtest's fit runs (`box_distance`)."""
    d = [box_distance(table, backtests[b][0], n, t) for b, n, t in zip(errors["backtest"], errors["params"],
                                                                      errors["tokens"])]
    return errors.assign(distance=np.array(d, float))


def miss_growth(errors: pd.DataFrame) -> dict:
    """Per kind of metric, how its backtest misses grow with the distance d extrapolated (`box_distance`, a column
    `distance` of `errors`): (s0, s1) of miss² ≈ s0 + s1·d², fitted by non-negative least squares over every miss,
    so that the RMS miss at distance d is sqrt(s0 + s1·d²): a floor (the fit's own error) and a growth linear in
    log distance far out. Misses at one distance only (a fit set of two sizes, backtested along D) give s1 = 0:
    the pooled RMS."""
    out = {}
    for kind, m in _misses(errors).items():
        m, d = m.to_numpy(float), errors.loc[m.index, "distance"].to_numpy(float)
        if np.ptp(d) < 1e-6:
            out[kind] = (float(np.mean(m ** 2)), 0.0)
        else:
            s, _ = nnls(np.column_stack([np.ones_like(d), d ** 2]), m ** 2)
            out[kind] = (float(s[0]), float(s[1]))
    return out


def widen(out: MethodOutput, errors: pd.DataFrame, interval: float, table: RunTable, backtests: List[Backtest],
          targets: List[Target], source: str, bootstrap: bool = True):
    """Widen every interval by z times the RMS miss of its kind of metric at the target's distance beyond the fit
    set `table` (`miss_growth` of the misses in `backtests`, `errors` carrying each miss's distance), and warn of
    targets further out than any backtest reached. `bootstrap=False`: the interval is z·RMS alone, for a bootstrap
    that cannot measure the fit."""
    rms, growth = pooled_rms(errors), miss_growth(errors)
    z = float(norm.ppf(0.5 + interval / 2))
    for p in out.predictions:
        kind = "absolute" if is_accuracy(p["metric"]) else "relative"
        if kind in growth and np.isfinite(p["lower"]):
            s0, s1 = growth[kind]
            d = box_distance(table, table.runs, p["params"], p["tokens"])
            extra = z * np.sqrt(s0 + s1 * d * d) * (1.0 if kind == "absolute" else abs(p["predicted"]))
            lo, hi = (p["predicted"] - p["lower"], p["upper"] - p["predicted"]) if bootstrap else (0.0, 0.0)
            p["lower"], p["upper"] = p["predicted"] - np.hypot(lo, extra), p["predicted"] + np.hypot(hi, extra)
            if kind == "absolute":  # an accuracy or error is a fraction: a wide miss does not take it past 0 or 1
                p["lower"] = max(p["lower"], min(0.0, p["predicted"]))  # never past the prediction itself
                p["upper"] = min(p["upper"], max(1.0, p["predicted"]))
    held = list(dict.fromkeys(t.name for _, tgt in backtests for t in tgt))
    said = ", ".join(f"{k} sqrt({s0:.3g} + {s1:.3g}·d²)" for k, (s0, s1) in growth.items())
    rule = f"sqrt(bootstrap half-width² + ({z:.3g}·RMS(d))²)" if bootstrap else f"{z:.3g}·RMS(d) (the bootstrap left out)"
    runs = f"runs {', '.join(held)}" if len(held) <= 8 else f"{len(held)} runs"
    out.notes.append(f"{out.method}: intervals widened by {source} ({runs} predicted; RMS miss at distance d beyond the "
                     f"fit set, d = ln N-ratio + ln D-ratio: {said}): half-width = {rule}")
    out.fits["backtest"] = {"held_out": held, "rms_error": rms, "growth": {k: list(v) for k, v in growth.items()},
                            "errors": int(errors.dropna().shape[0]), "params": {},
                            "note": f"{source}; intervals widened by z·RMS(d), RMS(d) = sqrt(s0 + s1·d²)"}
    out.misses = errors[MISS_COLUMNS]
    out.warnings += reach_warnings(out.method, table, backtests, targets, errors, growth)


def reach_warnings(method: str, table: RunTable, backtests: List[Backtest], targets: List[Target],
                   errors: pd.DataFrame, growth: dict) -> List[str]:
    """Targets further out than the backtests that calibrated their intervals: in distance d (`box_distance`, the
    one the intervals are sized by: beyond the farthest miss, a model of the misses' growth extended to it where the
    misses grew measurably with distance, else intervals likely too narrow), or in N alone (further beyond the fit
    set's largest N than any backtest's held-out N was beyond its own, at a d the misses reached: sized by misses at
    its distance, which went further along D than along N)."""
    top = lambda runs: max(table.info[r][0] for r in runs)
    reach = max([max(t.params for t in tgt) / top(fit) for fit, tgt in backtests if fit] + [1.0])
    reached = (f"the backtests that calibrated its intervals reached {reach:.3g}×" if reach > 1 else
               "the runs that calibrated its intervals lie inside the fitted range of N")
    far = float(errors["distance"].max()) if len(errors) else 0.0
    sized = any(s1 > 0 for _, s1 in growth.values())
    out = []
    for t in targets:
        times, d = t.params / top(table.runs), box_distance(table, table.runs, t.params, t.tokens)
        further_n, further_d = times > reach * (1 + 1e-6), d > far * (1 + 1e-6)
        if not (further_n or further_d):
            continue
        said = f"{method}: target {t.name} is {times:.3g}× the largest fitted N, and {reached}; "
        if not further_d:
            out.append(said + f"its distance beyond the fit set (d = {d:.2f}) is within the backtests' (the farthest d "
                       f"= {far:.2f}), so its intervals are sized by misses at its distance, though those reached it "
                       "further along D than along N")
        elif sized:
            out.append(said + f"it lies further than any backtest (d = {d:.2f}, the farthest backtest d = {far:.2f}): "
                       "its intervals extend the misses' growth with distance to it, sized by a model of the growth, "
                       "not by a miss at its distance")
        else:
            out.append(said + f"it lies further than any backtest (d = {d:.2f}, the farthest backtest d = {far:.2f}): "
                       "its intervals are likely too narrow")
    return out


def wanted(cfg) -> bool:
    """Whether intervals are calibrated: asked for (fit.calibrate), and there are bootstrap intervals to widen."""
    return cfg.calibrate and cfg.bootstrap > 0


def calibrate(method: Method, ps: PointSet, targets: List[Target], cfg, out: MethodOutput):
    """Backtest `method` inside the runs it fitted (`out.runs`) by `calibration_backtests`, passing each
    inner fit set as its `runs`, and widen `out`'s intervals by its misses. A method with a fixed fit set
    (gadre: its paper's 5 runs for a 4-parameter law, so most bootstrap resamples cannot refit it and the
    rest interpolate) is scored on the data's runs outside that set instead, and its interval is that miss
    alone."""
    quiet = replace(cfg, bootstrap=0)
    table = RunTable(ps, out.runs or method.default_runs(ps, targets, cfg.include))
    if method.fixed_fit_set:
        backtests, source = _outside_fit_set(ps, targets, table), "its misses on the data's runs outside its fit set"
    else:
        backtests, source = calibration_backtests(table), "its inner backtests"
    rows, scored = [], []
    for i, (runs, tgt) in enumerate(progress(backtests, f"{out.method}: calibration backtests", "backtest")):
        try:
            rows += [{**p, "backtest": i, "distance": box_distance(table, runs, p["params"], p["tokens"])}
                     for p in method(ps, tgt, quiet, runs=runs).predictions]
        except FitInputError as e:
            out.warnings.append(f"{out.method}: backtest with {len(runs)} fit runs skipped: {e}")
            continue
        scored.append((runs, tgt))
    errors = pd.DataFrame(rows, columns=MISS_COLUMNS + ["distance"])
    if errors.dropna().empty:
        out.warnings.append(f"{out.method}: no backtest of it could be scored; intervals are bootstrap only "
                            "and too narrow for an extrapolation")
        return
    widen(out, errors, cfg.interval, table, scored, targets, source, bootstrap=not method.fixed_fit_set)


def _outside_fit_set(ps: PointSet, targets: List[Target], table: RunTable) -> List[Backtest]:
    """A fixed fit set's backtest: every run of the data it did not fit that is not a target."""
    runs = ps.points.drop_duplicates("run")
    aimed = np.zeros(len(runs), bool)
    for t in targets:
        aimed |= at_target(runs, t) | (runs["run"] == t.name).to_numpy()
    other = [Target(r.run, float(r.params), float(r.run_tokens)) for r in runs[~aimed].itertuples()
             if r.run not in set(table.runs)]
    return [(table.runs, other)] if other else []
