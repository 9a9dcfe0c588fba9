"""How the fit's numbers are shown, in the report, its figures and the terminal alike: one unit per kind
of metric (accuracies and errors in points, each loss in its own unit), task names as papers print them,
counts as 13.2B and 5.0T, compute as 4.0e23."""
import math
from typing import Iterable, Optional

import numpy as np

from fit.points import is_accuracy
from fit.sources.olmo import OLMO_TASKS  # the order the papers report tasks in

# The tasks' names as the papers print them (Bhagia et al. 2024, Gadre et al. 2024); others as the data names them.
TASK_NAMES = {"mmlu": "MMLU", "hellaswag": "HellaSwag", "arc_challenge": "ARC-Challenge", "arc_easy": "ARC-Easy",
              "piqa": "PIQA", "csqa": "CommonsenseQA", "socialiqa": "Social IQa", "openbookqa": "OpenBookQA",
              "winogrande": "Winogrande", "boolq": "BoolQ", "copa": "COPA", "avg46": "46-task mean",
              "avg17": "17-task mean"}
# kind (the part after ':') -> (what it is, unit)
KINDS = {"acc": ("accuracy", "points"), "err": ("top-1 error", "points"), "loss": ("LM loss", "nats/token"),
         "bpb": ("task loss", "bits/byte"), "gold_nll": ("gold-choice NLL", "nats")}
KIND_ORDER = ("acc", "err", "loss", "bpb", "gold_nll")


def kind(metric: str) -> str:
    return metric.rsplit(":", 1)[-1]


def scale(metric: str) -> float:
    """Accuracies and errors are fractions shown in points; every other metric as it is."""
    return 100.0 if is_accuracy(metric) else 1.0


def label(metric: str) -> str:
    """`mmlu:acc` -> MMLU, `c4_en:loss` -> c4_en, `mmlu:bpb` -> MMLU: the name within its kind."""
    name = metric.rsplit(":", 1)[0]
    return TASK_NAMES.get(name, name)


# The harness's held-out LM sets are named `<dataset>_val`; their bits per byte are no task's loss.
LM_BPB = ("LM bits per byte", "bits/byte")


def _kind_of(metric: str) -> tuple:
    """(what it is, unit) of one metric: its kind's, but an LM set's bpb (`smoke_val:bpb`) is its LM loss in bits
    per byte, not "task loss" as a task's bpb is."""
    if kind(metric) == "bpb" and metric.rsplit(":", 1)[0].endswith("_val"):
        return LM_BPB
    return KINDS.get(kind(metric), (kind(metric), ""))


def named(metric: str) -> str:
    """`c4_en:loss` -> c4_en LM loss, `mmlu:acc` -> MMLU accuracy: its name and kind, without the unit."""
    return f"{label(metric)} {_kind_of(metric)[0]}"


def long_label(metric: str) -> str:
    """`c4_en:loss` -> c4_en LM loss (nats/token): a name that stands alone, e.g. on an axis."""
    what, unit = _kind_of(metric)
    return f"{label(metric)} {what}" + (f" ({unit})" if unit else "")


def kind_title(k: str) -> str:
    what, unit = KINDS.get(k, (k, ""))
    return f"{what[0].upper()}{what[1:]}" + (f" ({unit})" if unit else "")


def order_kinds(kinds: Iterable[str]) -> list:
    kinds = list(dict.fromkeys(kinds))
    return [k for k in KIND_ORDER if k in kinds] + sorted(k for k in kinds if k not in KIND_ORDER)


def order_metrics(metrics: Iterable[str]) -> list:
    """The papers' task order (MMLU, HellaSwag, ARC-Challenge, …) first, the rest as they come."""
    metrics = list(dict.fromkeys(metrics))
    rank = {t: i for i, t in enumerate(OLMO_TASKS)}
    return sorted(metrics, key=lambda m: (rank.get(m.rsplit(":", 1)[0], len(rank)), metrics.index(m)))


def value(metric: str, v: float) -> str:
    """A value in its kind's unit: 51.9 (points), 2.344 (a loss)."""
    if v is None or not np.isfinite(v):
        return ""
    return f"{scale(metric) * v:.1f}" if is_accuracy(metric) else f"{v:.3f}"


def interval(metric: str, lo: float, hi: float) -> str:
    return "" if not (np.isfinite(lo) and np.isfinite(hi)) else f"[{value(metric, lo)}, {value(metric, hi)}]"


def estimate(metric: str, v: float, lo: float, hi: float) -> str:
    """`51.9 [46.5, 55.9]`, or the value alone without an interval."""
    return " ".join(x for x in (value(metric, v), interval(metric, lo, hi)) if x)


def error(metric: str, predicted: float, actual: float) -> str:
    """Predicted minus measured: in points for accuracies (+0.3), relative for the rest (−3.8 %)."""
    if not (np.isfinite(predicted) and np.isfinite(actual)):
        return ""
    if is_accuracy(metric):
        return f"{100 * (predicted - actual):+.1f}"
    return f"{100 * (predicted - actual) / abs(actual):+.1f} %"


def measured(metric: str, predicted: float, actual: float) -> str:
    """`51.6 (+0.3)`: the measured value and the prediction's error."""
    return "" if not np.isfinite(actual) else f"{value(metric, actual)} ({error(metric, predicted, actual)})"


def count(v: float) -> str:
    """13202396160 -> 13.2B, 5000088518656 -> 5.0T."""
    v = float(v)
    for unit, s in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(v) >= s:
            x = v / s
            return f"{x:.1f}{unit}" if x < 100 else f"{x:.0f}{unit}"
    return f"{v:.3g}"


def flops(c: float) -> str:
    """4.0e23, without the `+`."""
    if not np.isfinite(c) or c <= 0:
        return ""
    e = int(math.floor(math.log10(c)))
    m = c / 10 ** e
    if round(m, 1) >= 10:
        m, e = m / 10, e + 1
    return f"{m:.1f}e{e}"


def compute(params, tokens):
    """C = 6ND in floating point: N·D of a 7B model overflows int64 (the cause of a figure's C < 0)."""
    return 6.0 * np.asarray(params, dtype=float) * np.asarray(tokens, dtype=float)


def multiplier(m: Optional[float]) -> str:
    return "" if m is None or not np.isfinite(m) else f"{m:.3g}"
