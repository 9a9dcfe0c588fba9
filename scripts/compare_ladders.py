"""Compare two runs of the same ladder trained two ways (e.g. cosine and wsds): compute, the final
loss of every rung, and each one's held-out-size backtest errors (its report/predictions.csv).

    .venv/bin/python scripts/compare_ladders.py runs/smoke-cosine runs/smoke-wsds [metric]

`metric` is the held-out loss to compare rung by rung (default: the first `*_val:loss` found).
"""
import argparse
import json
from pathlib import Path

import pandas as pd

from ladder.core.layout import PLAN, REPORT, results_files


def final_values(out_dir: Path) -> pd.DataFrame:
    rows = [json.loads(line) for f in results_files(out_dir) for line in f.open() if line.strip()]
    # current records only: a superseded one was replaced by an evaluation under another key (docs/formats.md)
    current = [r for r in rows if r["final"] and not r.get("superseded")]
    return pd.DataFrame(current).set_index(["run", "metric"])["value"]


def backtest(out_dir: Path) -> pd.DataFrame:
    preds = pd.read_csv(out_dir / REPORT / "predictions.csv").dropna(subset=["actual"])
    preds["rel_err_pct"] = 100 * (preds["predicted"] - preds["actual"]).abs() / preds["actual"].abs()
    return preds.set_index(["target", "metric"])["rel_err_pct"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="a ladder's out_dir (e.g. runs/smoke-cosine)")
    parser.add_argument("second", type=Path, help="the same ladder trained another way (e.g. runs/smoke-wsds)")
    parser.add_argument("metric", nargs="?", help="the held-out loss compared rung by rung")
    args = parser.parse_args()
    a, b = args.first, args.second
    for d in (a, b):
        if not (d / PLAN).is_file():
            parser.error(f"{d}: no {PLAN}: give two ladder runs' out_dirs (ladder run ... out_dir=DIR)")
    plan_a, plan_b = (json.loads((d / PLAN).read_text()) for d in (a, b))
    print(f"compute (6ND): {a.name} {plan_a['compute']:.4g}, {b.name} {plan_b['compute']:.4g}, "
          f"ratio {plan_b['compute'] / plan_a['compute']:.3f}")
    fa, fb = final_values(a), final_values(b)
    metric = args.metric or next(m for m in fa.index.get_level_values(1) if m.endswith("_val:loss"))
    loss = pd.DataFrame({a.name: fa.xs(metric, level=1), b.name: fb.xs(metric, level=1)}).dropna()
    loss["diff_pct"] = 100 * (loss[b.name] - loss[a.name]) / loss[a.name]
    print(f"\nfinal {metric} per rung:\n{loss.to_string(float_format=lambda x: f'{x:.4f}')}")
    print(f"mean |diff| {loss['diff_pct'].abs().mean():.2f} %, max |diff| {loss['diff_pct'].abs().max():.2f} %")
    err = pd.DataFrame({a.name: backtest(a), b.name: backtest(b)})
    err["diff_pp"] = err[b.name] - err[a.name]
    print(f"\nheld-out backtest, relative error in %:\n{err.to_string(float_format=lambda x: f'{x:.2f}')}")


if __name__ == "__main__":
    main()
