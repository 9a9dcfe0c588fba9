"""Write the node ladder's RC task files (configs/eval/node.yaml) where a network exists:

    python scripts/fetch_tasks.py [DIR]        # DIR defaults to $LADDER_TASKS, else tasks/

For each task of the OLMo suite, its evaluated split as DIR/<task>.jsonl and the split its few-shot
demonstrations come from (train; MMLU: dev) as DIR/<task>-fewshot.jsonl, each row as the hub stores it
(the task's HF schema), read through the same `eval.tasks` registry that evaluation reads them with.
Copy DIR to a machine without a network and point LADDER_TASKS at it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.examples import hub_dataset  # noqa: E402
from eval.tasks import TASKS  # noqa: E402

SUITE = ("hellaswag", "arc_easy", "arc_challenge", "piqa", "csqa", "socialiqa", "openbookqa", "mmlu")


def write(path: Path, rows) -> int:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w") as f:
        count = sum(1 for row in rows if f.write(json.dumps(row, default=str) + "\n"))
    tmp.replace(path)
    return count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", nargs="?", type=Path, default=Path(os.environ.get("LADDER_TASKS", "tasks")),
                        help="where the task files go (default: $LADDER_TASKS, else tasks/)")
    out = parser.parse_args(argv).dir
    for name in SUITE:
        hub = TASKS[name].loader
        for split, suffix in ((hub.split, ""), (hub.fewshot_split, "-fewshot")):
            try:
                rows = hub_dataset(hub.path, hub.config, split)
            except OSError as exc:  # datasets' ConnectionError is one: no network, or the hub refused
                print(f"fetch_tasks.py: {name}: {hub.path} ({split}) could not be read: {exc}; run it where the "
                      "hub can be reached", file=sys.stderr)
                return 1
            out.mkdir(parents=True, exist_ok=True)  # only once something can go into it
            count = write(out / f"{name}{suffix}.jsonl", rows)
            print(f"{name}{suffix}: {count:,} rows of {hub.path} ({split})")
    print(f"export LADDER_TASKS={out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
