"""`ladder <command> [hydra overrides]`: the single entry point of the harness."""
from __future__ import annotations

import argparse
import logging
import sys

from ladder.config import ConfigError, group_options, load

OVERRIDES_HELP = """\
Hydra overrides, e.g. ladder=gadre 'ladder.multipliers=[20,80]' out_dir=/scratch/ladder.
Config groups: {groups}."""


def _groups() -> str:
    return "; ".join(f"{g}/ ({', '.join(group_options(g)) or '-'})"
                     for g in ("ladder", "model", "data", "train", "eval", "launcher"))


def cmd_plan(args: argparse.Namespace) -> int:
    from ladder.plan import build_plan
    from ladder.plan_format import FORMATS

    plan = build_plan(load(args.overrides))
    print(FORMATS[args.format](plan))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ladder.plan import build_plan
    from ladder.status import status_table

    cfg = load(args.overrides)
    print(status_table(build_plan(cfg), cfg.out_dir))
    return 0


def _add_command(sub, name: str, run, help: str, description: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=description, epilog=OVERRIDES_HELP.format(groups=_groups()),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (key=value)")
    parser.set_defaults(run=run)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ladder",
        description="Train a ladder of small language models and predict how a large one will do. "
                    "Every command takes Hydra overrides of the configs in configs/.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)

    plan = _add_command(
        sub, "plan", cmd_plan, help="print the rung table of a ladder (sizes × multipliers × datasets)",
        description="Print every rung of a ladder with its shape, N, M = D/N, tokens D, compute C ≈ 6ND, "
                    "batch, steps, peak LR and warmup, then the ladder's total compute and its share of each "
                    "target's compute. Example: ladder plan ladder=olmo")
    plan.add_argument("--format", choices=("table", "json", "csv"), default="table",
                      help="table for people (default), json or csv for scripts")
    _add_command(
        sub, "status", cmd_status, help="show each rung's state, tokens done and compute spent",
        description="Read the records under out_dir (default runs/<ladder>) and show each rung as pending, "
                    "running, done or failed (with the reason), its tokens done out of D, and the compute "
                    "spent against the plan. Example: ladder status ladder=smoke")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"ladder {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
