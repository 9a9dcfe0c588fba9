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
LOSSES = ("chunked", "liger")


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
    # The training loss (train/loss.py): chunked (ours; no host sync, compiled with the model) or liger
    # (liger-kernel's fused kernel on CUDA, which reads a count back to the host in every forward and backward).
    loss: str = "chunked"
    # Processes `ladder train` starts on this node (torchrun) when > 1; None: one per visible GPU when training
    # on CUDA, else 1 (train.backends.process_count).
    num_processes: Optional[int] = None
    # How long a collective may wait (e.g. the other ranks while rank 0 writes a checkpoint) before the job
    # fails; NCCL's own default is 10 minutes, shorter than writing a 1B rung's optimizer state on a slow disk.
    collective_timeout_min: float = 60.0
    checkpoint_fractions: List[float] = field(default_factory=_every_tenth)  # the end is always included
    # Steps between checks (losses to the host, divergence, metrics.jsonl/wandb): the only host waits.
    log_every: int = 1
    seed: int = 0
    compile: bool = False  # torch.compile each decoder block and the loss (train.model.compile_blocks)
    peak_flops: Optional[float] = None  # per-device peak FLOP/s for MFU; None looks the GPU up
    progress: bool = True  # tqdm bar on rank 0
    wandb: WandbConfig = field(default_factory=WandbConfig)
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)


def check(cfg: TrainConfig) -> None:
    """Values the schema's types let through; checked before any rung starts, so that a bad one fails the
    command once, naming its key, rather than every rung after its data is prepared."""
    for key, value, allowed in (("backend", cfg.backend, BACKENDS), ("distributed", cfg.distributed, DISTRIBUTED),
                                ("precision", cfg.precision, PRECISIONS), ("device", cfg.device, DEVICES),
                                ("wandb.mode", cfg.wandb.mode, WANDB_MODES),
                                ("attention", cfg.attention, ATTENTION), ("loss", cfg.loss, LOSSES)):
        if value not in allowed:
            raise ConfigError(f"train.{key}: expected one of {allowed}, got '{value}'")
    if cfg.backend == "deepspeed" and cfg.zero_stage not in (1, 2, 3):
        raise ConfigError(f"train.zero_stage: expected 1, 2 or 3, got {cfg.zero_stage}")
    if cfg.backend == "deepspeed" and cfg.zero_stage == 3 and cfg.compile:
        raise ConfigError("train.compile=true with DeepSpeed ZeRO-3: its parameter hooks break every compiled graph "
                          "at every parameter; use train.compile=false, ZeRO-1/2, or train.distributed=fsdp")
    for key, value in (("micro_batch_size", cfg.micro_batch_size), ("num_processes", cfg.num_processes),
                       ("log_every", cfg.log_every)):
        if value is not None and value < 1:  # micro_batch_size None: derived from the device's memory
            raise ConfigError(f"train.{key}={value}: must be at least 1")
    bad = [f for f in cfg.checkpoint_fractions if not 0 < f <= 1]
    if bad:
        raise ConfigError(f"train.checkpoint_fractions must lie in (0, 1], got {bad}")
    if cfg.collective_timeout_min <= 0:
        raise ConfigError(f"train.collective_timeout_min={cfg.collective_timeout_min:g}: must be positive")
    if cfg.divergence.spike_factor <= 0 or cfg.divergence.window < 0:
        raise ConfigError(f"train.divergence: spike_factor must be positive and window at least 0, got "
                          f"{cfg.divergence.spike_factor} and {cfg.divergence.window}")
