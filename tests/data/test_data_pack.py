"""Tokenize and pack: manifest, determinism, cache, processes, disjoint validation, crashes, dtypes."""
import json
import re

import numpy as np
import pytest

from train.data import DataError, prepare_data
from train.data import pack as pack_module
from train.data import prepare as prepare_module
from train.data.tokenizer import load, token_dtype


def prepare(cfg, tok, cache, **kw):
    kw.setdefault("val_tokens", 1000)
    return prepare_data(cfg, tok, seq_len=16, seed=0, cache_dir=cache, progress=False, **kw)


def split_tokens(directory):
    manifest = json.loads((directory / "manifest.json").read_text())
    return np.concatenate([np.fromfile(directory / s["file"], dtype=manifest["dtype"]) for s in manifest["shards"]])


def doc_ids(tokenizer_dir, directory):
    return set(map(int, re.findall(r"doc(\d+)\.", load(tokenizer_dir).decode(split_tokens(directory)))))


def test_manifest_records_what_the_tokens_are(c4_cfg, tok_cfg, c4_dir, tokenizer_dir, tmp_path):
    p = prepare(c4_cfg, tok_cfg, tmp_path)
    train = json.loads((p.train_dir / "manifest.json").read_text())
    val = json.loads((p.val_dir / "manifest.json").read_text())
    assert train["dataset"] == "c4" and train["split"] == "train" and val["split"] == "val"
    assert train["source_files"] == sorted(str(f) for f in c4_dir.glob("*.json.gz"))
    assert train["tokenizer"]["vocab_size"] == 300 and len(train["tokenizer"]["sha256"]) == 64
    assert train["dtype"] == "uint16" and train["seq_len"] == 16 and train["seed"] == 0
    assert val["num_tokens"] == 1008  # ceil(1000 / 16) whole sequences
    assert train["num_tokens"] == train["num_sequences"] * 16 == len(split_tokens(p.train_dir))
    assert train["documents"] + val["documents"] == 240 and train["skipped_empty_documents"] == 0
    assert p.tokenizer_dir == tokenizer_dir


def test_documents_are_separated_by_eos(c4_cfg, tok_cfg, tokenizer_dir, docs, tmp_path):
    p = prepare(c4_cfg, tok_cfg, tmp_path)
    tokenizer = load(tokenizer_dir)
    val = split_tokens(p.val_dir)
    first = tokenizer(docs[0], add_special_tokens=False)["input_ids"]
    assert list(val[:len(first) + 1]) == first + [tokenizer.eos_token_id]


def test_validation_is_disjoint_from_training_by_document(c4_cfg, tok_cfg, tokenizer_dir, tmp_path):
    p = prepare(c4_cfg, tok_cfg, tmp_path)
    val, train = doc_ids(tokenizer_dir, p.val_dir), doc_ids(tokenizer_dir, p.train_dir)
    assert val and train and not val & train
    assert val == set(range(len(val))) and min(train) == len(val)  # the first documents, then the rest


def test_validation_documents_are_kept_as_text(c4_cfg, tok_cfg, docs, tmp_path):
    p = prepare(c4_cfg, tok_cfg, tmp_path)
    texts = [json.loads(line)["text"] for line in p.val_documents.read_text().splitlines()]
    assert texts == docs[:p.val_manifest["documents"]]


def test_deterministic_and_independent_of_process_count(c4_cfg, tok_cfg, tmp_path):
    one = prepare(c4_cfg, tok_cfg, tmp_path / "a", num_proc=1)
    again = prepare(c4_cfg, tok_cfg, tmp_path / "b", num_proc=1)
    two = prepare(c4_cfg, tok_cfg, tmp_path / "c", num_proc=2)
    for split in ("train_dir", "val_dir"):
        a, b, c = (split_tokens(getattr(p, split)) for p in (one, again, two))
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_same_inputs_are_not_tokenized_twice(c4_cfg, tok_cfg, tmp_path, monkeypatch):
    first = prepare(c4_cfg, tok_cfg, tmp_path)
    monkeypatch.setattr(prepare_module, "pack", lambda *a, **k: pytest.fail("tokenized again"))
    assert prepare(c4_cfg, tok_cfg, tmp_path) == first
    monkeypatch.undo()
    other = prepare(c4_cfg, tok_cfg, tmp_path, val_tokens=2000)  # another input: another directory
    assert other.train_dir != first.train_dir


def test_crash_while_packing_leaves_nothing_trusted(c4_cfg, tok_cfg, tmp_path, monkeypatch):
    real_write = pack_module.SplitWriter._write
    calls = []

    def dying_write(self, tokens):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt("killed")
        real_write(self, tokens)

    monkeypatch.setattr(pack_module.SplitWriter, "_write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        prepare(c4_cfg, tok_cfg, tmp_path)
    assert not list((tmp_path / "tokens").glob("*/train/manifest.json"))
    assert not [d for d in (tmp_path / "tokens").iterdir() if d.is_dir() and ".partial-" not in d.name]
    monkeypatch.undo()
    p = prepare(c4_cfg, tok_cfg, tmp_path)
    assert (p.train_dir / "manifest.json").exists()


def test_shards_split_at_shard_tokens(c4_cfg, tok_cfg, tmp_path):
    whole = prepare(c4_cfg, tok_cfg, tmp_path / "a")
    split = prepare(c4_cfg, tok_cfg, tmp_path / "b", shard_tokens=16 * 100)
    manifest = json.loads((split.train_dir / "manifest.json").read_text())
    assert len(manifest["shards"]) > 1 and all(s["num_sequences"] <= 100 for s in manifest["shards"])
    assert np.array_equal(split_tokens(whole.train_dir), split_tokens(split.train_dir))


def test_train_tokens_caps_packing(c4_cfg, tok_cfg, tmp_path):
    p = prepare(c4_cfg, tok_cfg, tmp_path, train_tokens=500)
    assert json.loads((p.train_dir / "manifest.json").read_text())["num_tokens"] == 512


def test_dataset_too_small_for_validation_is_an_error(c4_cfg, tok_cfg, tmp_path):
    with pytest.raises(DataError, match=r"holds only [\d,]+ tokens in 240 documents; its validation split alone "
                                        r"needs 10,000,000"):
        prepare(c4_cfg, tok_cfg, tmp_path, val_tokens=10_000_000)


def test_vocabulary_that_does_not_fit_the_dtype_is_an_error(c4_cfg, tok_cfg, tmp_path):
    assert token_dtype(50_432) == "uint16" and token_dtype(100_352) == "uint32"
    with pytest.raises(ValueError, match="100,352 ids does not fit data.token_dtype=uint16"):
        token_dtype(100_352, "uint16")
    p = prepare({**c4_cfg, "token_dtype": "uint32"}, tok_cfg, tmp_path)
    assert json.loads((p.val_dir / "manifest.json").read_text())["dtype"] == "uint32"
