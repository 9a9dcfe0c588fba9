"""Each checkpoint a job writes, handed to the rung it belongs to and evaluated there.

A job (`ladder.core.schedules.Job`) trains its run in its own directory. A rung's own run (cosine, wsd, a
branch) writes its checkpoints where its rung reads them. A trunk (wsds, branch) trains in
`<out_dir>/trunks/<size>-<dataset>-<schedule>/`: each of its checkpoints belongs to one rung (`Job.owner`) and
is linked into that rung's `checkpoints/` by a relative symbolic link, so every rung directory holds its
checkpoints, `config.yaml` (the rung), `record.json` and `results.jsonl` whatever the schedule, and the later
stages read it unchanged. Where the job says so (wsds) the rung records are derived here from the trunk's.
Every step is idempotent: `catch_up` redoes whatever a crash between two of them left undone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from eval.cli import evaluate_unevaluated, make_eval_hook
from ladder.core.configs import one_line
from ladder.core.files import atomic_write_text
from ladder.core.layout import CHECKPOINTS, CONFIG, JOB, TRAINER_STATE, checkpoints, rung_dir
from ladder.core.plan import build_plan
from ladder.core.schedules import Job
from train.rundir import read_record, write_record

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
    path = checkpoint / TRAINER_STATE
    try:
        recent = torch.load(path, weights_only=True)["recent_losses"]
    except Exception as exc:  # torch's errors for a damaged file name no file
        raise ValueError(f"{path}: unreadable ({type(exc).__name__}: {one_line(exc)})") from exc
    return recent[-1] if recent else None


class Publisher:
    """The rungs of one job: links and derived records where the job has them, evaluation (when `eval_cfg`
    is given)."""

    def __init__(self, out_dir: str | Path, job: Job, eval_cfg: Optional[DictConfig] = None):
        self.out_dir, self.job, self.eval_cfg = Path(out_dir), job, eval_cfg
        self.directory = job.directory(out_dir)
        self._hooks: dict[str, Callable] = {}

    def hook(self, rung_id: str) -> Optional[Callable[..., None]]:
        """The rung's eval hook (`eval.cli.make_eval_hook`), made once; None when not evaluating."""
        if self.eval_cfg is None:
            return None
        if rung_id not in self._hooks:
            self._hooks[rung_id] = make_eval_hook(self.eval_cfg, rung_dir(self.out_dir, rung_id))
        return self._hooks[rung_id]

    def publish(self, checkpoint: Path, step: int, model, **kwargs) -> list[dict]:
        """The eval hook of the job's run, on every process: rank 0 links a new checkpoint into its rung and
        updates the records; then every rank evaluates the live model into the rung's results (the records,
        on rank 0)."""
        rung = self.job.owner(step)
        if int(os.environ.get("RANK", 0)) == 0:
            self._link(Path(checkpoint), rung)
            self.write_records()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()  # the other ranks read the rung's config.yaml next
        hook = self.hook(rung.rung_id)
        # The run's checkpoint itself: it names the step and holds the tokenizer.
        return hook(checkpoint, step, model, **kwargs) if hook is not None else []

    def catch_up(self) -> None:
        """Every checkpoint linked, every record written, every rung checkpoint evaluated."""
        for step, checkpoint in checkpoints(self.directory):
            if step <= self.job.segment_ends[-1]:  # not those a longer run trained here before (its rungs' own)
                self._link(checkpoint, self.job.owner(step))
        self.write_records()
        if self.eval_cfg is not None:
            for rung in self.job.rungs:
                evaluate_unevaluated(self.eval_cfg, rung_dir(self.out_dir, rung.rung_id))

    def _link(self, checkpoint: Path, rung) -> None:
        """A trunk's checkpoint linked into its rung, whose config.yaml says which rung it is (eval reads it)."""
        if not self.job.linked:  # the rung's own run wrote it there
            return
        directory = rung_dir(self.out_dir, rung.rung_id)
        link_checkpoint(checkpoint, directory)
        if not (directory / CONFIG).exists():
            atomic_write_text(directory / CONFIG, OmegaConf.to_yaml({"rung": rung.as_dict(), "trunk": self.job.name}))

    def write_records(self) -> None:
        """Where the job derives them (wsds), each rung's record from its run's. Done once the bottom of its
        decay is saved; running (or failed or interrupted, with the run's reason) while the run is in its
        segment; else none."""
        if not self.job.derives_records:
            return
        record = read_record(self.directory)
        if record is None:
            return
        saved = dict(checkpoints(self.directory))
        tokens_per_step = self.job.run.tokens_per_step
        ends = self.job.segment_ends
        for rung, start, end in zip(self.job.rungs, (0,) + ends[:-1], ends):
            directory = rung_dir(self.out_dir, rung.rung_id)
            done = read_record(directory) if end in saved else None
            if done and done["state"] == "done" and done["step"] == end:  # derived once; its checkpoint not read again
                continue
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


def worker_hook(directory: Path) -> Optional[Callable[..., list]]:
    """The eval hook of a torchrun worker training the run in `directory`: its Publisher rebuilt from the job file
    `write_job_file` wrote there (a follow-up, a branch, evaluates into its rung); None when not evaluating."""
    spec = OmegaConf.load(directory / JOB)
    job = build_plan(spec.config).job(spec.job)
    publisher = Publisher(spec.config.out_dir, job, spec.config if spec.evaluate else None)
    return publisher.publish if spec.rung is None else publisher.hook(spec.rung)


def write_job_file(directory: Path, config: DictConfig, evaluate: bool, job: Job, rung_id: Optional[str]) -> None:
    """What `worker_hook` reads: the config, the job, and the rung a follow-up trains (None: the job's run)."""
    spec = {"config": OmegaConf.to_container(config, resolve=True), "evaluate": evaluate, "job": job.name,
            "rung": rung_id}
    atomic_write_text(directory / JOB, OmegaConf.to_yaml(spec))
