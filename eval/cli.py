"""`ladder eval`: evaluate one checkpoint, one rung's checkpoints or every rung of a ladder,
and the hook the training loop calls after each checkpoint it saves.

    ladder eval eval.checkpoint=runs/smoke/rungs/smoke-24-smoke-M5/checkpoints/step-00000100
    ladder eval eval.rung=smoke-24-smoke-M5
    ladder eval                       # every rungs/*/checkpoints/step-* under out_dir

Already evaluated (step, task) pairs are skipped, so the command can be re-run as training goes on.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from omegaconf import DictConfig, OmegaConf

from eval.checkpoints import CheckpointError, find_checkpoints, missing_files, require_complete, step_of
from eval.derived import load_documents
from eval.run import LMSet, RungInfo, evaluate_checkpoint, is_done, prepare_task, write_results
from eval.tasks import TaskError
from ladder.core.layout import CONFIG, RESULTS, RUNGS, rung_dir, rung_dirs
from ladder.core.shards import TokenSequences

log = logging.getLogger(__name__)


class EvalError(ValueError):
    """Bad `ladder eval` input; its message names what to fix."""


def rung_info(directory: Path) -> RungInfo:
    """The fields a rung's records share, from the rung that training wrote into its config.yaml."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise EvalError(f"{path}: missing; {directory} is not a rung directory written by `ladder train`")
    try:
        rung = OmegaConf.load(path).rung
        base = {"run": rung.rung_id, "size": rung.size, "dataset": rung.dataset, "params": rung.params,
                "run_tokens": rung.tokens, "multiplier": rung.multiplier}
        return RungInfo(base, rung.hp.batch_size * rung.shape.seq_len, rung.hp.steps, Path(directory))
    except Exception as exc:  # a YAML or a key error: either way the file is not what training writes
        raise EvalError(f"{path}: not a rung config written by `ladder train` ({exc})") from exc


def open_lm_sets(cfg: DictConfig) -> dict[str, LMSet]:
    sets = {}
    for name, path in cfg.eval.lm_sets.items():
        if not Path(path).is_dir():
            raise EvalError(f"eval.lm_sets.{name}: no directory {path}")
        try:
            seqs = TokenSequences(Path(path))
        except (OSError, ValueError) as exc:  # no manifest, a shard of the wrong size, no sequences
            raise EvalError(f"eval.lm_sets.{name}: {exc}") from None
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
    if cfg.eval.rung:
        directory = rung_dir(cfg.out_dir, cfg.eval.rung)
        if not directory.is_dir():
            raise EvalError(f"eval.rung={cfg.eval.rung}: no directory {directory}")
        return [(directory, find_checkpoints(directory))]
    dirs = rung_dirs(cfg.out_dir)
    if not dirs:
        raise EvalError(f"no rungs under {Path(cfg.out_dir) / RUNGS} (train first, or set out_dir / eval.checkpoint)")
    return [(d, find_checkpoints(d)) for d in dirs]


def _evaluate(cfg: DictConfig, rung: RungInfo, checkpoint: Path, lm_sets, tasks, step: Optional[int] = None) -> int:
    step = step_of(checkpoint) if step is None else step
    if is_done(rung.rung_dir, step, list(lm_sets), list(tasks)):
        log.info("%s step %d: already evaluated", rung.base["run"], step)
        return 0
    records = evaluate_checkpoint(checkpoint, lm_sets=lm_sets, tasks=tasks, cfg=cfg.eval, rung=rung, step=step)
    written = write_results(rung.rung_dir, records)
    log.info("%s step %d: %d records -> %s", rung.base["run"], step, written, rung.rung_dir / RESULTS)
    return written


def check_config(cfg: DictConfig) -> None:
    """Values the schema's types let through that would fail deep inside an evaluation."""
    import torch

    from eval.tasks import TASKS

    e = cfg.eval
    for key, value, least in (("batch_size", e.batch_size, 1), ("max_examples", e.max_examples, 1),
                              ("max_sequences", e.max_sequences, 1), ("derived.n_examples", e.derived.n_examples, 1),
                              ("derived.n_choices", e.derived.n_choices, 2),
                              ("derived.context_words", e.derived.context_words, 1),
                              ("derived.continuation_words", e.derived.continuation_words, 1)):
        if value is not None and value < least:
            raise EvalError(f"eval.{key}={value}: must be at least {least}")
    unknown = sorted(set(e.task_paths) - set(TASKS))
    if unknown:
        raise EvalError(f"eval.task_paths.{unknown[0]}: unknown task; known: {', '.join(sorted(TASKS))}")
    try:
        device = torch.device(e.device)
    except RuntimeError as exc:
        raise EvalError(f"eval.device={e.device}: {str(exc).splitlines()[0]}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EvalError(f"eval.device={e.device}: no CUDA device here (eval.device=cpu)")


def main(cfg: DictConfig) -> int:
    try:
        check_config(cfg)
        targets = _targets(cfg)
        tasks, lm_sets = prepare_tasks(cfg), open_lm_sets(cfg)
        if not tasks and not lm_sets:
            raise EvalError("nothing to evaluate: eval.tasks and eval.lm_sets are both empty")
        for directory, checkpoints in targets:
            rung = rung_info(directory)
            if not checkpoints:
                log.warning("%s: no checkpoints yet", directory)
            for ckpt in checkpoints:
                missing = missing_files(ckpt, Path(cfg.eval.tokenizer) if cfg.eval.tokenizer else None)
                if missing:  # e.g. still being written: say so and leave it for the next run
                    log.warning("skipping incomplete checkpoint %s: missing %s", ckpt, ", ".join(missing))
                    continue
                _evaluate(cfg, rung, ckpt, lm_sets, tasks)
    except (EvalError, CheckpointError, TaskError) as exc:
        print(f"ladder eval: error: {exc}", file=sys.stderr)
        return 2
    return 0


def make_eval_hook(cfg: DictConfig, directory: Path) -> Callable[[Path, int], None]:
    """For the training loop: `hook(checkpoint_dir, step)` evaluates that checkpoint into the rung's results.

    The rung, tasks and eval sets are read on the first call and reused for every later checkpoint.
    """
    state: dict = {}

    def hook(checkpoint_dir: Path, step: int) -> None:
        if not state:  # training has written the rung's config.yaml by its first checkpoint
            state.update(rung=rung_info(directory), tasks=prepare_tasks(cfg), lm_sets=open_lm_sets(cfg))
        _evaluate(cfg, state["rung"], Path(checkpoint_dir), state["lm_sets"], state["tasks"], step)

    return hook
