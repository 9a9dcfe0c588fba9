"""The node ladder and the local launcher's packing: jobs placed on a node's devices by a pure function of the
plan, one process per job with its own devices, locks and record; the node ladder end to end on 2 CPU "devices"."""
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from ladder.core.layout import rung_dir
from ladder.core.plan import build_plan
from ladder.orchestration.compose import load
from ladder.orchestration.node import describe, makespan, node_schedule, schedule
from ladder.orchestration.pipeline import run_ladder
from ladder.orchestration.status import read_status


def test_small_jobs_share_the_node_one_to_a_device_longest_first():
    placed = schedule({"a": 40, "b": 30, "c": 20, "d": 10}, {n: 1 for n in "abcd"}, devices=2)
    by_job = {p.job: p for p in placed}
    assert [(p.job, p.devices, p.start) for p in placed if p.start == 0] == [("a", (0,), 0), ("b", (1,), 0)]
    assert by_job["c"].devices == (1,) and by_job["c"].start == 30  # the device that comes free first
    assert by_job["d"].start == 40 and makespan(placed) == 50


def test_a_job_on_the_critical_path_gets_more_devices_and_one_that_needs_all_runs_alone():
    placed = schedule({"big": 800, "s1": 40, "s2": 30, "s3": 20}, {"big": 1, "s1": 1, "s2": 1, "s3": 1}, devices=8)
    big = next(p for p in placed if p.job == "big")
    assert big.devices == tuple(range(8)) and big.end == 100  # 800 device-seconds on all 8
    assert all(p.start >= big.end or p.end <= big.start for p in placed if p.job != "big")  # nothing beside it
    # Then the small ones, each widened while it ends last: 40 on 2 devices, 30 on 2, 20 on 1, all at once.
    assert {p.job: len(p.devices) for p in placed if p.job != "big"} == {"s1": 2, "s2": 2, "s3": 1}
    assert makespan(placed) == 120


def test_a_job_gets_at_least_the_devices_its_optimizer_state_needs():
    placed = schedule({"wide": 10, "small": 10}, {"wide": 3, "small": 1}, devices=8)
    assert len(next(p for p in placed if p.job == "wide").devices) == 4  # a power of two, at least 3


def test_the_node_ladder_fits_an_hour_on_eight_h100s():
    cfg = load(["ladder=node", "data.path=/nonexistent"])
    plan = build_plan(cfg)
    assert len({r.shape for r in plan.rungs}) == 5 and {r.multiplier for r in plan.rungs} == {5, 10, 20, 40}
    assert plan.rungs[0].shape.seq_len == 2048 and cfg.ladder.tokenizer.train_vocab_size == 32768
    assert 9e6 < min(r.params for r in plan.rungs) and max(r.params for r in plan.rungs) < 1.6e8
    placed = node_schedule(cfg, plan, plan.jobs, 8)
    assert {p.job for p in placed} == {j.name for j in plan.jobs}
    # training and evaluation at train/mfu.py's assumed MFU (13-27 % for these widths): about an hour
    assert 55 * 60 < makespan(placed) < 65 * 60
    assert sum(1 for p in placed if len(p.devices) < 8) >= 3  # the small sizes share the node
    printed = describe(cfg, plan)  # what `ladder plan` prints of it
    assert "packed (launcher=local)" in printed and "MFU 13%–27% each by width and sequence length" in printed


def _write_tasks(directory: Path):
    """Tiny RC task files in each task's HF schema, as scripts/fetch_tasks.py writes the real ones."""
    spec = importlib.util.spec_from_file_location("gpu_check", Path(__file__).parents[1] / "scripts" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    for name, path in gpu_check.write_tasks(directory, dict.fromkeys(gpu_check.SUITE, 8)).items():
        shutil.copy(path, directory / f"{name}-fewshot.jsonl")


@pytest.mark.slow  # about 3.5 min on 2 shared cores: two job processes, each training and evaluating 5-shot
def test_the_node_ladder_runs_two_rungs_at_once_on_two_devices(corpus, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LADDER_TASKS", str(tmp_path / "tasks"))
    (tmp_path / "tasks").mkdir()
    _write_tasks(tmp_path / "tasks")
    cfg = load(["ladder=node", f"data.path={corpus}", "launcher.devices=2", f"out_dir={tmp_path}/run",
                # tiny: two CPU sizes at M = 1, 2, 3 (small beside a job's start, so neither is worth both devices),
                # 128-token sequences, a 300-token BPE of the test corpus
                "ladder.sizes=[smoke-24,smoke-32]", "ladder.multipliers=[1,2,3]", "ladder.convention=non_embedding",
                "ladder.tokenizer.train_vocab_size=300", "ladder.recipe=smoke", "data.val_tokens=4096",
                "train=cpu", "train.wandb.mode=disabled", "train.progress=false", "train.checkpoint_fractions=[1.0]",
                "eval.tasks=[hellaswag,mmlu]", "eval.max_examples=4", "eval.max_sequences=8", "eval.batch_size=8",
                "fit=default", "fit.method=chinchilla", "fit.bootstrap=0"])
    plan = build_plan(cfg)
    assert len(plan.jobs) == 2 and len({p.devices for p in node_schedule(cfg, plan, plan.jobs, 2)}) == 2
    with caplog.at_level("INFO", logger="ladder.orchestration.node"):
        assert run_ladder(cfg) == 0
    started = [r.getMessage() for r in caplog.records if "starting on device" in r.getMessage()]
    assert sorted(m.split(" (")[0].split("device(s) ")[1] for m in started) == ["0", "1"]
    events = [m for r in caplog.records if (m := r.getMessage()).split(": ")[-1].startswith(("starting", "ended"))]
    assert [e.split(": ")[1].split(" ")[0] for e in events] == ["starting", "starting", "ended", "ended"]  # at once
    for job in plan.jobs:
        assert json.loads((job.directory(cfg.out_dir) / "record.json").read_text())["state"] == "done"
    pids = {json.loads((j.directory(cfg.out_dir) / "record.json").read_text())["pid"] for j in plan.jobs}
    assert len(pids) == 2  # one process per job
    for rung in plan.rungs:
        assert read_status(cfg.out_dir, rung).state == "done"
        metrics = {json.loads(line)["metric"] for line in (rung_dir(cfg.out_dir, rung.rung_id) / "results.jsonl").open()}
        assert {"c4_val:loss", "hellaswag:acc", "mmlu:acc"} <= metrics
    assert (Path(cfg.out_dir) / "report" / "report.html").exists()


def _on_two_gpus(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_packing_onto_more_gpus_than_this_process_sees_is_refused(monkeypatch, tmp_path):
    from ladder.core.configs import ConfigError
    from ladder.orchestration.node import run_packed
    _on_two_gpus(monkeypatch)
    cfg = load(["ladder=smoke", "train=gpu", "launcher.devices=4", f"out_dir={tmp_path}/run"])
    plan = build_plan(cfg)
    with pytest.raises(ConfigError, match=r"^launcher.devices=4: this process sees 2 GPU\(s\)"):
        run_packed(cfg, plan, plan.jobs, False, 4)
    assert not (tmp_path / "run").exists()


def test_a_job_packed_onto_gpus_trains_one_rank_per_gpu_it_was_given(monkeypatch, tmp_path):
    """Whatever train.num_processes says: a job on 2 GPUs with 1 process would leave one idle, 8 processes on
    one GPU would fail in NCCL."""
    import subprocess

    from ladder.orchestration import node
    _on_two_gpus(monkeypatch)
    started = []

    class Ended:  # a job process that has already finished, successfully
        returncode = 0

        def __init__(self, command, **kwargs):
            started.append((command, kwargs["env"]["CUDA_VISIBLE_DEVICES"]))

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", Ended)
    cfg = load(["ladder=smoke", "train=gpu", "train.num_processes=8", "launcher.devices=2", f"out_dir={tmp_path}/run"])
    plan = build_plan(cfg)
    assert node.run_packed(cfg, plan, plan.jobs, False, 2) == ({}, [])
    for command, visible in started:
        assert command[command.index("--processes") + 1] == str(len(visible.split(",")))
    assert len(started) == len(plan.jobs)
