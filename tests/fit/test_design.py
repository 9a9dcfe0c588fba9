"""fit.design: the error model behind `ladder design`, and the batched refit of many simulated ladders."""
import numpy as np
import pandas as pd
import pytest

from fit import design, design_accuracy, laws
from fit.fitting import fit_batched
from fit.methods import SIGMOID_BOUNDS, STEP1_BOUNDS
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


def test_batched_refit_at_different_inputs_per_row_matches_each_fit_alone():
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(2.0, 6.0, (3, 12)), axis=1)  # each refit's own losses
    y = laws.SIGMOID.f(x[None], np.array([-0.75, 4.0, 2.0, 1.0])) + 0.01 * rng.standard_normal(x.shape)
    start = np.tile([-0.75, 0.9, 3.0, 1.0], (3, 1))
    P, _, ok = fit_batched(laws.SIGMOID, x[None], y, np.ones_like(y), start, SIGMOID_BOUNDS)
    assert ok.all()
    for row, xi, yi in zip(P, x, y):
        alone, _, _ = fit_batched(laws.SIGMOID, xi[None], yi, np.ones((1, len(yi))), start[0], SIGMOID_BOUNDS)
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


def accuracy_model(size_sd=0.003, run_sd=0.002, acc_run_sd=0.005, acc_point_sd=0.005):
    """An accuracy error model around one known two-step law: test_holdout's true loss as the task loss, and its
    true_acc (floor 0.25, Acc = 0.25 + 0.75/(1 + exp(2(L - 4)))) as the sigmoid a/(1+exp(-k(L-L0))) + b."""
    sigmoid = np.array([[-0.75, 4.0, 2.0, 1.0]])
    return design_accuracy.AccuracyModel((design_accuracy.TaskPrior(
        "test", "derived", "smoke_val:loss", 0.25, model(size_sd, run_sd), sigmoid, acc_run_sd, acc_point_sd),))


def test_accuracy_of_a_known_two_step_law_is_recovered_and_its_error_grows_with_noise():
    n, d = grid([1e5, 2e5, 4e5, 8e5], [5, 10, 20])
    fit = design.loss_fit("best")
    exact = design_accuracy.simulate_accuracy(accuracy_model(0.0, 1e-9, 0.0, 1e-9), fit, n, d, (1e7, 2e8), 16)
    assert np.nanmax(np.abs(exact)) < 0.05  # points
    quiet = design.Expected.of(design_accuracy.simulate_accuracy(accuracy_model(), fit, n, d, (1e7, 2e8), 64))
    noisy = design.Expected.of(design_accuracy.simulate_accuracy(
        accuracy_model(0.01, 0.005, 0.02, 0.02), fit, n, d, (1e7, 2e8), 64))
    assert 0 < quiet.median < noisy.median and quiet.failed == 0
    assert noisy.low < 0 < noisy.high and noisy.p90 > 1  # the noisy ladder misses by points


def test_accuracy_is_refused_for_a_method_without_step_2_and_data_without_tasks(tmp_path, write_ladder):
    with pytest.raises(design.FitInputError, match="method=chinchilla: predicts no accuracy"):
        design_accuracy.step2_method("chinchilla")
    with pytest.raises(design.FitInputError, match="no ladder of the error model .* has task accuracies"):
        design_accuracy.measure_accuracy([load_points(str(write_ladder(tmp_path, tasks=False)))], n_laws=10)


def test_measure_accuracy_recovers_the_sigmoid_and_noise_of_a_lawful_ladder(tmp_path, write_ladder):
    from tests.fit.test_holdout import true_acc

    m = design_accuracy.measure_accuracy([load_points(str(write_ladder(tmp_path)))], n_laws=30)
    (task,) = m.tasks
    assert task.task == "derived" and task.intermediate == "smoke_val:loss" and task.chance == 0.25
    loss = np.linspace(3.0, 5.0, 5)
    median = np.median(laws.SIGMOID.f(loss[None, :], task.sigmoids.T[..., None]), axis=0)
    np.testing.assert_allclose(median, true_acc(loss), atol=0.02)
    assert task.run_sd < 0.01 and 0.001 < task.point_sd < 0.01  # the ladder's 0.5-point accuracy noise


@pytest.mark.slow  # 8 tasks' step-1 and step-2 fits on the OLMo exports: 10-20 s on a shared 2-core machine
def test_published_ladder_gives_an_accuracy_model_per_task(shared):
    m = design_accuracy.measure_accuracy([load_points(str(shared / "olmo-ladder" / "runs"))], n_laws=10)
    assert [t.task for t in m.tasks][:2] == ["mmlu", "hellaswag"] and len(m.tasks) == 8
    assert all(t.intermediate == f"{t.task}:bpb" for t in m.tasks)
    assert all(0 < t.run_sd < 0.02 for t in m.tasks)  # under 2 points
