"""The run-directory layout (docs/formats.md): every file and directory name a ladder run uses.

Stages hand each other files under one `out_dir`; this module is the one place their names and
paths are spelled, so the writer and every reader agree:

    <out_dir>/plan.json
    <out_dir>/configs/<digest>.yaml
    <out_dir>/rungs/<rung_id>/{record.json, config.yaml, job.json, metrics.jsonl, results.jsonl, ...}
    <out_dir>/rungs/<rung_id>/checkpoints/step-<8 digits>/
    <out_dir>/report/
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

PLAN = "plan.json"  # the rung table, as `ladder plan --format json` prints it
FIT_SETTINGS = "fit.yaml"  # the fit settings the ladder ran with, for a later `ladder fit` of its results
RUNGS = "rungs"
TRUNKS = "trunks"  # wsds/branch ladders: one run directory per size, its checkpoints linked into its rungs
REPORT = "report"  # `ladder fit`'s default output directory
CONFIGS = "configs"  # every config a job of the ladder ran with, once each: <digest>.yaml (ladder.core.jobfile)

# One rung's directory.
RECORD = "record.json"  # rung state (train → status, run)
CONFIG = "config.yaml"  # the resolved config and the rung (`Rung.as_dict()`) it trained with
METRICS = "metrics.jsonl"  # training log
RESULTS = "results.jsonl"  # evaluation records (eval → fit)
LAUNCH = "launch.json"  # multi-process runs: what each torchrun worker trains
JOB = "job.json"  # a job handed to another process: the job, its part of the plan, its config's digest (ladder.core.jobfile)
IDENTITY = "identity.json"  # what the rung's (or trunk's) results depend on (ladder.orchestration.identity)
LOCK = "run.lock"  # held by the one process running the rung (ladder.orchestration.lock)
CHECKPOINTS = "checkpoints"
TRAINER_STATE = "trainer_state.pt"  # inside a checkpoint: step, data position and recent losses
# Inside a checkpoint: the optimizer, scheduler and RNG of every process, what a run resumes from. Only the
# two newest checkpoints of an unfinished run keep it, the newest of a done one (and those a run is forked
# from); older ones keep their weights.
STATE_DIR = "state"
# Inside a checkpoint: the size of every file in it when it was committed (ladder.core.checkpoint_files).
FILE_SIZES = "files.json"

# A checkpoint is written under a temporary name and renamed to its final one once complete,
# so a directory whose name matches CHECKPOINT_NAME is always whole.
CHECKPOINT_NAME = re.compile(r"step-(\d{8})")
TMP_PREFIX = ".tmp-"


def rung_dir(out_dir: str | Path, rung_id: str) -> Path:
    return Path(out_dir) / RUNGS / rung_id


def trunk_dir(out_dir: str | Path, trunk_name: str) -> Path:
    return Path(out_dir) / TRUNKS / trunk_name


def rung_dirs(out_dir: str | Path) -> list[Path]:
    """Every rung directory under out_dir, by name."""
    return sorted(p for p in (Path(out_dir) / RUNGS).glob("*") if p.is_dir())


def results_files(out_dir: str | Path) -> list[Path]:
    return sorted((Path(out_dir) / RUNGS).glob(f"*/{RESULTS}"))


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def checkpoint_step(checkpoint_dir: str | Path) -> Optional[int]:
    """The step a checkpoint directory's name encodes; None for any other name."""
    match = CHECKPOINT_NAME.fullmatch(Path(checkpoint_dir).name)
    return int(match.group(1)) if match else None


def checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, directory) of every checkpoint written in full, oldest first; interrupted writes are not listed."""
    root = Path(run_dir) / CHECKPOINTS
    found = [(step, p) for p in root.glob("step-*") if (step := checkpoint_step(p)) is not None and p.is_dir()]
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Optional[tuple[int, Path]]:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def temporary_checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"{TMP_PREFIX}{checkpoint_name(step)}"
