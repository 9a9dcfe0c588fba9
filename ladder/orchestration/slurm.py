"""Sweeps on Slurm: one submitit job per rung, sized per rung, requeued on preemption.

submitit is used directly rather than through Hydra's submitit launcher because a Hydra sweep
shares one set of launcher parameters, while each rung needs its own nodes, GPUs and time.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import submitit
from omegaconf import DictConfig, OmegaConf

from ladder.core.plan import Rung, build_plan
from ladder.orchestration.resources import Resources, eval_compute, job_extra_flops, resources_for
from ladder.orchestration.rung import run_rung

log = logging.getLogger(__name__)


class RungJob(submitit.helpers.Checkpointable):
    """Runs one rung inside its allocation; on preemption or time-out Slurm requeues it, and the
    rung resumes from its last checkpoint because training always does."""

    def __call__(self, config_yaml: str, rung_id: str) -> str:
        env = submitit.JobEnvironment()
        if env.num_tasks > 1:  # one task per GPU: expose torchrun's variables to accelerate/DeepSpeed
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return run_rung(OmegaConf.create(config_yaml), rung_id)


def _executor(cfg: DictConfig, resources: Resources) -> submitit.AutoExecutor:
    launcher = cfg.launcher
    executor = submitit.AutoExecutor(folder=Path(launcher.folder) / "%j", cluster="slurm")
    extra = {key: launcher[key] for key in ("account", "qos", "constraint") if launcher[key]}
    executor.update_parameters(
        name=f"ladder-{cfg.ladder.name}",
        nodes=resources.nodes,
        tasks_per_node=resources.tasks_per_node,
        gpus_per_node=resources.gpus_per_node or None,
        cpus_per_task=resources.cpus_per_task,
        mem_gb=resources.mem_gb,
        timeout_min=resources.time_min,
        slurm_partition=launcher.partition,
        slurm_array_parallelism=launcher.max_parallel,
        slurm_setup=list(launcher.setup),
        slurm_additional_parameters=extra,
    )
    return executor


def submit_rungs(cfg: DictConfig, rungs: list[Rung]) -> dict[str, submitit.Job]:
    """Submit the rungs as one job array per resource shape and return the jobs by rung id."""
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    plan = build_plan(cfg)
    evaluation = eval_compute(cfg, plan)
    groups: dict[Resources, list[Rung]] = defaultdict(list)
    for rung in rungs:
        groups[resources_for(rung, cfg.launcher, job_extra_flops(plan, rung, evaluation))].append(rung)
    jobs = {}
    for resources, group in groups.items():
        executor = _executor(cfg, resources)
        with executor.batch():
            submitted = [executor.submit(RungJob(), config_yaml, rung.rung_id) for rung in group]
        for rung, job in zip(group, submitted):
            jobs[rung.rung_id] = job
        log.info("submitted %d rungs with %s", len(group), resources)
    return jobs


def wait(jobs: dict[str, submitit.Job]) -> dict[str, str]:
    """Block until every job ends; the failure message of each failed rung, by rung id."""
    failures = {}
    for rung_id, job in jobs.items():
        try:
            job.results()  # one result per task; `result()` refuses jobs of several tasks
        except Exception as exc:  # a failed job raises its own error, of any type
            failures[rung_id] = f"job {job.job_id}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r}"
    return failures
