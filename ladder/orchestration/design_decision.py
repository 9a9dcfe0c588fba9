"""`ladder design target=7B-4T difference=0.02`: the cheapest ladder whose `ladder compare` of two variants, trained
on it each, names the better one in `confidence` of simulated draws (fit.design_compare), the decision variant of
`ladder design` (design.py holds the candidates and their pricing, which both share)."""
from __future__ import annotations

import math
import time

import numpy as np

from fit import design_compare
from ladder.core.configs import ConfigError
from ladder.core.plan import Target
from ladder.core.sizes import format_count
from ladder.orchestration.compose import load
from ladder.orchestration.design import (MIN_AXIS, SEARCH_KEYS, Candidate, candidates, config_text, destination,
                                         design_name, parse_args, parse_budget, pct, pool_grid, refuse_keys,
                                         resolve_target, whole, write_config)
from ladder.orchestration.design_models import error_models


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
    grid, price, _ = pool_grid(args, cfg, target)
    pool = candidates(grid, price, budget, design_compare.MIN_RUNGS,
                      whole(args, "min_sizes", MIN_AXIS), whole(args, "min_multipliers", MIN_AXIS))
    return sorted(pool, key=lambda c: (c.compute, len(c.rungs)))


def run_decision_design(overrides: list[str]) -> int:
    """`ladder design target=7B-4T difference=0.02`: the cheapest ladder (per variant; both variants train it) whose
    simulated `ladder compare` names the better of two variants `difference` nats apart at the target in at least
    `confidence` of the draws (fit.design_compare). Candidates are simulated from the cheapest up; the first to reach
    it is confirmed with 4× the draws (else the search goes on), shown beside its cheaper and dearer neighbours, and
    written as `ladder design` writes its choice. None within the ceiling (budget=, per variant) is an answer too."""
    args, rest = parse_args(overrides)
    refuse_keys(args, SEARCH_KEYS, "the decision design (difference=) simulates the loss by compare's joint law")
    if "target" not in args:
        raise ConfigError("say the target: ladder design target=7B-4T difference=0.02 (nats of loss at the target)")
    difference = _number_between("difference", args.get("difference"), 0.0, math.inf, "0.02")
    confidence = _number_between("confidence", args.get("confidence", 0.9), 0.5, 1.0, "0.9")
    cfg = load(rest)
    target = resolve_target(str(args["target"]), cfg)
    budget_text = str(args.get("budget", DECISION_CEILING))
    budget = parse_budget(budget_text, target, cfg, args.get("gpus"))
    name = design_name(args, f"design-{target.name}-difference-{difference:g}")
    path, select = destination(name, args.get("out"))
    draws, seed = whole(args, "draws", 128, 1), whole(args, "seed", 0)
    pool = decision_pool(args, cfg, target, budget)
    if not pool:
        raise ConfigError(f"budget={budget_text}: no ladder of at least {whole(args, 'min_sizes', MIN_AXIS)} sizes "
                          f"fits {budget:.3g} FLOPs; raise the budget or lower min_size")
    model, _ = error_models(args.get("results"), accuracy=False)
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
          f"({took:.3g} CPU s in all)"
          + (f", the first to reach {confidence:.0%} again {4 * draws} times to confirm it:" if chosen else ":"))
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
