"""Sweeps on Slurm: one submitit job per ladder job (a rung, or a size's trunk), sized per job, requeued on
preemption.

submitit is used directly rather than through Hydra's submitit launcher because a Hydra sweep
shares one set of launcher parameters, while each job needs its own nodes, GPUs and time.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import submitit
from omegaconf import DictConfig, OmegaConf

from ladder.core.configs import ConfigError
from ladder.core.files import writable_dir
from ladder.core.schedules import Job
from ladder.core.plan import Plan
from ladder.orchestration.compose import dataset_config
from ladder.orchestration.resources import Resources, eval_compute, job_extra_flops, resources_for
from ladder.orchestration.rung import run_job
from ladder.orchestration.splits import split_tokens
from train.data import DataError, stream_need, token_store
from train.data.store import tokenize_unit

log = logging.getLogger(__name__)
PING_TIMEOUT_S = 20  # `scontrol ping` asks the controller; a busy one still answers within seconds


class LadderJob(submitit.helpers.Checkpointable):
    """Runs one job inside its allocation; on preemption or time-out Slurm requeues it, and it
    resumes from its last checkpoint because training always does."""

    def __call__(self, config_yaml: str, name: str) -> str:
        env = submitit.JobEnvironment()
        if env.num_tasks > 1:  # one task per GPU: expose torchrun's variables to accelerate/DeepSpeed
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return run_job(OmegaConf.create(config_yaml), name)


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


def check_cluster(launcher: DictConfig) -> None:
    """ConfigError unless this machine can submit Slurm jobs into `launcher.folder`: the commands are here and the
    controller answers (submitit's own error where it does not is a traceback, after the data is prepared). Checked
    before the folder is made: a refusal leaves nothing behind."""
    missing = [command for command in ("sbatch", "srun", "scontrol") if shutil.which(command) is None]
    if missing:
        raise ConfigError(f"launcher.name=slurm: no Slurm here ({_listed(missing)} not on PATH); run on a "
                          f"cluster's login node, or use launcher=local")
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=PING_TIMEOUT_S)
        answer = (ping.stdout + ping.stderr).strip()
        down = ping.returncode != 0 or "UP" not in answer
    except subprocess.TimeoutExpired:
        answer, down = f"no answer in {PING_TIMEOUT_S} s", True
    except OSError as exc:  # e.g. a broken scontrol
        answer, down = str(exc), True
    if down:
        said = answer.splitlines()[-1] if answer else f"exit {ping.returncode}"
        raise ConfigError(f"launcher.name=slurm: Slurm's controller does not answer (`scontrol ping`: {said}); "
                          "start slurmctld or run where it answers, or use launcher=local")
    writable_dir(launcher.folder, "launcher.folder")


def _listed(names: list[str]) -> str:
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def submit_jobs(cfg: DictConfig, plan: Plan, jobs: list[Job]) -> dict[str, submitit.Job]:
    """Submit the jobs of `plan` as one Slurm job array per resource shape and return the Slurm jobs by job name."""
    check_cluster(cfg.launcher)
    config_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    evaluation = eval_compute(cfg, plan)
    groups: dict[Resources, list[Job]] = defaultdict(list)
    for job in jobs:
        groups[resources_for(job.run, cfg.launcher, job_extra_flops(job, evaluation))].append(job)
    submitted = {}
    for resources, group in groups.items():
        executor = _executor(cfg, resources)
        with executor.batch():
            slurm_jobs = [executor.submit(LadderJob(), config_yaml, job.name) for job in group]
        submitted.update({job.name: slurm_job for job, slurm_job in zip(group, slurm_jobs)})
        log.info("submitted %d jobs with %s", len(group), resources)
    return submitted


def wait(jobs: dict[str, submitit.Job]) -> dict[str, str]:
    """Block until every Slurm job ends; the failure message of each failed one, by job name."""
    failures = {}
    for name, job in jobs.items():
        try:
            job.results()  # one result per task; `result()` refuses jobs of several tasks
        except Exception as exc:  # a failed job raises its own error, of any type
            failures[name] = f"job {job.job_id}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r}"
    return failures


def tokenize_on_slurm(cfg: DictConfig, plan: Plan) -> None:
    """Tokenize every text dataset's token store as Slurm array tasks, one source file a task, in waves of at
    most launcher.max_parallel, until it holds what the ladder needs; `prepare_all` then only cuts the
    splits. A hub stream, one unit, is left to `prepare_all`. Each task resumes its unit where a killed one
    stopped (train/data/store.py)."""
    launcher = cfg.launcher
    check_cluster(launcher)  # without sbatch, one line rather than submitit's traceback
    resources = Resources(nodes=1, gpus_per_node=0, cpus_per_task=launcher.cpus_per_task,
                          mem_gb=launcher.mem_gb or 8, time_min=launcher.time_min or 60)
    for dataset in cfg.ladder.datasets:
        data = dataset_config(cfg, dataset)
        store = token_store(data, cfg.ladder.tokenizer)
        if store is None:  # pre-tokenized: nothing to do
            continue
        need = max(stream_need(seq_len, data.val_tokens, split_tokens(cfg, plan, dataset, seq_len))
                   for seq_len in {r.shape.seq_len for r in plan.rungs if r.dataset == dataset})
        while units := [i for i in store.pending(need) if not store.is_stream(i)][:launcher.max_parallel]:
            executor = _executor(cfg, resources)
            executor.update_parameters(name=f"ladder-tokenize-{dataset}")
            jobs = executor.map_array(tokenize_unit, [str(store.root)] * len(units), units)
            log.info("tokenizing %d file(s) of %s as Slurm array tasks", len(units), dataset)
            failures = wait({f"{dataset} unit {i}": job for i, job in zip(units, jobs)})
            if failures:
                raise DataError(f"tokenizing {dataset} on Slurm: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))
