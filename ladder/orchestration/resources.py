"""Cluster resources for a job, derived from its size and compute, evaluation included (every value overridable)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from omegaconf import DictConfig

from ladder.core.plan import Plan, Rung
from ladder.core.schedules import Job, Run

ADAM_BYTES_PER_PARAM = 16  # fp32 master weights, gradients and two Adam moments (Rajbhandari et al. 2020)


@dataclass(frozen=True)
class Resources:
    nodes: int
    gpus_per_node: int  # 0 means a CPU-only job
    cpus_per_task: int
    mem_gb: int  # per node
    time_min: int
    cpu_tasks: int = 1  # tasks of a CPU-only job

    @property
    def tasks_per_node(self) -> int:
        return self.gpus_per_node or self.cpu_tasks


def _power_of_two_at_least(x: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1.0, x))))


def _checkpoint_eval(cfg: DictConfig, rung: Rung) -> float:
    """FLOPs of evaluating one of the rung's checkpoints: 2·N per token (eval/cost.py's estimate)."""
    from eval.cost import checkpoint_tokens
    from ladder.orchestration.compose import dataset_config

    seq_len = rung.shape.seq_len
    cap = math.inf if cfg.eval.max_sequences is None else cfg.eval.max_sequences * seq_len
    # Explicit eval sets are not opened here: each is taken to be as large as the data's validation split.
    sets = [dataset_config(cfg, name).val_tokens for name in cfg.ladder.datasets] if not cfg.eval.lm_sets else \
        [cfg.data.val_tokens] * len(cfg.eval.lm_sets)
    return 2 * rung.params * checkpoint_tokens(cfg.eval, seq_len, sum(min(cap, t) for t in sets))


def eval_compute(cfg: DictConfig, plan: Plan) -> dict[str, float]:
    """Each rung's in-loop evaluation FLOPs, by rung id: every checkpoint its job's run writes that belongs to
    it (ladder.core.schedules.Job.owner), and those of its follow-up (a branch) after the follow-up's start."""
    fractions = list(cfg.train.checkpoint_fractions)
    counts = {r.rung_id: 0 for r in plan.rungs}
    for job in plan.jobs:
        for step in job.run.saved_steps(fractions):
            counts[job.owner(step).rung_id] += 1
        for follow in job.follow_ups:
            counts[follow.name] += sum(s > follow.start_step for s in follow.saved_steps(fractions))
    return {r.rung_id: _checkpoint_eval(cfg, r) * counts[r.rung_id] for r in plan.rungs}


def job_extra_flops(job: Job, evaluation: dict[str, float]) -> float:
    """What a job computes beyond training its run: its rungs' evaluation (`eval_compute`) and its follow-ups
    (a branch trunk's decays)."""
    return sum(evaluation[r.rung_id] for r in job.rungs) + sum(f.compute_exact for f in job.follow_ups)


def memory_gpus(run: Run, launcher: DictConfig) -> float:
    """GPUs whose memory, half of it, holds the run's weights, gradients and AdamW state (sharded)."""
    return ADAM_BYTES_PER_PARAM * run.shape.total_params / (0.5 * launcher.gpu_mem_gb * 2**30)


def job_flops(job: Job, evaluation: dict[str, float]) -> float:
    """Everything a job computes: its run's training (attention included), its rungs' evaluation and its
    follow-ups."""
    return job.run.compute_exact + job_extra_flops(job, evaluation)


def resources_for(run: Run, launcher: DictConfig, extra_flops: float = 0.0) -> Resources:
    """Enough GPUs to hold the sharded optimizer state and finish training and `extra_flops` more
    (evaluation; a branch trunk's decays: `job_extra_flops`) within `max_time_min`."""
    if launcher.gpus_per_node == 0:
        seconds = (run.compute_exact + extra_flops) / launcher.cpu_flops
        gpus, nodes, per_node = 0, 1, 0
    else:
        gpu_seconds = (run.compute_exact + extra_flops) / (launcher.gpu_flops * launcher.expected_mfu)
        for_memory = memory_gpus(run, launcher)
        for_time = gpu_seconds / (60 * launcher.max_time_min / launcher.time_margin)
        gpus = min(_power_of_two_at_least(max(for_memory, for_time)), launcher.gpus_per_node * launcher.max_nodes)
        gpus = launcher.gpus if launcher.gpus is not None else gpus
        per_node = min(gpus, launcher.gpus_per_node)
        nodes = math.ceil(gpus / per_node)
        seconds = gpu_seconds / gpus
    time_min = min(launcher.max_time_min, max(launcher.min_time_min, math.ceil(launcher.time_margin * seconds / 60)))
    return Resources(
        nodes=launcher.nodes if launcher.nodes is not None else nodes,
        gpus_per_node=per_node,
        cpus_per_task=launcher.cpus_per_task,
        mem_gb=launcher.mem_gb if launcher.mem_gb is not None else max(8, launcher.mem_gb_per_gpu * max(1, per_node)),
        time_min=launcher.time_min if launcher.time_min is not None else time_min,
        cpu_tasks=launcher.cpu_tasks,
    )
