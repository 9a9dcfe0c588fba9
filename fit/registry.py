"""Every method `ladder fit method=NAME` runs: name -> function(points, targets, cfg) -> MethodOutput.
A new method is a function that declares its chain of steps (fit.methods) and one line here."""
from fit import best, methods

METHODS = {
    "olmo_two_step": methods.olmo_two_step,
    "olmo_two_step_flops": lambda ps, t, c, runs=None: methods.olmo_two_step(ps, t, c, flops=True, runs=runs),
    "olmo_single_step": methods.olmo_single_step,
    "chinchilla": methods.chinchilla,
    "gadre": methods.gadre,
    "direct": methods.direct,
    "best": best.best,
}
