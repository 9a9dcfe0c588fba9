"""Schema of the `data/` config group."""
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
