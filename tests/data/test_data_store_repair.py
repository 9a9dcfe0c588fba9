"""A token store is checked on every prepare and repaired: damaged units are tokenized again from the last
document their files hold whole, damaged bookkeeping is rebuilt, a full disk is one line, and a moved corpus
or cache is recognised by content."""
import builtins
import errno
import logging
import os
import shutil

import numpy as np
import pytest

from ladder.core.shards import SplitError, TokenSequences
from train.data import DataError, prepare_data
from train.data import prepare as prepare_module
from train.data import store as store_module


def _prepare(cfg, tok_cfg, cache, val_tokens=1000):
    return prepare_data(cfg, tok_cfg, seq_len=16, val_tokens=val_tokens, cache_dir=cache, progress=False)


def _tokens(prepared):
    return {split: TokenSequences(d).read(0, len(TokenSequences(d))) for split, d in
            (("train", prepared.train_dir), ("val", prepared.val_dir))}


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture
def encoded(monkeypatch):
    """The documents tokenized from here on."""
    texts = []
    real = store_module.encode
    monkeypatch.setattr(store_module, "encode", lambda batch, *a: texts.extend(batch) or real(batch, *a))
    return texts


def _store(cache):
    (root,) = (cache / "stores").glob("c4-*[!k]")  # the store directory, not its lock
    return root


def test_a_truncated_unit_under_kept_splits_is_tokenized_again(c4_cfg, tok_cfg, docs, tmp_path, encoded):
    prepared = _prepare(c4_cfg, tok_cfg, tmp_path)
    whole = _tokens(prepared)
    unit = _store(tmp_path) / "unit-00000.bin"
    with open(unit, "r+b") as f:
        f.truncate(unit.stat().st_size // 2)
    with pytest.raises(SplitError, match="unit-00000.bin: missing or shorter.*run `ladder prepare`, which repairs"):
        TokenSequences(prepared.train_dir)  # what a rung meets; the old prepare then did nothing: a loop
    encoded.clear()
    prepared = _prepare(c4_cfg, tok_cfg, tmp_path)
    assert _same(_tokens(prepared), whole)
    assert 0 < len(encoded) < 120 and set(encoded) <= set(docs[:120])  # the lost documents of the first unit alone


def test_an_emptied_lengths_file_is_not_taken_for_fewer_documents(c4_cfg, tok_cfg, tmp_path, encoded):
    fresh = _prepare(c4_cfg, tok_cfg, tmp_path / "fresh", val_tokens=500)
    _prepare(c4_cfg, tok_cfg, tmp_path / "cache")
    (_store(tmp_path / "cache") / "unit-00000.lengths").write_bytes(b"")
    encoded.clear()
    prepared = _prepare(c4_cfg, tok_cfg, tmp_path / "cache", val_tokens=500)  # another split of the store
    assert len(encoded) == 120  # the first unit, all of it again
    for split in ("train_manifest", "val_manifest"):
        assert getattr(prepared, split)["documents"] == getattr(fresh, split)["documents"]
    assert _same(_tokens(prepared), _tokens(fresh))


@pytest.mark.parametrize("damaged", ["units.json", "unit-00000.json"])
def test_half_written_bookkeeping_is_rebuilt_without_tokenizing_again(c4_cfg, tok_cfg, tmp_path, encoded, damaged):
    fresh = _prepare(c4_cfg, tok_cfg, tmp_path / "fresh", val_tokens=500)
    _prepare(c4_cfg, tok_cfg, tmp_path / "cache")
    path = _store(tmp_path / "cache") / damaged
    path.write_text(path.read_text()[:len(path.read_text()) // 2])
    encoded.clear()
    prepared = _prepare(c4_cfg, tok_cfg, tmp_path / "cache", val_tokens=500)
    assert encoded == []  # the unit's files still held every document: read again, not tokenized
    assert _same(_tokens(prepared), _tokens(fresh))
    assert prepared.train_manifest["documents"] == fresh.train_manifest["documents"]


class _Full:
    """A file whose writes fail as on a full disk."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_full_disk_while_tokenizing_is_one_line_naming_the_unit(c4_cfg, tok_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "open", lambda *a, **k: _Full(builtins.open(*a, **k)), raising=False)
    with pytest.raises(DataError, match=r"unit-00000.bin: cannot write the token store \(No space left on device\)"):
        _prepare(c4_cfg, tok_cfg, tmp_path)


def test_a_full_disk_while_cutting_the_splits_leaves_no_partial_directory(c4_cfg, tok_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare_module, "open", lambda *a, **k: _Full(builtins.open(*a, **k)), raising=False)
    with pytest.raises(DataError, match=r"c4-16-\w+: cannot write the splits \(No space left on device\)"):
        _prepare(c4_cfg, tok_cfg, tmp_path)
    assert not list((tmp_path / "tokens").glob("*partial*"))


def test_a_moved_corpus_and_cache_are_recognised(c4_cfg, c4_dir, tok_cfg, tmp_path, encoded):
    whole = _tokens(_prepare(c4_cfg, tok_cfg, tmp_path / "cache"))
    shutil.copytree(c4_dir, tmp_path / "moved")
    for path in (tmp_path / "moved").iterdir():
        os.utime(path)  # a copy made today
    (tmp_path / "cache").rename(tmp_path / "elsewhere")
    encoded.clear()
    prepared = _prepare({**c4_cfg, "path": str(tmp_path / "moved")}, tok_cfg, tmp_path / "elsewhere")
    assert encoded == [] and _same(_tokens(prepared), whole)
    segments = prepared.train_manifest["segments"]
    assert all(s["file"].startswith(str((tmp_path / "elsewhere").resolve())) for s in segments)


def test_filling_many_units_reads_each_record_a_few_times(shards, tok_cfg, tmp_path, monkeypatch):
    for i in range(24):
        shards.redpajama(tmp_path / "src" / f"part-{i:02d}.jsonl", shards.make_docs(3, 3 * i))
    reads = []
    real = store_module.Path.read_text
    monkeypatch.setattr(store_module.Path, "read_text", lambda self, *a, **k: reads.append(self.name) or real(self, *a, **k))
    store, _ = prepare_module.open_stream({"name": "rpj", "path": str(tmp_path / "src")}, tok_cfg["name_or_path"], 0,
                                          "uint16", tmp_path / "cache")
    reads.clear()
    store_module.fill(store, None, progress=False)
    assert len(store.usable()) == 24
    assert reads.count("units.json") <= 24 + 1  # once per unit tokenized and once by fill, not at every question
    assert sum(name.startswith("unit-") for name in reads) <= 3 * 24  # O(U), not O(U^2) (the old fill: ~600)


def test_a_resumed_fill_reports_only_the_tokens_it_made(c4_cfg, tok_cfg, tmp_path, caplog):
    store, _ = prepare_module.open_stream(c4_cfg, tok_cfg["name_or_path"], 0, "uint16", tmp_path)
    committed = store_module.tokenize_unit(str(store.root), 0, limit=500)["tokens"]  # a unit cut off mid-way
    assert 500 <= committed
    with caplog.at_level(logging.INFO, logger="train.data.store"):
        store_module.fill(store, None)
    total = store.tokens(store.usable())
    assert f"tokenized {total - committed:,} tokens" in caplog.text


def test_a_full_disk_while_recording_the_store_is_one_line(c4_cfg, tok_cfg, tmp_path, monkeypatch):
    def full(path, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(store_module, "atomic_write_json", full)
    with pytest.raises(DataError, match=r"stores/c4-\w+: cannot write the token store's records \(No space left"):
        _prepare(c4_cfg, tok_cfg, tmp_path)
