"""The three ways a rung trains on one or many processes: DDP (accelerate), FSDP2 (torch's `fully_shard`) and
DeepSpeed ZeRO 1-3.

A backend owns the process group, the wrapped model and optimizer, gradient synchronisation and the
optimizer's checkpoint; the loop in `train.loop` is the same for all three. All three train under one
precision policy, so rungs trained on different backends are comparable inside one fit: fp32 parameters (the
master weights) and AdamW state, bf16 compute from the loop's autocast where train.precision=bf16, fp32
gradients reduced in fp32. Weights are saved by the loop as a transformers model directory; a backend saves
only what that directory lacks, the resume state, into the directory it is given: under DDP and FSDP the
optimizer's state through torch.distributed.checkpoint's async_save (every process writes its part, while
training goes on: `save_state` returns a future), under DeepSpeed its engine's own checkpoint, synchronously.
The process group belongs to the process, not to a rung: a launch that trains several rungs in
turn reuses it, and the entry point (`train.worker`, the `ladder` CLI) destroys it on exit.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import random
import socket
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist

from ladder.core.recipes import Hyperparams
from train.config import TrainConfig, check
from train.model import decoder_blocks
from train.optim import skip_unless

log = logging.getLogger(__name__)


def use_cuda(cfg: TrainConfig) -> bool:
    if cfg.device == "auto":
        return torch.cuda.is_available()
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is visible")
    return cfg.device == "cuda"


def process_count(cfg: TrainConfig) -> int:
    """Processes a rung trains on, on this node: train.num_processes, else one per visible GPU when it
    trains on CUDA (so a node's eight GPUs are all used by default), else one."""
    if cfg.num_processes is not None:
        return cfg.num_processes
    return max(1, torch.cuda.device_count()) if use_cuda(cfg) else 1


def _timeout(cfg: TrainConfig) -> timedelta:
    return timedelta(minutes=cfg.collective_timeout_min)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_world_of_one() -> None:
    """Started without a launcher: the environment torchrun would give a world of one."""
    if "RANK" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(_free_port()))


def _device(cuda: bool) -> torch.device:
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


# DCP says so on every save and load without a process group (accelerate's one process), which is the intent.
warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")


def _checkpoint_group():
    """A gloo group of every process for the background writes' own collectives (None without a process group):
    DCP's async_save needs a CPU backend, and its thread must not interleave with training's NCCL collectives."""
    return dist.new_group(backend="gloo") if dist.is_available() and dist.is_initialized() else None


def _state_writer(path: Path):
    """The storage DCP writes a checkpoint's optimizer state to (tests swap it for one they can hold back)."""
    from torch.distributed.checkpoint import FileSystemWriter

    return FileSystemWriter(str(path))


def save_sharded_state(model, optimizer, scheduler, state_dir: Path, rank: int, group):
    """The optimizer's state by torch.distributed.checkpoint, each process writing its part (its FSDP shard; under
    DDP, where every process holds all of it, DCP gives each tensor to one process), the scheduler (main) and
    each process's RNG state. The optimizer's state is copied to host memory before this returns and written
    in a background thread: the future of that write, or None where this torch has no async_save."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    state_dir.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        torch.save(scheduler.state_dict(), state_dir / "scheduler.pt")
    with open(state_dir / f"random_states_{rank}.pkl", "wb") as f:
        pickle.dump(_rng_state(), f)
    state = {"optimizer": get_optimizer_state_dict(model, optimizer)}
    writer, alone = _state_writer(state_dir / "optimizer"), group is None  # alone: no process group
    if not hasattr(dcp, "async_save"):  # torch < 2.3
        dcp.save(state, storage_writer=writer, process_group=group, no_dist=alone)
        return None
    written = dcp.async_save(state, storage_writer=writer, process_group=group, no_dist=alone)
    return getattr(written, "upload_completion", written)  # later torch answers with a response holding it


def load_sharded_state(model, optimizer, scheduler, state_dir: Path, rank: int) -> None:
    """What save_sharded_state wrote, each process reading its part."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

    state = {"optimizer": get_optimizer_state_dict(model, optimizer)}
    dcp.load(state, checkpoint_id=str(state_dir / "optimizer"), no_dist=not dist.is_initialized())
    set_optimizer_state_dict(model, optimizer, state["optimizer"])
    scheduler.load_state_dict(torch.load(state_dir / "scheduler.pt", weights_only=True))
    with open(state_dir / f"random_states_{rank}.pkl", "rb") as f:
        _set_rng_state(pickle.load(f))


class AccelerateBackend:
    """accelerate's Accelerator: one process, or DDP over several. Mixed precision is the loop's autocast,
    not accelerate's (whose forward wrapper returns fp32 logits, and stays on the model evaluation runs)."""

    shards_parameters = False

    def __init__(self, cfg: TrainConfig):
        from accelerate import Accelerator
        from accelerate.utils import InitProcessGroupKwargs

        self.accelerator = Accelerator(cpu=not use_cuda(cfg), mixed_precision="no",
                                       kwargs_handlers=[InitProcessGroupKwargs(timeout=_timeout(cfg))])
        state = self.accelerator.state
        self.rank, self.world_size, self.device = state.process_index, state.num_processes, self.accelerator.device
        self.is_main = self.accelerator.is_main_process
        self.checkpoint_group = _checkpoint_group()

    def prepare(self, model, optimizer_for: Callable, scheduler_for: Callable, accumulation: int, hp: Hyperparams):
        self.accumulation = accumulation
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer_for(model))
        # The scheduler stays unprepared: accelerate would step it once per process on every call.
        self.scheduler = scheduler_for(self.optimizer.optimizer)
        return self.model

    def backward(self, loss: torch.Tensor, boundary: bool) -> None:
        # Gradients are all-reduced only on the last micro-batch of an optimizer step.
        with contextlib.nullcontext() if boundary else self.accelerator.no_sync(self.model):
            self.accelerator.backward(loss / self.accumulation)

    def step(self, max_norm: float, loss_finite: torch.Tensor) -> torch.Tensor:
        """Clip and take the optimizer step unless the loss or the gradient norm is not finite; the norm.

        The norm is of the gradients after their all-reduce, so every process skips alike; a non-finite
        loss on one process makes its gradients, and so the norm, non-finite.
        """
        norm = self.accelerator.clip_grad_norm_(self.model.parameters(), max_norm)
        skip_unless(self.optimizer.optimizer, loss_finite & torch.isfinite(norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm.detach()

    def unwrapped(self):
        return self.accelerator.unwrap_model(self.model)

    def full_state_dict(self) -> dict:
        """Every weight, on the main process."""
        return self.accelerator.get_state_dict(self.model)

    def save_state(self, state_dir: Path):
        return save_sharded_state(self.model, self.optimizer.optimizer, self.scheduler, state_dir, self.rank,
                                  self.checkpoint_group)

    def load_state(self, state_dir: Path) -> None:
        load_sharded_state(self.model, self.optimizer.optimizer, self.scheduler, state_dir, self.rank)


class FSDPBackend:
    """torch's FSDP2 (`fully_shard`), applied as torchtitan applies it: each decoder block one unit, the root
    (embeddings, final norm, LM head) another. Parameters, gradients and AdamW's moments are sharded over the
    processes; each unit's fp32 parameters are gathered for its forward and backward and freed after, and
    gradients are reduce-scattered in fp32 after every micro-batch. NCCL on GPUs, gloo on CPUs (so it is
    tested here), a world of one included. (accelerate's FSDP runs on GPUs only and reduces in bf16.)"""

    shards_parameters = True  # forwards are collectives: evaluation runs them in step on every rank

    def __init__(self, cfg: TrainConfig):
        cuda = use_cuda(cfg)
        if not dist.is_initialized():
            # Started without a launcher: a world of one on an in-process store, leaving the environment as
            # it is (orchestration reads WORLD_SIZE as "one of several processes").
            alone = {} if "RANK" in os.environ else {"store": dist.HashStore(), "rank": 0, "world_size": 1}
            dist.init_process_group("nccl" if cuda else "gloo", timeout=_timeout(cfg), **alone)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        self.device = _device(cuda)
        self.checkpoint_group = _checkpoint_group()

    def prepare(self, model, optimizer_for: Callable, scheduler_for: Callable, accumulation: int, hp: Hyperparams):
        from torch.distributed.fsdp import fully_shard

        self.accumulation = accumulation
        model.to(self.device)
        for block in decoder_blocks(model):
            fully_shard(block)
        fully_shard(model)
        self.model = model
        self.optimizer = optimizer_for(model)  # over the sharded parameters
        self.scheduler = scheduler_for(self.optimizer)
        return model

    def backward(self, loss: torch.Tensor, boundary: bool) -> None:
        (loss / self.accumulation).backward()

    def step(self, max_norm: float, loss_finite: torch.Tensor) -> torch.Tensor:
        """As AccelerateBackend.step; the norm is reduced over the shards (a DTensor made whole)."""
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm).full_tensor()
        skip_unless(self.optimizer, loss_finite & torch.isfinite(norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm.detach()

    def unwrapped(self):
        return self.model  # FSDP2 shards the model in place: same class (prefixed), same parameter names

    def full_state_dict(self) -> dict:
        """Every weight gathered on the main process, on its CPU (collective)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def save_state(self, state_dir: Path):
        return save_sharded_state(self.model, self.optimizer, self.scheduler, state_dir, self.rank,
                                  self.checkpoint_group)

    def load_state(self, state_dir: Path) -> None:
        load_sharded_state(self.model, self.optimizer, self.scheduler, state_dir, self.rank)


class DeepSpeedBackend:
    """DeepSpeed's engine driven directly (not through accelerate, whose DeepSpeed path on CPU gets the world
    size wrong): ZeRO stage `train.zero_stage`, gloo on CPU, NCCL on GPU. DeepSpeed's own bf16 mode is left
    off (it would keep bf16 weights, reduce bf16 gradients and save bf16 checkpoints): the module stays fp32
    and the loop's autocast gives the bf16 compute, as on the other backends."""

    def __init__(self, cfg: TrainConfig):
        import deepspeed

        cuda = use_cuda(cfg)
        self.cfg = cfg
        _as_world_of_one()
        deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo", timeout=_timeout(cfg))
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        self.shards_parameters = cfg.zero_stage == 3 and self.world_size > 1
        self.device = _device(cuda)

    def prepare(self, model, optimizer_for: Callable, scheduler_for: Callable, accumulation: int, hp: Hyperparams):
        import deepspeed

        optimizer = optimizer_for(model)
        config = {
            "train_batch_size": hp.batch_size,
            "train_micro_batch_size_per_gpu": hp.batch_size // self.world_size // accumulation,
            "gradient_accumulation_steps": accumulation,
            "gradient_clipping": hp.grad_clip,
            "zero_optimization": {"stage": self.cfg.zero_stage},
            # The engine switches off an autocast from outside unless told to keep it; no module of it may
            # communicate in bf16 (DeepSpeed's default: every Linear's gradients), so gradients reduce in fp32.
            "torch_autocast": {"enabled": self.cfg.precision == "bf16", "dtype": "bfloat16",
                               "lower_precision_safe_modules": []},
            "steps_per_print": 2 ** 62,  # the loop logs; keep DeepSpeed quiet
        }
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler_for(optimizer), config=config)
        if self.cfg.zero_stage == 3:  # the training loss reads the LM head's weight in the model's own forward
            deepspeed.zero.register_external_parameter(self.engine.module, self.engine.module.lm_head.weight)
        return self.engine

    def backward(self, loss: torch.Tensor, boundary: bool) -> None:
        self.engine.backward(loss)  # the engine divides by the accumulation steps itself
        if not boundary:
            self.engine.step()  # counts the micro-step; the optimizer only steps at a boundary

    def step(self, max_norm: float, loss_finite: torch.Tensor) -> torch.Tensor:
        """The engine's step, skipped by its AdamW when any process's loss is not finite; the gradient norm.

        The engine computes the norm inside its step, too late to decide on; a non-finite gradient from a
        finite loss still shows in the norm and fails the run at the next check.
        """
        bad = (~loss_finite).float()
        if self.world_size > 1:
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)  # a device collective, not a host wait
        skip_unless(self.engine.optimizer.optimizer, bad == 0)
        # Clipping to `max_norm` is the engine's `gradient_clipping`, set from the same recipe.
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return torch.as_tensor(float("nan") if norm is None else norm, device=self.device).float()

    def unwrapped(self):
        return self.engine.module

    def full_state_dict(self) -> dict:
        """Every weight on the main process; ZeRO-3 partitions are gathered first (collective)."""
        import deepspeed

        module = self.engine.module
        gather = (deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None)
                  if self.cfg.zero_stage == 3 else contextlib.nullcontext())
        with gather:
            return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()} if self.is_main else {}

    def save_state(self, state_dir: Path) -> None:
        """Synchronously: DeepSpeed's engine writes its own checkpoint (each rank its ZeRO partition)."""
        self.engine.save_checkpoint(str(state_dir), tag="engine")
        with open(state_dir / f"random_states_{self.rank}.pkl", "wb") as f:
            pickle.dump(_rng_state(), f)

    def load_state(self, state_dir: Path) -> None:
        self.engine.load_checkpoint(str(state_dir), tag="engine", load_optimizer_states=True,
                                    load_lr_scheduler_states=True)
        with open(state_dir / f"random_states_{self.rank}.pkl", "rb") as f:
            _set_rng_state(pickle.load(f))


def make_backend(cfg: TrainConfig):
    check(cfg)
    cuda = use_cuda(cfg)
    if cfg.precision == "bf16" and not cuda:
        log.warning("train.precision=bf16 on CPU: bf16 matmuls run 30-100x slower than fp32 there")
    if cuda:  # fp32 matmuls outside autocast (and all of them under precision=fp32) on the tensor cores
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.backend == "deepspeed":
        return DeepSpeedBackend(cfg)
    return FSDPBackend(cfg) if cfg.distributed == "fsdp" else AccelerateBackend(cfg)
