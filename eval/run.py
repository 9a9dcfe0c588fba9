"""Evaluate a checkpoint: held-out LM loss per eval set and RC metrics per task, as results records.

Records follow docs/formats.md (one per run, checkpoint step and metric); a record may also carry
`warnings` (e.g. contexts truncated to fit the model), which readers that do not know it ignore.
"""
from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

from filelock import FileLock

from ladder.files import atomic_write_text

from eval.checkpoints import load_checkpoint, step_of
from eval.config import EvalConfig
from eval.derived import derived_task
from eval.fewshot import with_fewshot
from eval.lm_loss import lm_loss
from eval.metrics import ScoredExample, rc_metrics, weighted
from eval.scoring import pad_id, score_groups
from eval.tasks import MMLU_WEIGHTS, Example, TaskError, load_task, mmlu_group

log = logging.getLogger(__name__)
# The unconditional context of PMI scoring (OLMo's domain-conditional "Answer:").
UNCONDITIONAL = "Answer:"


@dataclass
class LMSet:
    """Held-out token sequences; `n_bytes` is counted from their text on first use when not given."""
    sequences: Sequence
    n_bytes: Optional[int] = None

    def bytes_for(self, tokenizer) -> int:
        if self.n_bytes is None:
            # Bits per byte covers the predicted tokens (all but each sequence's first); special tokens have no text.
            self.n_bytes = sum(len(tokenizer.decode(list(s[1:]), skip_special_tokens=True).encode("utf-8"))
                               for s in self.sequences)
        return self.n_bytes


@dataclass
class RungInfo:
    """What a rung's records share, and how to turn a step into tokens seen."""
    base: dict  # run, size, dataset, params, run_tokens, multiplier
    tokens_per_step: int
    final_step: int
    rung_dir: Optional[Path] = None


@dataclass
class TaskResult:
    metrics: dict[str, float]  # full metric names, e.g. "piqa:acc"
    warnings: list[str] = field(default_factory=list)


def prepare_task(name: str, cfg: EvalConfig, docs: Optional[list[str]] = None) -> list[Example]:
    """A task's examples with their few-shot prompts, sampled to `cfg.max_examples` (seeded)."""
    if name == "derived":
        if docs is None:
            raise TaskError("task 'derived' needs held-out documents (eval.derived.docs)")
        d = cfg.derived
        examples = derived_task(docs, n_examples=d.n_examples, n_choices=d.n_choices, context_words=d.context_words,
                                continuation_words=d.continuation_words, seed=cfg.seed)
        pool = examples  # no train split: demonstrations are other examples of the task
    else:
        examples = load_task(name, cfg.task_paths.get(name))
        pool = load_task(name, cfg.fewshot_paths.get(name), fewshot=True) if cfg.num_fewshot else []
    # Few-shot prompts come from the whole pool, so a sample sees the same prompts as a full run.
    examples = with_fewshot(examples, pool, cfg.num_fewshot)
    if cfg.max_examples is not None and len(examples) > cfg.max_examples:
        keep = sorted(random.Random(cfg.seed).sample(range(len(examples)), cfg.max_examples))
        examples = [examples[i] for i in keep]
    return examples


def unconditional_scores(model, tokenizer, examples: list[Example], batch_size: int) -> dict[str, float]:
    """log p(choice | "Answer:") (PMI's denominator) of every distinct choice text, each scored once."""
    # Partial scoring (Winogrande) scores one shared suffix, so it has no PMI denominator.
    texts = sorted({c for ex in examples if ex.suffix is None for c in ex.choices})
    if not texts:
        return {}
    width = max(len(ex.choices) for ex in examples)  # groups the size of an example's: batches like the rest
    groups = [[(UNCONDITIONAL, t) for t in texts[i:i + width]] for i in range(0, len(texts), width)]
    scores = score_groups(model, tokenizer, groups, batch_size=batch_size)
    return dict(zip(texts, (lp for s in scores for lp in s.logprobs)))


def evaluate_task(model, tokenizer, name: str, examples: list[Example], batch_size: int) -> TaskResult:
    scores = score_groups(model, tokenizer, [ex.requests() for ex in examples], batch_size=batch_size)
    uncond = unconditional_scores(model, tokenizer, examples, batch_size)
    scored = []
    for ex, s in zip(examples, scores):
        texts = [t[1:] if t.startswith(" ") else t for t in ex.scored_texts()]  # OLMo drops the leading space
        scored.append(ScoredExample(s.logprobs, s.n_tokens, [len(t) for t in texts],
                                    [len(t.encode("utf-8")) for t in texts], ex.gold,
                                    [uncond[c] for c in ex.choices] if ex.suffix is None else None))
    warnings = []
    truncated = sum(s.truncated for s in scores)
    if truncated:
        warnings.append(f"{name}: {truncated} of {len(examples)} contexts truncated from the left to fit "
                        f"the model's {model.config.max_position_embeddings} tokens")
    if name != "mmlu":
        return TaskResult({f"{name}:{k}": v for k, v in rc_metrics(scored).items()}, warnings)
    by_group: dict[str, list[ScoredExample]] = {}
    for ex, s in zip(examples, scored):
        by_group.setdefault(mmlu_group(ex.group), []).append(s)
    groups_metrics = {g: rc_metrics(v) for g, v in by_group.items()}
    absent = sorted(set(MMLU_WEIGHTS) - set(by_group))
    if absent:
        warnings.append(f"mmlu: no examples of group(s) {', '.join(absent)}; weights renormalised over the rest")
    metrics = {f"mmlu:{k}": v for k, v in weighted(groups_metrics, MMLU_WEIGHTS).items()}
    for g, m in groups_metrics.items():
        metrics.update({f"mmlu_{g}:{k}": v for k, v in m.items()})
    return TaskResult(metrics, warnings)


def evaluate_model(model, tokenizer, *, lm_sets: Mapping[str, LMSet], tasks: Mapping[str, list[Example]],
                   batch_size: int) -> list[tuple[str, float, list[str]]]:
    """(metric, value, warnings) for every eval set and task."""
    out = []
    for name, lm_set in lm_sets.items():
        r = lm_loss(model, lm_set.sequences, n_bytes=lm_set.bytes_for(tokenizer), batch_size=batch_size,
                    pad_id=pad_id(tokenizer))
        out += [(f"{name}_val:loss", r["loss"], []), (f"{name}_val:bpb", r["bpb"], [])]
    for name, examples in tasks.items():
        result = evaluate_task(model, tokenizer, name, examples, batch_size)
        for warning in result.warnings:
            log.warning(warning)
        out += [(metric, value, result.warnings) for metric, value in result.metrics.items()]
    return out


def evaluate_checkpoint(checkpoint_dir: Path, *, lm_sets: Mapping[str, LMSet], tasks: Mapping[str, list[Example]],
                        cfg: EvalConfig, rung: RungInfo, step: Optional[int] = None) -> list[dict]:
    """Records (docs/formats.md) of one checkpoint; raises CheckpointError if it is incomplete."""
    step = step_of(checkpoint_dir) if step is None else step
    model, tokenizer = load_checkpoint(checkpoint_dir, Path(cfg.tokenizer) if cfg.tokenizer else None, cfg.device)
    records = []
    for metric, value, warnings in evaluate_model(model, tokenizer, lm_sets=lm_sets, tasks=tasks,
                                                  batch_size=cfg.batch_size):
        record = {**rung.base, "step": step, "tokens": step * rung.tokens_per_step,
                  "final": step >= rung.final_step, "metric": metric, "value": value}
        if warnings:
            record["warnings"] = warnings
        records.append(record)
    return records


def read_results(rung_dir: Path) -> list[dict]:
    path = Path(rung_dir) / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_results(rung_dir: Path, records: Sequence[dict]) -> int:
    """Append records whose (step, metric) the file lacks; returns how many were written.

    The whole file is rewritten under a temporary name and renamed, under a lock, so a reader never
    sees half a record set and re-running an evaluation adds nothing twice.
    """
    path = Path(rung_dir) / "results.jsonl"
    with FileLock(str(path) + ".lock"):
        old = path.read_text() if path.exists() else ""
        seen = {(r["step"], r["metric"]) for r in (json.loads(x) for x in old.splitlines() if x.strip())}
        new = [r for r in records if (r["step"], r["metric"]) not in seen]
        if not new:
            return 0
        if old and not old.endswith("\n"):
            old += "\n"
        atomic_write_text(path, old + "".join(json.dumps(r) + "\n" for r in new))
    return len(new)


def is_done(rung_dir: Path, step: int, lm_sets: Sequence[str], tasks: Sequence[str]) -> bool:
    """Whether results already hold every eval set and task for this step."""
    have = {r["metric"].split(":")[0] for r in read_results(rung_dir) if r["step"] == step}
    return {f"{s}_val" for s in lm_sets} | set(tasks) <= have
