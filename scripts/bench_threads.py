"""How a shared CPU machine slows a training run: the wall and CPU time of one run alone against two at once,
under OpenMP's spinning wait (ACTIVE, libgomp's default) and the sleeping one `ladder` sets (PASSIVE).

Each run is `scripts/bench_train.py` (the harness's training loop and a plain one) in its own process with
torch's default thread count. With spinning threads, two runs at once each take cores the other needs and the
pair takes far more than twice one run's time; with sleeping threads a shared machine slows each run in
proportion. Figures in docs/train.md ("CPU threads"), measured with `--full` (the 5M model, 8 timed steps);
the default is a quick form of it (3M, 4 steps), as `make bench` runs it.
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
    runs = [subprocess.Popen([sys.executable, str(ROOT / "scripts" / "bench_train.py"), "--repeats", "1", "--threads",
                              "0", "--size", args.size, "--warmup", str(args.warmup), "--steps", str(args.steps),
                              "--data", "synthetic"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(copies)]
    if any(run.wait() != 0 for run in runs):
        sys.exit(f"bench_threads: a bench_train.py run failed under OMP_WAIT_POLICY={policy}")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="docs/train.md's measurement: the 5M model, 2 untimed and 8 timed steps of each loop "
                             "(10-12 min on 2 loaded cores); without it a quick one (3M, 1 and 4; what `make bench` "
                             "runs)")
    args = parser.parse_args(argv)
    args.size, args.warmup, args.steps = ("5M", 2, 8) if args.full else ("3M", 1, 4)
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
