"""The two ways a rung trains on one or many processes: accelerate (DDP/FSDP) and DeepSpeed (ZeRO 1-3).

A backend owns the process group, the wrapped model and optimizer, gradient synchronisation and
the optimizer's checkpoint; the loop in `train.loop` is the same for both. Weights are saved by
the loop as a transformers model directory; a backend saves only what that directory lacks.
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
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ladder.core.recipes import Hyperparams
from train.config import TrainConfig, check
from train.optim import skip_unless

log = logging.getLogger(__name__)

STATE_DIR = "state"  # inside a checkpoint: optimizer, scheduler and RNG of every process


def use_cuda(cfg: TrainConfig) -> bool:
    if cfg.device == "auto":
        return torch.cuda.is_available()
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is visible")
    return cfg.device == "cuda"


class AccelerateBackend:
    """accelerate's Accelerator: one process, DDP, or FSDP (train.distributed=fsdp)."""

    def __init__(self, cfg: TrainConfig):
        from accelerate import Accelerator, FullyShardedDataParallelPlugin

        # On GPUs FSDP is used as asked, a world of one included (one GPU checks the path); a CPU process
        # alone trains plainly, and with others it stops below, as accelerate has no FSDP there.
        fsdp = cfg.distributed == "fsdp" and (use_cuda(cfg) or int(os.environ.get("WORLD_SIZE", "1")) > 1)
        self.accelerator = Accelerator(
            cpu=not use_cuda(cfg), mixed_precision="bf16" if cfg.precision == "bf16" else "no",
            fsdp_plugin=FullyShardedDataParallelPlugin(
                fsdp_version=2, auto_wrap_policy="transformer_based_wrap", reshard_after_forward=True,
                state_dict_type="SHARDED_STATE_DICT", cpu_ram_efficient_loading=False,
            ) if fsdp else None,
        )
        state = self.accelerator.state
        self.shards_parameters = fsdp  # forwards are collectives: evaluation runs them in step on every rank
        if fsdp and state.distributed_type.name != "FSDP":  # accelerate falls back to DDP without a word
            raise ValueError(f"train.distributed=fsdp: accelerate shards with FSDP on GPUs only, not on "
                             f"{state.distributed_type.name}; use ddp or the deepspeed backend here")
        self.rank, self.world_size, self.device = state.process_index, state.num_processes, self.accelerator.device
        self.is_main = self.accelerator.is_main_process
        # Weights live in the checkpoint's transformers directory; keep accelerate from saving them twice.
        self.accelerator.register_save_state_pre_hook(lambda models, weights, output_dir: weights.clear())
        self.accelerator.register_load_state_pre_hook(lambda models, input_dir: models.clear())

    def prepare(self, model, optimizer, scheduler, micro_batch: int, accumulation: int, hp: Hyperparams):
        self.accumulation = accumulation
        # The scheduler stays unprepared: accelerate would step it once per process on every call.
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.scheduler = scheduler
        self.accelerator.register_for_checkpointing(scheduler)
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
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm  # FSDP2: a DTensor
        skip_unless(self.optimizer.optimizer, loss_finite & torch.isfinite(norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm.detach()

    def unwrapped(self):
        return self.accelerator.unwrap_model(self.model)

    def full_state_dict(self) -> dict:
        """Every weight, gathered on the main process (collective under FSDP)."""
        return self.accelerator.get_state_dict(self.model)

    def save_state(self, checkpoint_dir: Path) -> None:
        self.accelerator.save_state(str(checkpoint_dir / STATE_DIR))

    def load_state(self, checkpoint_dir: Path) -> None:
        self.accelerator.load_state(str(checkpoint_dir / STATE_DIR))


class DeepSpeedBackend:
    """DeepSpeed's engine driven directly (not through accelerate, whose DeepSpeed path on CPU
    gets the world size wrong): ZeRO stage `train.zero_stage`, gloo on CPU, NCCL on GPU."""

    def __init__(self, cfg: TrainConfig):
        import deepspeed

        self.cuda = use_cuda(cfg)
        self.cfg = cfg
        if "RANK" not in os.environ:  # started without a launcher: a world of one
            os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                              MASTER_PORT=str(_free_port()))
        deepspeed.init_distributed(dist_backend="nccl" if self.cuda else "gloo")
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        self.shards_parameters = cfg.zero_stage == 3 and self.world_size > 1
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.cuda:
            torch.cuda.set_device(local_rank)
        self.device = torch.device("cuda", local_rank) if self.cuda else torch.device("cpu")

    def prepare(self, model, optimizer, scheduler, micro_batch: int, accumulation: int, hp: Hyperparams):
        import deepspeed

        config = {
            "train_batch_size": hp.batch_size,
            "train_micro_batch_size_per_gpu": micro_batch,
            "gradient_accumulation_steps": accumulation,
            "gradient_clipping": hp.grad_clip,
            "zero_optimization": {"stage": self.cfg.zero_stage},
            "bf16": {"enabled": self.cfg.precision == "bf16"},
            "steps_per_print": 2 ** 62,  # the loop logs; keep DeepSpeed quiet
        }
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config)
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

    def save_state(self, checkpoint_dir: Path) -> None:
        state_dir = checkpoint_dir / STATE_DIR
        self.engine.save_checkpoint(str(state_dir), tag="engine")
        with open(state_dir / f"random_states_{self.rank}.pkl", "wb") as f:
            pickle.dump(_rng_state(), f)

    def load_state(self, checkpoint_dir: Path) -> None:
        state_dir = checkpoint_dir / STATE_DIR
        self.engine.load_checkpoint(str(state_dir), tag="engine", load_optimizer_states=True,
                                    load_lr_scheduler_states=True)
        with open(state_dir / f"random_states_{self.rank}.pkl", "rb") as f:
            _set_rng_state(pickle.load(f))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def make_backend(cfg: TrainConfig):
    check(cfg)
    if cfg.precision == "bf16" and not use_cuda(cfg):
        log.warning("train.precision=bf16 on CPU: bf16 matmuls run 30-100x slower than fp32 there")
    return AccelerateBackend(cfg) if cfg.backend == "accelerate" else DeepSpeedBackend(cfg)
