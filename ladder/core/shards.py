"""Packed token splits (docs/data.md), the data stage's output: the sequences a rung trains on, in a
fixed seeded order, from any position, and the held-out sequences eval scores.

A split is a view: its manifest lists segments of flat token files (the token store's units, or a team's
own pre-tokenized `.npy`/`.bin` files, never copied), and the split's token stream, the segments end to
end, is cut every `seq_len` tokens; a sequence may run from one segment into the next.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
from filelock import FileLock

FORMAT = "ladder-tokens/2"
MANIFEST = "manifest.json"  # written last: a split directory without it is incomplete and never read


class NotEnoughTokens(ValueError):
    """A rung asks for more tokens than the split holds and repetition is not allowed."""


class SplitError(ValueError):
    """A split's manifest or files are missing, of another format or damaged; the message names the file."""


def read_manifest(directory: Path) -> dict:
    """The manifest of a complete split directory; a missing one means an incomplete (or no) split."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{directory}: no {MANIFEST}; not a complete packed split (run `ladder prepare`)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise SplitError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r} (run `ladder prepare`)")
    return manifest


def _checked(directory: Path, segment: dict, dtype: str) -> Path:
    """A segment's file (relative to the split's directory, or absolute), which must hold what it reads."""
    path = Path(directory) / segment["file"]
    end = segment["offset"] + segment["tokens"] * np.dtype(dtype).itemsize
    if not path.exists() or path.stat().st_size < end:
        raise SplitError(f"{path}: missing or shorter than the {end:,} bytes {Path(directory) / MANIFEST} reads; "
                         f"run `ladder prepare`, which repairs a token store and cuts the split again")
    return path


def open_segment(directory: Path, segment: dict, dtype: str) -> np.ndarray:
    """A segment's tokens as a read-only memmap: `tokens` ids from byte `offset` of its file."""
    return np.memmap(_checked(directory, segment, dtype), dtype=dtype, mode="r", offset=segment["offset"],
                     shape=(segment["tokens"],))


def intact(directory: Path) -> bool:
    """Whether `directory` is a complete split whose files still hold every token it reads (by their sizes)."""
    try:
        manifest = read_manifest(directory)
        for segment in manifest["segments"]:
            _checked(directory, segment, manifest["dtype"])
    except (OSError, ValueError, KeyError):  # a manifest missing, cut short, of another format; a file short
        return False
    return True


class Order:
    """The stored index of each sequence served: 0, 1, 2, … (seed None), or epoch after epoch a permutation
    `np.random.default_rng([seed, epoch]).permutation(available)`. A permutation is made once per node: the
    first process to need it writes it into the split's directory (`order-<seed>-<epoch>.npy`, uint32 where the
    indices fit) and every process memory-maps that file, so ranks share one copy in the page cache instead of
    each holding its own (0.5 GB per rank for 62.5M sequences). `order[a:b]` is an int64 array."""

    def __init__(self, directory: Path, available: int, needed: int, seed: Optional[int] = None):
        self.directory, self.available, self.needed, self.seed = Path(directory), available, needed, seed
        self._epochs: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.needed

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self[:].astype(dtype or np.int64)

    def __getitem__(self, key):
        if not isinstance(key, slice):
            return int(self[key:key + 1][0]) if key >= 0 else self[len(self) + key]
        start, stop, step = key.indices(self.needed)
        if step != 1:
            raise IndexError("an order is read in contiguous slices")
        if self.seed is None:
            return np.arange(start, max(start, stop), dtype=np.int64)
        parts, position = [], start
        while position < stop:
            epoch, first = divmod(position, self.available)
            last = min(self.available, first + stop - position)
            parts.append(self._epoch(epoch)[first:last].astype(np.int64))
            position += last - first
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def _epoch(self, epoch: int) -> np.ndarray:
        if epoch not in self._epochs:
            self._epochs[epoch] = self._shared(epoch)
        return self._epochs[epoch]

    def _shared(self, epoch: int) -> np.ndarray:
        path = self.directory / f"order-{self.seed}-{epoch}.npy"
        try:
            with FileLock(str(self.directory / f".order-{self.seed}-{epoch}.lock")):
                loaded = self._load(path)
                if loaded is None:
                    permutation = self._permutation(epoch)
                    tmp = path.with_name(f".tmp-{path.name}.{os.getpid()}")
                    with open(tmp, "wb") as f:
                        np.save(f, permutation)
                    os.replace(tmp, path)
                    loaded = self._load(path)
            if loaded is not None:
                return loaded
        except OSError:  # a split directory this process cannot write: the permutation in its own memory
            pass
        return self._permutation(epoch)

    def _load(self, path: Path) -> Optional[np.ndarray]:
        """The permutation saved at `path`, memory-mapped; None where it is absent or not whole."""
        try:
            order = np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            return None
        return order if order.shape == (self.available,) else None

    def _permutation(self, epoch: int) -> np.ndarray:
        dtype = np.uint32 if self.available <= 1 << 32 else np.int64
        return np.random.default_rng([self.seed, epoch]).permutation(self.available).astype(dtype)


class TokenSequences:
    """Sequences of a packed split: all of them in stored order, or exactly ceil(tokens / seq_len) in an
    order shuffled by `seed` (a fresh permutation per epoch when repetition is allowed).

    seqs[i] is the i-th sequence of that order, so a run resumed at sequence i sees the data it would have;
    `order` (an `Order`) gives the stored index of each.
    """

    def __init__(self, directory: Path, tokens: Optional[int] = None, seed: int = 0, allow_repeat: bool = False):
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        self.seq_len = int(self.manifest["seq_len"])
        self._segments = [open_segment(self.directory, s, self.manifest["dtype"])
                          for s in self.manifest["segments"] if s["tokens"]]
        self._starts = np.cumsum([0] + [len(s) for s in self._segments])  # of each segment in the token stream
        self.available = int(self.manifest["num_sequences"])
        if self.available * self.seq_len > self._starts[-1]:
            raise SplitError(f"{self.directory / MANIFEST}: {self.available:,} sequences of {self.seq_len} need "
                             f"more tokens than its segments hold ({int(self._starts[-1]):,}); re-run prepare")
        if tokens is None:
            self.tokens = self.available * self.seq_len
            self.order = Order(self.directory, self.available, self.available)
        else:
            self.tokens = int(tokens)
            needed = -(-self.tokens // self.seq_len)
            if needed > self.available and not allow_repeat:
                raise NotEnoughTokens(
                    f"{self.directory}: needs {self.tokens:,} tokens ({needed:,} sequences of {self.seq_len}) but "
                    f"holds {self.available * self.seq_len:,} ({self.available:,} sequences); add data, lower the "
                    f"rung's tokens, or set data.allow_repeat=true")
            if self.available == 0:
                raise NotEnoughTokens(f"{self.directory}: holds no sequences")
            self.order = Order(self.directory, self.available, needed, seed)
        self.epochs = len(self.order) / self.available if self.available else 0.0

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sequence {i} out of range ({len(self)} sequences)")
        return self.read(i % len(self), 1)[0]

    def read(self, first: int, count: int, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Sequences first … first+count−1 as int64 rows of `out` (a new (count, seq_len) array if None): one
        fancy-indexed read per segment for the rows inside it, a piecewise copy for a row that crosses into
        the next segment."""
        starts = self.order[first:first + count] * self.seq_len
        out = np.empty((len(starts), self.seq_len), dtype=np.int64) if out is None else out
        segment_of = np.searchsorted(self._starts, starts, side="right") - 1
        inside = starts + self.seq_len <= self._starts[segment_of + 1]
        span = np.arange(self.seq_len)
        for segment in np.unique(segment_of[inside]):
            rows = inside & (segment_of == segment)
            out[rows] = self._segments[segment][(starts[rows] - self._starts[segment])[:, None] + span]
        for row in np.flatnonzero(~inside):
            position, filled, segment = int(starts[row]), 0, int(segment_of[row])
            while filled < self.seq_len:
                piece = self._segments[segment][position - self._starts[segment]:][:self.seq_len - filled]
                out[row, filled:filled + len(piece)] = piece
                filled, position, segment = filled + len(piece), position + len(piece), segment + 1
        return out

    def batches(self, batch_size: int, start: int = 0, rows: Optional[tuple[int, int]] = None,
                pin_memory: bool = False) -> Iterator:
        """LongTensors of the global batches of sequences start, start+1, ...; the last may be smaller.

        `rows=(lo, hi)` yields only rows lo … hi−1 of each global batch, one process's share, and reads
        nothing else; `pin_memory` puts them in page-locked memory for an asynchronous copy to a GPU.
        """
        import torch

        lo, hi = rows if rows is not None else (0, batch_size)
        for first in range(start, len(self), batch_size):
            size = min(batch_size, len(self) - first)
            a, b = min(lo, size), min(hi, size)
            batch = torch.empty((b - a, self.seq_len), dtype=torch.long, pin_memory=pin_memory)
            self.read(first + a, b - a, batch.numpy())
            yield batch
