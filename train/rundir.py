"""The files of one rung's run directory (docs/formats.md) and how they are written.

Every file another stage reads is written atomically: to a temporary name in the same directory,
then `os.replace`d, so a crash leaves either the old file or the new one, never half of one.
Checkpoints are directories: they are written under `checkpoints/.tmp-step-*` and renamed to
`checkpoints/step-<8 digits>` only once complete, so a directory with the final name is always whole.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Optional

from ladder.files import atomic_write_json

RECORD = "record.json"
CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
LAUNCH = "launch.json"  # what workers started by torchrun train: rung, config, data (train.worker)
CHECKPOINTS = "checkpoints"
TRAINER_STATE = "trainer_state.pt"
STATES = ("running", "done", "failed")

_CHECKPOINT = re.compile(r"^step-(\d{8})$")
_TMP_PREFIX = ".tmp-"


def read_record(run_dir: Path) -> Optional[dict]:
    path = Path(run_dir) / RECORD
    return json.loads(path.read_text()) if path.exists() else None


def write_record(run_dir: Path, rung_id: str, state: str, step: int, steps: int, tokens: int,
                 reason: Optional[str] = None, checkpoint: Optional[str] = None, loss: Optional[float] = None) -> dict:
    """record.json: the rung's state (running, done or failed), where it got to and why it stopped."""
    assert state in STATES, state
    record = {"rung_id": rung_id, "state": state, "step": step, "steps": steps, "tokens": tokens,
              "loss": loss, "reason": reason, "last_checkpoint": checkpoint,
              "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_json(Path(run_dir) / RECORD, record)
    return record


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first; temporary directories of interrupted writes are not listed."""
    root = Path(run_dir) / CHECKPOINTS
    found = [(int(m.group(1)), p) for p in root.glob("step-*") if (m := _CHECKPOINT.match(p.name)) and p.is_dir()]
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Optional[tuple[int, Path]]:
    found = checkpoints(run_dir)
    return found[-1] if found else None


def temporary_checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"{_TMP_PREFIX}{checkpoint_name(step)}"


def remove_incomplete_checkpoints(run_dir: Path) -> None:
    """Leftovers of a write a crash interrupted; nothing else could have made them."""
    for tmp in (Path(run_dir) / CHECKPOINTS).glob(f"{_TMP_PREFIX}*"):
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
