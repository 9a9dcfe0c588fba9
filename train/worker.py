"""`python -m train.worker --run-dir DIR`: one process of a multi-process run.

torchrun (or `accelerate launch --multi_gpu`) starts one of these per device; each reads the run,
the train config and how to open the data from `DIR/launch.json` (written by `write_launch`) and
calls `train.loop.train_run`, which resumes from the run's last checkpoint if it has one. A ladder's job, whose
checkpoints are evaluated as they are written, starts `ladder.orchestration.worker` instead: the same `run`, given
that evaluation as a callable.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from omegaconf import OmegaConf

from ladder.core.schedules import Run
from train.loop import as_train_config, end_process_group, train_run
from ladder.core.files import atomic_write_json
from ladder.core.interrupt import stop_on_sigterm
from ladder.core.layout import LAUNCH

DEFAULT_DATA = "ladder.core.shards:TokenSequences"


def write_launch(run_dir: Path, run: Run, cfg, data_kwargs: dict, data: str = DEFAULT_DATA,
                 data_args: Sequence = (), tokenizer_dir: Optional[Path] = None,
                 composed: Optional[dict] = None) -> Path:
    """Describe a run for its workers. `data` is a "module:attribute" import path (the tests' fake sequences
    travel so); the workers open the sequences as `data(*data_args, **data_kwargs)`; `composed` is train_run's."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = {"run": run.as_dict(), "train": OmegaConf.to_container(OmegaConf.structured(as_train_config(cfg))),
            "data": data, "data_args": list(data_args), "data_kwargs": data_kwargs,
            "tokenizer_dir": str(tokenizer_dir) if tokenizer_dir else None, "composed": composed}
    atomic_write_json(run_dir / LAUNCH, spec)
    return run_dir / LAUNCH


def launch_command(run_dir: Path, num_processes: int, torchrun_args: Sequence[str] = ("--standalone",),
                   worker: str = "train.worker") -> list[str]:
    """The torchrun command line for `num_processes` workers (the module `worker`) on this node (multi-node: pass
    --nnodes/--node-rank/--rdzv-endpoint instead of --standalone)."""
    return [sys.executable, "-m", "torch.distributed.run", *torchrun_args, "--nproc-per-node", str(num_processes),
            "-m", worker, "--run-dir", str(run_dir)]


def _resolve(path: str):
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def run_dir_argument(prog: str, argv: Optional[Sequence[str]] = None) -> Path:
    """The worker's --run-dir."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help=f"run directory holding {LAUNCH}")
    return parser.parse_args(argv).run_dir


def run(run_dir: Path, prog: str, eval_hook: Optional[Callable] = None) -> int:
    """Train the run `run_dir/launch.json` describes in this process (one of torchrun's), `eval_hook` following each
    checkpoint; its exit status (2, with one line, where the launch file is missing)."""
    stop_on_sigterm()  # torchrun passes a SIGTERM on to its workers: record the rung as interrupted
    if not (run_dir / LAUNCH).is_file():
        print(f"{prog}: error: no {run_dir / LAUNCH}: `ladder train` writes it for a job it trains on "
              f"several processes (e.g. train=ddp_cpu, or one per GPU); run that first, or give the run "
              f"directory it trained", file=sys.stderr)
        return 2
    spec = json.loads((run_dir / LAUNCH).read_text())
    sequences = _resolve(spec["data"])(*spec["data_args"], **spec["data_kwargs"])
    try:
        result = train_run(Run.from_dict(spec["run"]), sequences, run_dir, spec["train"],
                           tokenizer_dir=Path(spec["tokenizer_dir"]) if spec["tokenizer_dir"] else None,
                           eval_hook=eval_hook, composed=spec.get("composed"))
    finally:
        end_process_group()
    return 0 if result.state == "done" else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(run_dir_argument("train.worker", argv), "train.worker")


if __name__ == "__main__":
    sys.exit(main())
