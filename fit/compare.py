"""`ladder compare`: which of two or more variants (datasets, architectures, recipes: each its own ladder) wins at
the targets, by how much, and how sure.

Every variant is fitted by the same method (fit.registry). Its fit runs are ordered by (N, D), so where the variants'
ladders have the same cells the shared seed draws the same cells in every bootstrap resample: resample b of one
variant and resample b of another are paired, and the difference's samples are per-resample differences. The model
error the run bootstrap cannot see is sized from the difference's own misses in the method's calibration backtests
(fit.calibration), paired by cell: variants fitted on the same cells miss alike, so the RMS of a's miss minus b's is
far below the two RMS taken as independent, sqrt(σ_a² + σ_b²), which is the fallback where no miss pairs. The
difference is the bootstrap's paired difference plus a normal error of that sd, its interval the quantiles of that
mixture and P(better) its share on the better side. The decision backtests (fit the smaller sizes, predict the order
at each larger size) score P(better) against the measured order, next to ranking by the largest fitted size's own
measured value (DataDecide's single-scale rule)."""
from dataclasses import dataclass, field, replace
from itertools import combinations
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pandas as pd
from scipy.stats import norm

from fit import display
from fit.chain import FittedStep, Method, MethodOutput
from fit.config import FitConfig
from fit.errors import FitInputError
from fit.points import PointSet, is_accuracy
from fit.predict import choose_targets, predict
from fit.sources import dataset_names, load_points
from fit.targets import actual_value, at_target, resolve_targets
from ladder.core.plan import Target

GRID = 12  # points of each variant's curve from its smallest fitted N to a target, along the target's M
MIXTURE = 4000  # draws of the difference's bootstrap-plus-model-error mixture
SIZE_RTOL = 1e-2  # one ladder size: N within 1 % (its 3-significant-digit rounding is at most 0.5 % off)
REACH = (1e-3, 1e4)  # the compute multipliers searched, × the target's compute


@dataclass
class Variant:
    name: str
    ps: PointSet


@dataclass
class Comparison:
    variants: List[Variant]
    targets: List[Target]
    outputs: Dict[str, MethodOutput]
    decisions: pd.DataFrame  # one row per (target, metric, pair)
    curves: pd.DataFrame  # each variant's predictions along each target's M (variant, target, C, metric, predicted)
    paired: bool  # whether the variants' fit runs are the same cells, so that resamples pair
    backtests: pd.DataFrame = field(default_factory=pd.DataFrame)  # scored decisions of the decision backtests
    warnings: List[str] = field(default_factory=list)


def load_variants(results, fmt: str = "auto", names: List[str] = ()) -> List[Variant]:
    """A variant per dataset of one source (its CSV's `variant` column, a Gadre folder's datasets, a ladder's
    `ladder.datasets`), or per source of a list (per dataset, where one holds several)."""
    paths = [results] if isinstance(results, str) else list(results or [])
    if not paths:
        raise FitInputError("compare: say what to compare: results=PATH (its datasets are the variants) or "
                            "results=[PATH,PATH,...]")
    found = []
    for path in paths:
        datasets = dataset_names(path, fmt)
        own = Path(path).name if len(paths) > 1 else None
        if len(datasets) <= 1:
            found.append((own or (datasets[0] if datasets else Path(path).name), path, datasets[0] if datasets else None))
        else:
            found += [(f"{own}/{d}" if own else d, path, d) for d in datasets]
    if len({n for n, _, _ in found}) < len(found):  # two sources of one name: the paths tell them apart
        found = [(f"{p}" + (f"/{d}" if d and len(paths) > 1 and n.count("/") else ""), p, d) for n, p, d in found]
    twice = next((n for k, (n, _, _) in enumerate(found) if n in {m for m, _, _ in found[:k]}), None)
    if twice is not None:
        raise FitInputError(f"compare: results names {twice} twice; give each source once")
    if names:
        unknown = sorted(set(names) - {n for n, _, _ in found})
        if unknown:
            raise FitInputError(f"compare.variants: no variant {unknown[0]!r} (the data has {', '.join(n for n, _, _ in found)})")
        found = [f for f in found if f[0] in names]
    if len(found) < 2:
        raise FitInputError(f"compare: {len(found)} variant ({', '.join(n for n, _, _ in found) or 'none'}) in results="
                            f"{','.join(map(str, paths))}; compare needs two or more: results=[A,B], or one source "
                            "holding several datasets (a CSV `variant` or `dataset` column, a Gadre et al. folder)")
    return [Variant(n, load_points(p, fmt, d)) for n, p, d in found]


def common_targets(cfg: FitConfig, variants: List[Variant]) -> List[Target]:
    """The targets, the same (N, D) in every variant: the named ones (each must resolve alike everywhere), else
    the default targets (fit.predict.choose_targets) that every variant shares, named by size and M."""
    if cfg.targets:
        per = {}
        for v in variants:
            try:
                per[v.name] = resolve_targets(cfg.targets, v.ps, [])
            except FitInputError as exc:
                raise FitInputError(f"variant {v.name}: {exc}") from None
        first, ts = variants[0].name, per[variants[0].name]
        for name, other in per.items():
            for spec, a, b in zip(cfg.targets, ts, other):
                if not _same(a, b):
                    raise FitInputError(
                        f"targets: {spec} is N={a.params:.4g}, D={a.tokens:.4g} in variant {first} but N={b.params:.4g}, "
                        f"D={b.tokens:.4g} in {name}: the variants' ladders differ there; give it as "
                        f"{{name: ..., params: N, tokens: D}}")
        return [replace(t, name=spec if isinstance(spec, str) else t.name) for spec, t in zip(cfg.targets, ts)]
    per = []
    for v in variants:
        try:
            per.append(choose_targets(cfg, v.ps))
        except FitInputError as exc:
            raise FitInputError(f"variant {v.name}: {exc}") from None
    shared = [t for t in per[0] if all(any(_same(t, u) for u in other) for other in per[1:])]
    if not shared:
        raise FitInputError(f"targets: the variants share no default target (variant {variants[0].name}: "
                            f"{', '.join(t.name for t in per[0])}; {variants[1].name}: {', '.join(t.name for t in per[1])}); "
                            "name them: targets=[...]")
    return [replace(t, name=f"{display.count(t.params)}-M{t.tokens / t.params:.3g}") for t in shared]


def _same(a: Target, b: Target) -> bool:
    return bool(np.isclose(a.params, b.params, rtol=1e-3) and np.isclose(a.tokens, b.tokens, rtol=1e-2))


def ordered_runs(method: Method, ps: PointSet, targets: List[Target], include) -> List[str]:
    """The method's default fit set ordered by (N, D): the order the bootstrap's resamples index, so that variants
    of the same cells draw the same cells."""
    runs = ps.points.drop_duplicates("run").set_index("run")
    return sorted(method.default_runs(ps, targets, include), key=lambda r: (float(runs.loc[r, "params"]),
                                                                 float(runs.loc[r, "run_tokens"]), r))


def _cells(ps: PointSet, runs: List[str]):
    info = ps.points.drop_duplicates("run").set_index("run")
    return [(round(np.log(float(info.loc[r, "params"])), 3), round(np.log(float(info.loc[r, "run_tokens"])), 2))
            for r in runs]


def _shared_cells(variants: List[Variant], order: Dict[str, List[str]]) -> Optional[Dict[str, List[str]]]:
    """Each variant's fit runs at the cells (N, D) every variant has, where some variant has others: the same
    design, so that resamples pair (None where the fit sets are already the same cells)."""
    cells = {v.name: _cells(v.ps, order[v.name]) for v in variants}
    common = set.intersection(*(set(c) for c in cells.values()))
    if all(len(c) == len(common) for c in cells.values()):
        return None
    return {v: [r for r, c in zip(order[v], cells[v]) if c in common] for v in order}


def compare(variants: List[Variant], targets: List[Target], cfg: FitConfig, method: Method,
            curves: bool = True) -> Comparison:
    """Fit every variant, then every (target, metric, pair) decision; with `curves`, each variant's predictions
    along each target's M (for the crossings and the figures)."""
    order = {v.name: None if method.fixed_fit_set else ordered_runs(method, v.ps, targets, cfg.include) for v in variants}
    shared = None if method.fixed_fit_set else _shared_cells(variants, order)
    try:
        outputs = {v.name: predict(method, v.ps, targets, cfg, (shared or order)[v.name]) for v in variants}
        order = shared or order
    except FitInputError:
        if shared is None:
            raise
        outputs = {v.name: predict(method, v.ps, targets, cfg, order[v.name]) for v in variants}
    cells = [_cells(v.ps, outputs[v.name].runs) for v in variants]
    paired = all(c == cells[0] for c in cells[1:])
    curve = _curves(variants, targets, cfg, method, order, outputs) if curves else pd.DataFrame(
        columns=["variant", "target", "C", "metric", "predicted"])
    rows = []
    for t in targets:
        for metric in common_metrics(outputs, t.name):
            for a, b in combinations(variants, 2):
                rows.append(decision(t, metric, a, b, outputs, cfg, curve, method.fixed_fit_set))
    if paired and shared is not None:
        warnings = [f"compare: each variant is fitted on the {len(cells[0])} cells (N, D) that every variant has, so "
                    "that its bootstrap resamples pair with the others'; runs at other cells are left out"]
    else:
        warnings = [] if paired else [
            "compare: the variants' fit sets are not the same cells (N, D), so their bootstrap resamples do not "
            "pair: the difference's interval treats them as independent"]
    return Comparison(variants, targets, outputs, pd.DataFrame(rows), curve, paired, warnings=warnings)


def common_metrics(outputs: Dict[str, MethodOutput], target: str) -> List[str]:
    have = [{p["metric"] for p in o.predictions if p["target"] == target and np.isfinite(p["predicted"])}
            for o in outputs.values()]
    return display.order_metrics(sorted(set.intersection(*have)))


def _pred(out: MethodOutput, target: str, metric: str) -> dict:
    return next(p for p in out.predictions if p["target"] == target and p["metric"] == metric)


def model_sd(out: MethodOutput, metric: str, predicted: float) -> float:
    """The sd of the model error the method's calibration measured for this kind of metric (0 without one)."""
    rms = out.fits.get("backtest", {}).get("rms_error", {})
    kind = "absolute" if is_accuracy(metric) else "relative"
    return float(rms.get(kind, 0.0)) * (1.0 if kind == "absolute" else abs(predicted))


def paired_sd(oa: MethodOutput, ob: MethodOutput, metric: str, pa: float, pb: float) -> Optional[float]:
    """The sd of the difference's model error from the paired misses of the difference itself: each calibration
    backtest's miss of a minus b's at the same cell (backtest, N, D) and metric, pooled per kind of metric as the
    variants' own RMS is (fit.calibration.pooled_rms; a relative miss over the two measured values' mean, scaled
    back by the two predictions' mean). None where no miss of this kind pairs."""
    ma, mb = (_keyed(o.misses) for o in (oa, ob))
    if ma.empty or mb.empty:
        return None
    both = ma.join(mb, how="inner", lsuffix="_a", rsuffix="_b").dropna()
    kind = is_accuracy(metric)
    both = both[both.index.get_level_values("metric").map(is_accuracy) == kind]
    if both.empty:
        return None
    miss = (both["predicted_a"] - both["actual_a"]) - (both["predicted_b"] - both["actual_b"])
    if kind:
        return float(np.sqrt(np.mean(miss ** 2)))
    level = (both["actual_a"].abs() + both["actual_b"].abs()) / 2
    return float(np.sqrt(np.mean((miss / level) ** 2))) * (abs(pa) + abs(pb)) / 2


def _keyed(misses: pd.DataFrame) -> pd.DataFrame:
    """Misses indexed by their cell as `_cells` rounds it, so that two variants' runs of one (N, D) meet."""
    if misses.empty:
        return misses
    m = misses.assign(n=np.log(misses["params"].astype(float)).round(3), d=np.log(misses["tokens"].astype(float)).round(2))
    return m.groupby(["backtest", "n", "d", "metric"])[["predicted", "actual"]].mean()


def higher_is_better(metric: str) -> bool:
    return metric.endswith(":acc")


def difference(sa: Optional[np.ndarray], sb: Optional[np.ndarray], point: float, sd: float, interval: float,
               seed: int):
    """(lower, upper, P(a − b > 0)) of the difference a − b: its paired bootstrap samples (the point alone where
    there are none) plus a normal model error of sd `sd`."""
    d = np.array([point]) if sa is None or sb is None else sa - sb
    d = d[np.isfinite(d)]
    if not len(d) or (len(d) == 1 and sd <= 0):
        return np.nan, np.nan, np.nan
    if sd > 0:
        draws = (d[:, None] + sd * np.random.default_rng(seed).standard_normal((len(d), max(1, MIXTURE // len(d))))).ravel()
        above = float(np.mean(norm.cdf(d / sd)))
    else:
        draws, above = d, float(np.mean(d > 0) + 0.5 * np.mean(d == 0))
    q = (1 - interval) / 2
    return float(np.quantile(draws, q)), float(np.quantile(draws, 1 - q)), above


def decision(t: Target, metric: str, a: Variant, b: Variant, outputs, cfg: FitConfig, curve: pd.DataFrame,
             fixed: bool = False) -> dict:
    oa, ob = outputs[a.name], outputs[b.name]
    pa, pb = _pred(oa, t.name, metric), _pred(ob, t.name, metric)
    key = f"pred|{t.name}|{metric}"
    sd = paired_sd(oa, ob, metric, pa["predicted"], pb["predicted"])
    if sd is None:  # no paired misses: each variant's own, as independent
        sd = float(np.hypot(model_sd(oa, metric, pa["predicted"]), model_sd(ob, metric, pb["predicted"])))
    diff = pa["predicted"] - pb["predicted"]
    # A fixed fit set's bootstrap cannot refit its law on most resamples (fit.methods.gadre): its model error alone.
    sa, sb = (None, None) if fixed else (oa.samples.get(key), ob.samples.get(key))
    lo, hi, above = difference(sa, sb, diff, sd, cfg.interval, cfg.seed)
    p_a = above if higher_is_better(metric) else (np.nan if np.isnan(above) else 1 - above)
    a_wins = (diff > 0) == higher_is_better(metric)  # the point predictions name the winner
    win, lose = (a, b) if a_wins else (b, a)
    ma, mb = (actual_value(v.ps, t, metric, v.ps.profile.final_window) for v in (a, b))
    row = {"target": t.name, "params": t.params, "tokens": t.tokens, "metric": metric, "a": a.name, "b": b.name,
           "predicted_a": pa["predicted"], "lower_a": pa["lower"], "upper_a": pa["upper"],
           "predicted_b": pb["predicted"], "lower_b": pb["lower"], "upper_b": pb["upper"],
           "difference": diff, "difference_lower": lo, "difference_upper": hi, "p_a_better": p_a,
           "winner": win.name, "p_winner": p_a if a_wins else 1 - p_a,
           "measured_a": ma, "measured_b": mb, "measured_difference": ma - mb}
    row.update(multiplier(t, metric, outputs[win.name], outputs[lose.name], cfg.interval))
    row.update(crossing(curve, t.name, metric, a.name, b.name))
    return row


def loss_step(out: MethodOutput, metric: str) -> Optional[FittedStep]:
    """The step that predicts `metric` straight from (N, D) or compute, if there is one."""
    return next((f for f in out.steps.values() if f.step.output == metric and f.step.fed_by is None), None)


def _along(fs: FittedStep, t: Target, C: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The step's law at compute C along the target's M = D/N, for each row of `params` ((B, P) -> (B, len(C)))."""
    m = t.tokens / t.params
    n = np.sqrt(C / (6 * m))
    ND = np.vstack([n, m * n])
    X = ND if fs.step.inputs is None else fs.step.inputs(ND)
    with np.errstate(all="ignore"):
        return fs.step.output_of(fs.fit.law.f(np.asarray(X, float), params.T[..., None]))


def multiplier(t: Target, metric: str, better: MethodOutput, worse: MethodOutput, interval: float) -> dict:
    """For a loss: the compute the worse variant needs, along the target's M, to reach the better one's
    predicted loss at the target, as a multiple of the target's compute (from its own fitted law; per resample,
    paired, for the interval). NaN where the method fits no law of it in (N, D); REACH's top where it is not
    reached within it."""
    nan = {"compute_multiplier": np.nan, "multiplier_lower": np.nan, "multiplier_upper": np.nan}
    fs = loss_step(worse, metric)
    if is_accuracy(metric) or fs is None:
        return nan
    c_t = float(display.compute(t.params, t.tokens))
    grid = c_t * np.geomspace(REACH[0], REACH[1], 400)
    goal = _pred(better, t.name, metric)["predicted"]

    def solve(P, L):
        F = _along(fs, t, grid, P)  # decreasing in C
        below = F <= L[:, None]
        i = np.where(below.any(1), below.argmax(1), len(grid) - 1)
        j = np.maximum(i - 1, 0)
        f0, f1 = F[np.arange(len(F)), j], F[np.arange(len(F)), i]
        with np.errstate(divide="ignore", invalid="ignore"):  # f0 == f1 is not used
            w = np.where(f0 != f1, (f0 - L) / (f0 - f1), 0.0)
        logc = np.log(grid[j]) + np.clip(w, 0, 1) * (np.log(grid[i]) - np.log(grid[j]))
        out = np.exp(logc) / c_t
        return np.where(np.isfinite(F).all(1), out, np.nan)

    point = float(solve(fs.fit.params[None, :], np.array([goal]))[0])
    keys = [f"param|{fs.step.key}|{k}" for k in fs.fit.law.params]
    goals = better.samples.get(f"pred|{t.name}|{metric}")
    if goals is None or not all(k in worse.samples for k in keys):
        return {**nan, "compute_multiplier": point}
    P = np.column_stack([worse.samples[k] for k in keys])
    ok = np.all(np.isfinite(P), 1) & np.isfinite(goals)
    if ok.sum() < 2:
        return {**nan, "compute_multiplier": point}
    m = solve(P[ok], goals[ok])
    q = (1 - interval) / 2
    return {"compute_multiplier": point, "multiplier_lower": float(np.nanquantile(m, q)),
            "multiplier_upper": float(np.nanquantile(m, 1 - q))}


def _curves(variants, targets, cfg, method, order, outputs) -> pd.DataFrame:
    """Each variant's predictions at GRID points from its smallest fitted N to each target along the target's M,
    by the same method on the same runs (no bootstrap)."""
    quiet = replace(cfg, bootstrap=0, calibrate=False)
    rows = []
    for v in variants:
        info = v.ps.points.drop_duplicates("run").set_index("run")
        smallest = float(info.loc[outputs[v.name].runs, "params"].min())
        grid = []
        for t in targets:
            m = t.tokens / t.params
            grid += [Target(f"{t.name}@{i}", n, m * n) for i, n in enumerate(np.geomspace(smallest, t.params, GRID))]
        try:
            out = method(v.ps, grid, quiet, runs=order[v.name])
        except FitInputError:
            continue
        rows += [{"variant": v.name, "target": p["target"].rsplit("@", 1)[0], "C": 6.0 * p["params"] * p["tokens"],
                  "metric": p["metric"], "predicted": p["predicted"]} for p in out.predictions]
    return pd.DataFrame(rows, columns=["variant", "target", "C", "metric", "predicted"])


def crossing(curve: pd.DataFrame, target: str, metric: str, a: str, b: str) -> dict:
    """Where the fitted curves of a and b cross between the smallest fitted size and the target (the compute
    of the last crossing, interpolated in log C), and whether the order at the target differs from the order at
    the ladder's end of the curve: the decision changes with scale."""
    c = curve[(curve["target"] == target) & (curve["metric"] == metric)]
    ca, cb = (c[c["variant"] == v].sort_values("C") for v in (a, b))
    if len(ca) != GRID or len(cb) != GRID:
        return {"crossing_C": np.nan, "changes_with_scale": False}
    d = ca["predicted"].to_numpy() - cb["predicted"].to_numpy()
    logc = np.log(np.sqrt(ca["C"].to_numpy() * cb["C"].to_numpy()))
    flips = np.flatnonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)
    if not len(flips):
        return {"crossing_C": np.nan, "changes_with_scale": False}
    i = flips[-1]
    at = logc[i] + (logc[i + 1] - logc[i]) * d[i] / (d[i] - d[i + 1])
    return {"crossing_C": float(np.exp(at)), "changes_with_scale": bool(np.sign(d[0]) != np.sign(d[-1]))}


def decision_backtests(variants: List[Variant], cfg: FitConfig, method: Method) -> pd.DataFrame:
    """For each size of the ladders (common to every variant) with at least three smaller sizes: fit every variant
    on the smaller sizes, predict each of its runs at that size, and score each pair's decision against the
    measured order; `baseline_winner` ranks by the measured value at the largest fitted size (at the M nearest
    the target's)."""
    # Sizes to 3 significant digits (a smoke ladder's N is 14,336, an OLMo one's 1.18e9), matched within 1 %.
    sizes = [sorted({float(f"{float(n):.3g}") for n in v.ps.points["params"]}) for v in variants]
    common = [s for s in sizes[0] if all(any(np.isclose(s, u, rtol=SIZE_RTOL) for u in other) for other in sizes[1:])]
    rows = []
    for k, size in enumerate(common):
        if k < 3:
            continue
        runs = variants[0].ps.points.drop_duplicates("run")
        at = runs[np.isclose(runs["params"].astype(float), size, rtol=SIZE_RTOL)]
        targets = [Target(f"{display.count(size)}-M{float(r.run_tokens) / float(r.params):.3g}", float(r.params),
                          float(r.run_tokens)) for r in at.itertuples()]
        targets = [t for t in targets if all(_has_run(v.ps, t) for v in variants[1:])]
        if not targets:
            continue
        try:
            comp = compare(variants, targets, cfg, method, curves=False)
        except FitInputError:
            continue
        fitted = max(float(v.ps.points.set_index("run").loc[comp.outputs[v.name].runs, "params"].max())
                     for v in variants)
        if size <= fitted * (1 + SIZE_RTOL):  # a fixed fit set reaching this size: no extrapolation to score
            continue
        d = comp.decisions.assign(held_size=size, fitted_size=fitted)
        d["baseline_winner"] = [_baseline(variants, r, fitted) for r in d.itertuples()]
        rows.append(d)
    if not rows:
        return pd.DataFrame()
    d = pd.concat(rows, ignore_index=True)
    d = d[np.isfinite(d["measured_difference"]) & (d["measured_difference"] != 0)].copy()
    a_better = (d["measured_difference"] > 0) == d["metric"].map(higher_is_better)
    d["measured_winner"] = np.where(a_better, d["a"], d["b"])
    d["inside"] = (d["difference_lower"] <= d["measured_difference"]) & (d["measured_difference"] <= d["difference_upper"])
    d["brier"] = (d["p_a_better"] - a_better.astype(float)) ** 2
    return d.reset_index(drop=True)


def _has_run(ps: PointSet, t: Target) -> bool:
    return bool(at_target(ps.points, t).any())


def _baseline(variants: List[Variant], r, fitted: float) -> str:
    """The single-scale rule: the variant whose run at the largest fitted size, at the M nearest the target's,
    measured better."""
    m = r.tokens / r.params
    value = {}
    for v in variants:
        p = v.ps.points
        runs = p[np.isclose(p["params"].astype(float), fitted, rtol=1e-3) & (p["metric"] == r.metric)]
        if runs.empty:
            return ""
        mults = runs["run_tokens"].astype(float) / runs["params"].astype(float)
        run = runs.loc[(np.log(mults) - np.log(m)).abs().idxmin(), "run"]
        value[v.name] = runs[runs["run"] == run].sort_values("tokens")["value"].tail(v.ps.profile.final_window).mean()
    a, b = value[r.a], value[r.b]
    return r.a if (a > b) == higher_is_better(r.metric) else r.b


def backtest_summary(d: pd.DataFrame) -> pd.DataFrame:
    """Per kind of metric and over all: decisions, the law's decision accuracy and Brier score, the baseline's,
    and how often the difference's interval covered the measured difference."""
    if d.empty:
        return pd.DataFrame()
    groups = [(display.kind_title(k), g) for k, g in d.groupby(d["metric"].map(display.kind))] + [("all", d)]
    rows = []
    for name, g in groups:
        base = g[g["baseline_winner"] != ""]
        rows.append({"metrics": name, "decisions": len(g), "law_accuracy": float((g["winner"] == g["measured_winner"]).mean()),
                     "law_brier": float(g["brier"].mean()),
                     "baseline_accuracy": float((base["baseline_winner"] == base["measured_winner"]).mean())
                     if len(base) else np.nan,
                     "baseline_brier": float((base["baseline_winner"] != base["measured_winner"]).mean())
                     if len(base) else np.nan,
                     "coverage": float(g["inside"].mean())})
    return pd.DataFrame(rows)
