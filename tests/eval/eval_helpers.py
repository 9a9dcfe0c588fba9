"""What the eval tests share besides fixtures: imported by name (conftest.py puts this folder on the path)."""
from eval.scoring import encode_groups, pad_id, score_encoded


def score_groups(model, tokenizer, groups, *, batch_size: int = 8, max_len: int | None = None):
    """Score every (context, continuation) request of every group, as evaluation does; `batch_size` counts
    groups per forward."""
    encoded = encode_groups(tokenizer, groups, max_len or model.config.max_position_embeddings)
    return score_encoded(model, encoded, pad_id(tokenizer), batch_size)
