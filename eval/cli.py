"""`ladder eval`: evaluate one checkpoint, one rung's checkpoints or every rung of a ladder,
and the hook the training loop calls after each checkpoint it saves.

    ladder eval eval.checkpoint=runs/smoke/rungs/smoke-24-smoke-M5/checkpoints/step-00000100
    ladder eval eval.rung=smoke-24-smoke-M5
    ladder eval                       # every rungs/*/checkpoints/step-* under out_dir

A checkpoint's task or eval set already evaluated under the same evaluation key (eval/keys.py) is skipped, so
the command can be re-run as training goes on; under another key (e.g. another eval.num_fewshot) it is
evaluated again and its old records are marked superseded.
`eval.device=auto` (the default) uses a GPU when one is visible. Started by torchrun or `accelerate
launch` on several processes, each loads the checkpoint, scores its share of the examples and
sequences (eval/sharding.py), and rank 0 writes the records:

    torchrun --nproc-per-node 8 -m ladder eval eval.rung=...
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from eval.checkpoints import (CheckpointError, find_checkpoints, load_tokenizer, require_complete, step_of,
                              tokenizer_source, unusable)
from eval.config import EvalError
from eval.derived import load_documents
from eval.keys import evaluation_keys
from eval.run import (Encodings, LMSet, RungInfo, as_records, eval_device, eval_dtype, evaluate_checkpoint,
                      evaluate_model, is_done, prepare_task, write_results)
from eval.sharding import Shards, init_from_environment
from eval.examples import TaskError
from eval.tasks import chance_levels, file_tasks, needs_documents, task_spec
from ladder.core.configs import ConfigError
from ladder.core.files import writable_dir
from ladder.core.layout import CONFIG, RESULTS, RUNGS, checkpoints, rung_dir, rung_dirs
from ladder.core.shards import TokenSequences

log = logging.getLogger(__name__)


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
    if needs_documents(cfg.eval.tasks):
        if not cfg.eval.derived.docs:
            built = [t for t in cfg.eval.tasks if needs_documents([t])]
            raise EvalError(f"task(s) {', '.join(built)} need eval.derived.docs=PATH (held-out documents of the "
                            f"training data)")
        docs = load_documents(cfg.eval.derived.docs, cfg.data.text_field)
    return {name: prepare_task(name, cfg.eval, docs) for name in cfg.eval.tasks}


def _targets(cfg: DictConfig) -> list[tuple[Path, list[Path]]]:
    """(rung_dir, checkpoints) to evaluate; an explicitly named checkpoint must be complete."""
    if cfg.eval.checkpoint:
        ckpt = Path(cfg.eval.checkpoint)
        step_of(ckpt)
        require_complete(ckpt, Path(cfg.eval.tokenizer) if cfg.eval.tokenizer else None)
        # Not resolved: a WSD-S rung's checkpoints are links into its trunk, and the rung named in the
        # path is the one whose records these are.
        return [(Path(os.path.abspath(ckpt)).parent.parent, [ckpt])]
    if cfg.eval.rung:
        directory = rung_dir(cfg.out_dir, cfg.eval.rung)
        if not directory.is_dir():
            raise EvalError(f"eval.rung={cfg.eval.rung}: no directory {directory}")
        return [(directory, find_checkpoints(directory))]
    dirs = rung_dirs(cfg.out_dir)
    if not dirs:
        raise EvalError(f"no rungs under {Path(cfg.out_dir) / RUNGS} (train first, or set out_dir / eval.checkpoint)")
    return [(d, find_checkpoints(d)) for d in dirs]


def _evaluate(rung: RungInfo, step: int, keys: dict[str, dict], shards: Shards,
              records: Callable[[], list[dict]]) -> list[dict]:
    """`records()` of one step into the rung's results, unless already there under `keys`; every rank calls
    this. The records written (on the main process; none elsewhere)."""
    if shards.agree(is_done(rung.rung_dir, step, keys) if shards.is_main else None):
        if shards.is_main:
            log.info("%s step %d: already evaluated", rung.base["run"], step)
        return []
    start = time.perf_counter()
    new = records()
    if not shards.is_main:
        return []
    written = write_results(rung.rung_dir, new)
    log.info("%s step %d: %d records -> %s, evaluated in %.2f s", rung.base["run"], step, written,
             rung.rung_dir / RESULTS, time.perf_counter() - start)
    return new


def check_config(cfg: DictConfig) -> None:
    """Values the schema's types let through that would fail deep inside an evaluation."""
    e = cfg.eval
    for key, value, least in (("batch_size", e.batch_size, 1), ("max_examples", e.max_examples, 1),
                              ("max_sequences", e.max_sequences, 1), ("derived.n_examples", e.derived.n_examples, 1),
                              ("derived.n_choices", e.derived.n_choices, 2),
                              ("derived.context_words", e.derived.context_words, 1),
                              ("derived.continuation_words", e.derived.continuation_words, 1)):
        if value is not None and value < least:
            raise EvalError(f"eval.{key}={value}: must be at least {least}")
    for name in e.tasks:
        try:
            task_spec(name)
        except TaskError as exc:
            raise EvalError(f"eval.tasks: {exc}") from None
    files = file_tasks()
    for key in ("task_paths", "fewshot_paths"):
        bad = sorted(set(e[key]) - set(files))
        if bad and needs_documents(bad[:1]):
            raise EvalError(f"eval.{key}.{bad[0]}: task {bad[0]} is built from held-out documents, not read "
                            f"from a file")
        if bad:
            raise EvalError(f"eval.{key}.{bad[0]}: unknown task; known: {', '.join(files)}")
    eval_dtype(e.precision, eval_device(e.device))  # each names its key when it is wrong


def _check_writable(targets: list[tuple[Path, list[Path]]]) -> None:
    """Before any checkpoint is evaluated: each rung directory takes its results (and their lock) in the end."""
    for directory, found in targets:
        if found:
            try:
                writable_dir(directory)
            except ConfigError as exc:
                raise EvalError(f"{exc}; its {RESULTS} is written there") from None


def main(cfg: DictConfig) -> int:
    try:
        check_config(cfg)
        targets = _targets(cfg)
        _check_writable(targets)
        evaluate_saved(cfg, targets)
    except (EvalError, CheckpointError, TaskError) as exc:
        print(f"ladder eval: error: {exc}", file=sys.stderr)
        return 2
    return 0


def unevaluated(cfg: DictConfig, directory: Path) -> list[Path]:
    """The rung's committed checkpoints whose current records lack an eval set or task of `cfg` under its
    evaluation key."""
    tokenizer_dir = Path(cfg.eval.tokenizer) if cfg.eval.tokenizer else None
    return [path for step, path in checkpoints(directory)
            if not is_done(directory, step, evaluation_keys(cfg, tokenizer_source(path, tokenizer_dir)))]


def evaluate_unevaluated(cfg: DictConfig, directory: Path) -> int:
    """Evaluate the rung's committed checkpoints that have no records yet (a stop between a checkpoint's
    commit and its evaluation leaves them so); every process of a launch calls it. How many there were."""
    shards = Shards.of_process_group()
    missing = shards.agree(unevaluated(cfg, directory) if shards.is_main else None)
    if missing:
        evaluate_saved(cfg, [(Path(directory), missing)])
    return len(missing)


def evaluate_saved(cfg: DictConfig, targets: list[tuple[Path, list[Path]]]) -> None:
    """Evaluate saved checkpoints, [(rung directory, checkpoints)], skipping evaluated ones; on several
    processes when started by torchrun or accelerate."""
    created = False
    try:
        device = eval_device(cfg.eval.device)
        created = init_from_environment(device)
        shards = Shards.of_process_group()
        tasks, lm_sets = prepare_tasks(cfg), open_lm_sets(cfg)
        if not tasks and not lm_sets:
            raise EvalError("nothing to evaluate: eval.tasks and eval.lm_sets are both empty")
        tokenizer_dir = Path(cfg.eval.tokenizer) if cfg.eval.tokenizer else None
        for directory, found in targets:
            if not found:  # e.g. a rung whose training has not begun: no config.yaml to read yet either
                if shards.is_main:
                    log.warning("%s: no checkpoints yet", directory)
                continue
            rung, encodings = rung_info(directory), Encodings()
            for ckpt in found:
                # Rank 0 decides, so a checkpoint being written as the ranks look is skipped by all or none.
                problem = shards.agree(unusable(ckpt, tokenizer_dir) if shards.is_main else None)
                if problem:  # e.g. still being written: say so and leave it for the next run
                    if shards.is_main:
                        log.warning("skipping incomplete checkpoint %s: %s", ckpt, problem)
                    continue
                keys = evaluation_keys(cfg, tokenizer_source(ckpt, tokenizer_dir))
                _evaluate(rung, step_of(ckpt), keys, shards, lambda: evaluate_checkpoint(
                    ckpt, lm_sets=lm_sets, tasks=tasks, cfg=cfg.eval, rung=rung, shards=shards, encodings=encodings,
                    keys=keys))
    finally:
        if created:
            dist.destroy_process_group()


def make_eval_hook(cfg: DictConfig, directory: Path) -> Callable[..., list[dict]]:
    """For the training loop: `hook(checkpoint_dir, step, model, dtype=None, lockstep=False)`, called on
    every process, evaluates the live `model` (on its device, under `dtype` autocast) into the rung's results
    and returns the records it wrote (on the main process).

    Each rank scores its share; `lockstep` says the parameters are sharded (FSDP, ZeRO-3), so forwards
    are collectives. `checkpoint_dir` (just committed) supplies the tokenizer and names the step.
    The rung, tasks and eval sets are read, the tasks tokenized and their evaluation keys made, on the first
    call and reused for every later checkpoint (a run's checkpoints carry one tokenizer).
    """
    state: dict = {}

    def hook(checkpoint_dir: Path, step: int, model, *, dtype: Optional[torch.dtype] = None,
             lockstep: bool = False) -> list[dict]:
        if not state:  # training has written the rung's config.yaml by its first checkpoint
            given = Path(cfg.eval.tokenizer) if cfg.eval.tokenizer else None
            tokenizer_dir = tokenizer_source(Path(checkpoint_dir), given)
            state.update(rung=rung_info(directory), tasks=prepare_tasks(cfg), chance=chance_levels(cfg.eval),
                         lm_sets=open_lm_sets(cfg), keys=evaluation_keys(cfg, tokenizer_dir),
                         tokenizer=load_tokenizer(Path(checkpoint_dir), tokenizer_dir), encodings=Encodings())
        shards = Shards.of_process_group(lockstep)
        rung, tasks, lm_sets, keys = state["rung"], state["tasks"], state["lm_sets"], state["keys"]
        return _evaluate(rung, step, keys, shards, lambda: as_records(evaluate_model(
            model, state["tokenizer"], lm_sets=lm_sets, tasks=tasks, batch_size=cfg.eval.batch_size,
            shards=shards, dtype=dtype, encodings=state["encodings"]), rung, step, state["chance"], keys))

    return hook
