"""A CSV of points (docs/fit.md): a row per run (or per evaluation), `params` and `tokens` columns and a column
per metric named like `c4:loss` or `hellaswag:acc`, optionally `<task>:chance`, and a `dataset` (or `variant`) column
that tells apart ladders trained differently (`ladder compare` compares them)."""
from pathlib import Path
from typing import List

import numpy as np
import pandas as pd

from fit.errors import FitInputError
from fit.points import SourceProfile, add_chance, frame
from ladder.core.sizes import format_count

PROFILE = SourceProfile("csv")


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


def read(path: Path, dataset):
    files = [path] if path.is_file() else sorted(path.glob("*.csv"))
    frames, chance, notes = [], {}, []
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
                    add_chance(chance, m, value, f"{f}: column '{col}'")
        for col in ("variant", "dataset"):  # an empty cell would drop its rows from every variant, unsaid
            if col in df.columns and df[col].isna().any():
                lines = (np.flatnonzero(df[col].isna().to_numpy()) + 2).tolist()
                shown = ", ".join(map(str, lines[:8])) + (", …" if len(lines) > 8 else "")
                raise FitInputError(f"{f}: {len(lines)} of {len(df)} row(s) have an empty '{col}' cell (line(s) "
                                    f"{shown}); name each row's {col}, or remove the column to read one ladder")
        if "variant" in df.columns:  # what tells the ladders apart, in the place a dataset would
            df = df.assign(dataset=df["variant"].astype(str))
        if dataset is not None and "dataset" in df.columns:
            df = df[df["dataset"].astype(str) == dataset]
        run = df["run"] if "run" in df.columns else _runs_of(df, f, notes)
        run_tokens = df["run_tokens"] if "run_tokens" in df.columns else df.groupby(run)["tokens"].transform("max")
        step = df["step"] if "step" in df.columns else pd.Series(np.nan, index=df.index)
        final = df["final"].astype(bool) if "final" in df.columns else df["tokens"] == run_tokens
        mult = df["multiplier"] if "multiplier" in df.columns else run_tokens / df["params"]
        size = df["size"] if "size" in df.columns else df["params"].map(lambda n: format_count(float(n)))
        flops = df["flops"] if "flops" in df.columns else pd.Series(np.nan, index=df.index)
        for m in metrics:
            frames.append(frame({"run": run, "size": size, "multiplier": mult, "params": df["params"],
                                  "tokens": df["tokens"], "run_tokens": run_tokens, "flops": flops, "step": step,
                                  "final": final, "metric": m, "value": pd.to_numeric(df[m], errors="coerce"),
                                  "dataset": df["dataset"] if "dataset" in df.columns else dataset}))
    return frames, notes, chance


def _runs_of(df: pd.DataFrame, f: Path, notes: List[str]) -> pd.Series:
    """Each row's run where the table names none. With a `step` column its rows are checkpoints (a W&B export's
    rows), grouped into a run per size (and `run_tokens` and dataset, where given); without, each row is its own
    run ending at its `tokens` (a table of finals)."""
    if "step" not in df.columns:
        return df["params"].astype(str) + "-" + df["tokens"].astype(str)
    keys = [c for c in ("dataset", "params", "run_tokens") if c in df.columns]
    run = df[keys].astype(str).agg("-".join, axis=1)
    shared = df.assign(run=run).duplicated(["run", "step"])
    if shared.any():
        row = shared.to_numpy().nonzero()[0][0]
        raise FitInputError(f"{f}: line {row + 2}: no `run` column, and rows at N = {df['params'].iloc[row]:.4g} repeat "
                            f"step {df['step'].iloc[row]:g}: several runs share that size; add a `run` column (or "
                            "`run_tokens`, each run's D) to tell them apart")
    notes.append(f"{f}: no `run` column; its rows are checkpoints (it has `step`), grouped into {run.nunique()} runs "
                 f"by {', '.join(keys)}")
    return run

