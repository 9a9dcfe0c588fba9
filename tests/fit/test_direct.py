"""method=direct (Krajewski et al. 2025) and the generic chain loop it runs on (fit/chain.py)."""
import numpy as np
import pandas as pd
import pytest

from fit import laws
from fit.chain import Points, Step, run_chain
from fit.config import FitConfig
from fit.methods import DIRECT
from fit.points import COLUMNS, PointSet
from fit.sources import load_points, table
from fit.sources.olmo import OLMO_TASKS
from fit.predict import choose_targets
from fit.targets import NAMED
from ladder.core.plan import Target

SIZES, MULTIPLIERS = (1e8, 2e8, 4e8, 8e8), (10, 20, 40)
TRUE = np.array([9.0, 10.0, 0.5, 0.5])  # log A, log B, alpha, beta of -log Q(N, D)


def true_acc(n, d, chance=0.25):
    return chance + (1 - chance) * np.exp(-laws.DIRECT_ND.f(np.array([[n], [d]], float), TRUE)[0])


def write_csv(tmp_path, noise=0.0, extra=()):
    rng = np.random.default_rng(0)
    rows = [{"run": f"{n:.0e}-{m}", "params": n, "tokens": n * m,
             "mmlu:acc": true_acc(n, n * m) + noise * rng.standard_normal()} for n in SIZES for m in MULTIPLIERS]
    path = tmp_path / "ladder.csv"
    pd.DataFrame(rows + list(extra)).to_csv(path, index=False)
    return load_points(str(path))


def test_direct_recovers_a_known_law_above_chance(tmp_path):
    ps = write_csv(tmp_path)
    target = Target("big", 7e9, 1.4e11)
    out = DIRECT(ps, [target], FitConfig(bootstrap=50))
    pred = out.predictions[0]
    assert pred["metric"] == "mmlu:acc" and pred["predicted"] == pytest.approx(true_acc(7e9, 1.4e11), abs=1e-4)
    assert pred["lower"] <= true_acc(7e9, 1.4e11) + 1e-4 and pred["upper"] >= true_acc(7e9, 1.4e11) - 1e-4
    assert out.fits["mmlu:acc:direct"]["law"] == "direct_nd" and out.fits["mmlu:acc:direct"]["chance"] == 0.25


def test_runs_at_or_below_chance_are_left_out_and_said(tmp_path):
    low = [{"run": "tiny-20", "params": 5e7, "tokens": 1e9, "mmlu:acc": 0.24}]
    out = DIRECT(write_csv(tmp_path, extra=low), [Target("big", 7e9, 1.4e11)], FitConfig(bootstrap=0))
    assert any("1 run(s) at or below chance left out" in w for w in out.warnings)
    assert out.predictions[0]["predicted"] == pytest.approx(true_acc(7e9, 1.4e11), abs=1e-4)


def test_a_declared_chain_is_fitted_bootstrapped_and_predicted_through_its_steps():
    """Two steps, the second fed by the first: a loss from (N, D), then an error from the loss."""
    n, d = np.meshgrid(SIZES, [20 * s for s in (0.5, 1, 2)])
    X = np.vstack([n.ravel(), (n * d).ravel()])
    loss_p, err_p = np.array([3.0, 4.0, -1.0, 0.3, 0.3]), np.array([2.0, 0.5, 0.9])
    L = laws.CHINCHILLA.f(X, loss_p)
    runs = np.arange(X.shape[1])
    tx = np.array([[7e9], [1.4e11]])
    steps = [Step("loss", laws.CHINCHILLA, Points(X, L, runs), [loss_p + 0.2], huber=1e-3, target_x=tx, output="c4:loss"),
             Step("err", laws.GADRE_ERR, Points(L[None, :], laws.GADRE_ERR.f(L[None, :], err_p), runs), [[1.0, 1.0, 1.0]],
                  fed_by="loss", output="avg:err")]
    ps = PointSet(pd.DataFrame(columns=COLUMNS), pd.DataFrame(), table.PROFILE, "-")  # no actuals
    out = run_chain("two", ps, [Target("big", 7e9, 1.4e11)], [str(r) for r in runs], steps, FitConfig(bootstrap=20))
    truth = laws.GADRE_ERR.f(laws.CHINCHILLA.f(tx, loss_p)[None, :], err_p)[0]
    err = next(p for p in out.predictions if p["metric"] == "avg:err")
    assert err["predicted"] == pytest.approx(truth, rel=1e-4)
    assert err["lower"] == pytest.approx(truth, rel=1e-3) and err["upper"] == pytest.approx(truth, rel=1e-3)
    assert out.steps["err"].target_x[0, 0] == pytest.approx(out.steps["loss"].target_value[0])


def test_direct_on_both_papers_data(shared):
    olmo = load_points(str(shared / "olmo-ladder" / "runs"))
    out = DIRECT(olmo, [NAMED["13B-5T"]], FitConfig(bootstrap=0))
    acc = pd.DataFrame(out.predictions).set_index("metric")
    assert set(acc.index) == {f"{t}:acc" for t in OLMO_TASKS}
    assert acc["actual"].notna().all() and ((acc["predicted"] > 0.2) & (acc["predicted"] < 1)).all()
    gadre = load_points(str(shared / "gadre-scaling"), dataset="rpj")
    targets = choose_targets(FitConfig(dataset="rpj"), gadre)
    err = pd.DataFrame(DIRECT(gadre, targets, FitConfig(bootstrap=0)).predictions)
    assert set(err["metric"]) == {"avg46:err", "avg17:err"} and len(err) == 4 and err["actual"].notna().all()
