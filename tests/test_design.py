"""`ladder design`: a smoke-sized design from a lawful ladder's results, written where `ladder plan` takes it."""
import subprocess
import sys

import pytest

from tests.fit.test_holdout import write_ladder


def run(*args):
    return subprocess.run([sys.executable, "-m", "ladder", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return write_ladder(tmp_path_factory.mktemp("earlier"))


def test_smoke_design_is_written_and_planned(results, tmp_path):
    out = run("design", "ladder=smoke", "target=smoke-96-M20", "budget=3%", f"results={results}", f"out={tmp_path}",
              "name=smoke-design", "sizes=[smoke-24,smoke-32,smoke-48,smoke-64]", "multipliers=[5,10,20,40]",
              "draws=24")
    assert out.returncode == 0, out.stderr
    assert "loss error" in out.stdout and "none: every shipped ladder" in out.stdout  # all exceed smoke's target
    assert "accuracy error model: 1 task(s)" in out.stdout and "ranked by the loss error" in out.stdout
    chosen = next(line for line in out.stdout.splitlines() if line.lstrip().startswith("*"))
    assert "; accuracy error " in chosen and " points (90 % of draws within " in chosen  # both kinds, best first
    config = (tmp_path / "ladder" / "smoke-design.yaml").read_text()
    assert config.startswith("# Written by `ladder design`") and "- smoke" in config
    plan = run("plan", f"hydra.searchpath=[file://{tmp_path}]", "ladder=smoke-design")
    assert plan.returncode == 0, plan.stderr
    assert "ladder 'smoke-design'" in plan.stdout
    flops = float(chosen.split("FLOPs")[0].split()[-1])
    target = 6 * 1e6 * 2e7  # the smoke ladder's target: N = 1M at M = 20
    assert flops <= 0.03 * target


def test_design_refuses_to_overwrite_a_config_it_did_not_write_before_searching(results, tmp_path, capsys):
    from ladder.orchestration.cli import main

    (tmp_path / "ladder").mkdir()
    (tmp_path / "ladder" / "mine.yaml").write_text("name: mine\n")
    code = main(["design", "ladder=smoke", "target=smoke-96-M20", "budget=3%", f"results={results}", f"out={tmp_path}",
                 "name=mine", "sizes=[smoke-24,smoke-32,smoke-48]", "multipliers=[5,10,20]", "draws=8"])
    out = capsys.readouterr()
    assert code == 2 and "was not written by `ladder design`" in out.err and "candidate" not in out.out
    assert (tmp_path / "ladder" / "mine.yaml").read_text() == "name: mine\n"


@pytest.mark.parametrize("budget, message", [("lots", "budget=lots: expected"), ("12h", "add gpus=N"),
                                             ("1e3", "no ladder of at least 6 rungs and 3 sizes fits")])
def test_bad_budget_is_one_line(results, budget, message, capsys):
    from ladder.orchestration.cli import main

    code = main(["design", "ladder=smoke", "target=smoke-96-M20", f"budget={budget}", f"results={results}",
                 "sizes=[smoke-24,smoke-32,smoke-48]", "multipliers=[5,10]", "draws=8"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.strip().count("\n") == 0


def test_budget_in_gpu_hours_is_gpu_time_at_the_stated_mfu():
    from ladder.core.plan import Target
    from ladder.orchestration.compose import load
    from ladder.orchestration.design import parse_budget

    cfg = load(["ladder=olmo", "launcher.gpu_flops=1e15", "launcher.expected_mfu=0.5"])
    target = Target("t", 1e9, 2e10)
    assert parse_budget("1%", target, cfg, None) == pytest.approx(0.01 * 6 * 1e9 * 2e10)
    assert parse_budget("100gpuh", target, cfg, None) == pytest.approx(100 * 3600 * 0.5e15)
    assert parse_budget("2h", target, cfg, "8") == pytest.approx(16 * 3600 * 0.5e15)
    assert parse_budget("3e21", target, cfg, None) == 3e21


def test_candidates_are_grids_and_l_shapes_within_budget_and_round_trip_as_configs(tmp_path):
    from ladder.core.plan import build_plan
    from ladder.orchestration.compose import load
    from ladder.orchestration.design import (Candidate, candidates, config_text, destination, grid_rungs, plan_price,
                                             write_config)

    cfg = load(["ladder=smoke"])
    grid = grid_rungs(cfg, ["smoke-24", "smoke-32", "smoke-48", "smoke-64"], [5, 10, 20, 40])
    price = plan_price(["cosine", "wsds"], cfg.ladder.lr_decay_fraction)
    everything = price(tuple(r for size in grid for r in size))[1]
    found = candidates(grid, price, everything / 3, 6)
    assert found and all(c.compute <= everything / 3 for c in found)
    assert all(len({r.params for r in c.rungs}) >= 3 and len(c.rungs) >= 6 for c in found)
    ell = [c for c in found if c.extra]
    assert ell and all({r.params for r in c.extra} < {r.params for r in c.rungs} for c in ell)
    # An L: every size at M = 20, the smallest also at 5 and 10; `ladder plan` of the written config has its rungs.
    rungs = tuple(size[2] for size in grid) + tuple(grid[0][:2])
    c = Candidate(rungs, *price(rungs))
    text = config_text(c, build_plan(cfg).targets[0], "smoke", "ell", "test")
    path, select = destination("ell", str(tmp_path))
    write_config(text, path)
    plan = build_plan(load(select))
    assert sorted(r.rung_id for r in plan.rungs) == sorted(r.rung_id for r in rungs)
    assert plan.compute == pytest.approx(c.compute)


def test_decision_design_is_written_planned_and_says_the_chance_it_reaches(results, tmp_path):
    out = run("design", "ladder=smoke", "target=smoke-96-M20", "difference=0.05", f"results={results}",
              f"out={tmp_path}", "name=decide", "sizes=[smoke-24,smoke-32,smoke-48,smoke-64]", "multipliers=[5,10,20,40]",
              "draws=24")
    assert out.returncode == 0, out.stderr
    chosen = next(line for line in out.stdout.splitlines() if line.lstrip().startswith("*"))
    assert "P(right call)" in chosen and float(chosen.split("P(right call)")[1].split()[0]) >= 0.9
    assert "over 96 draws" in chosen  # confirmed with 4 × the draws
    config = (tmp_path / "ladder" / "decide.yaml").read_text()
    assert config.startswith("# Written by `ladder design`") and "difference=0.05" in config
    plan = run("plan", f"hydra.searchpath=[file://{tmp_path}]", "ladder=decide")
    assert plan.returncode == 0, plan.stderr


def test_decision_design_out_of_reach_is_an_answer_and_writes_nothing(results, tmp_path):
    out = run("design", "ladder=smoke", "target=smoke-96-M20", "difference=1e-5", "budget=1%", f"results={results}",
              f"out={tmp_path}", "name=never", "sizes=[smoke-24,smoke-32,smoke-48]", "multipliers=[5,10,20]",
              "draws=16")
    assert out.returncode == 0, out.stderr
    assert "no ladder within the ceiling reaches 90%: the best reaches P = " in out.stdout
    assert not (tmp_path / "ladder" / "never.yaml").exists()


@pytest.mark.parametrize("key, message", [("difference=lots", "difference=lots: expected a number above 0"),
                                          ("difference=-0.02", "difference=-0.02: expected a number above 0"),
                                          ("confidence=1.5", "confidence=1.5: expected a number above 0.5 and below 1"),
                                          ("confidence=0.3", "confidence=0.3: expected a number above 0.5")])
def test_bad_difference_or_confidence_is_one_line(results, key, message, capsys):
    from ladder.orchestration.cli import main

    extra = [key] if key.startswith("difference") else ["difference=0.02", key]
    code = main(["design", "ladder=smoke", "target=smoke-96-M20", f"results={results}", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.strip().count("\n") == 0


def test_metric_accuracy_ranks_by_points_and_says_in_one_line_what_it_lacks(results, tmp_path, capsys):
    from ladder.orchestration.cli import main
    from tests.fit.test_holdout import write_ladder

    common = ["design", "ladder=smoke", "target=smoke-96-M20", "budget=3%", "sizes=[smoke-24,smoke-32,smoke-48]",
              "multipliers=[5,10,20]", "draws=8", f"out={tmp_path}"]
    assert main([*common, f"results={results}", "metric=accuracy"]) == 0
    out = capsys.readouterr().out
    assert "ranked by the accuracy error" in out
    assert "metric=accuracy" in (tmp_path / "ladder" / "design-smoke-96-M20-3pct.yaml").read_text().splitlines()[0]
    no_tasks = write_ladder(tmp_path / "no_tasks", tasks=False)
    for extra, message in ((["metric=accuracy", f"results={no_tasks}"], "metric=accuracy: no ladder of the error "
                            "model"), (["metric=accuracy", "method=chinchilla", f"results={results}"],
                                       "metric=accuracy: method=chinchilla: predicts no accuracy"),
                           (["metric=points", f"results={results}"], "metric=points: rank the candidates by one of")):
        code = main([*common, *extra])
        captured = capsys.readouterr()
        assert code == 2 and message in captured.err and captured.err.strip().count("\n") == 0, captured.err
        assert "candidate" not in captured.out


def test_without_metric_accuracy_a_prior_lacking_accuracies_designs_by_the_loss_and_says_why(tmp_path):
    from fit.sources import load_points
    from ladder.orchestration.design import accuracy_prior
    from tests.fit.test_holdout import write_ladder

    sources = [load_points(str(write_ladder(tmp_path, tasks=False)))]
    model, why = accuracy_prior(sources, "best", "loss")
    assert model is None and why.startswith("no ladder of the error model")
    model, why = accuracy_prior(sources, "chinchilla", "loss")
    assert model is None and why.startswith("method=chinchilla: predicts no accuracy")
