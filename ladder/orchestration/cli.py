"""`ladder <command> [hydra overrides]`: the single entry point of the harness."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ladder.core.threads import quiet_threads

quiet_threads()  # before torch, numpy and scipy load

from ladder.core.configs import ConfigError, group_options
from ladder.core.interrupt import stop_on_sigterm
from ladder.orchestration.compose import dataset_config, load

OVERRIDES_HELP = """\
Hydra overrides, e.g. ladder=gadre 'ladder.multipliers=[20,80]' out_dir=/scratch/ladder.
Config groups (choose one with GROUP=NAME): {groups}.
Named sizes, for ladder.sizes=[...] (configs/model/): {sizes}."""
# The commands that read fit.registry (to list its methods in their --help): it loads scipy and pandas (~1 s),
# too slow for every other command.
FIT_COMMANDS = ("fit", "compare")


def _groups() -> str:
    return "; ".join(f"{g}/ ({', '.join(group_options(g)) or '-'})"
                     for g in ("ladder", "data", "train", "eval", "fit", "compare", "launcher"))


def _check_writable(cfg=None) -> None:
    """Before any work: the commands that prepare data write tokenizers and token shards under
    $LADDER_CACHE, and `run` and `train` (given their config) write the ladder under out_dir and, on Slurm,
    submit from launcher.folder."""
    from ladder.core.files import writable_dir
    from train.data.prepare import default_cache_dir

    writable_dir(default_cache_dir(), "LADDER_CACHE")
    if cfg is not None:
        if cfg.launcher.name == "slurm":  # first: a machine without Slurm is refused before out_dir is made
            from ladder.orchestration.slurm import check_cluster

            check_cluster(cfg.launcher)
        writable_dir(cfg.out_dir, "out_dir")


def cmd_plan(args: argparse.Namespace) -> int:
    from ladder.core.plan import build_plan
    from ladder.orchestration.plan_format import FORMATS, table
    from ladder.orchestration.resources import eval_compute

    from ladder.orchestration.node import describe

    cfg = load(args.overrides)
    plan = build_plan(cfg)
    if args.format == "table":
        from ladder.orchestration.design import expected_errors

        expected, skipped = expected_errors(plan)  # beside each target's compute share
        print(table(plan, eval_compute(cfg, plan), expected) + (f"\n  {skipped}" if skipped else ""))
        print(describe(cfg, plan))
        print(data_needs(cfg, plan))
    else:
        print(FORMATS[args.format](plan, eval_compute(cfg, plan)))
    if missing := _missing_data(cfg):  # the plan stands, but `ladder run` would refuse it
        raise ConfigError(f"{missing} (the plan above is what it would train)")
    return 0


def _missing_data(cfg) -> str:
    """Which of the ladder's datasets read a data.path that does not exist ('' if none)."""
    paths = [(name, data.path) for name in cfg.ladder.datasets if (data := dataset_config(cfg, name)).path]
    return "; ".join(f"{name}: data.path={path}: no such file or directory" for name, path in paths
                     if not Path(path).expanduser().exists())


def _refuse_unrunnable(cfg):
    """The plan, once nothing `run`, `train` and `prepare` refuse before they write anything is wrong: a device
    this machine lacks, a ladder that cannot be planned, data that is not there, a tokenizer that cannot be read."""
    from ladder.core.plan import build_plan
    from ladder.orchestration.node import check_device
    from train.data.prepare import default_cache_dir
    from train.data.tokenizer import check_tokenizer

    check_device(cfg)
    plan = build_plan(cfg)
    if missing := _missing_data(cfg):
        raise ConfigError(missing)
    check_tokenizer(cfg.ladder.tokenizer, default_cache_dir())
    return plan


def data_needs(cfg, plan) -> str:
    """What each dataset must hold for the ladder, and whether its source holds it."""
    from ladder.orchestration.splits import tokens_needed
    from train.data import source_tokens
    from train.data.prepare import tokenizer_processes

    lines = ["data (validation + the largest rung's training tokens):"]
    for name in cfg.ladder.datasets:
        data = dataset_config(cfg, name)
        lines.append(f"  {name}: text is tokenized by {tokenizer_processes(data.num_proc)[1]}")
        for seq_len in sorted({r.shape.seq_len for r in plan.rungs if r.dataset == name}):
            need = data.val_tokens + tokens_needed(plan, name, seq_len)
            holds, how = source_tokens(data, cfg.ladder.vocab_size, tokenizer_cfg=cfg.ladder.tokenizer)
            verdict = "" if holds is None else "enough" if holds >= need else (
                f"short: each token seen {need / holds:.2g} times with data.allow_repeat=true" if data.allow_repeat
                else f"short by {need / holds:.2g}×: add data or set data.allow_repeat=true")
            lines.append(f"  {name} (seq_len {seq_len}): needs {need:,} tokens; source: {how}"
                         + (f"; {verdict}" if verdict else ""))
    return "\n".join(lines)


def cmd_prepare(args: argparse.Namespace) -> int:
    from ladder.core.shards import TokenSequences
    from ladder.orchestration.rung import prepare_all
    from ladder.orchestration.splits import tokens_needed

    cfg = load(args.overrides)
    plan = _refuse_unrunnable(cfg)
    _check_writable()
    if cfg.launcher.name == "slurm":  # text tokenized by Slurm array tasks, then the splits cut here
        from ladder.orchestration.slurm import tokenize_on_slurm

        tokenize_on_slurm(cfg, plan)
    for (name, seq_len), prepared in prepare_all(cfg, plan).items():
        train, val = TokenSequences(prepared.train_dir), TokenSequences(prepared.val_dir)
        print(f"{name} (seq_len {seq_len}): train {train.tokens:,} tokens in {prepared.train_dir}\n"
              f"  val {val.tokens:,} tokens in {prepared.val_dir}\n  tokenizer {prepared.tokenizer_dir}")
        need = tokens_needed(plan, name, seq_len)
        if need > train.tokens and not dataset_config(cfg, name).allow_repeat:
            print(f"  warning: the largest rung needs {need:,} tokens, more than the {train.tokens:,} "
                  f"available; set data.allow_repeat=true or add data")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from eval.cli import check_config, main
    from ladder.core.plan import build_plan
    from ladder.orchestration.rung import with_heldout

    cfg = load(scoped(args.overrides, "eval"))
    plan = build_plan(cfg)
    check_config(cfg)  # before the held-out data is prepared
    _check_writable()
    return main(with_heldout(cfg, plan, plan.rungs[0].shape.seq_len))


def _no_bare_path(overrides: list[str]) -> None:
    """`ladder fit PATH`: what to read is a key like any other, so Hydra's answer would be a parser error."""
    bare = next((o for o in overrides if "=" not in o and not o.startswith("~")), None)
    if bare is not None:
        raise ConfigError(f"{bare!r}: not KEY=VALUE; give it as results={bare}")


def cmd_fit(args: argparse.Namespace) -> int:
    from fit.run import run_fit

    _no_bare_path(args.overrides)
    fit = fit_settings(scoped(args.overrides, "fit"))
    if fit.results is None:
        raise ConfigError("say which results to fit: results=DIR (a ladder out_dir, OLMo-ladder CSVs, "
                          "a Gadre et al. exp_data folder) or results=FILE.csv")
    run_fit(fit)
    return 0


def fit_settings(overrides: list[str]):
    """What `ladder fit` fits with: the settings of a ladder the user names (ladder=NAME or fit=NAME);
    else a harness run directory's own (pipeline.saved_fit_settings); else configs/fit/default.yaml,
    never those of the root config's default ladder (smoke: a backtest with 200 resamples). Keys the
    user sets win over either."""
    from omegaconf import OmegaConf

    from ladder.orchestration.pipeline import saved_fit_settings

    keys = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
    if "ladder" in keys or "fit" in keys:
        return load(overrides).fit
    fit = load(["fit=default", *overrides]).fit
    saved = saved_fit_settings(Path(fit.results)) if fit.results else None
    if saved is None:
        return fit
    mine = {k.split(".", 1)[1].split(".", 1)[0] for k in keys if k.startswith("fit.")}
    return OmegaConf.merge(fit, OmegaConf.masked_copy(saved, [k for k in saved if k not in mine]))


def cmd_compare(args: argparse.Namespace) -> int:
    from fit.present.compare_report import run_compare

    _no_bare_path(args.overrides)
    overrides = scoped(args.overrides, "compare", "fit")
    keys = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
    cfg = load(overrides if "fit" in keys else ["fit=default", *overrides])  # not the default ladder's backtest
    if cfg.compare.results is None:
        raise ConfigError("say what to compare: results=PATH (a source whose datasets, or CSV `variant` column, "
                          "are the variants) or results=[PATH,PATH] (one variant each)")
    run_compare(cfg.compare, cfg.fit)
    return 0


def cmd_design(args: argparse.Namespace) -> int:
    if any(o.split("=", 1)[0] == "difference" for o in args.overrides):  # the decision variant
        from ladder.orchestration.design_decision import run_decision_design

        return run_decision_design(args.overrides)
    from ladder.orchestration.design import run_design

    return run_design(args.overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from eval.cli import check_config
    from ladder.orchestration.pipeline import run_ladder

    cfg = load(args.overrides)
    plan = _refuse_unrunnable(cfg)  # before out_dir is made
    check_config(cfg)  # before training, not at its first checkpoint
    _check_writable(cfg)
    return run_ladder(cfg, plan=plan)


def cmd_train(args: argparse.Namespace) -> int:
    from ladder.orchestration.pipeline import run_ladder

    cfg = load(scoped(args.overrides, "train"))
    plan = _refuse_unrunnable(cfg)  # before out_dir is made
    _check_writable(cfg)
    return run_ladder(cfg, evaluate=False, fit=False, plan=plan)


def cmd_status(args: argparse.Namespace) -> int:
    from ladder.orchestration.status import run_plan, status_table

    cfg = load(args.overrides)
    if Path(cfg.out_dir).exists() and not Path(cfg.out_dir).is_dir():
        raise ConfigError(f"out_dir={cfg.out_dir}: is a file, not a ladder's directory")
    if not Path(cfg.out_dir).exists():
        raise ConfigError(f"out_dir={cfg.out_dir}: no such directory, so no rung of ladder {cfg.ladder.name} has run "
                          f"there (`ladder plan` lists its rungs, `ladder run` starts them)")
    print(status_table(run_plan(cfg), cfg.out_dir))
    return 0


def scoped(overrides: list[str], *groups: str) -> list[str]:
    """Let a command's own keys go bare: `ladder fit method=gadre` means `fit.method=gadre`; where a command
    reads several groups, a key goes to the first that has it."""
    import dataclasses
    import typing

    from ladder.orchestration.schema import Config

    root = {f.name for f in dataclasses.fields(Config)}
    own = {g: {f.name for f in dataclasses.fields(typing.get_type_hints(Config)[g])} for g in groups}
    out = []
    for override in overrides:
        body = override.lstrip("+~")
        prefix, head = override[:len(override) - len(body)], body.split("=", 1)[0].split(".", 1)[0]
        group = next((g for g in groups if head in own[g]), None)
        out.append(f"{prefix}{group}.{body}" if "=" in body and head not in root and group else override)
    return out


def _add_command(sub, name: str, run, help: str, description: str) -> argparse.ArgumentParser:
    epilog = OVERRIDES_HELP.format(groups=_groups(), sizes=", ".join(group_options("model")))
    parser = sub.add_parser(name, help=help, description=description, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (key=value)")
    parser.set_defaults(run=run)
    return parser


def _methods() -> str:
    from fit.registry import METHODS

    return "; ".join(f"{name} ({m.summary})" for name, m in METHODS.items())


def build_parser(methods: str = "see `ladder fit --help`") -> argparse.ArgumentParser:
    """The CLI; `methods` is what `fit` and `compare` say of the fit methods."""
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
        sub, "run", cmd_run, help="run a whole ladder: data, training, evaluation, fit and report",
        description="Prepare the data, train every rung (skipping finished ones, resuming interrupted ones), "
                    "evaluate every checkpoint, then fit and write the prediction report to out_dir/report. "
                    "launcher=slurm submits one job per rung instead. Example: ladder run ladder=smoke")
    _add_command(
        sub, "prepare", cmd_prepare, help="tokenize and pack the ladder's datasets (cached)",
        description="Build the tokenizer (or load it) and pack every dataset of the ladder into token shards "
                    "with a held-out validation split, once per input. Example: ladder prepare ladder=smoke "
                    "data=c4 data.path=/data/c4-en")
    _add_command(
        sub, "train", cmd_train, help="train the ladder's unfinished rungs (no evaluation or fit)",
        description="Prepare the data and train every rung whose record is not done, resuming interrupted "
                    "ones from their last checkpoint. A rung trains on one torchrun worker per visible GPU "
                    "(train.num_processes=N sets the count; train=ddp_cpu, train=deepspeed_zero2, ...); "
                    "launched by torchrun across nodes, every "
                    "process trains together. Keys of the train group may go bare. Example: ladder train "
                    "ladder=smoke train=ddp_cpu")
    _add_command(
        sub, "eval", cmd_eval, help="evaluate checkpoints: held-out loss and ranked-classification tasks",
        description="Evaluate one checkpoint (checkpoint=DIR), one rung (rung=ID) or every rung under out_dir, "
                    "appending one record per (checkpoint, metric) to each rung's results.jsonl; finished "
                    "pairs are skipped. Keys of the eval group may go bare (tasks=[hellaswag] means "
                    "eval.tasks=[hellaswag]). Example: ladder eval ladder=smoke rung=smoke-24-smoke-M5")
    _add_command(
        sub, "fit", cmd_fit, help="fit scaling laws to results and predict target models",
        description="Fit a method to results=PATH (a ladder out_dir, OLMo-ladder W&B CSVs, a Gadre et al. "
                    "exp_data folder or a CSV of points), predict the targets with bootstrap intervals, and "
                    "write predictions.csv, fits.json, report.md and report.html to out=DIR. Keys of the fit "
                    "group may go bare. Example: ladder fit results=../shared/data/olmo-ladder/runs "
                    f"method=olmo_two_step targets=[13B-5T] out=reports/olmo\n\nMethods (method=NAME): {methods}.")
    _add_command(
        sub, "compare", cmd_compare, help="compare variants' ladders: which wins at the targets, by how much, how sure",
        description="Fit every variant (each dataset of results=PATH: a ladder out_dir, a Gadre et al. folder, a CSV "
                    "with a `dataset` or `variant` column; or each of results=[PATH,PATH,...]) with the same method "
                    "(method=best by default), and report per target and metric each variant's prediction, the "
                    "paired difference with its interval (a joint bootstrap over the runs, plus each variant's "
                    "calibrated model error), P(one is better), for losses the compute multiplier the worse "
                    "variant needs to match the better, where the fitted curves cross before the target, and "
                    "decision backtests (fit the smaller sizes, predict the order at each larger one) against "
                    "ranking by the largest fitted size. Losses are fitted by one law over all variants (a shared "
                    "shape, a scale each: three sizes per variant suffice; joint=false fits each variant by the "
                    "method). Writes compare.csv, compare.json, report.md and "
                    "report.html to out=DIR. Keys of the compare group (results, variants, out, backtest, joint) and of "
                    "the fit group (method, targets, bootstrap, interval, seed, include, calibrate, format) may go "
                    "bare. Example: ladder compare results=../shared/data/gadre-scaling 'targets=[1.4B-640,6.9B-20]' "
                    f"out=reports/c4-vs-rpj\n\nMethods (method=NAME): {methods}.")
    _add_command(
        sub, "design", cmd_design, help="the ladder to train for a target and a budget, with its expected error",
        description="Search ladders (consecutive sizes × runs of token multipliers × lr_schedule, each costed by its "
                    "plan) within budget= for the lowest expected loss error at target= (metric=accuracy: a task's "
                    "accuracy error in points, through the two-step law; both are printed), simulated by an error "
                    "model measured on earlier ladders (both published ones, or results=PATH); print it beside the "
                    "shipped ladders and write it as configs/ladder/NAME.yaml (or under out=DIR) for `ladder plan` "
                    "and `ladder run`, with a report (the answer, the error against budget from 1/16 to 4 × it, the "
                    "rungs, the runners-up) under outputs/NAME (or out=DIR/NAME). Keys: target, budget (1%%, 3e21 "
                    "FLOPs, 500gpuh, or 12h with gpus=N at launcher.gpu_flops × launcher.expected_mfu), method, "
                    "results, out, name, sizes or min_size/max_size, multipliers, schedules, draws, seed, metric (loss "
                    "or accuracy), curve (false: the budget alone); ladder=NAME the base ladder (default olmo). "
                    "Example: ladder design target=7B-4T budget=1%%. With difference=NATS (and confidence=0.9): the "
                    "cheapest ladder, trained on each of two variants, whose simulated `ladder compare` names the "
                    "better one (truly NATS lower at the target) in at least that share of draws; budget= is then the "
                    "ceiling per variant (default 10%%). Example: ladder design target=7B-4T difference=0.02 "
                    "(docs/design.md)")
    _add_command(
        sub, "status", cmd_status, help="show each rung's state, tokens done and compute spent",
        description="Read the records under out_dir (default runs/<ladder>) and show each rung as pending, "
                    "running, done or failed (with the reason), its tokens done out of D, and the compute "
                    "spent against the plan. Example: ladder status ladder=smoke")
    return parser


def _stage_errors() -> tuple[type, ...]:
    """Each stage's bad-input error: its message already names the file or key at fault."""
    from eval.checkpoints import CheckpointError
    from eval.cli import EvalError
    from eval.tasks import TaskError
    from fit.errors import FitInputError
    from ladder.core.shards import SplitError
    from train.data import DataError

    return DataError, SplitError, EvalError, CheckpointError, TaskError, FitInputError


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for chatty in ("accelerate", "transformers", "datasets", "deepspeed", "torch.distributed"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_methods() if argv[:1] and argv[0] in FIT_COMMANDS else "see `ladder fit --help`").parse_args(argv)
    stop_on_sigterm()  # Slurm's preemption and `kill` stop a run the way Ctrl-C does: recorded, resumable
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm():  # log lines above the progress bars, not glued onto them
            return args.run(args)
    except (ConfigError, *_stage_errors()) as exc:
        print(f"ladder {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `ladder plan | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush finds no pipe
        return 1
    except KeyboardInterrupt as exc:
        print(f"ladder {args.command}: interrupted ({exc or 'Ctrl-C'}); run it again to resume", file=sys.stderr)
        return 130
    finally:
        if "torch.distributed" in sys.modules:  # rungs share one process group; it ends with the command
            from train.loop import end_process_group

            end_process_group()


if __name__ == "__main__":
    sys.exit(main())
