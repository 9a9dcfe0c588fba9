"""A ladder swept on a real single-node Slurm cluster (scripts/slurm/local_cluster.sh)."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ladder.pipeline import run_ladder
from ladder.plan import build_plan
from ladder.status import read_status, rung_dir

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
        metrics = {json.loads(line)["metric"] for line in (rung_dir(cfg.out_dir, rung) / "results.jsonl").open()}
        assert "c4_val:loss" in metrics
    assert len(list((tmp_path / "jobs").glob("*/*_submission.sh"))) >= 1  # they really went through sbatch
    assert (Path(cfg.out_dir) / "report" / "report.html").exists()
    assert "6 done" in capsys.readouterr().out
