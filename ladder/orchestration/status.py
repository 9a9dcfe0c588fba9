"""`ladder status`: each rung's state from the records its run wrote, and each trunk's."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from ladder.core.configs import ConfigError, one_line
from ladder.core.layout import METRICS, PLAN, RECORD, rung_dir
from ladder.core.plan import Plan, Rung, build_plan
from ladder.core.schedules import Job
from ladder.core.sizes import format_count
from ladder.orchestration.lock import is_locked
from ladder.orchestration.progress import duration

STATES = ("done", "running", "interrupted", "stale", "failed", "corrupt", "pending")


@dataclass(frozen=True)
class Status:
    state: str  # one of STATES
    tokens: int
    reason: Optional[str] = None


@dataclass(frozen=True)
class RungStatus:
    rung: Rung
    state: str  # one of STATES
    tokens: int
    reason: Optional[str] = None

    @property
    def compute(self) -> float:
        return self.rung.compute * min(1.0, self.tokens / self.rung.tokens)


def read_state(directory: Path) -> Status:
    """The state of the run in `directory` (a rung's or a trunk's) from its record."""
    path = Path(directory) / RECORD
    if not path.exists():
        return Status("pending", 0)
    try:
        record = json.loads(path.read_text())
        state, tokens, reason = record["state"], int(record.get("tokens") or 0), record.get("reason")
    except (ValueError, KeyError, TypeError) as exc:
        return Status("corrupt", 0, f"{path}: unreadable record ({exc}); `ladder run` rewrites it, resuming from "
                                    f"the run's last checkpoint")
    if state == "running" and not is_locked(path.parent):  # nobody holds the rung: its runner died
        state, reason = "stale", (f"its process (pid {record.get('pid')} on {record.get('host')}) is gone since "
                                  f"{record.get('updated')}; `ladder run` resumes it")
    return Status(state, tokens, reason)


def read_status(out_dir: str | Path, rung: Rung) -> RungStatus:
    status = read_state(rung_dir(out_dir, rung.rung_id))
    return RungStatus(rung, status.state, status.tokens, status.reason)


def _pace(directory: Path, state: str, tokens: int, total: int) -> str:
    """`loss 3.214, 12.3K tok/s, ETA 4 min` for a running run, from the last line of its training log."""
    if state != "running" or not (Path(directory) / METRICS).is_file():
        return ""
    try:
        last = json.loads((Path(directory) / METRICS).read_text().splitlines()[-1])
        rate = float(last["tokens_per_s"])
        return f"loss {last['loss']:.4g}, {format_count(rate)} tok/s, ETA {duration((total - tokens) / rate)}"
    except (IndexError, ValueError, KeyError, TypeError, ZeroDivisionError):  # a line being written, a first step
        return ""


def _job_line(out_dir: str | Path, job: Job, width: int) -> tuple[str, float]:
    """The row of a job that trains in a directory of its own (a trunk) and the compute it and its
    follow-ups have spent."""
    status = read_state(job.directory(out_dir))
    tokens = status.tokens + sum(max(0, read_state(rung_dir(out_dir, f.name)).tokens - f.start_step * f.tokens_per_step)
                                 for f in job.follow_ups)  # each follow-up's own tokens, past its start
    spent = min(job.compute, 6.0 * job.run.params * tokens)
    done = f"{format_count(status.tokens)}/{format_count(job.run.tokens)}"
    note = status.reason or _pace(job.directory(out_dir), status.state, status.tokens, job.run.tokens)
    return f"{job.name.ljust(width)}  {status.state:11}  {done:>21}  {note}".rstrip(), spent


def _shown(out_dir: str | Path, rung: Rung, trunk: Optional[Job]) -> RungStatus:
    """A rung as the table shows it: one whose trunk is training it, and has no record of its own yet, is
    running (in that trunk), not pending."""
    status = read_status(out_dir, rung)
    if trunk is not None and status.state == "pending" and read_state(trunk.directory(out_dir)).state == "running":
        return RungStatus(rung, "running", 0, f"in its trunk {trunk.name}")
    return status


def run_plan(cfg: DictConfig) -> Plan:
    """The plan of the run in cfg.out_dir: rebuilt from the ladder config its plan.json keeps, whatever overrides
    `ladder status` was given (a run's sizes, datasets or schedule need not be repeated); the config's own plan
    for a directory without one (a run not started, or written before plan.json kept it)."""
    path = Path(cfg.out_dir) / PLAN
    try:
        saved = json.loads(path.read_text()).get("ladder_config") if path.is_file() else None
    except (ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); `ladder run` writes it again") from None
    if saved is None:
        return build_plan(cfg)
    try:
        return build_plan(OmegaConf.merge(cfg, {"ladder": saved}))
    except Exception as exc:  # OmegaConf's validation errors have no common base; a newer schema may refuse it
        raise ConfigError(f"{path}: its ladder_config is not a ladder this harness reads ({one_line(exc)})") from None


def status_table(plan: Plan, out_dir: str | Path) -> str:
    own = [j for j in plan.jobs if j.linked]  # jobs whose run is not a rung's: their rungs' compute is theirs
    trunks = {r.rung_id: j for j in own for r in j.rungs}
    statuses = [_shown(out_dir, rung, trunks.get(rung.rung_id)) for rung in plan.rungs]
    width = max(len(name) for name in [s.rung.rung_id for s in statuses] + [j.name for j in own])
    lines = [f"{'rung'.ljust(width)}  {'state':11}  {'tokens done':>21}  reason", "-" * (width + 48)]
    for s in statuses:
        done = f"{format_count(s.tokens)}/{format_count(s.rung.tokens)}"
        note = s.reason or _pace(rung_dir(out_dir, s.rung.rung_id), s.state, s.tokens, s.rung.tokens)
        lines.append(f"{s.rung.rung_id.ljust(width)}  {s.state:11}  {done:>21}  {note}".rstrip())
    counts = {state: sum(s.state == state for s in statuses) for state in STATES}
    counts = {state: n for state, n in counts.items() if n or state in ("done", "running", "failed", "pending")}
    spent = sum(s.compute for s in statuses)
    if own:
        rows = [_job_line(out_dir, j, width) for j in own]
        lines += ["", f"{plan.lr_schedule} trunks (each trains every multiplier of its size):"] + [r[0] for r in rows]
        spent = sum(r[1] for r in rows)
    lines += ["", ", ".join(f"{n} {state}" for state, n in counts.items()) +
              f"; compute {spent:.3g} of {plan.compute:.3g} FLOPs ({100 * spent / plan.compute:.1f} %)"]
    return "\n".join(lines)
