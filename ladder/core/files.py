"""Atomic file writes, shared by every stage: a crash leaves the old file or the new one, never half;
and the check that an output directory can be written, made before any work goes into it."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ladder.core.configs import ConfigError


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def writable_dir(path: str | Path, key: str) -> Path:
    """`path` as a directory this process can write into, made if absent; else a ConfigError naming `key`.

    Probed by creating a temporary file there: permission bits do not bind root, a read-only mount does.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except FileExistsError:
        raise ConfigError(f"{key}={path}: is a file, not a directory") from None
    except NotADirectoryError:
        blocker = next((p for p in path.parents if p.is_file()), path.parent)
        raise ConfigError(f"{key}={path}: {blocker} is a file, not a directory") from None
    except OSError as exc:
        raise ConfigError(f"{key}={path}: cannot write there ({exc.strerror})") from None
    return path
