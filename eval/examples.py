"""What a task is made of: its examples, and the rows they are made from (a local file or a hub dataset).

Local files (json, jsonl, json.gz, parquet, csv) are read with pyarrow, which the eval stage has
wherever it runs; `datasets` is imported only to load a task from the hub by name, since the GPU
image has no `datasets` and needs no network for local files.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq


class TaskError(ValueError):
    """A task that cannot be loaded or an example that cannot be scored as given."""


@dataclass(frozen=True)
class Example:
    context: str
    choices: tuple[str, ...]  # continuations, each with its leading space
    gold: int
    # Partial scoring (Winogrande): each choice completes the context and this shared suffix is scored.
    suffix: Optional[str] = None
    group: str = ""  # e.g. the MMLU subject; few-shot examples come from the same group
    header: str = ""  # the start of `context` that precedes any few-shot demonstrations (MMLU's subject line)

    def __post_init__(self):
        if not isinstance(self.context, str):
            raise TaskError(f"context must be text, got {type(self.context).__name__}")
        if len(self.choices) < 2:
            raise TaskError(f"needs at least 2 choices, got {len(self.choices)}")
        for i, choice in enumerate(self.choices):
            if not isinstance(choice, str) or not choice.strip():
                raise TaskError(f"choice {i} is empty")
        if isinstance(self.gold, bool) or not isinstance(self.gold, int) or not 0 <= self.gold < len(self.choices):
            raise TaskError(f"gold index {self.gold!r} is out of range for {len(self.choices)} choices")
        if self.suffix is not None and not self.suffix.strip():
            raise TaskError("partial-scoring suffix is empty")
        if not self.context.startswith(self.header):
            raise TaskError("the header must be the start of the context")

    def requests(self) -> list[tuple[str, str]]:
        """The (context, continuation) pairs that score the choices."""
        if self.suffix is None:
            return [(self.context, choice) for choice in self.choices]
        return [(self.context + choice, self.suffix) for choice in self.choices]

    def scored_texts(self) -> list[str]:
        """The text each request scores (for character and byte normalisation)."""
        return [cont for _, cont in self.requests()]

    def with_gold(self) -> str:
        """The example answered correctly, as a few-shot demonstration (without its header)."""
        context, continuation = self.requests()[self.gold]
        return context[len(self.header):] + continuation


@dataclass(frozen=True)
class Rows:
    """A table of rows: its column names, and each row as a dict (a value a row lacks is None)."""
    columns: list[str]
    rows: Iterable[dict]

    def column(self, name: str) -> list:
        return [row[name] for row in self.rows]


LOCAL_FORMATS = {".json": "json", ".jsonl": "json", ".gz": "json", ".parquet": "parquet", ".csv": "csv"}


def read_local(path: str, what: str) -> Rows:
    """A local json/jsonl/json.gz/parquet/csv file's rows; TaskError naming `what` and the file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise TaskError(f"{what}: no file {file}")
    fmt = LOCAL_FORMATS.get(file.suffix)
    if fmt is None:
        raise TaskError(f"{what}: cannot read {file.name} (use one of {', '.join(LOCAL_FORMATS)})")
    try:
        if _is_empty(file):
            raise TaskError(f"{what}: {file} is empty")
        if fmt == "json":
            return _read_json(file)
        table = pq.read_table(file) if fmt == "parquet" else pa_csv.read_csv(file)
    except TaskError:
        raise
    except Exception as exc:  # a malformed file: pyarrow's and json's errors, all of them this input's fault
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TaskError(f"{what}: could not read {file} ({type(exc).__name__}: {first})") from exc
    return Rows(table.column_names, table.to_pylist())


def _open(file: Path):
    return (gzip.open if file.suffix == ".gz" else open)(file, "rb")


def _is_empty(file: Path) -> bool:
    with _open(file) as f:
        return not f.read(1 << 16).strip()


def _read_json(file: Path) -> Rows:
    """JSON Lines, or one JSON array of row objects (both of which `datasets` reads as json)."""
    with _open(file) as f:
        array = f.read(1 << 16).lstrip().startswith(b"[")
    if array:
        with _open(file) as f:
            rows = json.load(f)
        if not all(isinstance(r, dict) for r in rows):
            raise ValueError("a JSON array of rows must hold objects only")
        columns = list(dict.fromkeys(k for r in rows for k in r))
        return Rows(columns, [{c: r.get(c) for c in columns} for r in rows])
    block = 1 << 20
    while True:  # a row longer than pyarrow's block fails to parse: retry with larger blocks, as `datasets` does
        try:
            table = pa_json.read_json(file, read_options=pa_json.ReadOptions(block_size=block))
            return Rows(table.column_names, table.to_pylist())
        except pa.ArrowInvalid as exc:
            if "straddling" not in str(exc) or block >= 1 << 30:
                raise
            block *= 4


def hub_dataset(path: str, config: Optional[str], split: str):
    """One split of a hub dataset, through `datasets`: imported here, where a task loads by hub name."""
    from datasets import load_dataset

    return load_dataset(path, config, split=split)


def read_hub(path: str, config: Optional[str], split: str, what: str, advice: str) -> Rows:
    """A hub dataset's split; TaskError naming `what`, the dataset and split, then `advice` (how to do without)."""
    try:
        dataset = hub_dataset(path, config, split)
    except ModuleNotFoundError as exc:
        if exc.name != "datasets":
            raise
        raise TaskError(f"{what}: loading {path} ({split}) from the hub needs the `datasets` package; "
                        f"or {advice}") from None
    except Exception as exc:  # no network, an unknown name, ...: many types, all of them this input's fault
        cause = _root_cause(exc)  # `datasets` wraps a parse error in "An error occurred while generating …"
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        raise TaskError(f"{what}: could not read {path} ({split}) ({type(cause).__name__}: {first}); "
                        f"without a network {advice}") from exc
    return Rows(dataset.column_names, dataset)


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc
