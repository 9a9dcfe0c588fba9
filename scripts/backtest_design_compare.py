"""Check `ladder design difference=` (fit/design_compare.py) against one real pair: Gadre et al.'s C4 and RedPajama
ladders (docs/design.md, "Deciding between two variants").

Every sub-ladder of the four smaller sizes (10.6M-412M, the runs both variants have at M >= 20) that
ladder.orchestration.design.candidates builds at a few budgets is fitted as `ladder compare` fits losses by default
(fit.joint: the form the runs identify, the closer scale, the exponent F-test) on each validation loss, and its
call at each target (1.4B and 6.9B at M = 20, measured for both variants) is scored against the measured order. Beside
it, the simulated chance of the right call for that sub-ladder, with the measured difference at the target as
`difference` and an error model measured on the OLMo ladder and on both Gadre ladders' runs below 1.4B. Also printed:
how alike the two variants' per-size offsets about their joint law are (the simulation draws them independently).

    .venv/bin/python scripts/backtest_design_compare.py [--draws 128]
"""
import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fit import design, design_compare, joint  # noqa: E402
from fit.errors import FitInputError  # noqa: E402
from ladder.orchestration.design import candidates  # noqa: E402
from scripts.backtest_design import cost, published_ladders, runs_of  # noqa: E402

SHARES = (3e-4, 1e-3, 3e-3, 1e-2)  # budgets as shares of the 6.9B target's compute
LADDER_TOP = 5e8  # sizes below this (10.6M-412M) make the sub-ladders
TARGET_M = 20


def joint_call(pair, metric: str, rungs, target) -> tuple:
    """(A's predicted loss minus B's at the target, whether each variant kept its own exponents), by compare's default
    fit of the losses (fit.joint)."""
    X, y = [], []
    for i, (table, _) in enumerate(pair):
        nd, vals, _ = table.finals([r.name for r in rungs[i]], metric)
        X.append(np.vstack([nd, np.full(nd.shape[1], float(i))]))
        y.append(vals)
    X = np.hstack(X)
    data = joint.Data(metric, ("A", "B"), X, np.concatenate(y), [("", "")] * X.shape[1])
    form, _ = joint.choose_form(data)
    jf, _ = joint.exponent_test(data, form)
    p = jf.predict(np.array([[target[0]] * 2, [target[1]] * 2, [0.0, 1.0]]))
    return float(p[0] - p[1]), len(jf.design.own) > 1


def offsets(pair, metric: str, rungs) -> pd.DataFrame:
    """Each variant's mean log residual per size about the joint law fitted to both ladders."""
    X, y = [], []
    for i, (table, _) in enumerate(pair):
        nd, vals, _ = table.finals([r.name for r in rungs[i]], metric)
        X.append(np.vstack([nd, np.full(nd.shape[1], float(i))]))
        y.append(vals)
    X, y = np.hstack(X), np.concatenate(y)
    data = joint.Data(metric, ("A", "B"), X, y, [("", "")] * len(y))
    jf, _ = joint.exponent_test(data, joint.choose_form(data)[0])
    resid = np.log(y) - np.log(jf.predict(X))
    df = pd.DataFrame({"metric": metric, "N": np.round(X[0], -3), "M": np.round(X[1] / X[0]), "v": X[2], "r": resid})
    return df


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", default=None, help="write every row here")
    args = parser.parse_args()
    olmo, gadre = published_ladders()
    below = [replace(ps, points=ps.points[ps.points["params"].astype(float) < LADDER_TOP]) for ps in gadre]
    model = design.measure([olmo, *below])
    print(f"error model: {model.describe()}", file=sys.stderr)
    metrics = sorted(m for m in set(gadre[0].points["metric"]) & set(gadre[1].points["metric"]) if m.endswith(":loss"))
    rows, resid = [], []
    for metric in metrics:
        pair = [runs_of(ps, metric)[::-1] for ps in gadre]  # (table, runs) per variant
        cells = [{(round(r.params, -3), r.multiplier): r for r in runs.values() if r.params < LADDER_TOP
                  and r.multiplier >= TARGET_M and not r.name.endswith("-rerun")} for _, runs in pair]
        both = sorted(set(cells[0]) & set(cells[1]))
        sizes, mults = sorted({n for n, _ in both}), sorted({m for _, m in both})
        grid = [[cells[0].get((n, m)) if (n, m) in both else None for m in mults] for n in sizes]
        resid.append(offsets(pair, metric, [[c[k] for k in both] for c in cells]))
        targets = {}
        for big in sorted({r.params for r in pair[0][1].values() if r.params > LADDER_TOP}):
            runs = [next((r for r in rs.values() if r.params == big and r.multiplier == TARGET_M), None)
                    for _, rs in pair]
            if all(runs):
                measured = pair[0][0].final[runs[0].name, metric] - pair[1][0].final[runs[1].name, metric]
                targets[f"{big / 1e9:.2g}B-M{TARGET_M}"] = ((runs[0].params, runs[0].tokens), measured)
        seen = set()
        for share in SHARES:
            top = max(t[0][0] for t in targets.values())
            for c in candidates(grid, cost, share * 6 * top * TARGET_M * top, design_compare.MIN_RUNGS):
                key = tuple(sorted(r.name for r in c.rungs))
                if key in seen:
                    continue
                seen.add(key)
                rungs = [c.rungs, [cells[1][(round(r.params, -3), r.multiplier)] for r in c.rungs]]
                for name, (target, measured) in targets.items():
                    try:
                        called, own = joint_call(pair, metric, rungs, target)
                    except FitInputError:
                        continue
                    sim = design_compare.Decision.of(design_compare.simulate_decision(
                        model, [r.params for r in c.rungs], [r.tokens for r in c.rungs], target, abs(measured),
                        args.draws, args.seed))
                    rows.append({"metric": metric, "target": name, "measured": measured, "compute": c.compute,
                                 "rungs": len(c.rungs), "sizes": len(c.by_size()),
                                 "right": np.sign(called) == np.sign(measured), "own_exponents": own,
                                 "simulated_p": sim.p, "ladder": c.describe()})
            print(f"{metric}: {len(seen)} sub-ladders", file=sys.stderr)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    r = pd.concat(resid, ignore_index=True)
    print(report(df, r))


def report(df: pd.DataFrame, r: pd.DataFrame) -> str:
    lines = ["| loss | target | measured C4 − RPJ | sub-ladders | right calls | mean simulated P |",
             "|---|---|---|---|---|---|"]
    for (m, t), g in df.groupby(["metric", "target"]):
        lines.append(f"| {m} | {t} | {g['measured'].iloc[0]:+.3f} | {len(g)} | {g['right'].mean():.2f} | "
                     f"{g['simulated_p'].mean():.2f} |")
    lines += ["", "By simulated P (all losses and targets): | simulated P | cases | mean simulated P | right calls |",
              "|---|---|---|---|"]
    bins = pd.cut(df["simulated_p"], [0, 0.7, 0.9, 0.99, 1.0], include_lowest=True)
    for b, g in df.groupby(bins, observed=True):
        lines.append(f"| {b} | {len(g)} | {g['simulated_p'].mean():.3f} | {g['right'].mean():.3f} |")
    for own, g in df.groupby("own_exponents"):
        lines.append(f"| compare's F-test: {'own' if own else 'shared'} exponents | {len(g)} | "
                     f"{g['simulated_p'].mean():.3f} | {g['right'].mean():.3f} |")
    lines += ["", "Wrong calls by sizes in the sub-ladder: " + ", ".join(
        f"{k} sizes {int((~g['right']).sum())} of {len(g)}" for k, g in df.groupby("sizes"))]
    size = r.groupby(["metric", "N", "v"])["r"].mean().unstack("v")
    run = r.pivot_table(index=["metric", "N", "M"], columns="v", values="r")
    lines += ["", f"Per-size offsets about the joint law (both ladders' runs at M >= {TARGET_M}, sizes below "
              f"{LADDER_TOP:.0e}; {len(size)} (loss, size) pairs): correlation between the variants "
              f"{np.corrcoef(size[0.0], size[1.0])[0, 1]:.2f}; sd of C4's {size[0.0].std():.4f}, of RPJ's "
              f"{size[1.0].std():.4f}, of their difference {(size[0.0] - size[1.0]).std():.4f}. Per run (same cell): "
              f"correlation {np.corrcoef(run[0.0], run[1.0])[0, 1]:.2f}."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
