"""Training one run (a rung, or a trunk of a WSD-S or branch ladder: ladder.core.schedules.Run): its model, on
exactly its tokens, with its recipe, on one process or many.

The same loop runs on one CPU, one GPU, a node or many nodes; `train.backends` hides how gradients
are synchronised (accelerate DDP/FSDP or DeepSpeed ZeRO). The global batch is `hp.batch_size`
sequences; each of the `world_size` processes reads only its contiguous slice of every global batch
(a thread reads the next while the current trains) and accumulates gradients over micro-batches of at
most `micro_batch_size` sequences.

With train.precision=bf16 the forward passes run under bf16 autocast over fp32 weights, on every backend
(train.backends). Between checks the host never waits for the device: losses and gradient norms stay device tensors, and
a step whose loss or gradient is not finite is skipped by the optimizer itself (`train.optim.skip_unless`).
Every `log_every` steps and at every checkpoint the losses of the steps since the last check are reduced
over the processes and read in one transfer, then checked step by step for divergence, as if each step
had been checked on its own.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import math
import shutil
import time
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Callable, List, Optional

import torch
import torch.distributed as dist
import transformers
from omegaconf import OmegaConf

from ladder.core.checkpoint_files import damage, record_sizes
from ladder.core.configs import one_line
from ladder.core.files import atomic_write_text
from ladder.core.interrupt import raise_if_stopped
from ladder.core.layout import (CHECKPOINTS, CONFIG, STATE_DIR, TRAINER_STATE, checkpoint_name, checkpoints,
                               latest_checkpoint, temporary_checkpoint_dir)
from ladder.core.provenance import harness_commit
from ladder.core.schedules import Run, RunMismatch, describe
from train.backends import make_backend
from train.checkpoint import StateWrites, barrier, writing
from train.config import DivergenceConfig, TrainConfig
from train.feed import Prefetch
from train.loss import attach_loss
from train.metrics import MetricsLog, peak_flops
from train.model import attention, build_model, compile_blocks
from train.optim import make_optimizer, make_scheduler
from train.rundir import (CheckpointDamaged, commit_checkpoint, drop_old_states, read_record, read_run,
                          remove_incomplete_checkpoints, write_record)
from train.sizing import derive_micro_batch, device_memory

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    name: str  # the run's
    run_dir: Path
    state: str  # done or failed
    step: int  # last completed step (done), or the step that diverged (failed)
    steps: int
    tokens: int  # tokens trained on
    loss: Optional[float]  # training CE of the last completed step
    reason: Optional[str] = None  # why a failed run stopped
    checkpoints: List[Path] = field(default_factory=list)


def as_train_config(cfg) -> TrainConfig:
    """A TrainConfig from the dataclass, a DictConfig or a dict, checked against the schema."""
    node = OmegaConf.structured(cfg) if is_dataclass(cfg) else cfg
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainConfig), node))


def split_batch(global_batch: int, world_size: int, micro_batch_size: int) -> tuple[int, int, int]:
    """(sequences per process, micro-batch, accumulation steps) for a global batch over `world_size` processes.

    The micro-batch is the largest divisor of the per-process batch not above `micro_batch_size`,
    so every optimizer step sees exactly the global batch whatever the number of devices.
    """
    if global_batch % world_size:
        raise ValueError(f"the global batch of {global_batch} sequences does not split over {world_size} processes")
    per_process = global_batch // world_size
    micro = max(d for d in range(1, min(micro_batch_size, per_process) + 1) if per_process % d == 0)
    return per_process, micro, per_process // micro


def divergence(loss: float, recent: List[float], cfg: DivergenceConfig) -> Optional[str]:
    """Why `loss` means the run diverged, or None. `recent` holds the previous steps' losses."""
    if not math.isfinite(loss):
        return f"non-finite loss ({loss})"
    if cfg.window and len(recent) >= cfg.window:
        mean = sum(recent[-cfg.window:]) / cfg.window
        if loss > cfg.spike_factor * mean:
            return (f"loss spike: {loss:.4g} > {cfg.spike_factor:g} × {mean:.4g}, "
                    f"the mean of the previous {cfg.window} steps")
    return None


@dataclass
class _Pending:
    """A step whose loss and gradient norm are still on the device."""
    step: int
    loss: torch.Tensor  # this process's CE
    grad_norm: torch.Tensor  # over the whole model, the same on every process


def _read(pending: List[_Pending]) -> tuple[List[float], List[float]]:
    """The pending steps' losses (mean over processes) and gradient norms: one all-reduce, one device→host copy."""
    losses = torch.stack([p.loss for p in pending])
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(losses)
        losses /= dist.get_world_size()
    values = torch.cat([losses, torch.stack([p.grad_norm.to(losses) for p in pending])]).tolist()
    return values[:len(pending)], values[len(pending):]


def end_process_group() -> None:
    """For entry points at exit: the group outlives each rung, so a launch can train several."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _token_ids(tokenizer_dir: Optional[Path]) -> dict:
    """EOS and padding ids for the model config, so generation tools stop where the tokenizer does."""
    if tokenizer_dir is None:
        return {}
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    return {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}


def _load_model(run: Run, cfg: TrainConfig, tokenizer_dir: Optional[Path], checkpoint: Optional[Path], cuda: bool):
    attn = attention(cfg.attention, cuda)
    if checkpoint is None:
        model = build_model(run.shape, seed=cfg.seed, attn_implementation=attn, **_token_ids(tokenizer_dir))
    else:
        from transformers import AutoModelForCausalLM

        # fp32 master weights whatever the checkpoint's dtype; the backend casts for bf16.
        model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32, attn_implementation=attn)
    count = sum(p.numel() for p in model.parameters())
    if count != run.shape.total_params:
        raise RuntimeError(f"{run.name}: model has {count:,} parameters, the size rule says "
                           f"{run.shape.total_params:,}")
    return model


@contextlib.contextmanager
def _resuming_from(checkpoint: Optional[tuple[int, Path]]):
    """A checkpoint that passed its size check but does not load (its bytes damaged in place) is named."""
    try:
        yield
    except Exception as exc:
        if checkpoint is None:
            raise
        raise CheckpointDamaged(f"{checkpoint[1]}: cannot resume from it ({type(exc).__name__}: {one_line(exc)}); "
                                f"restore it, or move it aside (to `{checkpoint[1].name}.damaged`): the run then "
                                f"resumes from the newest older checkpoint that holds its state, or else from "
                                f"the start") from exc


def train_run(run: Run, sequences, run_dir: Path, cfg: TrainConfig, tokenizer_dir: Optional[Path] = None,
               eval_hook: Optional[Callable[..., Optional[list]]] = None,
               composed: Optional[dict] = None) -> TrainResult:
    """Train (or resume) one run into `run_dir` (docs/formats.md); every process of a launch calls this.

    `sequences` is a `ladder.core.shards.TokenSequences` (or anything with its `seq_len`, `__len__` and
    `batches(batch_size, start)`). `eval_hook(checkpoint_dir, step, model, dtype=, lockstep=)` runs on
    every process after each checkpoint is committed, with the live model (eval.cli.make_eval_hook); the
    records it returns on the main process go to wandb. `composed` is the whole config the run is part of
    (the ladder's), saved with it in config.yaml and wandb. A run whose record is done returns at once; otherwise it continues from its last complete checkpoint.
    """
    cfg = as_train_config(cfg)
    run_dir = Path(run_dir)
    # transformers draws a bar for every checkpoint it writes; the run has its own bar.
    transformers.utils.logging.disable_progress_bar()
    return _Training(run, sequences, run_dir, cfg, tokenizer_dir, eval_hook, make_backend(cfg), composed).train()


class _Training:
    def __init__(self, run, sequences, run_dir, cfg, tokenizer_dir, eval_hook, backend, composed):
        self.run, self.hp, self.sequences, self.run_dir, self.cfg = run, run.hp, sequences, run_dir, cfg
        self.tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir else None
        self.eval_hook, self.backend, self.main = eval_hook, backend, backend.is_main
        self.composed = composed
        self.per_process, self.micro, self.accumulation = split_batch(
            self.hp.batch_size, backend.world_size, cfg.micro_batch_size or self._derived_micro_batch())
        self.tokens_per_step = self.hp.batch_size * run.shape.seq_len
        if sequences.seq_len != run.shape.seq_len:
            raise ValueError(f"{run.name}: sequences of {sequences.seq_len} tokens, the model's are {run.shape.seq_len}")
        if len(sequences) < self.hp.steps * self.hp.batch_size:
            raise ValueError(f"{run.name}: {self.hp.steps} steps of {self.hp.batch_size} sequences need "
                             f"{self.hp.steps * self.hp.batch_size} sequences, the data has {len(sequences)}")

    def _derived_micro_batch(self) -> int:
        sharded = self.cfg.backend == "deepspeed" or self.cfg.distributed == "fsdp"
        return derive_micro_batch(self.run.shape, self.cfg.precision, device_memory(self.backend.device),
                                  self.backend.world_size if sharded else 1)

    def _record(self, state: str, step: int, **extra) -> None:
        if self.main:
            latest = latest_checkpoint(self.run_dir)
            write_record(self.run_dir, self.run.name, state, step, self.hp.steps, step * self.tokens_per_step,
                         checkpoint=f"{CHECKPOINTS}/{latest[1].name}" if latest else None, **extra)

    def _result(self, state: str, step: int, loss: Optional[float], reason: Optional[str] = None) -> TrainResult:
        return TrainResult(self.run.name, self.run_dir, state, step, self.hp.steps, step * self.tokens_per_step,
                           loss, reason, [p for _, p in checkpoints(self.run_dir)])

    def train(self) -> TrainResult:
        if self.main:
            (self.run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
            remove_incomplete_checkpoints(self.run_dir)
        barrier()
        self._check_continues()
        record = read_record(self.run_dir)
        if record and record["state"] == "done" and record["step"] >= self.hp.steps:
            return self._result("done", record["step"], record["loss"])
        # A longer run continues a done one it agrees with (a trunk extended to a larger D): as any other.
        self.resume = self._resume_point()
        try:
            return self._train()
        except BaseException as exc:  # the record says why the run stopped
            # Ctrl-C, SIGTERM (ladder.core.interrupt) and submitit's exit on preemption stop a healthy run.
            stopped = isinstance(exc, (KeyboardInterrupt, SystemExit))
            try:
                self._record("interrupted" if stopped else "failed", (read_record(self.run_dir) or {}).get("step", 0),
                             reason=f"{type(exc).__name__}: {exc}")
            except OSError as error:  # e.g. the full disk that stopped the run: its own error is the one to report
                logger.warning("%s: could not record why it stopped: %s", self.run.name, error)
            raise

    def _check_continues(self) -> None:
        """RunMismatch where the directory's checkpoints were trained by a run that differs from this one on a
        step they hold: this run would continue, or take as done, another run's work."""
        trained, previous = latest_checkpoint(self.run_dir), read_run(self.run_dir)
        if trained is None or previous is None:
            return
        differences = previous.differences(self.run, min(trained[0], self.hp.steps))
        if differences:
            raise RunMismatch(f"{self.run_dir}: its checkpoints were trained with other settings than "
                              f"{self.run.name} now asks for ({describe(differences)}); train it in another "
                              f"out_dir, or with the settings it was trained with")

    def _resume_point(self) -> Optional[tuple[int, Path]]:
        """The newest checkpoint whose files are whole (ladder.core.checkpoint_files) and that holds the state to
        resume from (an unfinished run keeps it in its two newest); a damaged newer one is moved aside with a
        warning (to `<name>.damaged`, which nothing reads). Where every checkpoint with state is damaged,
        CheckpointDamaged: the run is not restarted from scratch without a word. Every process decides alike
        from the same files."""
        damaged = []
        for step, path in reversed(checkpoints(self.run_dir)):
            if not (path / STATE_DIR).is_dir():
                continue
            problem = damage(path)
            if problem is None:
                break
            damaged.append((path, problem))
        else:
            if damaged:
                path, problem = damaged[0]
                names = " and ".join(p.name for p, _ in damaged)
                raise CheckpointDamaged(
                    f"{problem}: {self.run.name} has no whole checkpoint with the optimizer state to resume from "
                    f"({names} damaged, older ones keep their weights only); restore that file, or move {names} "
                    f"aside (e.g. to {path.name}.damaged) to train {self.run.name} again from the start")
            return None
        if self.main:
            for bad, problem in damaged:
                aside = next(a for i in itertools.count() if not (a := bad.with_name(
                    f"{bad.name}.damaged{f'-{i}' if i else ''}")).exists())
                logger.warning("%s: %s; moved %s to %s and resuming from %s", self.run.name, problem, bad.name,
                               aside.name, path.name)
                bad.rename(aside)
        barrier()
        return step, path

    def _train(self) -> TrainResult:
        cfg, hp, backend = self.cfg, self.hp, self.backend
        latest = self.resume
        with _resuming_from(latest):
            model = _load_model(self.run, cfg, self.tokenizer_dir, latest[1] if latest else None,
                                backend.device.type == "cuda")
        attach_loss(model, hp.z_loss, compiled=cfg.compile, liger=cfg.loss == "liger")
        if cfg.compile:
            compile_blocks(model, key=(self.run.shape, self.micro))
        self.model = backend.prepare(model, lambda m: make_optimizer(m, hp),
                                     lambda opt: make_scheduler(opt, self.run.curve), self.accumulation, hp)
        self.scheduler = backend.scheduler
        self.states = StateWrites(backend, self._state_landed)
        start, recent = 0, []
        if latest:
            with _resuming_from(latest):
                backend.load_state(latest[1] / STATE_DIR)
                state = torch.load(latest[1] / TRAINER_STATE, weights_only=True)
            start, recent = state["step"], state["recent_losses"]
            assert state["position"] == start * hp.batch_size, "data position and step disagree"

        # "rung": the rung whose directory this is, where evaluation reads it (a trunk's directory has none).
        run_config = {"train": OmegaConf.to_container(OmegaConf.structured(cfg)), "run": self.run.as_dict(),
                      **({"rung": self.run.rung} if self.run.rung is not None else {}),
                      "world_size": backend.world_size, "micro_batch_size": self.micro,
                      "gradient_accumulation_steps": self.accumulation, "harness_commit": harness_commit(),
                      **({"ladder": self.composed} if self.composed is not None else {})}
        log = None
        if self.main:
            atomic_write_text(self.run_dir / CONFIG, OmegaConf.to_yaml(run_config))
            self._record("running", start)
            log = MetricsLog(self.run_dir, cfg, self.run.name, start, hp.steps, run_config)
        result = None
        try:
            result = self._steps(start, recent, log)
            return result
        finally:
            if log is not None:  # wandb marks the run crashed or failed unless it finished
                log.close(exit_code=0 if result is not None and result.state == "done" else 1)

    def _steps(self, start: int, recent: List[float], log: Optional[MetricsLog]) -> TrainResult:
        cfg, hp, backend = self.cfg, self.hp, self.backend
        save_at = set(self.run.saved_steps(cfg.checkpoint_fractions))
        lo = backend.rank * self.per_process
        feed = Prefetch(self.sequences.batches(hp.batch_size, start=start * hp.batch_size,
                                               rows=(lo, lo + self.per_process),
                                               pin_memory=backend.device.type == "cuda"))
        try:
            return self._run_steps(start, recent, log, feed, save_at)
        except BaseException:
            self.states.finish_quietly()  # the state in flight is the newest to resume from
            raise
        finally:
            feed.close()

    def _run_steps(self, start, recent, log, feed, save_at) -> TrainResult:
        cfg, hp, backend = self.cfg, self.hp, self.backend
        flops_per_token, peak = self.run.shape.flops_per_token(), peak_flops(cfg)
        autocast = (torch.autocast(backend.device.type, dtype=torch.bfloat16) if cfg.precision == "bf16"
                    else contextlib.nullcontext())
        self.model.train()
        # The loss of the step resumed from: the record of a run resumed at its last step (a stop between
        # its final checkpoint and its done record) trains no step and must still say it.
        clock, since, loss, pending = time.perf_counter(), 0, recent[-1] if recent else None, []
        for step in range(start + 1, hp.steps + 1):  # 1-based: `step` optimizer steps done after this one
            raise_if_stopped()
            batch = next(feed).to(backend.device, non_blocking=True)
            ce_sum = torch.zeros((), device=backend.device)
            for k in range(self.accumulation):
                ids = batch[k * self.micro:(k + 1) * self.micro]
                with autocast:
                    out = self.model(input_ids=ids, labels=ids)
                backend.backward(out.total, boundary=k == self.accumulation - 1)
                ce_sum += out.ce
            step_loss = ce_sum / self.accumulation
            lr = self.scheduler.get_last_lr()[0]  # the LR this step uses, for the log
            # A non-finite loss or gradient never reaches the weights: the optimizer skips on the device.
            pending.append(_Pending(step, step_loss, backend.step(hp.grad_clip, torch.isfinite(step_loss))))
            since += 1
            if step % cfg.log_every and step not in save_at:
                continue
            losses, norms = _read(pending)
            for p, step_loss, grad_norm in zip(pending, losses, norms):
                reason = divergence(step_loss, recent, cfg.divergence) or (
                    None if math.isfinite(grad_norm) else f"non-finite gradient norm ({grad_norm})")
                if reason:  # every process read the same reduced losses and norms, so all stop here
                    self.states.finish()
                    self._record("failed", p.step, reason=reason, loss=loss)
                    return self._result("failed", p.step, loss, reason)
                loss = step_loss
                recent = (recent + [loss])[-max(1, cfg.divergence.window):]
            pending = []
            now = time.perf_counter()  # logging's own time counts towards the next interval
            if log is not None:
                tokens_per_s = since * self.tokens_per_step / (now - clock)
                flops = tokens_per_s * flops_per_token
                log.log({"step": step, "loss": loss, "lr": lr, "grad_norm": norms[-1],
                         "tokens": step * self.tokens_per_step, "tokens_per_s": tokens_per_s,
                         "flops_per_s": flops, "mfu": flops / (peak * backend.world_size) if peak else None})
                log.progress(since, tokens_per_s, loss)
            clock, since = now, 0
            if step in save_at:
                self._checkpoint(step, recent, log)
                clock = time.perf_counter()  # checkpoint writes are not training throughput
        self.states.finish()
        if self.main:  # a done run resumes no more (a longer one continues from its newest checkpoint)
            drop_old_states(self.run_dir, keep=set(self.run.keep_steps))
        self._record("done", hp.steps, loss=loss)
        return self._result("done", hp.steps, loss)

    def _checkpoint(self, step: int, recent: List[float], log: Optional[MetricsLog]) -> None:
        """Write checkpoints/step-<step>: its weights atomically (everything under a temporary name, then one
        rename), then its resume state in the background (train.checkpoint)."""
        self.states.finish()  # the one before is in place first: at most one state in flight
        tmp = temporary_checkpoint_dir(self.run_dir, step)
        final = self.run_dir / CHECKPOINTS / checkpoint_name(step)
        with writing(tmp, self.main):
            if self.main:
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
            weights = self.backend.full_state_dict()  # collective under FSDP and ZeRO-3
            if self.main:
                self.backend.unwrapped().save_pretrained(str(tmp), state_dict=weights)
                if self.tokenizer_dir is not None:
                    for f in self.tokenizer_dir.iterdir():
                        if f.is_file():
                            shutil.copy2(f, tmp / f.name)
                torch.save({"step": step, "position": step * self.hp.batch_size,
                            "tokens": step * self.tokens_per_step, "recent_losses": recent,
                            "world_size": self.backend.world_size}, tmp / TRAINER_STATE)
                record_sizes(tmp)  # what evaluation checks it against (and resuming, with its state's)
                commit_checkpoint(tmp, final)
        barrier()
        self.states.start(step, final)  # every process its part, copied now, written while training goes on
        if self.main:
            self._record("running", step, loss=recent[-1])
        if self.eval_hook is not None:
            self._evaluate(final, step, log)

    def _state_landed(self, step: int) -> None:
        """A checkpoint's resume state is in place: the one before keeps its state too (what a run resumes from
        if this one is damaged), older ones theirs only where a branch forks there."""
        drop_old_states(self.run_dir, keep=set(self.run.keep_steps), newest=2)

    def _evaluate(self, checkpoint: Path, step: int, log: Optional[MetricsLog]) -> None:
        """The eval hook on every process, with the live model where it trains, in the training precision; what
        it evaluated goes to wandb beside the training curves."""
        self.model.eval()
        try:
            records = self.eval_hook(checkpoint, step, self.backend.unwrapped(),
                                     dtype=torch.bfloat16 if self.cfg.precision == "bf16" else None,
                                     lockstep=self.backend.shards_parameters)
        finally:
            self.model.train()
        if log is not None and records:
            log.log_evaluation(step, records)
