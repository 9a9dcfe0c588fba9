"""The published methods, each declared as a chain of steps (fit.chain) on its paper's fit set.

Each method fits the runs it is given (its record's `fit_set` rule of fit.runs chooses them by default), builds its
steps (law, starts, bounds, points, what feeds what) and hands them to fit.chain.run_chain, which fits, bootstraps and
predicts any chain. Each method's record (fit.chain.Method) is declared below its function; fit.registry lists them."""
from dataclasses import dataclass, replace
from functools import partial
from typing import Dict, List, Optional, Tuple

import numpy as np

from fit import laws
from fit.chain import Method, MethodOutput, Points, Step, run_chain
from fit.errors import FitInputError
from fit.points import PointSet
from fit.runs import (RunTable, accuracy_fit_set, check_fit_set, fit_runs, gadre_fit_set, gadre_fit_sets, loss_fit_set,
                      primary_loss, range_warnings, task_metrics)
from fit.sizing import Form, check_sizes, compute_of, sized, unidentified_d
from ladder.core.plan import Target

STEP1_START, STEP1_BOUNDS = [3.0, 6.0, 0.1, 0.2, 1.0], [(0, None)] * 5
SIGMOID_BOUNDS = [(-1.0, 0.0), (0.0, None), (0.0, None), (0.0, 1.0)]
# Besiroglu et al.-style grid for step 1 off the paper's data, where the paper's one start
# (tuned to OLMo's N, D and loss scale) can stall; screened in one batch (fit_huber_log).
STEP1_GRID = [[a, b, al, be, e] for a in (0.0, 5.0, 10.0) for b in (0.0, 5.0, 10.0) for al in (0.1, 0.3, 0.6)
              for be in (0.1, 0.3, 0.6) for e in (0.5, 1.5, 3.0)]
# Besiroglu et al. 2024 (Epoch AI) start grid, thinned to 3 values per parameter to keep fits fast.
CHINCHILLA_GRID = [[a, b, e, al, be] for a in (0.0, 10.0, 20.0) for b in (0.0, 10.0, 20.0) for e in (-1.0, 0.0, 1.0)
                   for al in (0.2, 0.5, 1.0) for be in (0.2, 0.5, 1.0)]
GADRE_GRID = [[a, b, c, e] for a in (1e2, 3e2, 1e3, 3e3) for b in (1e2, 3e2, 1e3, 3e3) for c in (-0.1, -0.3)
              for e in (0.0, 1.0, 2.0, 10.0)]
# Krajewski et al.'s start grid for eq. 4 (apple/ml-scaling-downstream-metrics): a, b in {5, 10, 15},
# alpha, beta in {0.5, 1, 1.5}.
DIRECT_GRID = [[a, b, al, be] for a in (5.0, 10.0, 15.0) for b in (5.0, 10.0, 15.0) for al in (0.5, 1.0, 1.5)
               for be in (0.5, 1.0, 1.5)]


def final_points(table: RunTable, runs: List[str], metric: str, all_runs: Optional[List[str]] = None,
                 x=None) -> Points:
    """Each run's final value of `metric` at its (N, D) (or at `x`, a function of (N, D), C), tagged
    with the run's index in `all_runs` (default `runs`)."""
    X, y, C = table.finals(runs, metric)
    index = {r: i for i, r in enumerate(all_runs or runs)}
    return Points(X if x is None else x(X, C), y, np.array([index[r] for r in runs]))


def nd(targets: List[Target]) -> np.ndarray:
    return np.array([[t.params for t in targets], [t.tokens for t in targets]])


def sized_step(key: str, full: Form, points: Points, targets: List[Target], what: str, compute=None,
               quantity: str = "L", **kw) -> Tuple[Step, Optional[str]]:
    """A step of the largest law of `full`'s family that its points identify (fit.sizing), and why it was reduced
    (None: `full` itself). `points` are in (N, D); a law in compute takes C = 6ND, or `compute`: (the points' C,
    the targets' C, (N, D) -> C) where the method has its own (the data's FLOPs)."""
    N, D = points.X
    C, target_c, inputs = compute or (compute_of(points.X)[0], compute_of(nd(targets)), compute_of)
    form, note = sized(full, N, D, points.y, what, C, quantity)
    if form.in_compute:
        points, tx, x_label = Points(C[None, :], points.y, points.run), target_c, "compute C"
    else:
        tx, x_label, inputs = nd(targets), "tokens D", None
    return Step(key, form.law, points, form.starts, form.bounds, target_x=tx, x_label=x_label, inputs=inputs,
                **kw), note


def reductions(name: str, notes: List[Optional[str]], what: str) -> List[str]:
    """Each reduction said once, with how many of the method's laws it applies to."""
    said = [n for n in notes if n]
    return [f"{name}: {what}{n}" + (f" ({said.count(n)} of its {len(notes)} laws)" if len(notes) > 1 else "")
            for n in dict.fromkeys(said)]


def below_chance(name: str, ps: PointSet, table: RunTable, runs: List[str], tasks: List[str], kept: str) -> List[str]:
    """A warning per task whose fit runs end at or below its chance level, which a method fits as they are."""
    out = []
    for task in tasks:
        _, y, _ = table.finals(runs, f"{task}:acc")
        low = int((y <= ps.chance_of(f"{task}:acc")).sum())
        if low:
            out.append(f"{name}: {task}:acc: {low} of {len(runs)} fit run(s) end at or below chance "
                       f"({ps.chance_of(f'{task}:acc'):.4g}), {kept}")
    return out


@dataclass(frozen=True)
class Sigmoid:
    """Step 2 of the two-step methods. The paper's: Acc = a/(1+exp(-k(L-L0))) + b started from the
    task's chance level (a = chance - 1, the PointSet's chance from the data), b <= 1, and a point at
    (0, 1) (zero loss, perfect accuracy). Variants, for the ladder backtests (scripts/backtest_best.py):
    a `ceiling` below 1 (b <= ceiling and the anchor at (0, ceiling)); `fixed`: floor (a = chance - 1)
    and ceiling (b = 1) pinned, a two-parameter logistic; `anchor_on_lm_loss=False`: no anchor where the
    intermediate is an LM loss (zero LM loss is no physical point, unlike zero task bpb)."""
    ceiling: float = 1.0
    fixed: bool = False
    anchor_on_lm_loss: bool = True

    def step(self, key, task, xs, ys, owner, intermediate, chance, refit=None, **kw) -> Step:
        a = chance - 1.0
        anchored = self.anchor_on_lm_loss or not intermediate.endswith(":loss")

        def points(xs, ys, owner):
            if not anchored:
                return Points(xs[None, :], ys, owner)
            return Points(np.append(xs, 0.0)[None, :], np.append(ys, self.ceiling), np.append(owner, -1))

        bounds = ([(a - 1e-9, a), (0.0, None), (0.0, None), (1 - 1e-9, 1.0)] if self.fixed else
                  SIGMOID_BOUNDS[:3] + [(0.0, self.ceiling)])
        return Step(key, laws.SIGMOID, points(xs, ys, owner), [[a, 0.9, 3.0, min(1.0, self.ceiling)]], bounds,
                    refit_points=refit and points(*refit), label=task, x_label=intermediate,
                    drop_note="no sigmoid fits its (loss, accuracy) points; no accuracy predicted",
                    describe=lambda fit: {"intermediate": intermediate}, **kw)


PAPER_SIGMOID = Sigmoid()


def olmo_two_step(ps: PointSet, targets: List[Target], cfg, runs: List[str], flops: bool = False,
                  name: Optional[str] = None, intermediate: Optional[Dict[str, str]] = None, thin: int = 1,
                  grid: Optional[bool] = None, sigmoid: Sigmoid = PAPER_SIGMOID) -> MethodOutput:
    """Bhagia et al. 2024: step 1 task bpb from (N, D) (or from FLOPs), step 2 sigmoid bpb -> accuracy, chained.
    By default every task with accuracy is predicted through its bpb (the data's primary loss when it
    has none); `intermediate` instead maps the tasks to predict to their intermediate losses (e.g.
    c4_en:loss, <task>:gold_nll). Tasks with the same intermediate share one step-1 fit. A task whose
    sigmoid cannot be fitted is left out with a warning; its loss is still predicted, as on data with
    no task at all. `thin` > 1 refits the bootstrap's sigmoids on every `thin`-th smoothed checkpoint
    (the full fit always takes them all), for methods that refit many paths. Step 1 starts from the
    paper's start alone on the paper's data and adds STEP1_GRID elsewhere; `grid` forces either.
    `sigmoid` is step 2's form (the paper's, or a backtest variant). Step 1's law is sized to the runs (fit.sizing:
    fewer runs than its parameters, or runs at one M or one D, fit a reduced law, said), and step 2's sigmoid fixes
    its floor and ceiling on fewer than 5 points."""
    name = name or ("olmo_two_step_flops" if flops else "olmo_two_step")
    table = RunTable(ps, runs)
    check_sizes(np.array([table.info[r][0] for r in runs]), name)
    loss = primary_loss(table)
    tasks = task_metrics(table, required=False)
    if intermediate is None:
        inter = {t: f"{t}:bpb" if table.has(f"{t}:bpb") else loss for t in tasks}
    else:
        tasks = [t for t in tasks if t in intermediate]
        inter = {t: intermediate[t] for t in tasks}
    for t, xm in inter.items():
        if not table.has(xm):
            raise FitInputError(f"{name}: intermediate {xm} of task {t} is not on every fit run")
    compute = None
    if flops:
        per_token, rule = _flops_per_token(table, targets, name)
        full = Form(laws.OLMO_FLOPS, [[3.0, 0.1, 1.0]], [(0, None)] * 3, True, "{y}(C) = exp(log_A)/C^alpha + E")
        compute = (np.array([table.info[r][2] for r in runs]), np.array([[per_token[t.name] * t.tokens for t in targets]]),
                   lambda ND: (rule(ND[0]) * ND[1])[None, :])
    else:
        starts1 = [STEP1_START] + (STEP1_GRID if (not ps.profile.paper_starts if grid is None else grid) else [])
        full = Form(laws.OLMO_ND, starts1, STEP1_BOUNDS, False, "{y}(N, D) = exp(log_A)/N^alpha + exp(log_B)/D^beta + E")
    steps, notes = [], []
    for xm in list(dict.fromkeys(inter.values())) or [loss]:
        step, note = sized_step(f"{xm}:step1", full, final_points(table, runs, xm), targets, f"{name}: {xm}",
                                compute, huber=1e-3, output=xm, label=xm)
        steps.append(step)
        notes.append(note)
    step2_notes = []
    for task in tasks:
        data = table.checkpoints(runs, inter[task], f"{task}:acc")
        refit = table.checkpoints(runs, inter[task], f"{task}:acc", every=thin) if thin > 1 else None
        form = sigmoid
        if len(data[0]) < len(laws.SIGMOID.params) + 1 and not sigmoid.fixed:
            form = replace(sigmoid, fixed=True)
            step2_notes.append(f"sigmoid reduced to its floor and ceiling fixed (a = chance - 1, b = 1): "
                               f"{len(data[0])} (loss, accuracy) point(s) for its 4 parameters (it needs 5)")
        steps.append(form.step(f"{task}:step2", task, *data, inter[task], ps.chance_of(f"{task}:acc"),
                               refit=refit, fed_by=f"{inter[task]}:step1", output=f"{task}:acc"))
    out = run_chain(name, ps, targets, runs, steps, cfg)
    out.warnings[:0] = reductions(name, notes, "step 1 ") + reductions(name, step2_notes + [None] * (
        len(tasks) - len(step2_notes)), "step 2 ")
    N, D = final_points(table, runs, loss).X
    out.warnings += unidentified_d(name, N, D, targets)
    if tasks and all(len(table.series[r, loss][0]) == 1 for r in runs):
        out.warnings.append(f"{name}: step 2: every fit run has one evaluation, so each sigmoid fits the runs' final "
                            "points alone (a CSV without `run` and `step` columns reads each row as its own run: a "
                            "table of checkpoints needs one of them)")
    out.warnings += below_chance(name, ps, table, runs, tasks, "kept in its sigmoid fit")
    if not tasks:
        out.warnings.append(f"{name}: the data has no <task>:acc on every fit run; only {loss} is predicted")
    out.warnings += range_warnings(table, targets)
    return out


def _flops_per_token(table: RunTable, targets: List[Target], name: str):
    """Known per-token FLOPs of a target, else a log-log line through the ladder's (N, FLOPs/token); and that
    line as a function of N (for the figures). Runs without training FLOPs are refused, naming the column: step 1
    fits the loss against them, and a NaN compute leaves the law at its start values."""
    N = np.array([table.info[r][0] for r in table.runs])
    fpt = np.array([table.info[r][2] / table.info[r][1] for r in table.runs])
    lacking = [r for r, v in zip(table.runs, fpt) if not np.isfinite(v) or v <= 0]
    if lacking:
        raise FitInputError(f"{name}: fits the loss against training compute, but {len(lacking)} of {len(table.runs)} "
                            f"fit run(s) carry no `flops` (e.g. {lacking[0]}): add a `flops` column (training FLOPs "
                            "at each row), or use method=olmo_two_step, which fits (N, D)")
    slope, icept = np.polyfit(np.log(N), np.log(fpt), 1)
    return ({t.name: t.flops_per_token or float(np.exp(icept + slope * np.log(t.params))) for t in targets},
            lambda n: np.exp(icept + slope * np.log(np.asarray(n, float))))


def olmo_single_step(ps: PointSet, targets: List[Target], cfg, runs: List[str]) -> MethodOutput:
    """Bhagia et al. 2024 baseline: accuracy straight from (N, D) through a sigmoid of L(N, D)."""
    table = RunTable(ps, runs)
    check_fit_set(table, 7, "olmo_single_step")
    bounds = [(0, None)] * 4 + [(None, None), (-1.0, 0.0), (0.0, 1.0)]
    tasks = task_metrics(table)
    steps = [Step(f"{task}:single_step", laws.SINGLE_STEP, final_points(table, runs, f"{task}:acc"),
                  [[3.0, 5.0, 0.2, 0.3, 0.0, ps.chance_of(f"{task}:acc") - 1.0, 1.0]], bounds, huber=1e-3,
                  target_x=nd(targets), output=f"{task}:acc", label=task, x_label="tokens D")
             for task in tasks]
    out = run_chain("olmo_single_step", ps, targets, runs, steps, cfg)
    out.warnings += below_chance("olmo_single_step", ps, table, runs, tasks, "kept in its fit")
    out.warnings += range_warnings(table, targets)
    return out


def chinchilla(ps: PointSet, targets: List[Target], cfg, runs: List[str]) -> MethodOutput:
    """Hoffmann et al. 2022 approach 3 on every loss-like metric (`:loss`, `:bpb`) of the data, each law sized to the
    runs (fit.sizing)."""
    table = RunTable(ps, runs)
    check_sizes(np.array([table.info[r][0] for r in runs]), "chinchilla")
    metrics = [m for m in sorted(ps.points["metric"].unique()) if m.endswith((":loss", ":bpb")) and table.has(m)]
    if ps.profile.losses is not None:  # the paper's (OLMo: C4 and its 8 tasks)
        metrics = [m for m in metrics if ps.profile.losses(m)]
    if not metrics:
        raise FitInputError("chinchilla: the data has no loss metric (<set>:loss or <task>:bpb) on every fit run")
    full = Form(laws.CHINCHILLA, CHINCHILLA_GRID, None, False, "{y}(N, D) = E + A/N^alpha + B/D^beta")
    sized_steps = [sized_step(m, full, final_points(table, runs, m), targets, f"chinchilla: {m}", huber=1e-3,
                              options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000}, output=m, label=m)
                   for m in metrics]
    out = run_chain("chinchilla", ps, targets, runs, [s for s, _ in sized_steps], cfg)
    out.warnings[:0] = reductions("chinchilla", [n for _, n in sized_steps], "")
    N, D = final_points(table, runs, metrics[0]).X
    out.warnings += range_warnings(table, targets) + unidentified_d("chinchilla", N, D, targets)
    return out


def gadre(ps: PointSet, targets: List[Target], cfg) -> MethodOutput:
    """Gadre et al. 2024: the primary LM loss (the paper's C4 eval) from (C, M), then each error from the predicted
    loss: the paper's averages of top-1 error where the data has them, else each task's error 1 - accuracy (the
    accuracy predicted). Fit sets by role (fit.runs.gadre_fit_sets): the paper's own on its data. The loss law is
    sized to its runs (fit.sizing: without an off-M run it has no M term, and runs along compute); an error law on
    fewer than 4 runs pins its ceiling ε at 1 - chance, the error of a guess. A bootstrap resample with fewer
    distinct loss-fit runs than the loss law's free parameters cannot refit it."""
    loss_runs, err_runs = gadre_fit_sets(ps, targets, cfg.include)
    table = RunTable(ps, err_runs)
    loss = primary_loss(table)
    to_nm = lambda ND: np.vstack([ND[0], ND[1] / ND[0]])  # noqa: E731 (N, M): the paper's code fits in N and M = D/N
    full = Form(laws.GADRE_LOSS, GADRE_GRID, None, False, "{y}(N, M) = alpha·N^c + beta·6^(c/2)·(M·N)^c + E")
    step, note = sized_step(loss, full, final_points(table, loss_runs, loss, err_runs), targets, f"gadre: {loss}",
                            output=loss, label=loss)
    if step.law is laws.GADRE_LOSS:
        step = replace(step, points=Points(to_nm(step.points.X), step.points.y, step.points.run),
                       target_x=to_nm(nd(targets)), inputs=to_nm, x_label="tokens per parameter M",
                       describe=lambda fit: {"cm_params": laws.gadre_cm_params(fit.params)})
    free = len(step.law.params) - sum(1 for lo, hi in step.bounds or [] if lo == hi)
    steps = [replace(step, min_runs=free)]
    _, L, _ = table.finals(err_runs, loss)
    metrics = [m for m in ps.profile.accuracies if table.has(m)] or [f"{t}:acc" for t in task_metrics(table, required=False)]
    errs = []
    for m in metrics:
        _, v, _ = table.finals(err_runs, m)
        ceiling = 1 - ps.chance_of(m)
        pinned = len(err_runs) < len(laws.GADRE_ERR.params) + 1
        errs.append(pinned)
        steps.append(Step(m, laws.GADRE_ERR, Points(L[None, :], v if m.endswith(":err") else 1 - v,
                                                    np.arange(len(err_runs))),
                          [[k, g, ceiling if pinned else 1.0] for k in (1.0, 10.0, 100.0) for g in (0.3, 1.0, 3.0)]
                          if pinned else [[1.0, 1.0, 1.0]],
                          [(None, None), (None, None), (ceiling - 1e-9, ceiling)] if pinned else None,
                          fed_by=loss, output=m, to_output=None if m.endswith(":err") else (lambda e: 1 - e), label=m,
                          x_label=loss))
    out = run_chain("gadre", ps, targets, err_runs, steps, cfg)
    out.warnings[:0] = reductions("gadre", [note], "loss ") + (
        [f"gadre: error law reduced to Err(L) = epsilon - k·exp(-gamma·L) with epsilon fixed at 1 - chance: "
         f"{len(err_runs)} run(s) for its 3 parameters (it needs 4)"] if any(errs) else [])
    out.warnings += range_warnings(RunTable(ps, loss_runs), targets)
    if cfg.bootstrap > 0 and step.law is laws.GADRE_LOSS and len(loss_runs) == 5:
        out.warnings.append(
            "gadre: its loss law has 4 parameters and the paper fits it on 5 runs, so 59 % of the resamples of "
            "its runs hold fewer than 4 distinct loss-fit runs and cannot refit it, and the rest nearly "
            "interpolate: the bootstrap does not measure the fit. With calibrate (the default) the interval is "
            "the method's miss on the data's runs outside its fit set instead (docs/fit.md)")
    return out


def direct(ps: PointSet, targets: List[Target], cfg, runs: List[str]) -> MethodOutput:
    """Krajewski et al. 2025 (arXiv 2512.08894), the direct method: each task's accuracy straight from
    the ladder's final points, with no intermediate loss. Q = (Acc - chance)/(1 - chance) and
    -log Q(N, D) = A·N^-alpha + B·D^-beta (the paper's eq. 4, across tokens-per-parameter ratios, so that
    it reaches targets at ratios the ladder lacks), fitted as the paper's code does: Huber (delta 1e-3)
    on log(-log Q) from its 81-start grid. Runs at or below chance (Q <= 0) are left out of a task's fit,
    as the log cannot take them. Tasks: every `<task>:acc`, or on Gadre data 1 - `avg46/avg17:err`; chance
    levels are the PointSet's (from the data: 0 for Gadre et al.'s averages over tasks of mixed chance). Each task's
    law is sized to its runs above chance (fit.sizing); a task with those at fewer than two sizes is not predicted."""
    table = RunTable(ps, runs)
    check_sizes(np.array([table.info[r][0] for r in runs]), "direct")
    metrics = ([m for m in ps.profile.accuracies if table.has(m)] if ps.profile.accuracies
               else [f"{t}:acc" for t in task_metrics(table)])
    full = Form(laws.DIRECT_ND, DIRECT_GRID, [(None, None)] * 2 + [(0, None)] * 2, False,
                "{y}(N, D) = A/N^alpha + B/D^beta")
    steps, warns, notes = [], [], []
    for m in metrics:
        floor, err = ps.chance_of(m), m.endswith(":err")
        X, y, _ = table.finals(runs, m)
        q = ((1 - y) if err else y) - floor
        keep = q > 0
        if len(np.unique(X[0, keep])) < 2:
            warns.append(f"direct: {m}: {int(keep.sum())} run(s) above chance, at {len(np.unique(X[0, keep]))} "
                         "size(s): no law in N can be fitted to them; not predicted")
            continue
        if not keep.all():
            warns.append(f"direct: {m}: {int((~keep).sum())} run(s) at or below chance left out of its fit")
        neg_log_q = -np.log(q[keep] / (1 - floor))
        to_acc = (lambda v, f=floor, e=err: 1 - (f + (1 - f) * np.exp(-v)) if e else f + (1 - f) * np.exp(-v))
        step, note = sized_step(f"{m}:direct", full, Points(X[:, keep], neg_log_q, np.flatnonzero(keep)), targets,
                                f"direct: {m}", quantity="-log Q", huber=1e-3, output=m, to_output=to_acc, label=m,
                                describe=lambda fit, f=floor: {"chance": f, "fitted": "-log Q"})
        steps.append(step)
        notes.append(note)
    out = run_chain("direct", ps, targets, runs, steps, cfg)
    N, D, _, _ = np.array([table.info[r] for r in runs]).T
    out.warnings = (reductions("direct", notes, "") + warns + out.warnings + range_warnings(table, targets)
                    + unidentified_d("direct", N, D, targets))
    return out


OLMO_TWO_STEP = Method("olmo_two_step", olmo_two_step, "Bhagia et al. 2024: task bpb from (N, D), then accuracy",
                       fit_runs)
OLMO_TWO_STEP_FLOPS = Method("olmo_two_step_flops", partial(olmo_two_step, flops=True),
                             "the same two steps with step 1 in compute C", fit_runs)
OLMO_SINGLE_STEP = Method("olmo_single_step", olmo_single_step,
                          "Bhagia et al. 2024's baseline: accuracy from (N, D) in one law", fit_runs)
CHINCHILLA = Method("chinchilla", chinchilla, "Hoffmann et al. 2022 approach 3 on every loss", loss_fit_set)
GADRE = Method("gadre", gadre, "Gadre et al. 2024: C4 loss from (C, M), then error from loss, on its paper's fit sets by role",
               gadre_fit_set, fixed_fit_set=True)
DIRECT = Method("direct", direct, "Krajewski et al. 2025: each task's accuracy straight from (N, D)", accuracy_fit_set)
