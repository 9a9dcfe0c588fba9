"""Evaluation where the model is: the training loop's live model, sharded over its processes.

In fp32 the in-loop figures equal `ladder eval` of the saved checkpoints, and a sharded evaluation
equals a one-process one (the last two are slow: torchrun launches). Both hold to rel 1e-5: each score depends on its own request only, but
batches of other compositions round differently in fp32 (eval/scoring.py checks 1e-5 per score).
"""
import json
from pathlib import Path

import pytest

from eval.checkpoints import load_checkpoint
from eval.cli import main, open_lm_sets, prepare_tasks
from eval.run import evaluate_model, read_results
from ladder.core.layout import rung_dir
from ladder.core.plan import build_plan
from ladder.orchestration.rung import run_job, with_heldout
from train.model import build_model

TOLERANCE = dict(rel=1e-5, abs=1e-7)
ONE_RUNG = ("ladder.sizes=[smoke-24]", "ladder.multipliers=[1]")


def heldout(cfg):
    """The config `ladder eval` evaluates with: eval pointed at the ladder's held-out splits."""
    plan = build_plan(cfg)
    return with_heldout(cfg, plan, plan.rungs[0].shape.seq_len)


def results(directory: Path) -> dict:
    return {(r["step"], r["metric"]): r["value"] for r in read_results(directory)}


def assert_same(a: dict, b: dict) -> None:
    assert a and sorted(a) == sorted(b)
    assert [a[k] for k in sorted(a)] == pytest.approx([b[k] for k in sorted(a)], **TOLERANCE)


@pytest.fixture
def torchrun(launch_eval):
    def run(cfg, *args) -> None:
        proc = launch_eval(cfg, *args)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return run


def test_in_loop_eval_equals_ladder_eval_of_the_saved_checkpoints(tiny_ladder):
    cfg = tiny_ladder(*ONE_RUNG)
    rung = build_plan(cfg).rungs[0]
    assert run_job(cfg, rung.rung_id) == "done"
    directory = rung_dir(cfg.out_dir, rung.rung_id)
    in_loop = results(directory)
    assert len({step for step, _ in in_loop}) == 2  # both checkpoints
    (directory / "results.jsonl").unlink()
    (directory.parent / "smoke-24-smoke-M9").mkdir()  # a rung whose training has not begun: no config.yaml
    assert main(heldout(cfg)) == 0  # `ladder eval`: every checkpoint reloaded from disk
    assert_same(results(directory), in_loop)


@pytest.mark.slow  # ~1 min: two torchrun launches (tests/test_pipeline.py runs the sharded in-loop path by default)
def test_two_process_training_evaluates_sharded_like_one_process_ladder_eval(tiny_ladder, torchrun):
    # DDP over 2 gloo processes; 3 examples per forward, so the ranks' shares split into uneven batches.
    cfg = tiny_ladder(*ONE_RUNG, "train=ddp_cpu", "train.micro_batch_size=8", "train.wandb.mode=disabled",
                      "train.progress=false", "eval.batch_size=3")
    rung = build_plan(cfg).rungs[0]
    assert run_job(cfg, rung.rung_id) == "done"
    directory = rung_dir(cfg.out_dir, rung.rung_id)
    assert "world_size: 2" in (directory / "config.yaml").read_text()
    in_loop = results(directory)
    (directory / "results.jsonl").unlink()
    assert main(heldout(cfg)) == 0
    one_process = results(directory)
    assert_same(in_loop, one_process)
    (directory / "results.jsonl").unlink()
    torchrun(heldout(cfg), "ladder-eval")  # `ladder eval` on 2 processes
    assert_same(results(directory), one_process)


@pytest.mark.slow
def test_lockstep_pads_every_rank_to_the_same_forwards_and_changes_no_score(tiny_ladder, tmp_path, torchrun):
    """What FSDP and ZeRO-3 need: 11 sequences one per forward split 6 + 5, and rank 1 runs one padding forward."""
    cfg = heldout(tiny_ladder(*ONE_RUNG, "eval.batch_size=1", "eval.max_sequences=11", "eval.derived.n_examples=6"))
    rung = build_plan(cfg).rungs[0]
    checkpoint = tmp_path / "step-00000001"
    build_model(rung.shape, seed=0).save_pretrained(checkpoint)
    cfg.eval.checkpoint = str(checkpoint)
    model, tokenizer = load_checkpoint(checkpoint, Path(cfg.eval.tokenizer))
    one_process = evaluate_model(model, tokenizer, lm_sets=open_lm_sets(cfg), tasks=prepare_tasks(cfg), batch_size=1)
    torchrun(cfg, "lockstep", str(tmp_path))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # LM loss: 6 forwards on rank 0, 5 and a padding one on rank 1. RC: 6 examples and their 6 PMI
    # groups, 6 groups a rank, one forward each for the prefix and one more where a continuation is
    # longer than a token (eval.scoring): how many depends on the tokenizer, the same on both ranks.
    assert ranks[0]["forwards"] == ranks[1]["forwards"] >= 6 + 6
    for rank in ranks:
        assert [name for name, _, _ in rank["results"]] == [name for name, _, _ in one_process]
        assert [value for _, value, _ in rank["results"]] == pytest.approx(
            [value for _, value, _ in one_process], **TOLERANCE)


@pytest.mark.slow
@pytest.mark.parametrize("train", ["train=deepspeed_zero3", "train=fsdp"])
def test_sharded_training_evaluates_its_sharded_parameters_in_lockstep_like_ladder_eval(tiny_ladder, train):
    cfg = tiny_ladder(*ONE_RUNG, train, "train.device=cpu", "train.precision=fp32", "train.compile=false",
                      "train.num_processes=2", "train.micro_batch_size=8", "train.wandb.mode=disabled",
                      "train.progress=false", "eval.batch_size=3")
    rung = build_plan(cfg).rungs[0]
    assert run_job(cfg, rung.rung_id) == "done"
    directory = rung_dir(cfg.out_dir, rung.rung_id)
    in_loop = results(directory)
    (directory / "results.jsonl").unlink()
    assert main(heldout(cfg)) == 0
    assert_same(in_loop, results(directory))
