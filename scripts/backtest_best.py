"""Backtest that chose `best`: fit on the 190M/370M/760M rungs, predict the 1B rung at 1/2/5/10xC,
score each candidate by mean absolute accuracy error. Never looks at the 7B/13B runs.

    PYTHONPATH=. python scripts/backtest_best.py [path/to/olmo-ladder/runs]
"""
import sys

import numpy as np
import pandas as pd

from fit.config import FitConfig
from fit.methods import olmo_fit_runs, olmo_two_step
from fit.points import OLMO_TASKS, load_points, shared_data_dir
from fit.targets import Target


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else str(shared_data_dir() / "olmo-ladder" / "runs")
    ps = load_points(path)
    runs1b = ps.points[(ps.points["size"] == "1B")].drop_duplicates("run")
    targets = [Target(r.run, r.params, r.run_tokens) for r in runs1b.itertuples()
               if r.run in olmo_fit_runs(ps, []) and r.size == "1B"]
    fit_runs = [r for r in olmo_fit_runs(ps, targets) if not r.startswith(("1B", "13B"))]
    cfg = FitConfig(bootstrap=0)
    cands = {
        "two_step_bpb": dict(),
        "two_step_gold_nll": dict(intermediate={t: f"{t}:gold_nll" for t in OLMO_TASKS}),
        "two_step_c4": dict(intermediate={t: "c4_en:loss" for t in OLMO_TASKS}),
    }
    rows = []
    for name, kw in cands.items():
        out = olmo_two_step(ps, targets, cfg, runs=fit_runs, **kw)
        rows += [{**p, "cand": name} for p in out.predictions if p["metric"].endswith(":acc")]
    df = pd.DataFrame(rows)
    ens = df[df["cand"].isin(["two_step_bpb", "two_step_c4"])].groupby(["target", "metric"], as_index=False).agg(
        predicted=("predicted", "mean"), actual=("actual", "first"))
    df = pd.concat([df, ens.assign(cand="mean_bpb_c4")], ignore_index=True)
    df["err"] = 100 * (df["predicted"] - df["actual"]).abs()
    df["task"] = df["metric"].str.split(":").str[0]
    print(df.pivot_table(index="task", columns="cand", values="err", aggfunc="mean").round(2))
    print(df.groupby("cand")["err"].mean().round(2))


if __name__ == "__main__":
    main()
