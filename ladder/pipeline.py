"""`ladder run`: data → train → eval for every rung, then fit → report; resumable at every step.

Each stage is called through its public entry point and hands the next one files: packed tokens,
checkpoints, `results.jsonl`, the report. A rung whose record says done is skipped, an interrupted
one resumes from its last checkpoint, and a failed one is reported while the others go on.
"""
from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ladder.config import load_group_option
from ladder.files import atomic_write_text
from ladder.plan import Plan, Rung, Trunk, build_plan
from ladder.status import RECORD, read_status, rung_dir, status_table, trunk_dir
from ladder.trunks import JOB, Points, find_trunk

log = logging.getLogger(__name__)


def data_config(cfg: DictConfig, dataset: str) -> DictConfig:
    """The dataset's config; the root `data` wins when it names this dataset, so overrides apply."""
    from train.data import DataConfig

    return cfg.data if cfg.data.name == dataset else load_group_option("data", dataset, DataConfig)


def _rungs_of(plan: Plan, dataset: str, seq_len: int) -> list[Rung]:
    return [r for r in plan.rungs if r.dataset == dataset and r.shape.seq_len == seq_len]


def tokens_needed(plan: Plan, dataset: str, seq_len: int) -> int:
    """What the largest rung on this dataset and sequence length trains on."""
    return max(r.trained_tokens for r in _rungs_of(plan, dataset, seq_len))


def prepare(cfg: DictConfig, dataset: str, seq_len: int, plan: Plan):
    """Packed tokens of one dataset for one sequence length (cached: tokenized once per input), from a
    tokenizer whose ids fit every model that trains on them."""
    from train.data import DataError, prepare_data

    data = data_config(cfg, dataset)
    # A hub stream never ends: pack only what the largest rung trains on. Local files are packed whole.
    prepared = prepare_data(data, cfg.ladder.tokenizer, seq_len=seq_len, seed=cfg.seed,
                            train_tokens=None if data.path is not None else tokens_needed(plan, dataset, seq_len))
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
        cfg.data = data_config(cfg, first)
    if cfg.eval.tokenizer is None:
        cfg.eval.tokenizer = str(prepared[cfg.ladder.datasets[0]].tokenizer_dir)
    return cfg


def find_rung(plan: Plan, rung_id: str) -> Rung:
    for rung in plan.rungs:
        if rung.rung_id == rung_id:
            return rung
    raise ValueError(f"rung '{rung_id}' is not in ladder '{plan.name}'")


EVAL_CONFIG = "eval_config.yaml"  # beside a rung's checkpoints: how torchrun workers evaluate them


def evaluate_checkpoint(checkpoint_dir: Path, step: int) -> None:
    """The eval hook of torchrun workers, which cannot be handed a closure: it reads the eval config
    `run_rung` wrote into the rung's directory."""
    from eval.cli import make_eval_hook

    directory = Path(checkpoint_dir).parent.parent
    make_eval_hook(OmegaConf.load(directory / EVAL_CONFIG), directory)(checkpoint_dir, step)


def run_rung(cfg: DictConfig, rung_id: str, evaluate: bool = True) -> str:
    """Prepare, train (evaluating every checkpoint as it is written) and return the rung's final state.
    `rung_id` may name a trunk of a wsds or branch ladder instead: then `run_trunk`."""
    from eval.cli import make_eval_hook

    plan = build_plan(cfg)
    trunk = find_trunk(plan, rung_id)
    if trunk is not None:
        return run_trunk(cfg, plan, trunk, evaluate)
    rung = find_rung(plan, rung_id)
    prepared = prepare(cfg, rung.dataset, rung.shape.seq_len, plan)
    directory = rung_dir(cfg.out_dir, rung)
    eval_cfg = with_heldout(cfg, plan, rung.shape.seq_len) if evaluate else None
    return _train(cfg, rung, directory, prepared, make_eval_hook(eval_cfg, directory) if evaluate else None,
                  ("ladder.pipeline:evaluate_checkpoint", EVAL_CONFIG, eval_cfg) if evaluate else None)


def run_trunk(cfg: DictConfig, plan: Plan, trunk: Trunk, evaluate: bool = True) -> str:
    """One size of a wsds or branch ladder: the trunk, then (branch) each rung's decay from its fork.
    Each checkpoint is linked into its rung and evaluated there as it is written (ladder.trunks)."""
    rung = trunk.rungs[0]
    prepared = prepare(cfg, rung.dataset, rung.shape.seq_len, plan)
    eval_cfg = with_heldout(cfg, plan, rung.shape.seq_len) if evaluate else None
    status = read_status(cfg.out_dir, trunk.run, trunk_dir(cfg.out_dir, trunk))
    if status.state == "corrupt":  # as for a rung's: its checkpoints are still trusted and resumed from
        log.warning("%s", status.reason)
        (trunk_dir(cfg.out_dir, trunk) / RECORD).unlink()
    points = Points(cfg.out_dir, trunk, eval_cfg)
    points.catch_up()  # what a crash between a checkpoint and its hook left undone
    job = OmegaConf.create({"config": eval_cfg or OmegaConf.to_container(cfg, resolve=True), "evaluate": evaluate})
    state = _train(cfg, trunk.run, trunk_dir(cfg.out_dir, trunk), prepared, points.publish,
                   ("ladder.trunks:publish_checkpoint", JOB, job))
    points.catch_up()
    if state != "done" or trunk.schedule != "branch":
        return state
    for k, rung in enumerate(trunk.rungs):  # each resumes from its fork, linked into its directory above
        state = _train(cfg, trunk.branch(k), rung_dir(cfg.out_dir, rung), prepared, points.hook(rung),
                       ("ladder.pipeline:evaluate_checkpoint", EVAL_CONFIG, eval_cfg) if evaluate else None)
        if state != "done":
            return state
    return "done"


def _train(cfg: DictConfig, run: Rung, directory: Path, prepared, hook, worker_hook) -> str:
    """Train `run` into `directory` here, or in torchrun workers when train.num_processes > 1; the
    state it ends in. `hook(checkpoint_dir, step)` follows each checkpoint here; workers call the
    import path of `worker_hook` = (path, file name, config), which reads the config from that file."""
    from train.data import TokenSequences
    from train.loop import train_rung
    from train.worker import launch_command, write_launch

    # D rounded up to whole optimizer steps: what every step of the recipe consumes.
    data_kwargs = {"tokens": run.trained_tokens, "seed": cfg.seed,
                   "allow_repeat": data_config(cfg, run.dataset).allow_repeat}
    if cfg.train.num_processes > 1 and "WORLD_SIZE" not in os.environ:
        directory.mkdir(parents=True, exist_ok=True)
        if worker_hook is not None:
            atomic_write_text(directory / worker_hook[1], OmegaConf.to_yaml(worker_hook[2]))
        write_launch(directory, run, cfg.train, data_kwargs, data_args=[str(prepared.train_dir)],
                     tokenizer_dir=prepared.tokenizer_dir, eval_hook=worker_hook[0] if worker_hook else None)
        subprocess.run(launch_command(directory, cfg.train.num_processes), check=False)
        return read_status(cfg.out_dir, run, directory).state
    sequences = TokenSequences(prepared.train_dir, **data_kwargs)
    return train_rung(run, sequences, directory, cfg.train, tokenizer_dir=prepared.tokenizer_dir,
                      eval_hook=hook).state


def _write_plan(plan: Plan, out_dir: Path) -> None:
    from ladder.plan_format import as_json

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "plan.json", as_json(plan))


def _fit_config(cfg: DictConfig, plan: Plan) -> DictConfig:
    """Fit the ladder's own results; predict its targets unless the fit config names others."""
    fit = OmegaConf.to_container(cfg.fit, resolve=True)
    fit["results"] = fit["results"] or str(cfg.out_dir)
    fit["out"] = fit["out"] or str(Path(cfg.out_dir) / "report")
    if not fit["targets"]:
        fit["targets"] = [{"name": t.name, "params": t.params, "tokens": t.tokens} for t in plan.targets]
    return OmegaConf.create(fit)


def run_ladder(cfg: DictConfig, evaluate: bool = True, fit: bool = True) -> int:
    """Every unfinished rung, then the fit and report. 0 when every rung is done and the fit worked."""
    from fit.errors import FitInputError
    from fit.run import run_fit

    plan = build_plan(cfg)
    out_dir = Path(cfg.out_dir)
    _write_plan(plan, out_dir)
    prepare_all(cfg, plan)  # once, up front, so parallel jobs find the tokens ready
    statuses = [read_status(out_dir, r) for r in plan.rungs]
    for status in statuses:
        if status.state == "corrupt":  # its checkpoints, if any, are still trusted and resumed from
            log.warning("%s", status.reason)
            (rung_dir(out_dir, status.rung) / RECORD).unlink()
    todo = [s.rung for s in statuses if s.state != "done"]
    log.info("%d of %d rungs to run", len(todo), len(plan.rungs))
    if plan.trunks:  # wsds/branch: one run per size trains all its rungs
        todo = [t.run for t in plan.trunks if any(r in todo for r in t.rungs)]
    if cfg.launcher.name == "slurm":
        failures = _run_slurm(cfg, todo)
    else:
        failures = _run_here(cfg, todo, evaluate)
    if int(os.environ.get("RANK", 0)) > 0:  # launched by torchrun: rank 0 reports and fits for all
        return 1 if failures else 0
    print(status_table(plan, out_dir))
    for rung_id, reason in failures.items():
        print(f"rung {rung_id} failed: {reason}")
    if not fit:
        return 1 if failures else 0
    try:
        report = run_fit(_fit_config(cfg, plan))
    except FitInputError as exc:  # e.g. too few finished rungs for the law: the rungs' work is kept
        print(f"fit: error: {exc}")
        return 1
    print(f"report: {Path(report) / 'report.html'}")
    return 1 if failures else 0


def _run_here(cfg: DictConfig, rungs: list[Rung], evaluate: bool) -> dict[str, str]:
    failures = {}
    for rung in rungs:
        try:
            state = run_rung(cfg, rung.rung_id, evaluate)
        except Exception as exc:  # one rung's failure must not stop the ladder; its message is kept
            log.error("%s failed: %s: %s", rung.rung_id, type(exc).__name__, exc)
            log.debug("%s traceback", rung.rung_id, exc_info=True)
            state, failures[rung.rung_id] = "failed", f"{type(exc).__name__}: {exc}"
        if state != "done" and rung.rung_id not in failures:
            failures[rung.rung_id] = _status(cfg, rung).reason or state
    return failures


def _status(cfg: DictConfig, job: Rung):
    """A job's status: a rung's, or a trunk's from its own directory."""
    trunk = find_trunk(build_plan(cfg), job.rung_id)
    return read_status(cfg.out_dir, job, trunk_dir(cfg.out_dir, trunk) if trunk else None)


def _run_slurm(cfg: DictConfig, rungs: list[Rung]) -> dict[str, str]:
    from ladder.slurm import submit_rungs, wait

    failures = wait(submit_rungs(cfg, rungs))
    for rung in rungs:  # a job can end cleanly with a rung that stopped, e.g. on divergence
        status = _status(cfg, rung)
        if status.state != "done" and rung.rung_id not in failures:
            failures[rung.rung_id] = status.reason or status.state
    return failures

