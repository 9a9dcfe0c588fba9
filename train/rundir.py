"""How training writes a rung's run directory (names: ladder.core.layout; formats: docs/formats.md).

Every file another stage reads is written atomically: to a temporary name in the same directory,
then `os.replace`d, so a crash leaves either the old file or the new one, never half of one.
Checkpoints are directories: they are written under `checkpoints/.tmp-step-*` and renamed to
`checkpoints/step-<8 digits>` only once complete, so a directory with the final name is always whole; its
resume state lands later the same way, `.tmp-state` renamed to `state` (train/checkpoint.py).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from ladder.core.configs import one_line
from ladder.core.files import atomic_write_json
from ladder.core.layout import CHECKPOINTS, CONFIG, RECORD, STATE_DIR, TMP_PREFIX, checkpoints
from ladder.core.schedules import Run

STATES = ("running", "done", "failed", "interrupted")


def read_record(run_dir: Path) -> Optional[dict]:
    path = Path(run_dir) / RECORD
    return json.loads(path.read_text()) if path.exists() else None


class CheckpointDamaged(ValueError):
    """No checkpoint of a run that is whole and holds the state to resume from, though one was written."""


def read_run(run_dir: Path) -> Optional[Run]:
    """The run that trained the directory's checkpoints, as its config.yaml says (`run`, written before its
    first step); None before any was trained there."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        return None
    try:
        written = OmegaConf.to_container(OmegaConf.load(path))
        return Run.from_dict(written["run"]) if "run" in written else None
    except Exception as exc:  # YAML, a missing key or a value the dataclasses refuse: not what training writes
        raise ValueError(f"{path}: unreadable ({one_line(exc)})") from exc


def write_record(run_dir: Path, rung_id: str, state: str, step: int, steps: int, tokens: int,
                 reason: Optional[str] = None, checkpoint: Optional[str] = None, loss: Optional[float] = None) -> dict:
    """record.json: the rung's state, where it got to, why it stopped, and which process wrote it."""
    assert state in STATES, state
    record = {"rung_id": rung_id, "state": state, "step": step, "steps": steps, "tokens": tokens,
              "loss": loss, "reason": reason, "last_checkpoint": checkpoint,
              "pid": os.getpid(), "host": socket.gethostname(), "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_json(Path(run_dir) / RECORD, record)
    return record


def remove_incomplete_checkpoints(run_dir: Path) -> None:
    """Leftovers of a write a crash interrupted (a checkpoint's, or the resume state of one: train.checkpoint);
    nothing else could have made them."""
    root = Path(run_dir) / CHECKPOINTS
    for tmp in [*root.glob(f"{TMP_PREFIX}*"), *root.glob(f"step-*/{TMP_PREFIX}{STATE_DIR}")]:
        shutil.rmtree(tmp, ignore_errors=True)


def commit_checkpoint(tmp: Path, final: Path) -> None:
    """Publish a fully written checkpoint directory under its final name in one rename."""
    if final.exists():  # a rerun after a crash between this rename and the record update
        shutil.rmtree(final)
    os.replace(tmp, final)
    fd = os.open(final.parent, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_old_states(run_dir: Path, keep: set[int], newest: int = 1) -> None:
    """Remove the resume state (optimizer, scheduler, RNG) of every checkpoint but the `newest` ones and those at
    the steps in `keep` (a branch trunk's forks, which its branches start from). They keep their weights, which is
    all evaluation and the rungs' links need: at 1B the state is ~9 GB a checkpoint, 10 checkpoints a rung.
    A checkpoint linked in from another run (a trunk's, in a branch rung) is that run's, never touched here."""
    for step, path in checkpoints(run_dir)[:-newest]:
        if step not in keep and not path.is_symlink() and (path / STATE_DIR).is_dir():
            shutil.rmtree(path / STATE_DIR)
