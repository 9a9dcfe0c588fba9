"""Train every rung of a ladder whose record is not done: `main(cfg)` for `ladder train`.

Each rung runs in this process, or, with `train.num_processes > 1`, in that many torchrun workers
on this node (`train.worker`). Launched by torchrun itself (WORLD_SIZE set, e.g. across nodes:
`torchrun --nnodes ... -m train.cli <overrides>`), every process trains the rungs together.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

from train.rundir import read_record

log = logging.getLogger(__name__)


def run_dir_for(cfg: DictConfig, rung_id: str) -> Path:
    return Path(cfg.out_dir) / "rungs" / rung_id


def main(cfg: DictConfig) -> int:
    """Train the plan's unfinished rungs in order; 0 when all are done, 1 if any failed."""
    from ladder.plan import build_plan
    from train.data import TokenSequences, prepare_data
    from train.loop import train_rung
    from train.worker import launch_command, write_launch

    failed = []
    for rung in build_plan(cfg).rungs:
        run_dir = run_dir_for(cfg, rung.rung_id)
        record = read_record(run_dir)
        if record and record["state"] == "done":
            log.info("%s: done, skipping", rung.rung_id)
            continue
        train_dir = Path(prepare_data(cfg, rung.dataset))
        tokenizer_dir = train_dir / "tokenizer" if (train_dir / "tokenizer").is_dir() else None
        # D rounded up to whole optimizer steps: the sequences every step of the recipe consumes.
        data_kwargs = {"tokens": rung.trained_tokens, "seed": cfg.seed}
        if cfg.train.num_processes > 1 and "WORLD_SIZE" not in os.environ:
            write_launch(run_dir, rung, cfg.train, data_kwargs, data_args=[str(train_dir)], tokenizer_dir=tokenizer_dir)
            subprocess.run(launch_command(run_dir, cfg.train.num_processes), check=False)
            state = (read_record(run_dir) or {}).get("state")
        else:
            sequences = TokenSequences(train_dir, **data_kwargs)
            state = train_rung(rung, sequences, run_dir, cfg.train, tokenizer_dir=tokenizer_dir).state
        if state != "done":
            log.error("%s: %s (%s)", rung.rung_id, state, (read_record(run_dir) or {}).get("reason"))
            failed.append(rung.rung_id)
    return 1 if failed else 0


if __name__ == "__main__":
    from ladder.config import load

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from train.loop import end_process_group

    try:
        code = main(load(sys.argv[1:]))
    finally:
        end_process_group()
    sys.exit(code)
