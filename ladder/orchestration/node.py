"""The local launcher on a node of several devices: jobs packed onto the devices, one process each.

`schedule` is a pure function of the jobs' compute: a job gets the fewest devices (a power of two, at
least what its AdamW state needs) that keep it off the critical path, and jobs are placed longest first,
each on the devices that come free earliest (list scheduling); so small rungs share the node, one to a
device, and a job that needs every device runs alone. `run_packed` carries the schedule out: each job
is `python -m ladder.orchestration.node` (`run_job`, its locks and its record as under any launcher)
with CUDA_VISIBLE_DEVICES naming its devices, started once every job before it on those devices has
ended. All of them share one inductor cache (TORCHINDUCTOR_CACHE_DIR), so a model shape compiled by
one job is loaded, not compiled again, by the next job of that shape.
"""
from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from omegaconf import DictConfig, OmegaConf

from ladder.core.configs import ConfigError
from ladder.core.interrupt import raise_if_stopped
from ladder.core.plan import Plan
from ladder.core.schedules import Job
from ladder.core.sizes import ModelShape
from ladder.orchestration.resources import eval_compute, job_flops, memory_gpus
from train.mfu import expected_mfu
from ladder.orchestration.rung import LOCKED, run_job
from ladder.orchestration.status import read_state

log = logging.getLogger(__name__)
LOCKED_EXIT = 75  # a job process's exit code when another process runs the job (EX_TEMPFAIL)


@dataclass(frozen=True)
class Placement:
    job: str
    devices: tuple  # device indices on the node
    start: float  # seconds from the start, at the stated rate
    end: float


def makespan(placements: list[Placement]) -> float:
    return max((p.end for p in placements), default=0.0)


def _place(seconds: Mapping[str, float], widths: Mapping[str, int], devices: int, start_s: float) -> list[Placement]:
    """Longest job first (by its single-device time), each on the `widths[job]` devices free earliest."""
    free = [0.0] * devices
    out = []
    for name in sorted(seconds, key=lambda n: (-seconds[n], n)):
        chosen = sorted(sorted(range(devices), key=lambda d: (free[d], d))[:widths[name]])
        start = max(free[d] for d in chosen)
        end = start + start_s + seconds[name] / len(chosen)
        for d in chosen:
            free[d] = end
        out.append(Placement(name, tuple(chosen), start, end))
    return out


def schedule(seconds: Mapping[str, float], least: Mapping[str, int], devices: int,
             start_s: float = 0.0) -> list[Placement]:
    """Where and when each job runs: `seconds` is its time on one device, `least` the devices it needs at
    least, `start_s` what starting it costs whatever its devices (a process, its data, its compile).
    Widths start at the least; then, while it shortens the whole, the one job whose doubled width shortens
    it most gets twice the devices (perfect data-parallel scaling at the stated rate)."""
    widths = {n: min(devices, 1 << max(0, math.ceil(math.log2(max(1, least[n]))))) for n in seconds}
    best = _place(seconds, widths, devices, start_s)
    while True:
        trials = [{**widths, n: min(devices, 2 * w)} for n, w in sorted(widths.items()) if w < devices]
        placed = [(makespan(p), k, p) for k, p in enumerate(_place(seconds, t, devices, start_s) for t in trials)]
        if not placed or min(placed)[0] >= makespan(best):
            break
        _, k, best = min(placed)
        widths = trials[k]
    return sorted(best, key=lambda p: (p.start, p.devices))


def device_rate(cfg: DictConfig, shape: ModelShape) -> float:
    """FLOP/s one device is expected to sustain at `shape`: launcher.gpu_flops × launcher.expected_mfu (a wide
    model's) × the share a model of its width and sequence length gets (train.mfu, assumed until measured)."""
    return cfg.launcher.gpu_flops * expected_mfu(shape, cfg.launcher.expected_mfu)


def job_times(cfg: DictConfig, plan: Plan, jobs: list[Job]) -> tuple[dict[str, float], dict[str, int]]:
    """Each job's time on one device (its training and evaluation FLOPs at its size's `device_rate`) and the
    devices its AdamW state needs."""
    evaluation = eval_compute(cfg, plan)
    seconds = {j.name: job_flops(j, evaluation) / device_rate(cfg, j.run.shape) for j in jobs}
    return seconds, {j.name: math.ceil(memory_gpus(j.run, cfg.launcher)) for j in jobs}


def node_schedule(cfg: DictConfig, plan: Plan, jobs: list[Job], devices: int) -> list[Placement]:
    """The schedule of `jobs` on `devices` devices, from the plan (`job_times`, launcher.job_start_s)."""
    return schedule(*job_times(cfg, plan, jobs), devices, cfg.launcher.job_start_s)


def device_count(cfg: DictConfig) -> int:
    """launcher.devices, else the visible GPUs unless the ladder trains on the CPU, else 1."""
    if cfg.launcher.devices is not None:
        return cfg.launcher.devices
    import torch

    return max(1, torch.cuda.device_count()) if cfg.train.device != "cpu" else 1


def check_device(cfg: DictConfig) -> None:
    """train.device=cuda (or eval.device=cuda) where this process sees no GPU: refused in one line before anything
    is planned or written, not as each job's failure. On Slurm the jobs run on other nodes, which the check skips."""
    wanted = [k for k in ("train", "eval") if cfg[k].device == "cuda"]
    if not wanted or cfg.launcher.name == "slurm":
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"{wanted[0]}.device=cuda: this machine has no CUDA device that torch {torch.__version__} "
                          f"can use (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); set "
                          f"{wanted[0]}.device=auto or cpu, or run where a GPU is")


def _on_cuda(cfg: DictConfig) -> bool:
    """Whether the jobs train on GPUs (train.device cuda, or auto where one is visible)."""
    import torch

    return cfg.train.device != "cpu" and torch.cuda.is_available()


def _check_visible(devices: int) -> None:
    """Packed onto GPUs, every device the schedule places a job on must be one this process may use: a
    launcher.devices above them would hand jobs GPUs the allocation does not hold."""
    import torch

    visible = torch.cuda.device_count()
    if devices > visible:
        raise ConfigError(f"launcher.devices={devices}: this process sees {visible} GPU(s) (CUDA_VISIBLE_DEVICES="
                          f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); set it to {visible} or less")


def _visible(devices: tuple) -> str:
    """CUDA_VISIBLE_DEVICES for node devices `devices`, within what this process may see itself."""
    mine = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = mine.split(",") if mine else None
    return ",".join(names[d] if names and d < len(names) else str(d) for d in devices)


def run_packed(cfg: DictConfig, plan: Plan, jobs: list[Job], evaluate: bool,
               devices: int) -> tuple[dict[str, str], list[str]]:
    """Run the jobs as `node_schedule` places them, at most one job per device at a time: (the failure of
    each that failed, the ones another process is running)."""
    cuda = _on_cuda(cfg)
    if cuda:
        _check_visible(devices)
    placements = node_schedule(cfg, plan, jobs, devices)
    out_dir = Path(cfg.out_dir)
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    config_file = logs / "config.yaml"
    config_file.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    env = dict(os.environ)
    # One inductor cache for every job: each compiled graph is compiled once on the node.
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(os.environ.get("LADDER_CACHE", ".cache")).resolve() / "inductor"))
    queues = {d: [p.job for p in placements if d in p.devices] for d in range(devices)}
    by_name = {p.job: p for p in placements}
    running: dict[str, subprocess.Popen] = {}
    failures, elsewhere = {}, []
    try:
        while any(queues.values()) or running:
            raise_if_stopped()
            for p in placements:
                ready = p.job not in running and all(queues[d] and queues[d][0] == p.job for d in p.devices)
                if ready:
                    log.info("%s: starting on device(s) %s (planned %.0f–%.0f s)", p.job,
                             ",".join(map(str, p.devices)), p.start, p.end)
                    with open(logs / f"{p.job}.log", "ab") as output:
                        running[p.job] = subprocess.Popen(
                            [sys.executable, "-m", "ladder.orchestration.node", str(config_file), p.job,
                             "--evaluate" if evaluate else "--no-evaluate",
                             # one rank per GPU it was placed on, whatever train.num_processes says
                             *(["--processes", str(len(p.devices))] if cuda else [])],
                            env={**env, "CUDA_VISIBLE_DEVICES": _visible(p.devices)},
                            stdout=output, stderr=subprocess.STDOUT)
            ended = [name for name, proc in running.items() if proc.poll() is not None]
            if not ended:
                time.sleep(0.2)
            for name in ended:
                code = running.pop(name).returncode
                for d in by_name[name].devices:
                    queues[d].pop(0)
                if code == LOCKED_EXIT:
                    elsewhere.append(name)
                elif code != 0:
                    status = read_state(next(j for j in jobs if j.name == name).directory(out_dir))
                    failures[name] = status.reason or f"exit code {code} (see {logs / f'{name}.log'})"
                log.info("%s: ended (%s)", name, "done" if code == 0 else failures.get(name, "another process runs it"))
    finally:
        for proc in running.values():  # stopped: each job records itself interrupted and resumes next time
            proc.terminate()
        for proc in running.values():
            proc.wait()
    return failures, elsewhere


def main(argv: list[str] | None = None) -> int:
    """`python -m ladder.orchestration.node CONFIG JOB --evaluate|--no-evaluate`: one job of a packed node."""
    import argparse

    from ladder.core.interrupt import stop_on_sigterm

    parser = argparse.ArgumentParser(prog="python -m ladder.orchestration.node")
    parser.add_argument("config", type=Path)
    parser.add_argument("job")
    parser.add_argument("--evaluate", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--processes", type=int, default=None, help="train.num_processes for this job")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    stop_on_sigterm()
    try:
        cfg = OmegaConf.load(args.config)
        if args.processes is not None:
            cfg.train.num_processes = args.processes
        state = run_job(cfg, args.job, args.evaluate)
    finally:
        if "torch.distributed" in sys.modules:
            from train.loop import end_process_group

            end_process_group()
    return LOCKED_EXIT if state == LOCKED else 0 if state == "done" else 1


if __name__ == "__main__":
    sys.exit(main())


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min" if seconds < 36000 else f"{seconds / 3600:,.1f} h"


def describe(cfg: DictConfig, plan: Plan) -> str:
    """The plan's wall time on a node at the stated rate: packed, and with its jobs one after another."""
    # Planned where it runs, or (on a machine without GPUs) for a node of launcher.gpus_per_node.
    counted = device_count(cfg)
    devices = counted if counted > 1 else cfg.launcher.gpus_per_node
    seconds, least = job_times(cfg, plan, plan.jobs)
    placements = schedule(seconds, least, devices, cfg.launcher.job_start_s)
    one = {n: cfg.launcher.job_start_s + seconds[n] / least[n] for n in seconds}  # on the fewest devices that hold it
    mfus = [expected_mfu(j.run.shape, cfg.launcher.expected_mfu) for j in plan.jobs]
    lines = [f"on a node of {devices} devices at {cfg.launcher.gpu_flops:.3g} FLOP/s × MFU {min(mfus):.0%}–"
             f"{max(mfus):.0%} each by width and sequence length (launcher.expected_mfu {cfg.launcher.expected_mfu:g} "
             f"for a wide model × train/mfu.py's table, assumed until measured; launcher.devices, "
             f"launcher.gpu_flops), training and evaluation:",
             f"  packed (launcher=local): {_minutes(makespan(placements))}; one job after another on one device "
             f"each: {_minutes(sum(one.values()))}; each on all {devices} at perfect scaling: "
             f"{_minutes(sum(cfg.launcher.job_start_s + s / devices for s in seconds.values()))}"]
    lines += [f"    {p.job:<24} device(s) {','.join(map(str, p.devices)):<16} {p.start / 60:7.1f} – {p.end / 60:6.1f} min"
              for p in placements]
    return "\n".join(lines)
