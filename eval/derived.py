"""Tasks derived from held-out documents of the training data, learnable by tiny CPU models.

An example is a document's opening as context, and as choices its true continuation and spans at
the same word offset in other documents. Benchmarks like HellaSwag sit at chance for models of a
few million parameters; this task moves with scale and training already on the smoke ladder, so
the downstream half of the pipeline (accuracy vs loss fits) has a real signal. Deterministic for
a seed and a list of documents.
"""
from __future__ import annotations

import random

from eval.examples import Example, TaskError, read_local


def load_documents(path: str, text_field: str = "text") -> list[str]:
    """Held-out documents from a local file (jsonl / json.gz / parquet / csv) with a text column."""
    rows = read_local(path, "held-out documents")
    if text_field not in rows.columns:
        raise TaskError(f"held-out documents: {path} has no '{text_field}' field")
    return [t for t in rows.column(text_field) if t]


def derived_task(docs: list[str], *, n_examples: int = 200, n_choices: int = 4, context_words: int = 24,
                 continuation_words: int = 8, seed: int = 0) -> list[Example]:
    need = context_words + continuation_words
    words = [d.split() for d in docs]
    usable = [w for w in words if len(w) >= need]
    if len(usable) < n_choices:
        raise TaskError(f"derived task: {len(usable)} held-out documents have >= {need} words; "
                        f"at least {n_choices} are needed")
    rng = random.Random(seed)
    order = rng.sample(range(len(usable)), min(n_examples, len(usable)))
    examples = []
    for i in order:
        truth = " " + " ".join(usable[i][context_words:need])
        spans = {truth}
        others = [j for j in range(len(usable)) if j != i]
        rng.shuffle(others)
        choices = [truth]
        for j in others:
            span = " " + " ".join(usable[j][context_words:need])
            if span not in spans:  # a duplicate distractor would make the example unanswerable
                spans.add(span)
                choices.append(span)
            if len(choices) == n_choices:
                break
        if len(choices) < n_choices:
            continue
        rng.shuffle(choices)
        examples.append(Example(" ".join(usable[i][:context_words]), tuple(choices), choices.index(truth)))
    if not examples:
        raise TaskError("derived task: no example has enough distinct distractors")
    return examples
