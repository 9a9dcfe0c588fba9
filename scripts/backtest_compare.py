"""Decision backtests of `ladder compare` on the ablations issue 32 names: which variant is better at a larger size,
from 3 sizes per variant, by the joint law (fit/joint.py), by a log L-log C line per variant (separate fits) and by
DataDecide's single-scale rule (rank by the measured value at the largest trained size).

    python scripts/backtest_compare.py [draws] [bootstrap]

- synthetic: 9 variants drawn from a known law L_v = E + A_v/N^α_v + B/D^β (A_v within ±8 %, then ±2 %,
  α_v = 0.34 ± 0.01),
  3 sizes at M = 80, N of each variant jittered 10-20 % (up or down), run noise the OLMo ladder's seed spread
  (`seed_spread`: its four 1xC reruns), the truth at the next size (2.5× the largest nominal size, same N for all);
- the OLMo ladder cut to 3 sizes at M = 20, its 1xC runs against their reruns (a null comparison: seed noise);
- Gadre et al.'s two datasets (C4, RedPajama) as variants at M = 20, cut to their 3 smallest sizes, predicting each
  larger size at M = 20 on every validation loss.
Scores per pair: decision accuracy, the paired 90 % interval's coverage of the true (measured) difference, and the
Brier score of P(better); the baseline's Brier is its error rate (it says 0 or 1). Results: docs/fit.md."""
import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: fit, ladder, scripts

from fit.compare import Variant, compare, load_variants  # noqa: E402
from fit.config import FitConfig  # noqa: E402
from fit.registry import METHODS  # noqa: E402
from fit.sources import load_points  # noqa: E402
from fit.targets import actual_value  # noqa: E402
from ladder.core.plan import Target  # noqa: E402
from scripts.shared_data import shared_data_dir  # noqa: E402

SIZES = (2e7, 5e7, 1.2e8)  # nominal sizes of the synthetic ablation
M = 80
NEXT = 3e8  # its truth's size


def seed_spread(olmo: Path) -> float:
    """The relative sd of one run's final C4 loss across seeds: the OLMo ladder's 1xC runs and their reruns."""
    ps = load_points(str(olmo))
    p = ps.points[ps.points["metric"] == "c4_en:loss"]
    final = p.sort_values("tokens").groupby("run").tail(5).groupby("run")["value"].mean()
    rel = [(final[f"{s}-1xC-rerun"] - final[f"{s}-1xC"]) / final[f"{s}-1xC"] for s in ("190M", "370M", "760M", "1B")]
    return float(np.sqrt(np.mean(np.square(rel)) / 2))  # a difference of two runs has twice one run's variance


def ablation(seed: int, noise: float, variants: int = 9, spread: float = 0.08):
    """(rows of a compare CSV, the true loss of each variant at the target (NEXT, M·NEXT))."""
    rng = np.random.default_rng(seed)
    rows, truth = [], {}
    for k in range(variants):
        jitter = 1 + rng.choice([-1, 1]) * rng.uniform(0.10, 0.20)
        A, alpha = 400 * (1 + rng.uniform(-spread, spread)), 0.34 + rng.normal(0, 0.01)
        law = lambda n, d, A=A, alpha=alpha: 1.8 + A / n ** alpha + 410 / d ** 0.28  # noqa: E731
        truth[f"v{k}"] = law(NEXT, M * NEXT)
        for s in SIZES:
            n = s * jitter
            rows.append({"variant": f"v{k}", "run": f"v{k}-{s:.0e}", "params": n, "tokens": M * n,
                         "c4:loss": law(n, M * n) * (1 + noise * rng.standard_normal())})
    return rows, truth


def scored(comp, truth_diff, metric) -> pd.DataFrame:
    """Each pair's decision at each target against the true difference (a − b)."""
    d = comp.decisions[comp.decisions["metric"] == metric].copy()
    d["truth"] = [truth_diff(r) for r in d.itertuples()]
    d = d[np.isfinite(d["truth"])]
    a_better = d["truth"] < 0  # losses: lower is better
    d["right"] = (d["winner"] == np.where(a_better, d["a"], d["b"]))
    d["inside"] = (d["difference_lower"] <= d["truth"]) & (d["truth"] <= d["difference_upper"])
    d["brier"] = (d["p_a_better"] - a_better.astype(float)) ** 2
    return d


def baseline(variants, fitted_runs, d: pd.DataFrame, metric: str) -> pd.Series:
    """The single-scale rule's verdict per row: right where the variant better at its largest fitted run is better."""
    last = {}
    for v in variants:
        p = v.ps.points[(v.ps.points["metric"] == metric) & v.ps.points["run"].isin(fitted_runs[v.name])]
        top = p[p["params"] == p["params"].max()]
        last[v.name] = top.sort_values("tokens").groupby("run")["value"].last().mean()
    a_says = np.array([last[r.a] < last[r.b] for r in d.itertuples()])
    return pd.Series(a_says == (d["truth"] < 0).to_numpy(), index=d.index)


def summarise(name: str, frames) -> dict:
    d = pd.concat(frames, ignore_index=True)
    return {"ablation": name, "decisions": len(d), "accuracy": d["right"].mean(),
            "coverage": d["inside"].mean() if "inside" in d else np.nan,
            "brier": d["brier"].mean() if "brier" in d else np.nan}


def synthetic(draws: int, bootstrap: int, noise: float, spread: float = 0.08):
    cfg = FitConfig(bootstrap=bootstrap, targets=[{"name": "next", "params": NEXT, "tokens": M * NEXT}])
    out = {"joint": [], "separate": [], "baseline": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(draws):
            rows, truth = ablation(seed, noise, spread=spread)
            path = Path(tmp) / f"ablation-{seed}.csv"
            pd.DataFrame(rows).to_csv(path, index=False)
            variants = load_variants(str(path))
            targets = [Target("next", NEXT, M * NEXT)]
            for how in ("joint", "separate"):
                comp = compare(variants, targets, cfg, METHODS["chinchilla"], curves=False, joint=True,
                               separate=how == "separate")
                d = scored(comp, lambda r: truth[r.a] - truth[r.b], "c4:loss")
                out[how].append(d)
            runs = {v.name: list(v.ps.points["run"].unique()) for v in variants}
            base = out["joint"][-1][["a", "b", "truth"]].copy()
            base["right"] = baseline(variants, runs, base, "c4:loss")
            base["brier"] = (~base["right"]).astype(float)  # it says 0 or 1
            out["baseline"].append(base)
    return [summarise(f"synthetic, A ± {spread:.0%} ({how})", f) for how, f in out.items()]


def gadre(data: Path, bootstrap: int):
    """C4 against RedPajama at M = 20: fitted on the 3 smallest sizes, each larger size predicted."""
    full = load_variants(str(data))
    cut, targets = [], []
    m20 = {v.name: v.ps.points[np.isclose(v.ps.points["multiplier"].astype(float), 20)] for v in full}
    sizes = sorted(set.intersection(*(set(p["params"].astype(float)) for p in m20.values())))
    for v in full:
        cut.append(replace(v, ps=replace(v.ps, points=m20[v.name].reset_index(drop=True))))
    targets = [Target(f"{n:.3g}-M20", n, 20 * n) for n in sizes[3:]]
    cfg = FitConfig(bootstrap=bootstrap, include=[])
    out = {"joint": [], "separate": [], "baseline": []}
    fit_cut = [replace(v, ps=replace(v.ps, points=v.ps.points[v.ps.points["params"].astype(float) <= sizes[2]]))
               for v in cut]
    measured = {v.name: v.ps for v in cut}

    def truth(r):
        a, b = (actual_value(measured[x], Target("t", r.params, r.tokens), r.metric, 1) for x in (r.a, r.b))
        return a - b
    for how in ("joint", "separate"):
        comp = compare(fit_cut, targets, cfg, METHODS["chinchilla"], curves=False, joint=True,
                       separate=how == "separate")
        frames = [scored(comp, truth, m) for m in comp.decisions["metric"].unique()]
        out[how] += frames
        if how == "joint":
            runs = {v.name: list(v.ps.points["run"].unique()) for v in fit_cut}
            for f in frames:
                base = f[["a", "b", "truth"]].copy()
                base["right"] = baseline(fit_cut, runs, f, f["metric"].iloc[0])
                base["brier"] = (~base["right"]).astype(float)
                out["baseline"].append(base)
    return [summarise(f"Gadre C4 vs RPJ, 3 sizes at M = 20 ({how})", f) for how, f in out.items()]


def olmo_seeds(olmo: Path, bootstrap: int):
    """A null comparison on the OLMo ladder cut to 3 sizes at one M: its 1xC runs against their reruns (another
    seed) as two variants, fitted on 190M-760M, predicting 1B on every LM loss and task bpb. The true difference is
    seed noise: the paired intervals should cover the measured one about 90 % of the time and P(better) stay near
    0.5 (a decision accuracy near 50 % is right here)."""
    ps = load_points(str(olmo))
    profile = replace(ps.profile, excluded=None, targets=())  # the paper leaves the reruns out; here they are a variant
    sizes = ("190M", "370M", "760M", "1B")
    variants = []
    for name, tail in (("1xC", "-1xC"), ("rerun", "-1xC-rerun")):
        pts = ps.points[ps.points["run"].isin([s + tail for s in sizes])].reset_index(drop=True)
        variants.append(Variant(name, replace(ps, points=pts, profile=profile)))
    big = variants[0].ps.points[variants[0].ps.points["run"] == "1B-1xC"].iloc[0]
    target = Target("1B-1xC", float(big["params"]), float(big["run_tokens"]))
    fit_on = [replace(v, ps=replace(v.ps, points=v.ps.points[~v.ps.points["run"].str.startswith("1B")])) for v in variants]
    measured = {v.name: v.ps for v in variants}

    def truth(r):
        a, b = (actual_value(measured[x], target, r.metric, 5) for x in (r.a, r.b))
        return a - b
    cfg = FitConfig(bootstrap=bootstrap)
    out = []
    for how in ("joint", "separate"):
        comp = compare(fit_on, [target], cfg, METHODS["chinchilla"], curves=False, joint=True, separate=how == "separate")
        d = pd.concat([scored(comp, truth, m) for m in comp.decisions["metric"].unique()], ignore_index=True)
        out.append({**summarise(f"OLMo 1xC vs rerun, 3 sizes at M = 20 ({how})", [d]),
                    "mean |P - 0.5|": float((d["p_a_better"] - 0.5).abs().mean())})
        if how == "joint":
            base = d[["a", "b", "truth"]].copy()
            base["right"] = [bool(baseline(fit_on, {v.name: list(v.ps.points["run"].unique()) for v in fit_on},
                                           d[d["metric"] == m], m).iloc[0]) for m in d["metric"]]
            base["brier"] = (~base["right"]).astype(float)
            out.append(summarise("OLMo 1xC vs rerun, 3 sizes at M = 20 (baseline)", [base]))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("draws", nargs="?", type=int, default=20, help="synthetic ablations drawn (each 36 pairs)")
    parser.add_argument("bootstrap", nargs="?", type=int, default=200, help="bootstrap resamples of each fit")
    args = parser.parse_args()
    shared = shared_data_dir()
    if shared is None:
        parser.error("no published ladder data at ../shared/data (set LADDER_SHARED_DATA): the run noise is the "
                     "OLMo ladder's")
    noise = seed_spread(shared / "olmo-ladder" / "runs")
    print(f"run noise (OLMo 1xC reruns): {noise:.2%} relative sd of a final C4 loss")
    rows = synthetic(args.draws, args.bootstrap, noise) + synthetic(args.draws, args.bootstrap, noise, spread=0.02)
    rows += olmo_seeds(shared / "olmo-ladder" / "runs", args.bootstrap)
    if (shared / "gadre-scaling").is_dir():
        rows += gadre(shared / "gadre-scaling", args.bootstrap)
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
