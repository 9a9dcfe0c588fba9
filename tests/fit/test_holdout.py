"""holdout=largest on a small lawful ladder in the harness's own results.jsonl format."""
import json

import numpy as np
import pandas as pd
import pytest

from fit.config import FitConfig
from fit.errors import FitInputError
from fit.run import run_fit

SIZES = {"smoke-24": 1.2e5, "smoke-32": 2.4e5, "smoke-48": 5.0e5, "smoke-64": 9.0e5}
MULTIPLIERS = (5, 10, 20)


def true_loss(n, d):
    return 1.5 + 30 / n ** 0.3 + 200 / d ** 0.3


def true_acc(loss, floor=0.25):
    return floor + (1 - floor) / (1 + np.exp(2 * (loss - 4.0)))  # reaches 1 at loss 0, as step 2 assumes


def write_ladder(tmp_path, tasks=True, task="derived", chance=0.25, floor=0.25):
    """4 sizes x 3 multipliers, 10 evaluations per run, 0.3 % loss noise and 0.5-point accuracy noise;
    `<task>:acc` rises from `floor` and its records carry `chance` (None: none, as before eval wrote it)."""
    rng = np.random.default_rng(0)
    for size, n in SIZES.items():
        for m in MULTIPLIERS:
            rung = tmp_path / "rungs" / f"{size}-smoke-M{m}"
            rung.mkdir(parents=True)
            recs = []
            for step in range(1, 11):
                d = n * m * step / 10
                loss = true_loss(n, d) * (1 + 0.003 * rng.standard_normal())
                base = {"run": rung.name, "size": size, "dataset": "smoke", "params": n, "run_tokens": n * m,
                        "multiplier": m, "step": 100 * step, "tokens": d, "final": step == 10}
                acc = {**base, "metric": f"{task}:acc", "value": true_acc(loss, floor) + 0.005 * rng.standard_normal()}
                recs += [{**base, "metric": "smoke_val:loss", "value": loss}]
                recs += [acc if chance is None else {**acc, "chance": chance}] if tasks else []
            (rung / "results.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return tmp_path


@pytest.fixture
def ladder(tmp_path):
    return write_ladder(tmp_path)


@pytest.mark.parametrize("method", ["best", "chinchilla", "olmo_two_step"])
def test_holdout_predicts_the_largest_rung_near_the_truth(ladder, method):
    out = run_fit(FitConfig(results=str(ladder), method=method, holdout="largest", bootstrap=30,
                            out=str(ladder / method)))
    preds = pd.read_csv(out / "predictions.csv")
    assert set(preds["target"]) == {f"smoke-64-smoke-M{m}" for m in MULTIPLIERS}
    loss = preds[preds["metric"] == "smoke_val:loss"]
    assert len(loss) == 3 and loss["actual"].notna().all()
    truth = [true_loss(SIZES["smoke-64"], SIZES["smoke-64"] * float(t.split("M")[-1])) for t in loss["target"]]
    np.testing.assert_allclose(loss["predicted"], truth, rtol=0.02)
    np.testing.assert_allclose(loss["actual"], truth, rtol=0.02)
    if method != "chinchilla":
        acc = preds[preds["metric"] == "derived:acc"]
        assert len(acc) == 3 and (acc["predicted"] - acc["actual"]).abs().max() < 0.03
    md = (out / "report.md").read_text()
    assert "## Backtest (held-out runs)" in md and "rel_error_%" in md
    assert "Backtest (held-out runs)" in (out / "report.html").read_text()
    assert json.loads((out / "fits.json").read_text())["held_out"] == list(loss["target"])


def test_default_method_on_harness_data_predicts_named_targets(ladder):
    out = run_fit(FitConfig(results=str(ladder), bootstrap=0, out=str(ladder / "o"),
                            targets=[{"params": 2e6, "tokens": 4e7, "name": "smoke-96-M20"}]))
    preds = pd.read_csv(out / "predictions.csv").set_index("metric")
    assert set(preds.index) == {"smoke_val:loss", "derived:acc"} and (preds["target"] == "smoke-96-M20").all()
    assert preds.loc["smoke_val:loss", "predicted"] == pytest.approx(true_loss(2e6, 4e7), rel=0.03)
    assert "## Backtest" not in (out / "report.md").read_text()


def test_best_on_a_ladder_without_tasks_predicts_the_loss(tmp_path, capsys):
    out = run_fit(FitConfig(results=str(write_ladder(tmp_path, tasks=False)), holdout="largest", bootstrap=20))
    preds = pd.read_csv(out / "predictions.csv")
    assert set(preds["metric"]) == {"smoke_val:loss"} and len(preds) == 3
    assert (preds["predicted"] - preds["actual"]).abs().max() < 0.02 * preds["actual"].max()
    assert "only smoke_val:loss is predicted" in capsys.readouterr().out


def test_holdout_rejects_unknown_values(ladder):
    with pytest.raises(FitInputError, match="holdout=smallest"):
        run_fit(FitConfig(results=str(ladder), holdout="smallest", bootstrap=0))
