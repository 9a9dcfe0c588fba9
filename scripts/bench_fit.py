"""Time a full `ladder fit` (1,000 bootstrap resamples) on the published OLMo ladder, for the default
method, the paper's two-step method and the direct method.

    .venv/bin/python scripts/bench_fit.py [results] [method[,method...]] [bootstrap]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: fit, ladder, scripts

from fit.config import FitConfig  # noqa: E402
from scripts.shared_data import shared_data_dir  # noqa: E402
from fit.run import run_fit  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", help="what to fit (default: ../shared/data/olmo-ladder/runs; '' too)")
    parser.add_argument("methods", nargs="?", default="best,olmo_two_step,direct", help="comma-separated methods")
    parser.add_argument("bootstrap", nargs="?", type=int, default=1000, help="bootstrap resamples of each fit")
    args = parser.parse_args()
    if not args.results and shared_data_dir() is None:
        parser.error("no published ladder data at ../shared/data (set LADDER_SHARED_DATA or give results)")
    results = args.results or str(shared_data_dir() / "olmo-ladder" / "runs")
    methods, n = args.methods.split(","), args.bootstrap
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
