"""A job written once: the file (JOB, in the job's directory) from which another process runs one job of a
ladder, or publishes and evaluates its checkpoints, without building the plan again to look the job up by name.

It holds the job (`Job.as_dict()`), the part of the plan the job depends on beyond itself (the plan's name and
schedule, and its rungs at the job's sequence length, whose largest sizes the training split and whose smallest
vocabulary bounds the tokenizer: ladder.orchestration.splits), whether its checkpoints are evaluated, the rung a
follow-up trains (a branch's decay, in its rung's directory), and the config it runs with: not a copy, but the
config's digest and where it lies, `<out_dir>/configs/<digest>.yaml`, written once however many jobs name it.
The packed launcher (ladder.orchestration.node), Slurm (ladder.orchestration.slurm) and the torchrun workers of a
ladder's job (ladder.orchestration.worker) read it.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from ladder.core.configs import ConfigError, one_line
from ladder.core.files import atomic_write_json, atomic_write_text
from ladder.core.layout import CONFIGS, JOB
from ladder.core.plan import Plan, Rung
from ladder.core.schedules import Job


@dataclass(frozen=True)
class JobFile:
    config: DictConfig
    plan: Plan  # the job's part of the plan: its own job, and the plan's rungs at its sequence length
    job: Job
    evaluate: bool
    rung: Optional[str] = None  # a follow-up's rung id: the run it trains is that follow-up (None: the job's run)


def config_digest(config: DictConfig) -> str:
    """The digest of the resolved config: equal configs, equal digests."""
    text = OmegaConf.to_yaml(config, resolve=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def store_config(out_dir: str | Path, config: DictConfig) -> Path:
    """`<out_dir>/configs/<digest>.yaml`, written where no file holds it yet."""
    path = Path(out_dir) / CONFIGS / f"{config_digest(config)}.yaml"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, OmegaConf.to_yaml(config, resolve=True))
    return path


def job_plan(plan: Plan, job: Job) -> Plan:
    """What of `plan` a process running `job` reads: the job, and the rungs at its sequence length."""
    seq_len = job.run.shape.seq_len
    return Plan(plan.name, [r for r in plan.rungs if r.shape.seq_len == seq_len], [], plan.lr_schedule, [job])


def write_job_file(directory: Path, config: DictConfig, plan: Plan, job: Job, evaluate: bool,
                   rung: Optional[str] = None) -> Path:
    """JOB in `directory` (made if missing) for `job` of `plan` run with `config` (stored in its out_dir)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config_file = store_config(config.out_dir, config)
    part = job_plan(plan, job)
    spec = {"job": job.as_dict(), "evaluate": evaluate, "rung": rung,
            "config": {"digest": config_digest(config), "path": os.path.relpath(config_file, directory)},
            "plan": {"name": part.name, "lr_schedule": part.lr_schedule, "rungs": [r.as_dict() for r in part.rungs]}}
    atomic_write_json(directory / JOB, spec)
    return directory / JOB


def read_job_file(directory: Path) -> JobFile:
    """The job file in `directory`; ConfigError in one line naming the file where it is missing, unreadable,
    or its config is not the one it names."""
    path = Path(directory) / JOB
    if not path.is_file():
        raise ConfigError(f"no {path}: the process that hands a job on (`ladder run`, `ladder train`) writes it")
    try:
        spec = json.loads(path.read_text())
        job = Job.from_dict(spec["job"], Rung.from_dict)
        config_file = Path(os.path.normpath(Path(directory) / spec["config"]["path"]))
        config = OmegaConf.load(config_file)
        plan = Plan(spec["plan"]["name"], [Rung.from_dict(r) for r in spec["plan"]["rungs"]], [],
                    spec["plan"]["lr_schedule"], [job])
        evaluate, rung = bool(spec["evaluate"]), spec["rung"]
    except Exception as exc:  # JSON, a missing key or file, a value the dataclasses refuse
        raise ConfigError(f"{path}: not a job file `ladder run` writes ({one_line(exc)}); run it again to "
                          f"rewrite it") from None
    if config_digest(config) != spec["config"]["digest"]:
        raise ConfigError(f"{path}: its config {config_file} was changed after the job was written (digest "
                          f"{config_digest(config)}, not {spec['config']['digest']}); run it again to rewrite it")
    return JobFile(config, plan, job, evaluate, rung)
