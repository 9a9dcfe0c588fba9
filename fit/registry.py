"""Every method `ladder fit method=NAME` runs: the records its module declares (fit.chain.Method), one line each.
A new method is a function declaring its chain of steps, its record beside it, and one line here."""
from fit import best, methods

METHODS = {m.name: m for m in (best.BEST, methods.OLMO_TWO_STEP, methods.OLMO_TWO_STEP_FLOPS, methods.OLMO_SINGLE_STEP,
                               methods.CHINCHILLA, methods.GADRE, methods.DIRECT)}
