"""Stand-ins for what other stages provide, for the training tests only.

`FakeSequences` has the interface of `train.data.TokenSequences`: fixed token ids from a seeded
torch.Generator, sequences (start + stride·t) mod V so a model can learn them and the loss falls.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ladder.core.plan import Rung
from ladder.core.recipes import Hyperparams
from ladder.core.schedules import SCHEDULES, Run
from ladder.core.sizes import ModelShape

SHAPE = ModelShape(name="tiny-24", d_model=24, n_layers=2, n_heads=2, mlp_hidden=64, vocab_size=256, seq_len=32)


class FakeSequences:
    def __init__(self, count: int, seq_len: int = SHAPE.seq_len, vocab_size: int = SHAPE.vocab_size, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        start = torch.randint(0, vocab_size, (count, 1), generator=g)
        stride = torch.randint(1, 5, (count, 1), generator=g)
        self.ids = (start + stride * torch.arange(seq_len)) % vocab_size
        self.seq_len = seq_len

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ids[i].numpy()

    def batches(self, batch_size: int, start: int = 0, rows=None, pin_memory: bool = False):
        lo, hi = rows or (0, batch_size)
        for i in range(start, len(self) - batch_size + 1, batch_size):
            yield self.ids[i + lo:i + hi].clone()


class SlowFakeSequences(FakeSequences):
    """Sleeps before every batch from global batch `slow_from` on, so a test can kill a run mid-way."""

    def __init__(self, count: int, slow_from: int, delay_s: float):
        super().__init__(count)
        self.slow_from, self.delay_s = slow_from, delay_s

    def batches(self, batch_size: int, start: int = 0, **kwargs):
        for i, batch in enumerate(super().batches(batch_size, start, **kwargs), start=start // batch_size):
            if i >= self.slow_from:
                time.sleep(self.delay_s)
            yield batch


class FakeTokenSequences(FakeSequences):
    """train.data.TokenSequences' constructor over the stand-in sequences (32-token sequences, V=256)."""

    def __init__(self, train_dir, tokens: int, seed: int):
        super().__init__(-(-tokens // SHAPE.seq_len), seed=seed)


def tiny_rung(steps: int = 12, batch_size: int = 8, lr: float = 1e-2, shape: ModelShape = SHAPE,
              multiplier: float = 1.0) -> Rung:
    hp = Hyperparams(batch_size=batch_size, lr=lr, warmup_steps=2, steps=steps, final_lr=0.1 * lr,
                     weight_decay=0.1, z_loss=1e-4)
    return Rung(shape, "fake", multiplier, shape.total_params, steps * batch_size * shape.seq_len, hp)


def tiny_run(steps: int = 12, batch_size: int = 8, lr: float = 1e-2, shape: ModelShape = SHAPE) -> Run:
    """A rung of the stand-in data trained alone, as the cosine schedule runs it."""
    return SCHEDULES["cosine"].jobs([tiny_rung(steps, batch_size, lr, shape)], 0.1)[0].run


def sequences_for(run: Run, seed: int = 0) -> FakeSequences:
    return FakeSequences(run.hp.steps * run.hp.batch_size, run.shape.seq_len, run.shape.vocab_size, seed)


class GatedStateSequences(FakeSequences):
    """FakeSequences whose run's checkpoint state writes are held back until training asks for the batch of step
    `release_at` (at most `hold_s`), and which stop the run with a KeyboardInterrupt at step `crash_at`. Each
    process's writer records whether training released it (`released`) or its wait ran out (`held on`): a loop
    that waited for the write would never reach the releasing batch."""

    def __init__(self, count: int, gate: str, release_at: int, crash_at: int = 0, hold_s: float = 60.0):
        super().__init__(count)
        import functools

        import train.backends

        self.gate, self.release_at, self.crash_at = Path(gate), release_at, crash_at
        train.backends._state_writer = functools.partial(_gated_writer, gate=self.gate, hold_s=hold_s)

    def batches(self, batch_size: int, start: int = 0, **kwargs):
        for step, batch in enumerate(super().batches(batch_size, start, **kwargs), start=start // batch_size + 1):
            if step == self.release_at:
                self.gate.touch()
            if step == self.crash_at:
                raise KeyboardInterrupt("killed")
            yield batch


def _gated_writer(path, gate: Path, hold_s: float):
    import torch.distributed as dist
    from torch.distributed.checkpoint import FileSystemWriter

    class Gated(FileSystemWriter):
        def write_data(self, plan, planner):
            deadline = time.time() + hold_s
            while not gate.exists() and time.time() < deadline:
                time.sleep(0.05)
            rank = dist.get_rank() if dist.is_initialized() else 0
            with open(f"{gate}.rank{rank}", "a") as f:
                f.write(f"{'released' if gate.exists() else 'held on'} {Path(self.path).parent.parent.name}\n")
            return super().write_data(plan, planner)

    return Gated(str(path))
