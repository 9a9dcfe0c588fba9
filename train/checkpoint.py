"""Writing a checkpoint without stalling the node: the weights first, the resume state while training goes on.

A checkpoint (`checkpoints/step-<8 digits>`, docs/formats.md) is committed in two renames:
1. its weights as a transformers model directory (what evaluation, a trunk's rungs and a later run read), the
   tokenizer and the trainer state, written under `checkpoints/.tmp-step-*` (the main process) and renamed into
   place before the eval hook runs, as before;
2. its resume state (STATE_DIR: the optimizer's state, the scheduler, every process's RNG state), which is two
   thirds of its bytes (AdamW's two fp32 moments beside the fp32 weights): copied to host memory at the step
   (`train.backends.save_sharded_state`), then written by every process, its own part, in a background thread
   under `step-*/.tmp-state` while training goes on, and renamed to `state` once every process is done.
At most one state is in flight: the next checkpoint, the run's end and its stop (`finish`) wait for it first.
Only a checkpoint whose state has landed is resumed from, and the two newest such keep theirs
(`drop_old_states`), so a crash during a write resumes from the one before; a leftover `.tmp-state` is removed
with the other incomplete writes (`train.rundir.remove_incomplete_checkpoints`). The file list (FILE_SIZES) is
written at each rename, so resuming checks the state's files too. DeepSpeed writes its state synchronously.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Optional

import torch.distributed as dist

from ladder.core.checkpoint_files import record_sizes
from ladder.core.configs import one_line
from ladder.core.layout import STATE_DIR, TMP_PREFIX

log = logging.getLogger(__name__)

STATE_IN_FLIGHT = f"{TMP_PREFIX}{STATE_DIR}"  # a checkpoint's resume state while it is written


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


@contextlib.contextmanager
def writing(directory: Path, main: bool):
    """A checkpoint that cannot be written is named, with the space left beside it: a full disk's errors from
    safetensors and torch.save name no file (and are no OSError). Its partial directory is removed (by the main
    process), which on a full disk frees the space the run's record needs to say why it stopped."""
    try:
        yield
    except Exception as exc:
        try:
            free = f"; {_bytes(shutil.disk_usage(directory.parent).free)} free there"
        except OSError:
            free = ""
        if main:
            shutil.rmtree(directory, ignore_errors=True)
        raise OSError(f"cannot write checkpoint {directory} ({type(exc).__name__}: {one_line(exc)}{free})") from exc


def _bytes(n: int) -> str:
    return next(f"{n / 2**p:.3g} {unit}" for p, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB"), (0, "B"))
                if n >= 2**p or not p)


def _result(future) -> None:
    """The background write's outcome. torch.distributed.checkpoint's CheckpointException is a BaseException
    holding every rank's traceback: its first rank's error is raised instead, as an Exception `writing` names."""
    try:
        future.result()
    except Exception:
        raise
    except BaseException as exc:
        failures = getattr(exc, "failures", None)
        if not failures:
            raise
        first = next(iter(failures.values()))
        cause = first[0] if isinstance(first, tuple) else first
        raise RuntimeError(f"{type(cause).__name__}: {one_line(cause)}") from None


class StateWrites:
    """The resume state of a run's newest checkpoint, written while training goes on (module docstring).

    `landed(step)` runs on the main process once a state is in place (the loop drops the older states there)."""

    def __init__(self, backend, landed):
        self.backend, self.main, self.landed = backend, backend.is_main, landed
        self.pending: Optional[tuple] = None  # (step, checkpoint, future or None, when it started)
        self.timings: list[dict] = []  # per state: its write's seconds, and those the training loop spent on it

    def start(self, step: int, checkpoint: Path) -> None:
        """Begin writing `checkpoint`'s state (every process): returns once it is copied off the training state."""
        self.finish()
        directory, started = checkpoint / STATE_IN_FLIGHT, time.perf_counter()
        with writing(directory, self.main):
            if self.main:
                shutil.rmtree(directory, ignore_errors=True)
                directory.mkdir()
            barrier()
            future = self.backend.save_state(directory)
        self.pending = (step, checkpoint, future, started)
        timing = {"step": step, "on_loop_s": time.perf_counter() - started}
        if future is not None:  # when the background write itself ended, whenever finish() is called
            future.add_done_callback(lambda _: timing.setdefault("written_s", time.perf_counter() - started))
        self.timings.append(timing)

    def finish(self) -> None:
        """Wait for the state in flight, if any, and put it in place (every process)."""
        if self.pending is None:
            return
        step, checkpoint, future, started = self.pending
        self.pending = None
        waited, timing = time.perf_counter(), self.timings[-1]
        with writing(checkpoint / STATE_IN_FLIGHT, self.main):
            if future is not None:
                _result(future)
            # its callback's time where it ran already (it may follow the result), else now; DeepSpeed's: on the loop
            written = time.perf_counter() - started if future is not None else timing["on_loop_s"]
            timing.setdefault("written_s", written)
            barrier()
            if self.main:
                os.replace(checkpoint / STATE_IN_FLIGHT, checkpoint / STATE_DIR)
                record_sizes(checkpoint)
        timing["on_loop_s"] += time.perf_counter() - waited
        log.info("%s: resume state written in %.2f s, %.2f s of the loop's time (its copy to host memory, and "
                 "any wait for the write)", checkpoint.name, timing["written_s"], timing["on_loop_s"])
        if self.main:
            self.landed(step)
        barrier()

    def finish_quietly(self) -> None:
        """finish() on the way out of a failed or stopped run: the state in flight is the freshest one to resume
        from; an error writing it is one warning, never a traceback over the failure itself."""
        try:
            self.finish()
        except Exception as exc:
            log.warning("%s", exc)
