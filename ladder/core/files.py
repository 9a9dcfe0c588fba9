"""Atomic file writes, shared by every stage: a crash leaves the old file or the new one, never half;
and the check that an output directory can be written, made before any work goes into it."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator, Optional

from ladder.core.configs import ConfigError


def atomic_write_text(path: Path, text: str) -> None:
    """`path` holds `text` or its old content; an OSError names `path`."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}.{os.getpid()}")
    with naming(path):
        try:
            with open(tmp, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):  # a half-written temporary is never read; only try to tidy it
                tmp.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """OSErrors raised inside name `path` where they name no file of their own (a full disk's write errors
    name none), so the one line the user reads says where."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def writable_dir(path: str | Path, key: Optional[str] = None) -> Path:
    """`path` as a directory this process can write into, made if absent; else a ConfigError naming `key`
    (the config key that gave the path), or the path alone.

    Probed by creating a temporary file there: permission bits do not bind root, a read-only mount does.
    """
    path = Path(path)
    where = f"{key}={path}" if key else str(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except FileExistsError:
        raise ConfigError(f"{where}: is a file, not a directory") from None
    except NotADirectoryError:
        blocker = next((p for p in path.parents if p.is_file()), path.parent)
        raise ConfigError(f"{where}: {blocker} is a file, not a directory") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot write there ({exc.strerror})") from None
    return path
