"""How a shared CPU machine slows a training run: the wall and CPU time of one run alone against two at once,
under OpenMP's spinning wait (ACTIVE, libgomp's default) and the sleeping one `ladder` sets (PASSIVE).

Each run is `scripts/bench_train.py` (the harness's training loop and a plain one, on the default 5M model)
in its own process with torch's default thread count. With spinning threads, two runs at once each take
cores the other needs and the pair takes far more than twice one run's time; with sleeping threads a
shared machine slows each run in proportion. Figures in docs/train.md ("CPU threads").
"""
import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(policy: str, copies: int, args) -> tuple:
    """(wall seconds, CPU seconds of all copies) for `copies` runs started together."""
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "PYTHONPATH": str(ROOT)}
    env.pop("OMP_NUM_THREADS", None)  # torch's default: every core
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    runs = [subprocess.Popen([sys.executable, str(ROOT / "scripts" / "bench_train.py"), "--repeats", "1",
                              "--steps", str(args.steps), "--data", "synthetic"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(copies)]
    if any(run.wait() != 0 for run in runs):
        sys.exit(f"bench_threads: a bench_train.py run failed under OMP_WAIT_POLICY={policy}")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps of each bench_train.py loop")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.1f}")
    print("policy   runs at once   wall s   CPU s   wall ÷ one run alone")
    for policy in ("ACTIVE", "PASSIVE"):
        alone, cpu_alone = measure(policy, 1, args)
        print(f"{policy:8} {1:>12}   {alone:6.1f}  {cpu_alone:6.1f}   1.00")
        both, cpu_both = measure(policy, 2, args)
        print(f"{policy:8} {2:>12}   {both:6.1f}  {cpu_both:6.1f}   {both / alone:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
