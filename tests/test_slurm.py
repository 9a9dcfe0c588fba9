"""A ladder swept on a real single-node Slurm cluster (scripts/slurm/local_cluster.sh)."""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from ladder.core.layout import rung_dir
from ladder.core.plan import build_plan
from ladder.orchestration.pipeline import run_ladder
from ladder.orchestration.rung import run_job
from ladder.orchestration.status import read_status

CLUSTER = Path(__file__).resolve().parents[1] / "scripts" / "slurm" / "local_cluster.sh"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("slurmctld", "slurmd", "munged")),
                       reason="Slurm is not installed (apt-get install slurm-wlm munge)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the local Slurm cluster runs its daemons as root"),
]


@pytest.fixture
def slurm(tmp_path, monkeypatch):
    state = tmp_path / "slurm"
    subprocess.run([str(CLUSTER), "start", str(state)], check=True, timeout=120)
    monkeypatch.setenv("SLURM_CONF", str(state / "slurm.conf"))
    try:
        yield state
    finally:
        subprocess.run([str(CLUSTER), "stop", str(state)], check=True, timeout=60)
        assert not list(state.glob("*.pid"))  # every daemon it started is gone


def test_ladder_sweeps_as_slurm_jobs_then_fits(slurm, tiny_ladder, tmp_path, capsys):
    cfg = tiny_ladder("launcher=slurm_cpu", f"launcher.folder={tmp_path}/jobs",
                      "ladder.targets=[{name: big, params: 1e6, tokens: 2e7}]")
    assert run_ladder(cfg) == 0
    plan = build_plan(cfg)
    for rung in plan.rungs:
        assert read_status(cfg.out_dir, rung).state == "done"
        metrics = {json.loads(line)["metric"] for line in (rung_dir(cfg.out_dir, rung.rung_id) / "results.jsonl").open()}
        assert "c4_val:loss" in metrics
    assert len(list((tmp_path / "jobs").glob("*/*_submission.sh"))) >= 1  # they really went through sbatch
    assert (Path(cfg.out_dir) / "report" / "report.html").exists()
    assert "6 done" in capsys.readouterr().out


def test_a_requeued_job_resumes_its_rung(slurm, tiny_ladder, tmp_path):
    import threading

    cfg = tiny_ladder("launcher=slurm_cpu", f"launcher.folder={tmp_path}/jobs", "ladder.sizes=[smoke-48]",
                      "ladder.multipliers=[2]", "train.checkpoint_fractions=[0.25,0.5,0.75,1.0]")
    rung = build_plan(cfg).rungs[0]
    codes = []
    sweep = threading.Thread(target=lambda: codes.append(run_ladder(cfg, fit=False)))
    sweep.start()
    checkpoints = rung_dir(cfg.out_dir, rung.rung_id) / "checkpoints"
    while not list(checkpoints.glob("step-*")) and sweep.is_alive():
        time.sleep(0.1)
    first = sorted(checkpoints.glob("step-*"))[0]
    written = _weights_written(first)
    job_id = next((tmp_path / "jobs").glob("*/*_submission.sh")).parent.name
    # What a preemption does: Slurm stops the job and queues it again.
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    sweep.join(timeout=600)
    assert codes == [0] and read_status(cfg.out_dir, rung).state == "done"
    assert _weights_written(first) == written  # resumed from that checkpoint, not retrained


def _weights_written(checkpoint: Path) -> dict:
    """When each of a checkpoint's weight files was written. Not the directory's own time, nor its files.json:
    the resume state lands after the weights (written off the training loop, train/checkpoint.py) and is removed
    once a newer checkpoint lands, and each time its manifest is rewritten; the weights are not."""
    return {p.name: p.stat().st_mtime_ns for p in checkpoint.iterdir() if p.is_file() and p.name != "files.json"}


def _by_step(directory: Path) -> dict:
    """The last logged training loss of every step (a requeued run logs the steps after its checkpoint again)."""
    return {m["step"]: m["loss"] for m in map(json.loads, (directory / "metrics.jsonl").read_text().splitlines())}


def test_a_two_task_job_trains_evaluates_and_requeues_like_one_process(slurm, tiny_ladder, tmp_path):
    """One rung as one Slurm job of 2 tasks (DDP over gloo, evaluation sharded over both), preempted
    after its first checkpoint: the same checkpoints, losses and evaluation as the rung in one process."""
    import threading

    rung_args = ("ladder.sizes=[smoke-32]", "ladder.multipliers=[2]", "train=ddp_cpu", "train.wandb.mode=disabled",
                 "train.progress=false", "train.checkpoint_fractions=[0.25,0.5,0.75,1.0]", "eval.batch_size=3")
    reference = tiny_ladder(*rung_args, "train.num_processes=1", f"out_dir={tmp_path}/reference")
    rung = build_plan(reference).rungs[0]
    assert run_job(reference, rung.rung_id) == "done"
    cfg = tiny_ladder(*rung_args, "launcher=slurm_cpu", "launcher.cpu_tasks=2", f"launcher.folder={tmp_path}/jobs")
    codes = []
    sweep = threading.Thread(target=lambda: codes.append(run_ladder(cfg, fit=False)))
    sweep.start()
    directory = rung_dir(cfg.out_dir, rung.rung_id)
    while not list((directory / "checkpoints").glob("step-*")) and sweep.is_alive():
        time.sleep(0.1)
    first = sorted((directory / "checkpoints").glob("step-*"))[0]
    written = _weights_written(first)
    job_id = next((tmp_path / "jobs").glob("*/*_submission.sh")).parent.name
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    sweep.join(timeout=900)
    assert codes == [0] and read_status(cfg.out_dir, rung).state == "done"
    assert _weights_written(first) == written  # resumed from it, not retrained
    assert "#SBATCH --ntasks-per-node=2" in next((tmp_path / "jobs").glob("*/*_submission.sh")).read_text()
    assert "world_size: 2" in (directory / "config.yaml").read_text()

    one = rung_dir(reference.out_dir, rung.rung_id)
    assert [p.name for p in sorted((directory / "checkpoints").glob("step-*"))] == \
        [p.name for p in sorted((one / "checkpoints").glob("step-*"))]
    two_losses, one_losses = _by_step(directory), _by_step(one)
    assert sorted(two_losses) == sorted(one_losses)
    assert [two_losses[s] for s in sorted(one_losses)] == pytest.approx([one_losses[s] for s in sorted(one_losses)],
                                                                      rel=1e-4)  # DDP's sums round differently
    two_results = [json.loads(line) for line in (directory / "results.jsonl").open()]
    one_results = {(r["step"], r["metric"]): r["value"] for r in map(json.loads, (one / "results.jsonl").open())}
    assert len(two_results) == len(one_results)  # every checkpoint evaluated once, none twice after the requeue
    assert {(r["step"], r["metric"]) for r in two_results} == set(one_results)
    for r in two_results:
        if r["metric"].endswith(("_val:loss", "_val:bpb")):
            assert r["value"] == pytest.approx(one_results[r["step"], r["metric"]], rel=1e-3)


def test_prepare_tokenizes_text_as_slurm_array_tasks(slurm, corpus, tmp_path, monkeypatch):
    """`ladder prepare launcher=slurm`: one array task per source file fills the token store; the splits are
    those a local prepare cuts from the same files."""
    import gzip

    from ladder.core.shards import TokenSequences
    from ladder.orchestration.cli import main

    lines = gzip.open(next(corpus.glob("*.json.gz")), "rt").read().splitlines(keepends=True)
    files = tmp_path / "files"
    files.mkdir()
    for k in range(3):
        with gzip.open(files / f"c4-train.{k:05d}-of-00003.json.gz", "wt") as f:
            f.writelines(lines[k * 500:(k + 1) * 500])
    overrides = ["ladder=smoke", "ladder.datasets=[c4]", "data=c4", f"data.path={files}", "data.val_tokens=4096",
                 "ladder.tokenizer.train_vocab_size=300", f"ladder.tokenizer.train_path={files}"]
    splits = {}
    for where in ("slurm", "local"):
        monkeypatch.setenv("LADDER_CACHE", str(tmp_path / where))
        launcher = ["launcher=slurm_cpu", f"launcher.folder={tmp_path}/jobs"] if where == "slurm" else []
        assert main(["prepare", *overrides, *launcher]) == 0
        (manifest,) = (tmp_path / where).glob("tokens/*/train/manifest.json")
        splits[where] = TokenSequences(manifest.parent).read(0, TokenSequences(manifest.parent).available)
    submitted = list((tmp_path / "jobs").glob("*/*_submission.sh"))
    assert len(submitted) == 1 and "--array=0-2" in submitted[0].read_text()  # one task per file
    assert len(list((tmp_path / "slurm").glob("stores/*/unit-*.json"))) == 3
    assert np.array_equal(splits["slurm"], splits["local"])
