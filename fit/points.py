"""The points a fit reads, whatever their source: one tidy long table, and the source's conventions.

Columns of `PointSet.points`: run, size, multiplier (tokens per parameter), params, tokens (seen at
the checkpoint), run_tokens (the whole run's D), flops (training FLOPs so far, NaN if unknown), step,
final, metric, value, dataset. Points that cannot be used go to `PointSet.dropped` with a reason.
`PointSet.chance` holds each accuracy's chance level, as the data gives it (docs/fit.md), and
`PointSet.profile` what differs between data sources, set by the source's reader (fit/sources/).
"""
import numbers
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import pandas as pd

from fit.errors import FitInputError

COLUMNS = ["run", "size", "multiplier", "params", "tokens", "run_tokens", "flops", "step", "final",
           "metric", "value", "dataset"]


@dataclass(frozen=True)
class SourceProfile:
    """What differs between the data sources a fit reads, attached to the points by the source's reader
    (fit/sources/): the methods read these fields, never the source's name."""
    name: str  # harness, olmo, gadre or csv: where the points came from, for the report
    final_window: int = 1  # a run's final value: the mean of its last so-many evaluations
    paper_starts: bool = False  # the two-step laws start from their paper's one start (tuned to this data)
    targets: tuple = ()  # what to predict when no target is named; empty: the runs larger than the fit set
    # Runs no default fit set takes (the OLMo exports' reruns and 0.5xC runs, which the paper left out).
    excluded: Optional[Callable[[pd.DataFrame], pd.Series]] = None
    # The paper's own fit sets, (loss law's runs, error law's runs), which every method fits by default
    # on this data (Gadre et al.'s: fit.runs.gadre_runs).
    fit_sets: Optional[Callable[["PointSet"], tuple]] = None
    losses: Optional[Callable[[str], bool]] = None  # the loss-like metrics chinchilla predicts (default: all)
    accuracies: tuple = ()  # what the accuracy methods predict instead of every <task>:acc (Gadre's averages)
    task_order: tuple = ()  # tasks in the order the paper reports them, before the others
    report_beside: bool = False  # `ladder fit` of a directory writes its report inside it (a ladder run's report/)


# What an accuracy without a chance level in the data is taken to have (with a note): a four-choice task's.
DEFAULT_CHANCE = 0.25


@dataclass
class PointSet:
    points: pd.DataFrame
    dropped: pd.DataFrame
    profile: SourceProfile
    source: str  # the path read
    notes: List[str] = field(default_factory=list)
    # metric -> the score a guess gets: a task's accuracies (`<task>:acc`), an error's accuracy (`avg46:err`)
    chance: Dict[str, float] = field(default_factory=dict)

    def chance_of(self, metric: str) -> float:
        if metric not in self.chance:
            raise FitInputError(f"{metric}: the points carry no chance level for it")
        return self.chance[metric]

    def dropped_summary(self) -> List[str]:
        if self.dropped.empty:
            return []
        out = []
        for (reason, run), grp in self.dropped.groupby(["reason", "run"], dropna=False, sort=True):
            out.append(f"dropped {len(grp)} point(s) of run {run}: {reason}")
        return out


def is_accuracy(metric: str) -> bool:
    """Accuracies and errors (`<task>:acc`, `avg46:err`), fractions shown in points; every other metric
    (losses, bpb, NLL) is a positive quantity compared relative to its value."""
    return metric.endswith((":acc", ":err"))



def add_chance(chance: Dict[str, float], metric: str, value, where: str) -> None:
    """Record `metric`'s chance level, a number in [0, 1); every point of a metric must say the same."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise FitInputError(f"{where}: chance level {value!r} of {metric} is not a number in [0, 1)")
    if chance.setdefault(metric, float(value)) != float(value):
        raise FitInputError(f"{where}: chance level {value:g} of {metric}, but {chance[metric]:g} before: "
                            f"its points do not come from one task")


def clean_points(raw: pd.DataFrame):
    """Leave out NaN, duplicated, diverged and incomplete points, saying why for each."""
    raw = raw.reset_index(drop=True)
    reason = pd.Series("", index=raw.index, dtype=object)
    for col in ("params", "tokens"):
        bad = ~np.isfinite(pd.to_numeric(raw[col], errors="coerce").astype(float)) | (raw[col].astype(float) <= 0)
        reason[bad & (reason == "")] = f"missing or invalid {col}"
    reason[~np.isfinite(raw["value"].astype(float)) & (reason == "")] = "value is NaN or infinite"
    key = ["run", "step", "metric"]
    dup = raw.assign(step=raw["step"].fillna(-1)).duplicated(key, keep="first")
    reason[dup & (reason == "")] = "duplicated (same run, step and metric seen before)"
    ok = reason == ""
    # A run whose final loss is 20 % above its best has diverged; its late points describe nothing.
    loss = raw[ok & raw["metric"].str.endswith((":loss", ":bpb"))]
    for (run, metric), grp in loss.groupby(["run", "metric"]):
        grp = grp.sort_values("tokens")
        if len(grp) > 1 and grp["value"].iloc[-1] > 1.2 * grp["value"].min():
            reason[(raw["run"] == run) & (reason == "")] = f"diverged ({metric} ends 20% above its minimum)"
    ok = reason == ""
    # Every run must report every metric the other runs report; a missing column is said, not guessed.
    kept = raw[ok]
    all_metrics = set(kept["metric"].unique())
    missing_rows = []
    for run, have in kept.groupby("run")["metric"].unique().items():
        for metric in sorted(all_metrics - set(have)):
            missing_rows.append({**{c: None for c in COLUMNS}, "run": run, "metric": metric,
                                 "reason": "missing column (metric absent from this run)"})
    points = raw[ok].copy()
    dropped = raw[~ok].copy()
    dropped["reason"] = reason[~ok]
    if missing_rows:
        dropped = pd.concat([dropped, pd.DataFrame(missing_rows)], ignore_index=True)
    points["final"] = points["final"].astype(bool)
    return points.reset_index(drop=True), dropped.reset_index(drop=True)


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)
