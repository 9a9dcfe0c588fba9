"""Backtests that chose `best`, on the OLMo ladder only (never the 7B/13B runs):
  A: fit 190M/370M/760M (1, 2, 5, 10xC), predict the four 1B runs;
  B: fit 190M/370M (1, 2, 5, 10xC), predict the 760M and 1B runs.
Each two-step path (one intermediate), and the direct method (Krajewski et al. 2025), is scored by the mean absolute accuracy error in points over
the 8 tasks and the target runs, and by the relative error of its step-1 loss prediction. The ways
of combining paths are scored the same way, each weighted from the fit set's own inner backtest
(in A: fit 190M/370M, predict 760M; B has none, so equal weights). `best` itself (1/MSE weights)
also by how often its 90 % intervals cover the actual values; step-1 variants for the C4 loss
(Huber delta, more runs, one fit across the 11 LM sets with shared exponents) by the latter;
step-2 variants (the sigmoid's anchor, floor and ceiling) by the MAE of the whole `best` ensemble.

    .venv/bin/python scripts/backtest_best.py [path/to/olmo-ladder/runs]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: fit, ladder, scripts

from fit import laws  # noqa: E402
from fit.config import FitConfig  # noqa: E402
from fit.fitting import fit_huber_log  # noqa: E402
from fit.laws import Law  # noqa: E402
from fit.best import backtest_predictions, best, inner_backtests, intermediate_paths, path_weights, weighted_mean  # noqa: E402
from fit.methods import PAPER_SIGMOID, STEP1_BOUNDS, STEP1_START, Sigmoid, direct, olmo_two_step  # noqa: E402
from fit.runs import RunTable, fit_runs  # noqa: E402
from fit.sources import load_points  # noqa: E402
from fit.sources.olmo import OLMO_PARAMS, OLMO_TARGET_RUNS, OLMO_TASKS  # noqa: E402
from scripts.shared_data import shared_data_dir  # noqa: E402
from ladder.core.plan import Target  # noqa: E402

LM_SETS = ["c4_en", "dolma_books", "dolma_common-crawl", "dolma_pes2o", "dolma_reddit", "dolma_stack",
           "dolma_wiki", "ice", "m2d2_s2orc", "pile", "wikitext_103"]


def backtests(ps):
    ladder = fit_runs(ps, [])
    size = dict(ps.points.drop_duplicates("run")[["run", "size"]].itertuples(index=False))
    runs = [r for r in ladder if size[r] in ("190M", "370M", "760M", "1B")]
    info = ps.points.drop_duplicates("run").set_index("run")
    tg = lambda sizes: [Target(r, float(info.loc[r, "params"]), float(info.loc[r, "run_tokens"]))
                        for r in runs if size[r] in sizes]
    return {"A: fit <=760M, predict 1B": ([r for r in runs if size[r] != "1B"], tg({"1B"})),
            "B: fit <=370M, predict 760M+1B": ([r for r in runs if size[r] in ("190M", "370M")], tg({"760M", "1B"}))}


def candidates(ps):
    sets = [s for s in LM_SETS if f"{s}:loss" in set(ps.points["metric"])]
    single = {"two_step_bpb": None, "two_step_c4": {t: "c4_en:loss" for t in OLMO_TASKS},
              "two_step_gold_nll": {t: f"{t}:gold_nll" for t in OLMO_TASKS}}
    single.update({f"lm:{s}": {t: f"{s}:loss" for t in OLMO_TASKS} for s in sets if s != "c4_en"})
    return single, sets


def _joint_law(k):
    """L_s(N, D) = e^{a_s}/N^α + e^{b_s}/D^β + E_s over k LM sets s (row 3 of X), α and β shared."""
    def split(X, p):
        s = X[2].astype(int)
        return X[0], X[1], s, p[2:2 + k][s], p[2 + k:2 + 2 * k][s]

    def f(X, p):
        n, d, s, a, b = split(X, p)
        return np.exp(a - p[0] * np.log(n)) + np.exp(b - p[1] * np.log(d)) + p[2 + 2 * k:][s]

    def grad(X, p):
        n, d, s, a, b = split(X, p)
        tn, td, i = np.exp(a - p[0] * np.log(n)), np.exp(b - p[1] * np.log(d)), np.arange(len(n))
        G = np.zeros((len(n), 2 + 3 * k))
        G[:, 0], G[:, 1] = -tn * np.log(n), -td * np.log(d)
        G[i, 2 + s], G[i, 2 + k + s], G[i, 2 + 2 * k + s] = tn, td, 1.0
        return G
    return Law("joint_nd", tuple(f"p{i}" for i in range(2 + 3 * k)), f, grad, "", "")


def step1_variants(ps, fit_runs, targets, sets):
    """Relative error (%) of the predicted C4 loss of each target run, per step-1 variant."""
    every = sorted(r for r in ps.points["run"].unique() if not r.startswith("13B"))
    table = RunTable(ps, every)
    tx = np.array([[t.params for t in targets], [t.tokens for t in targets]])
    actual = np.array([table.final[t.name, "c4_en:loss"] for t in targets])
    X, y, _ = table.finals(fit_runs, "c4_en:loss")
    preds = {f"delta={d:g}": fit_huber_log(laws.OLMO_ND, X, y, [STEP1_START], STEP1_BOUNDS, delta=d).predict(tx)
             for d in (1e-4, 1e-3, 1e-2)}
    sizes = {r.split("-")[0] for r in fit_runs}
    more = [r for r in every if r.split("-")[0] in sizes]  # + the 0.5xC and -rerun runs of those sizes
    Xm, ym, _ = table.finals(more, "c4_en:loss")
    preds["+0.5xC and reruns"] = fit_huber_log(laws.OLMO_ND, Xm, ym, [STEP1_START], STEP1_BOUNDS).predict(tx)
    parts = [table.finals(fit_runs, f"{s}:loss")[:2] for s in sets]
    XJ = np.hstack([np.vstack([Xs, np.full(Xs.shape[1], i)]) for i, (Xs, _) in enumerate(parts)])
    joint = _joint_law(len(sets))
    fit = fit_huber_log(joint, XJ, np.concatenate([ys for _, ys in parts]),
                        [[0.1, 0.2] + [3.0] * len(sets) + [6.0] * len(sets) + [1.0] * len(sets)],
                        [(0, None)] * (2 + 3 * len(sets)))
    preds["joint over LM sets"] = joint.f(np.vstack([tx, np.full(tx.shape[1], sets.index("c4_en"))]), fit.params)
    return {k: 100 * (v - actual) / actual for k, v in preds.items()}


def combination_schemes(ps, fit_runs, targets, sigmoid: Sigmoid = PAPER_SIGMOID):
    """MAE (points) of each way to combine the paths, weights from the fit set's inner backtests."""
    table = RunTable(ps, fit_runs)
    paths = intermediate_paths(table)
    cfg = FitConfig(bootstrap=0)
    inner, _ = backtest_predictions(ps, paths, inner_backtests(table), cfg, sigmoid)
    outer, _ = backtest_predictions(ps, paths, [(fit_runs, targets)], cfg, sigmoid)
    w = path_weights(inner, paths)
    schemes = {"1/MSE weights (best)": w, "equal weights": path_weights(inner.iloc[:0], paths),
               "per-task lowest-MSE path": w.eq(w.max(axis=1), axis=0).astype(float),
               "1/MSE² weights": (w ** 2).div((w ** 2).sum(axis=1), axis=0)}
    acc = outer[outer["metric"].str.endswith(":acc")]
    return {name: 100 * np.mean([abs(weighted_mean(g.pivot(index="metric", columns="path", values="predicted"),
                                              W.loc[m]).iloc[0] - g["actual"].iloc[0])
                                 for (_, m), g in acc.groupby(["target", "metric"])])
            for name, W in schemes.items()}


# Step-2 variants (fit.methods.Sigmoid), passed to every sigmoid fit of the backtests: no (0, 1) anchor on
# the LM-loss paths; floor and ceiling fixed; a ceiling shared by all tasks (b <= c, anchor at (0, c)),
# for label noise the ladder's accuracies never come near.
STEP2_VARIANTS = {"paper (anchor (0, 1), b <= 1)": PAPER_SIGMOID,
                  "no anchor on LM-loss paths": Sigmoid(anchor_on_lm_loss=False),
                  "floor and ceiling fixed": Sigmoid(fixed=True), "shared ceiling 0.95": Sigmoid(ceiling=0.95),
                  "shared ceiling 0.9": Sigmoid(ceiling=0.9)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="?", help="the OLMo-ladder W&B CSVs (default: ../shared/data/olmo-ladder/runs)")
    path = parser.parse_args().runs or olmo_runs(parser)
    ps = load_points(path)
    single, sets = candidates(ps)
    cfg = FitConfig(bootstrap=0)
    for bt, (train_runs, targets) in backtests(ps).items():
        rows = []
        for name, inter in single.items():
            out = olmo_two_step(ps, targets, cfg, runs=train_runs, intermediate=inter)
            rows += [{**p, "cand": name} for p in out.predictions]
        rows += [{**p, "cand": "direct"} for p in direct(ps, targets, cfg, runs=train_runs).predictions]
        df = pd.DataFrame(rows)
        acc = df[df["metric"].str.endswith(":acc")].copy()
        ens = lambda names, label: acc[acc["cand"].isin(names)].groupby(["target", "metric"], as_index=False).agg(
            predicted=("predicted", "mean"), actual=("actual", "first")).assign(cand=label)
        acc = pd.concat([acc, ens(["two_step_bpb", "two_step_c4"], "mean_bpb_c4"),
                         ens(["two_step_c4"] + [f"lm:{s}" for s in sets if s != "c4_en"], "mean_11_lm_sets")])
        acc["err"] = 100 * (acc["predicted"] - acc["actual"]).abs()
        acc["task"] = acc["metric"].str.split(":").str[0]
        loss = df[~df["metric"].str.endswith(":acc")].copy()
        loss["rel_%"] = 100 * (loss["predicted"] - loss["actual"]) / loss["actual"]
        print(f"\n== {bt}")
        print(acc.pivot_table(index="task", columns="cand", values="err", aggfunc="mean").round(2).T.to_string())
        print("mean abs accuracy error (points):")
        print(acc.groupby("cand")["err"].mean().round(2).sort_values().to_string())
        print("step-1 signed relative error of the intermediate, % (mean over targets):")
        print(loss[loss["cand"].isin(["two_step_c4", "two_step_bpb"])].groupby(["cand", "metric"])["rel_%"]
              .mean().round(2).to_string())
        print("step-1 variants, C4 loss relative error % (mean signed / mean abs / max abs over targets):")
        for k, rel in step1_variants(ps, train_runs, targets, sets).items():
            print(f"  {k:20s} {rel.mean():+.2f} / {np.abs(rel).mean():.2f} / {np.abs(rel).max():.2f}")
        print("combining the paths (weights from the fit set's inner backtests), mean abs accuracy error (points):"
              + ("" if inner_backtests(RunTable(ps, train_runs)) else
                 "\n  (no inner backtest in this fit set: every scheme weights the paths equally)"))
        for k, v in combination_schemes(ps, train_runs, targets).items():
            print(f"  {k:28s} {v:.2f}")
        print("step-2 variants, best's mean abs accuracy error (points):")
        for k, v in STEP2_VARIANTS.items():
            print(f"  {k:30s} {combination_schemes(ps, train_runs, targets, v)['1/MSE weights (best)']:.2f}")
        got = pd.DataFrame(best(ps, targets, FitConfig(bootstrap=1000), runs=train_runs).predictions)
        got = got[got["metric"].str.endswith(":acc")]
        inside = (got["lower"] <= got["actual"]) & (got["actual"] <= got["upper"])
        print(f"best (1,000 resamples): MAE {100 * (got['predicted'] - got['actual']).abs().mean():.2f} points, "
              f"90% intervals cover {int(inside.sum())}/{len(got)}, mean width {100 * (got['upper'] - got['lower']).mean():.1f} points")
    recipe(path)


def olmo_runs(parser: argparse.ArgumentParser) -> str:
    """The published OLMo-ladder runs, or the parser's one-line error where they are absent."""
    if shared_data_dir() is None:
        parser.error("no published ladder data at ../shared/data (set LADDER_SHARED_DATA or give the path)")
    return str(shared_data_dir() / "olmo-ladder" / "runs")


def recipe(path):
    """The 13B-5T run's peak LR and batch against the ladder's own size rules (power laws in N through
    its 1xC runs), from the exports' metadata columns only: a target trained off the ladder's recipe is
    a target the ladder's laws do not describe."""
    runs = {s: pd.read_csv(Path(path) / f"{s}-1xC.csv") for s in ("190M", "370M", "760M", "1B")}
    logn = np.log([OLMO_PARAMS[s] for s in runs])
    big = pd.read_csv(Path(path) / "peteish13_eval_full.csv")
    print("\n== 13B-5T recipe against the ladder's size rules (metadata only)")
    for col in ("learning_rate_peak", "batch_size_in_tokens"):
        slope, icept = np.polyfit(logn, np.log([r[col].iloc[0] for r in runs.values()]), 1)
        phases = big.loc[big[col].ne(big[col].shift()), ["_step", col]]
        print(f"  {col}: ladder rule ∝ N^{slope:.3f} gives {np.exp(icept + slope * np.log(OLMO_TARGET_RUNS['peteish13'][1])):.3g} at 13B; "
              f"the run: " + ", ".join(f"{v:.3g} from step {int(st)}" for st, v in phases.itertuples(index=False)))


if __name__ == "__main__":
    main()
