"""WSD-S and branch ladders: each trunk's checkpoints handed to the rungs they belong to.

A trunk (`ladder.plan.Trunk`) trains in `<out_dir>/trunks/<size>-<dataset>-<schedule>/`, a run
directory like a rung's. Each of its checkpoints belongs to one rung (`Trunk.owner`) and is linked
into that rung's `checkpoints/` by a relative symbolic link, so every rung directory holds its
checkpoints, `record.json` and `results.jsonl` as under cosine and the later stages read it unchanged.
Under wsds the rung records are derived here from the trunk's; a branch writes its own as it trains.
Every step is idempotent: `catch_up` redoes whatever a crash between two of them left undone.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from omegaconf import DictConfig, OmegaConf

from ladder.plan import Plan, Rung, Trunk, build_plan
from ladder.status import rung_dir, trunk_dir
from train.rundir import CHECKPOINTS, TRAINER_STATE, checkpoints, read_record, write_record

JOB = "trunk.yaml"  # beside a trunk's checkpoints: how torchrun workers publish them (`publish_checkpoint`)


def find_trunk(plan: Plan, name: str) -> Optional[Trunk]:
    return next((t for t in plan.trunks if t.name == name), None)


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
    import torch

    recent = torch.load(checkpoint / TRAINER_STATE, weights_only=True)["recent_losses"]
    return recent[-1] if recent else None


class Points:
    """The rungs of one trunk: links, wsds records and evaluation (when `eval_cfg` is given)."""

    def __init__(self, out_dir: str | Path, trunk: Trunk, eval_cfg: Optional[DictConfig] = None):
        self.out_dir, self.trunk, self.eval_cfg = Path(out_dir), trunk, eval_cfg
        self.directory = trunk_dir(out_dir, trunk)
        self._hooks: dict[str, Callable] = {}

    def hook(self, rung: Rung) -> Optional[Callable[[Path, int], None]]:
        """The rung's eval hook (`eval.cli.make_eval_hook`), made once; None when not evaluating."""
        if self.eval_cfg is None:
            return None
        if rung.rung_id not in self._hooks:
            from eval.cli import make_eval_hook

            self._hooks[rung.rung_id] = make_eval_hook(self.eval_cfg, rung_dir(self.out_dir, rung))
        return self._hooks[rung.rung_id]

    def publish(self, checkpoint: Path, step: int) -> None:
        """The trunk's hook: link a new checkpoint into its rung, update the records, evaluate it."""
        rung = self.trunk.rungs[self.trunk.owner(step)]
        link = link_checkpoint(Path(checkpoint), rung_dir(self.out_dir, rung))
        self.write_records()
        self._evaluate(rung, link, step)

    def catch_up(self) -> None:
        """Every trunk checkpoint linked, every record written, every rung checkpoint evaluated."""
        for step, checkpoint in checkpoints(self.directory):
            link_checkpoint(checkpoint, rung_dir(self.out_dir, self.trunk.rungs[self.trunk.owner(step)]))
        self.write_records()
        for rung in self.trunk.rungs:
            for step, checkpoint in checkpoints(rung_dir(self.out_dir, rung)):
                self._evaluate(rung, checkpoint, step)

    def _evaluate(self, rung: Rung, checkpoint: Path, step: int) -> None:
        hook = self.hook(rung)
        if hook is None:
            return
        from eval.run import is_done

        if not is_done(rung_dir(self.out_dir, rung), step, list(self.eval_cfg.eval.lm_sets), list(self.eval_cfg.eval.tasks)):
            hook(checkpoint, step)

    def write_records(self) -> None:
        """wsds: each rung's record from the trunk's. Done once the bottom of its decay is saved;
        running (or failed, with the trunk's reason) while the trunk is in its segment; else none."""
        if self.trunk.schedule != "wsds":
            return
        record = read_record(self.directory)
        if record is None:
            return
        saved = dict(checkpoints(self.directory))
        tokens_per_step = self.trunk.tokens_per_step
        starts = (0,) + self.trunk.ends[:-1]
        for rung, start, end in zip(self.trunk.rungs, starts, self.trunk.ends):
            directory = rung_dir(self.out_dir, rung)
            if end in saved:
                state, step, loss, reason = "done", end, _final_loss(saved[end]), None
            elif record["step"] > start or start == 0:
                state, step, loss = ("failed" if record["state"] == "failed" else "running"), min(record["step"], end), record["loss"]
                reason = record["reason"]
            else:
                continue
            own = checkpoints(directory)
            directory.mkdir(parents=True, exist_ok=True)
            write_record(directory, rung.rung_id, state, step, end, step * tokens_per_step, reason=reason,
                         checkpoint=f"{CHECKPOINTS}/{own[-1][1].name}" if own else None, loss=loss)


def publish_checkpoint(checkpoint_dir: Path, step: int) -> None:
    """The hook of torchrun workers training a trunk: they cannot be handed `Points.publish`, so it
    is rebuilt from the job file `ladder.pipeline.run_trunk` wrote into the trunk's directory."""
    directory = Path(checkpoint_dir).parent.parent
    job = OmegaConf.load(directory / JOB)
    trunk = find_trunk(build_plan(job.config), directory.name)
    Points(job.config.out_dir, trunk, job.config if job.evaluate else None).publish(Path(checkpoint_dir), step)
