"""Schema of the `train/` config group."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from ladder.core.configs import ConfigError

BACKENDS = ("accelerate", "deepspeed")
DISTRIBUTED = ("ddp", "fsdp")
PRECISIONS = ("fp32", "bf16")
WANDB_MODES = ("offline", "online", "disabled")
DEVICES = ("auto", "cpu", "cuda")
ATTENTION = ("sdpa", "flash_attention_2", "eager")
SCHEDULES = (None, "cosine", "wsd")


def _every_tenth() -> List[float]:
    return [round(0.1 * i, 1) for i in range(1, 11)]


@dataclass
class WandbConfig:
    # offline writes under <run_dir>/wandb and never touches the network; `wandb sync` uploads later.
    mode: str = "offline"
    project: str = "ladder"
    entity: Optional[str] = None


@dataclass
class DivergenceConfig:
    """When a run counts as diverged: a non-finite loss, or a spike over the recent mean."""
    spike_factor: float = 2.0  # stop when loss > spike_factor × mean of the previous `window` losses
    window: int = 20  # the check starts once this many steps have been logged; 0 turns spikes off


@dataclass
class TrainConfig:
    """How rungs are trained; the recipe's numbers come from the ladder's size rules."""
    backend: str = "accelerate"  # accelerate (DDP/FSDP) or deepspeed (ZeRO 1-3)
    distributed: str = "ddp"  # accelerate backend with more than one process: ddp or fsdp
    zero_stage: int = 2  # deepspeed backend only
    precision: str = "fp32"  # fp32 on CPU; bf16 on GPU
    device: str = "auto"  # auto (cuda when available), cpu or cuda
    # Sequences per forward pass per process (accumulation fills the global batch); None: as many as the
    # device's memory holds for the model (train/sizing.py).
    micro_batch_size: Optional[int] = None
    attention: str = "sdpa"  # sdpa, flash_attention_2 (sdpa with a warning where flash-attn is missing) or eager
    num_processes: int = 1  # processes `ladder train` starts on this node (torchrun) when > 1
    checkpoint_fractions: List[float] = field(default_factory=_every_tenth)  # the end is always included
    # Steps between checks (losses to the host, divergence, metrics.jsonl/wandb): the only host waits.
    log_every: int = 1
    schedule: Optional[str] = None  # cosine or wsd; None keeps the recipe's
    wsd_decay_fraction: float = 0.2  # share of the steps the wsd schedule spends decaying
    seed: int = 0
    compile: bool = False  # torch.compile the model
    peak_flops: Optional[float] = None  # per-device peak FLOP/s for MFU; None looks the GPU up
    progress: bool = True  # tqdm bar on rank 0
    wandb: WandbConfig = field(default_factory=WandbConfig)
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)


def check(cfg: TrainConfig) -> None:
    """Values the schema's types let through; checked before any rung starts, so that a bad one fails the
    command once, naming its key, rather than every rung after its data is prepared."""
    for key, value, allowed in (("backend", cfg.backend, BACKENDS), ("distributed", cfg.distributed, DISTRIBUTED),
                                ("precision", cfg.precision, PRECISIONS), ("device", cfg.device, DEVICES),
                                ("schedule", cfg.schedule, SCHEDULES), ("wandb.mode", cfg.wandb.mode, WANDB_MODES),
                                ("attention", cfg.attention, ATTENTION)):
        if value not in allowed:
            raise ConfigError(f"train.{key}: expected one of {allowed}, got '{value}'")
    if cfg.backend == "deepspeed" and cfg.zero_stage not in (1, 2, 3):
        raise ConfigError(f"train.zero_stage: expected 1, 2 or 3, got {cfg.zero_stage}")
    for key, value in (("micro_batch_size", cfg.micro_batch_size), ("num_processes", cfg.num_processes),
                       ("log_every", cfg.log_every)):
        if value is not None and value < 1:  # micro_batch_size None: derived from the device's memory
            raise ConfigError(f"train.{key}={value}: must be at least 1")
    bad = [f for f in cfg.checkpoint_fractions if not 0 < f <= 1]
    if bad:
        raise ConfigError(f"train.checkpoint_fractions must lie in (0, 1], got {bad}")
    if not 0 < cfg.wsd_decay_fraction <= 1:
        raise ConfigError(f"train.wsd_decay_fraction={cfg.wsd_decay_fraction}: must lie in (0, 1]")
    if cfg.divergence.spike_factor <= 0 or cfg.divergence.window < 0:
        raise ConfigError(f"train.divergence: spike_factor must be positive and window at least 0, got "
                          f"{cfg.divergence.spike_factor} and {cfg.divergence.window}")
