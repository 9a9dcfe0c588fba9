"""WSD-S and branch ladders: each trunk's checkpoints handed to the rungs they belong to.

A trunk (`ladder.core.plan.Trunk`) trains in `<out_dir>/trunks/<size>-<dataset>-<schedule>/`, a run
directory like a rung's. Each of its checkpoints belongs to one rung (`Trunk.owner`) and is linked
into that rung's `checkpoints/` by a relative symbolic link, so every rung directory holds its
checkpoints, `config.yaml` (the rung), `record.json` and `results.jsonl` as under cosine and the later
stages read it unchanged.
Under wsds the rung records are derived here from the trunk's; a branch writes its own as it trains.
Every step is idempotent: `catch_up` redoes whatever a crash between two of them left undone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from eval.cli import evaluate_unevaluated, make_eval_hook
from ladder.core.files import atomic_write_text
from ladder.core.layout import CHECKPOINTS, CONFIG, TRAINER_STATE, checkpoints, rung_dir, trunk_dir
from ladder.core.plan import Rung, Trunk, build_plan
from train.rundir import read_record, write_record

JOB = "trunk.yaml"  # beside a trunk's checkpoints: how torchrun workers publish them (`publish_checkpoint`)


def link_checkpoint(checkpoint: Path, directory: Path) -> Path:
    """`directory/checkpoints/<name>` pointing at a trunk's checkpoint, made in one rename."""
    link = directory / CHECKPOINTS / checkpoint.name
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.parent / f".link-{checkpoint.name}"  # not .tmp-*: the loop's cleanup removes directories
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(os.path.relpath(checkpoint, link.parent), tmp)
        os.replace(tmp, link)
    return link


def _final_loss(checkpoint: Path) -> Optional[float]:
    recent = torch.load(checkpoint / TRAINER_STATE, weights_only=True)["recent_losses"]
    return recent[-1] if recent else None


class Points:
    """The rungs of one trunk: links, wsds records and evaluation (when `eval_cfg` is given)."""

    def __init__(self, out_dir: str | Path, trunk: Trunk, eval_cfg: Optional[DictConfig] = None):
        self.out_dir, self.trunk, self.eval_cfg = Path(out_dir), trunk, eval_cfg
        self.directory = trunk_dir(out_dir, trunk.name)
        self._hooks: dict[str, Callable] = {}

    def hook(self, rung: Rung) -> Optional[Callable[..., None]]:
        """The rung's eval hook (`eval.cli.make_eval_hook`), made once; None when not evaluating."""
        if self.eval_cfg is None:
            return None
        if rung.rung_id not in self._hooks:
            self._hooks[rung.rung_id] = make_eval_hook(self.eval_cfg, rung_dir(self.out_dir, rung.rung_id))
        return self._hooks[rung.rung_id]

    def publish(self, checkpoint: Path, step: int, model, **kwargs) -> None:
        """The trunk's eval hook, on every process: rank 0 links a new checkpoint into its rung and
        updates the records; then every rank evaluates the live model into the rung's results."""
        rung = self.trunk.rungs[self.trunk.owner(step)]
        if int(os.environ.get("RANK", 0)) == 0:
            self._link(Path(checkpoint), rung)
            self.write_records()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()  # the other ranks read the rung's config.yaml next
        hook = self.hook(rung)
        if hook is not None:  # the trunk's checkpoint itself: it names the step and holds the tokenizer
            hook(checkpoint, step, model, **kwargs)

    def catch_up(self) -> None:
        """Every trunk checkpoint linked, every record written, every rung checkpoint evaluated."""
        for step, checkpoint in checkpoints(self.directory):
            self._link(checkpoint, self.trunk.rungs[self.trunk.owner(step)])
        self.write_records()
        if self.eval_cfg is not None:
            for rung in self.trunk.rungs:
                evaluate_unevaluated(self.eval_cfg, rung_dir(self.out_dir, rung.rung_id))

    def _link(self, checkpoint: Path, rung: Rung) -> None:
        """The checkpoint linked into its rung, whose config.yaml says which rung it is (eval reads it)."""
        directory = rung_dir(self.out_dir, rung.rung_id)
        link_checkpoint(checkpoint, directory)
        if not (directory / CONFIG).exists():
            atomic_write_text(directory / CONFIG, OmegaConf.to_yaml({"rung": rung.as_dict(), "trunk": self.trunk.name}))

    def write_records(self) -> None:
        """wsds: each rung's record from the trunk's. Done once the bottom of its decay is saved;
        running (or failed or interrupted, with the trunk's reason) while the trunk is in its segment; else none."""
        if self.trunk.schedule != "wsds":
            return
        record = read_record(self.directory)
        if record is None:
            return
        saved = dict(checkpoints(self.directory))
        tokens_per_step = self.trunk.tokens_per_step
        starts = (0,) + self.trunk.ends[:-1]
        for rung, start, end in zip(self.trunk.rungs, starts, self.trunk.ends):
            directory = rung_dir(self.out_dir, rung.rung_id)
            if end in saved:
                state, step, loss, reason = "done", end, _final_loss(saved[end]), None
            elif record["step"] > start or start == 0:
                state = record["state"] if record["state"] in ("failed", "interrupted") else "running"
                step, loss = min(record["step"], end), record["loss"]
                reason = record["reason"]
            else:
                continue
            own = checkpoints(directory)
            directory.mkdir(parents=True, exist_ok=True)
            write_record(directory, rung.rung_id, state, step, end, step * tokens_per_step, reason=reason,
                         checkpoint=f"{CHECKPOINTS}/{own[-1][1].name}" if own else None, loss=loss)


_worker_points: dict = {}  # trunk directory -> its Points, so tasks are prepared once per worker


def publish_checkpoint(checkpoint_dir: Path, step: int, model, **kwargs) -> None:
    """The hook of torchrun workers training a trunk: they cannot be handed `Points.publish`, so it
    is rebuilt from the job file `run_trunk` (ladder.orchestration.rung) wrote into the trunk's directory."""
    directory = Path(checkpoint_dir).parent.parent
    if directory not in _worker_points:
        job = OmegaConf.load(directory / JOB)
        trunk = build_plan(job.config).trunk(directory.name)
        _worker_points[directory] = Points(job.config.out_dir, trunk, job.config if job.evaluate else None)
    _worker_points[directory].publish(Path(checkpoint_dir), step, model, **kwargs)
