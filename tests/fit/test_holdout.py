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
    assert "holdout=largest: every run of the largest size was left out of the fit" in md
    assert "smoke-64-smoke-M20 measured (error)" in md  # each held-out run's measured value and the error
    assert "holdout=largest: every run" in (out / "report.html").read_text()
    assert json.loads((out / "fits.json").read_text())["held_out"] == list(loss["target"])


def test_default_method_on_harness_data_predicts_named_targets(ladder):
    out = run_fit(FitConfig(results=str(ladder), bootstrap=0, out=str(ladder / "o"),
                            targets=[{"params": 2e6, "tokens": 4e7, "name": "smoke-96-M20"}]))
    preds = pd.read_csv(out / "predictions.csv").set_index("metric")
    assert set(preds.index) == {"smoke_val:loss", "derived:acc"} and (preds["target"] == "smoke-96-M20").all()
    assert preds.loc["smoke_val:loss", "predicted"] == pytest.approx(true_loss(2e6, 4e7), rel=0.03)
    assert "holdout=largest: every run" not in (out / "report.md").read_text()


def test_best_on_a_ladder_without_tasks_predicts_the_loss(tmp_path, capsys):
    out = run_fit(FitConfig(results=str(write_ladder(tmp_path, tasks=False)), holdout="largest", bootstrap=20))
    preds = pd.read_csv(out / "predictions.csv")
    assert set(preds["metric"]) == {"smoke_val:loss"} and len(preds) == 3
    assert (preds["predicted"] - preds["actual"]).abs().max() < 0.02 * preds["actual"].max()
    assert "only smoke_val:loss is predicted" in capsys.readouterr().out


def test_holdout_rejects_unknown_values(ladder):
    with pytest.raises(FitInputError, match="holdout=smallest"):
        run_fit(FitConfig(results=str(ladder), holdout="smallest", bootstrap=0))


def test_an_empty_results_file_is_said_and_a_nan_string_leaves_out_one_point(write_ladder, tmp_path):
    """A rung whose results.jsonl is 0 bytes is named in the warnings, not dropped in silence; a record whose
    value is the string "NaN" leaves out that one point, and the task's two-step fit pairs its other
    checkpoints with the loss at the same steps (a misaligned pair once failed every sigmoid start)."""
    ladder = write_ladder(tmp_path)
    empty = ladder / "rungs" / "smoke-32-smoke-M10" / "results.jsonl"
    empty.write_text("")
    torn = ladder / "rungs" / "smoke-48-smoke-M20" / "results.jsonl"
    recs = [json.loads(line) for line in torn.read_text().splitlines()]
    recs[5 * 2 + 1]["value"] = "NaN"  # step 6's accuracy
    torn.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = run_fit(FitConfig(results=str(ladder), method="olmo_two_step", bootstrap=0, out=str(ladder / "fit")))
    warnings = json.loads((out / "fits.json").read_text())["warnings"]
    assert any(f"{empty}: empty" in w for w in warnings)
    assert any("dropped 1 point(s) of run smoke-48-smoke-M20: value is NaN" in w for w in warnings)
    acc = pd.read_csv(out / "predictions.csv").query("metric == 'derived:acc'")
    assert len(acc) and np.isfinite(acc["predicted"]).all()
