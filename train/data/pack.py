"""Tokenize documents and pack them into fixed-length sequences in memory-mappable token files.

Layout of one split directory (see docs/data.md):
    tokens-00000.bin ...  raw little-endian uint16/uint32, row-major (num_sequences, seq_len)
    manifest.json         written last; a directory without it is incomplete and never read

Documents become tokens with an end-of-text token after each one; tokens run on across document
boundaries and are cut every `seq_len`. Validation takes whole documents from the front of the stream
until it is full (the rest of the last one is dropped), training takes every document after that, so
the two are disjoint by document. Tokenizing runs in `num_proc` processes; order is kept, so the result
does not depend on their number.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from itertools import chain, islice
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np
from tqdm import tqdm

from ladder.core.shards import FORMAT, MANIFEST

BATCH_DOCS = 256  # documents per tokenizer call: large enough to amortize the call, small for a smooth bar
SHARD_TOKENS = 2 ** 28  # at most this many tokens per file (512 MiB of uint16)

_TOKENIZER = None  # one per worker process


def _load_tokenizer(tokenizer_dir: Path):
    from tokenizers import Tokenizer

    path = Path(tokenizer_dir) / "tokenizer.json"
    if not path.exists():
        raise ValueError(f"{tokenizer_dir}: no tokenizer.json (packing needs a fast tokenizer)")
    return Tokenizer.from_file(str(path))


def _init_worker(tokenizer_dir: str, parallel: bool) -> None:
    global _TOKENIZER
    # Several processes each running the tokenizer's own threads would fight over the cores.
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if parallel else "false"
    _TOKENIZER = _load_tokenizer(Path(tokenizer_dir))


def _encode(job: tuple[list[str], int]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of each document followed by `eos`, as one flat array, and each document's length."""
    texts, eos = job
    encodings = _TOKENIZER.encode_batch(texts, add_special_tokens=False)
    ids = [e.ids + [eos] for e in encodings]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    return np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum())), lengths


class SplitWriter:
    """Appends tokens, writes whole sequences into shard files, and finishes with the manifest."""

    def __init__(self, directory: Path, seq_len: int, dtype: str, max_sequences: Optional[int] = None,
                 shard_tokens: int = SHARD_TOKENS):
        self.directory, self.seq_len, self.dtype = Path(directory), seq_len, np.dtype(dtype)
        self.max_sequences = max_sequences
        self.shard_sequences = max(1, shard_tokens // seq_len)
        self.directory.mkdir(parents=True)
        self.pending: list[np.ndarray] = []
        self.pending_tokens = 0
        self.shards: list[dict] = []
        self.sequences = 0
        self.documents = 0
        self.dropped_tokens = 0  # tokens past the last whole sequence, or past `max_sequences`
        self._file = None

    @property
    def full(self) -> bool:
        return self.max_sequences is not None and self.sequences >= self.max_sequences

    def add(self, tokens: np.ndarray, documents: int) -> None:
        self.documents += documents
        self.pending.append(tokens)
        self.pending_tokens += len(tokens)
        if self.pending_tokens >= self.seq_len:
            self._flush()

    def _flush(self) -> None:
        tokens = np.concatenate(self.pending)
        n = len(tokens) // self.seq_len
        if self.max_sequences is not None:
            n = min(n, self.max_sequences - self.sequences)
        self._write(tokens[:n * self.seq_len])
        rest = tokens[n * self.seq_len:]
        if self.full:
            self.dropped_tokens += len(rest)
            rest = rest[:0]
        self.pending, self.pending_tokens = [rest], len(rest)

    def _write(self, tokens: np.ndarray) -> None:
        while len(tokens):
            if self._file is None or self.shards[-1]["num_sequences"] == self.shard_sequences:
                self._open_shard()
            room = (self.shard_sequences - self.shards[-1]["num_sequences"]) * self.seq_len
            chunk, tokens = tokens[:room], tokens[room:]
            self._file.write(chunk.astype(self.dtype).tobytes())
            self.shards[-1]["num_sequences"] += len(chunk) // self.seq_len
            self.sequences += len(chunk) // self.seq_len

    def _open_shard(self) -> None:
        if self._file is not None:
            self._file.close()
        name = f"tokens-{len(self.shards):05d}.bin"
        self._file = open(self.directory / name, "wb")
        self.shards.append({"file": name, "num_sequences": 0})

    def close(self, meta: dict) -> dict:
        """Write the manifest last: only then is the split complete."""
        if self._file is not None:
            self._file.close()
        self.dropped_tokens += self.pending_tokens
        manifest = {"format": FORMAT, **meta, "dtype": self.dtype.name, "seq_len": self.seq_len,
                    "num_sequences": self.sequences, "num_tokens": self.sequences * self.seq_len,
                    "documents": self.documents, "dropped_tokens": self.dropped_tokens, "shards": self.shards}
        (self.directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return manifest


def _batches(docs: Iterable[str], eos: int) -> Iterator[tuple[list[str], int]]:
    docs = iter(docs)
    while batch := list(islice(docs, BATCH_DOCS)):
        yield batch, eos


def pack(docs: Iterable[str], tokenizer_dir: Path, out_dir: Path, *, seq_len: int, val_tokens: int,
         eos: int, dtype: str, train_tokens: Optional[int] = None, num_proc: int = 1, progress: bool = True,
         shard_tokens: int = SHARD_TOKENS, desc: str = "tokenize") -> tuple[SplitWriter, SplitWriter]:
    """Fill out_dir/val then out_dir/train; the caller closes both with their manifests."""
    val = SplitWriter(Path(out_dir) / "val", seq_len, dtype, -(-val_tokens // seq_len), shard_tokens)
    train = SplitWriter(Path(out_dir) / "train", seq_len, dtype,
                        None if train_tokens is None else -(-train_tokens // seq_len), shard_tokens)
    jobs = _batches(docs, eos)
    pool = None
    if num_proc > 1:
        # spawn, not fork: the parent may already run the tokenizer's threads, which fork does not survive.
        pool = multiprocessing.get_context("spawn").Pool(num_proc, _init_worker, (str(tokenizer_dir), False))
        encoded = pool.imap(_encode, jobs)
    else:
        _init_worker(str(tokenizer_dir), True)
        encoded = map(_encode, jobs)
    bar = tqdm(desc=desc, unit=" docs", disable=not progress, smoothing=0)
    start, tokens = time.perf_counter(), 0
    try:
        for flat, lengths in encoded:
            offset, val_docs = 0, 0
            for length in lengths:  # whole documents into validation until it is full
                if val.full:
                    break
                val.add(flat[offset:offset + length], 1)
                offset, val_docs = offset + length, val_docs + 1
            if offset < len(flat):
                train.add(flat[offset:], len(lengths) - val_docs)
            tokens += len(flat)
            bar.update(len(lengths))
            bar.set_postfix_str(f"{tokens / (time.perf_counter() - start):,.0f} tokens/s")
            if train.full:
                break
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    return val, train
