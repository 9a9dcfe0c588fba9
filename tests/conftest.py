"""A tiny ladder on local C4-schema shards, for the tests that run whole pipelines."""
import contextlib
import gzip
import json
import os
import subprocess

import pytest

from ladder.core.threads import quiet_threads

quiet_threads()  # as the `ladder` CLI runs, before anything loads torch or numpy

from ladder.orchestration.compose import load  # noqa: E402

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


def tiny_overrides(corpus, out_dir) -> list[str]:
    """Three CPU sizes × M = 1, 2 on the local shards, trained into `out_dir`."""
    return ["ladder=smoke", "ladder.lr_schedule=cosine", "ladder.sizes=[smoke-24,smoke-32,smoke-48]",
            "ladder.multipliers=[1,2]", "ladder.datasets=[c4]", "data=c4", f"data.path={corpus}", "data.val_tokens=4096",
            "ladder.tokenizer.train_vocab_size=300", f"ladder.tokenizer.train_path={corpus}",
            f"out_dir={out_dir}", "train.wandb.mode=disabled", "train.progress=false",
            "train.checkpoint_fractions=[0.5,1.0]", "eval.derived.n_examples=20", "eval.max_sequences=16",
            "fit=default", "fit.method=chinchilla", "fit.bootstrap=0"]


@pytest.fixture
def tiny_ladder(corpus, tmp_path, monkeypatch):
    """`tiny_ladder(*overrides)`: the config of `tiny_overrides` and `overrides`, cache under tmp_path."""
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path / "cache"))

    def make(*overrides):
        return load([*tiny_overrides(corpus, f"{tmp_path}/run"), *overrides])
    return make


@pytest.fixture
def read_only():
    """`with read_only(path):` makes a directory read-only inside (below)."""
    return _read_only


@contextlib.contextmanager
def _read_only(path):
    """`path` (a directory) read-only while inside: its permission bits for a user; for root, whom they do not
    bind, a read-only bind mount of it (skipped where this process may not mount)."""
    path = str(path)
    if os.geteuid() != 0:
        mode = os.stat(path).st_mode
        os.chmod(path, 0o500)
        try:
            yield
        finally:
            os.chmod(path, mode)
        return
    if subprocess.run(["mount", "--bind", path, path], capture_output=True).returncode:
        pytest.skip("root here may not mount, so cannot make a directory read-only")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", path], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", path], check=True, capture_output=True)


@pytest.fixture(scope="session")
def finished_ladder(corpus, tmp_path_factory):
    """A finished WSD-S ladder, smoke-24 × M = 1, 2, trained and evaluated once a session: (its overrides, its
    LADDER_CACHE). Tests change only a copy (the `finished` fixture)."""
    from ladder.orchestration.pipeline import run_ladder

    root = tmp_path_factory.mktemp("finished")
    overrides = [*tiny_overrides(corpus, root / "run"), "ladder.lr_schedule=wsds", "ladder.sizes=[smoke-24]",
                 "train.checkpoint_fractions=[0.25,1.0]"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LADDER_CACHE", str(root / "cache"))
        assert run_ladder(load(overrides), fit=False) == 0
    return overrides, root / "cache"


@pytest.fixture
def finished(finished_ladder, tmp_path, monkeypatch):
    """The overrides of a private copy of the finished ladder (out_dir under tmp_path, the session's cache)."""
    import shutil

    overrides, cache = finished_ladder
    source = next(o.split("=", 1)[1] for o in overrides if o.startswith("out_dir="))
    shutil.copytree(source, tmp_path / "run", symlinks=True)
    monkeypatch.setenv("LADDER_CACHE", str(cache))
    return [o for o in overrides if not o.startswith("out_dir=")] + [f"out_dir={tmp_path}/run"]
