"""Tokenize and pack: manifest, determinism, cache, processes, disjoint validation, crashes, dtypes."""
import json
import re

import numpy as np
import pytest

from ladder.core.shards import TokenSequences
from train.data import DataError, prepare_data
from train.data import store as store_module
from train.data.tokenizer import load, token_dtype


def prepare(cfg, tok, cache, **kw):
    kw.setdefault("val_tokens", 1000)
    return prepare_data(cfg, tok, seq_len=16, seed=0, cache_dir=cache, progress=False, **kw)


def split_tokens(directory):
    seqs = TokenSequences(directory)
    return seqs.read(0, len(seqs)).reshape(-1)


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
    monkeypatch.setattr(store_module, "encode", lambda *a, **k: pytest.fail("tokenized again"))
    assert prepare(c4_cfg, tok_cfg, tmp_path) == first
    # Other split sizes and sequence lengths are other views of the same token store.
    other = prepare(c4_cfg, tok_cfg, tmp_path, val_tokens=2000)
    longer = prepare_data(c4_cfg, tok_cfg, seq_len=32, val_tokens=1000, cache_dir=tmp_path, progress=False)
    assert len({first.train_dir, other.train_dir, longer.train_dir}) == 3
    assert len(list((tmp_path / "stores").glob("*/units.json"))) == 1
    assert np.array_equal(split_tokens(other.val_dir)[:1008], split_tokens(first.val_dir))


def test_a_sequence_runs_on_from_one_source_file_into_the_next(c4_cfg, tok_cfg, c4_dir, docs, shards, tmp_path):
    """Two source files are two units of the store; the split reads across them exactly as the single stream."""
    one_file = shards.c4(tmp_path / "one" / "c4-train.00000-of-00001.json.gz", docs)
    two = prepare(c4_cfg, tok_cfg, tmp_path / "a")
    one = prepare({**c4_cfg, "path": str(one_file.parent)}, tok_cfg, tmp_path / "b")
    assert len(json.loads((two.train_dir / "manifest.json").read_text())["segments"]) == 2
    for split in ("train_dir", "val_dir"):
        assert np.array_equal(split_tokens(getattr(two, split)), split_tokens(getattr(one, split)))


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
