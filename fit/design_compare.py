"""How surely a ladder will decide between two variants, before it is trained: the model behind
`ladder design difference=...` (docs/design.md, "Deciding between two variants").

A draw takes a true law from the error model's prior (fit.design.ErrorModel.laws) for variant A; variant B is the same
law scaled, L_B = s·L_A with s set so that B's loss at the target is lower by `difference` nats (a per-variant scale
on the whole loss: the joint law's model of a variant, fit.joint, and the more cautious of its two scales, as the
gap at the ladder is then the target's relative gap, never more). Each variant's ladder gets its own noise (its own
size offsets and run noise: they are different runs), drawn as fit.design.simulate draws it; A's is the very noise
`simulate` draws, B's comes from independent streams. Both ladders are then fitted as `ladder compare` fits losses by
default: one law over both variants, L_v = exp(c_v)·(E + N^-α + exp(b)·D^-β), shape shared and a scale per variant
(fit.joint's `nd` form, whole-loss scale), least squares on log L from data-driven starts, all draws in one batched fit.

Compare names the winner by its point predictions (fit.compare.decision: the variant predicted lower), and reports
P(better) from its bootstrap beside it. What is simulated is that decision: the share of draws in which the fitted
law predicts B lower at the target (a failed fit counts as a wrong call, a tie as half). Not simulated: compare's
bootstrap P(better) itself (a bootstrap per draw), its F-test for per-variant exponents (the simulated truth shares
them), and its choice of the closer of two scales (the truth's scale is fitted).
"""
from dataclasses import dataclass

import numpy as np

from fit import design
from fit.fitting import fit_batched
from fit.joint import LOG_LS, Design, _bounds

VARIANTS = ("A", "B")
JOINT = Design("nd", VARIANTS, ("c",), "whole")
# Thinned from fit.joint._starts' grid (4 floors × 27 shapes): each draw keeps its best end. Floors as shares of
# the lowest loss; shapes (alpha, beta, b).
FLOORS = (0.5, 0.8)
SHAPES = ((0.2, 0.2, 0.0), (0.4, 0.4, 0.0), (0.2, 0.4, 2.0), (0.4, 0.2, -2.0))
# The fewest rungs a variant's ladder needs: the joint law's `nd` form wants V + 6 points over V = 2 variants
# (fit.joint.choose_form).
MIN_RUNGS = 4
_B_STREAM = 2 ** 31 + 1  # added to the seed of B's noise: streams apart from every seed a design uses


@dataclass(frozen=True)
class Decision:
    """A ladder's simulated decision between two variants a `difference` apart at the target: `p`, the share of
    draws whose fit names the truly better variant better (a failed fit a wrong call, a tie half); the share of
    failed fits; and the median predicted advantage (nats) of the better variant."""
    p: float
    failed: float
    advantage: float
    draws: int

    @classmethod
    def of(cls, advantage: np.ndarray) -> "Decision":
        ok = np.isfinite(advantage)
        right = np.where(ok, (advantage > 0) + 0.5 * (advantage == 0), 0.0)
        return cls(float(right.mean()), float(1 - ok.mean()), float(np.median(advantage[ok])) if ok.any() else np.nan,
                   len(advantage))


def _noise(model: design.ErrorModel, N, D, draws: int, seed: int, variant: int) -> np.ndarray:
    """(draws, rungs) log noise of one variant's ladder: A's as fit.design.simulate draws it, B's from streams of its
    own (common random numbers within each variant, fit.design.rung_noise)."""
    return design.rung_noise(model.size_sd, model.run_sd_at(N), N, D, draws, seed + variant * _B_STREAM)


def _starts(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(starts × draws, parameters): fit.joint._starts' data-driven starts for every draw at once, on the thinned
    grid: each variant's scale from its own points, the floor as a share of the draw's lowest loss."""
    low = y.min(axis=1, keepdims=True)
    rows = []
    for share in FLOORS:
        E = share * low
        for alpha, beta, b in SHAPES:
            base = np.exp(-alpha * np.log(X[0])) + np.exp(b - beta * np.log(X[1]))
            resid = np.log(np.maximum(y - E, 1e-12)) - np.log(base)
            c = np.column_stack([resid[:, X[2] == i].mean(axis=1) for i in range(len(VARIANTS))])
            floor = E[:, 0] * np.exp(-c.mean(axis=1))  # the whole-loss scale holds E in units of exp(c_v)
            shape = np.broadcast_to([b, alpha, beta], (len(y), 3))
            rows.append(np.column_stack([c, shape, floor]))
    return np.vstack(rows)


def simulate_decision(model: design.ErrorModel, params, tokens, target: tuple, difference: float, draws: int = 128,
                      seed: int = 0) -> np.ndarray:
    """The better variant's predicted advantage at `target` = (N, D) (nats; positive: the decision is right) over
    `draws` simulated pairs of ladders with rungs at (`params`, `tokens`), B truly `difference` nats better; NaN
    where the joint fit failed."""
    N, D = np.asarray(params, float), np.asarray(tokens, float)
    rng = np.random.default_rng(seed)
    theta = model.laws[rng.integers(0, len(model.laws), draws)]
    with np.errstate(over="ignore", invalid="ignore"):
        clean = design.TRUTH.f(np.vstack([N, D]), theta.T[..., None])  # (draws, rungs)
        at_target = design.TRUTH.f(np.array([[target[0]], [target[1]]]), theta.T[..., None])[:, 0]
    scale = np.maximum(1 - difference / at_target, 1e-6)
    y = np.hstack([clean * np.exp(_noise(model, N, D, draws, seed, 0)),
                   scale[:, None] * clean * np.exp(_noise(model, N, D, draws, seed, 1))])
    X = np.vstack([np.tile(N, 2), np.tile(D, 2), np.repeat([0.0, 1.0], len(N))])
    starts = _starts(X, y)
    k = len(starts) // draws
    law = JOINT.law()
    P, cost, _ = fit_batched(law, X, np.tile(y, (k, 1)), np.ones((len(starts), len(X[0]))), starts, _bounds(JOINT),
                              LOG_LS, max_iter=300)
    # compare keeps a fit that ran out of iterations (fit.joint.fit refuses only non-finite parameters): so does this
    cost = np.where(np.isfinite(cost), cost, np.inf).reshape(k, draws)
    best = np.argmin(cost, axis=0)
    P = P.reshape(k, draws, -1)[best, np.arange(draws)]
    with np.errstate(over="ignore", invalid="ignore"):
        predicted = law.f(np.array([[target[0]] * 2, [target[1]] * 2, [0.0, 1.0]]), P.T[..., None])  # (draws, 2)
    advantage = predicted[:, 0] - predicted[:, 1]
    advantage[~np.isfinite(cost[best, np.arange(draws)])] = np.nan
    return advantage

