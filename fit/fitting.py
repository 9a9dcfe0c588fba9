"""Optimisers shared by every method: Huber-on-log L-BFGS-B over a start grid and least squares over a
start grid (the full-data fits, as the papers' code does them), and the bootstrap over runs: resample
counts and one batched Levenberg–Marquardt refit of all resamples at once."""
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit, minimize

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


# An exponent above this is no power law: fitted exponents of LM losses lie about 0.05-1 (Hoffmann et al. 2022;
# Besiroglu et al. 2024); one of 3 makes the term fall 8x per doubling. On 3 sizes close together (the smoke
# ladder's 14K-84K) the N term can fit as a cliff (alpha = 710): large at the smallest size, nothing beyond.
STEEP = 3.0


def steep_exponents(law, p) -> Dict[str, str]:
    """Each exponent fitted above STEEP, with what it scales ("N", "D")."""
    return {name: var for name, var in law.exponents.items() if p[law.params.index(name)] > STEEP}


def bound_hits(law, p, bounds) -> Dict[str, float]:
    """Each parameter fitted on a bound that means something (Law.at_bound not None), with that bound; not one pinned
    between two equal bounds (fit.sizing's reduced laws, a fixed sigmoid), which the method says itself."""
    hits = {}
    for name, v, (lo, hi) in zip(law.params, p, bounds or [(None, None)] * len(p)):
        if lo is not None and hi is not None and hi - lo <= 1e-8 * max(1.0, abs(hi)):
            continue
        for b in (lo, hi):
            if law.at_bound.get(name, "") is not None and b is not None and np.isfinite(b) \
                    and abs(v - b) <= 1e-6 * max(1.0, abs(b)):
                hits[name] = b
    return hits


def _bound_warnings(law, p, bounds, converged, message):
    out = [] if converged else [f"{law.name}: optimiser did not converge ({message})"]
    for name, var in steep_exponents(law, p).items():
        v = p[law.params.index(name)]
        out.append(f"{law.name}: exponent {name} = {v:.4g} is far steeper than a scaling law's (about 0.05-1): "
                   f"its {var} term is a cliff at the smallest {var} fitted and about 0 beyond, so the law "
                   f"extrapolates in {var} by its other terms alone; {var} values further apart would pin it")
    for name, b in bound_hits(law, p, bounds).items():
        meaning = law.at_bound.get(name, "")
        out.append(f"{law.name}: parameter {name} = {p[law.params.index(name)]:.4g} is on its bound {b:g}"
                   + (f": {meaning}" if meaning else ""))
    return out


def fit_huber_log(law: Law, X, y, starts: Sequence[Sequence[float]], bounds=None, delta: float = 1e-3,
                  ftol: float = 0.0, gtol: float = 1e-10, maxiter: int = 100000, weights=None, screen: int = 4) -> FitResult:
    """Minimise Σ w·Huber_δ(log f(X;p) − log y) with L-BFGS-B from each start, keep the lowest.

    OLMo-ladder's get_coefficients_huber uses δ = 1e-3, ftol = 0, gtol = 1e-10; Besiroglu et al.
    showed looser tolerances stop early on this objective, so they are the defaults here too."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    logy = np.log(y)
    if len(starts) > screen:
        # A start grid is screened by one batched Levenberg–Marquardt run from every start (cheap);
        # L-BFGS-B, with its tight tolerances, then polishes only the `screen` best ends.
        ends, cost, _ = fit_batched(law, X, y, np.tile(w, (len(starts), 1)), np.asarray(starts, float), bounds,
                                    delta, max_iter=100)
        starts = ends[np.argsort(cost)[:screen]]

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
    if bounds is not None:  # curve_fit takes no pinned parameter (equal bounds): pin it within 1e-12 instead
        lo, hi = lsq_bounds
        pinned = ~(hi > lo)
        hi[pinned] = lo[pinned] + 1e-12 * np.maximum(1.0, np.abs(lo[pinned]))
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


def resample_counts(n_runs: int, n: int, seed: int) -> np.ndarray:
    """n bootstrap resamples of n_runs runs drawn with replacement from `seed`, as an (n, n_runs) matrix
    of how often each run is drawn: refitting with these as per-run weights is the same objective as
    refitting on the resampled list of runs, duplicates included."""
    if n <= 0 or n_runs == 0:
        return np.zeros((0, n_runs))
    draws = np.random.default_rng(seed).integers(0, n_runs, (n, n_runs))
    return np.stack([np.bincount(d, minlength=n_runs) for d in draws]).astype(float)


def fit_batched(law: Law, X, y, W, p0, bounds=None, delta: Optional[float] = None, max_iter: int = 1000,
                rtol: float = 1e-12):
    """Fit one law to B weightings of the same points at once, each started at p0 (the full-data optimum;
    or one start per row when p0 is (B, P)).

    W is (B, n): the weight of every point in every refit (bootstrap counts of the point's run). The
    objective is the one the full fit minimises: Σ w·Huber_δ(log f − log y) when `delta` is given (the
    Huber-on-log step 1 of OLMo-ladder and Chinchilla), else Σ w·(f − y)²/2 (curve_fit). It is solved by
    Levenberg–Marquardt over the whole batch (numpy einsum), with Huber as iteratively reweighted least
    squares and bounds as an active set: a parameter on a bound whose gradient points out of the box is
    held there for that step. Each iteration only touches the refits not yet converged.
    y is (n,), or (B, n) for refits of different values at the same inputs (fit.design's simulated ladders); X is
    (k, n), or (k, B, n) for refits at different inputs too (fit.design_accuracy's simulated step-2 points).
    Returns (params (B, P), cost (B,), converged (B,)); params of a refit with no finite cost are NaN."""
    X, W = np.asarray(X, float), np.asarray(W, float)
    B, P = W.shape[0], np.shape(p0)[-1]
    y = np.broadcast_to(np.asarray(y, float), W.shape)
    lo = np.array([-np.inf if b is None or b[0] is None else b[0] for b in (bounds or [None] * P)], float)
    hi = np.array([np.inf if b is None or b[1] is None else b[1] for b in (bounds or [None] * P)], float)
    target = np.log(y) if delta else y
    rows = (lambda idx: X[:, idx]) if X.ndim == 3 else (lambda idx: X)  # each refit's own inputs, or the shared ones

    def evaluate(p, w, target, idx=slice(None)):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            f = law.f(rows(idx), p.T[..., None])
            r = (np.log(f) if delta else f) - target
            rho = np.where(np.abs(r) < delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)) if delta else 0.5 * r * r
            c = np.sum(w * rho, axis=1)
        return f, r, np.where(np.isfinite(c), c, np.inf)

    p = np.clip(np.broadcast_to(np.asarray(p0, float), (B, P)), lo, hi)
    f, r, cost = evaluate(p, W, target)
    lam = np.full(B, 1e-3)
    done = ~np.isfinite(cost)
    converged = np.zeros(B, bool)
    eye = np.eye(P)
    for _ in range(max_iter):
        idx = np.flatnonzero(~done)
        if not len(idx):
            break
        pa, fa, ra, wa = p[idx], f[idx], r[idx], W[idx]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            J = law.grad(rows(idx), pa.T[..., None])
            if delta:
                J = J / fa[..., None]
                wa = wa * np.minimum(1.0, delta / np.maximum(np.abs(ra), 1e-300))  # IRLS weights of Huber
            Jt = J.transpose(0, 2, 1)
            g = np.matmul(Jt, (wa * ra)[..., None])[..., 0]
            H = np.matmul(Jt * wa[:, None, :], J)
        held = ((pa <= lo) & (g > 0)) | ((pa >= hi) & (g < 0))
        free = (~held).astype(float)
        H = H * free[:, :, None] * free[:, None, :] + eye * (1 - free)[:, :, None]
        g = g * free
        diag = np.einsum("bpp->bp", H)
        A = H + (lam[idx, None] * np.maximum(diag, 1e-12 * diag.max(axis=1, keepdims=True) + 1e-300))[:, :, None] * eye
        try:
            step = -np.linalg.solve(A, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -np.stack([np.linalg.lstsq(a, b, rcond=None)[0] for a, b in zip(A, g)])
        pn = np.clip(pa + step, lo, hi)
        fn, rn, cn = evaluate(pn, W[idx], target[idx], idx)
        old = cost[idx]
        better = cn < old
        p[idx[better]], f[idx[better]], r[idx[better]], cost[idx[better]] = pn[better], fn[better], rn[better], cn[better]
        lam[idx] = np.where(better, np.maximum(lam[idx] / 10, 1e-12), lam[idx] * 10)
        small = np.all(np.abs(pn - pa) <= 1e-10 * (np.abs(pa) + 1e-8), axis=1)
        stop = (better & ((old - cn) <= rtol * old)) | small | (lam[idx] > 1e12)
        converged[idx[stop]] = True
        done[idx[stop]] = True
    p[~np.isfinite(cost)] = np.nan
    return p, cost, converged & np.isfinite(cost)


def quantile_intervals(samples: Dict[str, np.ndarray], interval: float) -> Dict[str, tuple]:
    """(lower, upper) central `interval` quantiles of each key's finite bootstrap values."""
    q = (1 - interval) / 2
    out = {}
    for k, v in samples.items():
        v = v[np.isfinite(v)]
        out[k] = (float(np.quantile(v, q)), float(np.quantile(v, 1 - q))) if len(v) else (np.nan, np.nan)
    return out
