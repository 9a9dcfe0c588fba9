"""What evaluating one checkpoint costs, estimated from the eval config alone (no task is loaded).

Tokens through the model per checkpoint: the LM-loss sequences, plus for each RC example its prompt
once (the k solved examples and its own context, the shared prefix), each choice's continuation, and
PMI's unconditional "Answer:" + choice where the task has one. Forward FLOPs are 2·N per token.
Each task's size (its split's examples, choices and typical token lengths) is its `TaskSpec`'s
(eval/tasks.py). It is an upper bound: scoring runs a batch's shared prefix once and each distinct
PMI choice once per task (eval/scoring.py, eval/run.py), which this count does not model, so Slurm
time limits err long.
"""
from __future__ import annotations

from eval.config import EvalConfig, EvalError
from eval.examples import TaskError
from eval.tasks import task_spec


def task_tokens(name: str, cfg: EvalConfig, seq_len: int) -> float:
    """Tokens through the model to score one task once."""
    try:
        size = task_spec(name).size_for(cfg)
    except TaskError as exc:
        raise EvalError(f"eval.tasks: {exc}") from None
    examples = size.examples if cfg.max_examples is None else min(size.examples, cfg.max_examples)
    prompt = min(seq_len, (cfg.num_fewshot + 1) * size.context_tokens + cfg.num_fewshot * size.choice_tokens)
    per_example = prompt + size.choices * size.choice_tokens
    if size.pmi:
        per_example += size.choices * (2 + size.choice_tokens)  # "Answer:" is 2 tokens
    return examples * per_example


def checkpoint_tokens(cfg: EvalConfig, seq_len: int, lm_tokens: float) -> float:
    """Tokens through the model per checkpoint: `lm_tokens` of held-out sequences and every task."""
    return lm_tokens + sum(task_tokens(name, cfg, seq_len) for name in cfg.tasks)
