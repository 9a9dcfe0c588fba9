"""fit.design: the error model behind `ladder design`, and the batched refit of many simulated ladders."""
import numpy as np
import pandas as pd
import pytest

from fit import design, laws
from fit.fitting import fit_batched
from fit.methods import STEP1_BOUNDS
from fit.sources import load_points

TRUE = np.array([np.log(30.0), np.log(200.0), 0.3, 0.3, 1.5])  # test_holdout.true_loss as TRUTH's parameters


def model(size_sd=0.003, run_sd=0.002, spread=0.0):
    """An error model around one known law."""
    rng = np.random.default_rng(1)
    draws = TRUE + spread * rng.standard_normal((50, 5)) * np.array([0.1, 0.1, 0.01, 0.01, 0.05])
    return design.ErrorModel(draws, size_sd, (np.log(run_sd), 0.0), (run_sd, run_sd), pd.DataFrame(), ("test",))


def grid(sizes, mults):
    n = np.repeat(np.asarray(sizes, float), len(mults))
    return n, n * np.tile(np.asarray(mults, float), len(sizes))


def test_batched_refit_of_different_values_matches_each_fit_alone():
    n, d = grid([1e5, 2e5, 4e5, 8e5], [5, 10, 20])
    X = np.vstack([n, d])
    rng = np.random.default_rng(0)
    ys = laws.OLMO_ND.f(X, TRUE) * np.exp(0.003 * rng.standard_normal((3, len(n))))
    P, _, ok = fit_batched(laws.OLMO_ND, X, ys, np.ones_like(ys), np.tile(TRUE, (3, 1)), STEP1_BOUNDS, 1e-3)
    assert ok.all()
    for row, y in zip(P, ys):
        alone, _, _ = fit_batched(laws.OLMO_ND, X, y, np.ones((1, len(y))), TRUE, STEP1_BOUNDS, 1e-3)
        np.testing.assert_allclose(row, alone[0], rtol=1e-6)


def test_noiseless_ladder_predicts_its_law_exactly():
    n, d = grid([1e5, 2e5, 4e5, 8e5], [5, 10, 20])
    errors = design.simulate(model(0.0, 1e-9), design.loss_fit("best"), n, d, (1e7, 2e8), draws=16)
    assert np.nanmax(np.abs(errors)) < 1e-4


def test_expected_error_grows_with_noise_and_distance_to_the_target():
    n, d = grid([1e5, 2e5, 4e5, 8e5], [5, 10, 20])
    fit = design.loss_fit("best")
    near = design.Expected.of(design.simulate(model(), fit, n, d, (2e6, 4e7), draws=64))
    far = design.Expected.of(design.simulate(model(), fit, n, d, (1e8, 2e9), draws=64))
    noisy = design.Expected.of(design.simulate(model(0.01, 0.005), fit, n, d, (2e6, 4e7), draws=64))
    assert 0 < near.median < far.median and near.median < noisy.median
    assert near.low < 0 < near.high and near.p90 >= near.median


def test_a_size_closer_to_the_target_predicts_better_at_equal_rungs():
    fit = design.loss_fit("best")
    small = design.Expected.of(design.simulate(model(), fit, *grid([1e5, 2e5, 4e5], [5, 10, 20]), (1e8, 2e9), 64))
    large = design.Expected.of(design.simulate(model(), fit, *grid([4e5, 8e5, 1.6e6], [5, 10, 20]), (1e8, 2e9), 64))
    assert large.median < small.median


def test_too_few_rungs_and_a_method_without_a_loss_law_are_refused():
    with pytest.raises(design.FitInputError, match="at least 6"):
        design.simulate(model(), design.loss_fit("best"), *grid([1e5, 2e5], [5, 10]), (1e8, 2e9))
    with pytest.raises(design.FitInputError, match="method=direct"):
        design.loss_fit("direct")


def test_measure_recovers_the_law_and_noise_of_a_lawful_ladder(tmp_path, write_ladder):
    m = design.measure([load_points(str(write_ladder(tmp_path)))], n_laws=40)
    assert len(m.laws) >= 30 and m.noise["runs"].tolist() == [3, 3, 3, 3]
    X = np.array([[1e7], [2e8]])
    truth = laws.OLMO_ND.f(X, TRUE)[0]
    median = np.median(laws.OLMO_ND.f(X, m.laws.T[..., None])[:, 0])
    assert abs(median / truth - 1) < 0.05
    assert 1e-4 < m.run_sd_at(2e5) < 0.01 and m.size_sd < 0.01  # the ladder's 0.3 % noise, not more


def test_published_ladders_give_a_measured_model(shared):
    m = design.measure([load_points(str(shared / "olmo-ladder" / "runs"))], n_laws=20)
    ladder = m.noise[m.noise["reruns"] > 0]
    assert len(ladder) == 4 and (ladder["seed_sd"] < 0.002).all()  # the 1xC reruns: a few 0.01 % apart
    # the misfit across D, which a fit faces as well as the seed's noise, is the larger
    assert (ladder["run_sd"] == np.maximum(ladder["seed_sd"], ladder["residual_sd"])).all()
    assert (ladder["residual_sd"] > ladder["seed_sd"]).any()
