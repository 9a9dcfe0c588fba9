"""The OLMo ladder cut to an ablation's shape (issue 32): three sizes (190M, 370M, 760M) at one multiplier, each
method predicting the 1B run at that multiplier with the law its three runs identify (fit.sizing). Prints, per
multiplier and method, the C4 loss error (% of the measured) and the mean absolute accuracy error over the 8 tasks
(points), and how many measured values fall inside the 90 % intervals.

    .venv/bin/python scripts/three_sizes.py [bootstrap] [method,method,...]
"""
import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: fit, ladder, scripts

from fit.config import FitConfig  # noqa: E402
from fit.predict import method_named, predict  # noqa: E402
from fit.runs import fit_runs  # noqa: E402
from fit.sources import load_points  # noqa: E402
from ladder.core.plan import Target  # noqa: E402
from scripts.shared_data import shared_data_dir  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bootstrap", nargs="?", type=int, default=100)
    parser.add_argument("methods", nargs="?", default="best,olmo_two_step,chinchilla,direct,gadre")
    args = parser.parse_args()
    if shared_data_dir() is None:
        parser.error("no published ladder data at ../shared/data (set LADDER_SHARED_DATA)")
    olmo = load_points(str(shared_data_dir() / "olmo-ladder" / "runs"))
    rows = []
    for xc in ("1", "2", "5", "10"):
        runs = [f"{s}-{xc}xC" for s in ("190M", "370M", "760M")]
        held = f"1B-{xc}xC"
        keep = olmo.points[olmo.points["run"].isin(runs + [held])].reset_index(drop=True)
        ps = replace(olmo, points=keep, notes=[])
        r = keep[keep["run"] == held].iloc[0]
        target = Target(held, float(r["params"]), float(r["run_tokens"]))
        assert set(fit_runs(ps, [target])) == set(runs)
        for m in args.methods.split(","):
            out = predict(method_named(m), ps, [target], FitConfig(bootstrap=args.bootstrap))
            p = pd.DataFrame(out.predictions)
            inside = (p["lower"] <= p["actual"]) & (p["actual"] <= p["upper"])
            acc, loss = p[p["metric"].str.endswith(":acc")], p[p["metric"] == "c4_en:loss"]
            rows.append({"M": 20 * float(xc), "method": m,
                         "C4 loss error %": round(float(100 * (loss["predicted"] / loss["actual"] - 1).iloc[0]), 2)
                         if len(loss) else np.nan,
                         "C4 covered": int(inside[loss.index].sum()) if len(loss) else np.nan,
                         "accuracy MAE (points)": round(float(100 * (acc["predicted"] - acc["actual"]).abs().mean()), 2),
                         "accuracies covered": f"{int(inside[acc.index].sum())}/{len(acc)}",
                         "law": next((w.split("law reduced to ")[1].split(":")[0] for w in out.warnings
                                      if "law reduced to" in w), "its own")})
            print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
    print("\n" + pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
