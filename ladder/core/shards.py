"""Packed token splits (docs/data.md), the data stage's output: the sequences a rung trains on, in a
fixed seeded order, from any position, and the held-out sequences eval scores.

A split is a view: its manifest lists segments of flat token files (the token store's units, or a team's
own pre-tokenized `.npy`/`.bin` files, never copied), and the split's token stream, the segments end to
end, is cut every `seq_len` tokens; a sequence may run from one segment into the next.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

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


class TokenSequences:
    """Sequences of a packed split: all of them in stored order, or exactly ceil(tokens / seq_len) in an
    order shuffled by `seed` (a fresh permutation per epoch when repetition is allowed).

    seqs[i] is the i-th sequence of that order, so a run resumed at sequence i sees the data it would have;
    `order` holds the stored index of each.
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
            self.order = np.arange(self.available)
        else:
            self.tokens = int(tokens)
            self.order = self._seeded_order(-(-self.tokens // self.seq_len), seed, allow_repeat)
        self.epochs = len(self.order) / self.available if self.available else 0.0

    def _seeded_order(self, needed: int, seed: int, allow_repeat: bool) -> np.ndarray:
        if needed > self.available and not allow_repeat:
            raise NotEnoughTokens(
                f"{self.directory}: needs {self.tokens:,} tokens ({needed:,} sequences of {self.seq_len}) but "
                f"holds {self.available * self.seq_len:,} ({self.available:,} sequences); add data, lower the "
                f"rung's tokens, or set data.allow_repeat=true")
        if self.available == 0:
            raise NotEnoughTokens(f"{self.directory}: holds no sequences")
        epochs = -(-needed // self.available)
        order = [np.random.default_rng([seed, epoch]).permutation(self.available) for epoch in range(epochs)]
        return np.concatenate(order)[:needed]

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
