"""The job file (ladder.core.jobfile): a job handed to another process by its file, never found by name in a plan
built again."""
import json

import pytest

from ladder.core.configs import ConfigError
from ladder.core.jobfile import read_job_file, write_job_file
from ladder.core.layout import CONFIGS, JOB
from ladder.core.plan import build_plan
from ladder.orchestration.compose import load


@pytest.mark.parametrize("schedule", ["cosine", "wsds", "branch"])
def test_a_job_file_gives_back_the_job_its_plan_part_and_its_config(schedule, tmp_path):
    cfg = load(["ladder=smoke", f"ladder.lr_schedule={schedule}", f"out_dir={tmp_path}/run"])
    plan = build_plan(cfg)
    for job in plan.jobs:
        write_job_file(job.directory(cfg.out_dir), cfg, plan, job, evaluate=False, rung=job.rungs[-1].rung_id)
        spec = read_job_file(job.directory(cfg.out_dir))
        assert spec.job == job and spec.job.follow_ups == job.follow_ups  # every run, curve and rung of it
        assert spec.config == cfg and not spec.evaluate and spec.rung == job.rungs[-1].rung_id
        assert spec.plan.jobs == [job] and spec.plan.lr_schedule == plan.lr_schedule
        assert spec.plan.rungs == [r for r in plan.rungs if r.shape.seq_len == job.run.shape.seq_len]
    # The config is stored once in the out_dir, however many jobs name it; a job file holds no copy of it.
    assert len(list((tmp_path / "run" / CONFIGS).glob("*.yaml"))) == 1
    assert "ladder" not in json.loads((plan.jobs[0].directory(cfg.out_dir) / JOB).read_text())


def test_a_missing_or_changed_job_file_is_one_line_naming_it(tmp_path):
    cfg = load(["ladder=smoke", f"out_dir={tmp_path}/run"])
    plan = build_plan(cfg)
    job = plan.jobs[0]
    directory = job.directory(cfg.out_dir)
    with pytest.raises(ConfigError, match=rf"^no {directory / JOB}: "):
        read_job_file(directory)
    write_job_file(directory, cfg, plan, job, evaluate=True)
    config_file = next((tmp_path / "run" / CONFIGS).glob("*.yaml"))
    config_file.write_text(config_file.read_text().replace("seed: 0", "seed: 1", 1))
    with pytest.raises(ConfigError, match=rf"^{directory / JOB}: its config {config_file} was changed"):
        read_job_file(directory)
    (directory / JOB).write_text("{")
    with pytest.raises(ConfigError, match=rf"^{directory / JOB}: not a job file"):
        read_job_file(directory)


def _no_plans(monkeypatch):
    """build_plan refused wherever a job's process could reach it."""
    import ladder.core.plan as plan_module
    from ladder.orchestration import publish, rung

    def refused(cfg):
        raise AssertionError("a job's process built the plan")

    for module in (plan_module, rung):
        monkeypatch.setattr(module, "build_plan", refused)
    assert not hasattr(publish, "build_plan")


def test_a_packed_job_a_slurm_job_and_a_workers_hook_run_from_the_job_file_without_a_plan(finished, monkeypatch):
    """`python -m ladder.orchestration.node JOB_DIR` (here in this process) and a Slurm job (`LadderJob`, inside a
    one-task allocation) run their job, its identity checked against the directory's, from the job file alone; a
    torchrun worker's eval hook is made from it too."""
    import submitit

    from ladder.orchestration import node, publish, slurm

    cfg = load(finished)
    plan = build_plan(cfg)
    (job,) = plan.jobs  # one size under wsds: its trunk
    directory = write_job_file(job.directory(cfg.out_dir), cfg, plan, job, evaluate=True).parent
    _no_plans(monkeypatch)
    assert node.main([str(directory)]) == 0  # done: the finished trunk resumed at its end, every rung evaluated
    assert callable(publish.worker_hook(directory))
    monkeypatch.setattr(submitit, "JobEnvironment", lambda: type("OneTask", (), {"num_tasks": 1})())
    assert slurm.LadderJob()(str(directory)) == "done"
