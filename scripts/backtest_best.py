"""Backtests that chose `best`, on the OLMo ladder only (never the 7B/13B runs):
  A: fit 190M/370M/760M (1, 2, 5, 10xC), predict the four 1B runs;
  B: fit 190M/370M (1, 2, 5, 10xC), predict the 760M and 1B runs.
Each candidate is scored by the mean absolute accuracy error in points over the 8 tasks and the
target runs, and by the relative error of its step-1 loss prediction.

    PYTHONPATH=. python scripts/backtest_best.py [path/to/olmo-ladder/runs]
"""
import sys

import numpy as np
import pandas as pd

from fit.config import FitConfig
from fit.methods import olmo_fit_runs, olmo_two_step
from fit.points import OLMO_TASKS, load_points, shared_data_dir
from fit.targets import Target

LM_SETS = ["c4_en", "dolma_books", "dolma_common-crawl", "dolma_pes2o", "dolma_reddit", "dolma_stack",
           "dolma_wiki", "ice", "m2d2_s2orc", "pile", "wikitext_103"]


def backtests(ps):
    ladder = olmo_fit_runs(ps, [])
    size = dict(ps.points.drop_duplicates("run")[["run", "size"]].itertuples(index=False))
    runs = [r for r in ladder if size[r] in ("190M", "370M", "760M", "1B")]
    info = ps.points.drop_duplicates("run").set_index("run")
    tg = lambda sizes: [Target(r, float(info.loc[r, "params"]), float(info.loc[r, "run_tokens"]))
                        for r in runs if size[r] in sizes]
    return {"A: fit <=760M, predict 1B": ([r for r in runs if size[r] != "1B"], tg({"1B"})),
            "B: fit <=370M, predict 760M+1B": ([r for r in runs if size[r] in ("190M", "370M")], tg({"760M", "1B"}))}


def candidates(ps):
    sets = [s for s in LM_SETS if f"{s}:loss" in set(ps.points["metric"])]
    single = {"two_step_bpb": {}, "two_step_c4": {t: "c4_en:loss" for t in OLMO_TASKS},
              "two_step_gold_nll": {t: f"{t}:gold_nll" for t in OLMO_TASKS}}
    single.update({f"lm:{s}": {t: f"{s}:loss" for t in OLMO_TASKS} for s in sets if s != "c4_en"})
    return single, sets


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else str(shared_data_dir() / "olmo-ladder" / "runs")
    ps = load_points(path)
    single, sets = candidates(ps)
    cfg = FitConfig(bootstrap=0)
    for bt, (fit_runs, targets) in backtests(ps).items():
        rows = []
        for name, inter in single.items():
            out = olmo_two_step(ps, targets, cfg, runs=fit_runs, intermediate=inter)
            rows += [{**p, "cand": name} for p in out.predictions]
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


if __name__ == "__main__":
    main()
