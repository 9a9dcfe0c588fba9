"""Where a ladder run stands, said as each job starts: `job 3/4 (smoke-48): 15% of the ladder's compute
done, ETA 7 min`. Each job draws its own step bar (train.metrics)."""
import logging
import time
from typing import Callable, Optional, Sequence

from ladder.core.schedules import Job

log = logging.getLogger("ladder")


def duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3.5 h`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def job_seconds(finished: Sequence[tuple[float, float]]) -> Optional[tuple[float, float]]:
    """(seconds per job, seconds per FLOP), least squares over the finished jobs' (compute, seconds); None
    before two jobs of different compute. A job's start-up, compile and evaluation cost about the same at any
    size, so a small job's seconds per FLOP is many times a large one's (`make smoke`: its first job's rate
    put the ETA at 65 min where the rest took 6; from two jobs the two terms say 7 min where the rest took 5)."""
    if len({c for c, _ in finished}) < 2:
        return None
    n = len(finished)
    mean_c, mean_t = sum(c for c, _ in finished) / n, sum(t for _, t in finished) / n
    per_flop = sum((c - mean_c) * (t - mean_t) for c, t in finished) / sum((c - mean_c) ** 2 for c, _ in finished)
    per_flop = max(per_flop, 0.0)  # noise on jobs of one cost: none of it is put on FLOPs
    return max(mean_t - per_flop * mean_c, 0.0), per_flop


class LadderProgress:
    def __init__(self, jobs: Sequence[Job], clock: Callable[[], float] = time.monotonic):
        self.jobs, self.total, self.clock = list(jobs), sum(j.compute for j in jobs), clock
        self.done = 0.0  # FLOPs of the jobs past
        self.finished: list[tuple[float, float]] = []  # (compute, seconds) of each job trained here to done

    def eta(self, job: Job) -> Optional[float]:
        """Seconds until the ladder is done, from `job` (which starts now) on."""
        fit = job_seconds(self.finished)
        if fit is None:
            return None
        rest = self.jobs[self.jobs.index(job):]
        return len(rest) * fit[0] + fit[1] * sum(j.compute for j in rest)

    def run(self, job: Job, work) -> object:
        """`work()` for `job`, announced with the ladder's standing before it and timed after."""
        index = self.jobs.index(job) + 1
        share = f"{self.done / self.total:.0%} of the ladder's compute done" if self.total else ""
        eta = self.eta(job)
        log.info("job %d/%d (%s): %s%s", index, len(self.jobs), job.name, share,
                 "" if eta is None else f", ETA {duration(eta)}")
        start = self.clock()
        try:
            result = work()
        finally:
            self.done += job.compute
        if result == "done":  # not a job another process holds (it returns at once), nor one that failed
            self.finished.append((job.compute, self.clock() - start))
        return result
