"""Pre-tokenized corpora (`.npy`/`.bin`): never silently misread, read once, in memory independent of their size."""
import tracemalloc

import numpy as np
import pytest

from train.data import DataError, prepare_data
from train.data import tokenized
from train.data.tokenizer import ensure_tokenizer, load


def _corpus(tokens: int, eos: int, seed: int = 0) -> np.ndarray:
    """Random ids of a 300-token vocabulary, an eos closing a document every 20-80 tokens."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 300, size=tokens).astype(np.uint16)
    ids[np.cumsum(rng.integers(20, 80, size=tokens // 20)) % tokens] = eos
    ids[-1] = eos
    return ids


@pytest.fixture
def eos(tokenizer_dir):
    return load(tokenizer_dir).eos_token_id


def _prepare(path, tok_cfg, tmp_path, **data):
    return prepare_data({"name": "tok", "path": str(path), **data}, tok_cfg, seq_len=16, val_tokens=1000,
                        cache_dir=tmp_path / "cache", progress=False)


def test_a_headerless_uint32_corpus_is_not_read_as_uint16(tok_cfg, eos, tmp_path):
    (tmp_path / "c").mkdir()
    _corpus(20_000, eos).astype(np.uint32).tofile(tmp_path / "c" / "part-0.npy")  # Dolma's memmap, uint32
    with pytest.raises(DataError, match=r"part-0.npy: read as headerless uint16 .* set data.token_dtype=uint32"):
        _prepare(tmp_path / "c", tok_cfg, tmp_path)
    prepared = _prepare(tmp_path / "c", tok_cfg, tmp_path, token_dtype="uint32")
    assert prepared.train_manifest["documents"] > 200  # documents of 20-80 tokens, not one-token ones


def test_a_uint16_corpus_read_as_uint32_names_the_dtype_not_the_tokenizer(tok_cfg, eos, tmp_path):
    (tmp_path / "c").mkdir()
    _corpus(20_000, eos).tofile(tmp_path / "c" / "train.bin")
    with pytest.raises(DataError, match=r"train.bin: read as headerless uint32 .* set data.token_dtype=uint16"):
        _prepare(tmp_path / "c", tok_cfg, tmp_path, token_dtype="uint32")


def test_a_directory_mixing_token_files_and_text_is_refused_naming_both(tok_cfg, eos, shards, tmp_path):
    (tmp_path / "c").mkdir()
    _corpus(20_000, eos).tofile(tmp_path / "c" / "part-0.npy")
    shards.c4(tmp_path / "c" / "more" / "c4-train.00000-of-00001.json.gz", shards.make_docs(10))
    with pytest.raises(DataError, match=r"holds both pre-tokenized files \(1: part-0.npy\) and text shards "
                                        r"\(1: more/c4-train.00000-of-00001.json.gz\)"):
        _prepare(tmp_path / "c", tok_cfg, tmp_path)


@pytest.mark.parametrize("damage, message", [
    ("empty", r"part-1.npy: empty file \(no tokens\); remove it or fill it"),
    ("short", r"part-1.npy: its numpy header promises 5,000 tokens .* it is truncated"),
    ("no_eos", r"part-1.npy: no eos id 0 after token 1,007 of the stream"),
])
def test_damaged_token_files_are_named_in_one_line(tok_cfg, eos, tmp_path, damage, message):
    assert eos == 0
    (tmp_path / "c").mkdir()
    _corpus(500, eos).tofile(tmp_path / "c" / "part-0.npy")
    second = tmp_path / "c" / "part-1.npy"
    if damage == "empty":
        second.touch()
    elif damage == "short":
        np.save(second, _corpus(5000, eos))
        with open(second, "r+b") as f:
            f.truncate(4000)
    else:
        np.full(5000, 7, np.uint16).tofile(second)
    with pytest.raises(DataError, match=message):
        _prepare(tmp_path / "c", tok_cfg, tmp_path)


def test_a_bpe_is_not_trained_on_token_files(eos, tmp_path):
    (tmp_path / "c").mkdir()
    _corpus(500, eos).tofile(tmp_path / "c" / "part-0.npy")
    with pytest.raises(DataError, match=r"holds pre-tokenized .npy/.bin files.*set ladder.tokenizer.name_or_path"):
        ensure_tokenizer({"train_vocab_size": 300, "train_path": str(tmp_path / "c")}, tmp_path / "cache")


def test_prepare_reads_each_training_token_once(tok_cfg, eos, tmp_path, monkeypatch):
    (tmp_path / "c").mkdir()
    tokens = _corpus(400_000, eos)
    tokens[:200_000].tofile(tmp_path / "c" / "part-0.npy")
    tokens[200_000:].tofile(tmp_path / "c" / "part-1.npy")
    read = []
    real = tokenized.read_tokens
    monkeypatch.setattr(tokenized, "read_tokens", lambda f, a, b: read.append(len(real(f, a, b))) or real(f, a, b))
    monkeypatch.setattr("train.data.prepare.read_tokens", tokenized.read_tokens)
    prepared = _prepare(tmp_path / "c", tok_cfg, tmp_path)
    assert prepared.train_manifest["num_tokens"] > 390_000
    # Each token once; each file's first ids once more (its dtype checked), validation (1,008 tokens) a few
    # times more: its end, its documents, its text. The old prepare read the training range twice, and the
    # whole first file for validation's text.
    assert sum(read) < len(tokens) + 2 * tokenized.SAMPLE_TOKENS + 10_000, sum(read)


def test_prepare_memory_does_not_grow_with_the_file(tok_cfg, eos, tmp_path, monkeypatch):
    (tmp_path / "c").mkdir()
    _corpus(4_000_000, eos).tofile(tmp_path / "c" / "train.bin")  # 8 MB
    monkeypatch.setattr(tokenized, "SCAN_TOKENS", 1 << 16)
    tracemalloc.start()
    try:
        prepare_data({"name": "tok", "path": str(tmp_path / "c"), "max_tokens": 20_000}, tok_cfg, seq_len=16,
                     val_tokens=1000, cache_dir=tmp_path / "cache", progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak  # the old held-out text copied the whole 8 MB file
