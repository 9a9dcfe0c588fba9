"""`ladder status`: each rung's state from the records its run wrote."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ladder.core.layout import RECORD, rung_dir
from ladder.core.plan import Plan, Rung
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


def read_status(out_dir: str | Path, rung: Rung) -> RungStatus:
    path = rung_dir(out_dir, rung.rung_id) / RECORD
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
    width = max(len(s.rung.rung_id) for s in statuses)
    lines = [f"{'rung'.ljust(width)}  {'state':11}  {'tokens done':>21}  reason", "-" * (width + 48)]
    for s in statuses:
        done = f"{format_count(s.tokens)}/{format_count(s.rung.tokens)}"
        lines.append(f"{s.rung.rung_id.ljust(width)}  {s.state:11}  {done:>21}  {s.reason or ''}".rstrip())
    counts = {state: sum(s.state == state for s in statuses) for state in STATES}
    counts = {state: n for state, n in counts.items() if n or state in ("done", "running", "failed", "pending")}
    spent = sum(s.compute for s in statuses)
    lines += ["", ", ".join(f"{n} {state}" for state, n in counts.items()) +
              f"; compute {spent:.3g} of {plan.compute:.3g} FLOPs ({100 * spent / plan.compute:.1f} %)"]
    return "\n".join(lines)
