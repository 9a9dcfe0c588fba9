"""One rung end to end: its data prepared, then trained with every checkpoint evaluated as it is written.

Both launchers call `run_rung`: the local one in this process, the Slurm one inside each job. It holds
the rung's lock throughout, so two runners (or a requeued job and a stale one) never run the same rung.
"""
from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from eval.cli import evaluate_unevaluated, make_eval_hook
from ladder.core.configs import load_group_option
from ladder.core.files import atomic_write_text
from ladder.core.layout import EVAL_CONFIG, LOCK, rung_dir
from ladder.core.plan import Plan, Rung, build_plan
from ladder.core.shards import TokenSequences
from ladder.orchestration.lock import try_lock
from ladder.orchestration.status import read_status
from train.data import DataConfig, DataError, prepare_data
from train.loop import train_rung
from train.rundir import read_record, write_record
from train.worker import launch_command, write_launch

log = logging.getLogger(__name__)
LOCKED = "locked"  # run_rung's state for a rung another process is running


def dataset_config(cfg: DictConfig, dataset: str) -> DictConfig:
    """The dataset's config; the root `data` wins when it names this dataset, so overrides apply."""
    return cfg.data if cfg.data.name == dataset else load_group_option("data", dataset, DataConfig)


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
    is running the rung. A failure before training starts is recorded too, with its reason."""
    plan = build_plan(cfg)
    rung = find_rung(plan, rung_id)
    directory = rung_dir(cfg.out_dir, rung.rung_id)
    distributed = "WORLD_SIZE" in os.environ  # one of several processes started together to run it as one
    if distributed and int(os.environ.get("RANK", 0)) > 0:  # rank 0 holds the lock for them all
        return _run_rung(cfg, plan, rung, directory, evaluate)
    lock = try_lock(directory)
    if lock is None and distributed:  # the other ranks are waiting for this one: wait too, then resume
        log.warning("%s: another process is running this rung (it holds %s); waiting for it", rung_id, directory / LOCK)
        lock = try_lock(directory, wait=True)
    if lock is None:
        log.warning("%s: another process is running this rung (it holds %s); skipping it", rung_id, directory / LOCK)
        return LOCKED
    with lock:
        try:
            return _run_rung(cfg, plan, rung, directory, evaluate)
        except Exception as exc:
            record = read_record(directory) or {}
            if record.get("state") not in ("failed", "interrupted"):  # training records its own stops
                write_record(directory, rung_id, "failed", record.get("step", 0), rung.hp.steps,
                             record.get("tokens", 0), reason=f"{type(exc).__name__}: {exc}",
                             checkpoint=record.get("last_checkpoint"), loss=record.get("loss"))
            raise


def _run_rung(cfg: DictConfig, plan: Plan, rung: Rung, directory: Path, evaluate: bool) -> str:
    prepared = prepare(cfg, rung.dataset, rung.shape.seq_len, plan)
    # D rounded up to whole optimizer steps: what every step of the recipe consumes.
    data_kwargs = {"tokens": rung.trained_tokens, "seed": cfg.seed,
                   "allow_repeat": dataset_config(cfg, rung.dataset).allow_repeat}
    eval_cfg = with_heldout(cfg, plan, rung.shape.seq_len) if evaluate else None
    if cfg.train.num_processes > 1 and "WORLD_SIZE" not in os.environ:
        directory.mkdir(parents=True, exist_ok=True)
        if evaluate:
            atomic_write_text(directory / EVAL_CONFIG, OmegaConf.to_yaml(eval_cfg))
        write_launch(directory, rung, cfg.train, data_kwargs, data_args=[str(prepared.train_dir)],
                     tokenizer_dir=prepared.tokenizer_dir,
                     eval_hook="ladder.orchestration.rung:worker_eval_hook" if evaluate else None)
        subprocess.run(launch_command(directory, cfg.train.num_processes), check=False)
        state = read_status(cfg.out_dir, rung).state
    else:
        sequences = TokenSequences(prepared.train_dir, **data_kwargs)
        hook = make_eval_hook(eval_cfg, directory) if evaluate else None
        state = train_rung(rung, sequences, directory, cfg.train, tokenizer_dir=prepared.tokenizer_dir,
                           eval_hook=hook).state
    if evaluate:  # a stop between a checkpoint's commit and its evaluation leaves it without records
        evaluate_unevaluated(eval_cfg, directory)
    return state
