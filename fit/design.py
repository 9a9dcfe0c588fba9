"""How well a ladder will predict its target, before it is trained: the error model behind `ladder design`.

The model is measured, not assumed (`measure`):
- a prior over true loss laws: L(N, D) = e^a/N^α + e^b/D^β + E (Bhagia et al. 2024 eq. 2) fitted to each source's
  ladder (by default both published ladders: OLMo's C4 loss, Gadre et al.'s C4-eval loss on C4 and on RedPajama;
  or a team's own earlier ladders), and refitted on bootstrap resamples of its runs, so that every resample is one
  plausible law and the sources weigh equally;
- the noise of one run's final loss about its law, in two parts, both relative: a size's offset, shared by every
  rung of that size (a size's shape, LR or seed moves all its multipliers together, and a WSD-S ladder's rungs of one
  size are one run), the spread of the per-size mean residuals of those fits; and the run-to-run noise at each size,
  from seed reruns where the data has them (the OLMo exports' 1xC reruns) and from the residuals about a size's mean
  otherwise, as a log-linear function of N (small models are noisier).

`simulate` draws a law and the noise, makes a candidate ladder's final losses, fits them with the chosen method's
loss law (`LOSS_FITS`, the law, starts, bounds and objective the method's step fits), all draws in one batched fit
(fit.fitting.fit_batched), and predicts the target: the relative errors over the draws are the candidate's expected
error. Its 90 % band is checked against the errors realized on the published ladders by scripts/backtest_design.py
(docs/design.md).
"""
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np
import pandas as pd

from fit import laws
from fit.errors import FitInputError
from fit.fitting import fit_batched, fit_huber_log, resample_counts
from fit.methods import CHINCHILLA_GRID, GADRE_GRID, STEP1_BOUNDS, STEP1_GRID, STEP1_START
from fit.points import PointSet
from fit.runs import RunTable, choose_primary

TRUTH = laws.OLMO_ND  # the form of every law in the prior


def _nd(N, D):
    return np.vstack([N, D])


@dataclass(frozen=True)
class LossFit:
    """The loss law a method fits, as a simulation refits it: the law, starts (the method's own, thinned: each draw
    keeps its best end, as the method's start grid does), bounds, objective (Huber δ on log residuals, or least squares
    where None) and its inputs from (N, D). Never the draw's true law as a start: a ladder that pins a parameter
    poorly would stay there, and look better than a real fit of it."""
    law: laws.Law
    starts: Sequence[Sequence[float]]
    bounds: Optional[Sequence] = None
    huber: Optional[float] = 1e-3
    inputs: Callable = _nd


_STEP1 = LossFit(laws.OLMO_ND, [STEP1_START, *STEP1_GRID[::27]], STEP1_BOUNDS, 1e-3, _nd)
# Each method's loss step (fit.methods): the two-step methods (and `best`, through them) fit step 1 on the loss.
LOSS_FITS = {
    "best": _STEP1,
    "olmo_two_step": _STEP1,
    "chinchilla": LossFit(laws.CHINCHILLA, CHINCHILLA_GRID[::49], None, 1e-3, _nd),
    "gadre": LossFit(laws.GADRE_LOSS, GADRE_GRID[::13], None, None, lambda N, D: np.vstack([N, D / N])),
    "olmo_two_step_flops": LossFit(laws.OLMO_FLOPS, [[3.0, 0.1, 1.0]], [(0, None)] * 3, 1e-3,
                                   lambda N, D: (6.0 * N * D)[None, :]),
}


def loss_fit(method: str) -> LossFit:
    if method not in LOSS_FITS:
        raise FitInputError(f"method={method}: predicts no loss from (N, D) that a design can simulate "
                            f"(one of {', '.join(LOSS_FITS)})")
    return LOSS_FITS[method]


@dataclass(frozen=True)
class ErrorModel:
    laws: np.ndarray  # (K, 5) TRUTH parameters: plausible true loss laws
    size_sd: float  # relative sd of a size's offset, shared by its rungs
    run_sd: tuple  # (intercept, slope) of log sd of one run against log N
    run_sd_range: tuple  # the measured sds' (least, most): the line is held inside them
    # per source and size: N, runs, its offset (median residual), the residuals' and the seed reruns' sd, the run sd
    noise: pd.DataFrame
    sources: tuple

    def run_sd_at(self, N) -> np.ndarray:
        a, b = self.run_sd
        return np.clip(np.exp(a + b * np.log(np.asarray(N, float))), *self.run_sd_range)

    def describe(self) -> str:
        a, b = self.run_sd
        return (f"{len(self.laws)} laws from {', '.join(self.sources)}; a size's offset sd {self.size_sd:.3%}; "
                f"run-to-run sd {self.run_sd_at(1e8):.3%} at N=100M, {self.run_sd_at(1e9):.3%} at 1B "
                f"(log-linear in N, held within {self.run_sd_range[0]:.3%}-{self.run_sd_range[1]:.3%})")


def _ladder_runs(ps: PointSet) -> List[str]:
    """The runs a law is fitted to: every run its source does not leave out (the OLMo reruns and 0.5xC runs)."""
    runs = ps.points.drop_duplicates("run")
    keep = ~ps.profile.excluded(runs) if ps.profile.excluded is not None else np.ones(len(runs), bool)
    return list(runs.loc[keep, "run"])


def _source_laws(ps: PointSet, n_laws: int, seed: int, metric: Optional[str] = None):
    """A source's full fit of TRUTH to its final `metric` (default: its primary loss), its bootstrap refits, and per
    size its residuals and seed-rerun pairs."""
    runs = _ladder_runs(ps)
    metrics = set(ps.points["metric"])
    metric = metric or choose_primary(metrics)
    if metric is None:
        raise FitInputError(f"results={ps.source}: no loss metric (<set>:loss) to measure a design's error model on")
    table = RunTable(ps, sorted(set(ps.points["run"])))
    runs = [r for r in runs if (r, metric) in table.final]
    if len({table.info[r][0] for r in runs}) < 3 or len(runs) < 8:
        raise FitInputError(f"results={ps.source}: {len(runs)} runs at {len({table.info[r][0] for r in runs})} sizes; "
                            f"a design's error model needs a ladder of at least 3 sizes and 8 runs")
    X, y, _ = table.finals(runs, metric)
    full = fit_huber_log(TRUTH, X, y, [STEP1_START, *STEP1_GRID], STEP1_BOUNDS)
    boot, _, ok = fit_batched(TRUTH, X, y, resample_counts(len(runs), n_laws, seed), full.params, STEP1_BOUNDS, 1e-3)
    resid = np.log(y) - np.log(TRUTH.f(X, full.params))
    rows = []
    for n in sorted(set(X[0])):
        at = X[0] == n
        same = [r for r in set(ps.points["run"]) - set(runs)
                if (r, metric) in table.final and np.isclose(table.info[r][0], n)]
        pairs = [np.log(table.final[r, metric]) - np.log(y[at][np.isclose(X[1][at], table.info[r][1], rtol=1e-2)])
                 for r in same]
        pairs = np.concatenate([p for p in pairs if len(p)]) if any(len(p) for p in pairs) else np.array([])
        # The residuals about a size's median hold the seed noise and the law's misfit across D, both of which a fit
        # of the ladder faces; seed reruns (a rerun and its run differ by two runs' noise) hold the first alone, so
        # the run noise is the larger of the two.
        spread = _robust_sd(resid[at]) if at.sum() > 2 else np.nan
        seed_sd = float(np.sqrt(np.mean(pairs ** 2) / 2)) if len(pairs) else np.nan
        sd = np.nanmax([spread, seed_sd]) if np.isfinite([spread, seed_sd]).any() else np.nan
        rows.append({"source": ps.source if ps.profile.name != "gadre" else f"{ps.source} ({_dataset(ps)})",
                     "params": n, "runs": int(at.sum()), "offset": float(np.median(resid[at])),
                     "residual_sd": spread, "reruns": len(pairs), "seed_sd": seed_sd, "run_sd": float(sd)})
    return boot[ok & np.all(np.isfinite(boot), axis=1)], pd.DataFrame(rows)


def _robust_sd(r: np.ndarray) -> float:
    """1.4826 × the median absolute deviation: a size's runs include a few far off the law (Gadre et al.'s M = 5 runs
    lie 4-15 % above it, too short for their warmup), which a standard deviation would spread over every run."""
    return float(1.4826 * np.median(np.abs(r - np.median(r))))


def _dataset(ps: PointSet) -> str:
    return ",".join(sorted(ps.points["dataset"].dropna().astype(str).unique()))


def measure(sources: Sequence[PointSet], n_laws: int = 200, seed: int = 0, metric: Optional[str] = None) -> ErrorModel:
    """The error model measured on `sources`, each a ladder's points (`n_laws` laws from each), of their primary loss
    or of `metric` (a task's loss, for fit.design_accuracy)."""
    if not sources:
        raise FitInputError("a design's error model needs at least one ladder's results to measure it on")
    fitted = [_source_laws(ps, n_laws, seed + i, metric) for i, ps in enumerate(sources)]
    noise = pd.concat([t for _, t in fitted], ignore_index=True)
    # Equal weight per source: each contributes as many laws as the one with the fewest good refits.
    k = min(len(b) for b, _ in fitted)
    laws_ = np.vstack([b[:k] for b, _ in fitted])
    several = noise[noise["runs"] >= 2]
    size_sd = float(np.sqrt(np.mean(several["offset"] ** 2)))
    good = noise[np.isfinite(noise["run_sd"]) & (noise["run_sd"] > 0)]
    if len(good) >= 2 and good["params"].nunique() >= 2:
        slope, icept = np.polyfit(np.log(good["params"]), np.log(good["run_sd"]), 1)
    else:
        slope, icept = 0.0, float(np.log(good["run_sd"].mean())) if len(good) else np.log(size_sd or 1e-3)
    sd_range = (float(good["run_sd"].min()), float(good["run_sd"].max())) if len(good) else (np.exp(icept),) * 2
    return ErrorModel(laws_, size_sd, (float(icept), float(slope)), sd_range, noise,
                      tuple(f"{ps.source}" + (f" ({_dataset(ps)})" if ps.profile.name == "gadre" else "")
                            for ps in sources))


@dataclass(frozen=True)
class Expected:
    """A ladder's simulated forecast error at its target, relative (0.01 = 1 %): the median and the 90th
    percentile of |error|, the central 90 % band of the signed error, and the share of draws whose fit failed."""
    median: float
    p90: float
    low: float
    high: float
    failed: float
    draws: int

    @classmethod
    def of(cls, errors: np.ndarray) -> "Expected":
        ok = errors[np.isfinite(errors)]
        if not len(ok):
            return cls(np.inf, np.inf, -np.inf, np.inf, 1.0, len(errors))
        q = np.quantile(ok, [0.05, 0.95])
        return cls(float(np.median(np.abs(ok))), float(np.quantile(np.abs(ok), 0.9)), float(q[0]), float(q[1]),
                   1 - len(ok) / len(errors), len(errors))

    def covers(self, error: float) -> bool:
        """Whether a realized error lies in the 90 % band."""
        return self.low <= error <= self.high


def _normal(seed: int, *key: float) -> Callable[[int], np.ndarray]:
    """Standard normal draws that depend on `seed` and `key` alone: a size's (N) or a rung's (N, D) noise is the
    same in every candidate holding it (common random numbers, so that candidates differ by design, not by luck)."""
    return np.random.default_rng([seed, *(int(round(np.log(k) * 1e6)) for k in key)]).standard_normal


def check_rungs(fit: LossFit, N) -> None:
    if len(N) < len(fit.law.params) + 1:
        raise FitInputError(f"a ladder of {len(N)} rungs cannot fit {fit.law.name}'s {len(fit.law.params)} "
                            f"parameters; it needs at least {len(fit.law.params) + 1}")


def rung_noise(size_sd, run_sd, N, D, draws: int, seed: int) -> np.ndarray:
    """(draws, rungs) relative noise of each rung's final value: a size's offset (sd `size_sd`, one value or one per
    draw) plus the rung's own (sd `run_sd`, per rung or (draws, rungs)), common random numbers (`_normal`)."""
    run_sd = np.broadcast_to(run_sd, (draws, len(N)))
    return np.column_stack([size_sd * _normal(seed, n)(draws) + run_sd[:, i] * _normal(seed, n, d)(draws)
                            for i, (n, d) in enumerate(zip(N, D))])


def fit_predict(fit: LossFit, N, D, observed: np.ndarray, target: tuple) -> np.ndarray:
    """Each draw's `fit` of its rungs' `observed` values (draws, rungs), from every start of the method, the best end
    kept, predicting `target` = (N, D); NaN where no start found a finite fit."""
    draws = len(observed)
    starts = [np.broadcast_to(np.asarray(s, float), (draws, len(s))) for s in fit.starts]
    k = len(starts)
    P, cost, ok = fit_batched(fit.law, fit.inputs(N, D), np.tile(observed, (k, 1)), np.ones((k * draws, len(N))),
                              np.vstack(starts), fit.bounds, fit.huber, max_iter=300)
    cost = np.where(ok, cost, np.inf).reshape(k, draws)
    best = np.argmin(cost, axis=0)
    P = P.reshape(k, draws, -1)[best, np.arange(draws)]
    with np.errstate(over="ignore", invalid="ignore"):
        predicted = fit.law.f(fit.inputs(np.array([target[0]]), np.array([target[1]])), P.T[..., None])[:, 0]
    predicted[~np.isfinite(cost[best, np.arange(draws)])] = np.nan
    return predicted


def simulate(model: ErrorModel, fit: LossFit, params, tokens, target: tuple, draws: int = 256,
             seed: int = 0) -> np.ndarray:
    """The relative errors (predicted/true − 1) of `draws` simulated ladders with rungs at (`params`, `tokens`)
    predicting the loss at `target` = (N, D); NaN where the fit failed."""
    N, D = np.asarray(params, float), np.asarray(tokens, float)
    check_rungs(fit, N)
    rng = np.random.default_rng(seed)
    theta = model.laws[rng.integers(0, len(model.laws), draws)]
    noise = rung_noise(model.size_sd, model.run_sd_at(N), N, D, draws, seed)
    with np.errstate(over="ignore", invalid="ignore"):
        observed = TRUTH.f(_nd(N, D), theta.T[..., None]) * np.exp(noise)  # (draws, rungs)
        truth = TRUTH.f(_nd(*np.array([[target[0]], [target[1]]])), theta.T[..., None])[:, 0]
    return fit_predict(fit, N, D, observed, target) / truth - 1
