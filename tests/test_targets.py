"""One target type and one reader of it (ladder.core.targets) for ladder configs, fit configs and the pipeline
between them."""
import re

import pandas as pd
import pytest
from omegaconf import OmegaConf

from fit.errors import FitInputError
from fit.sources import load_points
from fit.targets import resolve_targets
from ladder.core.configs import ConfigError
from ladder.core.plan import build_plan
from ladder.core.targets import NAMED, Target, TargetSpec, read_target
from ladder.orchestration.compose import load
from ladder.orchestration.pipeline import _fit_config


@pytest.fixture
def points(tmp_path):
    """Eight runs: sizes 190M, 370M, 760M, 1.3B at M = 20, 40."""
    rows = [{"run": f"r{n:.0f}-{m}", "params": n, "tokens": n * m, "c4:loss": 1.8 + 400 / n ** 0.34 + 410 / (n * m) ** 0.28}
            for n in (190e6, 370e6, 760e6, 1.3e9) for m in (20, 40)]
    pd.DataFrame(rows).to_csv(tmp_path / "points.csv", index=False)
    return load_points(str(tmp_path / "points.csv"))


def handed_on(cfg):
    """The targets `ladder run` hands its fit, as `ladder fit` reads them back from the fit settings' YAML."""
    fit = OmegaConf.create(OmegaConf.to_yaml(_fit_config(cfg, build_plan(cfg))))
    return OmegaConf.to_container(fit.targets)


def test_ladder_run_and_ladder_fit_give_the_same_target_objects(points):
    cfg = load(["ladder=olmo"])
    plan = build_plan(cfg)
    by_name = resolve_targets(["7B-4T", "13B-5T"], points, [])
    assert plan.targets == by_name == resolve_targets(handed_on(cfg), points, []) == list(NAMED.values())
    assert by_name[1].flops_per_token == 91335915520  # kept on the way: the FLOPs fit reads it


@pytest.mark.parametrize("ladder", ["gadre", "node", "smoke"])
def test_every_shipped_ladders_targets_reach_its_fit_unchanged(points, ladder):
    cfg = load([f"ladder={ladder}"])
    assert resolve_targets(handed_on(cfg), points, []) == build_plan(cfg).targets


def test_the_forms_of_a_target():
    assert read_target("13B-5T") is NAMED["13B-5T"]
    assert read_target("190M-2xC") == TargetSpec("190M-2xC", size="190M", multiplier=40.0)
    assert read_target({"size": "1B", "multiplier": 20}) == TargetSpec("1B-M20", size="1B", multiplier=20.0)
    assert read_target({"params": 7e9, "tokens": 1e11}) == TargetSpec("N=7e+09,D=1e+11", params=7e9, tokens=1e11)
    spec = read_target({"name": "x", "size": "1B", "tokens": 3e10, "flops_per_token": 7e9})
    assert spec.resolve(lambda size: 1e9, "targets") == Target("x", 1e9, 3e10, 7e9)
    for target in NAMED.values():
        assert read_target(target.as_spec()).resolve(None, "targets") == target


@pytest.mark.parametrize("spec,message", [
    ("smoke-64-0", "ladder.targets[smoke-64-0]: multiplier='0' of target 'smoke-64-0' must be a positive number"),
    ("{size: smoke-64, multiplier: 0}", "ladder.targets[0]: multiplier=0 of target {'size': 'smoke-64', "
                                        "'multiplier': 0} must be a positive number"),
    ("{name: a, params: 1e9}", "ladder.targets[a]: target 'a': give exactly one of tokens or multiplier"),
    ("{name: a, params: 1e9, size: 1B, tokens: 1e10}", "ladder.targets[a]: target 'a': give exactly one of params or size"),
    ("{name: a, parms: 1e9, tokens: 1}", "ladder.targets[a]: target 'a' has unknown key(s) parms"),
    ("{name: a, params: 1e9, tokens: 1e10, flops_per_token: -1}", "flops_per_token=-1 of target 'a' must be a positive"),
    ("nope", "ladder.targets[nope]: unknown target 'nope': not a named one (7B-4T, 13B-5T) and not SIZE-MULT"),
])
def test_a_bad_ladder_target_is_one_line_naming_it(spec, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_plan(load(["ladder=smoke", f"ladder.targets=[{spec}]"]))


@pytest.mark.parametrize("spec,message", [
    ("190M-0", "targets: multiplier='0' of target '190M-0' must be a positive number"),  # was a prediction of inf
    ("200M-0", "targets: multiplier='0' of target '200M-0' must be a positive number"),
    ("99B-20", "targets: size '99B' is not in the data (sizes: 190M, 370M, 760M, 1.3B)"),
])
def test_a_bad_fit_target_is_one_line_naming_it(points, spec, message):
    with pytest.raises(FitInputError, match=re.escape(message)):
        resolve_targets([spec], points, [])


def test_a_fit_target_at_a_run_of_the_data_is_that_run(points):
    (run,) = resolve_targets(["190M-1xC"], points, [])
    assert run == Target("r190000000-20", 1.9e8, 3.8e9)
    (between,) = resolve_targets([{"size": "190M", "multiplier": 30}], points, [])
    assert between == Target("190M-M30", 1.9e8, 5.7e9)
