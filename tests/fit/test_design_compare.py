"""fit.design_compare: how surely a ladder decides between two variants a difference apart."""
import numpy as np
import pytest

from fit import design_compare, joint
from tests.fit.test_design import grid, model

TARGET = (1e7, 2e8)


def p_right(difference, sizes=(1e5, 2e5, 4e5, 8e5), mults=(5, 10, 20), noise=(0.003, 0.002), draws=128):
    n, d = grid(sizes, mults)
    adv = design_compare.simulate_decision(model(*noise, spread=1.0), n, d, TARGET, difference, draws)
    return design_compare.Decision.of(adv)


def test_no_difference_is_a_coin_toss_and_a_large_one_is_always_called():
    none, large = p_right(0.0), p_right(0.1)
    assert 0.35 <= none.p <= 0.65 and none.failed == 0
    assert large.p >= 0.98
    assert large.advantage == pytest.approx(0.1, rel=0.2)  # the fit finds the difference it was given


def test_the_chance_of_the_right_call_rises_with_the_difference_and_with_the_ladder():
    ps = [p_right(d).p for d in (0.0, 0.005, 0.01, 0.03)]
    assert ps == sorted(ps) and ps[-1] - ps[0] > 0.3
    # each size's offset is drawn apart for each variant: more sizes average more of it away
    small = p_right(0.008, sizes=(1e5, 2e5, 4e5), mults=(5, 10, 20), noise=(0.006, 0.004), draws=256)
    large = p_right(0.008, sizes=(1e5, 1.4e5, 2e5, 2.8e5, 4e5, 5.6e5, 8e5, 1.1e6), mults=(5, 10, 20, 40),
                    noise=(0.006, 0.004), draws=256)
    assert large.p > small.p + 0.05


def test_the_batched_fit_is_compares_joint_fit():
    """The thinned, batched starts end where fit.joint.fit (compare's, from its full start grid, polished) ends."""
    n, d = grid((1e5, 2e5, 4e5), (5, 10, 20))
    m = model(0.006, 0.004, spread=1.0)
    draws = 6
    adv = design_compare.simulate_decision(m, n, d, TARGET, 0.01, draws, seed=3)
    theta = m.laws[np.random.default_rng(3).integers(0, len(m.laws), draws)]
    clean = design_compare.design.TRUTH.f(np.vstack([n, d]), theta.T[..., None])
    at = design_compare.design.TRUTH.f(np.array([[TARGET[0]], [TARGET[1]]]), theta.T[..., None])[:, 0]
    y = np.hstack([clean * np.exp(design_compare._noise(m, n, d, draws, 3, 0)),
                   (1 - 0.01 / at)[:, None] * clean * np.exp(design_compare._noise(m, n, d, draws, 3, 1))])
    X = np.vstack([np.tile(n, 2), np.tile(d, 2), np.repeat([0.0, 1.0], len(n))])
    for i in range(draws):
        data = joint.Data("loss", design_compare.VARIANTS, X, y[i], [("A", "r")] * len(X[0]))
        jf = joint.fit(design_compare.JOINT, data)
        p = jf.predict(np.array([[TARGET[0]] * 2, [TARGET[1]] * 2, [0.0, 1.0]]))
        # the same call, and the same advantage but where 300 iterations stop short of the polish (within 5 %)
        assert np.sign(adv[i]) == np.sign(p[0] - p[1]) and adv[i] == pytest.approx(p[0] - p[1], rel=0.05)


def test_the_variants_noise_is_their_own_and_the_same_in_every_candidate():
    m = model(0.006, 0.004)
    n, d = grid((1e5, 2e5, 4e5), (5, 10, 20))
    a, b = (design_compare._noise(m, n, d, 256, 0, v) for v in (0, 1))
    assert abs(np.corrcoef(a[:, 0], b[:, 0])[0, 1]) < 0.2  # different runs: independent
    more_n, more_d = grid((1e5, 2e5, 4e5, 8e5), (5, 10, 20))
    np.testing.assert_array_equal(design_compare._noise(m, more_n, more_d, 256, 0, 1)[:, :len(n)], b)
