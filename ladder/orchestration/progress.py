"""Where a ladder run stands, said as each job starts: `job 3/4 (smoke-48): 41 % of the ladder's compute
done, ETA 3 min`. The estimate is the wall time per FLOP of the jobs finished so far, so it sharpens as
the ladder goes; each job draws its own step bar (train.metrics)."""
import logging
import time
from typing import Sequence

from ladder.core.schedules import Job

log = logging.getLogger("ladder")


def duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3.5 h`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


class LadderProgress:
    def __init__(self, jobs: Sequence[Job]):
        self.jobs, self.total = list(jobs), sum(j.compute for j in jobs)
        self.done, self.busy = 0.0, 0.0  # FLOPs finished; seconds spent on them

    def run(self, job: Job, work) -> object:
        """`work()` for `job`, announced with the ladder's standing before it and timed after."""
        index = self.jobs.index(job) + 1
        share = f"{self.done / self.total:.0%} of the ladder's compute done" if self.total else ""
        eta = f", ETA {duration(self.busy / self.done * (self.total - self.done))}" if self.done else ""
        log.info("job %d/%d (%s): %s%s", index, len(self.jobs), job.name, share, eta)
        start = time.monotonic()
        try:
            return work()
        finally:
            self.busy += time.monotonic() - start
            self.done += job.compute
