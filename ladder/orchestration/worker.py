"""`python -m ladder.orchestration.worker --run-dir DIR`: one torchrun process of a ladder job trained on several
processes: `train.worker`'s run, with every checkpoint handed to its rung and evaluated there
(ladder.orchestration.publish), as the job file beside `launch.json` says. The stage is handed the evaluation as a
callable; it never imports the layer above it."""
import sys
from typing import Optional, Sequence

from ladder.core.layout import JOB
from ladder.orchestration.publish import worker_hook
from train.worker import run, run_dir_argument

PROG = "ladder.orchestration.worker"


def main(argv: Optional[Sequence[str]] = None) -> int:
    run_dir = run_dir_argument(PROG, argv)
    if not (run_dir / JOB).is_file():
        print(f"{PROG}: error: no {run_dir / JOB}: `ladder train` or `ladder run` writes it beside launch.json for a "
              f"job whose checkpoints it evaluates; `python -m train.worker --run-dir {run_dir}` trains without "
              f"evaluating", file=sys.stderr)
        return 2
    return run(run_dir, PROG, eval_hook=worker_hook(run_dir))


if __name__ == "__main__":
    sys.exit(main())
