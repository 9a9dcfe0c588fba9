"""A corpus tokenized elsewhere (OLMo-core/Dolma `.npy` token arrays, nanoGPT `.bin`) trains a rung bit for bit
as the same tokens prepared from text do: the same packing, seeded order and held-out split."""
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from ladder.core.layout import rung_dir
from ladder.core.plan import build_plan
from ladder.core.shards import TokenSequences
from ladder.orchestration.rung import prepare, run_job
from train.data import DataError

RUNG = ("ladder.sizes=[smoke-24]", "ladder.multipliers=[2]", "train.checkpoint_fractions=[1.0]")


def _stream(prepared) -> np.ndarray:
    """Every token of the text source's store: the stream a team would have saved."""
    store = Path(json.loads((prepared.train_dir / "manifest.json").read_text())["store"])
    units = sorted(store.glob("unit-*.bin"))
    return np.concatenate([np.fromfile(u, dtype=np.uint16) for u in units])


def _write_npy_with_header(directory, tokens):
    directory.mkdir()
    np.save(directory / "part-0-00000.npy", tokens[:5000])  # np.save: a numpy header, as some pipelines write
    np.save(directory / "part-0-00001.npy", tokens[5000:])


def _write_dolma(directory, tokens):
    directory.mkdir()
    tokens[:7777].tofile(directory / "part-0-00000.npy")  # Dolma's memmaps: no header, ".npy" all the same
    tokens[7777:].tofile(directory / "part-0-00001.npy")


def _write_nanogpt(directory, tokens):
    directory.mkdir()
    tokens.tofile(directory / "train.bin")


def _trained(cfg):
    rung = build_plan(cfg).rungs[0]
    assert run_job(cfg, rung.rung_id, evaluate=False) == "done"
    directory = rung_dir(cfg.out_dir, rung.rung_id)
    losses = [json.loads(line)["loss"] for line in (directory / "metrics.jsonl").open()]
    (checkpoint,) = (directory / "checkpoints").glob("step-*")
    return losses, load_file(str(checkpoint / "model.safetensors"))


def test_pretokenized_corpora_train_a_rung_bit_identically_to_their_text(tiny_ladder, tmp_path):
    text = tiny_ladder(*RUNG, f"out_dir={tmp_path}/text", "train.log_every=1")
    plan = build_plan(text)
    from_text = prepare(text, "c4", 128, plan)
    text_losses, text_weights = _trained(text)
    for write in (_write_npy_with_header, _write_dolma, _write_nanogpt):
        name = write.__name__
        write(tmp_path / name, _stream(from_text))
        tokenized = tiny_ladder(*RUNG, f"out_dir={tmp_path}/{name}-run", "train.log_every=1",
                                f"data.path={tmp_path / name}", f"ladder.tokenizer.name_or_path={from_text.tokenizer_dir}")
        from_tokens = prepare(tokenized, "c4", 128, plan)
        assert from_tokens.train_dir != from_text.train_dir
        for split in ("train_dir", "val_dir"):
            a, b = TokenSequences(getattr(from_text, split)), TokenSequences(getattr(from_tokens, split))
            assert len(a) == len(b) and np.array_equal(a.read(0, len(a)), b.read(0, len(b))), (name, split)
        held_out = [json.loads(line)["text"] for line in from_tokens.val_documents.open()]
        assert held_out == [json.loads(line)["text"] for line in from_text.val_documents.open()]  # decoded alike
        if write is _write_npy_with_header:
            continue  # the same sequences as the headerless arrays: training them once more proves nothing new
        losses, weights = _trained(tokenized)
        assert losses == text_losses, name
        assert weights.keys() == text_weights.keys()
        assert all(np.array_equal(weights[k], text_weights[k]) for k in weights), name


def test_a_corpus_of_another_tokenizer_is_refused_naming_the_file(tiny_ladder, tmp_path):
    text = tiny_ladder(*RUNG)
    from_text = prepare(text, "c4", 128, build_plan(text))
    tokens = _stream(from_text)
    tokens[9000] = 300  # one id past the 300-token vocabulary
    _write_nanogpt(tmp_path / "tokens", tokens)
    other = tiny_ladder(*RUNG, f"data.path={tmp_path / 'tokens'}",
                        f"ladder.tokenizer.name_or_path={from_text.tokenizer_dir}", "data.val_tokens=4096")
    with pytest.raises(DataError, match=r"train.bin: holds token id 300, outside the 300-token vocabulary"):
        prepare(other, "c4", 128, build_plan(other))
    (tmp_path / "wide").mkdir()
    np.save(tmp_path / "wide" / "tokens.npy", tokens.astype(np.uint32))
    wide = tiny_ladder(*RUNG, f"data.path={tmp_path / 'wide'}", f"ladder.tokenizer.name_or_path={from_text.tokenizer_dir}")
    with pytest.raises(DataError, match=r"tokens.npy: holds uint32 token ids.*set data.token_dtype=uint32"):
        prepare(wide, "c4", 128, build_plan(wide))
