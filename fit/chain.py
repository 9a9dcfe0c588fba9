"""Methods as chains of steps, and the one loop that fits, bootstraps and predicts any chain.

A step is a value: the law it fits, its starts and bounds, its objective (Huber on log residuals or
least squares), the points it fits (each point tagged with its run, for the bootstrap), and where its
inputs at the targets come from: fixed (N, D) or compute, or the prediction of the earlier step that
feeds it. A method (fit.methods) declares its steps in order; `run_chain` fits them (scipy, from the
starts, as the papers' code does), predicts the targets through them, and refits every step of every
bootstrap resample of the runs in one batch each (fit.fitting.fit_batched) from the full fit's optimum.
"""
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from fit.fitting import FitResult, fit_batched, fit_huber_log, fit_least_squares, quantile_intervals, resample_counts
from fit.laws import Law
from fit.points import PointSet
from fit.targets import actual_value
from ladder.core.plan import Target


@dataclass(frozen=True)
class Points:
    """What a step fits: inputs X (k, n), values y (n,), and each point's run as its index in the
    method's run list (-1: a point present in every resample, such as the sigmoid's (0, 1) anchor)."""
    X: np.ndarray
    y: np.ndarray
    run: np.ndarray

    def weights(self, counts: np.ndarray) -> np.ndarray:
        """(B, n) bootstrap weights: each point weighted by how often its run was drawn."""
        return np.where(self.run >= 0, counts[:, np.maximum(self.run, 0)], 1.0)


@dataclass(frozen=True)
class Step:
    key: str  # its name in fits.json and in the bootstrap samples, e.g. "c4_en:loss:step1", "mmlu:step2"
    law: Law
    points: Points
    starts: Sequence[Sequence[float]]
    bounds: Optional[Sequence] = None
    huber: Optional[float] = None  # δ of Huber on log residuals (fit_huber_log); None: least squares on values
    options: dict = field(default_factory=dict)  # more full-fit options, e.g. ftol, gtol, maxiter
    target_x: Optional[np.ndarray] = None  # the law's inputs at the targets (k, targets), when no step feeds it
    fed_by: Optional[str] = None  # the earlier step whose prediction at the targets is this step's input
    output: Optional[str] = None  # the metric it predicts at the targets (None: internal)
    to_output: Optional[Callable] = None  # law value -> that metric (e.g. -log accuracy -> accuracy)
    label: str = ""  # prefix of its warnings
    drop_note: Optional[str] = None  # a step whose full fit fails is left out (and what it feeds) with this warning
    refit_points: Optional[Points] = None  # a subsample the bootstrap refits, shifted onto the full fit
    min_runs: int = 0  # a resample with fewer distinct runs among its points cannot fit it (counted failed)
    describe: Optional[Callable[[FitResult], dict]] = None  # extra fields of its fits.json record
    x_label: str = ""  # what its input is, for the figures
    # (2, n) array of (N, D) -> the law's inputs, for the figures' curves at any N and D; None: (N, D) themselves,
    # where the step's inputs are (N, D) (x_label "tokens D")
    inputs: Optional[Callable[[np.ndarray], np.ndarray]] = None

    def fit(self) -> FitResult:
        X, y = self.points.X, self.points.y
        if self.huber is not None:
            return fit_huber_log(self.law, X, y, self.starts, self.bounds, delta=self.huber, **self.options)
        return fit_least_squares(self.law, X, y, self.starts, self.bounds, **self.options)

    def output_of(self, value):
        return value if self.to_output is None else self.to_output(value)


@dataclass(frozen=True)
class FittedStep:
    """A step after the full fit: its law's parameters, its inputs and values at the targets."""
    step: Step
    fit: FitResult
    target_x: np.ndarray
    target_value: np.ndarray


@dataclass
class MethodOutput:
    method: str
    predictions: List[dict] = field(default_factory=list)
    fits: Dict[str, dict] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    steps: Dict[str, FittedStep] = field(default_factory=dict)  # the fitted chain, for the figures
    shown: Dict[str, str] = field(default_factory=dict)  # step key -> caption of the steps to draw; empty: all
    runs: List[str] = field(default_factory=list)  # the runs it fitted
    samples: Dict[str, np.ndarray] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)  # how the method's numbers were made, for the report
    tables: Dict[str, pd.DataFrame] = field(default_factory=dict)  # titled method details for the report
    # The calibration backtests' predictions of held-out runs (backtest, params, tokens, metric, predicted, actual):
    # two variants' misses at the same cells pair (fit.compare).
    misses: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class Method:
    """A method as `ladder fit method=NAME` runs it, complete in its record (each method's module declares it, and
    fit.registry lists them): its fit, its default fit set as a declared rule (fit.runs), and what it is."""
    name: str
    fit: Callable  # (points, targets, cfg, runs) -> MethodOutput; `runs` is its fit set, in the order resampled
    summary: str  # one line for `ladder fit --help`
    fit_set: Callable  # (points, targets, include) -> the runs it fits unless told (a rule of fit.runs)
    fixed_fit_set: bool = False  # it fits `fit_set`'s runs whatever it is given (gadre's paper design): no `runs`
    calibrates_itself: bool = False  # it widens its intervals itself (best: from the backtests weighting its paths)

    def default_runs(self, ps, targets, include=()) -> List[str]:
        return list(self.fit_set(ps, targets, include))

    def __call__(self, ps, targets, cfg, runs=None) -> "MethodOutput":
        """Its fit on `runs`, or on its default fit set where `runs` is None (an empty list is an empty fit set,
        which the method refuses: never silently the default)."""
        if self.fixed_fit_set:
            return self.fit(ps, targets, cfg)
        return self.fit(ps, targets, cfg, runs=self.default_runs(ps, targets, cfg.include) if runs is None else runs)


def _fit_record(step: Step, fit: FitResult) -> dict:
    X, y = step.points.X, step.points.y
    return {"law": fit.law.name, "formula": fit.law.formula, "source": fit.law.source,
            "params": fit.as_dict(), "converged": fit.converged, "warnings": fit.warnings,
            "points": {"x": np.asarray(X).tolist(), "y": np.asarray(y).tolist()},
            "residuals": (np.asarray(y) - fit.predict(X)).tolist(), **(step.describe(fit) if step.describe else {})}


def _pred(method, target, metric, value) -> dict:
    return {"method": method, "target": target.name, "params": target.params, "tokens": target.tokens,
            "metric": metric, "predicted": float(value), "lower": np.nan, "upper": np.nan}


def fit_chain(name: str, steps: List[Step], targets: List[Target]) -> MethodOutput:
    """The full fits in order; every step with an output predicts the targets."""
    out = MethodOutput(name)
    for s in steps:
        if s.fed_by is not None and s.fed_by not in out.steps:
            continue  # what feeds it was left out
        fit = s.fit()
        out.warnings += [f"{s.label}: {w}" if s.label else w for w in fit.warnings]
        if s.drop_note and not np.all(np.isfinite(fit.params)):
            out.warnings.append(f"{s.label}: {s.drop_note}" if s.label else s.drop_note)
            continue
        x = s.target_x if s.fed_by is None else out.steps[s.fed_by].target_value[None, :]
        value = fit.predict(x)
        out.steps[s.key] = FittedStep(s, fit, x, value)
        out.fits[s.key] = _fit_record(s, fit)
        if s.output:
            out.predictions += [_pred(name, t, s.output, v) for t, v in zip(targets, s.output_of(value))]
    return out


def bootstrap_chain(out: MethodOutput, targets: List[Target], counts: np.ndarray) -> np.ndarray:
    """Refit every fitted step on each resample of the runs (`counts`, (B, runs)), each from its full
    fit's optimum, and push each resample's predictions through the chain. Records the parameter and
    prediction samples in `out.samples`; returns which resamples every refit converged on."""
    ok = np.ones(len(counts), bool)
    value: Dict[str, np.ndarray] = {}
    for key, fs in progress(out.steps.items(), f"{out.method}: bootstrap, {len(counts)} resamples"):
        s, full = fs.step, fs.fit
        pts = s.refit_points or s.points
        W = pts.weights(counts)
        recentre = s.refit_points is not None
        if recentre:  # the all-ones weighting too: every refit is shifted by how far it lies from the full fit
            W = np.vstack([W, np.ones((1, W.shape[1]))])
        P, _, conv = fit_batched(full.law, pts.X, pts.y, W, full.params, s.bounds, s.huber)
        if recentre:
            P, conv = P[:-1] + (full.params - P[-1]), conv[:-1] & conv[-1]
        enough = np.ones(len(counts), bool)
        if s.min_runs:
            runs = np.unique(s.points.run[s.points.run >= 0])
            enough = (counts[:, runs] > 0).sum(1) >= s.min_runs
        P[~conv | ~enough] = np.nan
        ok &= conv & enough
        out.fits[key]["bootstrap_failed"] = {"did not converge": float(np.mean(~conv & enough)),
                                             f"fewer than {s.min_runs} distinct runs drawn": float(np.mean(~enough))}
        out.samples.update({f"param|{key}|{k}": P[:, i] for i, k in enumerate(full.law.params)})
        x = s.target_x if s.fed_by is None else value[s.fed_by][None]
        value[key] = full.law.f(np.asarray(x, float), P.T[..., None])  # (B, targets)
        if s.output:
            for t, v in zip(targets, s.output_of(value[key]).T):
                out.samples[f"pred|{t.name}|{s.output}"] = v
    return ok


MOSTLY_FAILED = 0.5  # a bootstrap with more refits failed than fitted measures nothing: said before the predictions


def failure_causes(out: MethodOutput, most: int = 2) -> str:
    """Why bootstrap refits failed: the steps with the most failed refits, each with its cause and share."""
    causes = sorted(((share, f"{key}: {share:.0%} {cause}") for key, rec in out.fits.items()
                     for cause, share in rec.get("bootstrap_failed", {}).items() if share > 0), reverse=True)
    return "; ".join(text for _, text in causes[:most]) or "a step fed by a failed refit"


def progress(items, desc: str, unit: str = "fit"):
    """A tqdm bar on stderr for a long loop (a bootstrap of many steps, an ensemble's paths, its backtests),
    only where stderr is a terminal: `ladder fit` runs minutes on a busy machine."""
    return tqdm(list(items), desc=desc, unit=unit, file=sys.stderr, leave=False, disable=not sys.stderr.isatty())


def run_chain(name: str, ps: PointSet, targets: List[Target], runs: List[str], steps: List[Step], cfg) -> MethodOutput:
    """Fit a chain, bootstrap it over `runs` (cfg.bootstrap resamples from cfg.seed), attach the
    `cfg.interval` quantile intervals of predictions and parameters, and each target's actual value
    where the data has its run."""
    out = fit_chain(name, steps, targets)
    out.runs = list(runs)
    counts = resample_counts(len(runs), cfg.bootstrap, cfg.seed)
    intervals, failed = {}, 0.0
    if len(counts):
        ok = bootstrap_chain(out, targets, counts)
        intervals, failed = quantile_intervals(out.samples, cfg.interval), float(np.mean(~ok))
    for pred in out.predictions:
        pred["lower"], pred["upper"] = intervals.get(f"pred|{pred['target']}|{pred['metric']}", (np.nan, np.nan))
    for key, rec in out.fits.items():
        rec["param_intervals"] = {k: intervals.get(f"param|{key}|{k}", (np.nan, np.nan)) for k in rec["params"]}
    if cfg.bootstrap <= 0:
        out.warnings.append(f"{name}: bootstrap=0, so no intervals (lower/upper are empty)")
    elif failed > MOSTLY_FAILED:
        out.warnings.append(f"{name}: most bootstrap refits failed, {failed:.0%} of {cfg.bootstrap} ({failure_causes(out)}):"
                            " its intervals rest on the few resamples that fitted, so they do not measure the fit")
    elif failed > 0.05:
        out.warnings.append(f"{name}: {failed:.0%} of {cfg.bootstrap} bootstrap refits failed ({failure_causes(out)}); "
                            "intervals rest on the rest")
    by_name = {t.name: t for t in targets}
    for pred in out.predictions:
        pred["actual"] = actual_value(ps, by_name[pred["target"]], pred["metric"], ps.profile.final_window)
    return out
