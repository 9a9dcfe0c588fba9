"""Units below a file: a large source file is cut into parts that separate processes tokenize at once, so a
node's cores are all used on a corpus of a few large files, and a prepare that needs only the start of a file
stops a part after it, not a whole file after it.

  - an uncompressed JSON-lines file: byte ranges of about UNIT_BYTES; a line belongs to the part that holds
    its first byte;
  - a parquet file: runs of whole row groups of about UNIT_BYTES of uncompressed data;
  - a gzip file cannot be entered in its middle: it stays one unit.

A part's records are read here, directly (a whole file is read through `datasets`, train/data/sources.py);
the documents are the same and in the same order (tests/data/test_data_parts.py).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Optional

from train.data.errors import DataError

UNIT_BYTES = 1 << 27  # 128 MiB of text, ~30M tokens: minutes of one core's tokenizing


def parts(path: Path) -> list[Optional[list]]:
    """How `path` is cut into units: [None] (the whole file) or parts ["bytes"|"row_groups", first, stop]."""
    unit_bytes = UNIT_BYTES
    name = path.name.lower()
    if not name.endswith((".jsonl", ".parquet")):  # a gzip cannot be entered in its middle
        return [None]
    if name.endswith(".jsonl"):
        size = path.stat().st_size
        count = -(-size // unit_bytes)
        return [None] if count <= 1 else [["bytes", k * size // count, (k + 1) * size // count] for k in range(count)]
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except Exception:  # unreadable: read whole, where `datasets` names the file
        return [None]
    out, first, held = [], 0, 0
    for group in range(meta.num_row_groups):
        held += meta.row_group(group).total_byte_size
        if held >= unit_bytes or group == meta.num_row_groups - 1:
            out.append(["row_groups", first, group + 1])
            first, held = group + 1, 0
    return [None] if len(out) <= 1 else out


class _Line:
    """A line's number, counted only when a message needs it (a part may start gigabytes into its file)."""

    def __init__(self, path: Path, offset: int):
        self.path, self.offset = path, offset

    def __str__(self) -> str:
        newlines, left = 0, self.offset
        with open(self.path, "rb") as f:
            while left > 0 and (block := f.read(min(left, 1 << 20))):
                newlines, left = newlines + block.count(b"\n"), left - len(block)
        return str(newlines + 1)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def records(path: Path, part: list, text_field: str) -> Iterator[tuple[str, object, dict]]:
    """(source, row, record) of every record of a part of `path`, as `sources` yields them for a file."""
    kind, first, stop = part
    if kind == "bytes":
        yield from _lines(path, first, stop)
    else:
        yield from _row_groups(path, first, stop, text_field)


def _lines(path: Path, start: int, stop: int) -> Iterator[tuple[str, object, dict]]:
    with open(path, "rb") as f:
        if start:
            f.seek(start - 1)
            f.readline()  # the line holding byte start−1 is the previous part's
        offset = f.tell()
        while offset < stop and (raw := f.readline()):
            if raw.strip():
                try:
                    record = json.loads(raw)
                except UnicodeDecodeError as exc:
                    raise DataError(f"{path}: line {_Line(path, offset)}: invalid UTF-8 ({exc.reason})") from None
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {_Line(path, offset)}: invalid JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise DataError(f"{path}: line {_Line(path, offset)}: a JSON {type(record).__name__}, not a record")
                yield str(path), _Line(path, offset), record
            offset += len(raw)


def _row_groups(path: Path, first: int, stop: int, text_field: str) -> Iterator[tuple[str, object, dict]]:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    names = file.schema_arrow.names
    row = sum(file.metadata.row_group(g).num_rows for g in range(first))
    if text_field not in names:
        raise DataError(f"{path}: record {row + 1} has no field '{text_field}' (fields: {', '.join(sorted(names))}); "
                        f"set data.text_field")
    for batch in file.iter_batches(row_groups=list(range(first, stop)), columns=[text_field]):
        for text in batch.column(0).to_pylist():
            row += 1
            yield str(path), row, {text_field: text}
