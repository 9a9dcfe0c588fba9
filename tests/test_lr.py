"""The LR curves (ladder.core.lr): their factors, their descriptions, and how runs carry them."""
import json
import math
from dataclasses import replace

import pytest

from ladder.core.lr import DECAY_SHAPES, Cosine, WarmupStableDecay, curve_from_dict
from ladder.core.plan import Rung, build_plan
from ladder.core.recipes import Hyperparams
from ladder.core.schedules import SCHEDULES, Run
from ladder.core.sizes import ModelShape
from ladder.orchestration.compose import load
from ladder.orchestration.plan_format import as_json, table

HP = Hyperparams(batch_size=8, lr=1e-2, warmup_steps=2, steps=12, final_lr=1e-3, weight_decay=0.1, z_loss=1e-4)


def test_a_linear_decay_falls_in_equal_steps_from_the_peak_to_the_floor():
    curve = WarmupStableDecay.of(HP, decays=((6, 9), (9, 12)))
    f = [curve.factor(s) for s in range(12)]
    assert f[:6] == pytest.approx([0.5, 1, 1, 1, 1, 1])  # warmup reaches the peak on its last step
    assert f[6:9] == pytest.approx([1, 0.55, 0.1]) and f[9:] == pytest.approx([1, 0.55, 0.1])  # back to the peak


def test_a_1_sqrt_decay_falls_faster_at_first_and_ends_at_the_same_floor():
    linear, sqrt = (WarmupStableDecay.of(HP, decays=((2, 12),), shape=s) for s in ("linear", "1-sqrt"))
    for step in range(3, 11):  # inside the decay: below the linear one, as 1 − √p < 1 − p for p in (0, 1)
        progress = (step - 2) / 9
        assert sqrt.factor(step) == pytest.approx(0.1 + 0.9 * (1 - math.sqrt(progress)))
        assert sqrt.factor(step) < linear.factor(step)
    assert sqrt.factor(2) == linear.factor(2) == 1.0 and sqrt.factor(11) == pytest.approx(linear.factor(11)) == 0.1


def test_cosine_warms_up_then_falls_to_the_floor_at_the_last_step():
    f = [Cosine.of(HP).factor(s) for s in range(12)]
    assert f[:2] == pytest.approx([0.5, 1]) and f[-1] == pytest.approx(0.1)
    assert f[6] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 4 / 9)))


def test_descriptions_tell_the_shapes_apart_and_keep_the_linear_text():
    linear = WarmupStableDecay.of(HP, decays=((6, 9), (9, 12)))
    sqrt = WarmupStableDecay.of(HP, decays=((6, 9), (9, 12)), shape="1-sqrt")
    assert linear.describe(12) == "wsd, warmup 2, decays [6, 9) [9, 12)"  # as identities wrote it before shapes
    assert sqrt.describe(12) == "wsd, warmup 2, 1-sqrt decays [6, 9) [9, 12)"
    assert sqrt.describe(6) == linear.describe(6) == "wsd, warmup 2, decays none"  # equal LRs on steps 0 … 5
    assert Cosine.of(HP).describe(5) == "cosine to step 12, warmup 2"


def test_bad_windows_and_shapes_are_refused():
    with pytest.raises(ValueError, match="decay shape must be one of"):
        WarmupStableDecay.of(HP, decays=((6, 12),), shape="cosine")
    with pytest.raises(ValueError, match="non-overlapping windows within the run's 12 steps"):
        WarmupStableDecay.of(HP, decays=((6, 9), (8, 12)))
    with pytest.raises(ValueError, match="within the run's 12 steps"):
        WarmupStableDecay.of(HP, decays=((6, 13),))


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("shape", list(DECAY_SHAPES))
def test_a_run_carries_its_curve_through_its_written_form(schedule, shape):
    plan = build_plan(load(["ladder=smoke", f"ladder.lr_schedule={schedule}", f"ladder.lr_decay_shape={shape}",
                            "ladder.sizes=[smoke-24]"]))
    for job in plan.jobs:
        for run in (job.run, *job.follow_ups):
            assert Run.from_dict(run.as_dict()) == run and curve_from_dict(run.curve.as_dict()) == run.curve
            if run.curve.decays:
                assert run.curve.shape == shape


def test_a_run_written_before_curves_were_objects_reads_as_the_same_run():
    """config.yaml of a run trained before: its recipe held lr_schedule and decays."""
    (job,) = SCHEDULES["wsds"].jobs([_rung(12, 1.0), _rung(24, 2.0)], 0.25)
    old = job.run.as_dict()
    old["hp"].update(lr_schedule="wsd", decays=[list(d) for d in old.pop("curve")["decays"]])
    assert Run.from_dict(old) == job.run
    (alone,) = SCHEDULES["cosine"].jobs([_rung(12, 1.0)], 0.1)
    old = alone.run.as_dict()
    del old["curve"]
    old["hp"].update(lr_schedule="cosine", decays=[])
    assert Run.from_dict(old) == alone.run


def _rung(steps, multiplier):
    shape = ModelShape(name="tiny-24", d_model=24, n_layers=2, n_heads=2, mlp_hidden=64, vocab_size=256, seq_len=32)
    return Rung(shape, "fake", multiplier, shape.total_params, steps * 8 * 32, replace(HP, steps=steps))


def test_a_run_whose_curve_is_not_its_recipes_is_refused():
    (job,) = SCHEDULES["cosine"].jobs([_rung(12, 1.0)], 0.1)
    with pytest.raises(ValueError, match="is not one of its recipe"):
        replace(job.run, curve=Cosine.of(replace(HP, steps=24)))


def test_ladder_plan_names_the_decay_shape():
    plan = build_plan(load(["ladder=smoke", "ladder.lr_schedule=wsds", "ladder.lr_decay_shape=1-sqrt"]))
    text = table(plan, {r.rung_id: 0.0 for r in plan.rungs})
    assert "smoke-24-smoke-wsds: 138 steps, 1-sqrt decays 31–35, 66–69, 131–138" in text
    assert {j["decay_shape"] for j in json.loads(as_json(plan))["jobs"]} == {"1-sqrt"}
    wsd = build_plan(load(["ladder=smoke", "ladder.lr_schedule=wsd"]))
    assert "then a linear decay to the final LR" in table(wsd, {r.rung_id: 0.0 for r in wsd.rungs})
    cosine = build_plan(load(["ladder=smoke", "ladder.lr_schedule=cosine", "ladder.lr_decay_shape=1-sqrt"]))
    assert {j.run.curve.kind for j in cosine.jobs} == {"cosine"}  # the shape is a decay setting: cosine has none
