"""Law functions with their analytic gradients. X is a (k, n) array of inputs, p the parameters;
`grad` returns an (n, len(params)) Jacobian of the prediction. Every law also takes a batch of
parameter vectors as p of shape (len(params), B, 1): f then returns (B, n) and grad (B, n, len(params)),
which is how the bootstrap refits all resamples at once (fit.fitting.fit_batched)."""
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Tuple

import numpy as np


def _jac(columns):
    """Stack the Jacobian's columns on a last axis as a view of a (P, ...) array: a batch's columns
    stay contiguous, which the batched refit's matrix products rely on for speed."""
    return np.moveaxis(np.stack(columns), 0, -1)


@dataclass(frozen=True, eq=False)  # one object per law: compared and hashed by identity
class Law:
    name: str
    params: Tuple[str, ...]
    f: Callable
    grad: Callable
    formula: str
    source: str
    # What a fit at a parameter's bound means for the predictions, said with the warning; None: a bound the
    # fit is built to reach (the sigmoid's ceiling, pulled to 1 by its (0, 1) anchor), which warns of nothing.
    at_bound: Mapping[str, Optional[str]] = field(default_factory=dict)
    # The power-law exponents, each with what it scales ("N", "D"): a fit far steeper than any scaling law's is
    # said (fit.fitting.STEEP).
    exponents: Mapping[str, str] = field(default_factory=dict)


# Bhagia et al. 2024 (OLMo-ladder fitting_functions.chinchilla_n_d_fit): L = e^a/N^α + e^b/D^β + E.
def _nd(X, p):
    n, d = X
    return np.exp(p[0] - p[2] * np.log(n)) + np.exp(p[1] - p[3] * np.log(d)) + p[4]


def _nd_grad(X, p):
    n, d = X
    tn, td = np.exp(p[0] - p[2] * np.log(n)), np.exp(p[1] - p[3] * np.log(d))
    return _jac([tn, td, -tn * np.log(n), -td * np.log(d), np.ones_like(tn)])


_ND_EXPONENTS = {"alpha": "N", "beta": "D"}
# The paper's bounds keep every parameter >= 0: coefficients exp(log_A), exp(log_B) >= 1 and E >= 0.
_AT_ZERO = {
    "E": "the fit finds no irreducible loss, so the law keeps falling with scale: far beyond the ladder its "
         "predictions may lean low",
    "log_A": "the N term is held at the smallest coefficient the paper's bounds allow (they suit OLMo-sized "
             "models): the size dependence rests on its exponent, which the calibrated intervals' backtests test",
    "log_B": "the D term is held at the smallest coefficient the paper's bounds allow (they suit OLMo-sized "
             "models): the data dependence rests on its exponent, which the calibrated intervals' backtests test",
}
OLMO_ND = Law("olmo_nd", ("log_A", "log_B", "alpha", "beta", "E"), _nd, _nd_grad,
              "L(N,D) = exp(log_A)/N^alpha + exp(log_B)/D^beta + E", "Bhagia et al. 2024, arXiv 2412.04403 eq. 2",
              _AT_ZERO, _ND_EXPONENTS)


# Bhagia et al. 2024 (OLMo-ladder chinchilla_flops_fit): L = e^a/C^α + E, the FLOPs variant of step 1.
def _flops(X, p):
    return np.exp(p[0] - p[1] * np.log(X[0])) + p[2]


def _flops_grad(X, p):
    t = np.exp(p[0] - p[1] * np.log(X[0]))
    return _jac([t, -t * np.log(X[0]), np.ones_like(t)])


OLMO_FLOPS = Law("olmo_flops", ("log_A", "alpha", "E"), _flops, _flops_grad,
                 "L(C) = exp(log_A)/C^alpha + E", "Bhagia et al. 2024, arXiv 2412.04403 sec. 4 (FLOPs variant)",
                 exponents={"alpha": "C"})


# Bhagia et al. 2024 step 2 (fitting_functions.sigmoid): Acc = a/(1+exp(-k(L-L0))) + b.
def _sigmoid(X, p):
    return p[0] / (1 + np.exp(-p[2] * (X[0] - p[1]))) + p[3]


def _sigmoid_grad(X, p):
    e = np.exp(-p[2] * (X[0] - p[1]))
    s = 1 / (1 + e)
    ds = e * s * s
    return _jac([s, -p[0] * p[2] * ds, p[0] * (X[0] - p[1]) * ds, np.ones_like(s)])


SIGMOID = Law("sigmoid", ("a", "L0", "k", "b"), _sigmoid, _sigmoid_grad,
              "Acc(L) = a/(1+exp(-k(L-L0))) + b", "Bhagia et al. 2024, arXiv 2412.04403 eq. 3",
              {"b": None, "a": "a + b is the accuracy at high loss: a = -1 puts that floor at 0 rather than chance; "
                               "it shapes the small models' end of the curve, not the targets'"})


# Bhagia et al. 2024 single-step baseline (fitting_functions.combined_fit): Acc = q + p·σ(L(N,D)).
def _single(X, p):
    return p[5] / (1 + np.exp(-_nd(X, p[:5]))) + p[6]


def _single_grad(X, p):
    s = 1 / (1 + np.exp(-_nd(X, p[:5])))
    inner = _nd_grad(X, p[:5]) * (p[5] * s * (1 - s))[..., None]
    return np.concatenate([inner, s[..., None], np.ones_like(s)[..., None]], axis=-1)


SINGLE_STEP = Law("olmo_single_step", ("log_A", "log_B", "alpha", "beta", "E", "p", "q"), _single, _single_grad,
                  "Acc(N,D) = p/(1+exp(-(exp(log_A)/N^alpha + exp(log_B)/D^beta + E))) + q",
                  "Bhagia et al. 2024, arXiv 2412.04403 sec. 5 (single-step baseline)", _AT_ZERO, _ND_EXPONENTS)


# Hoffmann et al. 2022 approach 3 in Besiroglu et al. 2024 (Epoch AI) form: L = exp(LSE(a-α log N, b-β log D, e)).
def _chin(X, p):
    n, d = X
    return np.exp(p[0] - p[3] * np.log(n)) + np.exp(p[1] - p[4] * np.log(d)) + np.exp(p[2])


def _chin_grad(X, p):
    n, d = X
    tn, td = np.exp(p[0] - p[3] * np.log(n)), np.exp(p[1] - p[4] * np.log(d))
    return _jac([tn, td, np.exp(p[2]) * np.ones_like(tn), -tn * np.log(n), -td * np.log(d)])


CHINCHILLA = Law("chinchilla", ("a", "b", "e", "alpha", "beta"), _chin, _chin_grad,
                 "L(N,D) = E + A/N^alpha + B/D^beta, A=e^a, B=e^b, E=e^e", "Hoffmann et al. 2022 approach 3; Besiroglu et al. 2024",
                 exponents=_ND_EXPONENTS)


# Gadre et al. 2024 (mlfoundations/scaling laws.powlaw_ours), fitted in (N, M); it equals
# L(C,M) = E + (a·M^η + b·M^-η)·C^-η with η = -c/2, a = α·6^η, b = β (C = 6·N·D = 6·M·N²).
def _gadre(X, p):
    n, m = X
    return p[0] * n ** p[2] + p[1] * 6 ** (p[2] / 2) * (m * n) ** p[2] + p[3]


def _gadre_grad(X, p):
    n, m = X
    t1, t2 = n ** p[2], 6 ** (p[2] / 2) * (m * n) ** p[2]
    return _jac([t1, t2, p[0] * t1 * np.log(n) + p[1] * t2 * (np.log(6) / 2 + np.log(m * n)),
                     np.ones_like(t1)])


GADRE_LOSS = Law("gadre_loss", ("alpha", "beta", "c", "E"), _gadre, _gadre_grad,
                 "L(N,M) = alpha·N^c + beta·6^(c/2)·(M·N)^c + E  [= E + (a·M^η + b·M^-η)·C^-η]",
                 "Gadre et al. 2024, arXiv 2403.08540 eq. 4")


# Gadre et al. 2024 (laws.decay_ours): Err(L) = ε - k·exp(-γL).
def _decay(X, p):
    return p[2] - p[0] * np.exp(-p[1] * X[0])


def _decay_grad(X, p):
    e = np.exp(-p[1] * X[0])
    return _jac([-e, p[0] * X[0] * e, np.ones_like(e)])


GADRE_ERR = Law("gadre_err", ("k", "gamma", "epsilon"), _decay, _decay_grad,
                "Err(L) = epsilon - k·exp(-gamma·L)", "Gadre et al. 2024, arXiv 2403.08540 eq. 5")


def gadre_cm_params(p):
    """The (a, b, η, E) of the L(C,M) form from the fitted (α, β, c, E)."""
    eta = -p[2] / 2
    return {"a": p[0] * 6 ** eta, "b": p[1], "eta": eta, "E": p[3]}


# Krajewski et al. 2025 (arXiv 2512.08894) direct law of Q, the accuracy normalised above chance
# (Q = (Acc - chance)/(1 - chance)), fitted as -log Q: eq. 4 across tokens-per-parameter ratios,
# -log Q(N, D) = A·N^(-alpha) + B·D^(-beta).
def _direct_nd(X, p):
    n, d = X
    return np.exp(p[0] - p[2] * np.log(n)) + np.exp(p[1] - p[3] * np.log(d))


def _direct_nd_grad(X, p):
    n, d = X
    tn, td = np.exp(p[0] - p[2] * np.log(n)), np.exp(p[1] - p[3] * np.log(d))
    return _jac([tn, td, -tn * np.log(n), -td * np.log(d)])


DIRECT_ND = Law("direct_nd", ("log_A", "log_B", "alpha", "beta"), _direct_nd, _direct_nd_grad,
                "-log Q(N,D) = exp(log_A)/N^alpha + exp(log_B)/D^beta, Q = (Acc - chance)/(1 - chance)",
                "Krajewski et al. 2025, arXiv 2512.08894 eq. 4", exponents=_ND_EXPONENTS)
