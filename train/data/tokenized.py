"""Corpora that are already tokenized, read as the field stores them, never tokenized again or copied:

  - OLMo-core / Dolma token arrays, `*.npy`: flat uint16/uint32 ids, documents separated by the tokenizer's
    eos id; headerless memmaps as Dolma writes them, or with a numpy header (np.save), whose dtype wins;
  - nanoGPT-style `*.bin`: flat headerless ids, documents separated by eos (its prepare.py appends one).

A headerless file's dtype is `data.token_dtype` (auto: uint16 where the tokenizer's vocabulary fits, else
uint32, as both projects choose). Files are read in sorted order as one token stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from train.data.sources import DataError

ENDINGS = (".npy", ".bin")
SCAN_TOKENS = 1 << 24  # tokens per read while scanning a file


def tokenized_files(path: str | Path) -> list[Path]:
    """The token files at `path` (one, or a directory searched recursively); [] where it holds text shards."""
    path = Path(path)
    if path.is_file():
        return [path] if path.name.lower().endswith(ENDINGS) else []
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(ENDINGS))


@dataclass(frozen=True)
class TokenFile:
    path: Path
    offset: int  # bytes before the first token (a numpy header)
    tokens: int
    dtype: str


def token_file(path: Path, dtype: str) -> TokenFile:
    """`path`'s tokens: its numpy header's dtype and offset if it has one, else headerless `dtype` ids."""
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            f.seek(0)
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise DataError(f"{path}: numpy format version {version} is not read here (1.0 and 2.0 are)")
            shape, _, header_dtype = read_header(f)
            if len(shape) != 1 or header_dtype.name not in ("uint16", "uint32"):
                raise DataError(f"{path}: a {header_dtype.name} array of shape {shape}; token files are flat "
                                f"uint16 or uint32 arrays")
            if header_dtype.name != dtype:
                raise DataError(f"{path}: holds {header_dtype.name} token ids, but the tokenizer's vocabulary "
                                f"and data.token_dtype give {dtype}; set data.token_dtype={header_dtype.name}")
            return TokenFile(path, f.tell(), int(shape[0]), dtype)
    size, itemsize = path.stat().st_size, np.dtype(dtype).itemsize
    if size % itemsize:
        raise DataError(f"{path}: {size:,} bytes is not a whole number of {dtype} token ids; "
                        f"set data.token_dtype to the dtype it was written with")
    return TokenFile(path, 0, size // itemsize, dtype)


def read_tokens(file: TokenFile, start: int, stop: int) -> np.ndarray:
    return np.memmap(file.path, dtype=file.dtype, mode="r", offset=file.offset, shape=(file.tokens,))[start:stop]


def scan(file: TokenFile, start: int, stop: int, eos: int) -> tuple[int, int]:
    """(largest id, eos count) of tokens start … stop−1 of the file, read in blocks."""
    largest, count = -1, 0
    for first in range(start, stop, SCAN_TOKENS):
        block = read_tokens(file, first, min(stop, first + SCAN_TOKENS))
        largest = max(largest, int(block.max()))
        count += int(np.count_nonzero(block == eos))
    return largest, count


def first_eos(file: TokenFile, start: int, eos: int) -> Optional[int]:
    """The position of the first eos at or after `start`, or None."""
    for first in range(start, file.tokens, SCAN_TOKENS):
        hits = np.flatnonzero(read_tokens(file, first, min(file.tokens, first + SCAN_TOKENS)) == eos)
        if len(hits):
            return first + int(hits[0])
    return None
