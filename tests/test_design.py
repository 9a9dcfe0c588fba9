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
              "name=smoke-design", "sizes=[smoke-24,smoke-32,smoke-48,smoke-64]", "multipliers=[5,10,20,40]", "draws=24")
    assert out.returncode == 0, out.stderr
    assert "loss error" in out.stdout and "shipped ladders" in out.stdout
    config = (tmp_path / "ladder" / "smoke-design.yaml").read_text()
    assert config.startswith("# Written by `ladder design`") and "- smoke" in config
    plan = run("plan", f"hydra.searchpath=[file://{tmp_path}]", "ladder=smoke-design")
    assert plan.returncode == 0, plan.stderr
    assert "ladder 'smoke-design'" in plan.stdout
    chosen = next(line for line in out.stdout.splitlines() if line.lstrip().startswith("*"))
    flops = float(chosen.split("FLOPs")[0].split()[-1])
    target = 6 * 1e6 * 2e7  # the smoke ladder's target: N = 1M at M = 20
    assert flops <= 0.03 * target


def test_design_refuses_to_overwrite_a_config_it_did_not_write(results, tmp_path):
    (tmp_path / "ladder").mkdir()
    (tmp_path / "ladder" / "mine.yaml").write_text("name: mine\n")
    out = run("design", "ladder=smoke", "target=smoke-96-M20", "budget=3%", f"results={results}", f"out={tmp_path}",
              "name=mine", "sizes=[smoke-24,smoke-32,smoke-48]", "multipliers=[5,10,20]", "draws=8")
    assert out.returncode == 2 and "was not written by `ladder design`" in out.stderr
    assert (tmp_path / "ladder" / "mine.yaml").read_text() == "name: mine\n"


@pytest.mark.parametrize("budget, message", [("lots", "budget=lots: expected"), ("12h", "add gpus=N"),
                                             ("1e3", "no ladder of at least 6 rungs fits")])
def test_bad_budget_is_one_line(results, budget, message):
    out = run("design", "ladder=smoke", "target=smoke-96-M20", f"budget={budget}", f"results={results}",
              "sizes=[smoke-24,smoke-32,smoke-48]", "multipliers=[5,10]", "draws=8")
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
