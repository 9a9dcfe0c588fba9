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
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
from scipy.stats import norm

from fit import display
from fit.chain import FittedStep, Method, MethodOutput
from fit.config import FitConfig
from fit.errors import FitInputError
from fit.joint import fit_losses, loss_metrics
from fit.points import PointSet, is_accuracy
from fit.predict import choose_targets, predict
from fit.runs import fit_runs
from fit.sources import dataset_names, load_points
from fit.targets import actual_value, resolve_targets
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
    notes: List[str] = field(default_factory=list)  # how the numbers were made: the joint law's form and test


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
    return [Variant(n, _points_of(n, p, fmt, d)) for n, p, d in found]


def _points_of(name: str, path, fmt: str, dataset) -> PointSet:
    """A variant's points; what is wrong with them said with the variant's name (an all-NaN one, say)."""
    try:
        return load_points(path, fmt, dataset)
    except FitInputError as exc:
        raise FitInputError(f"variant {name}: {exc}") from None


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
    if not shared and len({len(p) for p in per}) > 1:
        raise FitInputError(f"targets: the variants share no default target (variant {variants[0].name}: "
                            f"{', '.join(t.name for t in per[0])}; {variants[1].name}: {', '.join(t.name for t in per[1])}); "
                            "name them: targets=[...]")
    if not shared:  # sizes that differ between variants (an architecture ablation): each variant's own, by rank
        return [replace(t, name=f"~{_size_name(variants, t)}-M{t.tokens / t.params:.3g}") for t in per[0]]
    return [replace(t, name=f"{_size_name(variants, t)}-M{t.tokens / t.params:.3g}") for t in shared]


def _size_name(variants: List[Variant], t: Target) -> str:
    """The name the first variant's data gives the target's size (`smoke-64`, `1.4B`), else its N (`214K`)."""
    runs = variants[0].ps.points.drop_duplicates("run")
    at = runs[np.isclose(runs["params"].astype(float), t.params, rtol=1e-3)]["size"].dropna().astype(str)
    named = [n for n in at.unique() if n and n.lower() != "nan"]
    return named[0] if len(named) == 1 else display.count(t.params)


def own_targets(cfg: FitConfig, variants: List[Variant], targets: List[Target]) -> Optional[Dict[str, List[Target]]]:
    """Each variant's own version of the default targets where their N differ (`common_targets` named them by rank:
    the k-th default target of each variant, its own run), else None."""
    if cfg.targets or all(any(_same(t, u) for u in choose_targets(cfg, v.ps)) for v in variants for t in targets):
        return None
    return {v.name: [replace(u, name=t.name) for t, u in zip(targets, choose_targets(cfg, v.ps))] for v in variants}


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
    design, so that resamples pair (None where the fit sets are already the same cells, or share none)."""
    cells = {v.name: _cells(v.ps, order[v.name]) for v in variants}
    common = set.intersection(*(set(c) for c in cells.values()))
    if not common or all(len(c) == len(common) for c in cells.values()):
        return None
    return {v: [r for r, c in zip(order[v], cells[v]) if c in common] for v in order}


def _by_method(variants, at, cfg, method) -> tuple:
    """(outputs, fit runs, warnings) of the method on every variant: on the cells every variant shares where they
    differ (so that resamples pair), else, or where the method refuses so few, each on its own runs."""
    def run(runs):
        out = {}
        for v in variants:
            try:
                out[v.name] = predict(method, v.ps, at[v.name], cfg, runs[v.name])
            except FitInputError as exc:
                raise FitInputError(f"variant {v.name}: {exc}") from None
        return out

    order = {v.name: None if method.fixed_fit_set else ordered_runs(method, v.ps, at[v.name], cfg.include)
             for v in variants}
    shared = None if method.fixed_fit_set else _shared_cells(variants, order)
    if shared is not None:
        try:
            return run(shared), shared, [
                f"compare: each variant is fitted on the {len(next(iter(shared.values())))} cells (N, D) that every "
                "variant has, so that its bootstrap resamples pair with the others'; runs at other cells are left out"]
        except FitInputError as exc:
            said = (f"compare: on the cells (N, D) every variant has, {exc}; each variant is fitted on its own runs "
                    "instead")
            outputs = run(order)
            return outputs, order, [said]
    return run(order), order, []


def compare(variants: List[Variant], targets: List[Target], cfg: FitConfig, method: Method,
            curves: bool = True, joint: bool = False, own: Optional[Dict[str, List[Target]]] = None,
            separate: bool = False) -> Comparison:
    """Fit every variant, then every (target, metric, pair) decision; with `curves`, each variant's predictions
    along each target's M (for the crossings and the figures). `joint`: the losses by one law over all variants
    (fit.joint), the other metrics by the method. `own`: each variant's own version of each target (the same
    names), where the variants' sizes differ (the decision backtests' rank-paired sizes). `separate`: the joint
    path with a line per variant instead of one law (scripts/backtest_compare.py's baseline)."""
    at = own or {v.name: targets for v in variants}
    _refuse_copies(variants)
    warnings, notes, jr = [], [], None
    if joint:
        runs = {v.name: fit_runs(v.ps, at[v.name], cfg.include) for v in variants}
        metrics = loss_metrics(variants, runs)
        if metrics:
            jr = fit_losses(variants, at, cfg, runs, metrics, GRID, separate)
            notes += jr.notes
    try:
        outputs, order, said = _by_method(variants, at, cfg, method)
        warnings += said
    except FitInputError as exc:
        if jr is None:
            raise
        outputs, order = None, None
        warnings.append(f"compare: {method.name} gives no prediction of its own ({exc}); only the losses fitted by "
                        "one law over all variants are compared")
    joint_metrics = set(jr.metrics) if jr else set()
    paired = True
    if outputs is not None and not method.fixed_fit_set:
        cells = [_cells(v.ps, outputs[v.name].runs) for v in variants]
        paired = all(c == cells[0] for c in cells[1:])
        if not paired:
            warnings.append(f"compare: the variants' fit sets for {method.name} are not the same cells (N, D), so "
                            "their bootstrap resamples do not pair: the difference's interval treats them as "
                            "independent" + (" (the joint law's losses pair: one resample draws every variant's "
                                             "runs)" if jr else ""))
    missing: Dict[str, str] = {}
    frames = [jr.curves] if jr is not None else []
    if curves and outputs is not None:
        curve, missing = _curves(variants, at, cfg, method, order, outputs)
        frames.append(curve[~curve["metric"].isin(joint_metrics)])
    curve = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["variant", "target", "C", "metric", "predicted"])
    rows = []
    for i, t in enumerate(targets):
        sources = []
        if jr is not None:
            sources += [(m, jr.outputs, False) for m in common_metrics(jr.outputs, t.name)]
        if outputs is not None:
            sources += [(m, outputs, method.fixed_fit_set) for m in common_metrics(outputs, t.name)
                        if m not in joint_metrics]
        for metric, outs, fixed in sources:
            for a, b in combinations(variants, 2):
                rows.append({**decision(t, metric, a, b, outs, cfg, curve, fixed, (at[a.name][i], at[b.name][i]),
                                        missing if curves else None),
                             "fitted_by": "joint" if jr is not None and outs is jr.outputs else method.name})
    merged = {v.name: _merged(outputs and outputs[v.name], jr and jr.outputs[v.name], joint_metrics) for v in variants}
    comp = Comparison(variants, targets, merged, pd.DataFrame(rows), curve, paired, warnings=warnings, notes=notes)
    _refuse_unmoved(comp)
    return comp


def _merged(method_out: Optional[MethodOutput], joint_out: Optional[MethodOutput], joint_metrics) -> MethodOutput:
    """One variant's outputs for the report: the joint law's metrics, then the method's others."""
    if method_out is None:
        return joint_out
    if joint_out is None:
        return method_out
    theirs = {k: s for k, s in method_out.steps.items() if s.step.output not in joint_metrics}
    return replace(method_out, predictions=joint_out.predictions + [p for p in method_out.predictions
                                                                    if p["metric"] not in joint_metrics],
                   warnings=joint_out.warnings + method_out.warnings, notes=joint_out.notes + method_out.notes,
                   steps={**theirs, **joint_out.steps}, samples={**method_out.samples, **joint_out.samples})


def _refuse_copies(variants: List[Variant]) -> None:
    """Two variants holding the same points (a source and a copy of it under another name) have nothing to tell
    apart: a refusal, never "predicted equal" with a compute multiplier."""
    def key(v):
        p = v.ps.points
        return p[["params", "tokens", "metric", "value"]].astype({"metric": str}).sort_values(
            ["metric", "params", "tokens", "value"]).to_numpy()
    seen = []
    for v in variants:
        k = key(v)
        for w, kw in seen:
            if k.shape == kw.shape and all(np.array_equal(a, b) for a, b in zip(k.T, kw.T)):
                raise FitInputError(f"compare: variants {w} and {v.name} hold identical points (the same runs, the "
                                    "same values: a copy?); there is nothing to compare between them")
        seen.append((v.name, k))


def _refuse_unmoved(comp: Comparison) -> None:
    """Two variants predicted exactly equal from runs that differ: the fits did not read the data (e.g. a law
    left at its start values), which would read as "predicted equal". Refused, with the fits' first warning."""
    d = comp.decisions
    if d.empty:
        return
    same = d[(d["predicted_a"] == d["predicted_b"]) & (d["fitted_by"] != "joint")]
    for r in same.itertuples():
        warned = comp.outputs[r.a].warnings  # the likeliest reason first: of this metric, then a failed fit
        said = min(warned, key=lambda w: (r.metric not in w, "fail" not in w and "converge" not in w),
                   default="no warning")
        raise FitInputError(f"compare: {r.a} and {r.b} are predicted exactly equal ({display.named(r.metric)} at "
                            f"{r.target}) though their runs differ: the fits did not read the data ({said})")


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
    """Misses indexed by their cell as `_cells` rounds it, so that two variants' runs of one (N, D) meet (or by
    their `pair` key where they carry one)."""
    if misses.empty:
        return misses
    if "pair" in misses.columns:  # the joint law's: paired by each run's place in its variant (fit.joint.backtests)
        return misses.groupby(["backtest", "pair", "metric"])[["predicted", "actual"]].mean()
    m = misses.assign(n=np.log(misses["params"].astype(float)).round(3), d=np.log(misses["tokens"].astype(float)).round(2))
    return m.groupby(["backtest", "n", "d", "metric"])[["predicted", "actual"]].mean()


def higher_is_better(metric: str) -> bool:
    return metric.endswith(":acc")


@dataclass
class Draws:
    """The difference a − b's mixture: each draw a paired bootstrap resample (-1: the point predictions, where there
    are no samples) plus a normal model error. The compute multiplier is solved on the same draws, so that its
    interval and the difference's are one answer: 1× lies inside the one where 0 lies inside the other."""
    resample: np.ndarray  # the resample of each draw (-1: the point)
    error: np.ndarray  # its model error, added to a − b
    values: np.ndarray  # a − b of each draw


def difference(sa: Optional[np.ndarray], sb: Optional[np.ndarray], point: float, sd: float, interval: float,
               seed: int):
    """(lower, upper, P(a − b > 0), draws) of the difference a − b: its paired bootstrap samples (the point alone
    where there are none) plus a normal model error of sd `sd`; `draws` None where there is nothing to draw."""
    d = np.array([point]) if sa is None or sb is None else sa - sb
    index = np.array([-1]) if sa is None or sb is None else np.arange(len(d))
    keep = np.isfinite(d)
    d, index = d[keep], index[keep]
    if not len(d) or (len(d) == 1 and sd <= 0):
        return np.nan, np.nan, np.nan, None
    if sd > 0:
        error = sd * np.random.default_rng(seed).standard_normal((len(d), max(1, MIXTURE // len(d))))
        draws = Draws(np.repeat(index, error.shape[1]), error.ravel(), (d[:, None] + error).ravel())
        above = float(np.mean(norm.cdf(d / sd)))
    else:
        draws, above = Draws(index, np.zeros(len(d)), d), float(np.mean(d > 0) + 0.5 * np.mean(d == 0))
    q = (1 - interval) / 2
    return float(np.quantile(draws.values, q)), float(np.quantile(draws.values, 1 - q)), above, draws


def decision(t: Target, metric: str, a: Variant, b: Variant, outputs, cfg: FitConfig, curve: pd.DataFrame,
             fixed: bool = False, own: Optional[tuple] = None, missing: Optional[Dict[str, str]] = None) -> dict:
    """One (target, metric, pair) decision. `own`: a's and b's own versions of the target (where their sizes
    differ), for their measured values; `missing`: why a variant has no curve (None: no curves were asked for)."""
    oa, ob = outputs[a.name], outputs[b.name]
    pa, pb = _pred(oa, t.name, metric), _pred(ob, t.name, metric)
    key = f"pred|{t.name}|{metric}"
    sd = paired_sd(oa, ob, metric, pa["predicted"], pb["predicted"])
    if sd is None:  # no paired misses: each variant's own, as independent
        sd = float(np.hypot(model_sd(oa, metric, pa["predicted"]), model_sd(ob, metric, pb["predicted"])))
    diff = pa["predicted"] - pb["predicted"]
    # A fixed fit set's bootstrap cannot refit its law on most resamples (fit.methods.gadre): its model error alone.
    sa, sb = (None, None) if fixed else (oa.samples.get(key), ob.samples.get(key))
    lo, hi, above, draws = difference(sa, sb, diff, sd, cfg.interval, cfg.seed)
    p_a = above if higher_is_better(metric) else (np.nan if np.isnan(above) else 1 - above)
    a_wins = (diff > 0) == higher_is_better(metric)  # the point predictions name the winner
    win, lose = (a, b) if a_wins else (b, a)
    ta, tb = own or (t, t)
    ma, mb = (actual_value(v.ps, u, metric, v.ps.profile.final_window) for v, u in ((a, ta), (b, tb)))
    row = {"target": t.name, "params": t.params, "tokens": t.tokens, "metric": metric, "a": a.name, "b": b.name,
           "predicted_a": pa["predicted"], "lower_a": pa["lower"], "upper_a": pa["upper"],
           "predicted_b": pb["predicted"], "lower_b": pb["lower"], "upper_b": pb["upper"],
           "difference": diff, "difference_lower": lo, "difference_upper": hi, "p_a_better": p_a,
           "winner": win.name, "p_winner": p_a if a_wins else 1 - p_a,
           "measured_a": ma, "measured_b": mb, "measured_difference": ma - mb}
    # the compute the worse variant needs, as a multiple of the better one's at its own version of the target
    row.update(multiplier(ta if win is a else tb, metric, outputs[win.name], outputs[lose.name], cfg.interval,
                          draws, win is a))
    ends = [float(v.ps.points.set_index("run").loc[outputs[v.name].runs, "params"].max()) for v in (a, b)
            if outputs[v.name].runs]
    m = t.tokens / t.params
    row.update(crossing(curve, t.name, metric, a.name, b.name, missing,
                        6.0 * m * max(ends) ** 2 if ends else None))
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


def multiplier(t: Target, metric: str, better: MethodOutput, worse: MethodOutput, interval: float,
               draws: Optional[Draws] = None, better_is_a: bool = True) -> dict:
    """For a loss: the compute the worse variant needs, along the target's M, to reach the better one's
    predicted loss at the target, as a multiple of the target's compute (from its own fitted law). Its interval is
    solved on the difference's own draws (`difference`): per draw, the worse variant's law of that resample (its
    point law for a draw of the point) reaching the better one's prediction of that resample moved by the draw's
    model error, so that 1× lies inside it exactly where 0 lies inside the difference's interval. NaN where the
    method fits no law of it in (N, D); REACH's top where it is not reached within it."""
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
    if draws is None:
        return {**nan, "compute_multiplier": point}
    P, L = np.tile(fs.fit.params, (len(draws.resample), 1)), np.full(len(draws.resample), float(goal))
    sampled = draws.resample >= 0
    if sampled.any():
        keys = [f"param|{fs.step.key}|{k}" for k in fs.fit.law.params]
        goals = better.samples.get(f"pred|{t.name}|{metric}")
        if goals is None or not all(k in worse.samples for k in keys):
            return {**nan, "compute_multiplier": point}
        P[sampled] = np.column_stack([worse.samples[k] for k in keys])[draws.resample[sampled]]
        L[sampled] = goals[draws.resample[sampled]]
    # the draw's error is added to a − b: the better one's goal moves with it where it is a, against it where it is b
    L = L + (draws.error if better_is_a else -draws.error)
    ok = np.all(np.isfinite(P), 1) & np.isfinite(L)
    if ok.sum() < 2:
        return {**nan, "compute_multiplier": point}
    m = solve(P[ok], L[ok])
    q = (1 - interval) / 2
    return {"compute_multiplier": point, "multiplier_lower": float(np.nanquantile(m, q)),
            "multiplier_upper": float(np.nanquantile(m, 1 - q))}


def _curves(variants, at, cfg, method, order, outputs) -> Tuple[pd.DataFrame, Dict[str, str]]:
    """Each variant's predictions at GRID points from its smallest fitted N to each target along the target's M,
    by the same method on the same runs (no bootstrap); and, per variant whose curves could not be fitted, why."""
    quiet = replace(cfg, bootstrap=0, calibrate=False)
    rows, missing = [], {}
    for v in variants:
        info = v.ps.points.drop_duplicates("run").set_index("run")
        smallest = float(info.loc[outputs[v.name].runs, "params"].min())
        grid = []
        for t in at[v.name]:
            m = t.tokens / t.params
            grid += [Target(f"{t.name}@{i}", n, m * n) for i, n in enumerate(np.geomspace(smallest, t.params, GRID))]
        try:
            out = method(v.ps, grid, quiet, runs=order[v.name])
        except FitInputError as exc:
            missing[v.name] = str(exc)
            continue
        rows += [{"variant": v.name, "target": p["target"].rsplit("@", 1)[0], "C": 6.0 * p["params"] * p["tokens"],
                  "metric": p["metric"], "predicted": p["predicted"]} for p in out.predictions]
    return pd.DataFrame(rows, columns=["variant", "target", "C", "metric", "predicted"]), missing


def crossing(curve: pd.DataFrame, target: str, metric: str, a: str, b: str,
             missing: Optional[Dict[str, str]] = None, ladder_end: Optional[float] = None) -> dict:
    """Where the fitted curves of a and b cross between the ladder's largest fitted compute along the target's M
    (`ladder_end`; the curves' start where None) and the target (the compute of the last crossing, interpolated in
    log C), and whether the order at the target differs from the order there: the decision changes with scale. A
    crossing inside the ladder is what the ladder's own runs already show, not a change beyond it. A crossing that
    cannot be computed says why in `crossing_note` (`missing`: the curve fits that failed; None where no curves
    were asked for)."""
    none = {"crossing_C": np.nan, "changes_with_scale": False, "crossing_note": ""}
    c = curve[(curve["target"] == target) & (curve["metric"] == metric)]
    ca, cb = (c[c["variant"] == v].sort_values("C") for v in (a, b))
    if len(ca) != GRID or len(cb) != GRID:
        if missing is None:
            return none
        why = "; ".join(f"{v}'s curve: {missing[v]}" for v in (a, b) if v in missing) or (
            f"{a if len(ca) != GRID else b}'s fitted curve does not reach {target}")
        return {**none, "crossing_note": f"crossing not computed ({why})"}
    d = ca["predicted"].to_numpy() - cb["predicted"].to_numpy()
    if not np.all(np.isfinite(d)):
        return {**none, "crossing_note": "crossing not computed (a fitted curve is not finite along the way)"}
    logc = np.log(np.sqrt(ca["C"].to_numpy() * cb["C"].to_numpy()))
    if ladder_end is not None:  # the difference at the ladder's end, interpolated in log C, then the rest
        start = np.log(ladder_end)
        keep = logc > start
        d0 = np.interp(start, logc, d)
        logc, d = np.append(start, logc[keep]), np.append(d0, d[keep])
    flips = np.flatnonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)
    if not len(flips):
        return none
    i = flips[-1]
    at = logc[i] + (logc[i + 1] - logc[i]) * d[i] / (d[i] - d[i + 1])
    return {**none, "crossing_C": float(np.exp(at)), "changes_with_scale": bool(np.sign(d[0]) != np.sign(d[-1]))}


def paired_sizes(variants: List[Variant]) -> Tuple[List[List[float]], str]:
    """The ladders' sizes as one list per variant, the k-th entries paired: the same size (N within 1 %) where
    every variant has it, else, where the variants' N differ (an architecture ablation), the k-th size of each
    variant (by rank); and the line that says which."""
    # Sizes to 3 significant digits (a smoke ladder's N is 14,336, an OLMo one's 1.18e9), matched within 1 %.
    sizes = [sorted({float(f"{float(n):.3g}") for n in v.ps.points["params"]}) for v in variants]
    common = [s for s in sizes[0] if all(any(np.isclose(s, u, rtol=SIZE_RTOL) for u in other) for other in sizes[1:])]
    if len(common) == min(len(s) for s in sizes):
        per = [[next(u for u in s if np.isclose(c, u, rtol=SIZE_RTOL)) for c in common] for s in sizes]
        return per, "sizes paired by N (within 1 %)"
    k = min(len(s) for s in sizes)
    return [s[:k] for s in sizes], (
        f"sizes paired by rank (the k-th size of each variant), as the variants' N differ by more than 1 % at a size "
        f"(their {k} smallest sizes: " + "; ".join(f"{v.name} {', '.join(display.count(x) for x in s[:k])}"
                                                   for v, s in zip(variants, sizes)) + ")")


def decision_backtests(variants: List[Variant], cfg: FitConfig, method: Method, joint: bool = False) -> pd.DataFrame:
    """For each size of the ladders (paired across variants by `paired_sizes`) with enough smaller sizes (three
    for a method's own fits, two for the joint law, which shares its shape over the variants): fit every variant on
    the smaller sizes, predict each of its runs at that size, and score each pair's decision against the measured
    order; `baseline_winner` ranks by the measured value at each variant's largest fitted size (at the M nearest
    the target's). `attrs["pairing"]` says how the sizes were paired, `attrs["skipped"]` which held-out sizes could
    not be fitted, and why."""
    per, pairing = paired_sizes(variants)
    rows, skipped = [], []
    for k in range(3 if not joint else 2, len(per[0])):
        runs = variants[0].ps.points.drop_duplicates("run")
        at = runs[np.isclose(runs["params"].astype(float), per[0][k], rtol=SIZE_RTOL)]
        targets = [Target(f"{display.count(per[0][k])}-M{float(r.run_tokens) / float(r.params):.3g}", float(r.params),
                          float(r.run_tokens)) for r in at.itertuples()]
        own = {v.name: [_run_near(v.ps, s[k], t.tokens / t.params) for t in targets] for v, s in zip(variants, per)}
        keep = [i for i in range(len(targets)) if all(own[v.name][i] is not None for v in variants)]
        targets = [targets[i] for i in keep]
        own = {n: [replace(ts[i], name=targets[j].name) for j, i in enumerate(keep)] for n, ts in own.items()}
        if not targets:
            continue
        try:
            comp = compare(variants, targets, cfg, method, curves=False, joint=joint, own=own)
        except FitInputError as exc:
            skipped.append(f"held-out size {display.count(per[0][k])} skipped: {exc}")
            continue
        fitted = {v.name: float(v.ps.points.set_index("run").loc[comp.outputs[v.name].runs, "params"].max())
                  for v in variants}
        if any(s[k] <= fitted[v.name] * (1 + SIZE_RTOL) for v, s in zip(variants, per)):
            continue  # a fixed fit set reaching this size: no extrapolation to score
        d = comp.decisions.assign(held_size=per[0][k], fitted_size=max(fitted.values()))
        d["baseline_winner"] = [_baseline(variants, r, fitted) for r in d.itertuples()]
        rows.append(d)
    if not rows:
        return _with_pairing(pd.DataFrame(), pairing, skipped)
    d = pd.concat(rows, ignore_index=True)
    d = d[np.isfinite(d["measured_difference"]) & (d["measured_difference"] != 0)].copy()
    a_better = (d["measured_difference"] > 0) == d["metric"].map(higher_is_better)
    d["measured_winner"] = np.where(a_better, d["a"], d["b"])
    d["inside"] = (d["difference_lower"] <= d["measured_difference"]) & (d["measured_difference"] <= d["difference_upper"])
    d["brier"] = (d["p_a_better"] - a_better.astype(float)) ** 2
    return _with_pairing(d.reset_index(drop=True), pairing, skipped)


def _with_pairing(d: pd.DataFrame, pairing: str, skipped: List[str]) -> pd.DataFrame:
    d.attrs["pairing"], d.attrs["skipped"] = pairing, skipped
    return d


def _run_near(ps: PointSet, size: float, m: float) -> Optional[Target]:
    """The variant's run at `size` whose M is within 10 % of `m` (None where it has none)."""
    runs = ps.points.drop_duplicates("run")
    at = runs[np.isclose(runs["params"].astype(float), size, rtol=SIZE_RTOL)]
    mult = at["run_tokens"].astype(float) / at["params"].astype(float)
    near = at[np.abs(np.log(mult / m)) < np.log(1.1)]
    if near.empty:
        return None
    r = near.iloc[int(np.argmin(np.abs(np.log(mult[near.index] / m))))]
    return Target(str(r["run"]), float(r["params"]), float(r["run_tokens"]))


def _baseline(variants: List[Variant], r, fitted: Dict[str, float]) -> str:
    """The single-scale rule: the variant whose run at its largest fitted size, at the M nearest the target's,
    measured better."""
    m = r.tokens / r.params
    value = {}
    for v in variants:
        p = v.ps.points
        runs = p[np.isclose(p["params"].astype(float), fitted[v.name], rtol=1e-3) & (p["metric"] == r.metric)]
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
