"""The share of a ladder run's time spent in in-loop evaluation, from what the run leaves behind.

    ladder run ladder=smoke out_dir=runs/smoke-share 2> smoke.log
    .venv/bin/python scripts/eval_share.py runs/smoke-share smoke.log

Training time of a run (a cosine rung, or a WSD-S trunk, whose rungs' evaluations it sums) is what
its metrics.jsonl logs (tokens / tokens_per_s per interval; checkpoint writes and evaluation
excluded); evaluation time is the eval hook's "evaluated in X s" log lines. Data preparation and
the fit are in neither.
"""
import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

from ladder.core.layout import METRICS, PLAN, rung_dir, trunk_dir

EVALUATED = re.compile(r"INFO eval\.cli: (\S+) step \d+: .* evaluated in ([0-9.]+) s")


def training_seconds(run_dir: Path) -> float:
    seconds, tokens = 0.0, 0
    for row in map(json.loads, (run_dir / METRICS).read_text().splitlines()):
        seconds += (row["tokens"] - tokens) / row["tokens_per_s"]
        tokens = row["tokens"]
    return seconds


def runs(out_dir: Path) -> dict:
    """Each directory that trained (a cosine rung, or a WSD-S trunk) -> the rungs its evaluations are
    logged under (plan.json's jobs)."""
    plan = json.loads((out_dir / PLAN).read_text())
    return {(trunk_dir if job["linked"] else rung_dir)(out_dir, job["name"]): job["rungs"] for job in plan["jobs"]}


def main(out_dir: str, log_file: str) -> None:
    if not (Path(out_dir) / PLAN).is_file():
        sys.exit(f"eval_share.py: {out_dir}: no {PLAN}: give a ladder run's out_dir")
    if not Path(log_file).is_file():
        sys.exit(f"eval_share.py: {log_file}: no such file: give the run's stderr (ladder run ... 2> smoke.log)")
    evaluation = defaultdict(float)
    for line in Path(log_file).read_text().splitlines():
        match = EVALUATED.search(line)
        if match:
            evaluation[match.group(1)] += float(match.group(2))
    if not evaluation:  # a share of 0.0 % would read as a measurement
        sys.exit(f"eval_share.py: {log_file}: no 'INFO eval.cli: RUNG step N: ... evaluated in X s' line: give the "
                 "stderr of the run that trained out_dir (ladder run ... 2> smoke.log)")
    print(f"{'run':24} {'train s':>9} {'eval s':>8} {'eval share':>10}")
    total_train = total_eval = 0.0
    for run_dir, rungs in sorted(runs(Path(out_dir)).items()):
        train, ev = training_seconds(run_dir), sum(evaluation[r] for r in rungs)
        total_train, total_eval = total_train + train, total_eval + ev
        print(f"{run_dir.name:24} {train:9.1f} {ev:8.1f} {100 * ev / (train + ev):9.1f} %")
    print(f"{'all':24} {total_train:9.1f} {total_eval:8.1f} {100 * total_eval / (total_train + total_eval):9.1f} %")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="the ladder run's out_dir")
    parser.add_argument("log_file", help="the run's stderr (its INFO eval.cli lines)")
    args = parser.parse_args()
    main(args.out_dir, args.log_file)
