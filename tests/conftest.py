"""A tiny ladder on local C4-schema shards, for the tests that run whole pipelines."""
import gzip
import json

import pytest

from ladder.orchestration.compose import load

WORDS = ("the river ran past an old mill where farmers brought grain each autumn and the miller kept "
         "careful accounts of every sack in a ledger bound with leather while his daughter counted coins").split()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("c4")
    with gzip.open(root / "c4-train.00000-of-00001.json.gz", "wt") as f:
        for i in range(1500):
            text = " ".join(WORDS[(i * 7 + k * (1 + i % 5)) % len(WORDS)] for k in range(40 + i % 40))
            f.write(json.dumps({"text": text, "timestamp": "2019-04-25T12:57:54Z", "url": f"u{i}"}) + "\n")
    return root


@pytest.fixture
def tiny_ladder(corpus, tmp_path, monkeypatch):
    """`tiny_ladder(*overrides)`: three CPU sizes × M = 1, 2 on the local shards, cache under tmp_path."""
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path / "cache"))

    def make(*overrides):
        return load([
            "ladder=smoke", "ladder.lr_schedule=cosine", "ladder.sizes=[smoke-24,smoke-32,smoke-48]", "ladder.multipliers=[1,2]",
            "ladder.datasets=[c4]", "data=c4", f"data.path={corpus}", "data.val_tokens=4096",
            "ladder.tokenizer.train_vocab_size=300", f"ladder.tokenizer.train_path={corpus}",
            f"out_dir={tmp_path}/run", "train.wandb.mode=disabled", "train.progress=false",
            "train.checkpoint_fractions=[0.5,1.0]", "eval.derived.n_examples=20", "eval.max_sequences=16",
            "fit=default", "fit.method=chinchilla", "fit.bootstrap=0", *overrides])
    return make
