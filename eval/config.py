"""Schema of the `eval/` config group."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

PRECISIONS = ("auto", "fp32", "bf16")


class EvalError(ValueError):
    """Bad `ladder eval` input; its message names what to fix."""


@dataclass
class DerivedConfig:
    """The document-continuation task built from held-out training text (eval/derived.py)."""
    docs: Optional[str] = None  # held-out documents: a jsonl / json.gz / parquet file with the data's text field
    n_examples: int = 200
    n_choices: int = 4
    context_words: int = 24
    continuation_words: int = 8


@dataclass
class EvalConfig:
    """What each checkpoint is evaluated on."""
    tasks: List[str] = field(default_factory=lambda: ["derived"])  # names in eval.tasks.TASKS
    num_fewshot: int = 0  # k solved examples before each one (the OLMo ladder used 5)
    batch_size: int = 8  # examples (RC) or sequences (LM loss) per forward pass
    max_examples: Optional[int] = None  # per task, a seeded sample; None: all
    task_paths: Dict[str, str] = field(default_factory=dict)  # task -> local file in its HF schema; else the hub
    # task -> local file of its few-shot split (train; MMLU: dev) in its HF schema; else the hub
    fewshot_paths: Dict[str, str] = field(default_factory=dict)
    lm_sets: Dict[str, str] = field(default_factory=dict)  # eval set name (c4, ...) -> packed val shard directory
    max_sequences: Optional[int] = None  # per LM set; None: all
    seed: int = 0  # example samples (max_examples), derived tasks
    checkpoint: Optional[str] = None  # evaluate this one checkpoint directory
    rung: Optional[str] = None  # else every checkpoint of this rung id; else all rungs under out_dir
    tokenizer: Optional[str] = None  # tokenizer directory for checkpoints saved without one
    device: str = "auto"  # auto: this process's GPU when one is visible, else cpu; or cpu, cuda
    precision: str = "auto"  # ladder eval's forwards: auto (bf16 autocast on GPU, fp32 on CPU), fp32 or bf16;
    #                          in-loop evaluation always uses the training precision
    derived: DerivedConfig = field(default_factory=DerivedConfig)
