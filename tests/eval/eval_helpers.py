"""What the eval tests share besides fixtures: imported by name (conftest.py puts this folder on the path)."""
from eval.scoring import encode_groups, pad_id, score_encoded
from ladder.orchestration.compose import load

RUNG = "smoke-24-smoke-M5"  # a rung of the smoke ladder (the conftest's `ladder_dir` holds it)
DOCS = ["The river runs past the old mill and the children watch the boats go by in the morning light " * 2,
        "A recipe for bread: mix flour, water, salt and yeast, knead the dough, let it rise, then bake it " * 2,
        "The committee met on Tuesday to discuss the budget, and the chair asked for a vote on each item " * 2,
        "Stars are huge balls of hot gas; the nearest one is the Sun, which gives the Earth heat and light " * 2,
        "She opened the window because the room was too warm, and a cool breeze came in from the garden " * 2]


def config(out_dir, *overrides):
    """The composed config that evaluates `ladder_dir`'s rung on a small derived task from its held-out DOCS."""
    return load([f"out_dir={out_dir}", f"eval.derived.docs={out_dir}/heldout.jsonl", "eval.derived.context_words=8",
                 "eval.derived.n_choices=3", *overrides])


def score_groups(model, tokenizer, groups, *, batch_size: int = 8, max_len: int | None = None):
    """Score every (context, continuation) request of every group, as evaluation does; `batch_size` counts
    groups per forward."""
    encoded = encode_groups(tokenizer, groups, max_len or model.config.max_position_embeddings)
    return score_encoded(model, encoded, pad_id(tokenizer), batch_size)
