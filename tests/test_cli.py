import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "ladder", *args], capture_output=True, text=True)


def test_plan_prints_table_and_json():
    table = run("plan", "ladder=olmo")
    assert table.returncode == 0, table.stderr
    assert "olmo-1B-c4-M200" in table.stdout and "13B-5T" in table.stdout
    data = json.loads(run("plan", "--format", "json", "ladder=smoke").stdout)
    assert data["ladder"] == "smoke" and data["rungs"]


def test_bad_override_is_one_line_error_without_traceback():
    result = run("plan", "ladder=olmo", "ladder.sizes=[nope]")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "unknown model 'nope'" in result.stderr


def test_help_lists_commands_and_groups():
    assert "plan" in run("--help").stdout
    assert "ladder/ (gadre, gadre_wsds, node, olmo, olmo_wsds, smoke)" in run("plan", "--help").stdout


def test_bare_keys_of_a_commands_own_group_are_scoped_to_it():
    from ladder.orchestration.cli import scoped

    assert scoped(["method=gadre", "out_dir=/x", "fit.bootstrap=5", "+holdout=largest", "ladder=olmo"], "fit") == [
        "fit.method=gadre", "out_dir=/x", "fit.bootstrap=5", "+fit.holdout=largest", "ladder=olmo"]
    assert scoped(["seed=3"], "fit") == ["seed=3"]  # a root key keeps its root meaning
    assert scoped(["~tasks"], "eval") == ["~tasks"]  # a deletion without a value is left as written


def test_fit_without_results_says_what_to_give():
    result = run("fit", "method=gadre")
    assert result.returncode == 2 and "results=DIR" in result.stderr and "Traceback" not in result.stderr


def test_fit_help_lists_every_method_and_the_help_every_group():
    from fit.registry import METHODS

    text = run("fit", "--help").stdout
    assert all(f"{name} ({m.summary})" in " ".join(text.split()) for name, m in METHODS.items())
    assert "fit/ (default, smoke)" in text
    assert "Named sizes, for ladder.sizes=[...] (configs/model/): olmo-13B" in text and "model/ (" not in text


# The runnable ones: every script with a command line (gpu_check's, run on a device, is tested in tests/train).
SCRIPTS = sorted(p for p in (Path(__file__).parents[1] / "scripts").glob("*.py")
                 if not p.stem.startswith("gpu_check") and "__main__" in p.read_text())


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_every_script_explains_itself_with_help(script, tmp_path):
    """As the README spells them (`.venv/bin/python scripts/NAME.py`, as `make bench` runs them): no PYTHONPATH,
    from any folder (bench_fit.py stopped at `No module named 'scripts'`)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    first = ast.get_docstring(ast.parse(script.read_text())).split()[:4]
    assert result.stdout.startswith("usage: ") and " ".join(first) in " ".join(result.stdout.split())


def test_plan_piped_into_a_reader_that_stops_is_no_traceback():
    """`ladder plan | head`: the reader closes the pipe; the plan ends quietly, not with a BrokenPipeError."""
    done = subprocess.Popen([sys.executable, "-m", "ladder", "plan", "ladder=olmo"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    done.stdout.close()  # before it prints anything (it is still importing)
    err = done.stderr.read()
    assert done.wait() != 0 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_plan_data_lines_end_in_what_they_say():
    out = run("plan", "ladder=smoke").stdout
    data = out.split("data (validation")[1].splitlines()[1:]
    assert data and not any(line.rstrip().endswith(";") for line in data), data


def test_fetch_tasks_without_a_network_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    """`python scripts/fetch_tasks.py tasks` where the hub cannot be reached: one line naming the task, rc 1,
    no empty tasks/ left behind (it printed datasets' ConnectionError traceback and kept the folder)."""
    import importlib.util

    path = Path(__file__).parents[1] / "scripts" / "fetch_tasks.py"
    spec = importlib.util.spec_from_file_location("fetch_tasks", path)
    fetch_tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch_tasks)

    def unreachable(path, config, split):
        raise ConnectionError(f"Couldn't reach '{path}' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(fetch_tasks, "hub_dataset", unreachable)
    assert fetch_tasks.main([str(tmp_path / "tasks")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hellaswag" in err and "Rowan/hellaswag" in err, err
    assert not (tmp_path / "tasks").exists()


def test_bench_train_with_a_size_no_shape_has_is_one_line():
    """`bench_train.py --size 2M` (no olmo2 shape near 2M at vocab 2048): one line naming the flag, not a traceback;
    nor is `--device cuda` where torch has no CUDA."""
    import torch

    script = Path(__file__).parents[1] / "scripts" / "bench_train.py"
    result = subprocess.run([sys.executable, str(script), "--size", "2M"], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("bench_train.py: --size 2M: no olmo2 shape")
    if not torch.cuda.is_available():  # docs/train.md's GPU lines, typed on a CPU machine
        result = subprocess.run([sys.executable, str(script), "--size", "olmo-190M", "--device", "cuda"],
                                capture_output=True, text=True)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert "bench_train.py: --device cuda: torch " in result.stderr


def test_eval_share_without_its_inputs_says_so_rather_than_0_percent(tmp_path):
    """A log without the eval hook's lines printed a 0.0 % share as if measured; a missing out_dir a traceback."""
    script = Path(__file__).parents[1] / "scripts" / "eval_share.py"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "plan.json").write_text('{"jobs": []}')
    (tmp_path / "empty.log").write_text("12:00:00 INFO ladder.orchestration.pipeline: 0 of 12 rungs to run\n")
    for args, said in (([tmp_path / "run", tmp_path / "empty.log"], "evaluated in X s' line"),
                       ([tmp_path / "none", tmp_path / "empty.log"], "no plan.json: give a ladder run's out_dir")):
        result = subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True)
        assert result.returncode == 1 and result.stderr.count("\n") == 1 and said in result.stderr, result.stderr
        assert "%" not in result.stdout


def test_compare_ladders_of_a_folder_that_is_no_run_is_one_error(tmp_path):
    script = Path(__file__).parents[1] / "scripts" / "compare_ladders.py"
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "cosine"), str(tmp_path / "wsds")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (f"compare_ladders.py: error: {tmp_path / 'cosine'}: no plan.json: give "
                                              "two ladder runs' out_dirs (ladder run ... out_dir=DIR)")
