"""Which fit settings `ladder fit` uses (ladder.cli.fit_settings): configs/fit/default.yaml for data
that is not a harness run, a run directory's own settings for one, a named ladder's when named, and
the user's keys over all of them."""
import json

import pandas as pd

from ladder.orchestration.cli import fit_settings, main, scoped
from ladder.core.layout import FIT_SETTINGS


def settings(*overrides):
    return fit_settings(scoped(list(overrides), "fit"))


def test_published_data_gets_the_default_fit_not_the_smoke_ladders(tmp_path):
    fit = settings(f"results={tmp_path}")
    assert fit.holdout is None and fit.bootstrap == 1000  # the root config's ladder (smoke) says largest, 200
    assert settings(f"results={tmp_path}", "bootstrap=7").bootstrap == 7
    named = settings(f"results={tmp_path}", "ladder=smoke")
    assert named.holdout == "largest" and named.bootstrap == 200


def test_a_run_directory_uses_the_settings_it_ran_with(tmp_path):
    (tmp_path / FIT_SETTINGS).write_text("method: chinchilla\nbootstrap: 50\nholdout: largest\n"
                                         "results: /elsewhere\nout: /elsewhere/report\n"
                                         "targets: [{name: big, params: 1.0e6, tokens: 2.0e7}]\n")
    fit = settings(f"results={tmp_path}")
    assert (fit.method, fit.bootstrap, fit.holdout, fit.results) == ("chinchilla", 50, "largest", str(tmp_path))
    assert fit.out is None and fit.targets[0].name == "big"
    mine = settings(f"results={tmp_path}", "holdout=null", "fit.bootstrap=3")
    assert mine.holdout is None and mine.bootstrap == 3 and mine.method == "chinchilla"


def test_an_older_run_directory_uses_its_plans_ladder(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps({"ladder": "smoke", "rungs": []}))
    assert settings(f"results={tmp_path}").holdout == "largest"
    (tmp_path / "plan.json").write_text(json.dumps({"ladder": "my-own", "rungs": []}))
    assert settings(f"results={tmp_path}").holdout is None  # no such ladder config: the default


def test_ladder_fit_on_a_gadre_folder_keeps_the_over_trained_1b_target(shared, tmp_path):
    assert main(["fit", f"results={shared / 'gadre-scaling'}", "dataset=rpj", "method=gadre", "bootstrap=0",
                 f"out={tmp_path}"]) == 0
    targets = set(pd.read_csv(tmp_path / "predictions.csv")["target"])
    assert len(targets) == 2 and any("1b" in t for t in targets) and any("7b" in t for t in targets)
