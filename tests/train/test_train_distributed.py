"""Multi-process training on this CPU: DDP (gloo) through accelerate, DeepSpeed ZeRO through its engine.

Workers are started the way users start them, `torchrun ... -m train.worker --run-dir DIR`.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM

from train.config import TrainConfig, WandbConfig
from train.loop import train_run
from train.rundir import read_record, write_record
from train.worker import launch_command, write_launch
from train_fakes import sequences_for, tiny_run

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def config(**overrides) -> TrainConfig:
    base = dict(micro_batch_size=2, checkpoint_fractions=[0.5, 1.0], progress=False, wandb=WandbConfig(mode="disabled"))
    return TrainConfig(**{**base, **overrides})


ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)]), "OMP_NUM_THREADS": "1"}


def launch(run_dir: Path, rung, cfg: TrainConfig, processes: int = 2, timeout: int = 600):
    seqs = sequences_for(rung)
    write_launch(run_dir, rung, cfg, data="train_fakes:FakeSequences",
                 data_kwargs={"count": len(seqs), "seq_len": rung.shape.seq_len, "vocab_size": rung.shape.vocab_size})
    proc = subprocess.run(launch_command(run_dir, processes), env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return read_record(run_dir)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def final_weights(run_dir: Path, steps: int) -> dict:
    return AutoModelForCausalLM.from_pretrained(run_dir / f"checkpoints/step-{steps:08d}").state_dict()


def assert_same_training(a: Path, b: Path, steps: int):
    assert [m["loss"] for m in metrics(a)] == pytest.approx([m["loss"] for m in metrics(b)], rel=1e-4)
    wa, wb = final_weights(a, steps), final_weights(b, steps)
    assert all(torch.allclose(wa[k], wb[k], rtol=1e-3, atol=1e-5) for k in wa)


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """The reference: one process, the same global batch, accumulating over micro-batches."""
    rung = tiny_run(steps=6)
    run_dir = tmp_path_factory.mktemp("one")
    assert train_run(rung, sequences_for(rung), run_dir, config()).state == "done"
    return rung, run_dir


def test_two_process_ddp_equals_one_process(single_process, tmp_path):
    rung, reference = single_process
    record = launch(tmp_path, rung, config())
    assert record["state"] == "done" and record["step"] == rung.hp.steps
    assert OmegaConf.load(tmp_path / "config.yaml").world_size == 2
    assert_same_training(tmp_path, reference, rung.hp.steps)


def test_two_process_fsdp_equals_one_process(single_process, tmp_path):
    rung, reference = single_process
    record = launch(tmp_path, rung, config(distributed="fsdp"))
    assert record["state"] == "done" and record["step"] == rung.hp.steps
    assert_same_training(tmp_path, reference, rung.hp.steps)


# Stage 2 stays in the default suite; 1 and 3 are slow. DeepSpeed compiles its CPU communication
# extension on its first start on a machine (~1-2 min, cached in ~/.cache/torch_extensions).
@pytest.mark.parametrize("stage", [pytest.param(1, marks=pytest.mark.slow), 2, pytest.param(3, marks=pytest.mark.slow)])
def test_two_process_deepspeed_zero_equals_one_process(single_process, tmp_path, stage):
    rung, reference = single_process
    record = launch(tmp_path, rung, config(backend="deepspeed", zero_stage=stage))
    assert record["state"] == "done"
    assert_same_training(tmp_path, reference, rung.hp.steps)


@pytest.mark.slow
def test_deepspeed_resume_equals_uninterrupted(single_process, tmp_path):
    rung, reference = single_process
    cfg = config(backend="deepspeed", zero_stage=2)
    launch(tmp_path, rung, cfg)
    # As if killed after the mid-run checkpoint: the final one gone, the record still running.
    shutil.rmtree(tmp_path / f"checkpoints/step-{rung.hp.steps:08d}")
    write_record(tmp_path, rung.name, "running", 3, rung.hp.steps, 0)
    assert launch(tmp_path, rung, cfg)["state"] == "done"
    assert_same_training(tmp_path, reference, rung.hp.steps)


def test_sigkilled_run_restarted_with_same_command_equals_uninterrupted(single_process, tmp_path):
    rung, reference = single_process
    # From global batch 4 on, each batch takes 1 s: time to kill the worker after checkpoint 3.
    write_launch(tmp_path, rung, config(), data="train_fakes:SlowFakeSequences",
                 data_kwargs={"count": len(sequences_for(rung)), "slow_from": 4, "delay_s": 1.0})
    command = [sys.executable, "-m", "train.worker", "--run-dir", str(tmp_path)]
    worker = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while (read_record(tmp_path) or {}).get("step", 0) < 3 and worker.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # the record moves to step 3 just after checkpoint 3 is committed
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert read_record(tmp_path)["state"] == "running" and read_record(tmp_path)["step"] == 3
    assert subprocess.run(command, env=ENV, capture_output=True, timeout=300).returncode == 0
    assert read_record(tmp_path)["state"] == "done"
    assert [m["loss"] for m in metrics(tmp_path)] == [m["loss"] for m in metrics(reference)]


@pytest.mark.slow  # bf16 on a CPU, four trainings
def test_one_precision_policy_on_every_backend(tmp_path):
    """bf16 compute over fp32 weights with fp32 gradient reduction everywhere: DDP, FSDP and ZeRO-2 on 2
    processes train the same losses as one process, to within bf16 rounding of the reduction order."""
    rung = tiny_run(steps=6)
    bf16 = config(precision="bf16")
    assert train_run(rung, sequences_for(rung), tmp_path / "one", bf16).state == "done"
    reference = [m["loss"] for m in metrics(tmp_path / "one")]
    for name, cfg in (("ddp", bf16), ("fsdp", config(precision="bf16", distributed="fsdp")),
                      ("zero2", config(precision="bf16", backend="deepspeed", zero_stage=2))):
        assert launch(tmp_path / name, rung, cfg)["state"] == "done"
        got = [m["loss"] for m in metrics(tmp_path / name)]
        print(name, max(abs(a - b) / b for a, b in zip(got, reference)))
        assert got == pytest.approx(reference, rel=2e-3), name


def test_a_worker_without_its_launch_file_says_what_writes_it(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "train.worker", "--run-dir", str(tmp_path)], env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"train.worker: error: no {tmp_path / 'launch.json'}: `ladder train` writes it for a job it trains on several "
        "processes (e.g. train=ddp_cpu, or one per GPU); run that first, or give the run directory it trained")


def test_two_processes_train_on_while_each_writes_its_part_of_the_state_and_resume_bit_for_bit(tmp_path):
    """DDP on 2 gloo processes, checkpoints at steps 4 and 8: every process's part of the optimizer state of step
    4 is written only once training has asked for step 7's batch (so the loop did not wait for it); a run stopped
    at step 7 with that state still in flight puts it in place on its way out, and resumed from it, trains
    steps 5-8 bit for bit as the run that was never stopped."""
    rung, cfg = tiny_run(steps=8), config()
    count = len(sequences_for(rung))

    def start(run_dir: Path, **gate) -> subprocess.CompletedProcess:
        write_launch(run_dir, rung, cfg, data="train_fakes:GatedStateSequences",
                     data_kwargs={"count": count, "gate": str(run_dir / "gate"), **gate})
        return subprocess.run(launch_command(run_dir, 2), env=ENV, capture_output=True, text=True, timeout=600)

    straight = start(tmp_path / "straight", release_at=7)
    assert straight.returncode == 0, straight.stderr[-4000:]
    for rank in (0, 1):  # each process wrote its own part, released by training, the state of each checkpoint
        assert (tmp_path / f"straight/gate.rank{rank}").read_text().split("\n")[:2] == [
            "released step-00000004", "released step-00000008"]

    stopped = start(tmp_path / "stopped", release_at=6, crash_at=7)
    assert stopped.returncode != 0 and read_record(tmp_path / "stopped")["state"] == "interrupted"
    step_4 = tmp_path / "stopped/checkpoints/step-00000004"
    assert (step_4 / "state").is_dir() and not (step_4 / ".tmp-state").exists()
    assert sorted(p.name for p in (step_4 / "state/optimizer").glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    assert launch(tmp_path / "stopped", rung, cfg)["state"] == "done"  # resumed (plain data, nothing held back)
    resumed, whole = metrics(tmp_path / "stopped"), metrics(tmp_path / "straight")
    assert [(m["step"], m["loss"], m["grad_norm"]) for m in resumed] == [
        (m["step"], m["loss"], m["grad_norm"]) for m in whole]
    a, b = final_weights(tmp_path / "stopped", 8), final_weights(tmp_path / "straight", 8)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_ladder_worker_without_its_job_file_is_one_line(tmp_path):
    """A ladder job's workers evaluate as the job file says; without it they refuse in one line (not a traceback),
    pointing at train.worker for training alone."""
    (tmp_path / "launch.json").write_text("{}")
    proc = subprocess.run([sys.executable, "-m", "ladder.orchestration.worker", "--run-dir", str(tmp_path)], env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"ladder.orchestration.worker: error: no {tmp_path / 'job.yaml'}" in proc.stderr
