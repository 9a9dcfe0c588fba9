"""Backtest `ladder design` on the published ladders (docs/design.md).

For each held-out target (OLMo's 13B-5T from its four sizes; on Gadre et al.'s C4 and RedPajama ladders 1.4B at
M = 640, 6.9B at M = 20, and 0.411B at M = 640 from the three smaller shapes) and each budget (a share of the
target's compute), the design chooses among the runs that exist below the target: grids of consecutive sizes ×
runs of multipliers (ladder.orchestration.design.candidates), each run costing its 6ND, simulated with an error model
measured on the other paper's ladders and on this ladder's runs below the target's size (what a team holding those
runs would give as results=; nothing at or above the target's size enters). Against it, at
the same budget: the paper's own fit set cut to the budget (its most expensive runs dropped first), the smallest
sizes at every multiplier (sizes added from the smallest while the budget allows), and random sub-ladders costing
half the budget to all of it. Each choice is fitted on the runs' real final C4 loss with the method's loss law (OLMo:
the two-step method's step 1; Gadre: the paper's L(N, M)) and scored on the held-out run.

Every strategy chooses among runs at M >= 20, `ladder design`'s default grid (--min-multiplier 10 for the runs at
M = 10 too; M = 5 lies off the law: fit/design.py).

    .venv/bin/python scripts/backtest_design.py [--draws 96] [--random 30]

--accuracy backtests the accuracy error instead (fit.design_accuracy), on OLMo's 13B-5T alone (Gadre et al.'s exports
have no per-task accuracy at checkpoints): at each budget the design's choice (as above, ranked by the loss error),
the two-step method (fit.methods.olmo_two_step, bootstrap off) fitted on the chosen runs' real task losses and
accuracies, each task's predicted 13B-5T accuracy against the real one, in points, beside the design's predicted
band for that task (the accuracy model restricted to it) and for a task at random (the band `ladder design` prints).

    .venv/bin/python scripts/backtest_design.py --accuracy [--draws 96]
"""
import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fit import design, design_accuracy  # noqa: E402
from fit.config import FitConfig  # noqa: E402
from fit.fitting import fit_huber_log, fit_least_squares  # noqa: E402
from fit.methods import GADRE_GRID, olmo_two_step  # noqa: E402
from fit.runs import RunTable, gadre_runs  # noqa: E402
from fit.sources import load_points  # noqa: E402
from fit.targets import NAMED  # noqa: E402
from ladder.orchestration.design import MULTIPLIERS, Candidate, candidates  # noqa: E402
from scripts.shared_data import shared_data_dir  # noqa: E402

BUDGETS = (0.001, 0.003, 0.01)


@dataclass(frozen=True)
class Run:
    name: str
    params: float
    tokens: float
    multiplier: float

    @property
    def compute(self) -> float:
        return 6.0 * self.params * self.tokens


@dataclass
class Ladder:
    name: str
    ps: object
    metric: str
    method: str  # its paper's method, whose loss law designs and fits it
    paper: list  # the paper's loss-fit runs
    prior: list  # the other paper's point sets
    table: object = None  # its fit.runs.RunTable


def runs_of(ps, metric) -> dict:
    table = RunTable(ps, sorted(set(ps.points["run"])))
    return {r: Run(r, *table.info[r][:2], table.info[r][3]) for r in table.runs if (r, metric) in table.final}, table


def realized(ladder: Ladder, table, rungs, target: Run) -> float:
    """The method's loss law fitted to the rungs' real final losses, its relative error at the target."""
    fit = design.loss_fit(ladder.method)
    names = [r.name for r in rungs]
    X, y, _ = table.finals(names, ladder.metric)
    X = fit.inputs(X[0], X[1])
    if fit.huber is not None:
        res = fit_huber_log(fit.law, X, y, [*fit.starts, *design.STEP1_GRID], fit.bounds, delta=fit.huber)
    else:
        res = fit_least_squares(fit.law, X, y, GADRE_GRID[::4], fit.bounds)
    actual = table.final[target.name, ladder.metric]
    return float(res.predict(fit.inputs(np.array([target.params]), np.array([target.tokens])))[0] / actual - 1)


def cost(rungs) -> tuple:
    return "cosine", sum(r.compute for r in rungs)


def paper_cut(paper: list, budget: float, need: int):
    runs = sorted(paper, key=lambda r: r.compute)
    while runs and cost(runs)[1] > budget:
        runs.pop()
    return runs if len(runs) >= need and len({r.params for r in runs}) >= 2 else None


def smallest_sizes(grid: list, budget: float, need: int):
    chosen = []
    for size in grid:
        more = chosen + [r for r in size if r]
        if cost(more)[1] > budget:
            break
        chosen = more
    return chosen if len(chosen) >= need and len({r.params for r in chosen}) >= 2 else None


def random_ladders(pool: list, budget: float, need: int, count: int, rng) -> list:
    out, tries = [], 0
    while len(out) < count and tries < 20000:
        tries += 1
        k = rng.integers(need, len(pool) + 1)
        pick = [pool[i] for i in rng.choice(len(pool), k, replace=False)]
        c = cost(pick)[1]
        spread = len({r.params for r in pick}) >= 2 and len({r.multiplier for r in pick}) >= 2
        if 0.5 * budget <= c <= budget and spread:
            out.append(pick)
    return out


def pool_grid(pool: list) -> list:
    """The pool's runs by size (rows) and multiplier (columns), None where a run is missing."""
    by = {(r.params, r.multiplier): r for r in pool}
    return [[by.get((n, m)) for m in sorted({r.multiplier for r in pool})] for n in sorted({r.params for r in pool})]


def design_choice(ladder: Ladder, model, target: Run, pool: list, budget: float, draws: int, seed: int):
    """(expected loss error, candidate) of the design's choice among the pool's runs within `budget`, or None."""
    fit = design.loss_fit(ladder.method)
    found = candidates(pool_grid(pool), cost, budget, len(fit.law.params) + 1)
    scored = [(design.Expected.of(design.simulate(model, fit, [r.params for r in c.rungs], [r.tokens for r in c.rungs],
                                                  (target.params, target.tokens), draws, seed)), c) for c in found]
    return min(scored, key=lambda ec: (ec[0].median, ec[1].compute)) if scored else None


def backtest(ladder: Ladder, model, target: Run, pool: list, budget_share: float, draws: int, n_random: int, seed: int):
    table = ladder.table
    fit = design.loss_fit(ladder.method)
    need = len(fit.law.params) + 1
    budget = budget_share * target.compute
    grid = pool_grid(pool)
    rows = []
    chosen = design_choice(ladder, model, target, pool, budget, draws, seed)
    if chosen:
        expected, best = chosen
        err = realized(ladder, table, best.rungs, target)
        rows.append({"strategy": "design", "runs": len(best.rungs), "compute": best.compute, "error": err,
                     "predicted_median": expected.median, "low": expected.low, "high": expected.high,
                     "covered": expected.covers(err), "choice": best.describe()})
    for name, rungs in (("paper, cut", paper_cut([r for r in ladder.paper if r in pool], budget, need)),
                        ("smallest sizes", smallest_sizes(grid, budget, need))):
        if rungs:
            rows.append({"strategy": name, "runs": len(rungs), "compute": cost(rungs)[1],
                         "error": realized(ladder, table, rungs, target),
                         "choice": Candidate(tuple(rungs), "cosine", cost(rungs)[1]).describe()})
    rng = np.random.default_rng(seed)
    errs = [realized(ladder, table, rungs, target) for rungs in random_ladders(pool, budget, need, n_random, rng)]
    if errs:
        rows.append({"strategy": "random (median of %d)" % len(errs), "runs": np.nan, "compute": np.nan,
                     "error": float(np.median(np.abs(errs))), "choice": ""})
    return [{"ladder": ladder.name, "target": target.name, "budget": budget_share, **r} for r in rows]


def accuracy_backtest(ladder: Ladder, runs: dict, target: Run, draws: int, seed: int) -> list:
    """Per budget and task: the two-step method on the design's choice, its error at `target` in points, and the
    design's bands (the task's and a task at random's); last, the same for the paper's own fit set (its 16 runs), the
    reference the paper's published errors come from."""
    below = [r for r in runs.values() if r.params < target.params * (1 - 1e-3)]
    pool = [r for r in below if r.multiplier >= min(MULTIPLIERS) - 1e-9 and not r.name.endswith("-rerun")]
    own = replace(ladder.ps, points=ladder.ps.points[ladder.ps.points["run"].isin({r.name for r in below})])
    model = design.measure([*ladder.prior, own])
    accuracy = design_accuracy.measure_accuracy([own])
    print(f"{ladder.name} {target.name}: accuracy error model {accuracy.describe()}", file=sys.stderr)
    fit = design.loss_fit(ladder.method)
    choices = [(share, design_choice(ladder, model, target, pool, share * target.compute, draws, seed))
               for share in BUDGETS]
    choices = [(share, c[1]) for share, c in choices if c is not None]
    paper = Candidate(tuple(ladder.paper), *cost(ladder.paper))
    rows = []
    for share, best in [*choices, (paper.compute / target.compute, paper)]:
        n, d = [r.params for r in best.rungs], [r.tokens for r in best.rungs]
        at = (target.params, target.tokens)
        pooled = design.Expected.of(design_accuracy.simulate_accuracy(accuracy, fit, n, d, at, 4 * draws, seed))
        out = olmo_two_step(ladder.ps, [NAMED[target.name]], FitConfig(bootstrap=0), [r.name for r in best.rungs])
        for p in out.predictions:
            task = p["metric"].split(":")[0]
            if not p["metric"].endswith(":acc") or task not in {t.task for t in accuracy.tasks}:
                continue
            own_band = design.Expected.of(design_accuracy.simulate_accuracy(accuracy.only(task), fit, n, d, at,
                                                                            4 * draws, seed))
            err = 100 * (p["predicted"] - p["actual"])
            choice = ("the paper's fit set: " if best is paper else "") + best.describe()
            rows.append({"budget": share, "choice": choice, "runs": len(best.rungs), "task": task,
                         "predicted": 100 * p["predicted"], "actual": 100 * p["actual"], "error": err,
                         "task_low": own_band.low, "task_high": own_band.high, "task_median": own_band.median,
                         "in_task_band": own_band.covers(err), "low": pooled.low, "high": pooled.high,
                         "median": pooled.median, "in_band": pooled.covers(err)})
        print(pd.DataFrame(rows[-8:]).to_string(), file=sys.stderr)
    return rows


def accuracy_report(df: pd.DataFrame) -> str:
    lines = ["| budget | task | predicted | actual | error (points) | task's band | in | design's band (a task at "
             "random) | in |", "|---|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        lines.append(f"| {r.budget:.1%} | {r.task} | {r.predicted:.1f} | {r.actual:.1f} | {r.error:+.1f} | "
                     f"{r.task_low:+.1f} … {r.task_high:+.1f} | {'yes' if r.in_task_band else 'no'} | "
                     f"{r.low:+.1f} … {r.high:+.1f} | {'yes' if r.in_band else 'no'} |")
    lines.append("")
    for (share, choice), g in df.groupby(["budget", "choice"], sort=True):
        lines.append(f"- {share:.1%}: {choice} ({int(g['runs'].iloc[0])} runs): median |error| "
                     f"{g['error'].abs().median():.1f} points (design's median {g['median'].iloc[0]:.1f}); inside the "
                     f"task's band {int(g['in_task_band'].sum())} of {len(g)}, inside the design's band "
                     f"{int(g['in_band'].sum())} of {len(g)}")
    lines.append(f"- all: inside the task's band {int(df['in_task_band'].sum())} of {len(df)}, inside the design's "
                 f"band {int(df['in_band'].sum())} of {len(df)}")
    return "\n".join(lines)


def published_ladders():
    """(OLMo's points, [Gadre et al.'s C4 points, RedPajama points]), or exit with where they are looked for."""
    root = shared_data_dir()
    if root is None:
        sys.exit("published ladder data not found at <repo>/../shared/data (set LADDER_SHARED_DATA)")
    return (load_points(str(root / "olmo-ladder" / "runs")),
            [load_points(str(root / "gadre-scaling"), dataset=d) for d in ("c4_original", "rpj")])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=96)
    parser.add_argument("--random", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-multiplier", type=float, default=min(MULTIPLIERS),
                        help="the smallest M of the runs every strategy chooses from (ladder design's default grid)")
    parser.add_argument("--csv", default=None, help="write every row here")
    parser.add_argument("--accuracy", action="store_true",
                        help="backtest the accuracy error in points on OLMo's 13B-5T instead of the loss error")
    args = parser.parse_args()
    olmo, gadre = published_ladders()
    ladders = []
    o_runs, o_table = runs_of(olmo, "c4_en:loss")
    ladders.append((Ladder("OLMo", olmo, "c4_en:loss", "olmo_two_step",
                           [o_runs[r] for r in o_runs if r.split("-", 1)[1] in ("1xC", "2xC", "5xC", "10xC")],
                           gadre), o_table, o_runs, ["13B-5T"]))
    for ps in gadre:
        g_runs, g_table = runs_of(ps, "c4_val:loss")
        by_size = sorted({r.params for r in g_runs.values()})
        big = [r.name for r in g_runs.values() if r.params > by_size[3]]
        held_411 = max((r for r in g_runs.values() if r.params == by_size[3]), key=lambda r: r.tokens).name
        ladders.append((Ladder(f"Gadre {ps.points['dataset'].iloc[0]}", ps, "c4_val:loss", "gadre",
                               [g_runs[r] for r in gadre_runs(ps)[0]], [olmo]), g_table, g_runs, big + [held_411]))
    if args.accuracy:
        ladder, table, runs, _ = ladders[0]
        ladder.table = table
        df = pd.DataFrame(accuracy_backtest(ladder, runs, runs["13B-5T"], args.draws, args.seed))
        if args.csv:
            df.to_csv(args.csv, index=False)
        print(accuracy_report(df))
        return
    rows = []
    for ladder, table, runs, targets in ladders:
        ladder.table = table
        for t in targets:
            target = runs[t]
            below = [r for r in runs.values() if r.params < target.params * (1 - 1e-3)]
            pool = [r for r in below if r.multiplier >= args.min_multiplier - 1e-9 and not r.name.endswith("-rerun")]
            own = replace(ladder.ps, points=ladder.ps.points[ladder.ps.points["run"].isin({r.name for r in below})])
            model = design.measure([*ladder.prior, own])
            print(f"{ladder.name} {t}: error model {model.describe()}", file=sys.stderr)
            for share in BUDGETS:
                rows += backtest(ladder, model, target, pool, share, args.draws, args.random, args.seed)
                print(pd.DataFrame(rows[-4:]).to_string(), file=sys.stderr)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    print(report(df))


def report(df: pd.DataFrame) -> str:
    lines = ["| budget | strategy | targets | median \\|error\\| | 90th pct \\|error\\| |", "|---|---|---|---|---|"]
    df = df.assign(abs_error=df["error"].abs(), kind=df["strategy"].str.replace(r" \(.*", "", regex=True))
    for (share, kind), g in df.groupby(["budget", "kind"], sort=True):
        lines.append(f"| {share:.1%} | {kind} | {len(g)} | {g['abs_error'].median():.2%} | "
                     f"{g['abs_error'].quantile(0.9):.2%} |")
    d = df[df["strategy"] == "design"]
    lines += ["", f"design's realized error inside its predicted 90 % band: {int(d['covered'].sum())} of {len(d)}", ""]
    for other in ("paper, cut", "smallest sizes", "random"):
        paired = df[df["kind"] == other].merge(d, on=["ladder", "target", "budget"], suffixes=("", "_design"))
        if len(paired):
            wins = int((paired["abs_error_design"] < paired["abs_error"]).sum())
            lines.append(f"- against {other}, same target and budget: design closer in {wins} of {len(paired)}; "
                         f"median |error| {paired['abs_error_design'].median():.2%} vs "
                         f"{paired['abs_error'].median():.2%}")
    lines += ["",
              "| ladder | target | budget | strategy | runs | compute | error | design's band | choice |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        bandtxt = f"{100 * r.low:+.2f} … {100 * r.high:+.2f} %" if r.strategy == "design" else ""
        lines.append(f"| {r.ladder} | {r.target} | {r.budget:.1%} | {r.strategy} | "
                     f"{'' if pd.isna(r.runs) else int(r.runs)} | {'' if pd.isna(r.compute) else f'{r.compute:.3g}'} | "
                     f"{100 * r.error:+.2f} % | {bandtxt} | {r.choice} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
