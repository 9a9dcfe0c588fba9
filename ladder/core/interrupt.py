"""Stops asked for from outside: SIGTERM (Slurm preemption, `kill`, torchrun stopping its workers)
becomes an exception, so the work in progress is recorded as interrupted and resumes on the next run."""
from __future__ import annotations

import signal


class Interrupted(KeyboardInterrupt):
    """The process was told to stop; nothing failed."""


def _raise(signum, _frame) -> None:
    raise Interrupted(signal.Signals(signum).name)


def stop_on_sigterm() -> None:
    """From now on SIGTERM raises Interrupted in the main thread (Python's default would kill the process
    without a word, leaving its record saying `running`)."""
    signal.signal(signal.SIGTERM, _raise)
