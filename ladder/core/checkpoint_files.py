"""A checkpoint's file list: every file's size, written into it when it is committed (`record_sizes`) and
checked before training resumes from it or evaluation loads it (`damage`), so a truncated or missing file is
named rather than met by safetensors or torch, whose errors name no file. Sizes, not hashes: a hash of a 1B
rung's checkpoint (≈ 15 GB with its optimizer state) would cost more than the truncations it would also find."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from ladder.core.files import atomic_write_json
from ladder.core.layout import FILE_SIZES, STATE_DIR


def record_sizes(checkpoint: Path) -> None:
    """FILE_SIZES of a checkpoint written in full (before its commit): {"files": {relative path: bytes}}."""
    checkpoint = Path(checkpoint)
    sizes = {str(Path(root, name).relative_to(checkpoint)): os.path.getsize(Path(root, name))
             for root, _, names in os.walk(checkpoint) for name in names if name != FILE_SIZES}
    atomic_write_json(checkpoint / FILE_SIZES, {"files": dict(sorted(sizes.items()))})


def damage(checkpoint: Path, state: bool = True) -> Optional[str]:
    """What is wrong with the checkpoint's files, naming the first bad one; None when each has the size it was
    committed with, or where the checkpoint predates FILE_SIZES (nothing to check against). `state`: its
    resume state (STATE_DIR) too, which only the checkpoints training resumes from keep."""
    checkpoint = Path(checkpoint)
    path = checkpoint / FILE_SIZES
    if not path.is_file():
        return None
    try:
        sizes = json.loads(path.read_text())["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"{path}: unreadable ({exc})"
    for name, size in sizes.items():
        if not state and Path(name).parts[0] == STATE_DIR:
            continue
        file = checkpoint / name
        if not file.is_file():
            return f"{file}: missing"
        if file.stat().st_size != size:
            return f"{file}: {file.stat().st_size:,} bytes, {size:,} when it was written"
    return None
