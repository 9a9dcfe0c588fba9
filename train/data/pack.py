"""Cut a dataset's token stream into its validation and training splits, as views: each split's manifest
lists segments of the stream's files (the token store's units, or a pre-tokenized corpus's own files),
which `ladder.core.shards.TokenSequences` cuts every `seq_len` tokens. No token is copied.

Validation takes whole documents from the front of the stream until it holds ceil(val_tokens / seq_len)
sequences (the rest of its last document is dropped); training starts at the next document and takes
ceil(train_tokens / seq_len) sequences, or every whole sequence the stream holds after it if that is
fewer (or train_tokens is None). The two are disjoint by document. Document boundaries are the lengths
the token store recorded, or the eos ids of a pre-tokenized corpus: the same place for the same tokens.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ladder.core.shards import FORMAT, MANIFEST
from train.data.tokenized import TokenFile, first_eos, scan


@dataclass(frozen=True)
class Piece:
    """One file of the stream, and where its documents end if the tokenizer recorded it."""
    file: TokenFile
    lengths: Optional[np.ndarray] = None  # each document's length, eos included; None: documents end at eos

    def documents_ending(self, start: int, stop: int, eos: int) -> int:
        """Documents whose last token lies in start … stop−1 of this piece."""
        if self.lengths is None:
            return scan(self.file, start, stop, eos)[1]
        ends = np.cumsum(self.lengths)
        return int(np.searchsorted(ends, stop, side="right") - np.searchsorted(ends, start, side="right"))


@dataclass(frozen=True)
class Cut:
    """Where the splits lie in the stream, in tokens."""
    val_end: int
    train_start: int
    train_sequences: int
    val_documents: int  # documents that reach into validation, the last one's rest dropped
    total: int


def _boundary(pieces: list[Piece], position: int, eos: int) -> tuple[int, int]:
    """The first document end at or after `position` in the stream, and how many documents end up to it."""
    offset = documents = 0
    for piece in pieces:
        local = max(0, position - 1 - offset)  # the document's last token must lie at position−1 or later
        if local < piece.file.tokens:
            if piece.lengths is not None:
                ends = np.cumsum(piece.lengths)
                k = int(np.searchsorted(ends, local + 1))  # the first document ending after `local`
                if k < len(ends):
                    return offset + int(ends[k]), documents + k + 1
            else:
                q = first_eos(piece.file, local, eos)
                if q is not None:
                    return offset + q + 1, documents + piece.documents_ending(0, q + 1, eos)
        documents += piece.documents_ending(0, piece.file.tokens, eos)
        offset += piece.file.tokens
    return offset, documents


def cut(pieces: list[Piece], seq_len: int, val_tokens: int, train_tokens: Optional[int], eos: int) -> Cut:
    total = sum(p.file.tokens for p in pieces)
    val_end = -(-val_tokens // seq_len) * seq_len
    train_start, val_documents = _boundary(pieces, val_end, eos) if total >= val_end else (total, 0)
    sequences = max(0, total - train_start) // seq_len
    if train_tokens is not None:
        sequences = min(sequences, -(-train_tokens // seq_len))
    return Cut(val_end, train_start, sequences, val_documents, total)


def segments(pieces: list[Piece], start: int, stop: int) -> list[dict]:
    """The stream's tokens start … stop−1 as file segments (path, byte offset, tokens)."""
    out, offset = [], 0
    for piece in pieces:
        f = piece.file
        a, b = max(start, offset), min(stop, offset + f.tokens)
        if a < b:
            out.append({"file": str(Path(f.path).resolve()), "offset": f.offset + (a - offset) * np.dtype(f.dtype).itemsize,
                        "tokens": b - a})
        offset += f.tokens
    return out


def documents_in(pieces: list[Piece], start: int, stop: int, eos: int) -> int:
    """Documents whose last token lies in the stream's tokens start … stop−1."""
    count, offset = 0, 0
    for piece in pieces:
        a, b = max(start, offset), min(stop, offset + piece.file.tokens)
        if a < b:
            count += piece.documents_ending(a - offset, b - offset, eos)
        offset += piece.file.tokens
    return count


def write_split(directory: Path, pieces: list[Piece], start: int, sequences: int, seq_len: int, meta: dict,
                documents: int) -> dict:
    """The manifest of the split of `sequences` sequences from stream position `start`: written last, so the
    directory is a complete split once it exists."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT, **meta, "seq_len": seq_len, "num_sequences": sequences,
                "num_tokens": sequences * seq_len, "documents": documents,
                "segments": segments(pieces, start, start + sequences * seq_len)}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def write_arrays(directory: Path, parts: list[np.ndarray], seq_len: int, dtype: str) -> dict:
    """A split of token arrays, each written as a flat file `part-<k>.bin` in `directory` and read as one stream
    cut every `seq_len` tokens (random tokens for a benchmark, a test's own layout)."""
    from train.data.tokenized import token_file

    directory.mkdir(parents=True, exist_ok=True)
    pieces = []
    for k, part in enumerate(parts):
        np.asarray(part, dtype=dtype).tofile(directory / f"part-{k}.bin")
        pieces.append(Piece(token_file(directory / f"part-{k}.bin", dtype)))
    tokens = sum(len(p) for p in parts)
    return write_split(directory, pieces, 0, tokens // seq_len, seq_len, {"dtype": dtype}, documents=0)
