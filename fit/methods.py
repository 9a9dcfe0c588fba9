"""Methods: each maps a PointSet and targets to predictions with bootstrap intervals and the fitted laws."""
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import pandas as pd

from fit import laws
from fit.errors import FitInputError
from fit.fitting import FitResult, fit_batched, fit_huber_log, fit_least_squares, quantile_intervals, resample_counts
from fit.points import OLMO_TASKS, PointSet
from fit.targets import actual_value
from ladder.core.plan import Target

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
    notes: List[str] = field(default_factory=list)  # how the method's numbers were made, for the report
    tables: Dict[str, pd.DataFrame] = field(default_factory=dict)  # titled method details for the report


def final_window(ps: PointSet) -> int:
    """How many last evaluations make a run's final value: 5 on the OLMo exports (the paper's
    convention; they evaluate every ~1 % of a run), else the final point alone (the harness evaluates
    a few checkpoints, whose mean would reach back into the run)."""
    return 5 if ps.format == "olmo" else 1


class RunTable:
    """Per-run arrays prepared once, so that bootstrap refits only index into them."""

    def __init__(self, ps: PointSet, runs: List[str]):
        last = final_window(ps)
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

    def checkpoints(self, runs, x_metric, y_metric, skip=0.1, avg=5, every=1):
        """Intermediate checkpoints after the first `skip` of each run, each series smoothed with a
        trailing moving average of `avg` (OLMo-ladder get_step2_data_by_name), and each point's
        position in `runs` (for per-run bootstrap weights). `every` keeps every so-many smoothed
        points of a run, counted back from its last."""
        xs, ys, owner = [], [], []
        for i, r in enumerate(runs):
            x, y = self.series[r, x_metric], self.series[r, y_metric]
            k = int(np.ceil(skip * len(x)))
            xs.append(_moving_average(x[k:], avg)[::-1][::every][::-1])
            ys.append(_moving_average(y[k:], avg)[::-1][::every][::-1])
            owner.append(np.full(len(xs[-1]), i))
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(owner)


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


def task_metrics(table: RunTable, kinds=("acc",), required: bool = True) -> List[str]:
    """Tasks with every metric `<task>:<kind>` on every fit run: the paper's 8 in its order on OLMo
    data, else every task the data has (e.g. `derived` on the harness's own ladders). None is an
    error only when `required`."""
    names = sorted({m.split(":")[0] for (_, m) in table.final if m.endswith(":acc")})
    names = [t for t in OLMO_TASKS if t in names] + [t for t in names if t not in OLMO_TASKS]
    tasks = [t for t in names if all(table.has(f"{t}:{k}") for k in kinds)]
    if not tasks and required:
        raise FitInputError("the data has no task with metrics " + " and ".join(f"<task>:{k}" for k in kinds)
                            + " on every fit run")
    return tasks


def primary_loss(table: RunTable) -> str:
    """The LM loss a ladder is judged by: C4 (OLMo `c4_en`, Gadre `c4_val`), else the first held-out
    `<set>_val:loss` (the harness's own `<dataset>_val:loss`), else any `:loss` on every fit run."""
    losses = sorted({m for (_, m) in table.final if m.endswith(":loss") and table.has(m)})
    for m in ("c4_en:loss", "c4_val:loss"):
        if m in losses:
            return m
    pick = [m for m in losses if m.endswith("_val:loss")] or losses
    if not pick:
        raise FitInputError("the data has no loss metric (<set>:loss) on every fit run")
    return pick[0]


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
    if n <= 0:
        out.warnings.append(f"{out.method}: bootstrap=0, so no intervals (lower/upper are empty)")
    elif failed > 0.05:
        out.warnings.append(f"{out.method}: {failed:.0%} of {n} bootstrap refits failed; intervals rest on the rest")


def _pred(method, target, metric, value) -> dict:
    return {"method": method, "target": target.name, "params": target.params, "tokens": target.tokens,
            "metric": metric, "predicted": float(value), "lower": np.nan, "upper": np.nan}


class Refits:
    """The bootstrap of one method: every resample refitted at once from the full-data optimum.

    `counts` is (B, runs) from fit.fitting.resample_counts; `fit` refits one law with each point
    weighted by its run's count (plus optional always-present points such as the sigmoid's (0, 1)
    anchor) and records its parameter samples under the full fit's name. A refit that does not
    converge gives NaN (and whatever rests on it); its resample counts as failed."""

    def __init__(self, counts: np.ndarray):
        self.counts = counts
        self.samples: Dict[str, np.ndarray] = {}
        self.ok = np.ones(len(counts), bool)

    def weights(self, owner, fixed: int = 0):
        return np.hstack([self.counts[:, owner], np.ones((len(self.counts), fixed))])

    def fit(self, name: str, full: FitResult, X, y, W, bounds=None, delta=None, recentre=False) -> np.ndarray:
        """`recentre` when X, y are a subsample of the full fit's points: the all-ones weighting is
        refitted too, and every refit is shifted by how far that lies from the full fit."""
        W = np.vstack([W, np.ones((1, W.shape[1]))]) if recentre else W
        P, _, ok = fit_batched(full.law, X, y, W, full.params, bounds, delta)
        if recentre:
            P, ok = P[:-1] + (full.params - P[-1]), ok[:-1] & ok[-1]
        P[~ok] = np.nan
        self.ok &= ok
        self.samples.update({f"param|{name}|{k}": P[:, i] for i, k in enumerate(full.law.params)})
        return P

    def predict(self, targets: List[Target], metric: str, values: np.ndarray):
        for t, v in zip(targets, np.asarray(values).T):
            self.samples[f"pred|{t.name}|{metric}"] = v


def batch_predict(law, X, P: np.ndarray) -> np.ndarray:
    """(B, targets) predictions of a law at X for each row of P."""
    return law.f(np.asarray(X, float), P.T[..., None])


def _run_method(name: str, ps: PointSet, targets: List[Target], runs: List[str], cfg,
                estimate: Callable[[], tuple], refit: Callable[[Refits], None]) -> MethodOutput:
    """Shared frame of every method: the full fit (scipy, as the papers' code) gives the point
    predictions and laws; the bootstrap refits all resamples of the runs in one batch."""
    out = MethodOutput(name)
    values, fits, plots, warns = estimate()
    out.fits, out.plots, out.warnings = fits, plots, warns
    for (tname, metric), v in values.items():
        out.predictions.append(_pred(name, next(t for t in targets if t.name == tname), metric, v))
    counts = resample_counts(len(runs), cfg.bootstrap, cfg.seed)
    intervals, failed = {}, 0.0
    if len(counts):
        r = Refits(counts)
        refit(r)
        out.samples = r.samples
        intervals, failed = quantile_intervals(out.samples, cfg.interval), float(np.mean(~r.ok))
    _attach_intervals(out, intervals, failed, cfg.bootstrap)
    for pred in out.predictions:
        pred["actual"] = actual_value(ps, next(t for t in targets if t.name == pred["target"]), pred["metric"],
                                      final_window(ps))
    return out


# Besiroglu et al.-style grid for step 1 off the paper's data, where the paper's one start
# (tuned to OLMo's N, D and loss scale) can stall; screened in one batch (fit_huber_log).
STEP1_GRID = [[a, b, al, be, e] for a in (0.0, 5.0, 10.0) for b in (0.0, 5.0, 10.0) for al in (0.1, 0.3, 0.6)
              for be in (0.1, 0.3, 0.6) for e in (0.5, 1.5, 3.0)]


def olmo_two_step(ps: PointSet, targets: List[Target], cfg, flops: bool = False, name: Optional[str] = None,
                  intermediate: Optional[Dict[str, str]] = None, runs: Optional[List[str]] = None,
                  thin: int = 1, grid: Optional[bool] = None) -> MethodOutput:
    """Bhagia et al. 2024: step 1 task bpb from (N, D) (or from FLOPs), step 2 sigmoid bpb -> accuracy, chained.
    By default every task with accuracy is predicted through its bpb (the data's primary loss when it
    has none); `intermediate` instead maps the tasks to predict to their intermediate losses (e.g.
    c4_en:loss, <task>:gold_nll). Tasks with the same intermediate share one step-1 fit. A task whose
    sigmoid cannot be fitted is left out with a warning; its loss is still predicted, as on data with
    no task at all. `thin` > 1 refits the bootstrap's sigmoids on every `thin`-th smoothed checkpoint
    (the full fit always takes them all), for methods that refit many paths. Step 1 starts from the
    paper's start alone on the paper's data and adds STEP1_GRID elsewhere; `grid` forces either."""
    name = name or ("olmo_two_step_flops" if flops else "olmo_two_step")
    runs = runs or olmo_fit_runs(ps, targets)
    table = RunTable(ps, runs)
    check_fit_set(table, 3 if flops else 5, name, needs_sizes=not flops)
    loss = primary_loss(table)
    tasks = task_metrics(table, required=False)
    if intermediate is None:
        inter = {t: f"{t}:bpb" if table.has(f"{t}:bpb") else loss for t in tasks}
    else:
        tasks = [t for t in tasks if t in intermediate]
        inter = {t: intermediate[t] for t in tasks}
    for t, xm in inter.items():
        if not table.has(xm):
            raise FitInputError(f"{name}: intermediate {xm} of task {t} is not on every fit run")
    step1_metrics = list(dict.fromkeys(inter.values())) or [loss]
    no_tasks = [] if tasks else [f"{name}: the data has no <task>:acc on every fit run; only {loss} is predicted"]
    if flops:
        per_token = _flops_per_token(table, targets)
        law1, bounds1, starts1 = laws.OLMO_FLOPS, [(0, None)] * 3, [[3.0, 0.1, 1.0]]
        tx = np.array([[per_token[t.name] * t.tokens for t in targets]])
    else:
        law1, bounds1 = laws.OLMO_ND, STEP1_BOUNDS
        starts1 = [STEP1_START] + (STEP1_GRID if (ps.format != "olmo" if grid is None else grid) else [])
        tx = np.array([[t.params for t in targets], [t.tokens for t in targets]])

    def step1_data(xm):
        X, y, C = table.finals(runs, xm)
        return (C[None, :] if flops else X), y

    def step2_data(task, every=1):
        xs, ys, owner = table.checkpoints(runs, inter[task], f"{task}:acc", every=every)
        return np.append(xs, 0.0)[None, :], np.append(ys, 1.0), owner

    full: Dict[str, FitResult] = {}

    def estimate():
        values, fits, plots, warns = {}, {}, {}, []
        for xm in step1_metrics:
            X1, y = step1_data(xm)
            s1 = full[xm] = fit_huber_log(law1, X1, y, starts1, bounds1)
            warns += [f"{xm}: {w}" for w in s1.warnings]
            fits[f"{xm}:step1"] = _fit_record(s1, X1, y)
            for t, v in zip(targets, s1.predict(tx)):
                values[t.name, xm] = v
        for task in list(tasks):
            xm, s1 = inter[task], full[inter[task]]
            xs, ys, _ = step2_data(task)
            s2 = fit_least_squares(laws.SIGMOID, xs, ys, [[FLOORS.get(task, 0.25) - 1.0, 0.9, 3.0, 1.0]],
                                   SIGMOID_BOUNDS)
            warns += [f"{task}: {w}" for w in s2.warnings]
            if not np.all(np.isfinite(s2.params)):
                warns.append(f"{task}: no sigmoid fits its (loss, accuracy) points; no accuracy predicted")
                tasks.remove(task)
                continue
            full[task] = s2
            bpb = s1.predict(tx)
            acc = s2.predict(bpb[None, :])
            for t, a in zip(targets, acc):
                values[t.name, f"{task}:acc"] = a
            fits[f"{task}:step2"] = _fit_record(s2, xs, ys, {"intermediate": xm})
            X1, y = step1_data(xm)
            plots[task] = {"step1": (s1, X1, y, [table.info[r][3] for r in runs]), "step2": (s2, xs[0], ys),
                           "intermediate": xm, "fit_key": f"{task}:step2",
                           "targets": dict(zip([t.name for t in targets], zip(bpb, acc)))}
        return values, fits, plots, warns

    def refit(r: Refits):
        L = {}
        for xm in step1_metrics:
            X1, y = step1_data(xm)
            L[xm] = batch_predict(law1, tx, r.fit(f"{xm}:step1", full[xm], X1, y, r.counts, bounds1, delta=1e-3))
            r.predict(targets, xm, L[xm])
        for task in tasks:
            xs, ys, owner = step2_data(task, every=thin)
            P2 = r.fit(f"{task}:step2", full[task], xs, ys, r.weights(owner, fixed=1), SIGMOID_BOUNDS, recentre=thin > 1)
            r.predict(targets, f"{task}:acc", laws.SIGMOID.f(L[inter[task]][None], P2.T[..., None]))

    out = _run_method(name, ps, targets, runs, cfg, estimate, refit)
    out.warnings += no_tasks + range_warnings(table, targets)
    return out


def _flops_per_token(table: RunTable, targets: List[Target]) -> Dict[str, float]:
    """Known per-token FLOPs of a target, else a log-log line through the ladder's (N, FLOPs/token)."""
    N = np.array([table.info[r][0] for r in table.runs])
    fpt = np.array([table.info[r][2] / table.info[r][1] for r in table.runs])
    if not np.all(np.isfinite(fpt)):
        return {t.name: 6 * t.params for t in targets}  # the data carries no FLOPs: 6ND for runs and targets
    slope, icept = np.polyfit(np.log(N), np.log(fpt), 1)
    return {t.name: t.flops_per_token or float(np.exp(icept + slope * np.log(t.params))) for t in targets}


def olmo_single_step(ps: PointSet, targets: List[Target], cfg) -> MethodOutput:
    """Bhagia et al. 2024 baseline: accuracy straight from (N, D) through a sigmoid of L(N, D)."""
    runs = olmo_fit_runs(ps, targets)
    table = RunTable(ps, runs)
    check_fit_set(table, 7, "olmo_single_step")
    tasks = task_metrics(table)
    bounds = [(0, None)] * 4 + [(None, None), (-1.0, 0.0), (0.0, 1.0)]
    tx = np.array([[t.params for t in targets], [t.tokens for t in targets]])
    full: Dict[str, FitResult] = {}

    def estimate():
        values, fits, plots, warns = {}, {}, {}, []
        for task in tasks:
            X, y, _ = table.finals(runs, f"{task}:acc")
            fit = full[task] = fit_huber_log(laws.SINGLE_STEP, X, y,
                                             [[3.0, 5.0, 0.2, 0.3, 0.0, FLOORS.get(task, 0.25) - 1.0, 1.0]], bounds)
            for t, a in zip(targets, fit.predict(tx)):
                values[t.name, f"{task}:acc"] = a
            fits[f"{task}:single_step"] = _fit_record(fit, X, y)
            warns += [f"{task}: {w}" for w in fit.warnings]
        return values, fits, plots, warns

    def refit(r: Refits):
        for task in tasks:
            X, y, _ = table.finals(runs, f"{task}:acc")
            P = r.fit(f"{task}:single_step", full[task], X, y, r.counts, bounds, delta=1e-3)
            r.predict(targets, f"{task}:acc", batch_predict(laws.SINGLE_STEP, tx, P))

    out = _run_method("olmo_single_step", ps, targets, runs, cfg, estimate, refit)
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
    tx = np.array([[t.params for t in targets], [t.tokens for t in targets]])
    full: Dict[str, FitResult] = {}

    def estimate():
        values, fits, plots, warns = {}, {}, {}, []
        for m in metrics:
            X, y, _ = table.finals(runs, m)
            fit = full[m] = fit_huber_log(laws.CHINCHILLA, X, y, CHINCHILLA_GRID, None, ftol=1e-15, gtol=1e-12,
                                          maxiter=20000)
            for t, v in zip(targets, fit.predict(tx)):
                values[t.name, m] = v
            fits[m] = _fit_record(fit, X, y)
            warns += [f"{m}: {w}" for w in fit.warnings]
        return values, fits, plots, warns

    def refit(r: Refits):
        for m in metrics:
            X, y, _ = table.finals(runs, m)
            r.predict(targets, m, batch_predict(laws.CHINCHILLA, tx, r.fit(m, full[m], X, y, r.counts, delta=1e-3)))

    out = _run_method("chinchilla", ps, targets, runs, cfg, estimate, refit)
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
    n_loss = len(loss_runs)  # err_runs starts with the loss runs
    tx = np.array([[t.params for t in targets], [t.tokens / t.params for t in targets]])
    X, y, _ = table.finals(loss_runs, "c4_val:loss")
    XM = np.vstack([X[0], X[1] / X[0]])
    _, L, _ = table.finals(err_runs, "c4_val:loss")
    full: Dict[str, FitResult] = {}

    def estimate():
        values, fits, plots, warns = {}, {}, {}, []
        fit = full["loss"] = fit_least_squares(laws.GADRE_LOSS, XM, y, GADRE_GRID)
        lhat = fit.predict(tx)
        for t, v in zip(targets, lhat):
            values[t.name, "c4_val:loss"] = v
        fits["c4_val:loss"] = _fit_record(fit, XM, y, {"cm_params": laws.gadre_cm_params(fit.params)})
        warns += fit.warnings
        plots["loss"] = fit
        for m in err_metrics:
            _, e, _ = table.finals(err_runs, m)
            efit = full[m] = fit_least_squares(laws.GADRE_ERR, L[None, :], e, [[1.0, 1.0, 1.0]])
            for t, v in zip(targets, efit.predict(lhat[None, :])):
                values[t.name, m] = v
            fits[m] = _fit_record(efit, L[None, :], e)
            warns += [f"{m}: {w}" for w in efit.warnings]
            plots[m] = efit
        return values, fits, plots, warns

    def refit(r: Refits):
        # a resample with fewer than 4 distinct loss runs (or 3 runs in all) cannot fit the 4-parameter law
        fits = ((r.counts[:, :n_loss] > 0).sum(1) >= 4) & ((r.counts > 0).sum(1) >= 3)
        r.ok &= fits
        P = r.fit("c4_val:loss", full["loss"], XM, y, r.counts[:, :n_loss])
        P[~fits] = np.nan
        lhat = batch_predict(laws.GADRE_LOSS, tx, P)
        r.predict(targets, "c4_val:loss", lhat)
        for m in err_metrics:
            _, e, _ = table.finals(err_runs, m)
            P = r.fit(m, full[m], L[None, :], e, r.counts)
            r.predict(targets, m, laws.GADRE_ERR.f(lhat[None], P.T[..., None]))

    out = _run_method("gadre", ps, targets, err_runs, cfg, estimate, refit)
    out.warnings += range_warnings(RunTable(ps, loss_runs), targets)
    return out
