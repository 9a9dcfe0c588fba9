"""Evaluate a checkpoint: held-out LM loss per eval set and RC metrics per task, as results records.

Records follow docs/formats.md (one per run, checkpoint step and metric); each carries the evaluation key
of its task or eval set (eval/keys.py), a task's accuracy records its `chance` level, and a record may carry
`warnings` (e.g. contexts truncated to fit the model), which readers that do not know them ignore. A record
whose checkpoint was evaluated again under another key stays in the file, marked `superseded`.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import torch
from filelock import FileLock

from ladder.core.files import atomic_write_text
from ladder.core.layout import RESULTS

from eval.checkpoints import load_checkpoint, step_of
from eval.config import PRECISIONS, EvalConfig, EvalError
from eval.fewshot import with_fewshot
from eval.lm_loss import heldout_loss
from eval.examples import Example, TaskError
from eval.metrics import ACCURACIES, ScoredExample, group_mean, rc_metrics
from eval.scoring import Encoded, GroupScores, encode_groups, pad_id, score_encoded
from eval.sharding import Shards
from eval.tasks import TASKS, chance_levels, task_spec, with_groups

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
    """A task's examples with their few-shot prompts, sampled to `cfg.max_examples` (seeded); `docs`: the
    held-out documents a task built from them needs."""
    examples, pool = task_spec(name).loader.examples(name, cfg, docs)
    # Few-shot prompts come from the whole pool, so a sample sees the same prompts as a full run.
    examples = with_fewshot(examples, pool, cfg.num_fewshot)
    if cfg.max_examples is not None and len(examples) > cfg.max_examples:
        keep = sorted(random.Random(cfg.seed).sample(range(len(examples)), cfg.max_examples))
        examples = [examples[i] for i in keep]
    return examples


def unconditional_groups(examples: list[Example]) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """PMI's denominator, log p(choice | "Answer:"), as requests: every distinct choice text once, in groups
    the size of an example's so they batch like the rest. Partial scoring (Winogrande) scores one shared
    suffix, so it has none."""
    texts = sorted({c for ex in examples if ex.suffix is None for c in ex.choices})
    width = max((len(ex.choices) for ex in examples), default=1)
    return texts, [[(UNCONDITIONAL, t) for t in texts[i:i + width]] for i in range(0, len(texts), width)]


def scored_example(ex: Example, scores: GroupScores, uncond: Optional[dict[str, float]] = None) -> ScoredExample:
    """An example's scores with the lengths its normalizations divide by (characters and UTF-8 bytes of
    each scored text, without its leading space, as OLMo counts) and, given `uncond` (choice text ->
    log p(choice | "Answer:")), PMI's denominators; partial scoring has none."""
    texts = [t[1:] if t.startswith(" ") else t for t in ex.scored_texts()]
    return ScoredExample(scores.logprobs, scores.n_tokens, [len(t) for t in texts], [len(t.encode("utf-8")) for t in texts],
                         ex.gold, [uncond[c] for c in ex.choices] if uncond is not None and ex.suffix is None else None)


class Encodings:
    """Each task's requests, this rank's share, tokenized once and scored at every checkpoint of a rung: its
    checkpoints share one tokenizer and one window, so tokenizing again at each would only cost time."""

    def __init__(self):
        self._encoded: dict[tuple, Encoded] = {}

    def of(self, tokenizer, name: str, examples: list[Example], max_len: int, shards: Shards) -> Encoded:
        key = (name, max_len, shards.rank, shards.world_size)
        if key not in self._encoded:
            mine = shards.take([ex.requests() for ex in examples] + unconditional_groups(examples)[1])
            try:  # an example this model cannot score, e.g. longer than its window, stops every rank
                self._encoded[key] = shards.together(lambda: encode_groups(tokenizer, mine, max_len))
            except ValueError as exc:
                raise TaskError(f"task {name}: {exc}") from None
        return self._encoded[key]


def evaluate_task(model, tokenizer, name: str, examples: list[Example], batch_size: int,
                  shards: Shards = Shards(), encodings: Optional[Encodings] = None) -> TaskResult:
    choices, _ = unconditional_groups(examples)
    encoded = (encodings or Encodings()).of(tokenizer, name, examples, model.config.max_position_embeddings, shards)
    scores = shards.gather(shards.run(model, lambda m: score_encoded(m, encoded, pad_id(tokenizer), batch_size)))
    uncond = dict(zip(choices, (lp for s in scores[len(examples):] for lp in s.logprobs)))
    scored = [scored_example(ex, s, uncond) for ex, s in zip(examples, scores)]
    warnings = []
    truncated = sum(s.truncated for s in scores[:len(examples)])
    if truncated:
        warnings.append(f"{name}: {truncated} of {len(examples)} contexts truncated from the left to fit "
                        f"the model's {model.config.max_position_embeddings} tokens")
    groups = TASKS[name].groups if name in TASKS else None
    if groups is None:
        return TaskResult({f"{name}:{k}": v for k, v in rc_metrics(scored).items()}, warnings)
    by_group: dict[str, list[ScoredExample]] = {}
    for ex, s in zip(examples, scored):
        by_group.setdefault(groups.group_of(ex), []).append(s)
    groups_metrics = {g: rc_metrics(v) for g, v in by_group.items()}
    absent = sorted(set(groups.weights) - set(by_group))
    if absent:
        warnings.append(f"{name}: no examples of group(s) {', '.join(absent)}; weights renormalised over the rest")
    metrics = {f"{name}:{k}": v for k, v in group_mean(groups_metrics, groups.weights).items()}
    for g, m in groups_metrics.items():
        metrics.update({f"{groups.names(name)[g]}:{k}": v for k, v in m.items()})
    return TaskResult(metrics, warnings)


def evaluate_model(model, tokenizer, *, lm_sets: Mapping[str, LMSet], tasks: Mapping[str, list[Example]],
                   batch_size: int, shards: Shards = Shards(), dtype: Optional[torch.dtype] = None,
                   encodings: Optional[Encodings] = None) -> list[tuple[str, float, list[str]]]:
    """(metric, value, warnings) for every eval set and task, the same on every rank of `shards`.

    `dtype` (e.g. torch.bfloat16) runs the forwards under autocast, as training does; None is fp32.
    `encodings` keeps the tasks' tokenized requests for the next checkpoint of the same rung.
    Forwards run eagerly even on a compiled model: eval shapes vary, and each would recompile it.
    """
    device = next(model.parameters()).device
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    out = []
    with autocast, torch.compiler.set_stance("force_eager"):
        for name, lm_set in lm_sets.items():
            try:
                r = heldout_loss(model, lm_set.sequences, n_bytes=lm_set.bytes_for(tokenizer), batch_size=batch_size,
                                 pad_id=pad_id(tokenizer), shards=shards)
            except ValueError as exc:  # e.g. sequences longer than this model's window
                raise TaskError(f"eval.lm_sets.{name}: {exc}") from None
            out += [(f"{name}_val:loss", r["loss"], []), (f"{name}_val:bpb", r["bpb"], [])]
        for name, examples in tasks.items():
            result = evaluate_task(model, tokenizer, name, examples, batch_size, shards, encodings)
            if shards.is_main:
                for warning in result.warnings:
                    log.warning(warning)
            out += [(metric, value, result.warnings) for metric, value in result.metrics.items()]
    return out


def as_records(results: Sequence[tuple[str, float, list[str]]], rung: RungInfo, step: int,
               chance: Mapping[str, float], keys: Mapping[str, dict]) -> list[dict]:
    """The docs/formats.md records of one checkpoint's (metric, value, warnings); `chance`: task -> the chance
    level its accuracy records carry (eval.tasks.chance_levels); `keys`: task or `<set>_val` -> its evaluation
    key (eval.keys.evaluation_keys; a task's groups carry the task's)."""
    keys = with_groups(keys)
    records = []
    for metric, value, warnings in results:
        task, _, kind = metric.partition(":")
        record = {**rung.base, "step": step, "tokens": step * rung.tokens_per_step,
                  "final": step >= rung.final_step, "metric": metric, "value": value}
        if task in keys:
            record[EVAL_KEY] = keys[task]
        if kind in ACCURACIES and task in chance:
            record["chance"] = chance[task]
        if warnings:
            record["warnings"] = warnings
        records.append(record)
    return records


def evaluate_checkpoint(checkpoint_dir: Path, *, lm_sets: Mapping[str, LMSet], tasks: Mapping[str, list[Example]],
                        cfg: EvalConfig, rung: RungInfo, step: Optional[int] = None,
                        shards: Shards = Shards(), encodings: Optional[Encodings] = None,
                        keys: Optional[Mapping[str, dict]] = None) -> list[dict]:
    """Records (docs/formats.md) of one checkpoint, each with its evaluation key from `keys` (as `as_records`);
    raises CheckpointError if it is incomplete."""
    step = step_of(checkpoint_dir) if step is None else step
    device = eval_device(cfg.device)
    model, tokenizer = load_checkpoint(checkpoint_dir, Path(cfg.tokenizer) if cfg.tokenizer else None, device)
    results = evaluate_model(model, tokenizer, lm_sets=lm_sets, tasks=tasks, batch_size=cfg.batch_size,
                             shards=shards, dtype=eval_dtype(cfg.precision, device), encodings=encodings)
    return as_records(results, rung, step, chance_levels(cfg), keys or {})


def eval_device(name: str) -> torch.device:
    """`eval.device`: auto is this process's GPU (LOCAL_RANK under torchrun) when one is visible, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise EvalError(f"eval.device={name}: expected auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EvalError(f"eval.device={name} but no CUDA device is visible (eval.device=auto uses one if any)")
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def eval_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """`eval.precision`: auto is bf16 autocast on a GPU and fp32 on the CPU."""
    if precision not in PRECISIONS:
        raise EvalError(f"eval.precision: expected one of {PRECISIONS}, got '{precision}'")
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.bfloat16 if bf16 else None


EVAL_KEY = "eval_key"  # a record's evaluation key (eval/keys.py)
SUPERSEDED = "superseded"  # true on a record whose checkpoint was evaluated again under another key
_torn_reported: set = set()  # (path, size) of results files whose cut-short last line was reported
_STEP = re.compile(r'"step":\s*(\d+)')


def _result_lines(path: Path) -> list[tuple[str, dict]]:
    """(line, record) of each record in a results file. A last line cut short (no newline, and not a record) is
    what a writer stopped mid-line leaves: it is dropped with a warning, and with it the other records of its
    step (the step it names, else the one before it), so that checkpoint is evaluated again whole and the next
    write leaves them out. Any other line that is not a record is an EvalError naming it."""
    text = path.read_text() if path.exists() else ""
    lines, out = text.splitlines(), []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not {"step", "metric", "value"} <= set(record):
                raise ValueError("not a results record (step, metric, value)")
        except ValueError as exc:
            if number < len(lines) or text.endswith("\n"):
                raise EvalError(f"{path}: line {number}: {exc}; fix or delete that line (its checkpoint is then "
                                f"evaluated again)") from None
            named = _STEP.search(line)
            step = int(named.group(1)) if named else out[-1][1]["step"] if out else None
            if (path, len(text)) not in _torn_reported:
                _torn_reported.add((path, len(text)))
                log.warning("%s: line %d is cut short (a writer stopped mid-line): dropped, with the other records "
                            "of step %s, which is evaluated again", path, number, step)
            return [(kept, r) for kept, r in out if r["step"] != step]
        out.append((line, record))
    return out


def read_results(rung_dir: Path) -> list[dict]:
    """The rung's current records: every one but those superseded by a later evaluation under another key."""
    return [record for _, record in _result_lines(Path(rung_dir) / RESULTS) if not record.get(SUPERSEDED)]


_NONE = object()  # no current record: unlike any key, None (a record written before keys) included


def write_results(rung_dir: Path, records: Sequence[dict]) -> int:
    """Add records; returns how many were written. A record whose (step, metric) has a current record with the
    same evaluation key is left out (re-running adds nothing twice); one with another key (a record without
    one included) is written, and the record it replaces is kept, marked superseded.

    The whole file is rewritten under a temporary name and renamed, under a lock, so a reader never
    sees half a record set.
    """
    path = Path(rung_dir) / RESULTS
    with FileLock(str(path) + ".lock"):
        old = _result_lines(path)
        current = {(r["step"], r["metric"]): r.get(EVAL_KEY) for _, r in old if not r.get(SUPERSEDED)}
        new = [r for r in records if current.get((r["step"], r["metric"]), _NONE) != r.get(EVAL_KEY)]
        if not new:
            return 0
        replaced = {(r["step"], r["metric"]) for r in new}
        lines = [json.dumps({**r, SUPERSEDED: True}) if (r["step"], r["metric"]) in replaced and not r.get(SUPERSEDED)
                 else line for line, r in old]
        atomic_write_text(path, "".join(line + "\n" for line in lines) + "".join(json.dumps(r) + "\n" for r in new))
    return len(new)


def is_done(rung_dir: Path, step: int, keys: Mapping[str, dict]) -> bool:
    """Whether the current results of this step hold every task and eval set of `keys` (eval.keys.evaluation_keys)
    under its key; a record under another key, or none (an older harness's), is evaluated again."""
    have = [(r["metric"].split(":")[0], r.get(EVAL_KEY)) for r in read_results(rung_dir) if r["step"] == step]
    return all((name, key) in have for name, key in keys.items())
