"""Document-continuation tasks from held-out text: well-formed and deterministic for a seed."""
import json

import pytest

from eval.derived import derived_task, load_documents
from eval.tasks import TaskError

DOCS = [" ".join(f"w{d}_{i}" for i in range(40)) for d in range(12)]


def test_true_continuation_is_gold_and_distractors_come_from_other_documents():
    examples = derived_task(DOCS, n_examples=10, n_choices=4, context_words=5, continuation_words=3, seed=0)
    assert len(examples) == 10
    for ex in examples:
        doc = ex.context.split()[0].split("_")[0]
        assert ex.choices[ex.gold] == f" {doc}_5 {doc}_6 {doc}_7"
        assert len(set(ex.choices)) == 4
        assert all(not c.startswith(f" {doc}_") for i, c in enumerate(ex.choices) if i != ex.gold)


def test_deterministic_for_a_seed():
    a = derived_task(DOCS, n_examples=8, seed=3, context_words=5)
    assert a == derived_task(DOCS, n_examples=8, seed=3, context_words=5)
    assert a != derived_task(DOCS, n_examples=8, seed=4, context_words=5)
    assert len({ex.gold for ex in a}) > 1  # the gold position is shuffled


def test_too_few_usable_documents_is_an_error():
    with pytest.raises(TaskError, match="at least 4 are needed"):
        derived_task(DOCS[:3], context_words=5)
    with pytest.raises(TaskError, match="have >= 100 words"):
        derived_task(DOCS, context_words=90, continuation_words=10)


def test_documents_load_from_jsonl(tmp_path):
    path = tmp_path / "heldout.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS))
    assert load_documents(str(path)) == DOCS
    with pytest.raises(TaskError, match="no 'body' field"):
        load_documents(str(path), "body")
