"""The token store: a killed `ladder prepare` resumes inside the unit it was in and tokenizes nothing twice."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from ladder.core.shards import TokenSequences
from ladder.orchestration.cli import main
from train.data import store as store_module

# A real `ladder prepare` in a process of its own, committing every 16 documents and slowed down so that the
# test can kill it half way; one tokenizer process, so the slow encode below is the one that runs.
SLOW_PREPARE = """
import sys, time
from train.data import store
store.BATCH_DOCS, store.FLUSH_DOCS = 8, 16
encode = store.encode
def slow(*args):
    time.sleep(0.1)
    return encode(*args)
store.encode = slow
from ladder.orchestration.cli import main
sys.exit(main(["prepare", *sys.argv[1:]]))
"""


def _overrides(c4_dir):
    return ["ladder=smoke", f"data.path={c4_dir}", "data.corpus=null", "data.val_tokens=1000", "data.num_proc=1",
            "ladder.tokenizer.train_vocab_size=300", f"ladder.tokenizer.train_path={c4_dir}"]


def _committed(cache):
    return sum(json.loads(p.read_text())["documents"] for p in cache.glob("stores/*/unit-*.json"))


def _splits(cache):
    return {p.parent.name: TokenSequences(p.parent).read(0, len(TokenSequences(p.parent))).reshape(-1)
            for p in cache.glob("tokens/*/*/manifest.json")}


def test_a_killed_prepare_resumes_without_tokenizing_a_document_twice(c4_dir, docs, tmp_path, monkeypatch, capsys):
    killed = tmp_path / "killed"
    env = {**os.environ, "LADDER_CACHE": str(killed)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_PREPARE, *_overrides(c4_dir)], env=env)
    deadline = time.time() + 120
    while _committed(killed) < 48 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # mid-unit: some batches written after the last commit, maybe
    proc.wait()
    committed = _committed(killed)
    assert 48 <= committed < len(docs) and not list(killed.glob("tokens/*/*/manifest.json"))

    encoded = []
    real = store_module.encode
    monkeypatch.setattr(store_module, "encode", lambda texts, *a: encoded.extend(texts) or real(texts, *a))
    monkeypatch.setenv("LADDER_CACHE", str(killed))
    assert main(["prepare", *_overrides(c4_dir)]) == 0
    assert len(encoded) == len(docs) - committed  # the committed documents were read, not tokenized again
    assert set(encoded) == set(docs[committed:])  # one process: units, and documents, commit in order

    monkeypatch.setenv("LADDER_CACHE", str(tmp_path / "whole"))
    assert main(["prepare", *_overrides(c4_dir)]) == 0
    resumed, whole = _splits(killed), _splits(tmp_path / "whole")
    assert resumed.keys() == whole.keys() == {"train", "val"}
    assert all(np.array_equal(resumed[split], whole[split]) for split in ("train", "val"))
