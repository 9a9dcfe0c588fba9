"""`best`: the paper's two steps through every intermediate loss the data has, each task's accuracy the
weighted mean of its paths, weighted by how well each path predicted the ladder's own larger rungs.

Why (docs/fit.md, scripts/backtest_best.py): no single intermediate wins both ladder backtests, and
which one extrapolates best 10× beyond the ladder cannot be backtested. Averaging the paths spreads
that risk; weighting each by its inverse backtest MSE per task keeps a path that failed on the
ladder (e.g. a task bpb whose power law bends) from pulling the mean. Chosen over picking each
task's best path, whose nested-backtest error swung more between variants (docs/fit.md)."""
from dataclasses import replace
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

from fit.errors import FitInputError
from fit.fitting import quantile_intervals
from fit.calibration import (MISS_COLUMNS, calibrate, inner_backtests, longest_runs_backtest, wanted, widen,
                             with_distance)
from fit.chain import Method, MethodOutput, progress
from fit.methods import DIRECT, PAPER_SIGMOID, Sigmoid, olmo_two_step
from fit.runs import RunTable, fit_runs, primary_loss, task_metrics
from fit.sizing import check_sizes
from fit.points import PointSet
from ladder.core.plan import Target

# Bootstrap sigmoids are refitted on every 5th smoothed checkpoint: the moving average of 5 makes
# neighbours near-copies, and it keeps 13 paths × 8 tasks × 1,000 resamples inside the 60 s budget.
THIN = 5
MIN_MSE = 1e-8  # (0.01 points)²: a path that hit every backtest exactly must not take all the weight


def intermediate_paths(table: RunTable) -> Dict[str, Dict[str, str]]:
    """path name -> {task: intermediate}: one path per LM loss on every fit run (all tasks through it),
    and one through each task's own bpb, and own gold-choice NLL, where the data has them."""
    tasks = task_metrics(table, required=False)
    if not tasks:
        return {}
    losses = sorted({m for (_, m) in table.final if m.endswith(":loss") and table.has(m)})
    paths = {m: {t: m for t in tasks} for m in losses}
    for kind in ("bpb", "gold_nll"):
        own = {t: f"{t}:{kind}" for t in tasks if table.has(f"{t}:{kind}")}
        if own:
            paths[f"<task>:{kind}"] = own
    return paths


def _grid(path: str) -> bool:
    """Step 1 adds the start grid (fit.methods.STEP1_GRID) except on the paper's own intermediate, task
    bpb, whose start the paper tuned: from that start alone, 4 of the 8 gold-NLL laws on the OLMo data
    stop short of the optimum the grid finds."""
    return path != "<task>:bpb"


def backtest_predictions(ps: PointSet, paths, backtests, cfg,
                         sigmoid: Sigmoid = PAPER_SIGMOID) -> Tuple[pd.DataFrame, List[str]]:
    """Every path's predictions of the held-out runs of every inner backtest (no bootstrap)."""
    rows, skipped = [], []
    quiet = replace(cfg, bootstrap=0)
    for i, (runs, held) in enumerate(progress(backtests, "best: inner backtests", "backtest")):
        try:
            for path, inter in paths.items():
                out = olmo_two_step(ps, held, quiet, name="best-backtest", intermediate=inter, runs=runs,
                                    grid=_grid(path), sigmoid=sigmoid)
                rows += [{**p, "path": path, "backtest": i} for p in out.predictions]
        except FitInputError as e:
            skipped.append(f"inner backtest {i + 1} ({len(runs)} fit runs) skipped: {e}")
    df = pd.DataFrame(rows, columns=None if rows else ["path", "backtest", "target", "params", "tokens", "metric",
                                                      "predicted", "actual"])
    return df.assign(error=df["predicted"] - df["actual"]), skipped


def path_weights(errors: pd.DataFrame, paths) -> pd.DataFrame:
    """(task metric × path) weights ∝ 1 / backtest MSE, rows summing to 1; equal over the task's paths
    where no backtest of it could be scored."""
    acc = errors[errors["metric"].str.endswith(":acc") & errors["error"].notna()]
    metrics = sorted({f"{t}:acc" for inter in paths.values() for t in inter})
    w = pd.DataFrame({p: [float(m.split(":")[0] in paths[p]) for m in metrics] for p in paths}, index=metrics)
    if not acc.empty:
        mse = acc.groupby(["metric", "path"])["error"].apply(lambda e: float(np.mean(e ** 2))).unstack("path")
        scored = (1 / mse.clip(lower=MIN_MSE)).reindex(index=metrics, columns=list(paths)).fillna(0.0)
        w = scored.where(np.broadcast_to(scored.sum(axis=1).gt(0).to_numpy()[:, None], w.shape), w)
    return w.div(w.sum(axis=1), axis=0)


def weighted_mean(values: pd.DataFrame, w: pd.Series) -> pd.Series:
    """Weighted mean over the columns (paths), renormalised over the finite values of each row."""
    v = values.reindex(columns=w.index)
    ok = np.isfinite(v.to_numpy(float))
    W = np.where(ok, w.to_numpy(float)[None, :], 0.0)
    with np.errstate(invalid="ignore"):
        return pd.Series((np.where(ok, v, 0.0) * W).sum(1) / W.sum(1), index=values.index)


def best(ps: PointSet, targets: List[Target], cfg, runs: List[str], sigmoid: Sigmoid = PAPER_SIGMOID) -> MethodOutput:
    """Ensemble of two-step paths (see the module docstring). The losses themselves (each LM set, each
    task's bpb and gold NLL) are predicted by their own step-1 fits, as in `olmo_two_step`.

    Intervals: every path is bootstrapped over the same resamples of runs, so each resample's ensemble
    is the weighted mean of its paths; the quantiles are then widened by the model error the run
    bootstrap cannot see, the pooled RMS miss of the same ensemble in the inner backtests (across
    sizes and along D, fit.calibration): half-width = sqrt(bootstrap half-width² + (z·RMS)²).
    `runs` and `sigmoid` (step 2's form, fit.methods.Sigmoid) are for backtests. Where the data supports no
    two-step path (no loss on every fit run) but has accuracies, they are
    predicted straight from (N, D) by `direct`, and the output says so. Each path's laws are sized to the data
    (fit.sizing), so a ladder of few runs or one tokens-per-parameter ratio is fitted by reduced laws."""
    table = RunTable(ps, runs)
    check_sizes(np.array([table.info[r][0] for r in runs]), "best")
    try:
        primary_loss(table)
    except FitInputError as exc:
        if not task_metrics(table, required=False):
            raise
        return _direct_instead(ps, targets, cfg, runs, str(exc))
    paths = intermediate_paths(table)
    if not paths:  # no task: the primary loss alone, as olmo_two_step predicts it
        out = olmo_two_step(ps, targets, cfg, name="best", runs=runs, sigmoid=sigmoid)
        paths_out = {}
    else:
        paths_out = {p: olmo_two_step(ps, targets, cfg, name="best", intermediate=inter, runs=runs, thin=THIN,
                                       grid=_grid(p), sigmoid=sigmoid)
                     for p, inter in progress(paths.items(), "best: paths", "path")}
        out = _merge(paths_out, paths)
    backtests = inner_backtests(table)
    calibrating = wanted(cfg)
    extra = longest_runs_backtest(table) if calibrating else []  # for the intervals, not the weights
    errors, skipped = backtest_predictions(ps, paths or {"loss": None}, backtests + extra, cfg, sigmoid)
    errors = with_distance(errors, table, backtests + extra)
    out.warnings += [f"best: {s}" for s in skipped]
    by_size = errors[errors["backtest"] < len(backtests)]
    weights = path_weights(by_size, paths) if paths else pd.DataFrame()
    if paths:
        _ensemble(out, paths_out, paths, weights, targets, cfg.interval)
        out.tables["Ensemble weights per task (%), from the inner backtests"] = (100 * weights).round(1).reset_index(
            names="task")
        out.fits["ensemble"] = {"params": {}, "weights": weights.to_dict(orient="index"),
                                "note": "each task's accuracy = weighted mean of its two-step paths; "
                                        "weights ∝ 1/MSE of the path in the inner backtests"}
        out.notes.append(f"best: each task's accuracy is the weighted mean of {len(paths)} two-step paths "
                         f"(intermediates: {', '.join(paths)}), weights ∝ 1/MSE in {len(backtests)} inner backtest(s)")
    if paths and not by_size["error"].notna().any():
        out.warnings.append("best: no inner backtest across sizes could be fitted (the fit set needs 3 sizes); "
                            "paths weighted equally")
    if calibrating and errors["error"].notna().any():
        scored = [b for i, b in enumerate(backtests + extra) if errors.loc[errors["backtest"] == i, "error"].notna().any()]
        _widen(out, errors, weights, cfg.interval, table, scored, targets)
    elif calibrating:
        out.warnings.append("best: no inner backtest could be scored; intervals are bootstrap only")
    return out


def _direct_instead(ps: PointSet, targets: List[Target], cfg, runs: List[str], why: str) -> MethodOutput:
    """The accuracies from `direct` (Krajewski et al. 2025), calibrated as the registry would calibrate it."""
    out = DIRECT.fit(ps, targets, cfg, runs=runs)
    out.warnings.insert(0, f"best: no two-step path fits this data ({why}); its accuracies are predicted "
                           "straight from (N, D) by direct (Krajewski et al. 2025) and no loss is predicted")
    if wanted(cfg):
        calibrate(DIRECT, ps, targets, cfg, out)
    return out


def _merge(paths_out: Dict[str, MethodOutput], paths) -> MethodOutput:
    """One output from the paths: their loss predictions, fits and fitted steps (each step-2 fit keyed
    by its intermediate), warnings once each."""
    out, where = MethodOutput("best", runs=next(iter(paths_out.values())).runs), {}
    for p, o in paths_out.items():
        out.predictions += [q for q in o.predictions if not q["metric"].endswith(":acc")]
        for key, rec in o.fits.items():
            out.fits[_step2_key(key, paths[p])] = rec
        for key, fitted in o.steps.items():  # renamed in the step too: the figures look up samples by it
            key = _step2_key(key, paths[p])
            out.steps[key] = replace(fitted, step=replace(fitted.step, key=key))
        for key, v in o.samples.items():
            out.samples[_step2_sample_key(key, paths[p])] = v
        for w in dict.fromkeys(o.warnings):
            where.setdefault(w, []).append(p)
    out.warnings = [w if len(ps) == len(paths) else f"{w} (path{'s' * (len(ps) > 1)} {', '.join(ps)})"
                    for w, ps in where.items()]
    return out


def _step2_key(key: str, inter: Dict[str, str]) -> str:
    task = key.split(":step2")[0]
    return f"{key}@{inter[task]}" if key.endswith(":step2") and task in inter else key


def _step2_sample_key(key: str, inter: Dict[str, str]) -> str:
    parts = key.split("|")
    return "|".join([parts[0], _step2_key(parts[1], inter)] + parts[2:]) if parts[0] == "param" else key


def _ensemble(out: MethodOutput, paths_out, paths, weights: pd.DataFrame, targets: List[Target], interval: float):
    """Each task's accuracy prediction and bootstrap samples as the weighted mean over its paths; the
    figures show each task's path with the most weight."""
    preds = {(q["target"], q["metric"]): q for o in paths_out.values() for q in o.predictions
             if q["metric"].endswith(":acc")}
    for metric, w in weights.iterrows():
        w = w[w > 0]
        for t in targets:
            point = pd.DataFrame([{p: _path_pred(paths_out[p], t.name, metric) for p in w.index}])
            if not point.notna().to_numpy().any():
                continue
            key = f"pred|{t.name}|{metric}"
            sampled = [p for p in w.index if key in paths_out[p].samples]
            if sampled:
                out.samples[key] = weighted_mean(pd.DataFrame({p: paths_out[p].samples[key] for p in sampled}), w).to_numpy()
            q = dict(preds[t.name, metric])
            q["predicted"] = float(weighted_mean(point, w).iloc[0])
            q["lower"], q["upper"] = quantile_intervals({key: out.samples[key]}, interval)[key] if sampled else (
                np.nan, np.nan)
            out.predictions.append(q)
        task, top = metric.split(":")[0], w.idxmax()
        key = _step2_key(f"{task}:step2", paths[top]) if task in paths[top] else None
        if key in out.steps:
            out.shown[key] = f"{task}: top path ({w[top]:.0%} of the weight)"


def _path_pred(o: MethodOutput, target: str, metric: str) -> float:
    return next((q["predicted"] for q in o.predictions if q["target"] == target and q["metric"] == metric), np.nan)


def _widen(out: MethodOutput, errors: pd.DataFrame, weights: pd.DataFrame, interval: float, table: RunTable,
           backtests, targets: List[Target]):
    """Widen every interval by the inner-backtest misses of what predicted it: the weighted ensemble
    for an accuracy, the step-1 fit of the one path that predicts it for a loss or bpb."""
    acc = errors["metric"].str.endswith(":acc")
    ens = [{"backtest": b, "params": g["params"].iloc[0], "tokens": g["tokens"].iloc[0], "metric": m,
            "actual": g["actual"].iloc[0], "distance": g["distance"].iloc[0],
            "predicted": weighted_mean(g.pivot(index="metric", columns="path", values="predicted"), weights.loc[m]).iloc[0]}
           for (b, _, m), g in errors[acc].groupby(["backtest", "target", "metric"]) if m in weights.index]
    columns = MISS_COLUMNS + ["distance"]
    misses = pd.concat([pd.DataFrame(ens, columns=columns), errors[~acc][columns]], ignore_index=True)
    widen(out, misses, interval, table, backtests, targets, "its inner backtests")


BEST = Method("best", best, "the default: every two-step path, weighted by the ladder's own backtests", fit_runs,
              calibrates_itself=True)
