"""The sources a fit reads, one module each: the harness's results.jsonl files, the OLMo ladder's W&B exports,
Gadre et al.'s exp_data folder, a CSV of points. Each reader returns the points and its `SourceProfile`."""
from pathlib import Path
from typing import List, Optional

import pandas as pd

from fit.errors import FitInputError
from fit.points import COLUMNS, DEFAULT_CHANCE, PointSet, clean_points
from fit.sources import gadre, harness, olmo, table
from ladder.core.layout import RESULTS, RUNGS, results_files

READERS = {"harness": harness, "olmo": olmo, "gadre": gadre, "csv": table}
FORMATS = tuple(READERS)


def detect_format(path: Path) -> str:
    if path.is_file():
        if path.suffix == ".csv":
            return "csv"
        if path.name == RESULTS:
            return "harness"
    elif path.is_dir():
        if not any(path.iterdir()):
            raise FitInputError(f"results={path}: an empty directory, nothing to fit (a ladder's out_dir once "
                                f"`ladder run` has evaluated a rung, OLMo-ladder CSVs, a Gadre et al. folder or a CSV)")
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


def _resolve(results: str, fmt: str):
    if not results:
        raise FitInputError("results: no input given (results=PATH)")
    path = Path(results).expanduser()
    if not path.exists():
        raise FitInputError(f"results={path}: no such file or directory")
    fmt = detect_format(path) if fmt in (None, "auto") else fmt
    if fmt not in READERS:
        raise FitInputError(f"format={fmt}: unknown (one of auto, {', '.join(FORMATS)})")
    return path, fmt


def dataset_names(results: str, fmt: str = "auto") -> List[str]:
    """The datasets (or a CSV's variants) whose ladders `results` holds, each one `load_points(dataset=NAME)`."""
    path, fmt = _resolve(results, fmt)
    source = READERS[fmt]
    if hasattr(source, "datasets"):  # a reader that must be told a dataset before it reads any point
        return source.datasets(path)
    frames, _, _ = source.read(path, None)
    return sorted({str(d) for f in frames for d in f["dataset"].dropna().unique()})


def load_points(results: str, fmt: str = "auto", dataset: Optional[str] = None) -> PointSet:
    path, fmt = _resolve(results, fmt)
    source = READERS[fmt]
    frames, notes, chance = source.read(path, dataset)
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    if raw.empty and dataset is not None and (held := dataset_names(str(path), fmt)):
        raise FitInputError(f"dataset={dataset}: not in results={path} (its datasets: {', '.join(held)})")
    if raw.empty:
        raise FitInputError(f"results={path}: no points read as format {fmt}")
    points, dropped = clean_points(raw[COLUMNS])
    if points.empty:
        reasons = "; ".join(f"{n} {why}" for why, n in dropped["reason"].value_counts().items())
        raise FitInputError(f"results={path}: every point was left out ({reasons})")
    metrics = set(points["metric"])
    chance = {m: c for m, c in chance.items() if m in metrics}
    for m in sorted(m for m in metrics if m.endswith(":acc") and m not in chance):
        chance[m] = DEFAULT_CHANCE
        notes.append(f"{m}: the data gives no chance level (a `chance` field on its results.jsonl records, a "
                     f"`{m.split(':')[0]}:chance` CSV column); taken as {DEFAULT_CHANCE:g}, a four-choice task's")
    return PointSet(points, dropped, source.PROFILE, str(path), notes, chance)
