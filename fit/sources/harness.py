"""The harness's own evaluation records: a ladder run's `rungs/*/results.jsonl` (docs/formats.md)."""
import json
import math
from pathlib import Path

import numpy as np

from fit.errors import FitInputError
from fit.points import SourceProfile, add_chance, frame
from ladder.core.layout import RESULTS, results_files

PROFILE = SourceProfile("harness", report_beside=True)


def read(path: Path, dataset):
    files = [path] if path.is_file() else results_files(path) or sorted(path.glob(f"*/{RESULTS}"))
    rows, notes, chance = [], [], {}
    for f in files:
        text = f.read_text()
        if not text.strip():
            notes.append(f"{f}: empty (no evaluation records), so its run is in no fit; `ladder eval` evaluates it")
        for i, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise FitInputError(f"{f}:{i + 1}: not JSON ({e.msg})")
            if dataset is not None and r.get("dataset") != dataset:
                continue
            if "chance" in r:
                add_chance(chance, r.get("metric"), r["chance"], f"{f}:{i + 1}")
            rows.append({"run": r.get("run"), "size": r.get("size"), "multiplier": r.get("multiplier"),
                         "params": r.get("params"), "tokens": r.get("tokens"),
                         "run_tokens": r.get("run_tokens"), "flops": np.nan, "step": r.get("step"),
                         "final": bool(r.get("final", False)), "metric": r.get("metric"),
                         "value": number(r.get("value")), "dataset": r.get("dataset")})
    return [frame(rows)], notes, chance


def number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan
