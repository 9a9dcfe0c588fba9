"""The runs a method fits and what it reads from them: the run table (each run's N, D, FLOPs, final
values and checkpoint series, prepared once), each paper's fit set, the tasks and losses the data has,
and the checks every fit set must pass."""
from typing import List, Optional, Sequence

import numpy as np

from fit.errors import FitInputError
from fit.points import PointSet
from ladder.core.plan import Target


class RunTable:
    """Per-run arrays prepared once, so that bootstrap refits only index into them."""

    def __init__(self, ps: PointSet, runs: List[str]):
        # A run's final value: the mean of its last evaluations where the source evaluates every ~1 % of a
        # run (the OLMo exports: 5), else its final point (the harness's few checkpoints reach back far).
        last = ps.profile.final_window
        self.task_order = ps.profile.task_order
        p = ps.points[ps.points["run"].isin(runs)].sort_values(["run", "metric", "tokens"])
        self.runs = list(runs)
        self.info, self.final, self.series = {}, {}, {}
        for (run, metric), g in p.groupby(["run", "metric"], sort=False):
            self.info.setdefault(run, (float(g["params"].iloc[-1]), float(g["tokens"].iloc[-1]),
                                       float(g["flops"].iloc[-1]), float(g["multiplier"].iloc[-1])))
            self.final[run, metric] = float(g["value"].tail(last).mean())
            self.series[run, metric] = (g["tokens"].to_numpy(float), g["value"].to_numpy(float))

    def has(self, metric):
        return all((r, metric) in self.final for r in self.runs)

    def finals(self, runs, metric):
        """(X = [N, D], y, C) at each run's final checkpoint, y averaged over its last evaluations."""
        N, D, C, _ = np.array([self.info[r] for r in runs]).T
        return np.vstack([N, D]), np.array([self.final[r, metric] for r in runs]), C

    def checkpoints(self, runs, x_metric, y_metric, skip=0.1, avg=5, every=1):
        """Intermediate checkpoints after the first `skip` of each run, each series smoothed with a
        trailing moving average of `avg` (OLMo-ladder get_step2_data_by_name), and each point's
        position in `runs` (for per-run bootstrap weights). `every` keeps every so-many smoothed
        points of a run, counted back from its last. x and y pair at the checkpoints that have both (a point
        left out of one metric, a NaN say, leaves its checkpoint out of the pair)."""
        xs, ys, owner = [], [], []
        for i, r in enumerate(runs):
            (tx, x), (ty, y) = self.series[r, x_metric], self.series[r, y_metric]
            _, ix, iy = np.intersect1d(tx, ty, assume_unique=True, return_indices=True)
            x, y = x[ix], y[iy]
            k = min(int(np.ceil(skip * len(x))), len(x) - 1)  # a run of one row (a table of finals) keeps it
            xs.append(_moving_average(x[k:], avg)[::-1][::every][::-1])
            ys.append(_moving_average(y[k:], avg)[::-1][::every][::-1])
            owner.append(np.full(len(xs[-1]), i))
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(owner)


def _moving_average(a, n):
    c = np.cumsum(a, dtype=float)
    c[n:] = c[n:] - c[:-n]
    return c / np.minimum(np.arange(1, len(a) + 1), n)


def check_fit_set(table: RunTable, n_params: int, what: str, needs_sizes: bool = True):
    sizes = {table.info[r][0] for r in table.runs}
    if len(table.runs) < n_params + 1:
        raise FitInputError(f"{what}: {len(table.runs)} run(s) for a law with {n_params} parameters; need at least "
                            f"{n_params + 1} (a fit takes the runs smaller than every target; include=[RUN,...] adds others)")
    if needs_sizes and len(sizes) < 2:
        raise FitInputError(f"{what}: all {len(table.runs)} runs are at one size (N = {sizes.pop():.4g}); the N exponent cannot be fitted")


def range_warnings(table: RunTable, targets: List[Target]) -> List[str]:
    N = max(v[0] for v in table.info.values())
    D = max(v[1] for v in table.info.values())
    return [f"target {t.name} (N={t.params:.4g}, D={t.tokens:.4g}) lies inside the fit range "
            f"(largest N={N:.4g}, D={D:.4g}): this is interpolation, not the extrapolation the ladder is for"
            for t in targets if t.params <= N and t.tokens <= D]


def fit_runs(ps: PointSet, targets: List[Target], include: Sequence[str] = ()) -> List[str]:
    """The runs a method fits by default: every run smaller than every target in N, so that a ladder predicts
    what is bigger than itself (a target between ladder sizes is fitted from the sizes below it alone), less
    those its source leaves out (the OLMo exports' reruns and 0.5xC runs, as the paper does); a run at or
    above a target enters only when `include` names it (fit.include)."""
    runs = ps.points.drop_duplicates("run")
    unknown = sorted(set(include) - set(runs["run"]))
    if unknown:
        raise FitInputError(f"fit.include: no run {unknown[0]!r} in the data (runs: {', '.join(sorted(runs['run']))})")
    smallest = min((t.params for t in targets), default=np.inf)
    keep = runs["params"].astype(float) < smallest * (1 - 1e-3)
    if ps.profile.excluded is not None:
        keep &= ~ps.profile.excluded(runs)
    return sorted(set(runs.loc[keep, "run"]) | set(include))


def loss_fit_set(ps: PointSet, targets: List[Target], include: Sequence[str] = ()) -> List[str]:
    """A loss law's default fit set: its source paper's loss-fit runs where the source declares them (Gadre et
    al.'s), else `fit_runs`."""
    return list(ps.profile.fit_sets(ps)[0]) if ps.profile.fit_sets else fit_runs(ps, targets, include)


def accuracy_fit_set(ps: PointSet, targets: List[Target], include: Sequence[str] = ()) -> List[str]:
    """An accuracy (or error) law's default fit set: its source paper's where the source declares them, else
    `fit_runs`."""
    return list(ps.profile.fit_sets(ps)[1]) if ps.profile.fit_sets else fit_runs(ps, targets, include)


def gadre_fit_set(ps: PointSet, targets: List[Target], include: Sequence[str] = ()) -> List[str]:
    """Gadre et al.'s error-law fit set, which holds its loss-law fit set (`gadre_fit_sets`)."""
    return gadre_fit_sets(ps, targets, include)[1]


def gadre_fit_sets(ps: PointSet, targets: List[Target], include: Sequence[str] = ()):
    """Gadre et al.'s (loss-law, error-law) fit sets: the paper's own runs where the source declares them (its
    data: `gadre_runs`), else the same roles among the runs smaller than every target (`fit_runs`): up to the four
    smallest shapes at the ladder's most common multiplier M, plus the smallest shape's run at the M furthest from
    it (the paper's M = 320), for the loss law; those plus the fifth shape at that M, where there is one, for the
    error law."""
    if ps.profile.fit_sets:
        return ps.profile.fit_sets(ps)
    runs = ps.points.drop_duplicates("run").set_index("run").loc[fit_runs(ps, targets, include)]
    log_m = np.round(np.log(runs["multiplier"].astype(float)), 1)
    common = log_m.mode().max()  # a tie: the largest M
    at = runs[log_m == common]
    shapes = sorted(at["params"].unique())
    if len(shapes) < 2:
        raise FitInputError(f"gadre: {len(shapes)} size(s) at the ladder's most common multiplier (M = "
                            f"{np.exp(common):.3g}); its fit sets need runs at two sizes there or more")
    loss = sorted(at[at["params"].isin(shapes[:4])].index)
    off = runs[(runs["params"] == shapes[0]) & (log_m != common)]
    if len(off):
        loss.append((log_m[off.index] - common).abs().idxmax())
    return loss, loss + sorted(at[at["params"].isin(shapes[4:5])].index)


def task_metrics(table: RunTable, kinds=("acc",), required: bool = True) -> List[str]:
    """Tasks with every metric `<task>:<kind>` on every fit run, those of the source's paper first in its order
    (the OLMo paper's 8), then every other task the data has (e.g. `derived` on the harness's own ladders). None is an
    error only when `required`."""
    names = sorted({m.split(":")[0] for (_, m) in table.final if m.endswith(":acc")})
    names = [t for t in table.task_order if t in names] + [t for t in names if t not in table.task_order]
    tasks = [t for t in names if all(table.has(f"{t}:{k}") for k in kinds)]
    if not tasks and required:
        raise FitInputError("the data has no task with metrics " + " and ".join(f"<task>:{k}" for k in kinds)
                            + " on every fit run")
    return tasks


def primary_loss(table: RunTable) -> str:
    """The LM loss a ladder is judged by: C4 (OLMo `c4_en`, Gadre `c4_val`), else the first held-out
    `<set>_val:loss` (the harness's own `<dataset>_val:loss`), else any `:loss` on every fit run."""
    pick = choose_primary({m for (_, m) in table.final if table.has(m)})
    if pick is None:
        raise FitInputError("the data has no loss metric (<set>:loss) on every fit run")
    return pick


def choose_primary(metrics) -> Optional[str]:
    """`primary_loss` among `metrics`; None when none is a loss."""
    losses = sorted(m for m in metrics if m.endswith(":loss"))
    for m in ("c4_en:loss", "c4_val:loss"):
        if m in losses:
            return m
    pick = [m for m in losses if m.endswith("_val:loss")] or losses
    return pick[0] if pick else None


def gadre_runs(ps: PointSet):
    """Gadre et al.'s fit sets: the four smallest shapes at M = 20 plus the smallest at M = 320 for the
    loss law, and those plus the next shape at M = 20 for the error law."""
    runs = ps.points.drop_duplicates("run")
    sizes = sorted(runs["params"].unique())
    if len(sizes) < 5:
        raise FitInputError(f"gadre: the data has {len(sizes)} model sizes; the paper's fit sets need 5")
    m20 = runs[np.isclose(runs["multiplier"], 20)]
    loss = sorted(m20[m20["params"].isin(sizes[:4])]["run"]) + sorted(
        runs[(runs["params"] == sizes[0]) & np.isclose(runs["multiplier"], 320)]["run"])
    err = loss + sorted(m20[m20["params"] == sizes[4]]["run"])
    return loss, err
