"""Stops asked for from outside: SIGTERM (Slurm preemption, `kill`, torchrun stopping its workers)
becomes an exception, so the work in progress is recorded as interrupted and resumes on the next run."""
from __future__ import annotations

import signal
from typing import Optional

_received: Optional[str] = None  # the stop signal's name, once one has arrived


class Interrupted(KeyboardInterrupt):
    """The process was told to stop; nothing failed."""


def _raise(signum, _frame) -> None:
    global _received
    _received = signal.Signals(signum).name
    raise Interrupted(_received)


def stop_on_sigterm() -> None:
    """From now on SIGTERM raises Interrupted in the main thread (Python's default would kill the process
    without a word, leaving its record saying `running`)."""
    signal.signal(signal.SIGTERM, _raise)


def raise_if_stopped() -> None:
    """Raise Interrupted again if a stop signal has arrived. The handler's own exception can be lost: a
    signal landing inside a finalizer or weakref callback is printed as "Exception ignored" and the work
    goes on, so loops call this at every step to stop anyway."""
    if _received is not None:
        raise Interrupted(_received)
