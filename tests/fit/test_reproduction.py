"""Acceptance: the two papers' published numbers, reproduced from their released data."""
import pandas as pd
import pytest

from fit.config import FitConfig
from fit.methods import OLMO_TWO_STEP, gadre
from fit.sources import load_points
from fit.targets import NAMED
from fit.predict import choose_targets

PUBLISHED_13B = {"mmlu": 51.3, "hellaswag": 85.3, "arc_challenge": 52.7, "arc_easy": 77.2, "piqa": 82.1,
                 "csqa": 77.6, "socialiqa": 59.9, "openbookqa": 44.9}


def test_olmo_two_step_reproduces_published_13b_table(shared):
    ps = load_points(str(shared / "olmo-ladder" / "runs"))
    out = OLMO_TWO_STEP(ps, [NAMED["13B-5T"]], FitConfig(bootstrap=0))
    acc = {p["metric"].split(":")[0]: 100 * p["predicted"] for p in out.predictions if p["metric"].endswith(":acc")}
    for task, published in PUBLISHED_13B.items():
        assert acc[task] == pytest.approx(published, abs=0.1), task


def test_a_fit_never_takes_a_run_as_large_as_a_target(shared):
    """The paper fits its 16 ladder runs for each target: naming 7B-4T alone must not let the 13B run in."""
    ps = load_points(str(shared / "olmo-ladder" / "runs"))
    cfg = FitConfig(bootstrap=0)
    both = OLMO_TWO_STEP(ps, [NAMED["7B-4T"], NAMED["13B-5T"]], cfg)
    assert len(both.runs) == 16 and not any(r.startswith("13B") for r in both.runs)
    for name in ("7B-4T", "13B-5T"):
        alone = OLMO_TWO_STEP(ps, [NAMED[name]], cfg)
        assert alone.runs == both.runs, name
        assert [p["predicted"] for p in alone.predictions] == [p["predicted"] for p in both.predictions if p["target"] == name]
    with_13b = OLMO_TWO_STEP(ps, [NAMED["7B-4T"]], FitConfig(bootstrap=0, include=["13B-5T"]))
    assert len(with_13b.runs) == 17  # a run at or above a target enters only when listed


@pytest.mark.parametrize("dataset,expected", [
    ("rpj", {("1.4B", "c4_val:loss"): 0.71, ("6.9B", "c4_val:loss"): 0.73,
             ("1.4B", "avg17:err"): 3.64, ("6.9B", "avg17:err"): 0.05}),
    ("c4_original", {("1.4B", "c4_val:loss"): 1.50, ("6.9B", "c4_val:loss"): 4.30}),
])
def test_gadre_reproduces_published_relative_errors(shared, dataset, expected):
    ps = load_points(str(shared / "gadre-scaling"), dataset=dataset)
    targets = choose_targets(FitConfig(dataset=dataset), ps)
    assert len(targets) == 2  # the over-trained 1.4B and the 6.9B run
    preds = pd.DataFrame(gadre(ps, targets, FitConfig(bootstrap=0)).predictions)
    preds["size"] = preds["target"].map(lambda t: "6.9B" if "7b" in t else "1.4B")
    for (size, metric), rel in expected.items():
        row = preds[(preds["size"] == size) & (preds["metric"] == metric)].iloc[0]
        assert 100 * abs(row["predicted"] - row["actual"]) / row["actual"] == pytest.approx(rel, abs=0.02)
