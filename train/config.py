"""Schemas of the `data/` and `train/` config groups."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING


@dataclass
class DataConfig:
    """A training dataset: where its documents come from and which field holds the text."""
    name: str = MISSING
    hf_path: Optional[str] = None  # hub name, streamed where a network exists
    hf_name: Optional[str] = None  # hub config (subset), e.g. "en" for allenai/c4
    text_field: str = "text"
    path: Optional[str] = None  # local json.gz/jsonl/parquet file or directory in the same schema; wins over hf_path


@dataclass
class TrainConfig:
    """How rungs are trained; the recipe's numbers come from the ladder's size rules."""
    backend: str = "accelerate"  # accelerate (DDP/FSDP) or deepspeed
    precision: str = "fp32"  # fp32 on CPU; bf16 on GPU
