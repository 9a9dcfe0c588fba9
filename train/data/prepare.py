"""Entry point of the data stage: documents → tokenizer → packed train and validation splits, cached.

The cache key covers everything the tokens depend on (source files, tokenizer hash, sequence length,
split sizes, seed), so the same inputs are tokenized once; a run that dies leaves only a `.partial-*`
directory, which is never read and is replaced by the next run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from itertools import islice
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from filelock import FileLock
from omegaconf import DictConfig

from train.data import corpus
from ladder.core.shards import MANIFEST
from train.data.pack import SHARD_TOKENS, pack
from train.data.sources import DataError, Stats, data_config, documents, local_files
from train.data.tokenizer import ensure_tokenizer, load, token_dtype, tokenizer_config, tokenizer_hash

log = logging.getLogger(__name__)
CORPORA = {"smoke": corpus.build}  # built-in corpora a data config can name in `corpus`


HELDOUT_DOCUMENTS = "documents.jsonl"  # the validation split's raw text, for tasks derived from it


def _write_heldout_documents(docs, count: int, path: Path, text_field: str) -> None:
    """The first `count` documents of the stream are exactly those packed into validation."""
    with open(path, "w") as f:
        for text in islice(docs, count):
            f.write(json.dumps({text_field: text}) + "\n")


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
    """Half the cores, at most 8: the tokenizer runs its own threads in a single process, which on 2 cores
    beats two processes (docs/data.md); worker processes pay off where cores are many."""
    return max(1, min(8, (os.cpu_count() or 1) // 2))


def _source(cfg: DictConfig) -> dict:
    """What identifies the documents: local files by name, size and mtime; a hub dataset by name."""
    if cfg.path is None:
        return {"hf_path": cfg.hf_path, "hf_name": cfg.hf_name, "split": cfg.split}
    root = Path(cfg.path)
    return {"path": str(root), "files": [[str(p.relative_to(root)) if p != root else p.name, p.stat().st_size,
                                          p.stat().st_mtime_ns] for p in local_files(root)]}


def prepare_data(data_cfg, tokenizer_cfg, seq_len: int, val_tokens: Optional[int] = None, seed: int = 0,
                 cache_dir: Optional[Path] = None, *, train_tokens: Optional[int] = None,
                 num_proc: Optional[int] = None, progress: bool = True,
                 shard_tokens: int = SHARD_TOKENS) -> PreparedData:
    """Packed train and validation splits of one dataset for one tokenizer and sequence length.

    val_tokens defaults to data_cfg.val_tokens; train_tokens (default data_cfg.max_tokens, else all) caps
    how many training tokens are packed, which a hub dataset needs.
    """
    cfg, tok_cfg = data_config(data_cfg), tokenizer_config(tokenizer_cfg)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if cfg.path is not None and not Path(cfg.path).exists():  # before a tokenizer is trained for nothing
        raise DataError(f"data.path={cfg.path}: no such file or directory (dataset '{cfg.name}')")
    if cfg.corpus:
        if cfg.corpus not in CORPORA:
            raise DataError(f"data.corpus: unknown built-in corpus '{cfg.corpus}'; known: {', '.join(CORPORA)}")
        if cfg.path is None:  # built under the cache, the one place the harness writes documents
            cfg.path = str(CORPORA[cfg.corpus](cache_dir / "corpus" / cfg.corpus))
        else:  # a user's data.path is only ever read
            log.info("data.path=%s is set: reading it instead of the built-in corpus '%s'", cfg.path, cfg.corpus)
    tokenizer_dir = ensure_tokenizer(tok_cfg, cache_dir)
    tokenizer = load(tokenizer_dir)
    if tokenizer.eos_token_id is None:
        raise DataError(f"tokenizer {tokenizer_dir} has no end-of-text (eos) token to separate documents")
    dtype = token_dtype(len(tokenizer), cfg.token_dtype)
    val_tokens = cfg.val_tokens if val_tokens is None else val_tokens
    train_tokens = cfg.max_tokens if train_tokens is None else train_tokens
    tok_hash = tokenizer_hash(tokenizer_dir)
    meta = {"dataset": cfg.name, "source": _source(cfg), "text_field": cfg.text_field,
            "tokenizer": {"name": tok_cfg.name_or_path or f"bpe-{tok_cfg.train_vocab_size}",
                          "dir": str(tokenizer_dir), "sha256": tok_hash, "vocab_size": len(tokenizer),
                          "eos_token_id": tokenizer.eos_token_id},
            "seed": seed, "val_tokens": val_tokens, "max_train_tokens": train_tokens}
    key = hashlib.sha256(json.dumps({**meta, "tokenizer": tok_hash, "seq_len": seq_len, "dtype": dtype},
                                    sort_keys=True).encode()).hexdigest()[:12]
    out = cache_dir / "tokens" / f"{cfg.name}-{seq_len}-{key}"
    prepared = PreparedData(cfg.name, out / "train", out / "val", tokenizer_dir)

    def done() -> bool:
        return (prepared.train_dir / MANIFEST).exists() and (prepared.val_dir / MANIFEST).exists()

    if done():
        return prepared
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):  # two processes preparing the same data: one packs, one waits
        if done():
            return prepared
        tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        stats = Stats()
        try:
            val, train = pack(documents(cfg, stats), tokenizer_dir, tmp, seq_len=seq_len, val_tokens=val_tokens,
                              eos=tokenizer.eos_token_id, dtype=dtype, train_tokens=train_tokens,
                              num_proc=num_proc or cfg.num_proc or default_num_proc(), progress=progress,
                              shard_tokens=shard_tokens, desc=f"tokenize {cfg.name}")
        except Exception:  # bad input: leave nothing behind (a hard kill leaves a .partial-* that is never read)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if not val.full:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"dataset '{cfg.name}' holds only {val.sequences * seq_len:,} tokens in "
                            f"{stats.documents:,} documents; its validation split alone needs {val_tokens:,}")
        read = {"source_files": stats.files, "skipped_empty_documents": stats.skipped_empty}
        _write_heldout_documents(documents(cfg), val.documents, tmp / "val" / HELDOUT_DOCUMENTS, cfg.text_field)
        val.close({**meta, **read, "split": "val"})
        train.close({**meta, **read, "split": "train"})
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    log.info("prepared %s: %s", cfg.name, out)
    return prepared

