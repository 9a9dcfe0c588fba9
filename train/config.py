"""Schema of the `train/` config group."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    """How rungs are trained; the recipe's numbers come from the ladder's size rules."""
    backend: str = "accelerate"  # accelerate (DDP/FSDP) or deepspeed
    precision: str = "fp32"  # fp32 on CPU; bf16 on GPU
