"""`ladder eval`: evaluate one checkpoint, one rung's checkpoints or every rung of a ladder,
and the hook the training loop calls after each checkpoint it saves.

    ladder eval eval.checkpoint=runs/smoke/rungs/smoke-24-smoke-M5/checkpoints/step-00000100
    ladder eval eval.rung=smoke-24-smoke-M5
    ladder eval                       # every rungs/*/checkpoints/step-* under out_dir

Already evaluated (step, task) pairs are skipped, so the command can be re-run as training goes on.
`eval.device=auto` (the default) uses a GPU when one is visible. Started by torchrun or `accelerate
launch` on several processes, each loads the checkpoint, scores its share of the examples and
sequences (eval/sharding.py), and rank 0 writes the records:

    torchrun --nproc-per-node 8 -m ladder.cli eval eval.rung=...
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
import torch.distributed as dist
from omegaconf import DictConfig

from eval.checkpoints import (CheckpointError, find_checkpoints, load_tokenizer, missing_files, require_complete,
                              step_of)
from eval.config import EvalError
from eval.derived import load_documents
from eval.run import (LMSet, RungInfo, as_records, eval_device, evaluate_checkpoint, evaluate_model, is_done,
                      prepare_task, write_results)
from eval.sharding import Shards, init_from_environment
from eval.tasks import TaskError

log = logging.getLogger(__name__)


def rung_info(cfg: DictConfig, rung_id: str, rung_dir: Optional[Path] = None) -> RungInfo:
    """A rung of the configured ladder's plan, as the fields its records share."""
    from ladder.plan import build_plan

    plan = build_plan(cfg)
    rung = next((r for r in plan.rungs if r.rung_id == rung_id), None)
    if rung is None:
        raise EvalError(f"rung '{rung_id}' is not in ladder '{plan.name}' (rungs: {', '.join(r.rung_id for r in plan.rungs)})")
    base = {"run": rung.rung_id, "size": rung.shape.name, "dataset": rung.dataset, "params": rung.params,
            "run_tokens": rung.tokens, "multiplier": rung.multiplier}
    return RungInfo(base, rung.hp.batch_size * rung.shape.seq_len, rung.hp.steps, rung_dir)


def open_lm_sets(cfg: DictConfig) -> dict[str, LMSet]:
    sets = {}
    for name, path in cfg.eval.lm_sets.items():
        if not Path(path).is_dir():
            raise EvalError(f"eval.lm_sets.{name}: no directory {path}")
        from train.data import TokenSequences  # the data stage's packed, memory-mapped val shards

        seqs = TokenSequences(Path(path))
        n = len(seqs) if cfg.eval.max_sequences is None else min(len(seqs), cfg.eval.max_sequences)
        sets[name] = LMSet(_Head(seqs, n))
    return sets


class _Head(Sequence):
    """The first n sequences of a memory-mapped set, read on demand rather than copied into memory."""

    def __init__(self, seqs, n: int):
        self.seqs, self.n = seqs, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.seqs[i]


def prepare_tasks(cfg: DictConfig) -> dict[str, list]:
    docs = None
    if "derived" in cfg.eval.tasks:
        if not cfg.eval.derived.docs:
            raise EvalError("task 'derived' needs eval.derived.docs=PATH (held-out documents of the training data)")
        docs = load_documents(cfg.eval.derived.docs, cfg.data.text_field)
    return {name: prepare_task(name, cfg.eval, docs) for name in cfg.eval.tasks}


def _targets(cfg: DictConfig) -> list[tuple[Path, list[Path]]]:
    """(rung_dir, checkpoints) to evaluate; an explicitly named checkpoint must be complete."""
    if cfg.eval.checkpoint:
        ckpt = Path(cfg.eval.checkpoint)
        step_of(ckpt)
        require_complete(ckpt, Path(cfg.eval.tokenizer) if cfg.eval.tokenizer else None)
        return [(ckpt.resolve().parent.parent, [ckpt])]
    rungs = Path(cfg.out_dir) / "rungs"
    if cfg.eval.rung:
        rung_dir = rungs / cfg.eval.rung
        if not rung_dir.is_dir():
            raise EvalError(f"eval.rung={cfg.eval.rung}: no directory {rung_dir}")
        return [(rung_dir, find_checkpoints(rung_dir))]
    dirs = sorted(p for p in rungs.glob("*") if p.is_dir())
    if not dirs:
        raise EvalError(f"no rungs under {rungs} (train first, or set out_dir / eval.checkpoint)")
    return [(d, find_checkpoints(d)) for d in dirs]


def _evaluate(rung: RungInfo, step: int, lm_sets, tasks, shards: Shards, records: Callable[[], list[dict]]) -> int:
    """`records()` of one step into the rung's results, unless already there; every rank calls this."""
    if shards.agree(is_done(rung.rung_dir, step, list(lm_sets), list(tasks)) if shards.is_main else None):
        if shards.is_main:
            log.info("%s step %d: already evaluated", rung.base["run"], step)
        return 0
    start = time.perf_counter()
    new = records()
    if not shards.is_main:
        return 0
    written = write_results(rung.rung_dir, new)
    log.info("%s step %d: %d records -> %s, evaluated in %.2f s", rung.base["run"], step, written,
             rung.rung_dir / "results.jsonl", time.perf_counter() - start)
    return written


def main(cfg: DictConfig) -> int:
    created = False
    try:
        device = eval_device(cfg.eval.device)
        created = init_from_environment(device)
        shards = Shards.of_process_group()
        targets = _targets(cfg)
        tasks, lm_sets = prepare_tasks(cfg), open_lm_sets(cfg)
        if not tasks and not lm_sets:
            raise EvalError("nothing to evaluate: eval.tasks and eval.lm_sets are both empty")
        tokenizer_dir = Path(cfg.eval.tokenizer) if cfg.eval.tokenizer else None
        for rung_dir, checkpoints in targets:
            rung = rung_info(cfg, rung_dir.name, rung_dir)
            if not checkpoints and shards.is_main:
                log.warning("%s: no checkpoints yet", rung_dir)
            for ckpt in checkpoints:
                # Rank 0 decides, so a checkpoint being written as the ranks look is skipped by all or none.
                missing = shards.agree(missing_files(ckpt, tokenizer_dir) if shards.is_main else None)
                if missing:  # e.g. still being written: say so and leave it for the next run
                    if shards.is_main:
                        log.warning("skipping incomplete checkpoint %s: missing %s", ckpt, ", ".join(missing))
                    continue
                _evaluate(rung, step_of(ckpt), lm_sets, tasks, shards, lambda: evaluate_checkpoint(
                    ckpt, lm_sets=lm_sets, tasks=tasks, cfg=cfg.eval, rung=rung, shards=shards))
    except (EvalError, CheckpointError, TaskError) as exc:
        print(f"ladder eval: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if created:
            dist.destroy_process_group()
    return 0


def make_eval_hook(cfg: DictConfig, rung_dir: Path) -> Callable[..., None]:
    """For the training loop: `hook(checkpoint_dir, step, model, dtype=None, lockstep=False)`, called on
    every process, evaluates the live `model` (on its device, under `dtype` autocast) into the rung's results.

    Each rank scores its share; `lockstep` says the parameters are sharded (FSDP, ZeRO-3), so forwards
    are collectives. `checkpoint_dir` (just committed) supplies the tokenizer and names the step.
    Tasks and eval sets are prepared on the first call and reused for every later checkpoint.
    """
    rung_dir = Path(rung_dir)
    rung = rung_info(cfg, rung_dir.name, rung_dir)
    state: dict = {}

    def hook(checkpoint_dir: Path, step: int, model, *, dtype: Optional[torch.dtype] = None,
             lockstep: bool = False) -> None:
        if not state:
            tokenizer_dir = Path(cfg.eval.tokenizer) if cfg.eval.tokenizer else None
            state.update(tasks=prepare_tasks(cfg), lm_sets=open_lm_sets(cfg),
                         tokenizer=load_tokenizer(Path(checkpoint_dir), tokenizer_dir))
        shards = Shards.of_process_group(lockstep)
        tasks, lm_sets = state["tasks"], state["lm_sets"]
        _evaluate(rung, step, lm_sets, tasks, shards, lambda: as_records(evaluate_model(
            model, state["tokenizer"], lm_sets=lm_sets, tasks=tasks, batch_size=cfg.eval.batch_size,
            shards=shards, dtype=dtype), rung, step))

    return hook
