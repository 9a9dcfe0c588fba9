"""The batched bootstrap refit against per-resample scipy fits of the resampled runs (the old,
one-resample-at-a-time implementation): same optimum per resample, same intervals."""
import numpy as np
import pytest

from fit import laws
from fit.fitting import fit_batched, fit_huber_log, fit_least_squares, quantile_intervals, resample_counts
from fit.methods import SIGMOID_BOUNDS, STEP1_BOUNDS, STEP1_START
from fit.sources import load_points
from fit.runs import RunTable, fit_runs
from fit.targets import NAMED

TARGET = NAMED["13B-5T"]
TX = np.array([[TARGET.params], [TARGET.tokens]])


def _setup(shared):
    ps = load_points(str(shared / "olmo-ladder" / "runs"))
    runs = fit_runs(ps, [TARGET])
    table = RunTable(ps, runs)
    X, y, _ = table.finals(runs, "c4_en:loss")
    xs, ys, owner = table.checkpoints(runs, "c4_en:loss", "mmlu:acc")
    xs, ys = np.append(xs, 0.0)[None, :], np.append(ys, 1.0)
    s1 = fit_huber_log(laws.OLMO_ND, X, y, [STEP1_START], STEP1_BOUNDS)
    s2 = fit_least_squares(laws.SIGMOID, xs, ys, [[-0.75, 0.9, 3.0, 1.0]], SIGMOID_BOUNDS)
    return len(runs), X, y, xs, ys, owner, s1, s2


def _batched(n_runs, X, y, xs, ys, owner, s1, s2, counts):
    P1, c1, ok1 = fit_batched(laws.OLMO_ND, X, y, counts, s1.params, STEP1_BOUNDS, delta=1e-3)
    W2 = np.hstack([counts[:, owner], np.ones((len(counts), 1))])
    P2, c2, ok2 = fit_batched(laws.SIGMOID, xs, ys, W2, s2.params, SIGMOID_BOUNDS)
    loss = laws.OLMO_ND.f(TX, P1.T[..., None])[:, 0]
    acc = laws.SIGMOID.f(loss[None, :, None], P2.T[..., None])[:, 0]
    return loss, acc, c1, c2, ok1 & ok2


def _scipy(n_runs, X, y, xs, ys, owner, s1, s2, count):
    """One resample the old way: the resampled run list, duplicates repeated, refitted from the full optimum."""
    f1 = fit_huber_log(laws.OLMO_ND, X, y, [s1.params], STEP1_BOUNDS, weights=count)
    pick = np.concatenate([np.repeat(np.flatnonzero(owner == i), int(k)) for i, k in enumerate(count)]
                          + [[xs.shape[1] - 1]])
    f2 = fit_least_squares(laws.SIGMOID, xs[:, pick], ys[pick], [s2.params], SIGMOID_BOUNDS)
    loss = f1.predict(TX)[0]
    return loss, f2.predict(np.array([[loss]]))[0], f1.loss, f2.loss


def test_batched_refit_finds_each_resamples_optimum(shared):
    data = _setup(shared)
    counts = resample_counts(data[0], 6, seed=1)
    loss, acc, c1, c2, ok = _batched(*data, counts)
    assert ok.all()
    for b, count in enumerate(counts):
        ref_loss, ref_acc, ref_c1, ref_c2 = _scipy(*data, count)
        assert c1[b] <= ref_c1 * (1 + 1e-6) and 2 * c2[b] <= ref_c2 * (1 + 1e-6)  # as low as scipy's optimum
        assert loss[b] == pytest.approx(ref_loss, rel=2e-3)
        assert acc[b] == pytest.approx(ref_acc, abs=2e-3)


@pytest.mark.slow
def test_batched_intervals_match_per_resample_scipy(shared):
    data = _setup(shared)
    counts = resample_counts(data[0], 300, seed=0)
    loss, acc, *_ = _batched(*data, counts)
    ref = np.array([_scipy(*data, c)[:2] for c in counts])
    fast = quantile_intervals({"loss": loss, "acc": acc}, 0.9)
    slow = quantile_intervals({"loss": ref[:, 0], "acc": ref[:, 1]}, 0.9)
    for k in ("loss", "acc"):
        width = slow[k][1] - slow[k][0]
        assert abs(fast[k][0] - slow[k][0]) < 0.05 * width and abs(fast[k][1] - slow[k][1]) < 0.05 * width, k


@pytest.mark.parametrize("law", [laws.OLMO_ND, laws.OLMO_FLOPS, laws.SIGMOID, laws.SINGLE_STEP, laws.CHINCHILLA,
                                 laws.GADRE_LOSS, laws.GADRE_ERR, laws.DIRECT_ND], ids=lambda law: law.name)
def test_every_law_evaluates_a_batch_of_parameters_like_one_at_a_time(law):
    rng = np.random.default_rng(0)
    k = {"olmo_nd": 2, "single_step": 2, "olmo_single_step": 2, "chinchilla": 2, "gadre_loss": 2,
         "direct_nd": 2}.get(law.name, 1)
    X = np.exp(rng.uniform(2, 4, (k, 7)))
    P = rng.uniform(0.1, 0.5, (3, len(law.params)))
    f, g = law.f(X, P.T[..., None]), law.grad(X, P.T[..., None])
    assert f.shape == (3, 7) and g.shape == (3, 7, len(law.params))
    for b, p in enumerate(P):
        np.testing.assert_allclose(f[b], law.f(X, p))
        np.testing.assert_allclose(g[b], law.grad(X, p))
        eps = 1e-6 * np.maximum(1, np.abs(p))
        fd = np.stack([(law.f(X, p + e) - law.f(X, p - e)) / (2 * h) for e, h in zip(np.diag(eps), eps)], axis=-1)
        np.testing.assert_allclose(law.grad(X, p), fd, rtol=1e-4, atol=1e-8)
