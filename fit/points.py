"""Readers for the four input formats, all producing one tidy long table of points.

Columns of `PointSet.points`: run, size, multiplier (tokens per parameter), params, tokens (seen at
the checkpoint), run_tokens (the whole run's D), flops (training FLOPs so far, NaN if unknown), step,
final, metric, value, dataset. Points that cannot be used go to `PointSet.dropped` with a reason.
`PointSet.chance` holds each accuracy's chance level, as the data gives it (docs/fit.md).
"""
import glob
import json
import math
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pandas as pd

from fit.errors import FitInputError
from ladder.core import mmlu
from ladder.core.layout import RESULTS, RUNGS, results_files
from ladder.core.sizes import format_count

COLUMNS = ["run", "size", "multiplier", "params", "tokens", "run_tokens", "flops", "step", "final",
           "metric", "value", "dataset"]
FORMATS = ("harness", "olmo", "gadre", "csv")

# Bhagia et al. 2024 (arXiv 2412.04403), the N of each rung used in the paper's fits.
OLMO_PARAMS = {"190M": 190354176, "370M": 371262464, "760M": 758220288, "1B": 1279395840,
               "7B": 6887575552, "13B": 13202396160}
OLMO_TARGET_RUNS = {"peteish13": ("13B", 13202396160, 5000088518656)}
OLMO_TASKS = ["mmlu", "hellaswag", "arc_challenge", "arc_easy", "piqa", "csqa", "socialiqa", "openbookqa"]
# The paper's splits per task (OLMo-ladder scaling/utils.py, "v2_main").
_OLMO_SPLITS = {"hellaswag": ["hellaswag_val"], "arc_challenge": ["arc_challenge_test"],
                "arc_easy": ["arc_easy_test"], "piqa": ["piqa_val"], "csqa": ["csqa_val"],
                "socialiqa": ["socialiqa_val"], "openbookqa": ["openbookqa_test"],
                "mmlu": ["mmlu_stem_test", "mmlu_humanities_test", "mmlu_social_sciences_test",
                         "mmlu_other_test"]}
_MMLU_WEIGHTS = {f"mmlu_{group}_test": weight for group, weight in mmlu.WEIGHTS.items()}
# The paper's accuracy floors for its 8 tasks (OLMo-ladder scaling/utils.py minimums_rc).
OLMO_CHANCE = {"mmlu": 0.25, "hellaswag": 0.25, "arc_challenge": 0.25, "arc_easy": 0.25, "piqa": 0.5, "csqa": 0.2,
               "socialiqa": 1 / 3, "openbookqa": 0.25}
_OLMO_KINDS = {"bpb": "eval/downstream_bpb/{s}_rc_5shot_bpb", "acc": "eval/downstream/{s}_rc_5shot_len_norm",
               "gold_prob": "eval/downstream_soft/{s}_rc_5shot_soft",
               "gold_logprob": "eval/downstream_soft_log/{s}_rc_5shot_soft_log"}

# Gadre et al. 2024 (arXiv 2403.08540, mlfoundations/scaling constants.py): the 17-task subset.
GADRE_SUBSET = ["bigbench_operators", "pubmed_qa_labeled", "hellaswag_zeroshot", "boolq", "arc_easy", "coqa",
                "bigbench_dyck_languages", "lambada_openai", "bigbench_novel_concepts", "winograd",
                "bigbench_cs_algorithms", "commonsense_qa", "bigbench_qa_wikidata", "hellaswag", "copa",
                "squad", "piqa"]
GADRE_SIZES = {"d=96_l=8_h=4": "0.011B", "d=512_l=8_h=4": "0.079B", "d=576_l=24_h=8": "0.154B",
               "d=1024_l=24_h=8": "0.411B", "open_lm_1b": "1.4B", "open_lm_7b": "6.9B"}


# What an accuracy without a chance level in the data is taken to have (with a note): a four-choice task's.
DEFAULT_CHANCE = 0.25


@dataclass
class PointSet:
    points: pd.DataFrame
    dropped: pd.DataFrame
    format: str
    source: str
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


def shared_data_dir() -> Optional[Path]:
    """`<repo>/../shared/data`, or $LADDER_SHARED_DATA; None when absent."""
    env = os.environ.get("LADDER_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    return path.resolve() if path.is_dir() else None


def detect_format(path: Path) -> str:
    if path.is_file():
        if path.suffix == ".csv":
            return "csv"
        if path.name == RESULTS:
            return "harness"
    elif path.is_dir():
        if results_files(path) or list(path.glob(f"*/{RESULTS}")):
            return "harness"
        if (path / RUNGS).is_dir():
            raise FitInputError(f"results={path}: a ladder run with no evaluation results yet (no {RUNGS}/*/{RESULTS}); "
                                f"`ladder status` says where its rungs are")
        if (path / "models").is_dir() and (path / "evals").is_dir():
            return "gadre"
        csvs = list(path.glob("*.csv"))
        if csvs:
            header = csvs[0].open().readline()
            return "olmo" if "_step" in header and "eval/" in header else "csv"
    raise FitInputError(f"results={path}: cannot detect the input format (name it with format=harness|olmo|gadre|csv)")


def load_points(results: str, fmt: str = "auto", dataset: Optional[str] = None) -> PointSet:
    if not results:
        raise FitInputError("results: no input given (results=PATH)")
    path = Path(results).expanduser()
    if not path.exists():
        raise FitInputError(f"results={path}: no such file or directory")
    fmt = detect_format(path) if fmt in (None, "auto") else fmt
    readers = {"harness": _read_harness, "olmo": _read_olmo, "gadre": _read_gadre, "csv": _read_csv}
    if fmt not in readers:
        raise FitInputError(f"format={fmt}: unknown (one of auto, {', '.join(FORMATS)})")
    frames, notes, chance = readers[fmt](path, dataset)
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    if raw.empty:
        raise FitInputError(f"results={path}: no points read as format {fmt}")
    points, dropped = clean_points(raw[COLUMNS])
    metrics = set(points["metric"])
    chance = {m: c for m, c in chance.items() if m in metrics}
    for m in sorted(m for m in metrics if m.endswith(":acc") and m not in chance):
        chance[m] = DEFAULT_CHANCE
        notes.append(f"{m}: the data gives no chance level (a `chance` field on its results.jsonl records, a "
                     f"`{m.split(':')[0]}:chance` CSV column); taken as {DEFAULT_CHANCE:g}, a four-choice task's")
    return PointSet(points, dropped, fmt, str(path), notes, chance)


def _add_chance(chance: Dict[str, float], metric: str, value, where: str) -> None:
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


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def _read_olmo(path: Path, dataset):
    frames, notes = [], []
    for f in sorted(path.glob("*.csv")):
        m = re.fullmatch(r"(\d+[MB])-([\d.]+)xC(-rerun)?", f.stem)
        df = pd.read_csv(f)
        if m:
            size, xc = m.group(1), float(m.group(2))
            run, params = f.stem, OLMO_PARAMS.get(size)
            if params is None:
                raise FitInputError(f"{f}: size {size} is not in the paper's size table")
            tokens = df["throughput/total_tokens"].astype(float)
            flops = df["throughput/total_training_Gflops"].astype(float) * 1e9
            run_tokens = float(tokens.iloc[-1])
        else:
            stem = next((k for k in OLMO_TARGET_RUNS if f.stem.startswith(k)), None)
            if stem is None:
                notes.append(f"{f.name}: not a ladder run file name, skipped")
                continue
            size, params, run_tokens = OLMO_TARGET_RUNS[stem]
            run = f"{size}-{run_tokens / 1e12:.0f}T"
            tokens = df["_step"].astype(float) * df["batch_size_in_tokens"].astype(float)
            flops = pd.Series(np.nan, index=df.index)
            xc = run_tokens / params / 20
        wide = {}
        for col in df.columns:
            cm = re.fullmatch(r"eval/(.+)-validation/CrossEntropyLoss", col)
            if cm:
                wide[f"{cm.group(1)}:loss"] = df[col].astype(float)
        for task, splits in _OLMO_SPLITS.items():
            for kind, pattern in _OLMO_KINDS.items():
                cols = [pattern.format(s=s) for s in splits]
                if all(c in df.columns for c in cols):
                    w = np.array([_MMLU_WEIGHTS.get(s, 1.0) for s in splits])
                    wide[f"{task}:{kind}"] = df[cols].astype(float).to_numpy() @ w / w.sum()
            if f"{task}:gold_logprob" in wide:
                # a loss (positive, falls with scale) so that step 1's power law can take it as intermediate
                wide[f"{task}:gold_nll"] = -wide[f"{task}:gold_logprob"]
        final_step = df["_step"].max()
        for metric, values in wide.items():
            frames.append(_frame({
                "run": run, "size": size, "multiplier": 20 * xc, "params": float(params), "tokens": tokens,
                "run_tokens": run_tokens, "flops": flops, "step": df["_step"].astype(float),
                "final": df["_step"] == final_step, "metric": metric, "value": np.asarray(values, float),
                "dataset": "olmo"}))
    return frames, notes, {f"{task}:acc": c for task, c in OLMO_CHANCE.items()}


def _read_gadre(path: Path, dataset):
    models = sorted((path / "models").glob("*.json"))
    by_ds = {}
    for f in models:
        by_ds.setdefault(json.loads(f.read_text())["dataset_name"], []).append(f)
    if not by_ds:
        raise FitInputError(f"results={path}: no {path / 'models'}/*.json, not a Gadre et al. exp_data folder")
    if dataset is None:
        if len(by_ds) > 1:
            raise FitInputError(f"{path}/models: holds datasets {', '.join(sorted(by_ds))}; choose one with dataset=NAME")
        dataset = next(iter(by_ds))
    if dataset not in by_ds:
        raise FitInputError(f"dataset={dataset}: not in {path}/models (has {', '.join(sorted(by_ds))})")
    rows, notes = [], []
    for f in by_ds[dataset]:
        model = json.loads(f.read_text())
        hp = model["hyperparameters"]
        n, d, shape = float(hp["params"]), float(hp["tokens"]), hp["model"]
        base = dict(run=model["name"], size=GADRE_SIZES.get(shape, shape), multiplier=20 * hp["chinchilla_multiplier"],
                    params=n, tokens=d, run_tokens=d, flops=6 * n * d, step=np.nan, final=True, dataset=dataset)
        for res in model["results"]:
            rows.append({**base, "metric": f"{Path(res['val_data'][0]).parent.name}:loss", "value": res["loss"]})
        ev = path / "evals" / f"evaluation_{f.stem}_heavy.json"
        if not ev.exists():
            notes.append(f"{ev.name}: missing, run {model['name']} has no downstream errors")
            continue
        icl = json.loads(ev.read_text())["eval_metrics"]["icl"]
        for task, acc in icl.items():
            rows.append({**base, "metric": f"{task}:err", "value": 1 - acc})
        if len(icl) == 46:
            rows.append({**base, "metric": "avg46:err", "value": 1 - np.mean(list(icl.values()))})
        else:
            notes.append(f"{ev.name}: has {len(icl)} tasks, not 46; no avg46:err for this run")
        if all(t in icl for t in GADRE_SUBSET):
            rows.append({**base, "metric": "avg17:err", "value": 1 - np.mean([icl[t] for t in GADRE_SUBSET])})
    # The mean error over tasks of mixed chance has no floor, as in the paper's code.
    return [_frame(rows)], notes, {"avg46:err": 0.0, "avg17:err": 0.0}


def _read_harness(path: Path, dataset):
    files = [path] if path.is_file() else results_files(path) or sorted(path.glob(f"*/{RESULTS}"))
    rows, notes, chance = [], [], {}
    for f in files:
        for i, line in enumerate(f.read_text().splitlines()):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise FitInputError(f"{f}:{i + 1}: not JSON ({e.msg})")
            if dataset is not None and r.get("dataset") != dataset:
                continue
            if "chance" in r:
                _add_chance(chance, r.get("metric"), r["chance"], f"{f}:{i + 1}")
            rows.append({"run": r.get("run"), "size": r.get("size"), "multiplier": r.get("multiplier"),
                         "params": r.get("params"), "tokens": r.get("tokens"),
                         "run_tokens": r.get("run_tokens"), "flops": np.nan, "step": r.get("step"),
                         "final": bool(r.get("final", False)), "metric": r.get("metric"),
                         "value": _num(r.get("value")), "dataset": r.get("dataset")})
    return [_frame(rows)], notes, chance


def _num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _numeric(df: pd.DataFrame, path: Path, columns: List[str]) -> pd.DataFrame:
    """The numeric columns as numbers; an empty cell is a missing value, any other text an error naming its cell."""
    df = df.copy()
    for col in (c for c in columns if c in df.columns):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            row = bad.to_numpy().nonzero()[0][0]
            raise FitInputError(f"{path}: line {row + 2}, column '{col}': {df[col].iloc[row]!r} is not a number")
        df[col] = values
    return df


def _read_csv(path: Path, dataset):
    files = [path] if path.is_file() else sorted(path.glob("*.csv"))
    frames, chance = [], {}
    for f in files:
        try:
            df = pd.read_csv(f)
        except pd.errors.EmptyDataError:
            raise FitInputError(f"{f}: empty file (expected a header with params, tokens and metric columns)") from None
        for col in ("params", "tokens"):
            if col not in df.columns:
                raise FitInputError(f"{f}: missing required column '{col}'")
        chances = [c for c in df.columns if c.endswith(":chance")]
        metrics = [c for c in df.columns if ":" in c and c not in chances]
        if not metrics:
            raise FitInputError(f"{f}: no metric columns (named like 'c4:loss' or 'hellaswag:acc')")
        df = _numeric(df, f, ["params", "tokens", "run_tokens", "multiplier", "step", "flops", *metrics, *chances])
        for col in chances:  # `<task>:chance`: the chance level of the task's accuracies, <task>:acc and acc_*
            task = col[:-len(":chance")]
            for value in df[col].dropna().unique():
                for m in (m for m in metrics if m.split(":")[0] == task and m.split(":")[1].startswith("acc")):
                    _add_chance(chance, m, value, f"{f}: column '{col}'")
        if dataset is not None and "dataset" in df.columns:
            df = df[df["dataset"] == dataset]
        run = df["run"] if "run" in df.columns else df["params"].astype(str) + "-" + df["tokens"].astype(str)
        run_tokens = df["run_tokens"] if "run_tokens" in df.columns else df.groupby(run)["tokens"].transform("max")
        step = df["step"] if "step" in df.columns else pd.Series(np.nan, index=df.index)
        final = df["final"].astype(bool) if "final" in df.columns else df["tokens"] == run_tokens
        mult = df["multiplier"] if "multiplier" in df.columns else run_tokens / df["params"]
        size = df["size"] if "size" in df.columns else df["params"].map(lambda n: format_count(float(n)))
        flops = df["flops"] if "flops" in df.columns else pd.Series(np.nan, index=df.index)
        for m in metrics:
            frames.append(_frame({"run": run, "size": size, "multiplier": mult, "params": df["params"],
                                  "tokens": df["tokens"], "run_tokens": run_tokens, "flops": flops, "step": step,
                                  "final": final, "metric": m, "value": pd.to_numeric(df[m], errors="coerce"),
                                  "dataset": df["dataset"] if "dataset" in df.columns else dataset}))
    return frames, [], chance

