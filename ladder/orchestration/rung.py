"""One rung (or one trunk of a wsds/branch ladder) end to end: its data prepared, then trained with every
checkpoint evaluated as it is written.

Both launchers call `run_rung`: the local one in this process, the Slurm one inside each job. It holds
the lock of every directory it writes throughout, so two runners (or a requeued job and a stale one)
never run the same rung.
"""
from __future__ import annotations

import logging
import os
import subprocess
from contextlib import ExitStack
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from eval.cli import evaluate_unevaluated, make_eval_hook
from ladder.core.files import atomic_write_text
from ladder.core.layout import EVAL_CONFIG, LOCK, RECORD, rung_dir, trunk_dir
from ladder.core.plan import Plan, Rung, Trunk, build_plan
from ladder.core.shards import TokenSequences
from ladder.orchestration.compose import dataset_config
from ladder.orchestration.lock import try_lock
from ladder.orchestration.status import read_status
from ladder.orchestration.trunks import JOB, Points
from train.backends import process_count
from train.data import DataError, prepare_data
from train.loop import train_rung
from train.rundir import read_record, write_record
from train.worker import launch_command, write_launch

log = logging.getLogger(__name__)
LOCKED = "locked"  # run_rung's state for a rung another process is running


def _rungs_of(plan: Plan, dataset: str, seq_len: int) -> list[Rung]:
    return [r for r in plan.rungs if r.dataset == dataset and r.shape.seq_len == seq_len]


def tokens_needed(plan: Plan, dataset: str, seq_len: int) -> int:
    """What the largest rung on this dataset and sequence length trains on."""
    return max(r.trained_tokens for r in _rungs_of(plan, dataset, seq_len))


def prepare(cfg: DictConfig, dataset: str, seq_len: int, plan: Plan):
    """Packed tokens of one dataset for one sequence length (cached: tokenized once per input), from a
    tokenizer whose ids fit every model that trains on them."""
    data = dataset_config(cfg, dataset)
    # A hub stream never ends: pack only what the largest rung trains on. Local files (a built-in corpus
    # too) are packed whole.
    stream = data.path is None and data.corpus is None
    prepared = prepare_data(data, cfg.ladder.tokenizer, seq_len=seq_len, seed=cfg.seed,
                            train_tokens=tokens_needed(plan, dataset, seq_len) if stream else None)
    vocab = prepared.train_manifest["tokenizer"]["vocab_size"]
    small = min(_rungs_of(plan, dataset, seq_len), key=lambda r: r.shape.vocab_size).shape
    if vocab > small.vocab_size:
        raise DataError(f"tokenizer {prepared.tokenizer_dir} has {vocab:,} tokens but model {small.name} has "
                        f"vocab_size {small.vocab_size:,} (ladder.vocab_size, or its configs/model/ file)")
    return prepared


def prepare_all(cfg: DictConfig, plan: Plan) -> dict:
    """(dataset, seq_len) -> prepared tokens, for every sequence length the dataset's rungs use."""
    return {(dataset, seq_len): prepare(cfg, dataset, seq_len, plan) for dataset in cfg.ladder.datasets
            for seq_len in sorted({r.shape.seq_len for r in plan.rungs if r.dataset == dataset})}


def with_heldout(cfg: DictConfig, plan: Plan, seq_len: int) -> DictConfig:
    """The config with evaluation pointed at the ladder's held-out splits, unless set explicitly:
    LM loss on every dataset's validation split, derived tasks from the first dataset's documents."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    prepared = {name: prepare(cfg, name, seq_len, plan) for name in cfg.ladder.datasets}
    if not cfg.eval.lm_sets:
        cfg.eval.lm_sets = {name: str(p.val_dir) for name, p in prepared.items()}
    if cfg.eval.derived.docs is None:
        first = cfg.ladder.datasets[0]
        cfg.eval.derived.docs = str(prepared[first].val_documents)
        cfg.data = dataset_config(cfg, first)
    if cfg.eval.tokenizer is None:
        cfg.eval.tokenizer = str(prepared[cfg.ladder.datasets[0]].tokenizer_dir)
    return cfg


def find_rung(plan: Plan, rung_id: str) -> Rung:
    for rung in plan.rungs:
        if rung.rung_id == rung_id:
            return rung
    raise ValueError(f"rung '{rung_id}' is not in ladder '{plan.name}'")


_worker_hooks: dict = {}  # rung directory -> its eval hook, so tasks are prepared once per worker


def worker_eval_hook(checkpoint_dir: Path, step: int, model, **kwargs) -> None:
    """The eval hook of torchrun workers, which cannot be handed a closure: it reads the eval config
    `run_rung` wrote into the rung's directory."""
    directory = Path(checkpoint_dir).parent.parent
    if directory not in _worker_hooks:
        _worker_hooks[directory] = make_eval_hook(OmegaConf.load(directory / EVAL_CONFIG), directory)
    _worker_hooks[directory](checkpoint_dir, step, model, **kwargs)


def run_rung(cfg: DictConfig, rung_id: str, evaluate: bool = True) -> str:
    """Prepare, train (evaluating every checkpoint as it is written, and any committed checkpoint an
    interruption left without records) and return the rung's final state; LOCKED when another process
    is running it. `rung_id` may name a trunk of a wsds or branch ladder: then its rungs are trained.
    A failure before training starts is recorded too, with its reason."""
    plan = build_plan(cfg)
    trunk = plan.trunk(rung_id)
    rungs = trunk.rungs if trunk else (find_rung(plan, rung_id),)
    directories = [rung_dir(cfg.out_dir, r.rung_id) for r in rungs] + ([trunk_dir(cfg.out_dir, trunk.name)] if trunk else [])
    distributed = "WORLD_SIZE" in os.environ  # one of several processes started together to run it as one
    with ExitStack() as held:
        if not distributed or int(os.environ.get("RANK", 0)) == 0:  # rank 0 holds the locks for them all
            for directory in directories:
                lock = try_lock(directory)
                if lock is None and distributed:  # the other ranks wait for this one: wait too, then resume
                    log.warning("%s: another process holds %s; waiting for it", rung_id, directory / LOCK)
                    lock = try_lock(directory, wait=True)
                if lock is None:
                    log.warning("%s: another process holds %s; skipping it", rung_id, directory / LOCK)
                    return LOCKED
                held.callback(lock.release)  # try_lock acquired it: `with lock` would count a second hold
        try:
            if trunk is not None:
                return run_trunk(cfg, plan, trunk, evaluate)
            return _run_rung(cfg, plan, rungs[0], directories[0], evaluate)
        except Exception as exc:
            record_failure(directories[-1], trunk.run if trunk else rungs[0], exc)
            raise


def record_failure(directory: Path, rung: Rung, exc: Exception) -> None:
    """A failure outside the training loop (data, evaluation), recorded like one inside it."""
    try:
        record = read_record(directory) or {}
    except ValueError:  # a corrupt record (status shows it so): replaced by this one
        record = {}
    if record.get("state") not in ("failed", "interrupted"):  # training records its own stops
        write_record(directory, rung.rung_id, "failed", record.get("step", 0), rung.hp.steps,
                     record.get("tokens", 0), reason=f"{type(exc).__name__}: {exc}",
                     checkpoint=record.get("last_checkpoint"), loss=record.get("loss"))


def _run_rung(cfg: DictConfig, plan: Plan, rung: Rung, directory: Path, evaluate: bool) -> str:
    prepared = prepare(cfg, rung.dataset, rung.shape.seq_len, plan)
    eval_cfg = with_heldout(cfg, plan, rung.shape.seq_len) if evaluate else None
    state = _train(cfg, rung, directory, prepared, make_eval_hook(eval_cfg, directory) if evaluate else None,
                   ("ladder.orchestration.rung:worker_eval_hook", EVAL_CONFIG, eval_cfg) if evaluate else None)
    if evaluate:  # a stop between a checkpoint's commit and its evaluation leaves it without records
        evaluate_unevaluated(eval_cfg, directory)
    return state


def run_trunk(cfg: DictConfig, plan: Plan, trunk: Trunk, evaluate: bool = True) -> str:
    """One size of a wsds or branch ladder: the trunk, then (branch) each rung's decay from its fork.
    Each checkpoint is linked into its rung and evaluated there as it is written (ladder.orchestration.trunks)."""
    rung = trunk.rungs[0]
    prepared = prepare(cfg, rung.dataset, rung.shape.seq_len, plan)
    eval_cfg = with_heldout(cfg, plan, rung.shape.seq_len) if evaluate else None
    status = read_status(cfg.out_dir, trunk.run, trunk_dir(cfg.out_dir, trunk.name))
    if status.state == "corrupt":  # as for a rung's: its checkpoints are still trusted and resumed from
        log.warning("%s", status.reason)
        (trunk_dir(cfg.out_dir, trunk.name) / RECORD).unlink()
    points = Points(cfg.out_dir, trunk, eval_cfg)
    points.catch_up()  # what a stop between a checkpoint and its hook left undone
    job = OmegaConf.create({"config": eval_cfg or OmegaConf.to_container(cfg, resolve=True), "evaluate": evaluate})
    state = _train(cfg, trunk.run, trunk_dir(cfg.out_dir, trunk.name), prepared, points.publish,
                   ("ladder.orchestration.trunks:publish_checkpoint", JOB, job))
    points.catch_up()
    if state != "done" or trunk.schedule != "branch":
        return state
    for k, rung in enumerate(trunk.rungs):  # each resumes from its fork, linked into its directory above
        directory = rung_dir(cfg.out_dir, rung.rung_id)
        try:
            state = _train(cfg, trunk.branch(k), directory, prepared, points.hook(rung),
                           ("ladder.orchestration.rung:worker_eval_hook", EVAL_CONFIG, eval_cfg) if evaluate else None)
            if evaluate:
                evaluate_unevaluated(eval_cfg, directory)
        except Exception as exc:  # the branch's record says why, not the trunk's, which is done
            record_failure(directory, trunk.branch(k), exc)
            return "failed"
        if state != "done":  # the rung's record says why (the pipeline reports it); the next waits for a rerun
            return state
    return "done"


def _train(cfg: DictConfig, run: Rung, directory: Path, prepared, hook, worker_hook) -> str:
    """Train `run` into `directory` here, or in torchrun workers when it trains on several processes
    (`train.backends.process_count`: train.num_processes, by default one per visible GPU); the
    state it ends in. `hook` follows each checkpoint here; workers call the import path of
    `worker_hook` = (path, file name, config), which reads the config from that file."""
    # D rounded up to whole optimizer steps: what every step of the recipe consumes.
    data_kwargs = {"tokens": run.trained_tokens, "seed": cfg.seed,
                   "allow_repeat": dataset_config(cfg, run.dataset).allow_repeat}
    processes = process_count(cfg.train)
    if processes > 1 and "WORLD_SIZE" not in os.environ:
        directory.mkdir(parents=True, exist_ok=True)
        if worker_hook is not None:
            atomic_write_text(directory / worker_hook[1], OmegaConf.to_yaml(worker_hook[2]))
        write_launch(directory, run, cfg.train, data_kwargs, data_args=[str(prepared.train_dir)],
                     tokenizer_dir=prepared.tokenizer_dir, eval_hook=worker_hook[0] if worker_hook else None)
        subprocess.run(launch_command(directory, processes), check=False)
        return read_status(cfg.out_dir, run, directory).state
    sequences = TokenSequences(prepared.train_dir, **data_kwargs)
    return train_rung(run, sequences, directory, cfg.train, tokenizer_dir=prepared.tokenizer_dir,
                      eval_hook=hook).state
