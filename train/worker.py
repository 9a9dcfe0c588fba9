"""`python -m train.worker --run-dir DIR`: one process of a multi-process run.

torchrun (or `accelerate launch --multi_gpu`) starts one of these per device; each reads the run,
the train config and how to open the data from `DIR/launch.json` (written by `write_launch`) and
calls `train.loop.train_run`, which resumes from the run's last checkpoint if it has one.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from omegaconf import OmegaConf

from ladder.core.schedules import Run
from train.loop import as_train_config, end_process_group, train_run
from ladder.core.files import atomic_write_json
from ladder.core.interrupt import stop_on_sigterm
from ladder.core.layout import LAUNCH

DEFAULT_DATA = "ladder.core.shards:TokenSequences"


def write_launch(run_dir: Path, run: Run, cfg, data_kwargs: dict, data: str = DEFAULT_DATA,
                 data_args: Sequence = (), tokenizer_dir: Optional[Path] = None, eval_hook: Optional[str] = None,
                 composed: Optional[dict] = None) -> Path:
    """Describe a run for its workers. `data` and `eval_hook` are "module:attribute" import paths;
    the workers open the sequences as `data(*data_args, **data_kwargs)`; `composed` is train_run's."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = {"run": run.as_dict(), "train": OmegaConf.to_container(OmegaConf.structured(as_train_config(cfg))),
            "data": data, "data_args": list(data_args), "data_kwargs": data_kwargs,
            "tokenizer_dir": str(tokenizer_dir) if tokenizer_dir else None, "eval_hook": eval_hook,
            "composed": composed}
    atomic_write_json(run_dir / LAUNCH, spec)
    return run_dir / LAUNCH


def launch_command(run_dir: Path, num_processes: int, torchrun_args: Sequence[str] = ("--standalone",)) -> list[str]:
    """The torchrun command line for `num_processes` workers on this node (multi-node: pass
    --nnodes/--node-rank/--rdzv-endpoint instead of --standalone)."""
    return [sys.executable, "-m", "torch.distributed.run", *torchrun_args, "--nproc-per-node", str(num_processes),
            "-m", "train.worker", "--run-dir", str(run_dir)]


def _resolve(path: str):
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help=f"run directory holding {LAUNCH}")
    args = parser.parse_args(argv)
    stop_on_sigterm()  # torchrun passes a SIGTERM on to its workers: record the rung as interrupted
    if not (args.run_dir / LAUNCH).is_file():
        print(f"train.worker: error: no {args.run_dir / LAUNCH}: `ladder train` writes it for a job it trains on "
              f"several processes (e.g. train=ddp_cpu, or one per GPU); run that first, or give the run "
              f"directory it trained", file=sys.stderr)
        return 2
    spec = json.loads((args.run_dir / LAUNCH).read_text())
    sequences = _resolve(spec["data"])(*spec["data_args"], **spec["data_kwargs"])
    try:
        result = train_run(Run.from_dict(spec["run"]), sequences, args.run_dir, spec["train"],
                            tokenizer_dir=Path(spec["tokenizer_dir"]) if spec["tokenizer_dir"] else None,
                            eval_hook=_resolve(spec["eval_hook"]) if spec["eval_hook"] else None,
                            composed=spec.get("composed"))
    finally:
        end_process_group()
    return 0 if result.state == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
