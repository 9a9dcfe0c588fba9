"""Optimisers shared by every method: Huber-on-log L-BFGS-B over a start grid, least squares over a
start grid, and one bootstrap over runs."""
import multiprocessing
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit, least_squares, minimize

from fit.laws import Law


@dataclass
class FitResult:
    law: Law
    params: np.ndarray
    loss: float
    converged: bool
    warnings: List[str] = field(default_factory=list)

    def as_dict(self):
        return dict(zip(self.law.params, map(float, self.params)))

    def predict(self, X):
        return self.law.f(np.asarray(X, float), self.params)


def _bound_warnings(law, p, bounds, converged, message):
    out = [] if converged else [f"{law.name}: optimiser did not converge ({message})"]
    for name, v, (lo, hi) in zip(law.params, p, bounds or [(None, None)] * len(p)):
        for b in (lo, hi):
            if b is not None and np.isfinite(b) and abs(v - b) <= 1e-6 * max(1.0, abs(b)):
                out.append(f"{law.name}: parameter {name} = {v:.4g} is on its bound {b:g}")
    return out


def fit_huber_log(law: Law, X, y, starts: Sequence[Sequence[float]], bounds=None, delta: float = 1e-3,
                  ftol: float = 0.0, gtol: float = 1e-10, maxiter: int = 100000, weights=None,
                  refine: bool = False) -> FitResult:
    """Minimise Σ w·Huber_δ(log f(X;p) − log y) with L-BFGS-B from each start, keep the lowest.

    OLMo-ladder's get_coefficients_huber uses δ = 1e-3, ftol = 0, gtol = 1e-10; Besiroglu et al.
    showed looser tolerances stop early on this objective, so they are the defaults here too.
    refine=True (bootstrap refits started at the full-data optimum) solves the same objective with
    scipy's trust-region least squares and its Huber loss, which needs ~10x fewer evaluations
    there; from a far start it stalls, so the full fits keep L-BFGS-B."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    logy = np.log(y)
    if refine:
        lo = [-np.inf if b is None or b[0] is None else b[0] for b in (bounds or [None] * len(starts[0]))]
        hi = [np.inf if b is None or b[1] is None else b[1] for b in (bounds or [None] * len(starts[0]))]
        sw = np.sqrt(w)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            try:
                res = least_squares(lambda p: sw * (np.log(law.f(X, p)) - logy), np.clip(starts[0], lo, hi),
                                    jac=lambda p: sw[:, None] * law.grad(X, p) / law.f(X, p)[:, None],
                                    bounds=(lo, hi), loss="huber", f_scale=delta, ftol=1e-10, xtol=1e-10,
                                    gtol=1e-10, max_nfev=2000)
            except ValueError as e:
                return FitResult(law, np.full(len(starts[0]), np.nan), np.inf, False, [str(e)])
        ok = bool(res.success) and np.all(np.isfinite(res.x))
        return FitResult(law, res.x, float(res.cost / delta ** 2) if ok else np.inf, ok, [])

    def loss_grad(p):
        pred = law.f(X, p)
        if np.any(pred <= 0) or not np.all(np.isfinite(pred)):
            return 1e10, np.zeros_like(p)
        r = np.log(pred) - logy
        small = np.abs(r) < delta
        loss = np.sum(w * np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)))
        dr = w * np.where(small, r, delta * np.sign(r))
        return loss, (dr / pred) @ law.grad(X, p)

    best = None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for p0 in starts:
            res = minimize(loss_grad, np.asarray(p0, float), jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"ftol": ftol, "gtol": gtol, "maxiter": maxiter, "maxfun": maxiter})
            if best is None or res.fun < best.fun:
                best = res
    # "ABNORMAL" line-search ends at ftol=0 are how L-BFGS-B stops at a flat optimum, not a failure.
    converged = bool(best.success or "ABNORMAL" in str(best.message)) and np.isfinite(best.fun) and best.fun < 1e10
    return FitResult(law, best.x, float(best.fun), converged,
                     _bound_warnings(law, best.x, bounds, converged, best.message))


def fit_least_squares(law: Law, X, y, starts: Sequence[Sequence[float]], bounds=None,
                      maxfev: int = 10000) -> FitResult:
    """scipy curve_fit from each start (trf with bounds, LM without, as both papers' code), keep the
    lowest residual sum of squares."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    lsq_bounds = (-np.inf, np.inf) if bounds is None else tuple(
        np.array([(-np.inf if lo is None else lo) for lo, _ in bounds], float) if i == 0 else
        np.array([(np.inf if hi is None else hi) for _, hi in bounds], float) for i in range(2))
    best, best_sse, notes = None, np.inf, []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        for p0 in starts:
            try:
                p, _ = curve_fit(lambda x, *q: law.f(x, np.array(q)), X, y, p0=list(p0), bounds=lsq_bounds,
                                 jac=lambda x, *q: law.grad(x, np.array(q)), maxfev=maxfev)
            except (RuntimeError, ValueError) as e:
                notes.append(str(e).splitlines()[0])
                continue
            sse = float(np.sum((law.f(X, p) - y) ** 2))
            if np.isfinite(sse) and sse < best_sse:
                best, best_sse = p, sse
    if best is None:
        return FitResult(law, np.full(len(law.params), np.nan), np.inf, False,
                         [f"{law.name}: no start converged ({notes[0] if notes else 'no starts'})"])
    return FitResult(law, best, best_sse, True, _bound_warnings(law, best, bounds, True, ""))


_JOB: Optional[Callable] = None


def _run_job(samples):
    return [_JOB(s) for s in samples]


def bootstrap(estimate: Callable[[List[str]], Dict[str, float]], runs: Sequence[str], n: int, seed: int,
              interval: float, workers: Optional[int] = None):
    """Resample runs with replacement n times, call estimate(resampled runs) -> {key: value}, and
    return ({key: (lower, upper)}, samples array, failed fraction). Resamples are drawn up front from
    `seed`, so the result does not depend on how the work is split over processes."""
    global _JOB
    runs = list(runs)
    if n <= 0 or not runs:
        return {}, {}, 0.0
    rng = np.random.default_rng(seed)
    samples = [[runs[i] for i in rng.integers(0, len(runs), len(runs))] for _ in range(n)]
    workers = workers or min(os.cpu_count() or 1, 4)
    _JOB = estimate
    if workers > 1 and n >= 50 and "fork" in multiprocessing.get_all_start_methods():
        chunks = [samples[i::workers] for i in range(workers)]
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_run_job, chunks)
        out = [None] * n
        for w, part in enumerate(parts):
            out[w::workers] = part
    else:
        out = _run_job(samples)
    keys = sorted({k for o in out for k in o})
    arr = {k: np.array([o.get(k, np.nan) for o in out], float) for k in keys}
    q = (1 - interval) / 2
    failed = float(np.mean([all(not np.isfinite(v) for v in o.values()) if o else True for o in out]))
    intervals = {}
    for k, v in arr.items():
        v = v[np.isfinite(v)]
        intervals[k] = (float(np.quantile(v, q)), float(np.quantile(v, 1 - q))) if len(v) else (np.nan, np.nan)
    return intervals, arr, failed
