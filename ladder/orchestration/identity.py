"""A rung's identity: what its results depend on, written into its directory (IDENTITY) when its job starts and
compared with the config's before a ladder reuses or continues them.

It is the rung itself (`Rung.as_dict()`: size, dataset, multiplier, N, D and its recipe: batch, LR, warmup, ...),
the schedule that trains it (`ladder.lr_schedule`, `ladder.lr_decay_fraction`, and the LR curve of every step that
trains its checkpoints, `Job.history`), its data (the dataset's config, the tokenizer's, and `seed`, which orders
the sequences) and `train.seed` (the initial weights). How it trains is not part of it (backend, precision,
processes, micro-batch, checkpoint fractions): the same run resumed on other hardware is the same rung. A trunk's
directory holds the settings part; its run must agree with the one that trained its checkpoints on every step
they hold (`Run.differences`), so a trunk continues to a larger D where the grid grew. A run that resumes or
continues must also read the training split it started on, whose size (`ladder.orchestration.splits`) grows with
the ladder unless `data.max_tokens` fixes it; a finished run's results stand whatever the split holds now.

`ladder run` on an out_dir whose rungs were trained with other settings refuses in one line naming the keys that
differ, before it writes anything (`check`); a rung's directory with nothing trained in it takes the new settings.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from ladder.core.configs import ConfigError
from ladder.core.files import atomic_write_json
from ladder.core.layout import IDENTITY, latest_checkpoint, rung_dir
from ladder.core.plan import Plan, Rung
from ladder.core.schedules import SCHEDULES, Job, describe
from ladder.orchestration.compose import dataset_config
from ladder.orchestration.splits import split_tokens
from train.rundir import read_run

log = logging.getLogger(__name__)
HOW_NOT_WHAT = ("streaming", "num_proc", "token_dtype")  # data keys that change how tokens are made, not which
SPLIT = "data.split_tokens"  # the training split's size (data.max_tokens, or the ladder's need): see check
DERIVED = ("rung_id", "compute", "compute_exact", "total_params", "non_embedding_params")  # of the rung's other keys
# Keys of identities written while a recipe held its LR curve, and every rung's said cosine with no decays (the
# curve its runs follow is lr_curve's): with these values they say nothing, and are not compared.
RETIRED = {"rung.hp.lr_schedule": "cosine", "rung.hp.decays": []}


def settings(cfg: DictConfig, plan: Plan, dataset: str) -> dict:
    """What every rung of the ladder on `dataset` shares: its schedule, data and seeds."""
    data = OmegaConf.to_container(dataset_config(cfg, dataset), resolve=True)
    tokenizer = OmegaConf.to_container(cfg.ladder.tokenizer, resolve=True)
    decays = SCHEDULES[plan.lr_schedule].stable_then_decays
    return {"ladder.lr_schedule": plan.lr_schedule,
            "ladder.lr_decay_fraction": cfg.ladder.lr_decay_fraction if decays else None,
            "seed": cfg.seed, "train.seed": cfg.train.seed,
            **{f"data.{k}": v for k, v in data.items() if k not in (*HOW_NOT_WHAT, "max_tokens")},
            **{f"ladder.tokenizer.{k}": v for k, v in tokenizer.items()}}


def identity(cfg: DictConfig, plan: Plan, job: Job, rung: Optional[Rung] = None) -> dict:
    """A rung's identity (a flat mapping of keys to JSON values); without `rung`, the job's trunk's."""
    out = settings(cfg, plan, job.run.dataset)
    if rung is not None:
        fields = rung.as_dict()
        for group in ("shape", "hp"):
            fields.update({f"{group}.{k}": v for k, v in fields.pop(group).items()})
        out.update({f"rung.{k}": v for k, v in fields.items() if k not in DERIVED})
        out["lr_curve"] = "; ".join(f"steps {first}-{end}: {run.curve.describe(end)}"
                                    for run, first, end in job.history(rung))
    out[SPLIT] = split_tokens(cfg, plan, job.run.dataset, job.run.shape.seq_len)
    return json.loads(json.dumps(out))  # as read back: tuples are lists


def _directories(out_dir: Path, job: Job) -> list[tuple[Path, Optional[Rung]]]:
    """Its rungs' directories (the ones a user knows), then its trunk's."""
    trunk = [(job.directory(out_dir), None)] if job.linked else []
    return [(rung_dir(out_dir, r.rung_id), r) for r in job.rungs] + trunk


def _read(directory: Path) -> Optional[dict]:
    path = directory / IDENTITY
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); delete it to take this config as the rung's") from None


def check(cfg: DictConfig, plan: Plan, jobs: list[Job]) -> None:
    """ConfigError where a directory of the jobs holds checkpoints trained with other settings than the config's:
    its identity differs, or (a trunk) its run does not continue the one that trained it. Reads only."""
    out_dir, mismatched = Path(cfg.out_dir), []
    for job in jobs:
        for directory, rung in _directories(out_dir, job):
            trained = latest_checkpoint(directory)
            if trained is None:  # nothing trained with it yet: the config's settings become its own
                continue
            previous = read_run(directory) if rung is None else None  # a trunk: the run that trained it
            differences = {} if previous is None else previous.differences(job.run, min(trained[0], job.run.hp.steps))
            stored = _read(directory)
            if stored is not None:
                stored = {k: v for k, v in stored.items() if k not in RETIRED or v != RETIRED[k]}
            if stored is None:
                log.warning("%s: trained before rungs recorded their settings (%s); they are taken to be this "
                            "config's", directory, IDENTITY)
            else:
                now = identity(cfg, plan, job, rung)
                # A finished run's results stand whatever the split now holds; one that resumes or continues
                # must read the split it started on (ladder.orchestration.splits).
                resumes = trained[0] < (job.run.hp.steps if rung is None else rung.hp.steps) and SPLIT in stored
                differences.update({k: (stored.get(k), now.get(k)) for k in dict.fromkeys([*stored, *now])
                                    if stored.get(k) != now.get(k) and (k != SPLIT or resumes)})
            if differences:
                mismatched.append((directory, differences))
    if mismatched:
        directory, differences = mismatched[0]
        more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
        hint = ""
        if SPLIT in differences:  # a grown grid grows the split a ladder sizes itself (ladder.orchestration.splits)
            hint = (f"; to continue on the split it started on, set data.max_tokens={differences[SPLIT][0]} (and "
                    "data.allow_repeat=true if the new rungs need more tokens than it holds); a ladder meant to grow "
                    "sets data.max_tokens from its first run")
        raise ConfigError(f"out_dir={out_dir}: {directory.relative_to(out_dir)}{more} was trained with other settings "
                          f"({describe(differences)}); its results are only reused with the settings that made "
                          f"them: use another out_dir, or the settings it was trained with{hint}")


def record(cfg: DictConfig, plan: Plan, job: Job) -> None:
    """Each directory of the job holds the identity it is trained with (after `check`)."""
    for directory, rung in _directories(Path(cfg.out_dir), job):
        now = identity(cfg, plan, job, rung)
        if _read(directory) != now:
            directory.mkdir(parents=True, exist_ok=True)
            atomic_write_json(directory / IDENTITY, now)
