"""Held-out loss: a direct definition, and the same numbers for any batch size."""
import math

import numpy as np
import pytest
import torch

import eval.lm_loss
from eval.lm_loss import heldout_loss


@pytest.mark.parametrize("chunk", [4096, 5])  # one chunk a sequence; chunks that split sequences unevenly
def test_loss_and_bpb_match_direct_definition_for_any_batch_size(tokenizer, model, monkeypatch, chunk):
    monkeypatch.setattr(eval.lm_loss, "CHUNK_TOKENS", chunk)
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, len(tokenizer), size=n) for n in (20, 20, 33, 7, 20, 64)]
    nll = count = 0.0
    for s in seqs:
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor(s)[None]).logits[0], -1)
        nll -= sum(logp[j - 1, s[j]].item() for j in range(1, len(s)))
        count += len(s) - 1
    results = [heldout_loss(model, seqs, n_bytes=500, batch_size=b) for b in (1, 2, 4, 8)]
    for r in results:
        assert r["loss"] == pytest.approx(nll / count, rel=1e-6)
        assert r["bpb"] == pytest.approx(nll / math.log(2) / 500, rel=1e-6)
        assert r["tokens"] == count


def test_bad_sequences_are_errors(model):
    with pytest.raises(ValueError, match="more than the model's 64"):
        heldout_loss(model, [np.zeros(65, dtype=np.int64)])
    with pytest.raises(ValueError, match="no sequences"):
        heldout_loss(model, [])
    with pytest.raises(ValueError, match="at least 2"):
        heldout_loss(model, [[1]])
