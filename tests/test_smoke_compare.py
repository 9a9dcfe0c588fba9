"""The smoke ladder on its two offline datasets (the whole mix and its Wikipedia leads alone), tiny, trained and
then ranked by `ladder compare`: the harness's own ladders end to end into a decision."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ladder.orchestration.compose import load
from ladder.orchestration.pipeline import run_ladder
from tests.conftest import tiny_overrides

# The datasets the shipped smoke ladder compares (docs/fit.md), on tiny rungs and a tokenizer trained on a sliver.
TWO_DATASETS = ["ladder.datasets=[smoke,smoke_wiki]", "data=smoke", "ladder.lr_schedule=wsds",
                "ladder.sizes=[smoke-24,smoke-32]", "ladder.multipliers=[1,2,3]",
                "ladder.tokenizer.train_path=null", "ladder.tokenizer.train_chars=300000"]


def test_the_smoke_ladder_on_two_datasets_is_compared(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("LADDER_CACHE", str(tmp_path / "cache"))
    mine = {o.split("=", 1)[0] for o in TWO_DATASETS} | {"data.path"}
    overrides = [o for o in tiny_overrides(corpus, tmp_path / "run") if o.split("=", 1)[0] not in mine]
    assert run_ladder(load([*overrides, *TWO_DATASETS]), fit=False) == 0
    out = tmp_path / "compare"
    # One BLAS thread: OpenBLAS's spinning threads made these L-BFGS-B fits 10x slower on a loaded 2-core machine.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "ladder", "compare", f"results={tmp_path / 'run'}", "method=chinchilla",
                           "bootstrap=20", "backtest=false", "targets=[{name: big, params: 1e6, tokens: 2e7}]",
                           f"out={out}"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    d = pd.read_csv(out / "compare.csv")
    assert {tuple(p) for p in d[["a", "b"]].to_numpy()} == {("smoke", "smoke_wiki")}
    assert set(d["winner"]) <= {"smoke", "smoke_wiki"}
    # each variant is scored on both validation sets, the metrics the decision is made on
    assert {"smoke_val:loss", "smoke_wiki_val:loss"} <= set(d["metric"])
    assert json.loads((out / "compare.json").read_text())["variants"] == ["smoke", "smoke_wiki"]
    table = (out / "report.md").read_text().split("## Figures")[0]
    assert "smoke_wiki" in table and " smoke " in table.replace("|", " ")
    assert "big smoke_wiki_val LM loss: " in done.stdout and "better than" in done.stdout
