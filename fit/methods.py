"""Methods: each maps a PointSet and targets to predictions with bootstrap intervals and the fitted laws."""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import pandas as pd

from fit import laws
from fit.errors import FitInputError
from fit.fitting import FitResult, bootstrap, fit_huber_log, fit_least_squares
from fit.points import OLMO_TASKS, PointSet
from fit.targets import Target, actual_value

# Accuracy floors of the OLMo paper (scaling/utils.py minimums_rc); 0.25 otherwise.
FLOORS = {"piqa": 0.5, "socialiqa": 1 / 3, "csqa": 0.2}
STEP1_START, STEP1_BOUNDS = [3.0, 6.0, 0.1, 0.2, 1.0], [(0, None)] * 5
SIGMOID_BOUNDS = [(-1.0, 0.0), (0.0, None), (0.0, None), (0.0, 1.0)]


@dataclass
class MethodOutput:
    method: str
    predictions: List[dict] = field(default_factory=list)
    fits: Dict[str, dict] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    plots: Dict[str, dict] = field(default_factory=dict)
    samples: Dict[str, np.ndarray] = field(default_factory=dict)


class RunTable:
    """Per-run arrays prepared once, so that bootstrap refits only index into them."""

    def __init__(self, ps: PointSet, runs: List[str], last: int = 5):
        p = ps.points[ps.points["run"].isin(runs)].sort_values(["run", "metric", "tokens"])
        self.runs = list(runs)
        self.info, self.final, self.series = {}, {}, {}
        for (run, metric), g in p.groupby(["run", "metric"], sort=False):
            self.info.setdefault(run, (float(g["params"].iloc[-1]), float(g["tokens"].iloc[-1]),
                                       float(g["flops"].iloc[-1]), float(g["multiplier"].iloc[-1])))
            self.final[run, metric] = float(g["value"].tail(last).mean())
            self.series[run, metric] = g["value"].to_numpy(float)

    def has(self, metric):
        return all((r, metric) in self.final for r in self.runs)

    def finals(self, runs, metric):
        """(X = [N, D], y, C) at each run's final checkpoint, y averaged over its last evaluations."""
        N, D, C, _ = np.array([self.info[r] for r in runs]).T
        return np.vstack([N, D]), np.array([self.final[r, metric] for r in runs]), C

    def checkpoints(self, runs, x_metric, y_metric, skip=0.1, avg=5):
        """Intermediate checkpoints after the first `skip` of each run, each series smoothed with a
        trailing moving average of `avg` (OLMo-ladder get_step2_data_by_name)."""
        xs, ys = [], []
        for r in runs:
            x, y = self.series[r, x_metric], self.series[r, y_metric]
            k = int(np.ceil(skip * len(x)))
            xs.append(_moving_average(x[k:], avg))
            ys.append(_moving_average(y[k:], avg))
        return np.concatenate(xs), np.concatenate(ys)


def _moving_average(a, n):
    c = np.cumsum(a, dtype=float)
    c[n:] = c[n:] - c[:-n]
    return c / np.minimum(np.arange(1, len(a) + 1), n)


def check_fit_set(table: RunTable, n_params: int, what: str, needs_sizes: bool = True):
    sizes = {table.info[r][0] for r in table.runs}
    if len(table.runs) < n_params + 1:
        raise FitInputError(f"{what}: {len(table.runs)} run(s) for a law with {n_params} parameters; need at least {n_params + 1}")
    if needs_sizes and len(sizes) < 2:
        raise FitInputError(f"{what}: all {len(table.runs)} runs are at one size (N = {sizes.pop():.4g}); the N exponent cannot be fitted")


def range_warnings(table: RunTable, targets: List[Target]) -> List[str]:
    N = max(v[0] for v in table.info.values())
    D = max(v[1] for v in table.info.values())
    return [f"target {t.name} (N={t.params:.4g}, D={t.tokens:.4g}) lies inside the fit range "
            f"(largest N={N:.4g}, D={D:.4g}): this is interpolation, not the extrapolation the ladder is for"
            for t in targets if t.params <= N and t.tokens <= D]


def olmo_fit_runs(ps: PointSet, targets: List[Target]) -> List[str]:
    """Every run not at a target's size; on the OLMo data the paper's 16 (no -rerun, no 0.5xC)."""
    runs = ps.points.drop_duplicates("run")
    at_target = np.zeros(len(runs), bool)
    for t in targets:
        at_target |= np.isclose(runs["params"].astype(float), t.params, rtol=1e-3)
    small = runs[~at_target]
    if ps.format == "olmo":
        small = small[~small["run"].str.endswith("-rerun") & (small["multiplier"] > 10 + 1e-9)]
    return sorted(small["run"])


def _task_metrics(table: RunTable, kinds=("bpb", "acc")) -> List[str]:
    tasks = [t for t in OLMO_TASKS if all(table.has(f"{t}:{k}") for k in kinds)]
    if not tasks:
        raise FitInputError(f"the data has none of the tasks {', '.join(OLMO_TASKS)} with metrics "
                            + " and ".join(f"<task>:{k}" for k in kinds))
    return tasks


def _fit_record(fit: FitResult, X, y, extra=None) -> dict:
    pred = fit.predict(X)
    return {"law": fit.law.name, "formula": fit.law.formula, "source": fit.law.source,
            "params": fit.as_dict(), "converged": fit.converged, "warnings": fit.warnings,
            "points": {"x": np.asarray(X).tolist(), "y": np.asarray(y).tolist()},
            "residuals": (np.asarray(y) - pred).tolist(), **(extra or {})}


def _attach_intervals(out: MethodOutput, intervals: Dict[str, tuple], failed: float, n: int):
    for pred in out.predictions:
        pred["lower"], pred["upper"] = intervals.get(f"pred|{pred['target']}|{pred['metric']}", (np.nan, np.nan))
    for name, rec in out.fits.items():
        rec["param_intervals"] = {k: intervals.get(f"param|{name}|{k}", (np.nan, np.nan)) for k in rec["params"]}
    if n and failed > 0.05:
        out.warnings.append(f"{out.method}: {failed:.0%} of {n} bootstrap refits failed; intervals rest on the rest")


def _pred(method, target, metric, value) -> dict:
    return {"method": method, "target": target.name, "params": target.params, "tokens": target.tokens,
            "metric": metric, "predicted": float(value), "lower": np.nan, "upper": np.nan}


def _run_method(name: str, ps: PointSet, targets: List[Target], runs: List[str], cfg,
                estimate: Callable[[List[str], bool], tuple]) -> MethodOutput:
    """Shared frame of every method: the full fit gives the point predictions and laws, the bootstrap
    re-calls the same estimate on resampled runs."""
    out = MethodOutput(name)
    values, fits, plots, warns = estimate(runs, True)
    out.fits, out.plots, out.warnings = fits, plots, warns
    for (tname, metric), v in values.items():
        out.predictions.append(_pred(name, next(t for t in targets if t.name == tname), metric, v))

    def flat(sample):
        vals, fs, _, _ = estimate(sample, False)
        d = {f"pred|{t}|{m}": v for (t, m), v in vals.items()}
        for fname, rec in fs.items():
            d.update({f"param|{fname}|{k}": v for k, v in rec["params"].items()})
        return d

    intervals, out.samples, failed = bootstrap(flat, runs, cfg.bootstrap, cfg.seed, cfg.interval)
    _attach_intervals(out, intervals, failed, cfg.bootstrap)
    for pred in out.predictions:
        pred["actual"] = actual_value(ps, next(t for t in targets if t.name == pred["target"]), pred["metric"])
    return out


def _quick(fit: FitResult, X, y, full: bool, extra=None):
    return _fit_record(fit, X, y, extra) if full else {"params": fit.as_dict()}


def olmo_two_step(ps: PointSet, targets: List[Target], cfg, flops: bool = False, name: Optional[str] = None,
                  intermediate: Optional[Dict[str, str]] = None, runs: Optional[List[str]] = None) -> MethodOutput:
    """Bhagia et al. 2024: step 1 task bpb from (N, D) (or from FLOPs), step 2 sigmoid bpb -> accuracy, chained.
    `intermediate` swaps a task's bpb for another loss (e.g. c4_en:loss, <task>:gold_nll)."""
    name = name or ("olmo_two_step_flops" if flops else "olmo_two_step")
    runs = runs or olmo_fit_runs(ps, targets)
    table = RunTable(ps, runs)
    check_fit_set(table, 3 if flops else 5, name, needs_sizes=not flops)
    tasks = _task_metrics(table)
    per_token = _flops_per_token(table, targets) if flops else None
    warm: Dict[str, np.ndarray] = {}

    def estimate(sample, full):
        values, fits, plots, warns = {}, {}, {}, []
        for task in tasks:
            xm = (intermediate or {}).get(task, f"{task}:bpb")
            X, y, C = table.finals(sample, xm)
            if flops:
                s1 = fit_huber_log(laws.OLMO_FLOPS, C[None, :], y, [warm.get(f"{task}:s1", [3.0, 0.1, 1.0])],
                                   [(0, None)] * 3, refine=not full)
                tx = np.array([[per_token[t.name] * t.tokens for t in targets]])
                X1 = C[None, :]
            else:
                s1 = fit_huber_log(laws.OLMO_ND, X, y, [warm.get(f"{task}:s1", STEP1_START)], STEP1_BOUNDS,
                                   refine=not full)
                tx = np.array([[t.params for t in targets], [t.tokens for t in targets]])
                X1 = X
            xs, ys = table.checkpoints(sample, xm, f"{task}:acc")
            xs, ys = np.append(xs, 0.0), np.append(ys, 1.0)
            s2 = fit_least_squares(laws.SIGMOID, xs[None, :], ys,
                                   [warm.get(f"{task}:s2", [FLOORS.get(task, 0.25) - 1.0, 0.9, 3.0, 1.0])],
                                   SIGMOID_BOUNDS)
            bpb = s1.predict(tx)
            acc = s2.predict(bpb[None, :])
            for t, b, a in zip(targets, bpb, acc):
                values[t.name, xm] = b
                values[t.name, f"{task}:acc"] = a
            fits[f"{task}:step1"] = _quick(s1, X1, y, full)
            fits[f"{task}:step2"] = _quick(s2, xs[None, :], ys, full)
            if full:
                warm[f"{task}:s1"], warm[f"{task}:s2"] = s1.params, s2.params
                warns += [f"{task}: {w}" for w in s1.warnings + s2.warnings]
                plots[task] = {"step1": (s1, X1, y, [table.info[r][3] for r in sample]),
                               "step2": (s2, xs, ys), "targets": dict(zip([t.name for t in targets], zip(bpb, acc)))}
        return values, fits, plots, warns

    out = _run_method(name, ps, targets, runs, cfg, estimate)
    out.warnings += range_warnings(table, targets)
    return out


def _flops_per_token(table: RunTable, targets: List[Target]) -> Dict[str, float]:
    """Known per-token FLOPs of a target, else a log-log line through the ladder's (N, FLOPs/token)."""
    N = np.array([table.info[r][0] for r in table.runs])
    fpt = np.array([table.info[r][2] / table.info[r][1] for r in table.runs])
    if not np.all(np.isfinite(fpt)):
        fpt = 6 * N  # the data carries no FLOPs: use the 6ND convention for runs and targets alike
        return {t.name: 6 * t.params for t in targets}
    slope, icept = np.polyfit(np.log(N), np.log(fpt), 1)
    return {t.name: t.flops_per_token or float(np.exp(icept + slope * np.log(t.params))) for t in targets}


def olmo_single_step(ps: PointSet, targets: List[Target], cfg) -> MethodOutput:
    """Bhagia et al. 2024 baseline: accuracy straight from (N, D) through a sigmoid of L(N, D)."""
    runs = olmo_fit_runs(ps, targets)
    table = RunTable(ps, runs)
    check_fit_set(table, 7, "olmo_single_step")
    tasks = _task_metrics(table, ("acc",))
    warm: Dict[str, np.ndarray] = {}
    bounds = [(0, None)] * 4 + [(None, None), (-1.0, 0.0), (0.0, 1.0)]
    tx = np.array([[t.params for t in targets], [t.tokens for t in targets]])

    def estimate(sample, full):
        values, fits, plots, warns = {}, {}, {}, []
        for task in tasks:
            X, y, _ = table.finals(sample, f"{task}:acc")
            start = warm.get(task, [3.0, 5.0, 0.2, 0.3, 0.0, FLOORS.get(task, 0.25) - 1.0, 1.0])
            fit = fit_huber_log(laws.SINGLE_STEP, X, y, [start], bounds, refine=not full)
            for t, a in zip(targets, fit.predict(tx)):
                values[t.name, f"{task}:acc"] = a
            fits[f"{task}:single_step"] = _quick(fit, X, y, full)
            if full:
                warm[task] = fit.params
                warns += [f"{task}: {w}" for w in fit.warnings]
        return values, fits, plots, warns

    out = _run_method("olmo_single_step", ps, targets, runs, cfg, estimate)
    out.warnings += range_warnings(table, targets)
    return out


# Besiroglu et al. 2024 (Epoch AI) start grid, thinned to 3 values per parameter to keep fits fast.
CHINCHILLA_GRID = [[a, b, e, al, be] for a in (0.0, 10.0, 20.0) for b in (0.0, 10.0, 20.0) for e in (-1.0, 0.0, 1.0)
                   for al in (0.2, 0.5, 1.0) for be in (0.2, 0.5, 1.0)]


def chinchilla(ps: PointSet, targets: List[Target], cfg, runs: Optional[List[str]] = None) -> MethodOutput:
    """Hoffmann et al. 2022 approach 3 on every loss-like metric (`:loss`, `:bpb`) of the data."""
    runs = runs or (gadre_runs(ps)[0] if ps.format == "gadre" else olmo_fit_runs(ps, targets))
    table = RunTable(ps, runs)
    check_fit_set(table, 5, "chinchilla")
    metrics = [m for m in sorted(ps.points["metric"].unique()) if m.endswith((":loss", ":bpb")) and table.has(m)]
    if ps.format == "olmo":
        metrics = [m for m in metrics if m.split(":")[0] in OLMO_TASKS or m == "c4_en:loss"]
    if not metrics:
        raise FitInputError("chinchilla: the data has no loss metric (<set>:loss or <task>:bpb) on every fit run")
    warm: Dict[str, np.ndarray] = {}
    tx = np.array([[t.params for t in targets], [t.tokens for t in targets]])

    def estimate(sample, full):
        values, fits, plots, warns = {}, {}, {}, []
        for m in metrics:
            X, y, _ = table.finals(sample, m)
            fit = fit_huber_log(laws.CHINCHILLA, X, y, [warm[m]] if m in warm else CHINCHILLA_GRID, None,
                                ftol=1e-15, gtol=1e-12, maxiter=20000, refine=not full)
            for t, v in zip(targets, fit.predict(tx)):
                values[t.name, m] = v
            fits[m] = _quick(fit, X, y, full)
            if full:
                warm[m] = fit.params
                warns += [f"{m}: {w}" for w in fit.warnings]
        return values, fits, plots, warns

    out = _run_method("chinchilla", ps, targets, runs, cfg, estimate)
    out.warnings += range_warnings(table, targets)
    return out


def gadre_runs(ps: PointSet):
    """Gadre et al.'s fit sets: the four smallest shapes at M = 20 plus the smallest at M = 320 for the
    loss law, and those plus the next shape at M = 20 for the error law."""
    runs = ps.points.drop_duplicates("run")
    sizes = sorted(runs["params"].unique())
    if len(sizes) < 5:
        raise FitInputError(f"gadre: the data has {len(sizes)} model sizes; the paper's fit sets need 5")
    m20 = runs[np.isclose(runs["multiplier"], 20)]
    loss = sorted(m20[m20["params"].isin(sizes[:4])]["run"]) + sorted(
        runs[(runs["params"] == sizes[0]) & np.isclose(runs["multiplier"], 320)]["run"])
    err = loss + sorted(m20[m20["params"] == sizes[4]]["run"])
    return loss, err


GADRE_GRID = [[a, b, c, e] for a in (1e2, 3e2, 1e3, 3e3) for b in (1e2, 3e2, 1e3, 3e3) for c in (-0.1, -0.3)
              for e in (0.0, 1.0, 2.0, 10.0)]


def gadre(ps: PointSet, targets: List[Target], cfg) -> MethodOutput:
    """Gadre et al. 2024: C4-eval loss from (C, M), then average top-1 error from the predicted loss."""
    loss_runs, err_runs = gadre_runs(ps)
    table = RunTable(ps, err_runs)
    if len(loss_runs) < 5 or not table.has("c4_val:loss"):
        raise FitInputError("gadre: needs the paper's 5 loss-fit runs with a c4_val:loss metric")
    err_metrics = [m for m in ("avg46:err", "avg17:err") if table.has(m)]
    loss_set = set(loss_runs)
    warm: Dict[str, np.ndarray] = {}
    tx = np.array([[t.params for t in targets], [t.tokens / t.params for t in targets]])

    def estimate(sample, full):
        values, fits, plots, warns = {}, {}, {}, []
        lsample = [r for r in sample if r in loss_set]
        if len(set(lsample)) < 4 or len(set(sample)) < 3:
            return values, fits, plots, warns  # too few distinct runs in this resample to fit 4 parameters
        X, y, _ = table.finals(lsample, "c4_val:loss")
        XM = np.vstack([X[0], X[1] / X[0]])
        fit = fit_least_squares(laws.GADRE_LOSS, XM, y, [warm["loss"]] if "loss" in warm else GADRE_GRID)
        lhat = fit.predict(tx)
        for t, v in zip(targets, lhat):
            values[t.name, "c4_val:loss"] = v
        fits["c4_val:loss"] = _quick(fit, XM, y, full, {"cm_params": laws.gadre_cm_params(fit.params)} if full else None)
        if full:
            warm["loss"] = fit.params
            warns += fit.warnings
            plots["loss"] = fit
        _, L, _ = table.finals(sample, "c4_val:loss")
        for m in err_metrics:
            _, e, _ = table.finals(sample, m)
            efit = fit_least_squares(laws.GADRE_ERR, L[None, :], e, [warm.get(m, [1.0, 1.0, 1.0])])
            for t, v in zip(targets, efit.predict(lhat[None, :])):
                values[t.name, m] = v
            fits[m] = _quick(efit, L[None, :], e, full)
            if full:
                warm[m] = efit.params
                warns += [f"{m}: {w}" for w in efit.warnings]
                plots[m] = efit
        return values, fits, plots, warns

    out = _run_method("gadre", ps, targets, err_runs, cfg, estimate)
    out.warnings += range_warnings(RunTable(ps, loss_runs), targets)
    return out


def best(ps: PointSet, targets: List[Target], cfg) -> MethodOutput:
    """The paper's two steps with the C4 loss as the intermediate for every task: in the backtest
    (fit 190M-760M, predict the four 1B runs; scripts/backtest_best.py, docs/fit.md) it halves the
    mean accuracy error of task bpb (0.64 vs 1.07 points) and wins or ties on 6 of 8 tasks."""
    return olmo_two_step(ps, targets, cfg, name="best", intermediate={t: "c4_en:loss" for t in OLMO_TASKS})
