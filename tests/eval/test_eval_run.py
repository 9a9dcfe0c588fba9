"""Checkpoint → results.jsonl records: fields, idempotent writes, `ladder eval` modes, the training hook."""
from pathlib import Path

import numpy as np
import pytest
import torch

from eval.checkpoints import CheckpointError, find_checkpoints, load_checkpoint
from eval.cli import main, make_eval_hook, rung_info
from eval.config import EvalConfig
from eval.metrics import ACCURACIES, METRICS
from eval.run import LMSet, eval_device, eval_dtype, evaluate_checkpoint, read_results, write_results
from eval.tasks import Example
from eval_helpers import RUNG, config


def test_checkpoint_records_follow_the_results_format(ladder_dir, tokenizer):
    rung = rung_info(ladder_dir / "rungs" / RUNG)
    seqs = [np.arange(1, 30) % len(tokenizer), np.arange(5, 40) % len(tokenizer)]
    tasks = {"toy": [Example("The river runs", (" past the mill", " on Tuesday"), 0)] * 3}
    ckpt = ladder_dir / "rungs" / RUNG / "checkpoints" / "step-00000020"
    records = evaluate_checkpoint(ckpt, lm_sets={"c4": LMSet(seqs)}, tasks=tasks, cfg=EvalConfig(), rung=rung)
    metrics = {r["metric"] for r in records}
    assert metrics == {"c4_val:loss", "c4_val:bpb"} | {f"toy:{m}" for m in METRICS}
    r = records[0]
    assert {k: r[k] for k in ("run", "size", "dataset", "multiplier", "step")} == {
        "run": RUNG, "size": "smoke-24", "dataset": "smoke", "multiplier": 5.0, "step": 20}
    assert r["tokens"] == 20 * rung.tokens_per_step and r["final"] is False and r["params"] > 0
    assert r["run_tokens"] == round(5 * r["params"])


def test_write_results_is_idempotent_and_leaves_no_temporary_file(tmp_path):
    records = [{"run": "r", "step": s, "metric": m, "value": 1.0} for s in (1, 2) for m in ("a:acc", "b:acc")]
    assert write_results(tmp_path, records[:3]) == 3
    assert write_results(tmp_path, records) == 1
    assert write_results(tmp_path, records) == 0
    assert len(read_results(tmp_path)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl", "results.jsonl.lock"]


def test_ladder_eval_all_rungs_skips_incomplete_checkpoints_and_reruns_add_nothing(ladder_dir, caplog):
    cfg = config(ladder_dir)
    assert main(cfg) == 0
    assert "skipping incomplete checkpoint" in caplog.text and "step-00000030" in caplog.text
    results = read_results(ladder_dir / "rungs" / RUNG)
    assert {r["step"] for r in results} == {10, 20}
    assert {r["metric"] for r in results} == {f"derived:{m}" for m in METRICS}
    # each accuracy carries the task's chance level (three choices here), for the fit to read
    assert {r["metric"]: r.get("chance") for r in results} == {
        **{f"derived:{m}": 1 / 3 for m in ACCURACIES}, "derived:bpb": None, "derived:gold_prob": None}
    assert main(config(ladder_dir, f"eval.rung={RUNG}")) == 0
    assert read_results(ladder_dir / "rungs" / RUNG) == results


def test_ladder_eval_one_checkpoint_and_bad_targets(ladder_dir, capsys):
    ckpt = ladder_dir / "rungs" / RUNG / "checkpoints"
    assert main(config(ladder_dir, f"eval.checkpoint={ckpt / 'step-00000010'}")) == 0
    assert {r["step"] for r in read_results(ladder_dir / "rungs" / RUNG)} == {10}
    assert main(config(ladder_dir, f"eval.checkpoint={ckpt / 'step-00000030'}")) == 2
    assert "step-00000030 is incomplete: missing config.json" in capsys.readouterr().err
    assert main(config(ladder_dir, "eval.rung=nope")) == 2
    assert main(config(ladder_dir, "eval.derived.docs=null")) == 2
    assert "eval.derived.docs" in capsys.readouterr().err


def test_a_linked_checkpoint_is_recorded_in_the_rung_it_was_named_through(ladder_dir):
    """A WSD-S rung's checkpoints are links into its trunk's directory; naming one evaluates it for the rung."""
    ckpt = ladder_dir / "rungs" / RUNG / "checkpoints" / "step-00000010"
    trunk = ladder_dir / "trunks" / "trunk" / "checkpoints"
    trunk.mkdir(parents=True)
    ckpt.rename(trunk / ckpt.name)
    ckpt.symlink_to(Path("../../../trunks/trunk/checkpoints") / ckpt.name)
    assert main(config(ladder_dir, f"eval.checkpoint={ckpt}")) == 0
    assert {r["step"] for r in read_results(ladder_dir / "rungs" / RUNG)} == {10}
    assert not list((ladder_dir / "trunks").glob("*/results.jsonl"))


def test_incomplete_checkpoints_name_what_is_missing(ladder_dir):
    ckpt = ladder_dir / "rungs" / RUNG / "checkpoints" / "step-00000010"
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing model.safetensors or pytorch_model.bin"):
        load_checkpoint(ckpt)
    (ckpt / "tokenizer.json").unlink()
    (ckpt / "tokenizer_config.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer"):
        load_checkpoint(ckpt)
    assert [p.name for p in find_checkpoints(ladder_dir / "rungs" / RUNG)] == [
        "step-00000010", "step-00000020", "step-00000030"]


def test_training_hook_writes_each_checkpoint_once_with_lm_sets(ladder_dir, tokenizer, model, monkeypatch):
    class TokenSequences:  # the data stage's reader, faked: 3 sequences of 16 tokens
        def __init__(self, path):
            self.seq_len = 16

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return (np.arange(16, dtype=np.int64) * (i + 3)) % len(tokenizer)

    import eval.cli
    monkeypatch.setattr(eval.cli, "TokenSequences", TokenSequences)
    (ladder_dir / "val").mkdir()
    cfg = config(ladder_dir, f"+eval.lm_sets.smoke={ladder_dir / 'val'}", "eval.tasks=[]")
    hook = make_eval_hook(cfg, ladder_dir / "rungs" / RUNG)
    ckpt = ladder_dir / "rungs" / RUNG / "checkpoints" / "step-00000010"
    hook(ckpt, 10, model)
    hook(ckpt, 10, model)
    results = read_results(ladder_dir / "rungs" / RUNG)
    assert sorted(r["metric"] for r in results) == ["smoke_val:bpb", "smoke_val:loss"]
    assert all(np.isfinite(r["value"]) for r in results)


def test_training_hook_tokenizes_each_task_once_per_rung(ladder_dir, model, monkeypatch):
    import eval.run

    calls = []
    real = eval.run.encode_groups
    monkeypatch.setattr(eval.run, "encode_groups", lambda *a: calls.append(len(a[1])) or real(*a))
    hook = make_eval_hook(config(ladder_dir, "eval.tasks=[derived]"), ladder_dir / "rungs" / RUNG)
    for step in (10, 20):
        hook(ladder_dir / "rungs" / RUNG / "checkpoints" / f"step-{step:08d}", step, model)
    assert len(calls) == 1  # the derived task's requests, tokenized at the first checkpoint only
    results = read_results(ladder_dir / "rungs" / RUNG)
    assert {(r["step"], r["chance"]) for r in results if r["metric"] == "derived:acc"} == {(10, 1 / 3), (20, 1 / 3)}


def test_truncated_contexts_are_recorded_on_the_records(ladder_dir, make_model, tmp_path):
    model = make_model(seq_len=16)
    ckpt = tmp_path / "step-00000005"
    model.save_pretrained(ckpt)
    tokenizer_dir = ladder_dir / "rungs" / RUNG / "checkpoints" / "step-00000010"
    cfg = EvalConfig(tokenizer=str(tokenizer_dir))
    rung = rung_info(ladder_dir / "rungs" / RUNG)
    long = Example("The river runs past the old mill and the children watch the boats go by " * 2, (" a", " b"), 0)
    records = evaluate_checkpoint(ckpt, lm_sets={}, tasks={"long": [long]}, cfg=cfg, rung=rung)
    assert all("1 of 1 contexts truncated" in r["warnings"][0] for r in records)


def test_auto_device_and_precision_follow_the_hardware():
    assert eval_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert eval_dtype("auto", torch.device("cpu")) is None and eval_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert eval_dtype("bf16", torch.device("cpu")) == torch.bfloat16 and eval_dtype("fp32", torch.device("cuda")) is None
