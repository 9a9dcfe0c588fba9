"""`ladder design`: a smoke-sized design from a lawful ladder's results, written where `ladder plan` takes it, with its
report; and `ladder plan` saying each ladder's expected error beside its compute share."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from ladder.core.published import shared_data_dir
from tests.fit.test_holdout import write_ladder
from tests.fit.test_report import CHROMIUM, render

SMOKE = ["ladder=smoke", "target=smoke-96-M20", "budget=3%", "sizes=[smoke-24,smoke-32,smoke-48,smoke-64]",
         "multipliers=[5,10,20,40]", "draws=24"]


def run(*args, **env):
    return subprocess.run([sys.executable, "-m", "ladder", *args], capture_output=True, text=True,
                          env={**os.environ, **env})


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return write_ladder(tmp_path_factory.mktemp("earlier"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One $LADDER_CACHE for the module's commands: each error model is measured once."""
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(autouse=True)
def cached(cache, monkeypatch):
    """The designs run in this process cache their error models there too, never under the repository."""
    monkeypatch.setenv("LADDER_CACHE", cache)


@pytest.fixture(scope="module")
def designed(results, cache, tmp_path_factory):
    """(its terminal output, the out= folder) of one smoke design."""
    out = tmp_path_factory.mktemp("design")
    done = run("design", *SMOKE, f"results={results}", f"out={out}", "name=smoke-design", LADDER_CACHE=cache)
    assert done.returncode == 0, done.stderr
    return done.stdout, out


def test_smoke_design_is_written_and_planned(designed, cache):
    stdout, out = designed
    assert "loss error" in stdout and "none: every shipped ladder" in stdout  # all exceed smoke's target
    assert "accuracy error model: 1 task(s)" in stdout and "ranked by the loss error" in stdout
    chosen = next(line for line in stdout.splitlines() if line.lstrip().startswith("*"))
    assert "; accuracy error " in chosen and " points (90 % of draws within " in chosen  # both kinds, best first
    config = (out / "ladder" / "smoke-design.yaml").read_text()
    assert config.startswith("# Written by `ladder design`") and "- smoke" in config
    plan = run("plan", f"hydra.searchpath=[file://{out}]", "ladder=smoke-design", LADDER_CACHE=cache)
    assert plan.returncode == 0, plan.stderr
    assert "ladder 'smoke-design'" in plan.stdout
    flops = float(chosen.split("FLOPs")[0].split()[-1])
    target = 6 * 1e6 * 2e7  # the smoke ladder's target: N = 1M at M = 20
    assert flops <= 0.03 * target


def test_report_leads_with_the_chosen_ladder_then_how_much_ladder_the_target_needs(designed):
    stdout, out = designed
    report = out / "smoke-design"
    assert stdout.strip().splitlines()[-1] == f"report: {report / 'report.html'}"
    md = (report / "report.md").read_text()
    first = md.split("\n## ", 1)[0]  # before any section: the answer
    chosen = json.loads((report / "design.json").read_text())
    assert first.count("Train ") == 1 and "FLOPs" in first and "Expected error of its forecast" in first
    assert f"{100 * chosen['best']['errors']['loss']['median']:.2f} %" in first
    assert f"of a task's accuracy: {chosen['best']['errors']['accuracy']['median']:.2f} points" in first
    answer = md.split("### Expected forecast error", 1)[1].split("###", 1)[0]
    assert "| loss (relative, %)" in answer and "| a task's accuracy (points)" in answer  # a row per metric
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads == ["## The ladder", "## How much ladder do I need", "## The chosen rungs and the target",
                     "## Runners-up and shipped ladders", "## The error model"]
    assert chosen["written_by"] == "ladder design" and chosen["config"].endswith("smoke-design.yaml")
    # the curve: the best within each budget, 1/16 to 4 ×; more budget never simulates worse
    curve = [p for p in chosen["curve"] if p["best"]]
    assert [p["budget"] / chosen["budget"] for p in chosen["curve"]] == [1 / 16, 1 / 4, 1, 4]
    medians = [p["best"]["errors"]["loss"]["median"] for p in curve]
    assert len(curve) >= 3 and medians == sorted(medians, reverse=True)
    assert all(sum(6 * r["params"] * r["tokens"] for r in p["best"]["rungs"]) > 0 for p in curve)
    assert "each quadrupling cuts it by" in md and ("The knee lies at" in md or "No knee within" in md)


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium)")
def test_report_html_renders_in_chromium_with_every_image_and_no_console_error(designed, tmp_path):
    page = (designed[1] / "smoke-design" / "report.html").read_text()
    assert "http" not in page.split("<body>", 1)[1]  # self-contained
    images, loaded, height, errors = render(page, tmp_path)
    assert images == loaded == page.count("data:image/png;base64,") == 2
    assert height > 1000 and errors == "[]"


def test_curve_false_searches_the_budget_alone(results, tmp_path, capsys):
    from ladder.orchestration.cli import main

    assert main(["design", *SMOKE, f"results={results}", f"out={tmp_path}", "name=alone", "draws=8",
                 "curve=false"]) == 0
    out = capsys.readouterr().out
    assert "with the curve's budgets" not in out and "within 1 × the budget:" in out
    written = json.loads((tmp_path / "alone" / "design.json").read_text())
    assert [p["budget"] for p in written["curve"]] == [written["budget"]]
    assert "The budget alone was searched (curve=false)" in (tmp_path / "alone" / "report.md").read_text()


def test_design_refuses_to_write_over_a_report_it_did_not_write(results, tmp_path, capsys):
    from ladder.orchestration.cli import main

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "report.html").write_text("<p>mine</p>")
    code = main(["design", *SMOKE, f"results={results}", f"out={tmp_path}", "name=mine"])
    out = capsys.readouterr()
    assert code == 2 and "did not write" in out.err and "candidate" not in out.out
    assert (tmp_path / "mine" / "report.html").read_text() == "<p>mine</p>"
    assert not (tmp_path / "ladder" / "mine.yaml").exists()


def test_error_models_are_cached_by_their_sources_content(results, tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd

    from ladder.orchestration.design_models import error_models

    monkeypatch.setenv("LADDER_CACHE", str(tmp_path / "cache"))
    first, (acc, why) = error_models(str(results))
    cached = list((tmp_path / "cache" / "design").glob("*.json"))
    assert len(cached) == 2 and acc is not None and why is None  # the loss's and accuracy's
    again, (acc_again, _) = error_models(str(results))  # read back: the same models to the bit
    np.testing.assert_array_equal(again.laws, first.laws)
    pd.testing.assert_frame_equal(again.noise, first.noise)
    assert (again.size_sd, again.run_sd, again.run_sd_range, again.sources) == \
        (first.size_sd, first.run_sd, first.run_sd_range, first.sources)
    assert [t.task for t in acc_again.tasks] == [t.task for t in acc.tasks]
    np.testing.assert_array_equal(acc_again.tasks[0].sigmoids, acc.tasks[0].sigmoids)
    np.testing.assert_array_equal(acc_again.tasks[0].loss.laws, acc.tasks[0].loss.laws)
    changed = shutil.copytree(results, tmp_path / "changed")
    error_models(str(changed))  # another path: another key (the model names its sources)
    assert len(list((tmp_path / "cache" / "design").glob("*.json"))) == 4
    some = next(p for p in sorted(changed.rglob("*")) if p.is_file())
    some.write_bytes(some.read_bytes() + b"\n")  # the same path, other content: measured again
    error_models(str(changed))
    assert len(list((tmp_path / "cache" / "design").glob("*.json"))) == 6


@pytest.mark.skipif(shared_data_dir() is None, reason="published ladder data not found at <repo>/../shared/data "
                                                     "(set LADDER_SHARED_DATA)")
def test_plan_says_the_ladders_expected_error_beside_its_compute_share(cache):
    plan = run("plan", "ladder=smoke", LADDER_CACHE=cache)
    assert plan.returncode == 0, plan.stderr
    line = next(x for x in plan.stdout.splitlines() if x.lstrip().startswith("target smoke-96-M20"))
    assert "% of it" in line and "expected loss error" in line and "90 % band" in line


def test_plan_without_the_published_ladders_says_why_it_has_no_expected_error(tmp_path):
    plan = run("plan", "ladder=smoke", LADDER_CACHE=str(tmp_path), LADDER_SHARED_DATA=str(tmp_path / "absent"))
    assert plan.returncode == 0, plan.stderr
    said = [x for x in plan.stdout.splitlines() if re.search(r"expected (loss |forecast )?error", x)]
    assert len(said) == 1 and "not simulated, the published ladders it is measured on are absent" in said[0]


def test_plan_of_a_ladder_that_reaches_its_target_says_so():
    from dataclasses import replace

    from ladder.core.plan import Target, build_plan
    from ladder.orchestration.compose import load
    from ladder.orchestration.design import expected_errors

    plan = replace(build_plan(load(["ladder=smoke"])), targets=[Target("tiny", 1e4, 2e5)])
    said, skipped = expected_errors(plan)
    assert skipped is None and said["tiny"].startswith("no expected error: a size reaches its N")


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
              f"out={tmp_path}", "name=decide", "sizes=[smoke-24,smoke-32,smoke-48,smoke-64]",
              "multipliers=[5,10,20,40]", "draws=24")
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
                                          ("confidence=0.3", "confidence=0.3: expected a number above 0.5"),
                                          ("draws=abc", "draws=abc: expected a whole number"),
                                          ("difference=", "difference=None: expected a number above 0"),
                                          ("draws=0", "draws=0: expected a whole number of at least 1"),
                                          ("seed=-1", "seed=-1: expected a whole number of at least 0"),
                                          ("metric=accuracy", "metric=accuracy: the decision design (difference=)")])
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


def test_a_count_that_is_no_whole_number_is_one_line(results, capsys):
    from ladder.orchestration.cli import main

    code = main(["design", "ladder=smoke", "target=smoke-96-M20", "budget=3%", f"results={results}", "min_sizes=three"])
    err = capsys.readouterr().err
    assert code == 2 and "min_sizes=three: expected a whole number" in err and err.strip().count("\n") == 0


def test_a_key_only_the_decision_design_reads_is_refused_by_the_plain_one(results, capsys):
    from ladder.orchestration.cli import main

    code = main(["design", "ladder=smoke", "target=smoke-96-M20", "budget=3%", f"results={results}",
                 "confidence=0.95"])
    err = capsys.readouterr().err
    assert code == 2 and "confidence=0.95: only a decision design (difference=NATS) reads it" in err
