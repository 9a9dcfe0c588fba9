"""The token store of one text dataset and tokenizer: each document tokenized once, whoever asks for it.

    <cache>/stores/<dataset>-<key>/units.json          what each unit reads, the tokenizer, the dtype
    <cache>/stores/<dataset>-<key>/unit-00000.bin      the unit's documents' tokens, each followed by eos
    <cache>/stores/<dataset>-<key>/unit-00000.lengths  uint32: each document's length, eos included
    <cache>/stores/<dataset>-<key>/unit-00000.json     progress: documents, skipped, tokens, complete

A unit is one source file (a hub dataset is one unit, its stream). Units are tokenized by any number of
processes on a node (`fill`) or Slurm array tasks (`tokenize_unit` is their whole job), each holding the
unit's lock; a unit commits its progress every FLUSH_DOCS documents, so a killed prepare resumes inside the
unit it was in, re-reading but not re-tokenizing what it had committed. Splits of every sequence length
and held-out size are views of the store (train/data/pack.py), so the tokens are made once per
(dataset, tokenizer).
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Optional

import numpy as np
from filelock import FileLock

from ladder.core.files import atomic_write_json
from train.data.sources import Stats, documents

log = logging.getLogger(__name__)
UNITS = "units.json"
BATCH_DOCS = 256  # documents per tokenizer call: large enough to amortize the call
FLUSH_DOCS = 4096  # documents between two commits of a unit: what a kill can cost
LENGTH_DTYPE = np.uint32

_TOKENIZERS: dict = {}  # one per process and tokenizer directory


def _tokenizer(tokenizer_dir: str):
    if tokenizer_dir not in _TOKENIZERS:
        from tokenizers import Tokenizer

        path = Path(tokenizer_dir) / "tokenizer.json"
        if not path.exists():
            raise ValueError(f"{tokenizer_dir}: no tokenizer.json (tokenizing needs a fast tokenizer)")
        _TOKENIZERS[tokenizer_dir] = Tokenizer.from_file(str(path))
    return _TOKENIZERS[tokenizer_dir]


def encode(texts: list[str], tokenizer_dir: str, eos: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of each document followed by `eos`, as one flat int64 array, and each document's length."""
    ids = [e.ids + [eos] for e in _tokenizer(tokenizer_dir).encode_batch(texts, add_special_tokens=False)]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    return np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum())), lengths


@dataclass(frozen=True)
class Store:
    root: Path

    @property
    def spec(self) -> dict:
        return json.loads((self.root / UNITS).read_text())

    @classmethod
    def create(cls, root: Path, units: list[dict], spec: dict) -> "Store":
        """The store at `root`, made once: `units` are data configs (one per source file, or the hub stream),
        `spec` the tokenizer directory, eos id, dtype and text field they are tokenized with."""
        root = Path(root)
        if not (root / UNITS).exists():
            root.mkdir(parents=True, exist_ok=True)
            with FileLock(str(root) + ".lock"):
                if not (root / UNITS).exists():
                    atomic_write_json(root / UNITS, {**spec, "units": units})
        return cls(root)

    def _path(self, index: int, suffix: str) -> Path:
        return self.root / f"unit-{index:05d}{suffix}"

    def tokens_file(self, index: int) -> Path:
        return self._path(index, ".bin")

    def lengths(self, index: int) -> np.ndarray:
        """The committed documents' lengths of unit `index`."""
        n = self.progress(index)["documents"]
        path = self._path(index, ".lengths")
        return np.fromfile(path, dtype=LENGTH_DTYPE, count=n) if n else np.zeros(0, LENGTH_DTYPE)

    def progress(self, index: int) -> dict:
        path = self._path(index, ".json")
        if path.exists():
            return json.loads(path.read_text())
        return {"documents": 0, "skipped_empty_documents": 0, "tokens": 0, "complete": False}

    def is_stream(self, index: int) -> bool:
        return self.spec["units"][index].get("path") is None

    def usable(self) -> list[int]:
        """The units a split may read, in order: the leading complete ones, and a hub stream as far as it got."""
        out = []
        for index in range(len(self.spec["units"])):
            progress = self.progress(index)
            if not (progress["complete"] or (self.is_stream(index) and progress["tokens"])):
                break
            out.append(index)
        return out

    def tokens(self, units: list[int]) -> int:
        return sum(self.progress(i)["tokens"] for i in units)

    def pending(self, need: Optional[int]) -> list[int]:
        """Units still to tokenize, in order, while the usable prefix holds fewer than `need` tokens (None:
        every unit); a stream that stopped short of `need` is pending again."""
        usable = self.usable()
        if need is not None and self.tokens(usable) >= need:
            return []
        stream = [i for i in usable if self.is_stream(i) and not self.progress(i)["complete"]]
        return stream + [i for i in range(len(self.spec["units"])) if i not in usable]


def tokenize_unit(root: str, index: int, limit: Optional[int] = None) -> dict:
    """Tokenize unit `index` of the store at `root` to its end (a hub stream: until it holds `limit` tokens),
    resuming from its last commit; its progress. Safe to call from several processes: one tokenizes."""
    store = Store(Path(root))
    spec = store.spec
    unit, dtype = spec["units"][index], np.dtype(spec["dtype"])
    with FileLock(str(store._path(index, ".lock"))):
        progress = store.progress(index)
        if progress["complete"] or (limit is not None and progress["tokens"] >= limit):
            return progress
        stats = Stats()
        docs = documents({"name": spec["dataset"], "text_field": spec["text_field"], **unit}, stats)
        committed = progress["documents"]
        for _ in islice(docs, committed):  # read again, not tokenized again
            pass
        with open(store.tokens_file(index), "ab") as tokens, open(store._path(index, ".lengths"), "ab") as lengths:
            tokens.truncate(progress["tokens"] * dtype.itemsize)  # what a kill wrote after the last commit
            lengths.truncate(committed * np.dtype(LENGTH_DTYPE).itemsize)
            pending = 0
            while batch := list(islice(docs, BATCH_DOCS)):
                flat, sizes = encode(batch, spec["tokenizer_dir"], spec["eos"])
                tokens.write(flat.astype(dtype).tobytes())
                lengths.write(sizes.astype(LENGTH_DTYPE).tobytes())
                progress["documents"] += len(batch)
                progress["tokens"] += len(flat)
                pending += len(batch)
                if limit is not None and progress["tokens"] >= limit:
                    break
                if pending >= FLUSH_DOCS:
                    _commit(store, index, progress, stats, tokens, lengths)
                    pending = 0
            else:
                progress["complete"] = True
            _commit(store, index, progress, stats, tokens, lengths)
    return progress


def _commit(store: Store, index: int, progress: dict, stats: Stats, *files) -> None:
    """Make the unit's files durable up to `progress`, then record it (atomically): a kill before the record
    leaves the previous commit, and whatever was written after it is cut off on resume."""
    for f in files:
        f.flush()
        os.fsync(f.fileno())
    # Empty documents are counted from the file's start on every pass; the last pass's count is the unit's.
    progress["skipped_empty_documents"] = max(progress["skipped_empty_documents"], stats.skipped_empty)
    atomic_write_json(store._path(index, ".json"), progress)


def _quiet_worker() -> None:
    # Several processes each running the tokenizer's own threads would fight over the cores.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def fill(store: Store, need: Optional[int], num_proc: int = 1, progress: bool = True) -> None:
    """Tokenize units in order, `num_proc` at a time, until the usable prefix holds `need` tokens (None: all)."""
    start, before = time.perf_counter(), store.tokens(store.usable())
    pending = store.pending(need)
    if not pending:
        return
    if num_proc <= 1 or len(pending) == 1:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
        for index in pending:
            tokenize_unit(str(store.root), index, need if store.is_stream(index) else None)
            if not store.pending(need):
                break
    else:
        # spawn, not fork: the parent may already run the tokenizer's threads, which fork does not survive.
        with multiprocessing.get_context("spawn").Pool(num_proc, _quiet_worker) as pool:
            running: dict[int, object] = {}
            while pending or running:
                while pending and len(running) < num_proc:  # keep every process busy, units in order
                    index = pending.pop(0)
                    running[index] = pool.apply_async(tokenize_unit, (str(store.root), index))
                done = next((i for i, r in running.items() if r.ready()), None)
                if done is None:
                    time.sleep(0.05)
                    continue
                running.pop(done).get()  # a unit's error (its file named) stops the prepare
                if not store.pending(need):
                    pending = []  # enough: the units still running finish, no more start
    made = store.tokens(store.usable()) - before
    if progress and made:
        seconds = time.perf_counter() - start
        log.info("tokenized %s tokens in %.0f s (%s tokens/s, %d processes)", f"{made:,}", seconds,
                 f"{made / seconds:,.0f}", num_proc)
