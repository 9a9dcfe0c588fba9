"""k-shot prompts, as OLMES builds them: the header, k solved examples, then the example to score.

Demonstrations are the first k examples of a pool in its order (OLMES takes the first k of its
curated list, MMLU the first k of the subject's dev split), from the example's group (the MMLU
subject) where it has one, never the example itself. Every example of a group thus gets the same
demonstrations, whatever else is evaluated alongside it. Blocks are joined by a blank line (lm-eval's
few-shot delimiter); a header (MMLU's subject line) comes once, before the first demonstration.
"""
from __future__ import annotations

from dataclasses import replace
from itertools import islice

from eval.examples import Example, TaskError

SEPARATOR = "\n\n"


def with_fewshot(examples: list[Example], pool: list[Example], k: int) -> list[Example]:
    """`examples` with k demonstrations from `pool` (the task's few-shot split, or the examples themselves)."""
    if k < 0:
        raise TaskError(f"num_fewshot must be >= 0, got {k}")
    if k == 0:
        return list(examples)
    by_group: dict[str, list[Example]] = {}
    for shot in pool:
        by_group.setdefault(shot.group, []).append(shot)
    out = []
    for ex in examples:
        # The first k that are not the example itself (the pool may hold it, and copies of it).
        shots = list(islice((s for s in by_group.get(ex.group, []) if s != ex), k))
        if len(shots) < k:
            raise TaskError(f"{k}-shot needs {k} few-shot examples in group {ex.group or '(all)'} other than the "
                            f"one scored, found {len(shots)}")
        demos = SEPARATOR.join(s.with_gold() for s in shots) + SEPARATOR
        out.append(replace(ex, context=ex.header + demos + ex.context[len(ex.header):]))
    return out
