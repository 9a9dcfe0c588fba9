"""`ladder status`: each rung's state from the records its run wrote."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ladder.core.layout import RECORD, rung_dir, trunk_dir
from ladder.core.plan import Plan, Rung, Trunk
from ladder.core.sizes import format_count
from ladder.orchestration.lock import is_locked

STATES = ("done", "running", "interrupted", "stale", "failed", "corrupt", "pending")


@dataclass(frozen=True)
class RungStatus:
    rung: Rung
    state: str  # one of STATES
    tokens: int
    reason: Optional[str] = None

    @property
    def compute(self) -> float:
        return self.rung.compute * min(1.0, self.tokens / self.rung.tokens)


def _trunk_line(out_dir: str | Path, trunk: Trunk, width: int) -> tuple[str, float]:
    """The trunk's row of the status table and the compute it and its branches have spent."""
    status = read_status(out_dir, trunk.run, trunk_dir(out_dir, trunk.name))
    tokens = status.tokens
    if trunk.schedule == "branch":  # each branch's own tokens, past its fork
        forks = [f * trunk.tokens_per_step for f in trunk.forks]
        tokens += sum(max(0, read_status(out_dir, r).tokens - f) for r, f in zip(trunk.rungs, forks))
    spent = min(trunk.compute, 6.0 * trunk.rungs[0].params * tokens)
    done = f"{format_count(status.tokens)}/{format_count(trunk.run.tokens)}"
    return f"{trunk.name.ljust(width)}  {status.state:11}  {done:>21}  {status.reason or ''}".rstrip(), spent


def read_status(out_dir: str | Path, rung: Rung, directory: Optional[Path] = None) -> RungStatus:
    """A rung's status from its record; `directory` (a trunk's) instead of the rung's own."""
    path = (directory or rung_dir(out_dir, rung.rung_id)) / RECORD
    if not path.exists():
        return RungStatus(rung, "pending", 0)
    try:
        record = json.loads(path.read_text())
        state, tokens, reason = record["state"], int(record.get("tokens") or 0), record.get("reason")
    except (ValueError, KeyError, TypeError) as exc:
        return RungStatus(rung, "corrupt", 0, f"{path}: unreadable record ({exc}); `ladder run` redoes this rung")
    if state == "running" and not is_locked(path.parent):  # nobody holds the rung: its runner died
        state, reason = "stale", (f"its process (pid {record.get('pid')} on {record.get('host')}) is gone since "
                                  f"{record.get('updated')}; `ladder run` resumes it")
    return RungStatus(rung, state, tokens, reason)


def status_table(plan: Plan, out_dir: str | Path) -> str:
    statuses = [read_status(out_dir, rung) for rung in plan.rungs]
    width = max(len(name) for name in [s.rung.rung_id for s in statuses] + [t.name for t in plan.trunks])
    lines = [f"{'rung'.ljust(width)}  {'state':11}  {'tokens done':>21}  reason", "-" * (width + 48)]
    for s in statuses:
        done = f"{format_count(s.tokens)}/{format_count(s.rung.tokens)}"
        lines.append(f"{s.rung.rung_id.ljust(width)}  {s.state:11}  {done:>21}  {s.reason or ''}".rstrip())
    counts = {state: sum(s.state == state for s in statuses) for state in STATES}
    counts = {state: n for state, n in counts.items() if n or state in ("done", "running", "failed", "pending")}
    spent = sum(s.compute for s in statuses)
    if plan.trunks:  # the rungs' own compute is the trunks'
        trunks = [_trunk_line(out_dir, t, width) for t in plan.trunks]
        lines += ["", f"{plan.schedule} trunks (each trains every multiplier of its size):"] + [t[0] for t in trunks]
        spent = sum(t[1] for t in trunks)
    lines += ["", ", ".join(f"{n} {state}" for state, n in counts.items()) +
              f"; compute {spent:.3g} of {plan.compute:.3g} FLOPs ({100 * spent / plan.compute:.1f} %)"]
    return "\n".join(lines)
