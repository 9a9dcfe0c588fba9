"""Time a full `ladder fit` (1,000 bootstrap resamples) on the published OLMo ladder, for the default
method, the paper's two-step method and the direct method.

    PYTHONPATH=. python scripts/bench_fit.py [results] [method[,method...]] [bootstrap]
"""
import sys
import tempfile
import time

from fit.config import FitConfig
from scripts.shared_data import shared_data_dir
from fit.run import run_fit


def main():
    results = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else str(shared_data_dir() / "olmo-ladder" / "runs")
    methods = sys.argv[2].split(",") if len(sys.argv) > 2 else ["best", "olmo_two_step", "direct"]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    times = []
    for method in methods:
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            run_fit(FitConfig(results=results, method=method, bootstrap=n, out=out))
            times.append((method, time.perf_counter() - t0))
    for method, dt in times:
        print(f"bench_fit: method={method} bootstrap={n}: {dt:.1f} s")


if __name__ == "__main__":
    main()
