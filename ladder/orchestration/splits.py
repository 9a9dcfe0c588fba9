"""How many tokens a ladder's training split of a dataset holds: `data.max_tokens` where it is set, else what
the ladder's largest rung on that dataset and sequence length trains on (so only that much is tokenized).

Training reads the split in an order shuffled over the whole split, so a run resumed or continued on a split
of another size would read other sequences than it started on: the split's size is part of an unfinished
run's identity (ladder.orchestration.identity), and a fixed `data.max_tokens` keeps it when the ladder grows.
"""
from omegaconf import DictConfig

from ladder.core.plan import Plan, Rung
from ladder.orchestration.compose import dataset_config


def rungs_of(plan: Plan, dataset: str, seq_len: int) -> list[Rung]:
    return [r for r in plan.rungs if r.dataset == dataset and r.shape.seq_len == seq_len]


def tokens_needed(plan: Plan, dataset: str, seq_len: int) -> int:
    """What the largest rung on this dataset and sequence length trains on."""
    return max(r.trained_tokens for r in rungs_of(plan, dataset, seq_len))


def split_tokens(cfg: DictConfig, plan: Plan, dataset: str, seq_len: int) -> int:
    """The training tokens the split of `dataset` at `seq_len` holds."""
    data = dataset_config(cfg, dataset)
    return data.max_tokens if data.max_tokens is not None else tokens_needed(plan, dataset, seq_len)
