"""Evaluation split over the processes of a launch: each rank scores its share, every rank gets the whole.

RC groups and LM-loss sequences are dealt round-robin (rank r takes items r, r + W, r + 2W, ...), so
every rank gets a similar mix of lengths. Scores are gathered with `all_gather_object` and put back in
the original order, so every rank computes the same metrics and only rank 0 writes them; sums are
all-reduced in float64. Each score depends only on its own request (eval/scoring.py), so a sharded
evaluation equals a one-process one up to floating-point rounding (tests/eval/test_eval_sharded.py).

Under sharded parameters (FSDP, DeepSpeed ZeRO-3) a forward pass is itself a collective: every rank
must run as many forwards as the busiest one. `Lockstep` pads the short slices: before each forward
the ranks all-reduce whether any still has work, and a rank whose slice is done runs a one-token
forward for every round the others still need.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shards:
    rank: int = 0
    world_size: int = 1
    lockstep: bool = False  # parameters are sharded: forwards run in step on every rank

    @classmethod
    def of_process_group(cls, lockstep: bool = False) -> "Shards":
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            return cls(dist.get_rank(), dist.get_world_size(), lockstep)
        return cls()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def take(self, items: Sequence) -> list:
        """This rank's share of `items`."""
        return [items[i] for i in range(self.rank, len(items), self.world_size)]

    def run(self, model, work: Callable[[Any], Any]):
        """`work(model)` on this rank's share; under lockstep, also the padding forwards the others need."""
        if not (self.lockstep and self.world_size > 1):
            return work(model)
        stepped = Lockstep(model, self)
        result = work(stepped)
        stepped.finish()
        return result

    def together(self, work: Callable[[], Any]):
        """`work()` on every rank; a ValueError on any rank is raised on all of them, with the first
        failing rank's message, so no rank waits in a collective for one that has stopped."""
        try:
            result, error = work(), None
        except ValueError as exc:
            result, error = None, str(exc)
        if self.world_size > 1:
            errors: list = [None] * self.world_size
            dist.all_gather_object(errors, error)
            error = next((e for e in errors if e is not None), None)
        if error is not None:
            raise ValueError(error)
        return result

    def gather(self, mine: list) -> list:
        """Every rank's `take` results, in the order of the items they were taken from."""
        if self.world_size == 1:
            return mine
        parts: list = [None] * self.world_size
        dist.all_gather_object(parts, mine)
        out: list = [None] * sum(len(p) for p in parts)
        for rank, part in enumerate(parts):
            out[rank::self.world_size] = part
        return out

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums over the ranks, in float64."""
        if self.world_size == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        t = torch.tensor([int(flag)], device=_collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def agree(self, value):
        """Rank 0's `value` on every rank (e.g. whether a step is already evaluated)."""
        if self.world_size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def _collective_device() -> torch.device:
    # NCCL moves CUDA tensors only; gloo CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class Lockstep:
    """A model whose every forward is preceded by one all-reduce: "does any rank still have work?"

    Attribute access (config, parameters) goes to the model, so scoring code takes it as a model.
    """

    def __init__(self, model, shards: Shards):
        self.model, self.shards = model, shards

    @property
    def wrapped_model(self):
        """The model itself, for code that inspects its class (eval.scoring's cache argument)."""
        return self.model

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def __call__(self, *args, **kwargs):
        self.shards.any(True)
        return self.model(*args, **kwargs)

    def finish(self) -> None:
        """Run padding forwards until no rank has work left (every rank ends with the same round)."""
        device = next(self.model.parameters()).device
        while self.shards.any(False):
            self.model(input_ids=torch.zeros((1, 1), dtype=torch.long, device=device))


def init_from_environment(device: torch.device) -> bool:
    """Join the launch's process group when started by torchrun/accelerate with WORLD_SIZE > 1.

    Returns whether this call created the group (its caller then destroys it)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True
