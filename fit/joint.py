"""One law over all variants: `ladder compare`'s default for losses (compare.joint, docs/fit.md).

An ablation trains each variant at a few sizes; one law per variant has too many parameters for three runs, and a
law fitted to each variant apart lets its shape (the irreducible loss E, the exponents) absorb run noise. The
variants share the shape here and each keeps a scale of its own (a coefficient on the reducible loss, which is an
offset in log(L − E)):

- `nd`  L_v(N, D) = E + exp(c_v)·(N^-α + exp(b)·D^-β)    where some variant has several M = D/N at one size;
- `c`   L_v(C)    = E + exp(c_v)·C^-γ                     at one M (or one M per variant): along compute C = 6ND,
        as the D term cannot be told from the N term there;
- `c0`  L_v(C)    = exp(c_v)·C^-γ                         where no variant has three compute values, too few to
        place E.

The form is chosen from the data's design alone (`choose_form`) and said. Every form is fitted by least squares on
log L (fit.fitting.fit_batched from a grid of data-driven starts). Whether the variants' exponents differ is an
F-test of the nested fits (the likelihood-ratio test for normal errors on log L): the shared fit against one with
each variant's own exponents (E still shared); the variants' own exponents are used only where they differ at
EXPONENT_P. The bootstrap resamples runs within each variant, all variants in one draw, so each resample's
predictions of two variants pair. The model error the bootstrap cannot see is sized, as for the methods
(fit.calibration), by the joint law's own inner backtests: each variant's largest size (then two largest) predicted
from its smaller ones, all variants refitted together; misses pair across variants by size rank."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
from scipy.stats import f as f_dist

from fit.calibration import MISS_COLUMNS, wanted, widen
from fit.chain import FittedStep, MethodOutput, Points, Step
from fit.errors import FitInputError
from fit.fitting import FitResult, fit_batched, quantile_intervals
from fit.laws import Law
from fit.runs import RunTable
from fit.targets import actual_value
from ladder.core.plan import Target

EXPONENT_P = 0.05  # the variants' own exponents are fitted where the F-test rejects shared ones at this level
LOG_LS = 1.0  # Huber's δ on log residuals so wide that the objective is least squares on log L (the F-test's)
M_SPREAD = np.log(1.5)  # several M at one size: D/N differing by at least this factor (log)
FORMULAS = {"nd": "L_v(N,D) = E + exp(c_v)·(N^-alpha + exp(b)·D^-beta)",
            "c": "L_v(C) = E + exp(c_v)·C^-gamma, C = 6ND", "c0": "L_v(C) = exp(c_v)·C^-gamma, C = 6ND"}
WHOLE = {"nd": "L_v(N,D) = exp(c_v)·(E + N^-alpha + exp(b)·D^-beta)", "c": "L_v(C) = exp(c_v)·(E + C^-gamma), C = 6ND"}
# What a variant's scale exp(c_v) multiplies: the reducible loss (an architecture or optimizer change: the same
# floor E, reached faster or slower), or the whole loss (an offset in log L: e.g. a data change that moves the
# floor too). Both are fitted and the closer fit (least squares on log L, the same number of parameters) is kept.
SCALES = ("reducible", "whole")


def formula(form: str, scale: str) -> str:
    return WHOLE[form] if scale == "whole" and form in WHOLE else FORMULAS[form]
SHARED = {"nd": ("b", "alpha", "beta", "E"), "c": ("gamma", "E"), "c0": ("gamma",)}
EXPONENTS = {"nd": ("alpha", "beta"), "c": ("gamma",), "c0": ("gamma",)}
BOUNDS = {"alpha": (0.0, 3.0), "beta": (0.0, 3.0), "gamma": (0.0, 3.0), "E": (0.0, None), "b": (None, None),
          "c": (None, None)}


@dataclass(frozen=True)
class Design:
    """A joint law's parameters: `own` names have one value per variant, the others one shared value."""
    form: str
    variants: Tuple[str, ...]
    own: Tuple[str, ...]
    scale: str = "reducible"  # what exp(c_v) multiplies: the reducible loss, or the whole loss (SCALES)

    @property
    def shared(self) -> Tuple[str, ...]:
        return tuple(n for n in SHARED[self.form] if n not in self.own)

    @property
    def names(self) -> Tuple[str, ...]:
        return tuple(f"{n}[{v}]" for n in self.own for v in self.variants) + self.shared

    def columns(self, name: str) -> Tuple[int, bool]:
        """(first column of `name`, whether it is per variant)."""
        V = len(self.variants)
        if name in self.own:
            return self.own.index(name) * V, True
        return len(self.own) * V + self.shared.index(name), False

    def law(self) -> Law:
        return Law(f"joint_{self.form}", self.names, self._f, self._grad, formula(self.form, self.scale),
                   "one law over all variants (fit/joint.py)", exponents={})

    def _values(self, X, p):
        """Each parameter's value at each point, (B, n) or (B, 1), from p (P,) or (P, B, 1)."""
        P2 = np.asarray(p, float)
        P2 = P2[None, :] if P2.ndim == 1 else P2[..., 0].T
        idx = X[2].astype(int)
        out = {}
        for name in ("c",) + SHARED[self.form]:
            j, own = self.columns(name)
            out[name] = P2[:, j + idx] if own else P2[:, j:j + 1]
        return out

    def _parts(self, X, p):
        """The law's value and its gradient in each parameter. `scale` "reducible": exp(c_v) multiplies the
        reducible terms (E shared as it is); "whole": it multiplies the whole loss (an offset c_v in log L)."""
        g = self._values(X, p)
        s = np.exp(g["c"])
        if self.form == "nd":
            tn = np.exp(-g["alpha"] * np.log(X[0]))
            td = np.exp(g["b"] - g["beta"] * np.log(X[1]))
            grads = {"alpha": -s * tn * np.log(X[0]), "b": s * td, "beta": -s * td * np.log(X[1])}
            reducible = tn + td
        else:
            logc = np.log(6.0 * X[0] * X[1])
            reducible = np.exp(-g["gamma"] * logc)
            grads = {"gamma": -s * reducible * logc}
        E = g["E"] if "E" in g else 0.0
        if self.scale == "whole":
            value = s * (E + reducible)
            grads.update(c=value, **({"E": s + 0 * value} if "E" in g else {}))
        else:
            value = E + s * reducible
            grads.update(c=s * reducible, **({"E": np.ones_like(value)} if "E" in g else {}))
        return value, grads

    def _f(self, X, p):
        value, _ = self._parts(X, p)
        return value[0] if np.ndim(p) == 1 else value

    def _grad(self, X, p):
        value, grads = self._parts(X, p)
        V, idx = len(self.variants), X[2].astype(int)
        onehot = np.eye(V)[idx]  # (n, V)
        J = np.zeros(value.shape + (len(self.names),))
        for name, g in grads.items():
            j, own = self.columns(name)
            g = np.broadcast_to(g, value.shape)
            if own:
                J[..., j:j + V] = g[..., None] * onehot
            else:
                J[..., j] = g
        return J[0] if np.ndim(p) == 1 else J


@dataclass
class Data:
    """One metric's fit points over all variants: X = (N, D, variant index), y, and each point's run."""
    metric: str
    variants: Tuple[str, ...]
    X: np.ndarray
    y: np.ndarray
    runs: List[Tuple[str, str]]  # (variant, run) of each point

    def subset(self, keep: np.ndarray) -> "Data":
        return Data(self.metric, self.variants, self.X[:, keep], self.y[keep], [r for r, k in zip(self.runs, keep) if k])

    def of(self, v: int) -> np.ndarray:
        return self.X[2] == v


def gather(metric: str, variants, runs: Dict[str, List[str]]) -> Data:
    X, y, who = [], [], []
    for i, v in enumerate(variants):
        table = RunTable(v.ps, runs[v.name])
        nd, vals, _ = table.finals(runs[v.name], metric)
        X.append(np.vstack([nd, np.full(nd.shape[1], float(i))]))
        y.append(vals)
        who += [(v.name, r) for r in runs[v.name]]
    return Data(metric, tuple(v.name for v in variants), np.hstack(X), np.concatenate(y), who)


def _distinct(values: np.ndarray, rtol: float = 1e-2) -> int:
    """How many values differ by more than `rtol` (a ladder's sizes, its compute values)."""
    v = np.sort(np.log(np.asarray(values, float)))
    return int(1 + np.sum(np.diff(v) > np.log1p(rtol))) if len(v) else 0


def choose_form(data: Data) -> Tuple[str, str]:
    """(form, why): the richest law the design identifies, or a refusal naming what to add."""
    V, n = len(data.variants), len(data.y)
    several_m, most_c = False, 0
    for i in range(V):
        N, D = data.X[0, data.of(i)], data.X[1, data.of(i)]
        most_c = max(most_c, _distinct(6 * N * D))
        for size in np.unique(np.round(np.log(N), 2)):
            logm = np.log(D / N)[np.isclose(np.round(np.log(N), 2), size)]
            several_m |= bool(len(logm) and np.ptp(logm) > M_SPREAD)
    sizes = max(_distinct(data.X[0, data.of(i)]) for i in range(V))
    if several_m and sizes >= 2 and n >= V + 6:
        return "nd", f"several M = D/N at a size and {sizes} sizes identify the (N, D) law"
    if most_c >= 3 and n >= V + 4:
        why = ("one M per variant" if not several_m else "too few runs for the (N, D) law's D term")
        return "c", f"along compute C = 6ND ({why}: the D term cannot be told from the N term)"
    if most_c >= 2 and n >= V + 2:
        return "c0", (f"along compute with E = 0 (at most {most_c} compute values per variant: too few to place the "
                      "irreducible loss E)")
    raise FitInputError(f"compare: {data.metric}: the variants' runs are at one compute each ({n} runs over {V} "
                        "variants); no scaling law is identified: add runs at a second size (or compare.joint=false)")


def _starts(design: Design, data: Data, extra: Optional[np.ndarray] = None) -> np.ndarray:
    """Data-driven starts: a grid of the shared shape, each variant's coefficient from its own points."""
    low = float(data.y.min())
    Es = [0.0, 0.5 * low, 0.8 * low, 0.95 * low] if "E" in SHARED[design.form] else [0.0]
    if design.form == "nd":
        shapes = [dict(alpha=a, beta=be, b=b) for a in (0.2, 0.4, 0.7) for be in (0.2, 0.4, 0.7) for b in (-2.0, 0.0, 2.0)]
    else:
        shapes = [dict(gamma=g) for g in (0.03, 0.08, 0.15, 0.3)]
    V, rows = len(data.variants), []
    for E in Es:
        for s in shapes:
            if design.form == "nd":
                base = np.exp(-s["alpha"] * np.log(data.X[0])) + np.exp(s["b"] - s["beta"] * np.log(data.X[1]))
            else:
                base = np.exp(-s["gamma"] * np.log(6 * data.X[0] * data.X[1]))
            resid = np.log(np.maximum(data.y - E, 1e-12)) - np.log(base)
            c = np.array([resid[data.of(i)].mean() for i in range(V)])
            # the whole-loss scale holds E in units of exp(c_v): the same absolute floor at the mean c
            values = {"c": c, "E": E * np.exp(-c.mean()) if design.scale == "whole" else E, **s}
            p = np.zeros(len(design.names))
            for name in ("c",) + SHARED[design.form]:
                j, own = design.columns(name)
                p[j:j + (V if own else 1)] = values[name]
            rows.append(p)
    if extra is not None:
        rows.append(extra)
    return np.array(rows)


def _bounds(design: Design):
    out = []
    for name in design.names:
        out.append(BOUNDS[name.split("[")[0]])
    return out


@dataclass
class JointFit:
    design: Design
    params: np.ndarray
    rss: float
    converged: bool

    def predict(self, X) -> np.ndarray:
        return self.design.law().f(np.asarray(X, float), self.params)


def fit(design: Design, data: Data, extra: Optional[np.ndarray] = None) -> JointFit:
    """Least squares on log L from every start at once (fit_batched), then the best end polished."""
    law, bounds = design.law(), _bounds(design)
    starts = _starts(design, data, extra)
    W = np.ones((len(starts), len(data.y)))
    ends, cost, _ = fit_batched(law, data.X, data.y, W, starts, bounds, LOG_LS, max_iter=200)
    best = ends[int(np.argmin(np.where(np.isfinite(cost), cost, np.inf)))]
    P, cost, conv = fit_batched(law, data.X, data.y, W[:1], best, bounds, LOG_LS, max_iter=2000)
    if not np.all(np.isfinite(P[0])):
        raise FitInputError(f"compare: {data.metric}: the joint law ({formula(design.form, design.scale)}) fitted no finite "
                            "parameters; compare.joint=false fits each variant by the method alone")
    return JointFit(design, P[0], float(2 * cost[0]), bool(conv[0]))


def exponent_test(data: Data, form: str) -> Tuple[JointFit, str]:
    """The shared-shape fit (by the closer of the two scales, SCALES), or the one with each variant's own exponents
    where the F-test says they differ; and the one sentence that says which and why."""
    fits = [fit(Design(form, data.variants, ("c",), scale), data) for scale in (SCALES if form != "c0" else SCALES[:1])]
    shared = min(fits, key=lambda f: f.rss)
    own = Design(form, data.variants, ("c",) + EXPONENTS[form], shared.design.scale)
    n, p0, p1 = len(data.y), len(shared.params), len(own.names)
    names = "/".join(EXPONENTS[form])
    if n - p1 < 1 or len(data.variants) < 2:
        return shared, (f"exponents shared: too few runs to test whether the variants' own exponents differ ({n} runs "
                        f"for the {p1} parameters of a fit with an exponent per variant)")
    start = np.zeros(p1)
    V = len(data.variants)
    for name in ("c",) + SHARED[form]:
        j0, own0 = shared.design.columns(name)
        j1, own1 = own.columns(name)
        start[j1:j1 + (V if own1 else 1)] = shared.params[j0:j0 + (V if own0 else 1)]
    separate = fit(own, data, extra=start)
    rss1 = min(separate.rss, shared.rss)
    F = ((shared.rss - rss1) / (p1 - p0)) / max(rss1 / (n - p1), 1e-300)
    p = float(f_dist.sf(F, p1 - p0, n - p1))
    if p < EXPONENT_P:
        return separate, (f"exponents per variant: the variants' own exponents ({names}) differ (F-test of the "
                          f"nested fits, p = {p:.2g}), so each variant keeps its own (E shared)")
    return shared, (f"exponents shared: the variants' own exponents ({names}) do not differ detectably (F-test of "
                    f"the nested fits, p = {p:.2g})")


def resample_within(data: Data, n: int, seed: int) -> np.ndarray:
    """(n, points) weights: each variant's runs drawn with replacement among its own, all variants in one draw."""
    rng = np.random.default_rng(seed)
    W = np.zeros((n, len(data.y)))
    for i in range(len(data.variants)):
        cols = np.flatnonzero(data.of(i))
        draws = rng.integers(0, len(cols), (n, len(cols)))
        W[:, cols] = np.stack([np.bincount(d, minlength=len(cols)) for d in draws])
    return W


def _variant_law(design: Design, i: int) -> Tuple[Design, np.ndarray]:
    """The design of variant i alone and the column of each of its parameters in the joint vector."""
    one = Design(design.form, (design.variants[i],), design.own, design.scale)
    cols = []
    for name in one.names:
        base = name.split("[")[0]
        j, own = design.columns(base)
        cols.append(j + i if own else j)
    return one, np.array(cols)


def _at(targets: List[Target], i: int) -> np.ndarray:
    return np.array([[t.params for t in targets], [t.tokens for t in targets], [float(i)] * len(targets)])


def backtests(data: Data, design: Design) -> Tuple[pd.DataFrame, Dict[str, list]]:
    """The joint law's inner backtests: each variant's largest size, then its two largest while two sizes remain in
    every variant, predicted from its smaller ones (all variants refitted together, by the form the smaller runs
    identify and the same choice of exponents); then, where the law has a D term, each size's longest run. Misses
    carry `pair`, the held run's place in its variant (backtest, size rank from the top, M), by which two variants'
    misses pair (fit.compare.paired_sd). Returns the misses and, per variant, (fit runs, held targets) per backtest."""
    V = len(data.variants)
    ranks = [np.unique(np.round(np.log(data.X[0, data.of(i)]), 2)) for i in range(V)]
    size_rank = np.zeros(len(data.y), int)  # 1: the variant's largest size
    for i in range(V):
        sel = data.of(i)
        size_rank[sel] = len(ranks[i]) - np.searchsorted(ranks[i], np.round(np.log(data.X[0, sel]), 2))
    plans = [(f"N{k}", size_rank <= k) for k in (1, 2) if min(len(r) for r in ranks) - k >= 2 or
             (k == 1 and min(len(r) for r in ranks) >= 2)]
    if design.form == "nd":
        longest = np.zeros(len(data.y), bool)
        for i in range(V):
            for s in ranks[i]:
                at = np.flatnonzero(data.of(i) & np.isclose(np.round(np.log(data.X[0]), 2), s))
                if len(at) > 1:
                    longest[at[np.argmax(data.X[1, at])]] = True
        plans.append(("D", longest))
    rows, held_by = [], {v: [] for v in data.variants}
    for b, (name, held) in enumerate(plans):
        if held.all() or not held.any():
            continue
        fit_data = data.subset(~held)
        try:
            form, _ = choose_form(fit_data)
        except FitInputError:
            continue
        own = tuple(n for n in design.own if n == "c" or n in SHARED[form])
        jf = fit(Design(form, data.variants, own, design.scale), fit_data)
        predicted = jf.predict(data.X[:, held])
        logm = np.round(np.log(data.X[1, held] / data.X[0, held]), 1)
        # each miss's distance beyond its own variant's fit runs (fit.calibration.box_distance), for widen
        top = {v: data.X[:2, data.of(i) & ~held].max(1) for i, v in enumerate(data.variants)}  # largest N, D
        for x, p, a, r, m, (v, run) in zip(data.X[:, held].T, predicted, data.y[held], size_rank[held], logm,
                                           [w for w, h in zip(data.runs, held) if h]):
            d = float(np.sum(np.maximum(0.0, np.log(x[:2] / top[v]))))
            rows.append({"backtest": b, "params": x[0], "tokens": x[1], "metric": data.metric, "predicted": p,
                         "actual": a, "distance": d, "pair": f"{name}:{r}:{m}", "variant": v, "run": run})
        for i, v in enumerate(data.variants):
            fit_runs = [r for (w, r), h in zip(data.runs, held) if w == v and not h]
            held_t = [Target(r, x[0], x[1]) for (w, r), h, x in zip(data.runs, held, data.X.T) if w == v and h]
            held_by[v].append((fit_runs, held_t))
    return pd.DataFrame(rows, columns=MISS_COLUMNS + ["distance", "pair", "variant", "run"]), held_by


@dataclass
class JointResult:
    outputs: Dict[str, MethodOutput]  # per variant: its predictions of the joint metrics, samples paired by resample
    notes: List[str]  # per metric: the form, why, and the exponent test's sentence
    metrics: List[str]  # the metrics it predicts
    curves: pd.DataFrame  # each variant's law along each target's M (variant, target, C, metric, predicted)


def loss_metrics(variants, runs: Dict[str, List[str]]) -> List[str]:
    """Every loss-like metric (`<set>:loss`, `<task>:bpb`) on every fit run of every variant (the source's losses
    where it names them, as chinchilla reads them)."""
    have = None
    for v in variants:
        table = RunTable(v.ps, runs[v.name])
        mine = {m for (_, m) in table.final if m.endswith((":loss", ":bpb")) and table.has(m)}
        if v.ps.profile.losses is not None:
            mine = {m for m in mine if v.ps.profile.losses(m)}
        have = mine if have is None else have & mine
    return sorted(have or ())


def fit_losses(variants, targets_of: Dict[str, List[Target]], cfg, runs: Dict[str, List[str]], metrics: List[str],
               grid: int = 12, separate: bool = False) -> JointResult:
    """Every metric of `metrics` by one law over all variants: predictions of each variant's targets
    (`targets_of`, the same names in every variant) with bootstrap intervals widened by the joint backtests.
    `separate`: a log L-log C line per variant instead (the `c0` form, nothing shared), the baseline that
    scripts/backtest_compare.py measures the joint law against."""
    outputs = {v.name: MethodOutput("joint", runs=list(runs[v.name])) for v in variants}
    notes, curves, errors, held_by = [], [], [], {}
    for metric in metrics:
        data = gather(metric, variants, runs)
        if separate:
            form, why = "c0", "a line per variant, nothing shared"
            jf, sentence = fit(Design(form, data.variants, ("c", "gamma")), data), "each variant fitted apart"
        else:
            form, why = choose_form(data)
            jf, sentence = exponent_test(data, form)
        notes.append(f"{metric}: one law over the {len(variants)} variants, {formula(form, jf.design.scale)} ({why}; "
                     f"the scale on the {jf.design.scale} loss, the closer fit); {sentence}")
        law, bounds = jf.design.law(), _bounds(jf.design)
        P = np.zeros((0, len(jf.params)))
        if cfg.bootstrap > 0:
            W = resample_within(data, cfg.bootstrap, cfg.seed)
            P, _, conv = fit_batched(law, data.X, data.y, W, jf.params, bounds, LOG_LS)
            P[~conv] = np.nan
            if np.mean(~conv) > 0.05:
                for o in outputs.values():
                    o.warnings.append(f"joint law of {metric}: {np.mean(~conv):.0%} of {cfg.bootstrap} bootstrap "
                                      "refits failed; intervals rest on the rest")
        # As for the methods (fit.calibration.wanted): without bootstrap intervals there is nothing to widen, and no
        # model error is sized either (no P(better) from a model error alone)
        missed, held = backtests(data, jf.design) if wanted(cfg) else (
            pd.DataFrame(columns=MISS_COLUMNS + ["distance"]), {})
        errors.append(missed)
        for v, h in held.items():
            held_by.setdefault(v, h)
        for i, v in enumerate(variants):
            _one_variant(outputs[v.name], v, i, jf, P, data, targets_of[v.name], cfg, form, grid, curves)
    misses = pd.concat(errors, ignore_index=True) if errors else pd.DataFrame(columns=MISS_COLUMNS + ["distance"])
    for v in variants:
        out = outputs[v.name]
        if wanted(cfg) and not misses.dropna(subset=["predicted", "actual"]).empty:
            widen(out, misses[MISS_COLUMNS + ["distance"]], cfg.interval, RunTable(v.ps, runs[v.name]),
                  held_by.get(v.name, []), targets_of[v.name], "the joint law's inner backtests, all variants pooled")
        mine = misses[misses["variant"] == v.name] if "variant" in misses.columns else misses
        out.misses = mine.drop(columns=["variant", "run"], errors="ignore").reset_index(drop=True)
        if cfg.bootstrap <= 0:
            out.warnings.append("joint: bootstrap=0, so no intervals (lower/upper are empty)")
        out.notes = notes + out.notes
    return JointResult(outputs, notes, metrics, pd.DataFrame(curves, columns=["variant", "target", "C", "metric", "predicted"]))


def _one_variant(out: MethodOutput, v, i: int, jf: JointFit, P: np.ndarray, data: Data, targets: List[Target], cfg,
                 form: str, grid: int, curves: list):
    """Variant i's share of a joint fit: predictions, paired samples, its law alone (for the compute multiplier
    and the figures) and its curves to the targets."""
    metric, law = data.metric, jf.design.law()
    one, cols = _variant_law(jf.design, i)
    X = _at(targets, i)
    pred = jf.predict(X)
    samples = law.f(X, P.T[..., None]) if len(P) else np.zeros((0, len(targets)))
    q = (1 - cfg.interval) / 2
    for k, t in enumerate(targets):
        s = samples[:, k][np.isfinite(samples[:, k])] if len(P) else np.array([])
        lo, hi = (float(np.quantile(s, q)), float(np.quantile(s, 1 - q))) if len(s) else (np.nan, np.nan)
        out.predictions.append({"method": "joint", "target": t.name, "params": t.params, "tokens": t.tokens,
                                "metric": metric, "predicted": float(pred[k]), "lower": lo, "upper": hi,
                                "actual": actual_value(v.ps, t, metric, v.ps.profile.final_window)})
        if len(P):
            out.samples[f"pred|{t.name}|{metric}"] = samples[:, k]
    sel = data.of(i)
    key = f"{metric}:joint"
    mine = np.vstack([data.X[:2, sel], np.zeros(sel.sum())])
    step = Step(key, one.law(), Points(mine, data.y[sel], np.arange(sel.sum())), [], _bounds(one),
                target_x=np.vstack([X[:2], np.zeros(len(targets))]), output=metric, label=metric,
                x_label="tokens D" if form == "nd" else "compute C",
                inputs=lambda ND: np.vstack([ND, np.zeros(np.shape(ND)[1])]))
    params = jf.params[cols]
    fitted = FitResult(one.law(), params, jf.rss, jf.converged)
    out.steps[key] = FittedStep(step, fitted, step.target_x, fitted.predict(step.target_x))
    out.fits[key] = {"law": one.law().name, "formula": one.law().formula, "source": "fit/joint.py",
                     "params": fitted.as_dict(), "converged": jf.converged, "warnings": [],
                     "param_intervals": quantile_intervals({n: P[:, c] for n, c in zip(one.names, cols)},
                                                           cfg.interval) if len(P) else {}}
    for n, c in zip(one.names, cols):
        if len(P):
            out.samples[f"param|{key}|{n}"] = P[:, c]
    runs_m = data.X[1, sel] / data.X[0, sel]
    smallest = float(data.X[0, sel].min())
    for t in targets:
        m = t.tokens / t.params
        if form != "nd" and not (runs_m.min() / 1.1 <= m <= runs_m.max() * 1.1):
            out.warnings.append(
                f"joint law of {metric}: target {t.name} is at M = {m:.3g} but variant {v.name}'s fit runs are at "
                f"M = {runs_m.min():.3g}–{runs_m.max():.3g}: the law runs along compute (its D term is not identified "
                "at one M), so it predicts the target's compute as if at the runs' M")
        ns = np.geomspace(smallest, t.params, grid)
        ys = jf.predict(np.vstack([ns, m * ns, np.full(grid, float(i))]))
        curves += [{"variant": v.name, "target": t.name, "C": 6.0 * n * m * n, "metric": metric, "predicted": y}
                   for n, y in zip(ns, ys)]
