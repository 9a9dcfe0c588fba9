"""Every method `ladder fit method=NAME` runs, one record each (fit.chain.Method). A new method is a function that
declares its chain of steps (fit.methods) and one line here."""
from functools import partial

from fit import best, methods
from fit.chain import Method

METHODS = {m.name: m for m in (
    Method("olmo_two_step", methods.olmo_two_step, "Bhagia et al. 2024: task bpb from (N, D), then accuracy"),
    Method("olmo_two_step_flops", partial(methods.olmo_two_step, flops=True),
           "the same two steps with step 1 in compute C"),
    Method("olmo_single_step", methods.olmo_single_step, "Bhagia et al. 2024's baseline: accuracy from (N, D) in one law"),
    Method("chinchilla", methods.chinchilla, "Hoffmann et al. 2022 approach 3 on every loss"),
    Method("gadre", methods.gadre, "Gadre et al. 2024: C4 loss from (C, M), then average error, on its paper's runs",
           fixed_fit_set=True),
    Method("direct", methods.direct, "Krajewski et al. 2025: each task's accuracy straight from (N, D)"),
    Method("best", best.best, "the default: every two-step path, weighted by the ladder's own backtests",
           calibrates_itself=True),
)}
