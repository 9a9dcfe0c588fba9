"""A ladder swept on a real single-node Slurm cluster (scripts/slurm/local_cluster.sh)."""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ladder.orchestration.pipeline import run_ladder
from ladder.core.layout import rung_dir
from ladder.core.plan import build_plan
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
    written = first.stat().st_mtime_ns
    job_id = next((tmp_path / "jobs").glob("*/*_submission.sh")).parent.name
    # What a preemption does: Slurm stops the job and queues it again.
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    sweep.join(timeout=600)
    assert codes == [0] and read_status(cfg.out_dir, rung).state == "done"
    assert first.stat().st_mtime_ns == written  # resumed from that checkpoint, not retrained
