"""`ladder status`: each rung's state from the records its run wrote."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ladder.plan import Plan, Rung, Trunk
from ladder.sizes import format_count
from train.rundir import RECORD  # written by the training stage (docs/formats.md)



@dataclass(frozen=True)
class RungStatus:
    rung: Rung
    state: str  # pending, running, done, failed or corrupt
    tokens: int
    reason: Optional[str] = None

    @property
    def compute(self) -> float:
        return self.rung.compute * min(1.0, self.tokens / self.rung.tokens)


def rung_dir(out_dir: str | Path, rung: Rung) -> Path:
    return Path(out_dir) / "rungs" / rung.rung_id


def trunk_dir(out_dir: str | Path, trunk: Trunk) -> Path:
    """Where a WSD-S or branch trunk trains (ladder.trunks); its rungs keep their own directories."""
    return Path(out_dir) / "trunks" / trunk.name


def _trunk_line(out_dir: str | Path, trunk: Trunk, width: int) -> tuple[str, float]:
    """The trunk's row of the status table and the compute it and its branches have spent."""
    status = read_status(out_dir, trunk.run, trunk_dir(out_dir, trunk))
    tokens = status.tokens
    if trunk.schedule == "branch":  # each branch's own tokens, past its fork
        forks = [f * trunk.tokens_per_step for f in trunk.forks]
        tokens += sum(max(0, read_status(out_dir, r).tokens - f) for r, f in zip(trunk.rungs, forks))
    spent = min(trunk.compute, 6.0 * trunk.rungs[0].params * tokens)
    done = f"{format_count(status.tokens)}/{format_count(trunk.run.tokens)}"
    return f"{trunk.name.ljust(width)}  {status.state:8}  {done:>21}  {status.reason or ''}".rstrip(), spent


def read_status(out_dir: str | Path, rung: Rung, directory: Optional[Path] = None) -> RungStatus:
    path = (directory or rung_dir(out_dir, rung)) / RECORD
    if not path.exists():
        return RungStatus(rung, "pending", 0)
    try:
        record = json.loads(path.read_text())
        return RungStatus(rung, record["state"], int(record.get("tokens") or 0), record.get("reason"))
    except (ValueError, KeyError, TypeError) as exc:
        return RungStatus(rung, "corrupt", 0, f"{path}: unreadable record ({exc}); `ladder run` redoes this rung")


def status_table(plan: Plan, out_dir: str | Path) -> str:
    statuses = [read_status(out_dir, rung) for rung in plan.rungs]
    width = max(len(name) for name in [s.rung.rung_id for s in statuses] + [t.name for t in plan.trunks])
    lines = [f"{'rung'.ljust(width)}  {'state':8}  {'tokens done':>21}  reason", "-" * (width + 45)]
    for s in statuses:
        done = f"{format_count(s.tokens)}/{format_count(s.rung.tokens)}"
        lines.append(f"{s.rung.rung_id.ljust(width)}  {s.state:8}  {done:>21}  {s.reason or ''}".rstrip())
    counts = {state: sum(s.state == state for s in statuses) for state in ("done", "running", "failed", "pending")}
    spent = sum(s.compute for s in statuses)
    if plan.trunks:  # the rungs' own compute is the trunks'
        trunks = [_trunk_line(out_dir, t, width) for t in plan.trunks]
        lines += ["", f"{plan.schedule} trunks (each trains every multiplier of its size):"] + [t[0] for t in trunks]
        spent = sum(t[1] for t in trunks)
    lines += ["", ", ".join(f"{n} {state}" for state, n in counts.items()) +
              f"; compute {spent:.3g} of {plan.compute:.3g} FLOPs ({100 * spent / plan.compute:.1f} %)"]
    return "\n".join(lines)
