"""Finding checkpoints (`<rung_dir>/checkpoints/step-<8 digits>/`) and checking they are complete.

A checkpoint is a transformers model directory; it is usable once it has its config, all weight
files an index names, and a tokenizer (its own or the one given). Directories still being written
(any other name, e.g. a temporary one) are never matched.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from ladder.core.checkpoint_files import damage
from ladder.core.layout import checkpoint_step, checkpoints

_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_TOKENIZER = ("tokenizer.json", "tokenizer_config.json")


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be evaluated as it is."""


def step_of(checkpoint_dir: Path) -> int:
    step = checkpoint_step(checkpoint_dir)
    if step is None:
        raise CheckpointError(f"{checkpoint_dir}: not a checkpoint directory name (expected step-<8 digits>)")
    return step


def find_checkpoints(rung_dir: Path) -> list[Path]:
    """The rung's checkpoint directories, by step."""
    return [path for _, path in checkpoints(rung_dir)]


def missing_files(checkpoint_dir: Path, tokenizer_dir: Optional[Path] = None) -> list[str]:
    """What a checkpoint lacks to be evaluated; empty when complete."""
    d = Path(checkpoint_dir)
    if not d.is_dir():
        return [f"{d} (no such directory)"]
    missing = [] if (d / "config.json").is_file() else ["config.json"]
    index = next((d / i for i in _INDEXES if (d / i).is_file()), None)
    if index is not None:
        shards = sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
        missing += [s for s in shards if not (d / s).is_file()] or ([] if shards else [f"{index.name} lists no shards"])
    elif not any((d / w).is_file() for w in _WEIGHTS):
        missing.append(" or ".join(_WEIGHTS))
    if not any((t / name).is_file() for t in filter(None, (d, tokenizer_dir)) for name in _TOKENIZER):
        missing.append("tokenizer (tokenizer.json; or set eval.tokenizer)")
    return missing


def unusable(checkpoint_dir: Path, tokenizer_dir: Optional[Path] = None) -> Optional[str]:
    """Why a checkpoint cannot be evaluated as it is: the files it lacks, or one that differs from the size it was
    written with (ladder.core.checkpoint_files: cut short, and safetensors would not say which); None if it can."""
    missing = missing_files(checkpoint_dir, tokenizer_dir)
    return f"missing {', '.join(missing)}" if missing else damage(checkpoint_dir, state=False)


def require_complete(checkpoint_dir: Path, tokenizer_dir: Optional[Path] = None) -> None:
    """CheckpointError naming every file the checkpoint lacks, or the one that is damaged."""
    problem = unusable(checkpoint_dir, tokenizer_dir)
    if problem:
        raise CheckpointError(f"checkpoint {checkpoint_dir} is incomplete: {problem}")


def tokenizer_source(checkpoint_dir: Path, tokenizer_dir: Optional[Path] = None) -> Optional[Path]:
    """The directory a checkpoint's tokenizer is read from: its own, else `tokenizer_dir`."""
    has_own = any((Path(checkpoint_dir) / name).is_file() for name in _TOKENIZER)
    return Path(checkpoint_dir) if has_own else tokenizer_dir


def load_tokenizer(checkpoint_dir: Path, tokenizer_dir: Optional[Path] = None):
    """The checkpoint's own tokenizer, else the one in `tokenizer_dir`."""
    return AutoTokenizer.from_pretrained(tokenizer_source(checkpoint_dir, tokenizer_dir))


def load_checkpoint(checkpoint_dir: Path, tokenizer_dir: Optional[Path] = None, device: str | torch.device = "cpu"):
    """(model, tokenizer) in fp32 eval mode; CheckpointError naming every missing file."""
    require_complete(checkpoint_dir, tokenizer_dir)
    transformers.utils.logging.disable_progress_bar()  # a bar per checkpoint would drown the run's own
    try:
        model = AutoModelForCausalLM.from_pretrained(checkpoint_dir, dtype=torch.float32).to(device).eval()
        tokenizer = load_tokenizer(checkpoint_dir, tokenizer_dir)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {checkpoint_dir} cannot be loaded: {str(exc).splitlines()[0]}") from exc
    return model, tokenizer
