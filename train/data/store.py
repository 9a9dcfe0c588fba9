"""The token store of one text dataset and tokenizer: each document tokenized once, whoever asks for it.

    <cache>/stores/<dataset>-<key>/units.json          what each unit reads, the tokenizer, the dtype
    <cache>/stores/<dataset>-<key>/unit-00000.bin      the unit's documents' tokens, each followed by eos
    <cache>/stores/<dataset>-<key>/unit-00000.lengths  uint32: each document's length, eos included
    <cache>/stores/<dataset>-<key>/unit-00000.json     progress: documents, skipped, tokens, complete

A unit is one source file, or a part of a large one (train/data/parts.py); a hub dataset is one unit, its
stream. Units are tokenized by any number of
processes on a node (`fill`) or Slurm array tasks (`tokenize_unit` is their whole job), each holding the
unit's lock; a unit commits its progress every FLUSH_DOCS documents, so a killed prepare resumes inside the
unit it was in, re-reading but not re-tokenizing what it had committed. Splits of every sequence length
and held-out size are views of the store (train/data/pack.py), so the tokens are made once per
(dataset, tokenizer).

`Store.open` checks every unit against its progress record before anything reads it (`repair`): a unit whose
files are shorter than the record, or whose record is unreadable, is rolled back to the documents its files
still hold whole (each ending in eos) and tokenized again from there; an unreadable units.json is written
again from what the caller knows the units are.
"""
from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import time
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, islice
from pathlib import Path
from typing import Optional

import numpy as np
from filelock import FileLock, Timeout

from ladder.core.files import atomic_write_json
from train.data.sources import DataError, Stats, documents

log = logging.getLogger(__name__)
UNITS = "units.json"
BATCH_DOCS = 256  # documents per tokenizer call: large enough to amortize the call
FLUSH_DOCS = 4096  # documents between two commits of a unit: what a kill can cost
LENGTH_DTYPE = np.uint32
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a write that failed for want of space

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

    @cached_property
    def spec(self) -> dict:
        """units.json, read once per Store."""
        path = self.root / UNITS
        try:
            spec = json.loads(path.read_text())
            if not spec.get("units"):
                raise ValueError("no units")
            return spec
        except (ValueError, AttributeError) as exc:
            raise DataError(f"{path}: damaged ({type(exc).__name__}); run `ladder prepare`, which writes it "
                            f"again") from None

    @classmethod
    def open(cls, root: Path, units: list[dict], spec: dict) -> "Store":
        """The store at `root`, checked and repaired: `units` are data configs (one per source file, or the hub
        stream), `spec` the tokenizer directory, eos id, dtype and text field they are tokenized with. The
        store is keyed by what its tokens are, so units.json is written again where it is missing, damaged
        or names other places for the same files (a moved corpus, a moved cache)."""
        root, wanted = Path(root), {**spec, "units": units}
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root) + ".lock"):
            try:
                found = json.loads((root / UNITS).read_text())
            except (OSError, ValueError):
                found = None
            if found != wanted:
                if found is not None:
                    log.info("%s: recording the source's and tokenizer's current places", root / UNITS)
                elif (root / UNITS).exists():
                    log.warning("%s: damaged; written again from the source", root / UNITS)
                atomic_write_json(root / UNITS, wanted)
        store = cls(root)
        store.repair()
        return store

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
        if not path.exists():
            return {"documents": 0, "skipped_empty_documents": 0, "tokens": 0, "complete": False}
        try:
            progress = json.loads(path.read_text())
            if not all(isinstance(progress.get(k), int) for k in ("documents", "tokens", "skipped_empty_documents")):
                raise ValueError("fields missing")
            return progress
        except (ValueError, AttributeError) as exc:
            raise DataError(f"{path}: damaged ({exc}); run `ladder prepare`, which rebuilds it from the unit") from None

    def progresses(self) -> list[dict]:
        return [self.progress(i) for i in range(len(self.spec["units"]))]

    def is_stream(self, index: int) -> bool:
        return self.spec["units"][index].get("path") is None

    def _damage(self, index: int) -> Optional[str]:
        """What is wrong with unit `index`'s files against its record, by their sizes alone; None if nothing."""
        try:
            progress = self.progress(index)
        except DataError:
            return "its progress record is unreadable"
        itemsize = np.dtype(self.spec["dtype"]).itemsize
        for suffix, need in ((".bin", progress["tokens"] * itemsize),
                             (".lengths", progress["documents"] * np.dtype(LENGTH_DTYPE).itemsize)):
            path = self._path(index, suffix)
            size = path.stat().st_size if path.exists() else 0
            if size < need:
                return f"{path.name} holds {size:,} bytes of the {need:,} its record counts"
        return None

    def repair(self) -> list[int]:
        """Roll every damaged unit back to the whole documents its files still hold (each ending in eos),
        so that tokenizing it again resumes there; the units repaired."""
        repaired = []
        for index in range(len(self.spec["units"])):
            if self._damage(index) is None:
                continue
            try:
                with FileLock(str(self._path(index, ".lock")), timeout=0):  # not while a process tokenizes it
                    damage = self._damage(index)
                    if damage is None:
                        continue
                    progress = self._whole_documents(index)
                    atomic_write_json(self._path(index, ".json"), progress)
            except Timeout:  # a process is tokenizing it now: left to it
                continue
            log.warning("%s: %s; it keeps its first %s documents and is tokenized again from there",
                        self.tokens_file(index), damage, f"{progress['documents']:,}")
            repaired.append(index)
        return repaired

    def _whole_documents(self, index: int) -> dict:
        """A progress record of the leading documents both files hold whole: each length recorded, non-zero,
        inside the tokens file, and its last token eos."""
        lengths_file, tokens_file = self._path(index, ".lengths"), self.tokens_file(index)
        lengths = np.fromfile(lengths_file, dtype=LENGTH_DTYPE) if lengths_file.exists() else np.zeros(0, LENGTH_DTYPE)
        held = tokens_file.stat().st_size // np.dtype(self.spec["dtype"]).itemsize if tokens_file.exists() else 0
        zero = np.flatnonzero(lengths == 0)
        ends = np.cumsum(lengths[:zero[0] if len(zero) else len(lengths)], dtype=np.int64)
        ends = ends[:np.searchsorted(ends, held, side="right")]
        if len(ends):
            last = np.memmap(tokens_file, dtype=self.spec["dtype"], mode="r", shape=(held,))[ends - 1]
            wrong = np.flatnonzero(last != self.spec["eos"])
            ends = ends[:wrong[0] if len(wrong) else len(ends)]
        # Empty documents are counted again from the file's start by the next pass.
        return {"documents": len(ends), "skipped_empty_documents": 0, "tokens": int(ends[-1]) if len(ends) else 0,
                "complete": False}

    def usable(self, progresses: Optional[list[dict]] = None) -> list[int]:
        """The units a split may read, in order: the leading complete ones, and a hub stream as far as it got."""
        return list(range(_Prefix(self, self.progresses() if progresses is None else progresses).end))

    def tokens(self, units) -> int:
        return sum(self.progress(i)["tokens"] for i in units)

    def pending(self, need: Optional[int]) -> list[int]:
        """Units still to tokenize, in order, while the usable prefix holds fewer than `need` tokens (None:
        every unit); a stream that stopped short of `need` is pending again."""
        progresses = self.progresses()
        prefix = _Prefix(self, progresses)
        if prefix.holds(need):
            return []
        stream = [i for i in range(prefix.end) if self.is_stream(i) and not progresses[i]["complete"]]
        return stream + list(range(prefix.end, len(progresses)))


class _Prefix:
    """The usable prefix of a store being filled, kept up to date as units finish: each unit's progress is
    read once, so a fill of U units costs O(U), not a re-read of every unit after each."""

    def __init__(self, store: Store, progresses: list[dict]):
        self.store, self.progresses, self.end, self.tokens = store, progresses, 0, 0
        self._advance()

    def finished(self, index: int, progress: dict) -> None:
        if index < self.end:  # a stream in the prefix, tokenized further
            self.tokens += progress["tokens"] - self.progresses[index]["tokens"]
        self.progresses[index] = progress
        self._advance()

    def _advance(self) -> None:
        while self.end < len(self.progresses):
            progress = self.progresses[self.end]
            if not (progress["complete"] or (self.store.is_stream(self.end) and progress["tokens"])):
                break
            self.tokens += progress["tokens"]
            self.end += 1

    def holds(self, need: Optional[int]) -> bool:
        return need is not None and self.tokens >= need


def tokenize_unit(root: str, index: int, limit: Optional[int] = None) -> dict:
    """Tokenize unit `index` of the store at `root` to its end (a hub stream: until it holds `limit` tokens),
    resuming from its last commit; its progress. Safe to call from several processes: one tokenizes."""
    store = Store(Path(root))
    try:
        return _tokenize(store, index, limit)
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        raise DataError(f"{store.tokens_file(index)}: cannot write the token store ({exc.strerror}); free space "
                        f"under LADDER_CACHE (or set it elsewhere) and prepare again: it resumes") from None


def _tokenize(store: Store, index: int, limit: Optional[int]) -> dict:
    spec = store.spec
    unit, dtype = spec["units"][index], np.dtype(spec["dtype"])
    with FileLock(str(store._path(index, ".lock"))):
        progress = store.progress(index)
        if progress["complete"] or (limit is not None and progress["tokens"] >= limit):
            return progress
        stats = Stats()
        source = {"name": spec["dataset"], "text_field": spec["text_field"], **unit}
        docs = documents(source, stats, source.pop("part", None))
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
    start, progresses = time.perf_counter(), store.progresses()
    before = sum(p["tokens"] for p in progresses)  # committed anywhere, a unit cut off by a kill included
    prefix = _Prefix(store, progresses)
    pending = [] if prefix.holds(need) else store.pending(need)
    if not pending:
        return
    if num_proc <= 1 or len(pending) == 1:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
        for index in pending:
            prefix.finished(index, tokenize_unit(str(store.root), index, need if store.is_stream(index) else None))
            if prefix.holds(need):
                break
    else:
        # spawn, not fork: the parent may already run the tokenizer's threads, which fork does not survive.
        with multiprocessing.get_context("spawn").Pool(num_proc, _quiet_worker) as pool:
            running: dict[int, object] = {}
            pending = deque(pending)
            while pending or running:
                while pending and len(running) < num_proc:  # keep every process busy, units in order
                    index = pending.popleft()
                    running[index] = pool.apply_async(tokenize_unit, (str(store.root), index))
                done = next((i for i, r in running.items() if r.ready()), None)
                if done is None:
                    time.sleep(0.05)
                    continue
                prefix.finished(done, running.pop(done).get())  # a unit's error (its file named) stops the prepare
                if prefix.holds(need):
                    pending.clear()  # enough: the units still running finish, no more start
    made = sum(p["tokens"] for p in prefix.progresses) - before
    if progress and made:
        seconds = time.perf_counter() - start
        log.info("tokenized %s tokens in %.0f s (%s tokens/s, %d processes)", f"{made:,}", seconds,
                 f"{made / seconds:,.0f}", num_proc)
