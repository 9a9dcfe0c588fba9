"""Structured configs: the schema every YAML file under configs/ is validated against.

Each stage owns its section's dataclass (train/config.py, eval/config.py, ...); this module
assembles the root config and registers the schemas in Hydra's ConfigStore, so a misspelt key
or a wrong type fails at composition with the key's full name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from eval.config import EvalConfig
from fit.config import CompareConfig, FitConfig
from train.config import TrainConfig
from train.data.config import DataConfig, TokenizerConfig


@dataclass
class RungConfig:
    """A rung off the sizes × multipliers grid."""
    size: str = MISSING
    multiplier: float = MISSING


@dataclass
class LadderConfig:
    name: str = MISSING
    recipe: str = MISSING  # a key of ladder.core.recipes.RECIPES
    convention: str = "olmo"  # how N is counted: olmo, total or non_embedding (ladder.core.sizes)
    sizes: List[str] = MISSING  # names in configs/model/, or parameter counts such as "50M"
    multipliers: List[float] = MISSING  # M = D/N
    datasets: List[str] = MISSING  # names in configs/data/
    extra_rungs: List[RungConfig] = field(default_factory=list)
    # Models to predict: names (13B-5T), SIZE-MULT, or {name, params or size, tokens or multiplier,
    # flops_per_token?}, read by ladder.core.targets as the fit's `targets` are.
    targets: List[Any] = field(default_factory=list)
    # cosine or wsd: every rung its own run; wsds or branch: one run per size gives every multiplier's rung
    # (ladder.core.schedules)
    lr_schedule: str = "cosine"
    lr_decay_fraction: float = 0.1  # wsd/wsds/branch: share of each rung's period spent decaying (OLMo-core's minimum)
    lr_decay_shape: str = "linear"  # wsd/wsds/branch: how each decay falls, linear or 1-sqrt (ladder.core.lr)
    # The shape family for sizes given as parameter counts.
    arch: str = "olmo2"
    vocab_size: int = 100352
    seq_len: int = 4096
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)


LAUNCHERS = ("local", "slurm")


@dataclass
class LauncherConfig:
    """Where jobs run: `local` (here, packed onto this node's devices) or `slurm` (one job per job via submitit)."""
    name: str = "local"  # one of LAUNCHERS
    # local: the devices jobs are packed onto (ladder/orchestration/node.py), each job one process with
    # CUDA_VISIBLE_DEVICES set to its share; null: the visible GPUs (one where there are none). On a CPU a
    # count > 1 runs that many jobs at once, as on a node of that many GPUs (the tests' fake devices).
    devices: Optional[int] = None
    job_start_s: float = 60.0  # local: what starting a job costs the schedule whatever its devices (process, compile)
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    setup: List[str] = field(default_factory=list)  # shell lines run before each job, e.g. module loads
    folder: str = "${out_dir}/slurm"  # submitit's job scripts and logs
    max_parallel: int = 64  # array jobs running at once
    # Resource rule (ladder/orchestration/resources.py); gpus_per_node = 0 runs CPU-only jobs.
    gpus_per_node: int = 8
    max_nodes: int = 16
    gpu_flops: float = 989e12  # dense bf16 peak of one H100 SXM
    gpu_mem_gb: int = 80
    cpu_flops: float = 5e10  # a CPU job's sustained FLOP/s
    expected_mfu: float = 0.35
    time_margin: float = 1.5
    min_time_min: int = 20
    max_time_min: int = 2880
    cpus_per_task: int = 8
    cpu_tasks: int = 1  # processes (Slurm tasks) of a CPU-only job, e.g. 2 with train=ddp_cpu (gloo)
    mem_gb_per_gpu: int = 64
    # Overrides of the rule, for every rung of the sweep.
    gpus: Optional[int] = None
    nodes: Optional[int] = None
    mem_gb: Optional[int] = None
    time_min: Optional[int] = None


@dataclass
class Config:
    ladder: LadderConfig = MISSING
    data: DataConfig = MISSING
    train: TrainConfig = MISSING
    eval: EvalConfig = MISSING
    fit: FitConfig = MISSING
    compare: CompareConfig = MISSING
    launcher: LauncherConfig = MISSING
    out_dir: str = "runs/${ladder.name}"
    seed: int = 0


def register() -> None:
    ConfigStore.instance().store(name="config_schema", node=Config)
