"""`ladder design target=7B-4T budget=1%`: the ladder to train for a target and a compute budget, with its expected
forecast error (of the loss, relative, and of downstream accuracy through the two-step law, in points), before a
GPU-hour is spent.

Candidates are grids of sizes × multipliers: `window` consecutive sizes of a pool (names or counts given as
`sizes=[...]`, else sizes doubling from `min_size` to `max_size`) by a run of multipliers doubling (or quadrupling)
within `multipliers=[...]`, each trained with the cheapest allowed `lr_schedule` (`schedules=[cosine,wsds,branch]`)
whose cost, taken from the plan's jobs (ladder.core.schedules), fits the budget. The error model (fit.design) does not
tell schedules apart (measured on the smoke ladder, WSD-S predicts as well as cosine: docs/train.md), so each grid
takes its cheapest. Every candidate is simulated with the same draws (common random numbers); the lowest median error
(of the loss, or of accuracy in points with `metric=accuracy`: fit.design_accuracy) wins, shown beside the runners-up
and the shipped ladders (olmo, gadre, node) at their own cost, and is written as a ladder config that `ladder plan`
and `ladder run` take as it is.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Optional

import numpy as np
import yaml
from omegaconf import OmegaConf

from fit import design, design_accuracy, design_compare
from fit.errors import FitInputError
from fit.sources import dataset_names, load_points
from fit.targets import NAMED
from ladder.core.published import shared_data_dir
from ladder.core.configs import CONFIG_DIR, ConfigError
from ladder.core.files import atomic_write_text
from ladder.core.plan import Rung, Target, build_plan, resolve_size
from ladder.core.schedules import SCHEDULES
from ladder.core.sizes import format_count, parse_count
from ladder.orchestration.compose import load

# The design's own keys (key=value); every other override composes the base ladder (ladder=NAME, launcher.gpu_flops).
KEYS = ("target", "budget", "method", "results", "out", "name", "sizes", "min_size", "max_size", "multipliers",
        "schedules", "gpus", "draws", "seed", "min_sizes", "min_multipliers", "metric", "difference", "confidence")
METRICS = ("loss", "accuracy")  # what `metric=` ranks the candidates by: the loss's relative error or accuracy points
# Gadre et al.'s grid of M from 20: their M = 5 runs lie 4-15 % above the loss law the other multipliers follow
# (fit.design._robust_sd) and M = 10 up to 1.4 %, a bias of short runs the error model does not simulate; both papers
# leave M <= 10 out of their fits, and designs offered M = 10 missed more in the backtests (docs/design.md).
MULTIPLIERS = (20, 40, 80, 160, 320, 640)
SCHEDULE_CHOICES = ("cosine", "wsds", "branch")
# Every candidate has at least 3 sizes and 3 multipliers, as both papers' ladders (4 × 4, 4 × 8): fewer, and a 4-5
# parameter law nearly interpolates its points. In the backtests (docs/design.md) designs of 2 sizes or 2 multipliers
# missed the held-out runs by far more than their simulated error.
MIN_AXIS = 3
SHIPPED = ("olmo", "gadre", "node")
MARK = "# Written by `ladder design`"  # the first line of every config it writes: only those it overwrites


@dataclass(frozen=True)
class Candidate:
    rungs: tuple  # ladder.core.plan.Rung, or anything with params, tokens and multiplier (a run that exists)
    schedule: str
    compute: float

    @property
    def multipliers(self) -> list[float]:
        """The multipliers every size has (the config's grid); `extra` holds the rest."""
        by_size = self.by_size()
        return sorted(set.intersection(*({r.multiplier for r in rs} for rs in by_size.values())))

    def by_size(self) -> dict:
        out: dict = {}
        for r in sorted(self.rungs, key=lambda r: (r.params, r.multiplier)):
            out.setdefault(r.params, []).append(r)
        return out

    @property
    def extra(self) -> list:
        """The rungs beyond the grid of every size × `multipliers`: more multipliers at the smaller sizes."""
        common = set(self.multipliers)
        return [r for r in self.rungs if r.multiplier not in common]

    def describe(self) -> str:
        ns = sorted(self.by_size())
        text = (f"{len(ns)} sizes {format_count(ns[0])}-{format_count(ns[-1])} × M = "
                f"{', '.join(f'{m:g}' for m in self.multipliers)}")
        if self.extra:
            at = sorted({r.params for r in self.extra})
            text += (f" + M = {', '.join(f'{m:g}' for m in sorted({r.multiplier for r in self.extra}))} at the "
                     f"{len(at)} smallest")
        return f"{text}, {self.schedule}"


def parse_args(overrides: list[str]) -> tuple[dict, list[str]]:
    """(the design's keys, the overrides left for the base ladder's config)."""
    mine, rest = {}, []
    for o in overrides:
        key, _, value = o.partition("=")
        if key in KEYS and value:
            mine[key] = _list(key, value) if value[:1] == "[" else value
        else:
            rest.append(o)
    if not any(o.split("=", 1)[0] == "ladder" for o in rest):
        rest = ["ladder=olmo", *rest]  # a design's usual target is OLMo's, its shape family and conventions
    return mine, rest


def _list(key: str, value: str) -> list:
    try:
        items = yaml.safe_load(value)
    except yaml.YAMLError:
        items = None
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{key}={value}: expected a list, e.g. {key}=[a,b]")
    return items


def resolve_target(spec: str, cfg) -> Target:
    """A named target (7B-4T, 13B-5T), one of the base ladder's, or N-D as counts ('1B-20B')."""
    if spec in NAMED:
        return NAMED[spec]
    own = {t.name: t for t in build_plan(cfg).targets}
    if spec in own:
        return own[spec]
    m = re.fullmatch(r"([\d.eE+]+[KMBT]?)-([\d.eE+]+[KMBT]?)", spec)
    if m:
        n, d = parse_count(m.group(1)), parse_count(m.group(2))
        return Target(spec, n, d)
    raise ConfigError(f"target={spec}: not a named target ({', '.join(NAMED)}), not one of ladder {cfg.ladder.name}'s "
                      f"({', '.join(own) or 'none'}), and not N-D as counts (e.g. 1B-20B)")


def parse_budget(text: str, target: Target, cfg, gpus: Optional[str]) -> float:
    """Training FLOPs from `1%` (of the target's 6ND), `3e21` (FLOPs), `500gpuh` (GPU-hours) or `12h` (hours on
    `gpus` GPUs); GPU time at launcher.gpu_flops × launcher.expected_mfu."""
    text = str(text).strip()
    per_gpu = cfg.launcher.gpu_flops * cfg.launcher.expected_mfu
    try:
        if text.endswith("%"):
            flops = float(text[:-1]) / 100 * target.compute
        elif text.lower().endswith("gpuh"):
            flops = float(text[:-4]) * 3600 * per_gpu
        elif text.lower().endswith("h"):
            flops = float(text[:-1]) * int(gpus) * 3600 * per_gpu if gpus is not None else None
        else:
            flops = float(text)
    except ValueError:
        raise ConfigError(f"budget={text}: expected a share of the target's compute (1%), FLOPs (3e21), GPU-hours "
                          f"(500gpuh) or hours with gpus=N (12h)") from None
    if flops is None:
        raise ConfigError(f"budget={text}: hours of how many GPUs? add gpus=N (or give GPU-hours: budget=Ngpuh)")
    if not flops > 0 or not math.isfinite(flops):
        raise ConfigError(f"budget={text}: must be positive")
    return flops


def prior_sources(results) -> list:
    """The ladders the error model is measured on: `results` (a path or a list), every dataset of each; else both
    published ladders."""
    if results is None:
        root = shared_data_dir()
        if root is None:
            raise ConfigError("the error model is measured on earlier ladders: give results=PATH (or a list), or put "
                              "the published ladders at <repo>/../shared/data ($LADDER_SHARED_DATA)")
        results = [str(root / "olmo-ladder" / "runs"), str(root / "gadre-scaling")]
    paths = results if isinstance(results, list) else [results]
    out = []
    for path in paths:
        names = dataset_names(str(path))
        out += [load_points(str(path), dataset=n) for n in names] if len(names) > 1 else [load_points(str(path))]
    return out


def size_pool(args: dict, cfg, target: Target) -> list[str]:
    if "sizes" in args:
        return [str(s) for s in args["sizes"]]
    smallest = min(r.params for r in build_plan(cfg).rungs)
    lo = parse_count(args.get("min_size", smallest / 2))
    hi = parse_count(args.get("max_size", target.params / 4))
    if not 0 < lo < hi:
        raise ConfigError(f"min_size={format_count(lo)}, max_size={format_count(hi)}: need 0 < min_size < max_size")
    return [s for s in (format_count(n) for n in lo * 2.0 ** np.arange(int(np.log2(hi / lo)) + 1)) if _shaped(s, cfg)]


def _shaped(size: str, cfg) -> bool:
    """Whether the base ladder's shape family has a model of about this size (its smallest may be larger)."""
    try:
        resolve_size(size, cfg.ladder)
    except ValueError:
        return False
    return True


def grid_rungs(cfg, sizes: list[str], multipliers) -> list[list[Rung]]:
    """The plan's rungs for every pool size × multiplier, by size (smallest first)."""
    c = OmegaConf.merge(cfg, {"ladder": {"sizes": sizes, "multipliers": multipliers,
                                          "extra_rungs": [], "datasets": list(cfg.ladder.datasets[:1]),
                                          "lr_schedule": "cosine"}})
    rungs = build_plan(c).rungs
    by_size: dict = {}
    for r in rungs:
        by_size.setdefault(r.params, []).append(r)
    return [sorted(v, key=lambda r: r.multiplier) for _, v in sorted(by_size.items())]


def cost(rungs, schedule: str, decay_fraction: float) -> float:
    return sum(j.compute for j in SCHEDULES[schedule].jobs(list(rungs), decay_fraction))


def candidates(grid: list[list], price, budget: float, min_rungs: int, min_sizes: int = MIN_AXIS,
               min_multipliers: int = MIN_AXIS) -> list[Candidate]:
    """Every candidate of two shapes within budget (`grid`: each size's rungs by multiplier, smallest size first; a
    missing rung is None; `price(rungs)` -> (schedule, cost)), of at least `min_sizes` consecutive sizes:
    - a grid: the sizes × a doubling (or quadrupling) run of at least `min_multipliers` multipliers;
    - an L (Gadre et al.'s shape: four sizes at M = 20, the smallest also at M = 320): the sizes at one multiplier,
      and the smallest one or two of them at a doubling run of others as well.
    Of the runs of multipliers from one start, only the longest that fits (more rungs at the same sizes never
    simulate worse)."""
    n_m = max(len(size) for size in grid)
    out = {}

    def longest(rungs_for, first: int, stride: int, least: int):
        best = None
        for stop in range(first + stride * (least - 1), n_m, stride):
            rungs = rungs_for(set(range(first, stop + 1, stride)))
            if len(rungs) < min_rungs:
                continue
            schedule, compute = price(rungs)
            if compute > budget:
                break
            best = Candidate(rungs, schedule, compute)
        if best is not None:
            out[best.rungs] = best

    for lo in range(len(grid)):
        for hi in range(lo + min_sizes, len(grid) + 1):
            sizes = grid[lo:hi]
            for start in range(n_m):
                for stride in (1, 2):
                    longest(lambda cols: tuple(r for size in sizes for i, r in enumerate(size) if i in cols and r),
                            start, stride, min_multipliers)
                for j in (1, 2):
                    base = tuple(size[start] for size in sizes if size[start])
                    longest(lambda cols: base + tuple(r for size in sizes[:j] for i, r in enumerate(size)
                                                      if i in cols and i != start and r), 0, 1, 1)
                    longest(lambda cols: base + tuple(r for size in sizes[:j] for i, r in enumerate(size)
                                                      if i in cols and i != start and r), start + 1, 1, 1)
    return list(out.values())


def plan_price(schedules, decay_fraction: float):
    """(the cheapest of `schedules`, its cost) of a set of the plan's rungs, from the jobs each schedule makes."""
    def price(rungs):
        costs = {s: cost(rungs, s, decay_fraction) for s in schedules}
        best = min(costs, key=costs.get)
        return best, costs[best]
    return price


def evaluate(model, fit, c_rungs, target: Target, draws: int, seed: int) -> design.Expected:
    n = np.array([r.params for r in c_rungs], float)
    d = np.array([r.tokens for r in c_rungs], float)
    return design.Expected.of(design.simulate(model, fit, n, d, (target.params, target.tokens), draws, seed))


def evaluate_accuracy(acc_model, fit, c_rungs, target: Target, draws: int, seed: int) -> design.Expected:
    """A candidate's expected error of a task's accuracy at the target, in points (fit.design_accuracy)."""
    n = np.array([r.params for r in c_rungs], float)
    d = np.array([r.tokens for r in c_rungs], float)
    return design.Expected.of(design_accuracy.simulate_accuracy(acc_model, fit, n, d, (target.params, target.tokens),
                                                                draws, seed))


def shipped_plans(target: Target) -> list[tuple]:
    """(name, compute, rungs) of each shipped ladder whose sizes all lie below the target, at its own cost and
    schedule (a ladder that reaches the target's N does not forecast it)."""
    plans = [(name, build_plan(load([f"ladder={name}"]))) for name in SHIPPED]
    return [(name, plan.compute, plan.rungs) for name, plan in plans
            if max(r.params for r in plan.rungs) < target.params]


def parse_metric(args: dict) -> str:
    """What ranks the candidates (`metric=`), refused before the search where the method has no accuracy to rank."""
    metric = str(args.get("metric", "loss"))
    if metric not in METRICS:
        raise ConfigError(f"metric={metric}: rank the candidates by one of {', '.join(METRICS)}")
    if metric == "accuracy":
        try:
            design_accuracy.step2_method(str(args.get("method", "best")))
        except FitInputError as exc:
            raise ConfigError(f"metric=accuracy: {exc}") from exc
    return metric


def accuracy_prior(sources, method: str, metric: str):
    """(the accuracy error model measured on `sources`, None), or (None, why there is none) where the method has no
    step 2 or the sources no task accuracies; with `metric=accuracy` that is one line's refusal instead."""
    try:
        design_accuracy.step2_method(method)
        return design_accuracy.measure_accuracy(sources), None
    except FitInputError as exc:
        if metric == "accuracy":
            raise ConfigError(f"metric=accuracy: {exc}") from exc
        return None, str(exc)


def both_errors(model, acc_model, fit, rungs, target: Target, draws: int, seed: int) -> tuple:
    """(expected loss error, expected accuracy error in points or None without an accuracy model)."""
    return (evaluate(model, fit, rungs, target, draws, seed),
            None if acc_model is None else evaluate_accuracy(acc_model, fit, rungs, target, draws, seed))


def config_text(c: Candidate, target: Target, base: str, name: str, summary: str) -> str:
    def named(rungs):
        return [r.shape.name for r in sorted({r.params: r for r in rungs}.values(), key=lambda r: r.params)]

    extra = [f"  - {{size: {r.shape.name}, multiplier: {r.multiplier:g}}}"
             for r in sorted(c.extra, key=lambda r: (r.params, r.multiplier))]
    return "\n".join([
        f"{MARK}: {summary}",
        "# Sizes as the search named them (config names, or parameter counts in the base ladder's convention).",
        "defaults:", f"  - {base}", "  - _self_", "",
        f"name: {name}",
        f"sizes: [{', '.join(named(c.rungs))}]",
        f"multipliers: [{', '.join(f'{m:g}' for m in c.multipliers)}]",
        f"lr_schedule: {c.schedule}",
        "extra_rungs:" + ("" if extra else " []"), *extra,
        "targets:",
        f"  - {{name: {target.name}, params: {target.params:.0f}, tokens: {target.tokens:.0f}}}", ""])


def destination(name: str, out: Optional[str]) -> tuple[Path, list[str]]:
    """Where the design goes, checked before any search: configs/ladder/NAME.yaml, or OUT/ladder/NAME.yaml (a Hydra
    search path), never over a file `ladder design` did not write; and the overrides that select it."""
    root = CONFIG_DIR if out is None else Path(out)
    path = root / "ladder" / f"{name}.yaml"
    if path.exists() and not path.read_text().startswith(MARK):
        raise ConfigError(f"{path}: exists and was not written by `ladder design`; choose another name=")
    select = [f"ladder={name}"] if out is None else [f"hydra.searchpath=[file://{root.resolve()}]", f"ladder={name}"]
    return path, select


def write_config(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def band(e: design.Expected) -> str:
    return (f"{pct(e.median)} (90 % of draws within {pct(e.p90)}; "
            f"signed band {100 * e.low:+.2f} … {100 * e.high:+.2f} %)")


def points_band(e: design.Expected) -> str:
    return (f"{e.median:.2f} points (90 % of draws within {e.p90:.2f}; "
            f"signed band {e.low:+.2f} … {e.high:+.2f} points)")


def errors_text(loss: design.Expected, accuracy: Optional[design.Expected]) -> str:
    """"loss error …; accuracy error …" (the second where an accuracy model exists)."""
    return f"loss error {band(loss)}" + ("" if accuracy is None else f"; accuracy error {points_band(accuracy)}")


def run_design(overrides: list[str]) -> int:
    args, rest = parse_args(overrides)
    if "difference" in args:
        return run_decision_design(args, rest)
    for key in ("target", "budget"):
        if key not in args:
            raise ConfigError(f"say the {key}: ladder design target=7B-4T budget=1% (budget also 3e21 FLOPs, "
                              f"500gpuh, or 12h with gpus=8)")
    cfg = load(rest)
    base = cfg.ladder.name
    target = resolve_target(str(args["target"]), cfg)
    budget = parse_budget(args["budget"], target, cfg, args.get("gpus"))
    fit = design.loss_fit(str(args.get("method", "best")))
    metric = parse_metric(args)
    default_name = f"design-{target.name}-{args['budget']}".replace("%", "pct")
    name = str(args.get("name", re.sub(r"[^A-Za-z0-9_.-]", "_", default_name)))
    path, select = destination(name, args.get("out"))
    schedules = [str(s) for s in args.get("schedules", SCHEDULE_CHOICES)]
    bad = [s for s in schedules if s not in SCHEDULES]
    if bad:
        raise ConfigError(f"schedules: unknown {bad[0]} (one of {', '.join(SCHEDULES)})")
    draws, seed = int(args.get("draws", 128)), int(args.get("seed", 0))
    try:
        multipliers = [float(m) for m in args.get("multipliers", MULTIPLIERS)]
    except (TypeError, ValueError):
        raise ConfigError(f"multipliers={args['multipliers']}: expected a list of numbers") from None
    grid = grid_rungs(cfg, size_pool(args, cfg, target), multipliers)
    pool = candidates(grid, plan_price(schedules, cfg.ladder.lr_decay_fraction), budget, len(fit.law.params) + 1,
                      int(args.get("min_sizes", MIN_AXIS)), int(args.get("min_multipliers", MIN_AXIS)))
    if not pool:
        k, j = int(args.get("min_sizes", MIN_AXIS)), int(args.get("min_multipliers", MIN_AXIS))
        cheapest = min(cost(tuple(r for s in grid[:k] for r in s[:j]), s, cfg.ladder.lr_decay_fraction)
                       for s in schedules)
        raise ConfigError(f"budget={args['budget']}: no ladder of at least {len(fit.law.params) + 1} rungs and "
                          f"{k} sizes fits {budget:.3g} FLOPs (the {k} smallest sizes × {j} smallest multipliers cost "
                          f"{cheapest:.3g}); raise the budget or lower min_size")
    sources = prior_sources(args.get("results"))
    try:
        model = design.measure(sources)
    except FitInputError as exc:
        raise ConfigError(str(exc)) from exc
    acc, no_acc = accuracy_prior(sources, str(args.get("method", "best")), metric)
    print(f"target {target.name}: N={format_count(target.params)}, D={format_count(target.tokens)}, "
          f"C={target.compute:.3g} FLOPs; budget {budget:.3g} FLOPs ({pct(budget / target.compute)} of it)")
    print(f"error model: {model.describe()}")
    print(f"accuracy error model: {acc.describe()}" if acc else f"accuracy error: not simulated ({no_acc})")
    began = time.process_time()
    score = partial(evaluate, model) if metric == "loss" else partial(evaluate_accuracy, acc)
    scored = sorted(((score(fit, c.rungs, target, draws, seed), c) for c in pool),
                    key=lambda ec: (ec[0].median, ec[1].compute))
    took = time.process_time() - began
    final = [(*both_errors(model, acc, fit, c.rungs, target, 4 * draws, seed + 1), c) for _, c in scored[:5]]
    best_e, best_a, best = min(final, key=lambda eac: eac[METRICS.index(metric)].median)
    print(f"{len(pool)} candidate ladders within budget, each simulated {draws} times ({took / len(pool):.2g} CPU s a "
          f"candidate, ranked by the {metric} error); the best 5 again {4 * draws} times:")
    for e, a, c in final:
        print(f"  {'*' if c is best else ' '} {c.describe():55s} {c.compute:.3g} FLOPs "
              f"({pct(c.compute / target.compute)}), {errors_text(e, a)}")
    print("shipped ladders below the target, at their own cost (same error model):")
    for ladder, compute, rungs in shipped_plans(target) or [("none", np.nan, None)]:
        print(f"    {ladder:8s} {compute:.3g} FLOPs ({pct(compute / target.compute)}), "
              f"{errors_text(*both_errors(model, acc, fit, rungs, target, 4 * draws, seed + 1))}" if rungs else
              f"    none: every shipped ladder ({', '.join(SHIPPED)}) reaches the target's N")
    summary = (f"target={target.name} budget={args['budget']} method={args.get('method', 'best')}"
               f"{'' if metric == 'loss' else ' metric=' + metric}: "
               f"{best.describe()}, {best.compute:.3g} FLOPs, expected {errors_text(best_e, best_a)}")
    write_config(config_text(best, target, base, name, summary), path)
    print(f"wrote {path}: ladder plan {' '.join(select)}")
    return 0


# A decision design's ceiling when no budget= is given: a tenth of the target's compute per variant.
DECISION_CEILING = "10%"
NEIGHBOURS = 2  # candidates shown on each side of the chosen one


def _number_between(key: str, text, low: float, high: float, example: str) -> float:
    """A number strictly between `low` and `high` from key=`text`, or one clear line."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not low < value < high:
        raise ConfigError(f"{key}={text}: expected a number above {low:g} and below {high:g}, e.g. {key}={example}")
    return value


def evaluate_decision(model, c_rungs, target: Target, difference: float, draws: int,
                      seed: int) -> design_compare.Decision:
    n = np.array([r.params for r in c_rungs], float)
    d = np.array([r.tokens for r in c_rungs], float)
    return design_compare.Decision.of(design_compare.simulate_decision(
        model, n, d, (target.params, target.tokens), difference, draws, seed))


def decision_pool(args: dict, cfg, target: Target, budget: float) -> list[Candidate]:
    """The candidates within `budget` (one variant's ladder), cheapest first."""
    schedules = [str(s) for s in args.get("schedules", SCHEDULE_CHOICES)]
    bad = [s for s in schedules if s not in SCHEDULES]
    if bad:
        raise ConfigError(f"schedules: unknown {bad[0]} (one of {', '.join(SCHEDULES)})")
    try:
        multipliers = [float(m) for m in args.get("multipliers", MULTIPLIERS)]
    except (TypeError, ValueError):
        raise ConfigError(f"multipliers={args['multipliers']}: expected a list of numbers") from None
    grid = grid_rungs(cfg, size_pool(args, cfg, target), multipliers)
    pool = candidates(grid, plan_price(schedules, cfg.ladder.lr_decay_fraction), budget, design_compare.MIN_RUNGS,
                      int(args.get("min_sizes", MIN_AXIS)), int(args.get("min_multipliers", MIN_AXIS)))
    return sorted(pool, key=lambda c: (c.compute, len(c.rungs)))


def run_decision_design(args: dict, rest: list[str]) -> int:
    """`ladder design target=7B-4T difference=0.02`: the cheapest ladder (per variant; both variants train it) whose
    simulated `ladder compare` names the better of two variants `difference` nats apart at the target in at least
    `confidence` of the draws (fit.design_compare). Candidates are simulated from the cheapest up; the first to reach
    it is confirmed with 4× the draws (else the search goes on), shown beside its cheaper and dearer neighbours, and
    written as `ladder design` writes its choice. None within the ceiling (budget=, per variant) is an answer too."""
    if "target" not in args:
        raise ConfigError("say the target: ladder design target=7B-4T difference=0.02 (nats of loss at the target)")
    difference = _number_between("difference", args["difference"], 0.0, math.inf, "0.02")
    confidence = _number_between("confidence", args.get("confidence", 0.9), 0.5, 1.0, "0.9")
    cfg = load(rest)
    target = resolve_target(str(args["target"]), cfg)
    budget_text = str(args.get("budget", DECISION_CEILING))
    budget = parse_budget(budget_text, target, cfg, args.get("gpus"))
    default_name = f"design-{target.name}-difference-{args['difference']}"
    name = str(args.get("name", re.sub(r"[^A-Za-z0-9_.-]", "_", default_name)))
    path, select = destination(name, args.get("out"))
    draws, seed = int(args.get("draws", 128)), int(args.get("seed", 0))
    pool = decision_pool(args, cfg, target, budget)
    if not pool:
        raise ConfigError(f"budget={budget_text}: no ladder of at least {int(args.get('min_sizes', MIN_AXIS))} sizes "
                          f"fits {budget:.3g} FLOPs; raise the budget or lower min_size")
    try:
        model = design.measure(prior_sources(args.get("results")))
    except FitInputError as exc:
        raise ConfigError(str(exc)) from exc
    print(f"target {target.name}: N={format_count(target.params)}, D={format_count(target.tokens)}, "
          f"C={target.compute:.3g} FLOPs; ceiling {budget:.3g} FLOPs per variant ({pct(budget / target.compute)})")
    print(f"error model: {model.describe()}")
    print(f"decision: B truly {difference:g} nats lower at the target; wanted: compare names B better in at least "
          f"{confidence:.0%} of simulated pairs of ladders (one law over both variants, shape shared, a scale each)")
    began, scored, chosen = time.process_time(), [], None
    for i, c in enumerate(pool):
        scored.append((evaluate_decision(model, c.rungs, target, difference, draws, seed), c))
        if scored[-1][0].p >= confidence:
            confirmed = evaluate_decision(model, c.rungs, target, difference, 4 * draws, seed + 1)
            if confirmed.p >= confidence:
                chosen = (confirmed, c)
                break
    took = time.process_time() - began
    dearer = [(evaluate_decision(model, c.rungs, target, difference, draws, seed), c)
              for c in pool[len(scored):len(scored) + NEIGHBOURS]] if chosen else []
    print(f"{len(pool)} candidate ladders within the ceiling, cheapest first; {len(scored)} simulated {draws} times "
          f"({took:.3g} CPU s in all), one that reaches {confidence:.0%} again {4 * draws} times to confirm it:")
    best_first = sorted(scored, key=lambda ec: (-ec[0].p, ec[1].compute))
    shown = scored[-1 - NEIGHBOURS:-1] + [chosen] + dearer if chosen else best_first[:NEIGHBOURS + 1]
    for e, c in shown:
        mark = "*" if chosen and c is chosen[1] else " "
        print(f"  {mark} {c.describe():55s} {c.compute:.3g} FLOPs a variant, {2 * c.compute:.3g} both "
              f"({pct(2 * c.compute / target.compute)}): P(right call) {e.p:.2f} over {e.draws} draws")
    if chosen is None:
        e, c = best_first[0]
        print(f"no ladder within the ceiling reaches {confidence:.0%}: the best reaches P = {e.p:.2f} ({c.describe()}, "
              f"{c.compute:.3g} FLOPs a variant); nothing written: raise budget= above {budget_text}, or resolve a "
              f"larger difference")
        return 0
    e, c = chosen
    summary = (f"target={target.name} difference={difference:g} confidence={confidence:g}: {c.describe()}, "
               f"{c.compute:.3g} FLOPs a variant ({2 * c.compute:.3g} for both: train it on each variant), "
               f"P(compare names the better variant) {e.p:.2f} over {e.draws} draws")
    write_config(config_text(c, target, cfg.ladder.name, name, summary), path)
    print(f"wrote {path}: ladder plan {' '.join(select)} (train it on each variant, then ladder compare)")
    return 0
