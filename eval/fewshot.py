"""k-shot prompts: k solved examples, then the example to score, separated by blank lines.

Demonstrations are drawn from the same task (the same group, e.g. MMLU subject, where the example
has one), never the example itself, with a generator seeded by (seed, example index), so a prompt
does not depend on which other examples are evaluated alongside it.
"""
from __future__ import annotations

import random
from dataclasses import replace

from eval.tasks import Example, TaskError

SEPARATOR = "\n\n"


def with_fewshot(examples: list[Example], k: int, seed: int = 0) -> list[Example]:
    if k < 0:
        raise TaskError(f"num_fewshot must be >= 0, got {k}")
    if k == 0:
        return list(examples)
    by_group: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_group.setdefault(ex.group, []).append(i)
    out = []
    for i, ex in enumerate(examples):
        pool = [j for j in by_group[ex.group] if j != i]
        if len(pool) < k:
            raise TaskError(f"{k}-shot needs {k} other examples in group {ex.group or '(all)'}, found {len(pool)}")
        shots = random.Random(f"{seed}/{i}").sample(pool, k)
        prefix = SEPARATOR.join(examples[j].with_gold() for j in shots) + SEPARATOR
        out.append(replace(ex, context=prefix + ex.context))
    return out
