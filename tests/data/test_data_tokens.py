"""The D-token contract, the seeded order, repetition and the resume position."""
import numpy as np
import pytest
import torch

from ladder.core.shards import NotEnoughTokens, TokenSequences
from train.data import prepare_data


@pytest.fixture
def prepared(c4_cfg, tok_cfg, tmp_path):
    return prepare_data(c4_cfg, tok_cfg, seq_len=16, val_tokens=1000, seed=0, cache_dir=tmp_path, progress=False)


def test_serves_exactly_ceil_d_over_seq_len_sequences(prepared):
    seqs = TokenSequences(prepared.train_dir, tokens=1000, seed=0)
    assert len(seqs) == 63 and seqs.seq_len == 16 and seqs.tokens == 1000
    assert seqs[0].dtype == np.int64 and seqs[0].shape == (16,)
    assert len(set(seqs.order[:].tolist())) == 63  # no sequence twice
    assert seqs.epochs < 1


def test_order_is_fixed_by_seed(prepared):
    a, b = (TokenSequences(prepared.train_dir, tokens=800, seed=0) for _ in range(2))
    c = TokenSequences(prepared.train_dir, tokens=800, seed=1)
    assert all(np.array_equal(a[i], b[i]) for i in range(len(a)))
    assert not all(np.array_equal(a[i], c[i]) for i in range(len(a)))


def test_too_few_tokens_names_needed_and_available(prepared):
    available = TokenSequences(prepared.train_dir).tokens
    with pytest.raises(NotEnoughTokens, match=rf"needs 10,000,000 tokens \(625,000 sequences of 16\) but holds "
                                              rf"{available:,}.*allow_repeat"):
        TokenSequences(prepared.train_dir, tokens=10_000_000)


def test_repetition_when_allowed_records_epochs(prepared):
    available = len(TokenSequences(prepared.train_dir))
    seqs = TokenSequences(prepared.train_dir, tokens=available * 16 * 5 // 2, seed=0, allow_repeat=True)
    assert len(seqs) == available * 5 // 2 and seqs.epochs == pytest.approx(len(seqs) / available)
    assert sorted(seqs.order[:available]) == list(range(available))  # each epoch: every sequence once


def test_batches_resume_at_a_sequence_index(prepared):
    seqs = TokenSequences(prepared.train_dir, tokens=1000, seed=3)
    batches = list(seqs.batches(8))
    assert batches[0].dtype == torch.long and batches[0].shape == (8, 16) and batches[-1].shape == (63 % 8, 16)
    resumed = list(TokenSequences(prepared.train_dir, tokens=1000, seed=3).batches(8, start=24))
    assert torch.equal(torch.cat(resumed), torch.cat(batches)[24:])
    assert torch.equal(resumed[0][1], torch.from_numpy(seqs[25]))


def test_validation_is_every_sequence_in_stored_order(prepared):
    val = TokenSequences(prepared.val_dir)
    (segment,) = val.manifest["segments"]  # the first 1,008 tokens of the store's first unit
    stored = np.fromfile(segment["file"], dtype=np.uint16)[:63 * 16].reshape(-1, 16)
    assert len(val) == 63 == val.tokens // 16
    assert all(np.array_equal(val[i], stored[i]) for i in range(len(val)))


def test_incomplete_split_is_refused(prepared, tmp_path):
    (segment,) = TokenSequences(prepared.val_dir).manifest["segments"]
    with open(segment["file"], "r+b") as f:
        f.truncate(10)
    with pytest.raises(ValueError, match="unit-00000.bin: missing or shorter than"):
        TokenSequences(prepared.val_dir)
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        TokenSequences(tmp_path)


def test_each_rank_reads_its_rows_of_the_order_row_by_row_reading_gave(tmp_path):
    """The vectorised per-rank reader serves exactly the sequences, in exactly the order, of the reader it
    replaced (every global batch gathered row by row with `seqs[i]`, then sliced per rank): across file
    boundaries, epochs and a resume position."""
    from train.data.pack import write_arrays

    stored = np.random.default_rng(0).integers(0, 60_000, size=(40, 8))
    flat = stored.reshape(-1)
    write_arrays(tmp_path / "train", [flat[:61], flat[61:125], flat[125:200], flat[200:]], 8, "uint16")  # rows cross files
    seqs = TokenSequences(tmp_path / "train", tokens=100 * 8, seed=5, allow_repeat=True)  # 2.5 epochs
    assert len(seqs.manifest["segments"]) == 4 and len(seqs) == 100
    batch = 12
    for start in (0, 36):
        old = [torch.from_numpy(np.stack([seqs[i] for i in range(first, min(first + batch, len(seqs)))]))
               for first in range(start, len(seqs), batch)]
        assert torch.equal(torch.cat(old), torch.from_numpy(stored[seqs.order[start:]]))
        for world in (1, 2, 4):
            share = batch // world
            ranks = [list(seqs.batches(batch, start, rows=(r * share, (r + 1) * share))) for r in range(world)]
            for k, whole in enumerate(old):
                assert torch.equal(torch.cat([ranks[r][k] for r in range(world)]), whole)
                assert all(ranks[r][k].dtype == torch.long for r in range(world))


def test_the_seeded_order_is_made_once_per_node_not_held_by_every_rank(tmp_path):
    """Each rank's TokenSequences memory-maps the permutation the first one wrote beside the split, instead of
    building the whole order itself (0.5 GB per rank for the olmo ladder's 62.5M sequences); the order is the
    documented one."""
    import tracemalloc

    from train.data.pack import write_arrays

    available = 200_000
    write_arrays(tmp_path / "train", [np.arange(available * 8) % 60_000], 8, "uint16")
    first = TokenSequences(tmp_path / "train", tokens=available * 8 * 5 // 2, seed=7, allow_repeat=True)
    expected = np.concatenate([np.random.default_rng([7, e]).permutation(available) for e in range(3)])
    assert np.array_equal(first.order[:], expected[:len(first)])
    tracemalloc.start()
    try:
        rank = TokenSequences(tmp_path / "train", tokens=available * 8 * 5 // 2, seed=7, allow_repeat=True)
        batch = next(rank.batches(64, start=250_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000, peak  # the old order alone: 500,000 int64, 4 MB
    assert np.array_equal(batch.numpy(), first.read(250_000, 64))
    assert np.array_equal(rank.order[399_990:400_010], expected[399_990:400_010])  # across an epoch's end
