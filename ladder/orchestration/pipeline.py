"""`ladder run`: data → train → eval for every rung, then fit → report; resumable at every step.

Each stage is called through its public entry point and hands the next one files: packed tokens,
checkpoints, `results.jsonl`, the report. A rung whose record says done is skipped, an interrupted
one resumes from its last checkpoint, and a failed one is reported while the others go on.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from eval.cli import unevaluated
from fit.config import FitConfig
from fit.errors import FitInputError
from fit.run import run_fit
from ladder.core.configs import CONFIG_DIR, ConfigError, one_line
from ladder.core.files import atomic_write_text
from ladder.core.interrupt import raise_if_stopped
from ladder.core.layout import FIT_SETTINGS, PLAN, RECORD, REPORT, results_files, rung_dir
from ladder.core.plan import Plan, Rung, build_plan
from ladder.core.provenance import harness_commit
from ladder.core.schedules import Job
from ladder.orchestration import identity
from ladder.orchestration.compose import load
from ladder.orchestration.node import device_count, run_packed
from ladder.orchestration.plan_format import as_json
from ladder.orchestration.progress import LadderProgress
from ladder.orchestration.rung import LOCKED, prepare_all, run_job, with_heldout
from ladder.orchestration.slurm import submit_jobs, tokenize_on_slurm, wait
from ladder.orchestration.status import read_state, read_status, status_table
from train.metrics import optional_module

log = logging.getLogger(__name__)


def _write_plan(cfg: DictConfig, plan: Plan, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / PLAN, as_json(plan, ladder=OmegaConf.to_container(cfg.ladder, resolve=True)))


def saved_fit_settings(results: Path) -> DictConfig | None:
    """The fit settings a harness run directory ran with (its FIT_SETTINGS, less where results and
    report lay), or those of the ladder its plan.json names (run directories written before
    FIT_SETTINGS); None for anything else (published data, a CSV). A damaged file is a ConfigError naming it."""
    if (results / FIT_SETTINGS).is_file():
        fit = _read_fit_settings(results / FIT_SETTINGS)
        return OmegaConf.masked_copy(fit, [k for k in fit if k not in ("results", "out")])
    if (results / PLAN).is_file():
        try:
            name = json.loads((results / PLAN).read_text()).get("ladder")
        except (ValueError, AttributeError) as exc:
            raise ConfigError(f"{results / PLAN}: unreadable ({exc}); `ladder run` writes it again, or give the "
                              f"fit settings (fit=NAME or fit.KEY=VALUE)") from None
        if name and (CONFIG_DIR / "ladder" / f"{name}.yaml").is_file():
            return load([f"ladder={name}"]).fit
    return None


def _read_fit_settings(path: Path) -> DictConfig:
    """FIT_SETTINGS as `run_ladder` writes it: whole (written atomically, it ends with a newline) and keys of the
    fit schema, of their types (an older harness's file may lack the newer keys: their defaults apply)."""
    text = path.read_text()
    if text and not text.endswith("\n"):  # first: half a file is often not YAML either
        raise ConfigError(f"{path}: cut short (its last line has no end); delete it, or run the ladder again to "
                          f"rewrite it")
    try:
        fit = OmegaConf.create(text)
        OmegaConf.merge(OmegaConf.structured(FitConfig), fit)  # the schema's types, or an error naming the key
    except Exception as exc:  # YAML's and OmegaConf's errors have no common base
        raise ConfigError(f"{path}: not the fit settings `ladder run` writes ({one_line(exc)}); delete it, or "
                          f"run the ladder again to rewrite it") from None
    return fit


def _fit_config(cfg: DictConfig, plan: Plan) -> DictConfig:
    """Fit the ladder's own results; predict its targets (as they are: `Target.as_spec`) unless the fit config
    names others."""
    fit = OmegaConf.to_container(cfg.fit, resolve=True)
    fit["results"] = fit["results"] or str(cfg.out_dir)
    fit["out"] = fit["out"] or str(Path(cfg.out_dir) / REPORT)
    if not fit["targets"]:
        fit["targets"] = [t.as_spec() for t in plan.targets]
    return OmegaConf.create(fit)


def run_ladder(cfg: DictConfig, evaluate: bool = True, fit: bool = True, plan: Plan | None = None) -> int:
    """Every unfinished rung, then the fit and report. 0 when every rung is done and the fit worked. `plan` is the
    config's, where the caller has built it (a process plans once)."""
    plan = plan or build_plan(cfg)
    out_dir = Path(cfg.out_dir)
    identity.check(cfg, plan, plan.jobs)  # a finished rung is reused only with the settings that made it
    _write_plan(cfg, plan, out_dir)
    settings = OmegaConf.to_yaml(_fit_config(cfg, plan))
    if not (out_dir / FIT_SETTINGS).is_file() or (out_dir / FIT_SETTINGS).read_text() != settings:
        atomic_write_text(out_dir / FIT_SETTINGS, settings)  # only when changed: its age dates the settings
    if cfg.launcher.name == "slurm":
        tokenize_on_slurm(cfg, plan)  # the token stores, by array tasks; prepare_all below cuts the splits
    prepare_all(cfg, plan)  # once, up front, so parallel jobs find the tokens ready
    statuses = [read_status(out_dir, r) for r in plan.rungs]
    for status in statuses:
        if status.state == "corrupt":  # its checkpoints, if any, are still trusted and resumed from
            log.warning("%s", status.reason)
            (rung_dir(out_dir, status.rung.rung_id) / RECORD).unlink()
    heldout = {}  # seq_len -> the eval config (with_heldout prepares every dataset: once per length)
    todo = [s.rung for s in statuses if s.state != "done" or (evaluate and _unevaluated(cfg, plan, s.rung, heldout))]
    log.info("%d of %d rungs to run", len(todo), len(plan.rungs))
    # wsds/branch: one job per size trains its rungs; a trunk whose own record is damaged runs too, to rewrite it
    # (its rungs' records may all be whole), resuming from its last checkpoint
    jobs = [j for j in plan.jobs if any(r in todo for r in j.rungs)
            or (j.linked and read_state(j.directory(out_dir)).state == "corrupt")]
    if cfg.launcher.name == "slurm":
        failures, elsewhere = wait(submit_jobs(cfg, plan, jobs)), []
    else:
        failures, elsewhere = _run_here(cfg, plan, jobs, evaluate)
    # A job can end cleanly with a rung that stopped, e.g. on divergence (under branch: one of its branches).
    for job in jobs:
        if job.name in failures or job.name in elsewhere:
            continue
        status = read_state(job.directory(out_dir))
        if status.state != "done":
            failures[job.name] = status.reason or status.state
        else:  # a done job's rungs: each done and evaluated, or it failed; never left pending
            failures.update(_unfinished(cfg, plan, job, evaluate, heldout))
    if int(os.environ.get("RANK", 0)) > 0:  # launched by torchrun: rank 0 reports and fits for all
        return 1 if failures else 0
    print(status_table(plan, out_dir))
    for rung_id, reason in failures.items():
        print(f"rung {rung_id} failed: {reason}")
    if elsewhere:
        print(f"{len(elsewhere)} rung(s) are being run by another process ({', '.join(elsewhere)}); "
              f"the fit waits for them: run `ladder run` or `ladder fit` again once they are done")
    if not fit or elsewhere:
        return 1 if failures else 0
    if not results_files(out_dir):
        print(f"fit: skipped: no rung has evaluation results under {out_dir} yet"
              + (f" ({len(failures)} failed, see above)" if failures else ""))
        return 1
    fit_cfg = _fit_config(cfg, plan)
    if _report_current(cfg, fit_cfg):
        print(f"fit: nothing changed since the report was written (no new results, the same fit settings), so it "
              f"is kept; `ladder fit results={out_dir}` fits again\nreport: {Path(fit_cfg.out) / 'report.html'}")
        return 1 if failures else 0
    said = io.StringIO()  # the fit's answer and `report:` line, printed once wandb (which talks too) is done
    try:
        with contextlib.redirect_stdout(said):
            report = run_fit(fit_cfg)
    except FitInputError as exc:  # e.g. too few finished rungs for the law: the rungs' work is kept
        print(said.getvalue() + f"fit: error: {exc}")
        return 1
    try:
        _report_to_wandb(cfg, plan, report)
    finally:
        print(said.getvalue(), end="")
    return 1 if failures else 0


def _report_current(cfg: DictConfig, fit_cfg: DictConfig) -> bool:
    """Whether the ladder's report was written after every result it fits and the fit settings it used: a rerun
    with nothing new keeps it (a fit of the default 200 resamples takes half a minute) and starts no wandb run."""
    out_dir = Path(cfg.out_dir)
    report = Path(fit_cfg.out) / "report.html"
    if Path(fit_cfg.results) != out_dir or not report.is_file():
        return False
    inputs = [*results_files(out_dir), out_dir / FIT_SETTINGS]
    return report.stat().st_mtime_ns > max(p.stat().st_mtime_ns for p in inputs)


def _report_to_wandb(cfg: DictConfig, plan: Plan, report: Path) -> None:
    """The report on wandb beside the rungs' runs (train.wandb; offline by default, `wandb sync` uploads it):
    one run of job type "report" per fit, holding the page, the predictions and the ladder's whole config."""
    settings = cfg.train.wandb
    if settings.mode == "disabled":
        return
    import pandas as pd

    wandb = optional_module("wandb", f"the report is not logged to wandb (train.wandb.mode={settings.mode})")
    if wandb is None:
        return
    run = wandb.init(project=settings.project, entity=settings.entity, name=f"{plan.name}-report",
                     job_type="report", dir=str(cfg.out_dir), mode=settings.mode,
                     config={"ladder": OmegaConf.to_container(cfg, resolve=True), "harness_commit": harness_commit()})
    try:
        run.log({"report": wandb.Html((report / "report.html").read_text()),
                 "predictions": wandb.Table(dataframe=pd.read_csv(report / "predictions.csv"))})
    finally:
        run.finish()


def _unfinished(cfg: DictConfig, plan: Plan, job: Job, evaluate: bool, heldout: dict) -> dict[str, str]:
    """Why each rung of a job that ended is not finished: a branch that stopped and those after it, which wait
    for it; a checkpoint whose evaluation failed (its training record stays done)."""
    out = {}
    for status in (read_status(cfg.out_dir, r) for r in job.rungs):
        if status.state != "done":
            out[status.rung.rung_id] = status.reason or f"{status.state}: its job ended before training it"
        elif evaluate and (missing := _unevaluated(cfg, plan, status.rung, heldout)):
            out[status.rung.rung_id] = (f"checkpoint(s) {', '.join(p.name for p in missing)} not evaluated (the "
                                        f"error is logged above)")
    return out


def _unevaluated(cfg: DictConfig, plan: Plan, rung: Rung, heldout: dict) -> list[Path]:
    """A rung's committed checkpoints without their records (a kill between commit and eval, a failed eval)."""
    seq_len = rung.shape.seq_len
    if seq_len not in heldout:
        heldout[seq_len] = with_heldout(cfg, plan, seq_len)
    return unevaluated(heldout[seq_len], rung_dir(cfg.out_dir, rung.rung_id))


def _run_here(cfg: DictConfig, plan: Plan, jobs: list[Job], evaluate: bool) -> tuple[dict[str, str], list[str]]:
    """Run the jobs on this node, packed onto its devices (ladder.orchestration.node) where there are several,
    else one after another here: (the error of each that failed, the ones another process is running)."""
    devices = device_count(cfg)
    if devices > 1 and len(jobs) > 1 and "WORLD_SIZE" not in os.environ:  # not when torchrun started us
        return run_packed(cfg, plan, jobs, evaluate, devices)
    failures, elsewhere = {}, []
    progress = LadderProgress(jobs)
    for job in jobs:
        raise_if_stopped()
        try:
            if progress.run(job, lambda: run_job(cfg, job.name, evaluate, plan)) == LOCKED:
                elsewhere.append(job.name)
        except Exception as exc:  # one job's failure must not stop the ladder; its message is kept
            log.error("%s failed: %s: %s", job.name, type(exc).__name__, exc)
            log.debug("%s traceback", job.name, exc_info=True)
            failures[job.name] = f"{type(exc).__name__}: {exc}"
    return failures, elsewhere

