"""Ladders of other shapes than the papers' (issue 32): few sizes, one tokens-per-parameter ratio, one D, one row per
checkpoint, a column a method needs missing. Each answers where an answer exists, with the law its runs identify and
a warning that says which; refuses, naming what to add, where none does; and is never silently wrong."""
import re

import numpy as np
import pandas as pd
import pytest

from fit import laws
from fit.chain import Points, Step, run_chain
from fit.config import FitConfig
from fit.errors import FitInputError
from fit.methods import DIRECT, OLMO_TWO_STEP_FLOPS
from fit.points import COLUMNS, PointSet
from fit.predict import method_named, predict
from fit.present.report import FIRST_SCREEN, warning_groups
from fit.run import summary
from fit.runs import gadre_fit_sets
from fit.sources import load_points, table
from ladder.core.plan import Target


def loss(n, d):
    return 1.8 + 400 / n ** 0.34 + 410 / d ** 0.28


def acc(n, d, chance=0.25):
    return chance + (1 - chance) / (1 + np.exp(3 * (loss(n, d) - 3.0)))


def write(tmp_path, rows, name="ladder.csv"):
    pd.DataFrame(rows).to_csv(tmp_path / name, index=False)
    return load_points(str(tmp_path / name))


def noisy(rows, key="c4:loss", sd=0.003):
    rng = np.random.default_rng(0)
    return [{**r, key: r[key] * (1 + sd * rng.standard_normal())} for r in rows]


def first_screen(warnings):
    return [w for title, _, items in warning_groups(warnings) if title in FIRST_SCREEN for w in items]


@pytest.fixture
def three_sizes(tmp_path):
    """An architecture ablation's shape: 3 sizes, one multiplier (M = 80), a final row per run."""
    rows = [{"params": n, "tokens": 80 * n, "c4:loss": loss(n, 80 * n), "hellaswag:acc": acc(n, 80 * n),
             "hellaswag:chance": 0.25} for n in (1e8, 2e8, 4e8)]
    return write(tmp_path, noisy(rows))


@pytest.mark.parametrize("method", ["best", "chinchilla", "olmo_two_step", "direct", "gadre"])
def test_a_three_size_one_multiplier_ladder_answers_with_a_reduced_law(three_sizes, method):
    """Before: `3 run(s) for a law with 5 parameters; need at least 6` (direct: 4), exit 2."""
    target = Target("next", 8e8, 80 * 8e8)
    out = predict(method_named(method), three_sizes, [target], FitConfig(bootstrap=40))
    said = [w for w in first_screen(out.warnings) if "law reduced to" in w]
    assert said and "one tokens-per-parameter ratio (M = 80)" in said[0] and "3 run(s)" in said[0]
    preds = {p["metric"]: p for p in out.predictions}
    if method != "direct":
        assert preds["c4:loss"]["predicted"] == pytest.approx(loss(8e8, 6.4e10), rel=0.03)
        assert preds["c4:loss"]["lower"] < preds["c4:loss"]["predicted"] < preds["c4:loss"]["upper"]
    if method in ("best", "olmo_two_step", "direct"):  # gadre's error law is another shape than this logistic
        assert preds["hellaswag:acc"]["predicted"] == pytest.approx(acc(8e8, 6.4e10), abs=0.03)
    assert ("hellaswag:acc" in preds) == (method != "chinchilla")


def test_one_size_is_refused_naming_what_to_add(tmp_path):
    rows = [{"params": 1e8, "tokens": m * 1e8, "c4:loss": loss(1e8, m * 1e8)} for m in (10, 20, 40)]
    ps = write(tmp_path, rows)
    with pytest.raises(FitInputError, match="all 3 fit run\\(s\\) are at one size .*add runs at a second size"):
        method_named("chinchilla")(ps, [Target("t", 1e9, 2e10)], FitConfig(bootstrap=0), runs=sorted(set(ps.points["run"])))


def test_a_one_d_fit_set_warns_first_that_the_d_term_is_unidentified_at_another_d(tmp_path):
    """A suite trained to one token count, predicted at a shorter one: before, no warning and a narrow interval."""
    rows = [{"params": n, "tokens": 3e11, "c4:loss": loss(n, 3e11)} for n in (1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9)]
    ps = write(tmp_path, noisy(rows))
    targets = [Target("same-D", 6.4e9, 3e11), Target("short", 6.4e9, 3e10)]
    out = method_named("chinchilla")(ps, targets, FitConfig(bootstrap=20))
    said = [w for w in first_screen(out.warnings) if "the D term is unidentified" in w]
    assert len(said) == 1 and "target short" in said[0] and "one D (3e+11 tokens)" in said[0]
    assert any("law reduced to L(C) = A/C^alpha + E" in w for w in out.warnings)
    preds = pd.DataFrame(out.predictions)
    text = summary(preds.assign(actual=np.nan), targets, out.warnings, 0.9)
    assert text.index("the D term is unidentified") < text.index("same-D")  # before the predictions


def test_a_two_choice_task_at_one_d_is_predicted_by_a_reduced_law_with_its_true_chance(tmp_path):
    """Winogrande with chance 0.5 in a public suite at one D: three of six runs above chance. Before: `3 run(s)
    above chance, too few for a 4-parameter law; not predicted` (it was predicted only with the wrong chance 0.25)."""
    sizes = [1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9]
    true = lambda n: 0.5 + 0.5 * np.exp(-(2e3 * n ** -0.4 + 0.3))  # noqa: E731
    low = [0.49, 0.5, 0.495]
    rows = [{"params": n, "tokens": 3e11, "winogrande:acc": low[i] if i < 3 else true(n), "winogrande:chance": 0.5}
            for i, n in enumerate(sizes)]
    ps = write(tmp_path, rows)
    out = DIRECT(ps, [Target("big", 6.4e9, 3e11)], FitConfig(bootstrap=0))
    (pred,) = out.predictions
    assert pred["metric"] == "winogrande:acc" and pred["predicted"] == pytest.approx(true(6.4e9), abs=0.01)
    assert any("3 run(s) at or below chance left out" in w for w in out.warnings)
    assert any("law reduced to -log Q(C) = A/C^alpha" in w for w in out.warnings)


def test_a_method_needing_flops_refuses_a_table_without_them_naming_the_column(tmp_path):
    """Before: predicted from its start values (-57 %), every refit failed, exit 0."""
    rows = [{"params": n, "tokens": m * n, "c4:loss": loss(n, m * n)} for n in (1e8, 2e8, 4e8) for m in (20, 40)]
    ps = write(tmp_path, rows)
    with pytest.raises(FitInputError, match=r"olmo_two_step_flops: .*6 of 6 fit run\(s\) carry no `flops`.*add a "
                                            r"`flops` column"):
        OLMO_TWO_STEP_FLOPS(ps, [Target("t", 1e9, 2e10)], FitConfig(bootstrap=0))


def test_a_bootstrap_whose_refits_mostly_fail_says_so_first_with_the_cause():
    """A step whose law needs every run in a resample (min_runs): nearly all resamples miss one."""
    n = np.array([1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9])
    X, y = np.vstack([n, 20 * n]), loss(n, 20 * n)
    step = Step("c4:loss", laws.CHINCHILLA, Points(X, y, np.arange(6)), [[6.0, 6.0, 0.5, 0.3, 0.3]], huber=1e-3,
                target_x=np.array([[6.4e9], [1.28e11]]), output="c4:loss", min_runs=6)
    ps = PointSet(pd.DataFrame(columns=COLUMNS), pd.DataFrame(), table.PROFILE, "-")
    out = run_chain("m", ps, [Target("big", 6.4e9, 1.28e11)], [str(i) for i in range(6)], [step], FitConfig(bootstrap=50))
    (said,) = [w for w in first_screen(out.warnings) if "most bootstrap refits failed" in w]
    assert re.search(r"100% of 50 \(c4:loss: 100% fewer than 6 distinct runs drawn\)", said)


def test_a_table_of_checkpoints_with_steps_is_read_as_runs_and_its_accuracy_predicted(tmp_path):
    """A W&B export: a row per checkpoint, a `step` column, no `run`. Before, every row was its own run, step 2
    skipped each run's only point, and every task said `sigmoid: no start converged`."""
    rows = [{"params": n, "step": s, "tokens": 20 * n * s / 10, "c4:loss": loss(n, 20 * n * s / 10),
             "hellaswag:acc": acc(n, 20 * n * s / 10)} for n in (1e8, 2e8, 4e8, 8e8) for s in range(1, 11)]
    ps = write(tmp_path, rows)
    assert ps.points["run"].nunique() == 4 and any("grouped into 4 runs by params" in n for n in ps.notes)
    out = method_named("olmo_two_step")(ps, [Target("big", 1.6e9, 3.2e10)], FitConfig(bootstrap=0))
    pred = next(p for p in out.predictions if p["metric"] == "hellaswag:acc")
    assert pred["predicted"] == pytest.approx(acc(1.6e9, 3.2e10), abs=0.03)


def test_a_table_of_checkpoints_without_steps_keeps_them_and_says_why_step_2_has_one_point_a_run(tmp_path):
    rows = [{"params": n, "tokens": 20 * n * s / 10, "c4:loss": loss(n, 20 * n * s / 10),
             "hellaswag:acc": acc(n, 20 * n * s / 10)} for n in (1e8, 2e8, 4e8, 8e8) for s in range(1, 11)]
    ps = write(tmp_path, rows)
    out = method_named("olmo_two_step")(ps, [Target("big", 1.6e9, 3.2e10)], FitConfig(bootstrap=0))
    pred = next(p for p in out.predictions if p["metric"] == "hellaswag:acc")
    assert pred["predicted"] == pytest.approx(acc(1.6e9, 3.2e10), abs=0.03)
    assert any("every fit run has one evaluation" in w and "`run` and `step` columns" in w for w in out.warnings)


def test_checkpoints_of_several_runs_at_one_size_without_a_run_column_are_refused(tmp_path):
    rows = [{"params": 1e8, "step": s, "tokens": m * 1e7 * s, "c4:loss": 3.0} for m in (20, 40) for s in (1, 2)]
    pd.DataFrame(rows).to_csv(tmp_path / "l.csv", index=False)
    with pytest.raises(FitInputError, match=r"l.csv: line 4: no `run` column, and rows at N = 1e\+08 repeat step 1"):
        load_points(str(tmp_path / "l.csv"))


def test_gadre_takes_its_fit_sets_by_role_on_any_ladder(tmp_path):
    """The paper's design by role, not by its run names and metric names: the four smallest shapes at the most common
    M plus the smallest shape's run at the M furthest from it for the loss law, and the fifth shape for the error
    law. Before: `gadre: needs the paper's 5 loss-fit runs with a c4_val:loss metric` on every other ladder."""
    sizes = [1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9]
    cells = [(n, 20) for n in sizes] + [(1e8, 80), (1e8, 320), (2e8, 80)]
    gadre_acc = lambda n, d: 1 - laws.GADRE_ERR.f(np.array([[loss(n, d)]]), np.array([5.0, 1.0, 0.75]))[0]  # noqa: E731
    rows = [{"run": f"{n:.0e}-M{m}", "params": n, "tokens": m * n, "c4:loss": loss(n, m * n),
             "hellaswag:acc": gadre_acc(n, m * n), "hellaswag:chance": 0.25} for n, m in cells]
    ps = write(tmp_path, rows)
    target = Target("big", 6.4e9, 20 * 6.4e9)
    loss_runs, err_runs = gadre_fit_sets(ps, [target])
    assert loss_runs == ["1e+08-M20", "2e+08-M20", "4e+08-M20", "8e+08-M20", "1e+08-M320"]
    assert err_runs == loss_runs + ["2e+09-M20"]  # 1.6e9, the fifth shape; 3.2e9 is left for calibration
    out = predict(method_named("gadre"), ps, [target], FitConfig(bootstrap=40))
    preds = {p["metric"]: p for p in out.predictions}
    assert out.fits["c4:loss"]["law"] == "gadre_loss" and not any("reduced" in w for w in out.warnings)
    assert preds["c4:loss"]["predicted"] == pytest.approx(loss(6.4e9, 1.28e11), rel=0.03)
    assert preds["hellaswag:acc"]["predicted"] == pytest.approx(gadre_acc(6.4e9, 1.28e11), abs=0.03)
