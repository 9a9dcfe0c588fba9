"""Metric definitions on hand-made log-likelihoods."""
import math

import pytest

from eval.metrics import ScoredExample, example_metrics, group_mean, rc_metrics


def test_each_normalisation_can_pick_a_different_choice():
    # raw prefers choice 0; per token choice 1; per character (len_norm) choice 2; PMI choice 1.
    ex = ScoredExample(logprobs=[-4.0, -6.0, -9.0], n_tokens=[1, 4, 3], n_chars=[2, 5, 10], n_bytes=[2, 5, 12],
                       gold=2, uncond=[-1.0, -8.0, -9.5])
    m = example_metrics(ex)
    assert (m["acc_raw"], m["acc_token"], m["acc"], m["acc_pmi"]) == (0.0, 0.0, 1.0, 0.0)
    assert m["bpb"] == pytest.approx(9.0 / 12 / math.log(2))
    z = sum(math.exp(x) for x in ex.logprobs)
    assert m["gold_prob"] == pytest.approx(math.exp(-9.0) / z)
    m1 = example_metrics(ScoredExample([-4.0, -6.0, -9.0], [1, 4, 3], [2, 5, 10], [2, 5, 12], gold=1,
                                       uncond=[-1.0, -8.0, -9.5]))
    assert (m1["acc_token"], m1["acc_pmi"]) == (1.0, 1.0)


def test_averages_over_examples_and_weighted_groups():
    right = ScoredExample([-1.0, -5.0], [1, 1], [1, 1], [1, 1], gold=0)
    wrong = ScoredExample([-1.0, -5.0], [1, 1], [1, 1], [1, 1], gold=1)
    assert rc_metrics([right, wrong, wrong, right])["acc"] == 0.5
    assert rc_metrics([right])["acc_pmi"] == 1.0  # no unconditional scores: PMI ranks like raw
    a, b = rc_metrics([right]), rc_metrics([wrong])
    assert group_mean({"x": a, "y": b}, {"x": 0.75, "y": 0.25})["acc"] == 0.75
    assert group_mean({"x": a}, {"x": 0.75, "y": 0.25})["acc"] == 1.0  # renormalised over groups present
    with pytest.raises(ValueError):
        rc_metrics([])
