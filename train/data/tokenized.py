"""Corpora that are already tokenized, read as the field stores them, never tokenized again or copied:

  - OLMo-core / Dolma token arrays, `*.npy`: flat uint16/uint32 ids, documents separated by the tokenizer's
    eos id; headerless memmaps as Dolma writes them, or with a numpy header (np.save), whose dtype wins;
  - nanoGPT-style `*.bin`: flat headerless ids, documents separated by eos (its prepare.py appends one).

A headerless file's dtype is `data.token_dtype` (auto: uint16 where the tokenizer's vocabulary fits, else
uint32, as both projects choose), checked against the file's first ids (`dtype_in_content`). Files are read
in sorted order as one token stream; a directory holds token files or text shards, never both.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from train.data.sources import DataError, text_format

ENDINGS = (".npy", ".bin")
SCAN_TOKENS = 1 << 24  # tokens per read while scanning a file: memory is this, whatever the file's size
SAMPLE_TOKENS = 1 << 16  # a headerless file's first ids, read to check its dtype


def tokenized_files(path: str | Path) -> list[Path]:
    """The token files at `path` (one, or a directory searched recursively); [] where it holds text shards.
    A directory holding both kinds is refused: which one the user meant is not ours to guess."""
    path = Path(path)
    if path.is_file():
        return [path] if path.name.lower().endswith(ENDINGS) else []
    found = sorted(p for p in path.rglob("*") if p.is_file())
    tokens = [p for p in found if p.name.lower().endswith(ENDINGS)]
    text = [p for p in found if text_format(p)]
    if tokens and text:
        raise DataError(f"{path}: holds both pre-tokenized files ({_some(tokens, path)}) and text shards "
                        f"({_some(text, path)}); point data.path at a directory of one kind")
    return tokens


def _some(files: list[Path], root: Path) -> str:
    names = ", ".join(str(p.relative_to(root)) for p in files[:2])
    return f"{len(files)}: {names}{', …' if len(files) > 2 else ''}"


@dataclass(frozen=True)
class TokenFile:
    path: Path
    offset: int  # bytes before the first token (a numpy header)
    tokens: int
    dtype: str


def token_file(path: Path, dtype: str) -> TokenFile:
    """`path`'s tokens: its numpy header's dtype and offset if it has one, else headerless `dtype` ids."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(6) == b"\x93NUMPY":
            f.seek(0)
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise DataError(f"{path}: numpy format version {version} is not read here (1.0 and 2.0 are)")
            try:
                shape, _, header_dtype = read_header(f)
            except ValueError as exc:  # a header cut short or garbled
                raise DataError(f"{path}: unreadable numpy header ({exc})") from None
            if len(shape) != 1 or header_dtype.name not in ("uint16", "uint32"):
                raise DataError(f"{path}: a {header_dtype.name} array of shape {shape}; token files are flat "
                                f"uint16 or uint32 arrays")
            if header_dtype.name != dtype:
                raise DataError(f"{path}: holds {header_dtype.name} token ids, but the tokenizer's vocabulary "
                                f"and data.token_dtype give {dtype}; set data.token_dtype={header_dtype.name}")
            file = TokenFile(path, f.tell(), int(shape[0]), dtype)
            end = file.offset + file.tokens * header_dtype.itemsize
            if end > size:
                raise DataError(f"{path}: its numpy header promises {file.tokens:,} tokens ({end:,} bytes) but the "
                                f"file holds {size:,} bytes; it is truncated: write it again or remove it")
            return _not_empty(file)
    itemsize = np.dtype(dtype).itemsize
    if size % itemsize:
        raise DataError(f"{path}: {size:,} bytes is not a whole number of {dtype} token ids; "
                        f"set data.token_dtype to the dtype it was written with")
    return _not_empty(TokenFile(path, 0, size // itemsize, dtype))


def _not_empty(file: TokenFile) -> TokenFile:
    if not file.tokens:
        raise DataError(f"{file.path}: empty file (no tokens); remove it or fill it")
    return file


def read_tokens(file: TokenFile, start: int, stop: int) -> np.ndarray:
    return np.memmap(file.path, dtype=file.dtype, mode="r", offset=file.offset, shape=(file.tokens,))[start:stop]


def dtype_in_content(file: TokenFile, vocab: int) -> Optional[str]:
    """The other dtype where a headerless file's first ids say it holds that one, else None: uint32 ids
    under 2^16 read as uint16 have every second id 0 (the high halves); uint16 ids read as uint32 leave the
    vocabulary where read as uint16 they fit (a vocabulary uint16 can hold: else ids outside it are a wrong
    tokenizer's, named as such by prepare)."""
    if file.offset:  # a numpy header's dtype is the file's own
        return None
    sample = np.asarray(read_tokens(file, 0, min(file.tokens, SAMPLE_TOKENS)))
    if file.dtype == "uint16":
        pairs = sample[:len(sample) // 2 * 2]
        if len(pairs) >= 64 and file.tokens % 2 == 0 and not pairs[1::2].any() and pairs.view(np.uint32).max() < vocab:
            return "uint32"
        return None
    if vocab <= 1 << 16 and int(sample.max()) >= vocab and int(sample.view(np.uint16).max()) < vocab:
        return "uint16"
    return None


def scan(file: TokenFile, start: int, stop: int, eos: int, counted: Optional[tuple[int, int]] = None) -> tuple[int, int]:
    """(largest id in tokens start … stop−1 of the file, how many of tokens counted[0] … counted[1]−1 are
    eos; counted defaults to start … stop), reading each token once, in blocks."""
    lo, hi = counted if counted is not None else (start, stop)
    largest, count = -1, 0
    for first in range(start, stop, SCAN_TOKENS):
        last = min(stop, first + SCAN_TOKENS)
        block = read_tokens(file, first, last)
        largest = max(largest, int(block.max()))
        a, b = max(lo, first) - first, min(hi, last) - first
        if a < b:
            count += int(np.count_nonzero(block[a:b] == eos))
    return largest, count


def first_eos(file: TokenFile, start: int, eos: int) -> Optional[int]:
    """The position of the first eos at or after `start`, or None; read in blocks that double from a
    document's length, so that finding a near eos reads little."""
    first, size = start, 4096
    while first < file.tokens:
        hits = np.flatnonzero(read_tokens(file, first, min(file.tokens, first + size)) == eos)
        if len(hits):
            return first + int(hits[0])
        first, size = first + size, min(2 * size, SCAN_TOKENS)
    return None
