"""Documents of a dataset, from the hub (streamed) or from local shards, both through HF `datasets`.

Local shards are read one file at a time so that any failure names its file (and line, where the
format has lines); empty and whitespace-only documents are skipped and counted, not errors.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

from omegaconf import DictConfig, OmegaConf

from train.data.config import DataConfig
from train.data.errors import DataError


# Local file name endings and the `datasets` builder that reads them.
# A plain .json is left out: it may be one JSON document rather than lines (and manifests are .json).
FORMATS = {".jsonl": "json", ".jsonl.gz": "json", ".json.gz": "json", ".parquet": "parquet"}


EMPTY = "empty file (no records); remove it or fill it"


def data_config(cfg) -> DictConfig:
    """A DataConfig from a dataclass, dict or DictConfig, validated against the schema and its numbers checked."""
    cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), cfg)
    for key in ("val_tokens", "max_tokens", "num_proc"):
        if cfg[key] is not None and cfg[key] < 1:
            raise DataError(f"data.{key}={cfg[key]}: must be at least 1 (dataset '{cfg.name}')")
    return cfg


def text_format(path: Path) -> Optional[str]:
    name = path.name.lower()
    return next((fmt for end, fmt in FORMATS.items() if name.endswith(end)), None)


def local_files(path: str | Path) -> list[Path]:
    """The shard files at `path` (a file, or a directory searched recursively), in sorted order."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_file():
        if text_format(path) is None:
            raise DataError(f"{path}: not a json.gz, jsonl or parquet file")
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and text_format(p))
    if not files:
        raise DataError(f"{path}: no json.gz, jsonl or parquet files in this directory")
    return files


def _opener(path: Path):
    return gzip.open if path.name.endswith(".gz") else open


def _no_field(source, row: int, text_field: str, record: dict) -> DataError:
    return DataError(f"{source}: record {row} has no field '{text_field}' "
                     f"(fields: {', '.join(sorted(record))}); set data.text_field")


def _bad_line(path: Path) -> str:
    """Find the first line of a JSON-lines file that is not valid UTF-8 JSON, or say that it holds no line,
    to name it in an error."""
    records = 0
    try:
        with _opener(path)(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return f"line {number}: invalid UTF-8 ({exc.reason} at byte {exc.start})"
                if line.strip():
                    records += 1
                    try:
                        json.loads(line)
                    except json.JSONDecodeError as exc:
                        return f"line {number}: invalid JSON ({exc.msg})"
    except (OSError, EOFError) as exc:
        return f"corrupt or truncated gzip ({exc})"
    return "" if records else EMPTY


def _require_field(path: Path, text_field: str) -> None:
    """A DataError naming the first record of a JSON-lines file that lacks `text_field`.

    The JSON reader gives every record the fields of all of them, so a record without the text field
    reads like one whose text is null (skipped and counted): only the file itself tells them apart.
    """
    if text_format(path) != "json":
        return
    try:
        with _opener(path)(path, "rt", encoding="utf-8") as f:
            for row, record in enumerate((json.loads(line) for line in f if line.strip()), 1):
                if text_field not in record:
                    raise _no_field(path, row, text_field, record)
    except (json.JSONDecodeError, UnicodeDecodeError):  # a bad line after the one read so far
        raise DataError(f"{path}: {_bad_line(path)}") from None


@dataclass
class Stats:
    """What was read: counted into the manifest."""
    documents: int = 0
    skipped_empty: int = 0
    files: list[str] = field(default_factory=list)


def _records(cfg: DictConfig, files: list[Path], part: Optional[list]) -> Iterator[tuple[str, int, dict]]:
    if part is not None:  # a unit below its file (train/data/parts.py)
        from train.data.parts import records

        yield from records(files[0], part, cfg.text_field)
        return
    import datasets

    datasets.disable_progress_bars()
    if cfg.path is None:
        if not cfg.hf_path:
            raise DataError(f"dataset '{cfg.name}' has neither data.path nor data.hf_path")
        try:
            ds = datasets.load_dataset(cfg.hf_path, cfg.hf_name, split=cfg.split, streaming=cfg.streaming)
        except Exception as exc:  # no network, unknown name, ...: say what to do instead
            raise DataError(f"could not load {cfg.hf_path} ({cfg.hf_name}) from the hub: {exc}; "
                            f"without a network set data.path to local shards") from exc
        for row, record in enumerate(ds):
            yield cfg.hf_path, row + 1, record
        return
    for path in files:
        row = 0
        try:
            ds = datasets.load_dataset(text_format(path), data_files=[str(path)], split="train", streaming=True)
            for row, record in enumerate(ds, 1):
                yield str(path), row, record
            if row == 0:
                raise DataError(f"{path}: {EMPTY}")
        except DataError:
            raise
        except Exception as exc:  # json/parquet/gzip/UTF-8 failures arrive as many types
            where = _bad_line(path) if text_format(path) == "json" else ""
            cause = f" ({type(exc).__name__}: {str(exc).splitlines()[0]})" if str(exc).strip() else ""
            raise DataError(f"{path}: {where or f'unreadable file (read {row} records)'}{cause}") from exc


def documents(cfg, stats: Optional[Stats] = None, part: Optional[list] = None) -> Iterator[str]:
    """The text of every non-empty document, in the dataset's order; of one part of its file alone where
    `part` is given (train/data/parts.py)."""
    cfg = data_config(cfg)
    stats = stats if stats is not None else Stats()
    files = local_files(cfg.path) if cfg.path is not None else []
    stats.files = [str(p) for p in files] or [f"hf://{cfg.hf_path}/{cfg.hf_name or ''}/{cfg.split}"]
    checked = set()  # local files already searched for a record without the text field
    for source, row, record in _records(cfg, files, part):
        if cfg.text_field not in record:
            raise _no_field(source, row, cfg.text_field, record)
        text = record[cfg.text_field]
        if text is None and files and part is None and source not in checked:  # a part's records are the file's own
            checked.add(source)
            _require_field(Path(source), cfg.text_field)
        if text is not None and not isinstance(text, str):
            raise DataError(f"{source}: record {row}: field '{cfg.text_field}' is {type(text).__name__}, not text")
        if not text or not text.strip():
            stats.skipped_empty += 1
            continue
        stats.documents += 1
        yield text
