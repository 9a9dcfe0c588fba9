import json
import math
import re

import pytest

from ladder.core.configs import ConfigError
from ladder.core.plan import build_plan
from ladder.orchestration.compose import load
from ladder.orchestration.plan_format import as_csv, as_json, table


def plan_of(*overrides):
    return build_plan(load(list(overrides)))


def test_olmo_plan_follows_the_published_recipe():
    plan = plan_of("ladder=olmo")
    assert len(plan.rungs) == 16
    rung = next(r for r in plan.rungs if r.rung_id == "olmo-190M-c4-M20")
    # batch_size_in_tokens and learning_rate_peak of shared/data/olmo-ladder/runs/190M-1xC.csv
    assert rung.hp.batch_size * rung.shape.seq_len == 524288
    assert rung.hp.lr == pytest.approx(0.000972728518721015, rel=1e-6)
    assert rung.tokens == round(20 * 190354176)
    assert rung.compute == pytest.approx(6 * 190354176 * rung.tokens)
    assert rung.hp.final_lr == pytest.approx(0.1 * rung.hp.lr)
    batches = {r.shape.name: r.hp.batch_size * 4096 for r in plan.rungs}
    assert batches == {"olmo-190M": 524288, "olmo-370M": 786432, "olmo-760M": 1310720, "olmo-1B": 1572864}
    fraction = plan.compute / next(t for t in plan.targets if t.name == "13B-5T").compute
    assert 0.005 < fraction < 0.02  # "about 1 %" of the 13B-5T target


def test_gadre_plan_uses_open_lm_hyperparameters():
    plan = plan_of("ladder=gadre")
    rung = next(r for r in plan.rungs if r.rung_id == "openlm-0.011B-c4-M20")
    assert rung.params == 10569312 and rung.hp.batch_size == 64 and rung.hp.warmup_steps == 100
    assert rung.hp.lr == 3e-3 and rung.hp.final_lr == 3e-5 and rung.hp.weight_decay == 0.033
    assert {t.name for t in plan.targets} == {"1.4B-M640", "6.9B-M20"}
    target = next(t for t in plan.targets if t.name == "1.4B-M640")
    assert target.params == 1439795200 and target.tokens == 640 * 1439795200


def test_paper_fit_set_costs_about_a_three_hundredth_of_the_target():
    plan = plan_of("ladder=gadre", "ladder.multipliers=[20]",
                   "ladder.extra_rungs=[{size: openlm-0.011B, multiplier: 320}]")
    assert len(plan.rungs) == 5
    target = next(t for t in plan.targets if t.name == "1.4B-M640")
    assert 250 < target.compute / plan.compute < 400


def test_overrides_select_multipliers_and_datasets():
    plan = plan_of("ladder=gadre", "ladder.multipliers=[20,80]", "ladder.datasets=[c4,redpajama]",
                   "ladder.extra_rungs=[]")
    assert len(plan.rungs) == 4 * 2 * 2
    assert {r.dataset for r in plan.rungs} == {"c4", "redpajama"}


def test_smoke_ladder_is_cpu_sized():
    plan = plan_of("ladder=smoke")
    sizes = {r.shape.name for r in plan.rungs}
    assert len(sizes) >= 4 and len({r.multiplier for r in plan.rungs}) >= 3
    assert sum(r.tokens for r in plan.rungs) < 2e7


@pytest.mark.parametrize("override,message", [
    ("ladder.sizes=[olmo-2B]", "unknown model 'olmo-2B'"),
    ("ladder.multipliers=[-5]", "must be positive"),
    ("ladder.multiplers=[20]", "ladder.multiplers"),
    ("ladder=olmo-typo", "ladder/olmo-typo"),
    ("ladder.multipliers=[abc]", "ladder.multipliers"),
    ("ladder.sizes=[olmo-190M,olmo-190M]", "same rung twice"),
])
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(ConfigError, match=message):
        plan_of("ladder=olmo", override)


def test_multiplier_outside_usual_range_warns(caplog):
    plan_of("ladder=olmo", "ladder.multipliers=[2000]")
    assert "outside 1–1000" in caplog.text


def test_machine_readable_forms_agree_with_the_plan():
    plan = plan_of("ladder=olmo")
    evaluation = {r.rung_id: 1e15 * i for i, r in enumerate(plan.rungs)}
    data = json.loads(as_json(plan, evaluation))
    assert [r["params"] for r in data["rungs"]] == [r.params for r in plan.rungs]
    assert [r["eval_compute"] for r in data["rungs"]] == list(evaluation.values())
    rows = as_csv(plan, evaluation).strip().splitlines()
    assert len(rows) == 17 and rows[0].startswith("rung_id,size,dataset,multiplier,params")
    assert math.isclose(sum(r["compute"] for r in data["rungs"]), plan.compute)
    assert "13B-5T" in table(plan, evaluation) and "eval C" in table(plan, evaluation)


@pytest.mark.parametrize("schedule,ratio", [("wsds", 20 / 35), ("branch", 0.5998)])
def test_wsds_and_branch_plans_train_each_size_once(schedule, ratio):
    cosine, plan = plan_of("ladder=smoke", "ladder.lr_schedule=cosine"), plan_of("ladder=smoke", f"ladder.lr_schedule={schedule}")
    assert [r.rung_id for r in plan.rungs] == [r.rung_id for r in cosine.rungs]  # every point keeps its identity
    assert [r.hp.steps for r in plan.rungs] == [r.hp.steps for r in cosine.rungs]
    assert len(plan.jobs) == 4 and plan.cosine_compute == cosine.compute
    assert plan.compute / cosine.compute == pytest.approx(ratio, rel=1e-3)
    trunk = plan.jobs[0]
    assert trunk.name == f"smoke-24-smoke-{schedule}" and trunk.linked
    # A tenth of each period (35, 34 and 69 steps) decays, to each rung's own last step.
    assert trunk.decays == ((35 - 4, 35), (69 - 3, 69), (138 - 7, 138))
    assert trunk.run.hp.warmup_steps == cosine.rungs[0].hp.warmup_steps  # the first rung's own warmup
    owners = [trunk.rungs.index(trunk.owner(s)) for s in (1, 35, 36, 131)]
    assert owners == ([0, 0, 1, 2] if schedule == "wsds" else [0, 1, 1, 2])
    text = table(plan, {r.rung_id: 0.0 for r in plan.rungs})
    assert f"{plan.compute / cosine.compute:.2f} of it" in text and "smoke-64-smoke-" in text
    data = json.loads(as_json(plan))
    assert data["lr_schedule"] == schedule and data["jobs"][0]["decays"] == [[31, 35], [66, 69], [131, 138]]


def test_any_increasing_multiplier_grid_and_extra_rungs_share_their_sizes_trunk():
    plan = plan_of("ladder=smoke", "ladder.lr_schedule=wsds", "ladder.sizes=[smoke-24]", "ladder.multipliers=[3,7,12]",
                   "ladder.extra_rungs=[{size: smoke-24, multiplier: 30}, {size: smoke-32, multiplier: 5}]")
    by_size = {t.rungs[0].shape.name: [r.multiplier for r in t.rungs] for t in plan.jobs}
    assert by_size == {"smoke-24": [3, 7, 12, 30], "smoke-32": [5]}
    lone = plan.jobs[1].run  # a size with one rung decays once: WSD
    assert len(lone.curve.decays) == 1 and lone.curve.decays[0][1] == lone.hp.steps


@pytest.mark.parametrize("overrides,message", [
    (["ladder.lr_schedule=wsdd"], "ladder.lr_schedule: expected one of ('cosine', 'wsd', 'wsds', 'branch')"),
    (["ladder.lr_decay_fraction=0.5"], "ladder.lr_decay_fraction: must lie in (0, 0.5)"),
    (["ladder.lr_decay_shape=sqrt"], "ladder.lr_decay_shape: expected one of ('linear', '1-sqrt'), got 'sqrt'"),
    (["ladder.multipliers=[5,5.01]"], "round to the same number of steps"),
    (["ladder.schedule=wsds"], "Key 'schedule' not in 'LadderConfig'"),  # renamed: lr_schedule
])
def test_bad_wsds_settings_are_named(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        plan_of("ladder=smoke", "ladder.lr_schedule=wsds", *overrides)


def test_shipped_ladders_have_wsds_variants_and_stay_cosine():
    for name in ("olmo", "gadre"):
        assert plan_of(f"ladder={name}").lr_schedule == "cosine"
        plan = plan_of(f"ladder={name}_wsds")
        assert plan.lr_schedule == "wsds" and 0.5 < plan.compute / plan.cosine_compute < 0.6
