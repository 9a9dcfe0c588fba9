"""The harness's own evaluation records: a ladder run's `rungs/*/results.jsonl` (docs/formats.md).

Only current records are read: one marked `superseded` was replaced by an evaluation of its checkpoint under
another evaluation key. Every current record of a metric (per dataset) must carry one key, as it must one
chance level, or the fit would mix two evaluations' numbers; records written before keys existed carry none,
and a file of them reads as one key.
"""
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
    rows, notes, chance, keys = [], [], {}, {}
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
            if (dataset is not None and r.get("dataset") != dataset) or r.get("superseded"):
                continue
            one_key(keys, r, f"{f}:{i + 1}")
            if "chance" in r:
                add_chance(chance, r.get("metric"), r["chance"], f"{f}:{i + 1}")
            rows.append({"run": r.get("run"), "size": r.get("size"), "multiplier": r.get("multiplier"),
                         "params": r.get("params"), "tokens": r.get("tokens"),
                         "run_tokens": r.get("run_tokens"), "flops": np.nan, "step": r.get("step"),
                         "final": bool(r.get("final", False)), "metric": r.get("metric"),
                         "value": number(r.get("value")), "dataset": r.get("dataset")})
    return [frame(rows)], notes, chance


def one_key(keys: dict, record: dict, where: str) -> None:
    """Refuse a record whose evaluation key differs from the first of its metric in its run, else from the first
    of its metric in its dataset, naming both records and the settings that differ."""
    metric, run, key = record.get("metric"), record.get("run"), record.get("eval_key")
    for scope in ((record.get("dataset"), metric, run), (record.get("dataset"), metric)):
        first_key, first_run, first_where = keys.setdefault(scope, (key, run, where))
        if key != first_key:
            raise FitInputError(f"{where}: {metric} of run {run} was evaluated with other settings than at "
                                f"{first_where} (run {first_run}): {difference(key, first_key)}; one fit never mixes "
                                f"two evaluations: evaluate every checkpoint with one setting (`ladder eval` "
                                f"re-evaluates the others)")


def difference(key, other) -> str:
    """The settings two evaluation keys differ in, as `eval.num_fewshot 5 (not 0)`."""
    if key is None or other is None:
        return "no evaluation key (an older harness's records)" if key is None else "an evaluation key (not none)"
    return ", ".join(f"{k} {key.get(k)} (not {other.get(k)})" for k in sorted(set(key) | set(other))
                     if key.get(k) != other.get(k))


def number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan
