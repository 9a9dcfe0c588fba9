"""One job of a ladder (a rung's own run, or a size's trunk: ladder.core.schedules.Job) end to end: its data
prepared, then trained with every checkpoint evaluated as it is written.

Both launchers call `run_job`: the local one in this process, the Slurm one inside each job. It holds
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

from eval.cli import evaluate_unevaluated
from eval.tasks import needs_documents
from ladder.core.jobfile import store_config, write_job_file
from ladder.core.layout import LOCK, RECORD, rung_dir
from ladder.core.plan import Plan, build_plan
from ladder.core.schedules import Job, Run
from ladder.core.shards import TokenSequences
from ladder.orchestration import identity
from ladder.orchestration.compose import dataset_config
from ladder.orchestration.lock import try_lock
from ladder.orchestration.status import read_state
from ladder.orchestration.publish import Publisher
from ladder.orchestration.splits import rungs_of, split_tokens
from train.backends import process_count
from train.data import DataError, prepare_data
from train.loop import train_run
from train.rundir import read_record, write_record
from train.worker import launch_command, write_launch

log = logging.getLogger(__name__)
LOCKED = "locked"  # run_job's state for a job another process is running


def prepare(cfg: DictConfig, dataset: str, seq_len: int, plan: Plan):
    """Packed tokens of one dataset for one sequence length (cached: tokenized once per input), from a
    tokenizer whose ids fit every model that trains on them."""
    data = dataset_config(cfg, dataset)
    # The training split holds what the largest rung trains on (ladder.orchestration.splits): a hub stream
    # never ends, and a local corpus may hold far more than the ladder needs, so only that much is tokenized.
    prepared = prepare_data(data, cfg.ladder.tokenizer, seq_len=seq_len, seed=cfg.seed,
                            train_tokens=split_tokens(cfg, plan, dataset, seq_len))
    vocab = prepared.train_manifest["tokenizer"]["vocab_size"]
    small = min(rungs_of(plan, dataset, seq_len), key=lambda r: r.shape.vocab_size).shape
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
    LM loss on every dataset's validation split, and tasks built from held-out documents on the first dataset's."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    prepared = {name: prepare(cfg, name, seq_len, plan) for name in cfg.ladder.datasets}
    if not cfg.eval.lm_sets:
        cfg.eval.lm_sets = {name: str(p.val_dir) for name, p in prepared.items()}
    if cfg.eval.derived.docs is None and needs_documents(cfg.eval.tasks):
        first = cfg.ladder.datasets[0]
        cfg.eval.derived.docs = str(prepared[first].val_documents)
        cfg.data = dataset_config(cfg, first)
    if cfg.eval.tokenizer is None:
        cfg.eval.tokenizer = str(prepared[cfg.ladder.datasets[0]].tokenizer_dir)
    return cfg


def run_job(cfg: DictConfig, name: str, evaluate: bool = True, plan: Plan | None = None) -> str:
    """Prepare, train the job `name` of the plan (evaluating every checkpoint as it is written, and any
    committed checkpoint an interruption left without records) and return its final state; LOCKED when
    another process is running it. A failure before training starts is recorded too, with its reason.
    `plan` is the config's plan where the caller holds it (a process plans once); else it is built here."""
    plan = plan or build_plan(cfg)
    job = plan.job(name)
    directory = job.directory(cfg.out_dir)
    directories = list(dict.fromkeys([rung_dir(cfg.out_dir, r.rung_id) for r in job.rungs] + [directory]))
    distributed = "WORLD_SIZE" in os.environ  # one of several processes started together to run it as one
    with ExitStack() as held:
        if not distributed or int(os.environ.get("RANK", 0)) == 0:  # rank 0 holds the locks for them all
            for locked in directories:
                lock = try_lock(locked)
                if lock is None and distributed:  # the other ranks wait for this one: wait too, then resume
                    log.warning("%s: another process holds %s; waiting for it", name, locked / LOCK)
                    lock = try_lock(locked, wait=True)
                if lock is None:
                    log.warning("%s: another process holds %s; skipping it", name, locked / LOCK)
                    return LOCKED
                held.callback(lock.release)  # try_lock acquired it: `with lock` would count a second hold
        identity.check(cfg, plan, [job])  # before anything is written: a refusal is no failure of the rung
        if not distributed or int(os.environ.get("RANK", 0)) == 0:
            identity.record(cfg, plan, job)
        try:
            return _run_job(cfg, plan, job, evaluate)
        except Exception as exc:
            record_failure(directory, job.run, exc)
            raise


def record_failure(directory: Path, run: Run, exc: Exception) -> None:
    """A failure outside the training loop (data, evaluation), recorded like one inside it; never over a done
    record, which says the run's training is complete (a rerun would resume it, from a checkpoint that may be
    what failed), nor over a stop training recorded itself."""
    try:
        record = read_record(directory) or {}
    except ValueError:  # a corrupt record (status shows it so): replaced by this one
        record = {}
    if record.get("state") not in ("done", "failed", "interrupted"):
        try:
            write_record(directory, run.name, "failed", record.get("step", 0), run.hp.steps,
                         record.get("tokens", 0), reason=f"{type(exc).__name__}: {exc}",
                         checkpoint=record.get("last_checkpoint"), loss=record.get("loss"))
        except OSError as error:  # e.g. the full disk that failed it: the failure itself is the one to report
            log.warning("%s: could not record its failure: %s", run.name, error)


def _run_job(cfg: DictConfig, plan: Plan, job: Job, evaluate: bool = True) -> str:
    """The job's run, each checkpoint handed to its rung and evaluated there as it is written
    (ladder.orchestration.publish), then its follow-ups (a branch's decays), each from its fork."""
    rung = job.rungs[0]
    prepared = prepare(cfg, rung.dataset, rung.shape.seq_len, plan)
    eval_cfg = with_heldout(cfg, plan, rung.shape.seq_len) if evaluate else None
    directory = job.directory(cfg.out_dir)
    status = read_state(directory)
    if status.state == "corrupt":  # as for a rung's: its checkpoints are still trusted and resumed from
        log.warning("%s", status.reason)
        (directory / RECORD).unlink()
    publisher = Publisher(cfg.out_dir, job, eval_cfg)
    publisher.catch_up()  # what a stop between a checkpoint and its hook left undone
    job_config = eval_cfg if evaluate else cfg
    try:
        state = _train(cfg, job.run, directory, prepared, publisher.publish,
                       lambda d: write_job_file(d, job_config, plan, job, evaluate))
    except BaseException:  # a stop (SIGTERM) or failure: the rungs' records say so too, not a stale `running`
        try:
            publisher.write_records()
        except Exception as exc:
            log.warning("%s: could not update its rungs' records: %s", job.name, exc)
        raise
    publisher.catch_up()
    if state != "done":
        return state
    for follow in job.follow_ups:  # each resumes from its fork, linked into its directory above
        follow_dir = rung_dir(cfg.out_dir, follow.name)
        try:
            state = _train(cfg, follow, follow_dir, prepared, publisher.hook(follow.name),
                           lambda d: write_job_file(d, job_config, plan, job, evaluate, follow.name))
            if evaluate:
                evaluate_unevaluated(eval_cfg, follow_dir)
        except Exception as exc:  # the branch is blamed, not the trunk, which is done (the pipeline names it)
            log.error("%s failed: %s: %s", follow.name, type(exc).__name__, exc)
            record_failure(follow_dir, follow, exc)
            return "failed"
        if state != "done":  # the rung's record says why (the pipeline reports it); the next waits for a rerun
            return state
    return "done"


def _train(cfg: DictConfig, run: Run, directory: Path, prepared, hook, write_job) -> str:
    """Train `run` into `directory` here, or in torchrun workers when it trains on several processes
    (`train.backends.process_count`: train.num_processes, by default one per visible GPU); the state it
    ends in. `hook` follows each checkpoint here; the workers (ladder.orchestration.worker) make it again
    (`publish.worker_hook`) from the job file (ladder.core.jobfile) `write_job(directory)` writes."""
    # D rounded up to whole optimizer steps: what every step of the recipe consumes.
    data_kwargs = {"tokens": run.tokens, "seed": cfg.seed,
                   "allow_repeat": dataset_config(cfg, run.dataset).allow_repeat}
    processes = process_count(cfg.train)
    config_file = store_config(cfg.out_dir, cfg)  # the whole config, named by the run's config.yaml, in wandb's
    if processes > 1 and "WORLD_SIZE" not in os.environ:
        directory.mkdir(parents=True, exist_ok=True)
        write_job(directory)
        write_launch(directory, run, cfg.train, data_kwargs, data_args=[str(prepared.train_dir)],
                     tokenizer_dir=prepared.tokenizer_dir, config_file=config_file)
        worker = "ladder.orchestration.worker" if hook else "train.worker"  # the former publishes each checkpoint
        subprocess.run(launch_command(directory, processes, worker=worker), check=False)
        return read_state(directory).state
    sequences = TokenSequences(prepared.train_dir, **data_kwargs)
    return train_run(run, sequences, directory, cfg.train, tokenizer_dir=prepared.tokenizer_dir,
                     eval_hook=hook, config_file=config_file).state
