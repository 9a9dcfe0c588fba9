"""What evaluating one checkpoint costs, estimated from the eval config alone (no task is loaded).

Tokens through the model per checkpoint: the LM-loss sequences, plus for each RC example its prompt
once (the k solved examples and its own context, the shared prefix), each choice's continuation, and
PMI's unconditional "Answer:" + choice where the task has one. Forward FLOPs are 2·N per token.
Task sizes are the splits eval/tasks.py reads; token lengths are typical means under a ~50K BPE
(measured roughly on the OLMo suite; a 2× error here moves the estimate, not the plan). It is an upper
bound: scoring runs a batch's shared prefix once and each distinct PMI choice once per task
(eval/scoring.py, eval/run.py), which this count does not model, so Slurm time limits err long.
"""
from __future__ import annotations

from typing import NamedTuple

from eval.config import EvalConfig, EvalError

TOKENS_PER_WORD = 1.3


class TaskSize(NamedTuple):
    examples: int  # in the split eval/tasks.py reads
    choices: int
    context_tokens: int  # a solved example is context + one choice
    choice_tokens: int
    pmi: bool = True  # scores each choice after "Answer:" too (all but partial scoring)


TASK_SIZES = {
    "hellaswag": TaskSize(10042, 4, 45, 25),
    "arc_easy": TaskSize(2376, 4, 30, 6),
    "arc_challenge": TaskSize(1172, 4, 35, 8),
    "piqa": TaskSize(1838, 2, 15, 25),
    "csqa": TaskSize(1221, 5, 20, 3),
    "socialiqa": TaskSize(1954, 3, 35, 5),
    "openbookqa": TaskSize(500, 4, 18, 5),
    "mmlu": TaskSize(14042, 4, 70, 12),
    "mmlu_stem": TaskSize(3018, 4, 70, 12),
    "mmlu_humanities": TaskSize(4705, 4, 90, 12),
    "mmlu_social_sciences": TaskSize(3077, 4, 50, 10),
    "mmlu_other": TaskSize(3242, 4, 55, 12),
    "winogrande": TaskSize(1267, 2, 20, 8, pmi=False),
    "boolq": TaskSize(3270, 2, 150, 2),
    "copa": TaskSize(100, 2, 12, 8),
}


def _derived(cfg: EvalConfig) -> TaskSize:
    d = cfg.derived
    return TaskSize(d.n_examples, d.n_choices, round(d.context_words * TOKENS_PER_WORD),
                    round(d.continuation_words * TOKENS_PER_WORD))


def task_tokens(name: str, cfg: EvalConfig, seq_len: int) -> float:
    """Tokens through the model to score one task once."""
    size = _derived(cfg) if name == "derived" else TASK_SIZES.get(name)
    if size is None:
        raise EvalError(f"eval.tasks: unknown task {name!r}; known: {', '.join(sorted(TASK_SIZES))}, derived")
    examples = size.examples if cfg.max_examples is None else min(size.examples, cfg.max_examples)
    prompt = min(seq_len, (cfg.num_fewshot + 1) * size.context_tokens + cfg.num_fewshot * size.choice_tokens)
    per_example = prompt + size.choices * size.choice_tokens
    if size.pmi:
        per_example += size.choices * (2 + size.choice_tokens)  # "Answer:" is 2 tokens
    return examples * per_example


def checkpoint_tokens(cfg: EvalConfig, seq_len: int, lm_tokens: float) -> float:
    """Tokens through the model per checkpoint: `lm_tokens` of held-out sequences and every task."""
    return lm_tokens + sum(task_tokens(name, cfg, seq_len) for name in cfg.tasks)
