"""`ladder run` end to end on real stages: local C4-schema shards → BPE → tokens → training with
in-loop evaluation → fit → report, then a re-run that finds nothing to do."""
import gzip
import json

import pytest

from ladder.config import load
from ladder.pipeline import run_ladder
from ladder.plan import build_plan
from ladder.status import read_status, rung_dir

WORDS = ("the river ran past an old mill where farmers brought grain each autumn and the miller kept "
         "careful accounts of every sack in a ledger bound with leather while his daughter counted coins").split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("c4")
    with gzip.open(root / "c4-train.00000-of-00001.json.gz", "wt") as f:
        for i in range(1500):
            text = " ".join(WORDS[(i * 7 + k * (1 + i % 5)) % len(WORDS)] for k in range(40 + i % 40))
            f.write(json.dumps({"text": text, "timestamp": "2019-04-25T12:57:54Z", "url": f"u{i}"}) + "\n")
    return root


def ladder_cfg(corpus, out_dir, *overrides):
    return load([
        "ladder=smoke", "ladder.sizes=[smoke-24,smoke-32,smoke-48]", "ladder.multipliers=[1,2]",
        "ladder.datasets=[c4]", "data=c4", f"data.path={corpus}", "data.val_tokens=4096",
        "ladder.tokenizer.train_vocab_size=300", f"ladder.tokenizer.train_path={corpus}",
        f"out_dir={out_dir}", "train.wandb.mode=disabled", "train.progress=false",
        "train.checkpoint_fractions=[0.5,1.0]", "eval.derived.n_examples=20", "eval.max_sequences=16",
        "fit.method=chinchilla", "fit.bootstrap=0", *overrides])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path / "cache"))


def test_run_trains_evaluates_fits_and_skips_finished_work(corpus, tmp_path, cache, capsys):
    cfg = ladder_cfg(corpus, tmp_path / "run", "ladder.targets=[{name: big, params: 1e6, tokens: 2e7}]")
    assert run_ladder(cfg) == 0
    plan = build_plan(cfg)
    for rung in plan.rungs:
        assert read_status(cfg.out_dir, rung).state == "done"
        records = [json.loads(line) for line in (rung_dir(cfg.out_dir, rung) / "results.jsonl").open()]
        steps = {r["step"] for r in records}
        assert len(steps) == 2 and max(steps) == rung.hp.steps  # both checkpoints, the last is final
        assert {"c4_val:loss", "derived:acc", "derived:bpb"} <= {r["metric"] for r in records}
        assert all(r["params"] == rung.params and r["run"] == rung.rung_id for r in records)
    report = tmp_path / "run" / "report"
    assert (report / "predictions.csv").exists() and (report / "report.html").exists()
    assert "big" in (report / "predictions.csv").read_text()
    assert "report:" in capsys.readouterr().out

    checkpoints = sorted((tmp_path / "run").glob("rungs/*/checkpoints/step-*"))
    mtimes = [c.stat().st_mtime_ns for c in checkpoints]
    assert run_ladder(cfg) == 0  # again: nothing is trained or evaluated twice
    assert [c.stat().st_mtime_ns for c in sorted((tmp_path / "run").glob("rungs/*/checkpoints/step-*"))] == mtimes
    assert "6 done, 0 running, 0 failed, 0 pending" in capsys.readouterr().out


def test_a_failing_rung_is_reported_and_the_rest_go_on(corpus, tmp_path, cache, capsys):
    # A spike threshold below 1 makes every rung "diverge" once its window fills: all fail, none stops the ladder.
    cfg = ladder_cfg(corpus, tmp_path / "run", "ladder.sizes=[smoke-24]", "train.divergence.spike_factor=0.5",
                     "train.divergence.window=2")
    assert run_ladder(cfg) == 1
    out = capsys.readouterr().out
    assert out.count("failed: ") == 2 and "0 done, 0 running, 2 failed" in out
    assert "fit: error:" in out  # no finished rung to fit: said plainly, not a traceback


def test_torchrun_workers_train_and_evaluate_a_rung(corpus, tmp_path, cache):
    from ladder.pipeline import run_rung

    cfg = ladder_cfg(corpus, tmp_path / "run", "ladder.sizes=[smoke-24]", "ladder.multipliers=[1]",
                     "train=ddp_cpu", "train.micro_batch_size=8", "train.wandb.mode=disabled", "train.progress=false",
                     "train.checkpoint_fractions=[1.0]")
    rung = build_plan(cfg).rungs[0]
    assert run_rung(cfg, rung.rung_id) == "done"
    directory = rung_dir(cfg.out_dir, rung)
    assert "world_size: 2" in (directory / "config.yaml").read_text()
    metrics = {json.loads(line)["metric"] for line in (directory / "results.jsonl").open()}
    assert {"c4_val:loss", "derived:acc"} <= metrics  # the workers' eval hook ran
