"""Laws sized to the data: a ladder with fewer runs than a law has parameters, or whose runs cannot tell the D
term from the N term (one D, one tokens-per-parameter ratio M, or D a power of N), is fitted with the largest law
its runs identify, and the fit says which and why. Only a fit set at one size is refused: nothing in N is
identifiable there, so the message names what to add.

The family, largest first (each a law of fit.laws with parameters pinned by equal bounds):
  L(N, D) = A/N^α + B/D^β + E      the method's own law (5 parameters; `direct`'s has no E: 4)
  L(N, D) = A/N^α + B/D^β          E fixed at 0 (4)
  L(C)    = A/C^α + E               along compute C = 6ND, one term for N and D together (3)
  L(C)    = A/C^α                   E fixed at 0: a line in log L against log C (2)
A law in (N, D) needs log N and log D to vary apart across the runs; every law needs one run more than it has
free parameters, except the 2-parameter line, which two sizes determine exactly (said). Along compute a target at
another D than the runs' line trades N and D alike, which no run tested: `unidentified_d` warns of it."""
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np

from fit import laws
from fit.errors import FitInputError
from fit.laws import Law
from ladder.core.plan import Target


@dataclass(frozen=True)
class Form:
    """A law as a step fits it: its starts and bounds (a pinned parameter has equal bounds), whether its input is
    compute (else (N, D)), and how it reads in a sentence."""
    law: Law
    starts: Sequence[Sequence[float]]
    bounds: Optional[Sequence[Tuple[Optional[float], Optional[float]]]]  # None: every parameter free
    in_compute: bool
    formula: str

    @property
    def free(self) -> int:
        if self.bounds is None:
            return len(self.law.params)
        return sum(1 for lo, hi in self.bounds if lo is None or hi is None or lo < hi)


# (N, D) starts with E pinned: the step-1 grid's coefficients and exponents (fit.methods.STEP1_GRID).
_ND_NO_E_STARTS = [[a, b, al, be, 0.0] for a in (0.0, 5.0, 10.0) for b in (0.0, 5.0, 10.0) for al in (0.1, 0.3, 0.6)
                   for be in (0.1, 0.3, 0.6)]
ND_NO_E = Form(laws.OLMO_ND, _ND_NO_E_STARTS, [(None, None)] * 2 + [(0, None)] * 2 + [(0, 0)], False,
               "{y}(N, D) = A/N^alpha + B/D^beta (E fixed at 0)")
COMPUTE = Form(laws.OLMO_FLOPS, [], [(None, None), (0, None), (0, None)], True, "{y}(C) = A/C^alpha + E")
COMPUTE_NO_E = Form(laws.OLMO_FLOPS, [], [(None, None), (0, None), (0, 0)], True, "{y}(C) = A/C^alpha (E fixed at 0)")
REDUCED = (ND_NO_E, COMPUTE, COMPUTE_NO_E)


def compute_starts(form: Form, C: np.ndarray, y: np.ndarray) -> List[List[float]]:
    """Starts of a compute law from the data: a line in log (y − E) against log C for E at fractions of the
    smallest value (E = 0 alone where E is pinned)."""
    floors = (0.0,) if form.bounds[2] == (0, 0) else (0.0, 0.3, 0.6, 0.8, 0.9)
    out = []
    for f in floors:
        slope, icept = np.polyfit(np.log(C), np.log(y - f * y.min()), 1)
        out.append([float(icept), max(float(-slope), 1e-3), f * float(y.min())])
    return out


def nd_collinear(N: np.ndarray, D: np.ndarray) -> Optional[str]:
    """Why the runs' log D does not vary apart from log N (so that no law tells the D term from the N term), or
    None where it does."""
    if np.ptp(np.log(D)) < 1e-3:
        return f"every fit run has one D ({D[0]:.3g} tokens)"
    M = D / N
    if np.ptp(np.log(M)) < 1e-2:
        return f"every fit run has one tokens-per-parameter ratio (M = {np.median(M):.3g})"
    A = np.column_stack([np.log(N), np.log(D)])
    s = np.linalg.svd(A - A.mean(0), compute_uv=False)
    return None if s[-1] > 1e-2 * s[0] else "the fit runs' D is a power of their N (log D on a line in log N)"


def check_sizes(N: np.ndarray, what: str) -> None:
    """Refuse a fit set with no run, or all at one size: no law in N can be fitted there."""
    if len(N) == 0:
        raise FitInputError(f"{what}: no fit run (a fit takes the runs smaller than every target; include=[RUN,...] "
                            "adds others)")
    if len(np.unique(N)) < 2:
        raise FitInputError(f"{what}: all {len(N)} fit run(s) are at one size (N = {N[0]:.4g}); no law in N can be "
                            "fitted: add runs at a second size (and a third, so that the intervals can be backtested); "
                            "a fit takes the runs smaller than every target, and include=[RUN,...] adds others")


def size_law(full: Form, N: np.ndarray, D: np.ndarray, what: str, y: str = "L") -> Tuple[Form, Optional[str]]:
    """The largest law of the family (`full`, then REDUCED) that runs at (N, D) identify, and why it was reduced
    (None: the full law). One size is refused (`check_sizes`); two sizes always fit the 2-parameter line."""
    check_sizes(N, what)
    collinear = nd_collinear(N, D)

    def identified(form: Form) -> bool:
        return not (collinear and not form.in_compute) and len(N) >= (2 if form.free == 2 else form.free + 1)

    form = next(f for f in (full,) + tuple(f for f in REDUCED if f.free < full.free) if identified(f))
    if form is full:
        return form, None
    why = [collinear + ", so the D term cannot be told from the N term"] if collinear and not full.in_compute else []
    if len(N) < full.free + 1:
        why.append(f"{len(N)} run(s) for the {full.free} parameters of {full.formula.format(y=y)} (it needs {full.free + 1})")
    along = " along compute C = 6ND" if form.in_compute and not full.in_compute else ""
    exact = "; it passes through both runs exactly, so nothing measures its fit" if len(N) == 2 else ""
    return form, f"law reduced to {form.formula.format(y=y)}{along}: {' and '.join(why)}{exact}"


def unidentified_d(what: str, N: np.ndarray, D: np.ndarray, targets: List[Target]) -> List[str]:
    """A warning per target off the line the runs' (log N, log D) lie on, where they lie on one: the law's D term
    is unidentified there, and the prediction rests on how N and D trade, which no run tested."""
    collinear = nd_collinear(N, D)
    if collinear is None:
        return []
    slope, icept = (0.0, float(np.log(D).mean())) if np.ptp(np.log(N)) < 1e-3 else np.polyfit(np.log(N), np.log(D), 1)
    return [f"{what}: {collinear}, so the D term is unidentified, and target {t.name} (N = {t.params:.3g}, "
            f"D = {t.tokens:.3g}) lies off it: its prediction rests on trading N for D as along compute, which no "
            "run tested, and its interval does not include that error"
            for t in targets if abs(np.log(t.tokens) - (icept + slope * np.log(t.params))) > 0.05]


def sized(full: Form, N: np.ndarray, D: np.ndarray, y: np.ndarray, what: str,
          C: Optional[np.ndarray] = None, quantity: str = "L") -> Tuple[Form, Optional[str]]:
    """`size_law`, with a compute law's starts taken from the points (compute C, 6ND unless given; values y)."""
    form, note = size_law(full, N, D, what, quantity)
    if form.in_compute and not form.starts:
        form = replace(form, starts=compute_starts(form, 6 * N * D if C is None else C, y))
    return form, note


def compute_of(ND: np.ndarray) -> np.ndarray:
    """A compute law's input, C = 6ND, from a (2, n) array of (N, D)."""
    return (6.0 * np.asarray(ND[0], float) * np.asarray(ND[1], float))[None, :]
