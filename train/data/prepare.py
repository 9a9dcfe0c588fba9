"""Entry point of the data stage: documents → tokenizer → token store → train and validation splits, cached.

A text dataset is tokenized once per tokenizer into its token store (train/data/store.py), in parallel
and resumably, only as far as the splits need; a pre-tokenized corpus (train/data/tokenized.py) is read
where it lies. Splits are views of that stream (train/data/pack.py), keyed by everything they depend on
(source files, tokenizer hash, sequence length, split sizes), written into a `.partial-*` directory that
is renamed into place once complete.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zlib
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Optional

import numpy as np
from filelock import FileLock
from omegaconf import DictConfig

from ladder.core.shards import MANIFEST, intact
from train.data import corpus, parts
from train.data.pack import Cut, Piece, cut, documents_in, write_split
from train.data.sources import DataError, data_config, documents, local_files
from train.data.store import FULL, Store, fill
from train.data.tokenized import TokenFile, dtype_in_content, read_tokens, scan, token_file, tokenized_files
from train.data.tokenizer import (ensure_tokenizer, known_vocab, load, token_dtype, tokenizer_config,
                                  tokenizer_hash)

log = logging.getLogger(__name__)
HELDOUT_DOCUMENTS = "documents.jsonl"  # the validation split's documents as text, for tasks derived from them
# Bytes of uncompressed C4-schema JSON lines per token of a 32k byte-level BPE trained on them (the offline corpus:
# docs/data.md): what `ladder plan` estimates a text source's tokens from before it is tokenized.
BYTES_PER_TOKEN = 4.4
# A tokenizer process's peak resident memory (issue 37 measured about 0.5 GB; docs/data.md's scale runs): how
# many processes the available memory holds.
WORKER_BYTES = 512 << 20
GZIP_SAMPLE = 1 << 16  # compressed bytes of a large gzip read to estimate its ratio
MAX_GZIP_RATIO = 1032  # deflate's most: a gzip smaller than 2^32 / this holds under 2^32 bytes, as its trailer says
SAMPLE_BYTES = 1 << 14  # of each source file's start, middle and end, hashed into its token store's key


@dataclass(frozen=True)
class PreparedData:
    dataset: str
    train_dir: Path
    val_dir: Path
    tokenizer_dir: Path

    @property
    def train_manifest(self) -> dict:
        return json.loads((self.train_dir / MANIFEST).read_text())

    @property
    def val_documents(self) -> Path:
        return self.val_dir / HELDOUT_DOCUMENTS

    @property
    def val_manifest(self) -> dict:
        return json.loads((self.val_dir / MANIFEST).read_text())


def default_cache_dir() -> Path:
    return Path(os.environ.get("LADDER_CACHE", ".cache"))


def default_num_proc() -> int:
    return tokenizer_processes()[0]


def tokenizer_processes(requested: Optional[int] = None) -> tuple[int, str]:
    """How many processes tokenize, and why: `requested` (data.num_proc), else one per core this process may
    run on, at most as many as the available memory holds at WORKER_BYTES each."""
    if requested:
        return requested, f"{requested} tokenizer processes (data.num_proc)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    memory = _available_memory()
    count = max(1, min(cores, memory // WORKER_BYTES))
    return count, (f"{count} tokenizer processes: one per core ({cores}), at most one per "
                   f"{WORKER_BYTES / 2 ** 30:.1f} GiB of the {memory / 2 ** 30:.1f} GiB available (data.num_proc sets it)")


def _available_memory() -> int:
    """Bytes this process may still use: the kernel's MemAvailable, below a cgroup's limit (a Slurm job's)."""
    limits = []
    try:
        limits.append(next(int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                           if line.startswith("MemAvailable")))
    except (OSError, StopIteration, ValueError):
        limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit, used = (cgroup / "memory.max").read_text().strip(), (cgroup / "memory.current").read_text().strip()
        if limit != "max":
            limits.append(int(limit) - int(used))
    except (OSError, ValueError):
        pass
    return max(0, min(limits))


def _source(cfg: DictConfig, files: list[Path]) -> dict:
    """What identifies the documents: local files by name, size and mtime; a hub dataset by name."""
    if cfg.path is None:
        return {"hf_path": cfg.hf_path, "hf_name": cfg.hf_name, "split": cfg.split}
    root = Path(cfg.path)
    return {"path": str(root), "files": [[str(p.relative_to(root)) if p != root else p.name, p.stat().st_size,
                                          p.stat().st_mtime_ns] for p in files]}


def _content(cfg: DictConfig, files: list[Path]) -> dict:
    """What the documents are, wherever they lie: local files by name under data.path, size and a hash of
    their first, middle and last SAMPLE_BYTES; a hub dataset by name. A token store is keyed by it, so a
    corpus or cache moved or copied elsewhere is recognised."""
    if cfg.path is None:
        return _source(cfg, files)
    root = Path(cfg.path)
    return {"files": [[str(p.relative_to(root)) if p != root else p.name, p.stat().st_size, _sample_hash(p)]
                      for p in files]}


def _sample_hash(path: Path) -> str:
    digest, size = hashlib.sha256(), path.stat().st_size
    with open(path, "rb") as f:
        for start in sorted({0, max(0, size // 2 - SAMPLE_BYTES // 2), max(0, size - SAMPLE_BYTES)}):
            f.seek(start)
            digest.update(f.read(SAMPLE_BYTES))
    return digest.hexdigest()[:16]


def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def open_stream(cfg: DictConfig, tokenizer_dir: Path, eos: int, dtype: str,
                cache_dir: Path) -> tuple[Optional[Store], dict]:
    """The dataset's token store (made if absent, nothing tokenized yet) and what identifies its tokens; no
    store for a pre-tokenized corpus, whose files are the tokens."""
    cfg = data_config(cfg)
    token_files = tokenized_files(cfg.path) if cfg.path is not None else []
    if token_files:
        return None, {"source": _source(cfg, token_files), "tokenized": True}
    files = local_files(cfg.path) if cfg.path is not None else []
    tokens = {"source": _content(cfg, files), "text_field": cfg.text_field, "tokenizer": tokenizer_hash(tokenizer_dir),
              "dtype": dtype, "unit_bytes": parts.UNIT_BYTES}
    units = [{"path": str(p), **({"part": part} if part else {})} for p in files for part in parts.parts(p)] or [
        {"hf_path": cfg.hf_path, "hf_name": cfg.hf_name, "split": cfg.split, "streaming": cfg.streaming}]
    root = cache_dir / "stores" / f"{cfg.name}-{_key(tokens)}"
    try:
        store = Store.open(root, units, {"dataset": cfg.name, "text_field": cfg.text_field,
                                         "tokenizer_dir": str(tokenizer_dir), "eos": eos, "dtype": dtype})
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        raise DataError(f"{root}: cannot write the token store's records ({exc.strerror}); free space under "
                        f"LADDER_CACHE (or set it elsewhere)") from None
    return store, {"source": _source(cfg, files), "tokenized": False, "store": str(store.root)}


def _pieces(cfg: DictConfig, store: Optional[Store], dtype: str) -> list[Piece]:
    if store is None:
        return [Piece(token_file(p, dtype)) for p in tokenized_files(cfg.path)]
    return [Piece(TokenFile(store.tokens_file(i), 0, store.progress(i)["tokens"], dtype), store.lengths(i))
            for i in store.usable()]


def _resolve(data_cfg, tokenizer_cfg, cache_dir: Optional[Path]):
    """The data and tokenizer configs, the cache, the tokenizer (made if absent) and the token dtype: what a
    dataset's tokens are made with."""
    cfg, tok_cfg = data_config(data_cfg), tokenizer_config(tokenizer_cfg)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if cfg.path is not None and not Path(cfg.path).exists():  # before a tokenizer is trained for nothing
        raise DataError(f"data.path={cfg.path}: no such file or directory (dataset '{cfg.name}')")
    if cfg.corpus:
        if cfg.corpus not in corpus.CORPORA:
            raise DataError(f"data.corpus: unknown built-in corpus '{cfg.corpus}'; known: {', '.join(corpus.CORPORA)}")
        if cfg.path is None:  # built under the cache, the one place the harness writes documents
            cfg.path = str(corpus.build(cache_dir / "corpus" / cfg.corpus, corpus.CORPORA[cfg.corpus]))
        else:  # a user's data.path is only ever read
            log.info("data.path=%s is set: reading it instead of the built-in corpus '%s'", cfg.path, cfg.corpus)
    tokenizer_dir = ensure_tokenizer(tok_cfg, cache_dir)
    tokenizer = load(tokenizer_dir)
    if tokenizer.eos_token_id is None:
        raise DataError(f"tokenizer {tokenizer_dir} has no end-of-text (eos) token to separate documents")
    return cfg, tok_cfg, cache_dir, tokenizer_dir, tokenizer, token_dtype(len(tokenizer), cfg.token_dtype)


def token_store(data_cfg, tokenizer_cfg, cache_dir: Optional[Path] = None) -> Optional[Store]:
    """A text dataset's token store (made if absent, its tokenizer first; nothing tokenized), for tokenizing it
    elsewhere (Slurm array tasks: `train.data.store.tokenize_unit`); None for a pre-tokenized corpus."""
    cfg, _, cache_dir, tokenizer_dir, tokenizer, dtype = _resolve(data_cfg, tokenizer_cfg, cache_dir)
    return open_stream(cfg, tokenizer_dir, tokenizer.eos_token_id, dtype, cache_dir)[0]


def stream_need(seq_len: int, val_tokens: int, train_tokens: int) -> int:
    """Tokens the stream must hold at least for these splits (validation's last document aside)."""
    return -(-val_tokens // seq_len) * seq_len + -(-train_tokens // seq_len) * seq_len


def prepare_data(data_cfg, tokenizer_cfg, seq_len: int, val_tokens: Optional[int] = None, seed: int = 0,
                 cache_dir: Optional[Path] = None, *, train_tokens: Optional[int] = None,
                 num_proc: Optional[int] = None, progress: bool = True) -> PreparedData:
    """Train and validation splits of one dataset for one tokenizer and sequence length, as views of its
    token stream: the token store's (text, tokenized as far as the splits need) or a pre-tokenized corpus's.

    val_tokens defaults to data_cfg.val_tokens; train_tokens (default data_cfg.max_tokens, else all) is how
    many training tokens the split holds, and so how far a text source is tokenized.
    """
    cfg, tok_cfg, cache_dir, tokenizer_dir, tokenizer, dtype = _resolve(data_cfg, tokenizer_cfg, cache_dir)
    eos = tokenizer.eos_token_id
    val_tokens = cfg.val_tokens if val_tokens is None else val_tokens
    train_tokens = cfg.max_tokens if train_tokens is None else train_tokens
    store, identity = open_stream(cfg, tokenizer_dir, eos, dtype, cache_dir)
    meta = {"dataset": cfg.name, **identity, "text_field": cfg.text_field,
            "tokenizer": {"name": tok_cfg.name_or_path or f"bpe-{tok_cfg.train_vocab_size}",
                          "dir": str(tokenizer_dir), "sha256": tokenizer_hash(tokenizer_dir),
                          "vocab_size": len(tokenizer), "eos_token_id": eos},
            "seed": seed, "val_tokens": val_tokens, "max_train_tokens": train_tokens, "dtype": dtype}
    out = cache_dir / "tokens" / f"{cfg.name}-{seq_len}-{_key({**meta, 'seq_len': seq_len})}"
    prepared = PreparedData(cfg.name, out / "train", out / "val", tokenizer_dir)

    def done() -> bool:  # a split whose files were damaged since is cut again (the store repaired first)
        return intact(prepared.train_dir) and intact(prepared.val_dir)

    if done():
        return prepared
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):  # two processes preparing the same data: one cuts, one waits
        if done():
            return prepared
        pieces = _fill(cfg, store, dtype, seq_len, val_tokens, train_tokens, eos,
                       num_proc or cfg.num_proc or default_num_proc(), progress)
        if store is None:
            _check_dtypes(pieces, len(tokenizer))
        where = cut(pieces, seq_len, val_tokens, train_tokens, eos)
        if where.total < where.val_end:
            raise DataError(f"dataset '{cfg.name}' holds only {where.total:,} tokens in "
                            f"{documents_in(pieces, 0, where.total, eos):,} documents; its validation split alone "
                            f"needs {val_tokens:,}")
        train_end = where.train_start + where.train_sequences * seq_len
        # Documents that start in training (the last may be cut): those whose predecessor ends one token earlier.
        counted = (where.train_start - 1, train_end - 1) if where.train_sequences else (0, 0)
        if store is None:  # a corpus tokenized elsewhere: its ids must be the named tokenizer's; one read of them
            starting = _scan_tokenized(pieces, where, train_end, counted, eos, len(tokenizer), tokenizer_dir)
        else:
            starting = documents_in(pieces, *counted, eos)
        tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        stats = _read_stats(store)
        try:
            write_split(tmp / "val", pieces, 0, where.val_end // seq_len, seq_len, {**meta, **stats, "split": "val"},
                        where.val_documents)
            _write_heldout_documents(cfg, store, pieces, where, tokenizer, tmp / "val" / HELDOUT_DOCUMENTS)
            write_split(tmp / "train", pieces, where.train_start, where.train_sequences, seq_len,
                        {**meta, **stats, "split": "train"}, starting)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if exc.errno not in FULL:
                raise
            raise DataError(f"{out}: cannot write the splits ({exc.strerror}); free space under LADDER_CACHE (or set "
                            f"it elsewhere) and prepare again") from None
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    log.info("prepared %s: %s", cfg.name, out)
    return prepared


def _fill(cfg, store, dtype, seq_len, val_tokens, train_tokens, eos, num_proc, progress) -> list[Piece]:
    """The stream's pieces, the store's units tokenized until the splits have what they need (every unit for
    train_tokens=None): validation, the rest of its last document, then the training tokens."""
    if store is None:
        return _pieces(cfg, None, dtype)
    whole = -(-(train_tokens or 0) // seq_len) * seq_len
    need = None if train_tokens is None else stream_need(seq_len, val_tokens, train_tokens)
    while True:
        fill(store, need, num_proc, progress)
        pieces = _pieces(cfg, store, dtype)
        if need is None:
            return pieces
        deficit = whole - cut(pieces, seq_len, val_tokens, train_tokens, eos).train_sequences * seq_len
        if deficit <= 0 or not store.pending(need + deficit):
            return pieces
        need += deficit  # the rest of validation's last document, which training does not get


def _check_dtypes(pieces: list[Piece], vocab: int) -> None:
    """A headerless file read with a dtype its ids contradict is named with the dtype they say, before a
    wrong reading becomes one-token documents or ids outside the vocabulary."""
    for piece in pieces:
        said = dtype_in_content(piece.file, vocab)
        if said:
            raise DataError(f"{piece.file.path}: read as headerless {piece.file.dtype} its ids do not look like tokens "
                            f"of a {vocab:,}-token vocabulary, read as {said} they do; set data.token_dtype={said}")


def _scan_tokenized(pieces: list[Piece], where: Cut, stop: int, counted: tuple[int, int], eos: int, vocab: int,
                    tokenizer_dir: Path) -> int:
    """A pre-tokenized stream's tokens 0 … stop−1 read once: every id checked against the vocabulary, and the
    eos ids among stream positions `counted` counted (the documents that start in training)."""
    if where.train_start >= where.total > 0 and not where.train_sequences:
        last = pieces[-1].file
        if int(read_tokens(last, last.tokens - 1, last.tokens)[0]) != eos:  # validation's last document never ends
            names = [str(p.file.path) for p in pieces[len(_covering(pieces, where.val_end)) - 1:]]
            raise DataError(f"{', '.join(names)}: no eos id {eos} after token {where.val_end - 1:,} of the stream; a "
                            f"pre-tokenized corpus ends each document with its tokenizer's eos (is {tokenizer_dir} "
                            f"the tokenizer it was made with?)")
    offset = documents = 0
    for piece in pieces:
        if offset >= stop:
            break
        largest, count = scan(piece.file, 0, min(piece.file.tokens, stop - offset), eos,
                              (max(0, counted[0] - offset), max(0, min(piece.file.tokens, counted[1] - offset))))
        if largest >= vocab:
            raise DataError(f"{piece.file.path}: holds token id {largest:,}, outside the {vocab:,}-token "
                            f"vocabulary of tokenizer {tokenizer_dir} (ladder.tokenizer.name_or_path); name the "
                            f"tokenizer the corpus was made with")
        documents += count
        offset += piece.file.tokens
    return documents


def _read_stats(store: Optional[Store]) -> dict:
    if store is None:
        return {}
    units = store.usable()
    files = [store.spec["units"][i].get("path") or store.spec["units"][i]["hf_path"] for i in units]
    return {"source_files": list(dict.fromkeys(files)),  # a file cut into parts, once
            "skipped_empty_documents": sum(store.progress(i)["skipped_empty_documents"] for i in units)}


def _write_heldout_documents(cfg, store, pieces: list[Piece], where: Cut, tokenizer, path: Path) -> None:
    """The validation split's documents as text, for tasks derived from them: the source's own text, or a
    pre-tokenized corpus's documents decoded."""
    with open(path, "w") as f:
        if store is not None:
            texts = islice(documents(cfg), where.val_documents)
        else:
            # Validation's tokens alone, whatever the size of the files they lie in.
            offsets = np.cumsum([0] + [p.file.tokens for p in pieces])
            tokens = np.concatenate([read_tokens(p.file, 0, where.train_start - int(offset))
                                     for p, offset in zip(_covering(pieces, where.train_start), offsets)])
            ends = np.flatnonzero(tokens == tokenizer.eos_token_id) + 1
            texts = (tokenizer.decode(doc[:-1]) for doc in np.split(tokens, ends)[:len(ends)])
        for text in texts:
            f.write(json.dumps({cfg.text_field: text}) + "\n")


def _covering(pieces: list[Piece], stop: int) -> list[Piece]:
    """The leading pieces that hold the stream's first `stop` tokens."""
    out, offset = [], 0
    for piece in pieces:
        if offset >= stop:
            break
        out.append(piece)
        offset += piece.file.tokens
    return out


def _gzip_bytes(path: Path) -> int:
    """A gzip file's uncompressed size. Its trailer holds the size modulo 2^32, so which multiple of 2^32 to
    add is chosen from the ratio of its first GZIP_SAMPLE compressed bytes (a 4.9 GB json.gz has the trailer of
    a 0.6 GB one); a file too small to reach 2^32 even at MAX_GZIP_RATIO is read no further."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        trailer = int.from_bytes(f.read(4), "little")
        if size * MAX_GZIP_RATIO < 1 << 32:
            return trailer
        f.seek(0)
        sample = f.read(GZIP_SAMPLE)
    unzip = zlib.decompressobj(31)
    out = len(unzip.decompress(sample, 4 * GZIP_SAMPLE))
    estimate = size * out / max(1, len(sample) - len(unzip.unconsumed_tail))
    return trailer + (1 << 32) * max(0, round((estimate - trailer) / (1 << 32)))


def _text_bytes(path: Path) -> int:
    """A text shard's uncompressed size: gzip's (`_gzip_bytes`), parquet's metadata, else the file's."""
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            return _gzip_bytes(path)
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path).metadata
            return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    except Exception as exc:  # a truncated .gz (under 4 bytes), a parquet file without its footer
        raise DataError(f"{path}: not a readable {'gzip' if name.endswith('.gz') else 'parquet'} file "
                        f"({type(exc).__name__}: {exc})") from None
    return path.stat().st_size


def source_tokens(data_cfg, vocab_size: int, cache_dir: Optional[Path] = None,
                  tokenizer_cfg=None) -> tuple[Optional[int], str]:
    """How many tokens a dataset's source holds, and how that is known, without tokenizing anything: exact for
    a pre-tokenized corpus, estimated from a text source's bytes (BYTES_PER_TOKEN), unknown (None) for a hub
    stream or a built-in corpus not built yet. A headerless token file's auto dtype is chosen as prepare
    chooses it, from the tokenizer's vocabulary where that is known without fetching it, else `vocab_size`."""
    cfg = data_config(data_cfg)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cfg.path
    if path is None and cfg.corpus:
        built = cache_dir / "corpus" / cfg.corpus
        if not (built / corpus.MARKER).exists():
            return None, f"the built-in corpus '{cfg.corpus}', built at first use"
        path = str(built)
    if path is None:
        return None, f"streamed from {cfg.hf_path}, tokenized as far as the ladder needs"
    try:
        token_files = tokenized_files(path)
        if token_files:
            vocab = known_vocab(tokenizer_cfg, cache_dir) if tokenizer_cfg is not None else None
            dtype = token_dtype(vocab or vocab_size, cfg.token_dtype)
            tokens = sum(token_file(p, dtype).tokens for p in token_files)
            whose = "" if vocab else (f"; headerless files read as {dtype}, from ladder.vocab_size until the "
                                      f"tokenizer is fetched")
            return tokens, f"{tokens:,} tokens in {len(token_files)} pre-tokenized files{whose}"
        files = local_files(path)
        size = sum(_text_bytes(p) for p in files)
    except DataError as exc:
        return None, str(exc)
    tokens = int(size / BYTES_PER_TOKEN)
    return tokens, (f"about {tokens:,} tokens in {len(files)} text files ({size:,} bytes of text at "
                    f"{BYTES_PER_TOKEN:g} a token; exact once tokenized)")
