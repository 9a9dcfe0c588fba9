"""Schema of the `eval/` config group."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvalConfig:
    """What each checkpoint is evaluated on."""
    batch_size: int = 8
