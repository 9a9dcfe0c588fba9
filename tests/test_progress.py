"""ladder.orchestration.progress: the ladder's standing as each job starts, and an ETA that a small job's
fixed costs do not blow up."""
import logging

import pytest

from ladder.core.plan import build_plan
from ladder.orchestration.compose import load
from ladder.orchestration.progress import LadderProgress, job_seconds

# `make smoke`'s four WSD-S jobs, as measured (seconds each, from the log's timestamps, 2 cores).
SMOKE_SECONDS = [15, 19, 69, 254]


def test_the_eta_counts_a_cost_per_job_and_one_per_flop(caplog):
    jobs = build_plan(load(["ladder=smoke"])).jobs
    now = [0.0]
    progress = LadderProgress(jobs, clock=lambda: now[0])
    etas = []
    caplog.set_level(logging.INFO, logger="ladder")
    for job, seconds in zip(jobs, SMOKE_SECONDS):
        etas.append(progress.eta(job))
        progress.run(job, lambda: now.__setitem__(0, now[0] + seconds) or "done")
    left = [sum(SMOKE_SECONDS[i:]) for i in range(len(jobs))]
    assert etas[:2] == [None, None]  # one job's time cannot tell its fixed cost from its FLOPs'
    # Within 1.7x of the truth (larger models run more FLOP/s, so it leans long); seconds per FLOP alone
    # said 33 and 10 min here.
    assert all(actual < eta < 1.7 * actual for eta, actual in zip(etas[2:], left[2:]))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == f"job 1/4 ({jobs[0].name}): 0% of the ladder's compute done"
    assert lines[2] == f"job 3/4 ({jobs[2].name}): 2% of the ladder's compute done, ETA 7 min"


def test_a_failed_job_or_one_run_elsewhere_counts_as_done_but_not_as_a_timing():
    from ladder.orchestration.rung import LOCKED
    jobs = build_plan(load(["ladder=smoke"])).jobs
    progress = LadderProgress(jobs, clock=lambda: 0.0)
    with pytest.raises(RuntimeError):
        progress.run(jobs[0], lambda: (_ for _ in ()).throw(RuntimeError("out of memory")))
    assert progress.run(jobs[1], lambda: LOCKED) == LOCKED
    assert progress.done == jobs[0].compute + jobs[1].compute and progress.finished == []


def test_job_seconds_never_goes_negative():
    assert job_seconds([(1.0, 10.0)]) is None and job_seconds([(1.0, 10.0), (1.0, 12.0)]) is None
    assert job_seconds([(1.0, 10.0), (2.0, 12.0)]) == pytest.approx((8.0, 2.0))
    assert job_seconds([(1.0, 12.0), (2.0, 10.0)]) == pytest.approx((11.0, 0.0))  # slower small job: no FLOP cost
