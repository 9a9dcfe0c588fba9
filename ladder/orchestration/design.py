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
and the shipped ladders (olmo, gadre, node) at their own cost. The candidates of smaller and larger budgets are
simulated in the same pass, for the error-against-budget curve.

One search (`search`, a `Design`), three views: the terminal's lines, the ladder config that `ladder plan` and
`ladder run` take as it is, and the report (design_report.py). `ladder plan` says each ladder's expected error at its
targets through `expected_errors`, from the error models cached on disk (`error_models`, design_models.py); the decision
variant (`difference=`) is design_decision.py.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import yaml
from omegaconf import OmegaConf

from fit import design, design_accuracy
from fit.errors import FitInputError
from fit.targets import NAMED
from ladder.core.published import shared_data_dir
from ladder.core.configs import CONFIG_DIR, ConfigError
from ladder.core.files import atomic_write_text
from ladder.core.plan import Rung, Target, build_plan, resolve_size
from ladder.core.schedules import SCHEDULES
from ladder.core.sizes import format_count, parse_count
from ladder.orchestration.compose import load
from ladder.orchestration.design_models import error_models

# The design's own keys (key=value); every other override composes the base ladder (ladder=NAME, launcher.gpu_flops).
KEYS = ("target", "budget", "method", "results", "out", "name", "sizes", "min_size", "max_size", "multipliers",
        "schedules", "gpus", "draws", "seed", "min_sizes", "min_multipliers", "metric", "curve", "difference",
        "confidence")
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


def whole(args: dict, key: str, default: int, least: int = 0) -> int:
    """A whole-number key (draws, seed, min_sizes) of at least `least`, or one clear line."""
    try:
        value = int(args.get(key, default))
    except (TypeError, ValueError):
        value = None
    if value is None or value < least:
        raise ConfigError(f"{key}={args[key]}: expected a whole number of at least {least}")
    return value


# Keys only one of the two searches reads: given to the other, they would be ignored in silence.
DECISION_KEYS = ("confidence",)
SEARCH_KEYS = ("metric", "method", "curve")


def refuse_keys(args: dict, keys, why: str) -> None:
    if given := [k for k in keys if k in args]:
        raise ConfigError(f"{given[0]}={args[given[0]]}: {why}")


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


EVALUATE = {"loss": evaluate, "accuracy": evaluate_accuracy}  # by METRICS: the loss relative, accuracy in points


@dataclass(frozen=True)
class Scored:
    """A ladder and its simulated forecast error at the target, per metric: (metric, fit.design.Expected) pairs in
    METRICS' order, the loss relative (0.01 = 1 %), accuracy in points."""
    candidate: Candidate
    errors: tuple

    def of(self, metric: str) -> design.Expected:
        return dict(self.errors)[metric]

    @property
    def loss(self) -> design.Expected:
        return self.of("loss")


def score(models: dict, fit, c: Candidate, target: Target, draws: int, seed: int) -> Scored:
    """`c`'s expected error of each metric of `models` (metric -> its error model)."""
    return Scored(c, tuple((m, EVALUATE[m](model, fit, c.rungs, target, draws, seed)) for m, model in models.items()))


def shipped(models: dict, fit, target: Target, draws: int, seed: int) -> list[tuple[str, Scored]]:
    """(name, scored) of each shipped ladder whose sizes all lie below the target, at its own cost and schedule (a
    ladder that reaches the target's N does not forecast it)."""
    out = []
    for name in SHIPPED:
        plan = build_plan(load([f"ladder={name}"]))
        if unforecastable(plan, target, fit) is None:
            out.append((name, score(models, fit, as_candidate(plan), target, draws, seed)))
    return out


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


def accuracy_prior(measured, method: str, metric: str):
    """(the accuracy error model, None), or (None, why there is none) where the method has no step 2 or the sources
    no task accuracies; with `metric=accuracy` that is one line's refusal instead. `measured`: the sources (points),
    or what `error_models` measured of them, (the accuracy model or None, why not)."""
    try:
        design_accuracy.step2_method(method)
        if isinstance(measured, tuple):
            acc, why = measured
            if acc is None:
                raise FitInputError(why)
            return acc, None
        return design_accuracy.measure_accuracy(measured), None
    except FitInputError as exc:
        if metric == "accuracy":
            raise ConfigError(f"metric=accuracy: {exc}") from exc
        return None, str(exc)


def as_candidate(plan) -> Candidate:
    """A plan's ladder as the search's candidates are: its first dataset's rungs (each dataset is fitted apart)."""
    return Candidate(tuple(r for r in plan.rungs if r.dataset == plan.rungs[0].dataset), plan.lr_schedule,
                     plan.compute)


def unforecastable(plan, target: Target, fit) -> Optional[str]:
    """Why the plan's ladder cannot forecast `target` through `fit`'s loss law; None where it can."""
    rungs = as_candidate(plan).rungs
    if max(r.params for r in rungs) >= target.params:
        return f"a size reaches its N ({format_count(max(r.params for r in rungs))} ≥ {format_count(target.params)})"
    if len(rungs) < len(fit.law.params) + 1:
        return f"{len(rungs)} rungs cannot fit the loss law's {len(fit.law.params)} parameters"
    return None


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


@dataclass(frozen=True)
class CurvePoint:
    """The best ladder the search found within `budget` (None where no candidate fits), of `candidates`."""
    budget: float
    candidates: int
    best: Optional[Scored]


@dataclass(frozen=True)
class Design:
    """One search's result, which the terminal, the ladder config and the report each read."""
    target: Target
    budget: float
    settings: tuple  # (key, value) of the design's keys as given, and the base ladder's overrides
    base: str  # the base ladder
    method: str
    metric: str  # what ranked the candidates (METRICS)
    models: dict  # metric -> its error model: the loss's, and accuracy's where the sources and method have one
    no_accuracy: Optional[str]  # why accuracy is not simulated, where it is not
    draws: int
    seed: int
    simulated: int  # candidates simulated, the curve's included
    cpu: float  # CPU seconds of their simulation
    finalists: tuple  # the best 5 within budget again with 4 × draws, as the first pass ranked them
    best: Scored
    shipped: tuple  # (name, Scored) of the shipped ladders below the target, at their own cost
    curve: tuple  # CurvePoint per budget of CURVE

    @property
    def within(self) -> int:
        return next(p.candidates for p in self.curve if p.budget == self.budget)

    @property
    def model(self) -> design.ErrorModel:
        return self.models["loss"]

    def ranked(self, s: Scored) -> design.Expected:
        """`s`'s expected error of the metric that ranks the candidates."""
        return s.of(self.metric)


def pool_grid(args: dict, cfg, target: Target) -> tuple:
    """(the pool's rungs by size and multiplier, the price of a set of them, the allowed schedules) from the design's
    keys: sizes/min_size/max_size, multipliers, schedules."""
    schedules = [str(s) for s in args.get("schedules", SCHEDULE_CHOICES)]
    bad = [s for s in schedules if s not in SCHEDULES]
    if bad:
        raise ConfigError(f"schedules: unknown {bad[0]} (one of {', '.join(SCHEDULES)})")
    try:
        multipliers = [float(m) for m in args.get("multipliers", MULTIPLIERS)]
    except (TypeError, ValueError):
        raise ConfigError(f"multipliers={args['multipliers']}: expected a list of numbers") from None
    grid = grid_rungs(cfg, size_pool(args, cfg, target), multipliers)
    return grid, plan_price(schedules, cfg.ladder.lr_decay_fraction), schedules


def design_name(args: dict, default: str) -> str:
    """The name= given, else `default` made a file name."""
    return str(args.get("name", re.sub(r"[^A-Za-z0-9_.-]", "_", default)))


# The error-against-budget curve: the best design at these multiples of the budget. By quadruplings: every
# candidate of each budget is simulated once (common random numbers), and for 7B-4T at 1 % doublings from 1/16 to
# 4 × would simulate 220 candidates against the search's 94 alone, quadruplings 174 (docs/design.md).
CURVE = (1 / 16, 1 / 4, 1, 4)


def search(args: dict, cfg, target: Target, budget: float, settings: tuple) -> Design:
    """Every candidate within each budget of the curve, simulated once with the same draws; the best 5 within
    `budget` again with 4 × the draws, the lowest median error chosen; the shipped ladders beside them."""
    method = str(args.get("method", "best"))
    fit = design.loss_fit(method)
    metric = parse_metric(args)
    draws, seed = whole(args, "draws", 128, 1), whole(args, "seed", 0)
    grid, price, schedules = pool_grid(args, cfg, target)
    k, j = whole(args, "min_sizes", MIN_AXIS), whole(args, "min_multipliers", MIN_AXIS)
    budgets = CURVE if str(args.get("curve", "true")).lower() != "false" else (1,)  # curve=false: the search alone
    pool = {c.rungs: c for b in budgets for c in candidates(grid, price, b * budget, len(fit.law.params) + 1, k, j)}
    if not any(c.compute <= budget for c in pool.values()):
        cheapest = min(cost(tuple(r for s in grid[:k] for r in s[:j]), s, cfg.ladder.lr_decay_fraction)
                       for s in schedules)
        raise ConfigError(f"budget={args['budget']}: no ladder of at least {len(fit.law.params) + 1} rungs and "
                          f"{k} sizes fits {budget:.3g} FLOPs (the {k} smallest sizes × {j} smallest multipliers cost "
                          f"{cheapest:.3g}); raise the budget or lower min_size")
    model, measured = error_models(args.get("results"))
    acc, no_accuracy = accuracy_prior(measured, method, metric)
    models = {"loss": model, **({"accuracy": acc} if acc is not None else {})}
    began = time.process_time()  # the first pass simulates the ranking metric alone
    scored = sorted((score({metric: models[metric]}, fit, c, target, draws, seed) for c in pool.values()),
                    key=lambda s: (s.of(metric).median, s.candidate.compute))
    cpu = time.process_time() - began
    curve = tuple(CurvePoint(b * budget, len(fits), fits[0] if fits else None)
                  for b in budgets for fits in [[s for s in scored if s.candidate.compute <= b * budget]])
    finalists = tuple(score(models, fit, s.candidate, target, 4 * draws, seed + 1)
                      for s in [s for s in scored if s.candidate.compute <= budget][:5])
    return Design(target, budget, settings, cfg.ladder.name, method, metric, models, no_accuracy, draws, seed,
                  len(pool), cpu, finalists, min(finalists, key=lambda s: s.of(metric).median),
                  tuple(shipped(models, fit, target, 4 * draws, seed + 1)), curve)


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def band(e: design.Expected) -> str:
    return (f"{pct(e.median)} (90 % of draws within {pct(e.p90)}; "
            f"signed band {100 * e.low:+.2f} … {100 * e.high:+.2f} %)")


def points_band(e: design.Expected) -> str:
    return (f"{e.median:.2f} points (90 % of draws within {e.p90:.2f}; "
            f"signed band {e.low:+.2f} … {e.high:+.2f} points)")


def amount(metric: str, x: float) -> str:
    """An error of `metric`: the loss's in %, accuracy's in points."""
    return pct(x) if metric == "loss" else f"{x:.2f} points"


def said(scored: Scored) -> str:
    """"loss error …; accuracy error …" (the second where an accuracy model exists)."""
    return "; ".join(f"{metric} error {band(e) if metric == 'loss' else points_band(e)}"
                     for metric, e in scored.errors)


def terminal_lines(d: Design) -> list[str]:
    t = d.target
    lines = [f"target {t.name}: N={format_count(t.params)}, D={format_count(t.tokens)}, C={t.compute:.3g} FLOPs; "
             f"budget {d.budget:.3g} FLOPs ({pct(d.budget / t.compute)} of it)",
             f"error model: {d.model.describe()}",
             f"accuracy error model: {d.models['accuracy'].describe()}" if "accuracy" in d.models else
             f"accuracy error: not simulated ({d.no_accuracy})",
             f"{d.within} candidate ladders within budget"
             + (f" ({d.simulated} with the curve's budgets)" if d.simulated > d.within else "") + ", each simulated "
             f"{d.draws} times ({d.cpu / d.simulated:.2g} CPU s a candidate, ranked by the {d.metric} error); the "
             f"best {len(d.finalists)} again {4 * d.draws} times:"]
    lines += [f"  {'*' if s is d.best else ' '} {s.candidate.describe():55s} {s.candidate.compute:.3g} FLOPs "
              f"({pct(s.candidate.compute / t.compute)}), {said(s)}" for s in d.finalists]
    lines.append("shipped ladders below the target, at their own cost (same error model):")
    lines += [f"    {name:8s} {s.candidate.compute:.3g} FLOPs ({pct(s.candidate.compute / t.compute)}), {said(s)}"
              for name, s in d.shipped] or [f"    none: every shipped ladder ({', '.join(SHIPPED)}) reaches the "
                                            "target's N"]
    lines.append(f"best expected {d.metric} error within " + ", ".join(
        (f"{p.budget / d.budget:g}" if p.budget >= d.budget else f"1/{d.budget / p.budget:g}") + " × the budget: "
        + (amount(d.metric, d.ranked(p.best).median) if p.best else "no ladder fits") for p in d.curve))
    return lines


def expected_errors(plan, draws: int = 128, seed: int = 0) -> tuple[dict[str, str], Optional[str]]:
    """What `ladder plan` says beside each target's compute share: the ladder's expected loss error there (method
    best, the published ladders' error model, `ladder design`'s first pass: 0.4 CPU s a target against 1.5 s with
    the 512 draws its report shows the shipped ladders with), or why it has none; and one line where no target's
    is simulated. Never raises: the plan stands without it."""
    fit = design.loss_fit("best")
    why = {t.name: unforecastable(plan, t, fit) for t in plan.targets}
    if all(why.values()):
        return {t: f"no expected error: {w}" for t, w in why.items()}, None
    if shared_data_dir() is None:
        return {}, ("expected forecast error: not simulated, the published ladders it is measured on are absent "
                    "(<repo>/../shared/data or $LADDER_SHARED_DATA; `ladder design results=` measures your own)")
    try:
        models = {"loss": error_models(None, accuracy=False)[0]}
        out = {}
        for t in plan.targets:
            out[t.name] = f"no expected error: {why[t.name]}" if why[t.name] else \
                f"expected loss error {brief(score(models, fit, as_candidate(plan), t, draws, seed).loss)}"
        return out, None
    except Exception as exc:  # noqa: BLE001: whatever fails here, the plan above it stands
        return {}, f"expected forecast error: not simulated ({type(exc).__name__}: {exc})"


def brief(e: design.Expected) -> str:
    return f"{pct(e.median)} (90 % band {100 * e.low:+.2f} … {100 * e.high:+.2f} %)"


def run_design(overrides: list[str]) -> int:
    from ladder.orchestration.design_report import report_destination, write_report

    args, rest = parse_args(overrides)
    refuse_keys(args, DECISION_KEYS, "only a decision design (difference=NATS) reads it")
    for key in ("target", "budget"):
        if key not in args:
            raise ConfigError(f"say the {key}: ladder design target=7B-4T budget=1% (budget also 3e21 FLOPs, "
                              f"500gpuh, or 12h with gpus=8)")
    cfg = load(rest)
    target = resolve_target(str(args["target"]), cfg)
    budget = parse_budget(args["budget"], target, cfg, args.get("gpus"))
    design.loss_fit(str(args.get("method", "best")))  # the method, and the metric it ranks by, refused before any write
    parse_metric(args)
    name = design_name(args, f"design-{target.name}-{args['budget']}".replace("%", "pct"))
    path, select = destination(name, args.get("out"))
    report_dir = report_destination(name, args.get("out"))
    d = search(args, cfg, target, budget, tuple(args.items()) + (("overrides", " ".join(rest)),))
    print("\n".join(terminal_lines(d)))
    summary = (f"target={target.name} budget={args['budget']} method={d.method}"
               f"{'' if d.metric == 'loss' else ' metric=' + d.metric}: {d.best.candidate.describe()}, "
               f"{d.best.candidate.compute:.3g} FLOPs, expected {said(d.best)}")
    write_config(config_text(d.best.candidate, target, d.base, name, summary), path)
    print(f"wrote {path}: ladder plan {' '.join(select)}")
    write_report(report_dir, d, path, select)
    print(f"report: {report_dir / 'report.html'}")
    return 0
