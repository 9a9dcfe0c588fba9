"""Rendering a plan as a terminal table, JSON or CSV."""
from __future__ import annotations

import csv
import io
import json
from typing import Mapping, Optional

from ladder.core.plan import Plan, describe_target
from ladder.core.sizes import format_count

COLUMNS = ("rung", "shape", "N", "M", "D", "C", "eval C", "batch", "steps", "LR", "warmup")


def _row(rung, eval_c: float) -> tuple[str, ...]:
    s, hp = rung.shape, rung.hp
    return (
        rung.rung_id, f"d{s.d_model} l{s.n_layers} h{s.n_heads} mlp{s.mlp_hidden}",
        f"{rung.params:,}", f"{rung.multiplier:g}", format_count(rung.tokens), f"{rung.compute:.3g}",
        f"{eval_c:.3g}", f"{hp.batch_size}×{s.seq_len}", f"{hp.steps:,}", f"{hp.lr:.3g}", f"{hp.warmup_steps:,}",
    )


def table(plan: Plan, eval_compute: Mapping[str, float], expected: Optional[Mapping[str, str]] = None) -> str:
    """`eval_compute`: each rung's in-loop evaluation FLOPs, by rung id (ladder.orchestration.resources.eval_compute);
    `expected`: by target name, what is said of the ladder's forecast error there (ladder.orchestration.design)."""
    rows = [COLUMNS] + [_row(r, eval_compute[r.rung_id]) for r in plan.rungs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.rjust(w) if i > 1 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    tokens = sum(r.tokens for r in plan.rungs)
    evaluation = sum(eval_compute.values())
    lines += ["", f"ladder '{plan.name}': {len(plan.rungs)} rungs, {format_count(tokens)} tokens, "
                  f"C = {plan.compute:.3g} FLOPs (6ND), {sum(r.compute_exact for r in plan.rungs):.3g} with attention"]
    if len(plan.jobs) < len(plan.rungs):  # some run trains several rungs
        lines[-1] = (f"ladder '{plan.name}': {len(plan.rungs)} rungs from {len(plan.jobs)} {plan.lr_schedule} runs "
                     f"(one per size), C = {plan.compute:.3g} FLOPs (6ND); trained as a cosine ladder "
                     f"{plan.cosine_compute:.3g}: {plan.compute / plan.cosine_compute:.2f} of it, "
                     f"{100 * (1 - plan.compute / plan.cosine_compute):.0f} % saved")
        lines += [f"  {j.name}: {j.run.hp.steps:,} steps, {j.decay_shape} decays "
                  f"{', '.join(f'{f}–{e}' for f, e in j.decays)}" for j in plan.jobs]
    elif plan.jobs[0].decay_shape:
        lines.append(f"  every rung its own {plan.lr_schedule} run: warmup, the peak LR, then a "
                     f"{plan.jobs[0].decay_shape} decay to the final LR (ladder.lr_decay_shape)")
    lines.append(f"  evaluation: {evaluation:.3g} FLOPs (2N per token, every checkpoint), "
                 f"{100 * evaluation / plan.compute:.2g} % of training")
    for target in plan.targets:
        said = f"; {expected[target.name]}" if expected and target.name in expected else ""
        lines.append(f"  target {describe_target(target)}: C = {target.compute:.3g}, "
                     f"ladder = {100 * plan.compute / target.compute:.3g} % of it (1/{target.compute / plan.compute:.0f})"
                     + said)
    return "\n".join(lines)


def as_json(plan: Plan, eval_compute: Optional[Mapping[str, float]] = None, ladder: Optional[Mapping] = None) -> str:
    """`ladder`: the resolved ladder config that made the plan, which a run's plan.json keeps (`ladder status`
    rebuilds the run's own plan from it)."""
    rungs = [r.as_dict() for r in plan.rungs]
    if eval_compute is not None:
        rungs = [{**d, "eval_compute": eval_compute[r.rung_id]} for d, r in zip(rungs, plan.rungs)]
    return json.dumps({
        "ladder": plan.name, "compute": plan.compute, "lr_schedule": plan.lr_schedule,
        "cosine_compute": plan.cosine_compute,
        "rungs": rungs,
        "jobs": [{"name": j.name, "rungs": [r.rung_id for r in j.rungs], "steps": j.run.hp.steps,
                  "warmup_steps": j.run.hp.warmup_steps, "decays": [list(d) for d in j.decays],
                  "decay_shape": j.decay_shape,
                  "linked": j.linked, "compute": j.compute} for j in plan.jobs],
        "targets": [{"name": t.name, "params": t.params, "tokens": t.tokens, "compute": t.compute,
                     "ladder_fraction": plan.compute / t.compute} for t in plan.targets],
        **({"ladder_config": dict(ladder)} if ladder is not None else {}),
    }, indent=2)


def as_csv(plan: Plan, eval_compute: Mapping[str, float]) -> str:
    out = io.StringIO()
    fields = ["rung_id", "size", "dataset", "multiplier", "params", "tokens", "compute", "compute_exact",
              "eval_compute", "d_model", "n_layers", "n_heads", "mlp_hidden", "vocab_size", "seq_len",
              "batch_size", "steps", "lr", "warmup_steps", "final_lr"]
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for rung in plan.rungs:
        d = rung.as_dict()
        writer.writerow({**d, **d["shape"], **d["hp"], "eval_compute": eval_compute[rung.rung_id]})
    return out.getvalue()


FORMATS = {"table": table, "json": as_json, "csv": as_csv}
