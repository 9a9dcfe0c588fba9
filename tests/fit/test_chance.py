"""Chance levels come from the data (eval writes each task's on its accuracy records; the OLMo reader knows
its paper's; a CSV may carry a `<task>:chance` column), and every accuracy method starts from them."""
import pandas as pd
import pytest

from fit.best import BEST
from fit.config import FitConfig
from fit.errors import FitInputError
from fit.methods import DIRECT, OLMO_SINGLE_STEP, OLMO_TWO_STEP
from fit.sources import load_points
from fit.sources.olmo import OLMO_TASKS
from ladder.core.plan import Target

TARGET = [Target("big", 2e6, 4e7)]


@pytest.fixture
def ladder(tmp_path, write_ladder):
    """The points of a 4 x 3 harness ladder (test_holdout.write_ladder) of one task, `ladder(task, chance, floor)`."""
    return lambda task, chance, floor: load_points(str(write_ladder(tmp_path, task=task, chance=chance, floor=floor)))


def test_a_two_choice_task_is_normalised_and_started_from_its_recorded_chance(ladder):
    """The bug of issue 28: winogrande/boolq/copa fell back to 0.25."""
    ps = ladder("winogrande", 0.5, 0.5)
    assert ps.chance == {"winogrande:acc": 0.5} and not ps.notes
    cfg = FitConfig(bootstrap=0)
    out = DIRECT(ps, TARGET, cfg)
    assert out.fits["winogrande:acc:direct"]["chance"] == 0.5
    assert out.predictions[0]["predicted"] > 0.5
    assert OLMO_TWO_STEP(ps, TARGET, cfg).steps["winogrande:step2"].step.starts[0][0] == -0.5  # a = chance - 1
    assert OLMO_SINGLE_STEP(ps, TARGET, cfg).steps["winogrande:single_step"].step.starts[0][5] == -0.5


def test_results_without_a_chance_level_take_the_default_and_say_so(ladder):
    ps = ladder("copa", None, 0.25)
    assert ps.chance == {"copa:acc": 0.25}
    assert ps.notes == ["copa:acc: the data gives no chance level (a `chance` field on its results.jsonl records, "
                        "a `copa:chance` CSV column); taken as 0.25, a four-choice task's"]


def test_runs_at_or_below_chance_are_said_by_the_sigmoid_methods_too(ladder):
    ps = ladder("boolq", 0.5, 0.45)  # the smallest runs end below a two-choice guess
    for method in (OLMO_TWO_STEP, BEST):
        warnings = method(ps, TARGET, FitConfig(bootstrap=0)).warnings
        said = [w for w in warnings if "boolq:acc" in w and "at or below chance (0.5), kept in its sigmoid fit" in w]
        assert len(said) == 1, warnings
    warnings = DIRECT(ps, TARGET, FitConfig(bootstrap=0)).warnings
    assert any("boolq:acc" in w and "at or below chance left out of its fit" in w for w in warnings)


@pytest.mark.parametrize("method", [OLMO_TWO_STEP, OLMO_SINGLE_STEP, DIRECT, BEST], ids=lambda m: m.name)
def test_an_accuracy_with_chance_0_goes_through_every_accuracy_method(ladder, method):
    """Not multiple choice (e.g. a cloze task's exact match): no floor, and nothing divides by it or logs it."""
    ps = ladder("cloze", 0.0, 0.0)
    out = method(ps, TARGET, FitConfig(bootstrap=0))
    pred = next(p for p in out.predictions if p["metric"] == "cloze:acc")
    assert 0 < pred["predicted"] < 1


def test_the_olmo_reader_gives_its_paper_s_chance_levels(shared):
    ps = load_points(str(shared / "olmo-ladder" / "runs"))
    assert ps.chance == {f"{t}:acc": {"piqa": 0.5, "socialiqa": 1 / 3, "csqa": 0.2}.get(t, 0.25) for t in OLMO_TASKS}


def test_gadre_s_averages_have_no_floor(shared):
    ps = load_points(str(shared / "gadre-scaling"), dataset="rpj")
    assert ps.chance == {"avg46:err": 0.0, "avg17:err": 0.0}


def test_a_csv_carries_chance_as_a_task_column(tmp_path):
    rows = [{"params": n, "tokens": 20 * n, "piqa:acc": 0.6, "piqa:acc_raw": 0.58, "piqa:chance": 0.5, "mmlu:acc": 0.3}
            for n in (1e8, 2e8)]
    pd.DataFrame(rows).to_csv(tmp_path / "l.csv", index=False)
    ps = load_points(str(tmp_path / "l.csv"))
    assert ps.chance == {"piqa:acc": 0.5, "piqa:acc_raw": 0.5, "mmlu:acc": 0.25}
    assert "piqa:chance" not in set(ps.points["metric"])
    assert [n.split(":")[0] for n in ps.notes] == ["mmlu"]


@pytest.mark.parametrize("chance", [1.0, -0.1, "half", True])
def test_a_bad_chance_level_is_named_with_its_line(ladder, chance):
    with pytest.raises(FitInputError, match=rf"/results.jsonl:2: chance level {chance!r} of t:acc is not a number in "
                                            r"\[0, 1\)$"):
        ladder("t", chance, 0.25)


def test_records_of_one_metric_that_disagree_on_chance_are_refused(ladder, tmp_path):
    ladder("t", 0.25, 0.25)
    f = tmp_path / "rungs" / "smoke-64-smoke-M20" / "results.jsonl"
    f.write_text(f.read_text().replace('"chance": 0.25', '"chance": 0.5'))
    with pytest.raises(FitInputError, match=r"smoke-64-smoke-M20/results.jsonl:2: chance level 0.5 of t:acc, "
                                            r"but 0.25 before: its points do not come from one task"):
        load_points(str(tmp_path))
