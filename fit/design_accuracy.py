"""How well a ladder will predict its target's downstream ACCURACY through the two-step law, in points: the accuracy
side of `ladder design`'s error model (fit.design holds the loss side, whose pieces it reuses).

Measured, not assumed (`measure_accuracy`), on every task that a source's ladder runs all have accuracy for:
- the task's loss, the intermediate step 1 fits (`<task>:bpb`, else the ladder's primary loss, as
  fit.methods.olmo_two_step chooses it): its laws and noise measured exactly as the LM loss's (fit.design.measure of
  that metric: bootstrap refits of L(N, D), a size's offset, the run-to-run sd against N);
- step 2, the sigmoid from that task loss to accuracy (Bhagia et al. 2024 eq. 3): the method's own fit
  (fit.methods.PAPER_SIGMOID: every checkpoint after the first 10 % of each run, a moving average of 5, the (0, 1)
  anchor, least squares from the paper's start), refitted on bootstrap resamples of the runs: each refit is one
  plausible true sigmoid of that task;
- step 2's noise in points: the accuracy of a run lies off its task's sigmoid by an offset shared by its checkpoints
  (the RMS of the per-run median residuals) and each smoothed checkpoint scatters about that (1.48 × MAD).

Only ladders with per-task accuracies and checkpoints feed it: the OLMo exports (8 tasks with task bpb) and a team's
own harness ladders. Gadre et al.'s exports hold one evaluation per model (no checkpoints for step 2's points), no task
loss, and the paper's step 2 is another law in another frame (Err(L) = ε − k·exp(−γL) from C4 loss to the mean top-1
error over 46 tasks of mixed chance), so they add nothing to a prior over task-loss sigmoids.

`simulate_accuracy` draws a task, its task-loss law and sigmoid, and the noise; makes the ladder's final task losses
(step 1's points) and checkpoints along each rung (step 2's: the task loss at 20-100 % of the rung's tokens, each
with its accuracy off the sigmoid by the run's offset and the checkpoint's scatter); fits step 1 with the method's
loss fit and step 2 with the method's sigmoid (both batched over the draws), chains them at the target and scores
the predicted accuracy against the drawn true one (its sigmoid at the true task loss, off it by one run's offset, as
a real target's measured accuracy is). Errors are in points (100 × accuracy), predicted − true.
"""
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
import pandas as pd

from fit import laws
from fit.design import (TRUTH, ErrorModel, LossFit, _ladder_runs, _normal, _robust_sd, check_rungs, fit_predict,
                        measure, rung_noise)
from fit.errors import FitInputError
from fit.fitting import fit_batched, resample_counts
from fit.methods import PAPER_SIGMOID, SIGMOID_BOUNDS
from fit.points import PointSet
from fit.runs import RunTable, primary_loss, task_metrics

# The methods whose accuracy is a sigmoid of a task loss fitted by step 1 (`best` designs as its two-step path does).
STEP2_METHODS = ("best", "olmo_two_step", "olmo_two_step_flops")
# Where along each simulated rung its step-2 checkpoints lie, as shares of its tokens: the method skips the first
# 10 % of a run and smooths over 5 evaluations, so its points start at about 20 %. The task loss there is the law's
# at those tokens: a cosine run's mid-training loss lies above it, so real checkpoints span a little more loss.
CHECKPOINTS = np.linspace(0.2, 1.0, 9)


@dataclass(frozen=True)
class TaskPrior:
    """One task of one source: its task loss's error model, its plausible sigmoids and step 2's noise (fractions)."""
    source: str
    task: str
    intermediate: str  # the task loss step 1 fits
    chance: float
    loss: ErrorModel
    sigmoids: np.ndarray  # (K, 4) laws.SIGMOID parameters
    run_sd: float  # a run's offset off its sigmoid, shared by its checkpoints
    point_sd: float  # a smoothed checkpoint's scatter about its run's offset


@dataclass(frozen=True)
class AccuracyModel:
    tasks: tuple  # TaskPrior

    def only(self, task: str) -> "AccuracyModel":
        return AccuracyModel(tuple(t for t in self.tasks if t.task == task))

    def table(self) -> pd.DataFrame:
        """Per task: what step 1 fits, its laws and loss noise, the sigmoids, and step 2's noise in points."""
        return pd.DataFrame([{"source": t.source, "task": t.task, "intermediate": t.intermediate, "chance": t.chance,
                              "loss_laws": len(t.loss.laws), "size_sd": t.loss.size_sd,
                              "run_sd_1B": float(t.loss.run_sd_at(1e9)), "sigmoids": len(t.sigmoids),
                              "acc_run_sd_points": 100 * t.run_sd, "acc_point_sd_points": 100 * t.point_sd}
                             for t in self.tasks])

    def describe(self) -> str:
        run = sorted({f"{100 * t.run_sd:.2f}" for t in self.tasks}, key=float)
        sources = sorted({t.source for t in self.tasks})
        return (f"{len(self.tasks)} task(s) from {', '.join(sources)} ({', '.join(t.task for t in self.tasks)}); "
                f"task loss by step 1's law as the loss is, then {sum(len(t.sigmoids) for t in self.tasks)} sigmoids; "
                f"a run's accuracy off its sigmoid by {'-'.join(dict.fromkeys((run[0], run[-1])))} points (sd)")


def step2_method(method: str) -> None:
    """Refuse, in one line, a method whose accuracy is no sigmoid of a step-1 task loss."""
    if method not in STEP2_METHODS:
        raise FitInputError(f"method={method}: predicts no accuracy through a task loss and a sigmoid; the accuracy "
                            f"error is simulated for {', '.join(STEP2_METHODS)}")


def _task_prior(ps: PointSet, runs: List[str], table: RunTable, task: str, n_laws: int, seed: int):
    inter = f"{task}:bpb" if table.has(f"{task}:bpb") else primary_loss(table)
    xs, ys, owner = table.checkpoints(runs, inter, f"{task}:acc")
    chance = ps.chance_of(f"{task}:acc")
    step = PAPER_SIGMOID.step(f"{task}:step2", task, xs, ys, owner, inter, chance)
    full = step.fit()
    if not np.all(np.isfinite(full.params)):
        return None
    P, _, ok = fit_batched(laws.SIGMOID, step.points.X, step.points.y,
                           step.points.weights(resample_counts(len(runs), n_laws, seed)), full.params, step.bounds)
    resid = ys - laws.SIGMOID.f(xs[None, :], full.params)
    offsets = np.array([np.median(resid[owner == i]) for i in range(len(runs)) if (owner == i).any()])
    return TaskPrior(ps.source, task, inter, chance, measure([ps], n_laws, seed, metric=inter),
                     P[ok & np.all(np.isfinite(P), axis=1)], float(np.sqrt(np.mean(offsets ** 2))),
                     _robust_sd(resid - offsets[owner]))


def measure_accuracy(sources: Sequence[PointSet], n_laws: int = 200, seed: int = 0) -> AccuracyModel:
    """The accuracy error model of every task whose accuracy every ladder run of a source has (`n_laws` task-loss
    laws and sigmoids each)."""
    priors = []
    for i, ps in enumerate(sources):
        runs = _ladder_runs(ps)
        table = RunTable(ps, runs)
        for task in task_metrics(table, required=False):
            prior = _task_prior(ps, runs, table, task, n_laws, seed + i)
            if prior is not None and len(prior.sigmoids) and len(prior.loss.laws):
                priors.append(prior)
    if not priors:
        raise FitInputError(f"no ladder of the error model ({', '.join(ps.source for ps in sources)}) has task "
                            f"accuracies (<task>:acc) on every run, so the accuracy error cannot be measured: give "
                            f"results= a ladder with tasks (the OLMo exports, or your own evaluated ladder)")
    return AccuracyModel(tuple(priors))


def _per_draw(values, task: np.ndarray) -> np.ndarray:
    return np.asarray(values)[task]


def simulate_accuracy(model: AccuracyModel, fit: LossFit, params, tokens, target: tuple, draws: int = 128,
                      seed: int = 0) -> np.ndarray:
    """The errors in points (100 × (predicted − true accuracy)) of `draws` simulated ladders with rungs at (`params`,
    `tokens`) predicting a task's accuracy at `target` = (N, D) through the two steps (`fit`: the method's step 1);
    each draw a task of `model` at random. NaN where a step's fit failed."""
    N, D = np.asarray(params, float), np.asarray(tokens, float)
    check_rungs(fit, N)
    rng = np.random.default_rng(seed)
    tasks = model.tasks
    task = rng.integers(0, len(tasks), draws)
    theta = np.stack([tasks[k].loss.laws[rng.integers(len(tasks[k].loss.laws))] for k in task])
    sig = np.stack([tasks[k].sigmoids[rng.integers(len(tasks[k].sigmoids))] for k in task])
    noise = rung_noise(_per_draw([t.loss.size_sd for t in tasks], task),
                       np.stack([t.loss.run_sd_at(N) for t in tasks])[task], N, D, draws, seed)
    run_sd, point_sd = _per_draw([t.run_sd for t in tasks], task), _per_draw([t.point_sd for t in tasks], task)
    # Step 2's points: each rung's checkpoints, its final last; the task loss carries the rung's noise, the accuracy
    # its run's offset (shared by its checkpoints, common random numbers as the loss's) and each checkpoint's scatter.
    c = len(CHECKPOINTS)
    Xc = np.vstack([np.repeat(N, c), np.outer(D, CHECKPOINTS).ravel()])
    offset = np.column_stack([_normal(seed, n, d, 2.0)(draws) for n, d in zip(N, D)])
    scatter = np.column_stack([_normal(seed, n, d, 3.0)(draws * c).reshape(draws, c) for n, d in zip(N, D)])
    with np.errstate(over="ignore", invalid="ignore"):
        x = TRUTH.f(Xc, theta.T[..., None]) * np.exp(np.repeat(noise, c, axis=1))  # (draws, rungs × c)
        y = (laws.SIGMOID.f(x[None], sig.T[..., None]) + run_sd[:, None] * np.repeat(offset, c, axis=1)
             + point_sd[:, None] * scatter)
        true_loss = TRUTH.f(np.array([[target[0]], [target[1]]]), theta.T[..., None])  # (draws, 1)
        truth = (laws.SIGMOID.f(true_loss[None], sig.T[..., None])[:, 0]
                 + run_sd * _normal(seed, target[0], target[1], 2.0)(draws))
    finals = x[:, c - 1::c]
    predicted_loss = fit_predict(fit, N, D, finals, target)
    anchored_x = np.column_stack([x, np.zeros(draws)])  # the method's (0, 1) anchor: zero loss, perfect accuracy
    anchored_y = np.column_stack([y, np.ones(draws)])
    start = np.column_stack([_per_draw([t.chance for t in tasks], task) - 1, np.tile([0.9, 3.0, 1.0], (draws, 1))])
    P, cost, _ = fit_batched(laws.SIGMOID, anchored_x[None], anchored_y, np.ones_like(anchored_y), start,
                             SIGMOID_BOUNDS, None, max_iter=300)
    with np.errstate(over="ignore", invalid="ignore"):
        predicted = laws.SIGMOID.f(predicted_loss[None, :, None], P.T[..., None])[:, 0]
    errors = 100 * (predicted - truth)
    errors[~np.isfinite(cost)] = np.nan
    return errors

