"""One runner per rung: a lock file in the rung's directory, held while the rung trains and is evaluated.

The lock is an flock (filelock), which the kernel drops when its holder exits in any way, kill -9
included, so a lock is never left behind by a dead process on the same host; a requeued Slurm job or a
second `ladder run` takes it over as soon as the first is gone. A record that says `running` while
nobody holds the lock is therefore stale: its owner died.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from filelock import FileLock, Timeout

from ladder.core.layout import LOCK


def try_lock(directory: Path, wait: bool = False) -> Optional[FileLock]:
    """The rung's lock, acquired; None when another process holds it (with `wait`, once it lets go)."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(Path(directory) / LOCK))
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        return None
    return lock


def is_locked(directory: Path) -> bool:
    """Whether a live process holds the rung's lock (this one included)."""
    if not (Path(directory) / LOCK).exists():
        return False
    lock = try_lock(directory)
    if lock is None:
        return True
    lock.release()
    return False
