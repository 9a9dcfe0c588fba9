import pytest

from ladder.core.plan import build_plan
from ladder.orchestration.compose import load
from ladder.orchestration.resources import eval_compute, resources_for


def rungs(*overrides):
    """The config and its rungs' own runs (the olmo ladder is cosine: a job per rung), by rung id."""
    cfg = load(["ladder=olmo", "launcher=slurm", *overrides])
    return cfg, {j.name: j.run for j in build_plan(cfg).jobs}


def test_bigger_rungs_get_more_gpus_and_fit_the_time_limit():
    cfg, by_id = rungs()
    small = resources_for(by_id["olmo-190M-c4-M20"], cfg.launcher)
    large = resources_for(by_id["olmo-1B-c4-M200"], cfg.launcher)
    assert small.nodes * small.gpus_per_node < large.nodes * large.gpus_per_node
    assert large.time_min <= cfg.launcher.max_time_min
    assert large.gpus_per_node == 8 and large.nodes > 1  # 1B at 200 × N: ~2000 GPU hours


def test_overrides_win_over_the_rule():
    cfg, by_id = rungs("launcher.gpus=2", "launcher.time_min=30", "launcher.mem_gb=100")
    res = resources_for(by_id["olmo-1B-c4-M200"], cfg.launcher)
    assert (res.nodes, res.gpus_per_node, res.time_min, res.mem_gb) == (1, 2, 30, 100)


def test_cpu_jobs_have_no_gpus():
    cfg = load(["ladder=smoke", "launcher=slurm_cpu"])
    res = resources_for(build_plan(cfg).jobs[0].run, cfg.launcher)
    assert res.gpus_per_node == 0 and res.tasks_per_node == 1 and res.nodes == 1


def evaluation(*overrides) -> dict:
    cfg = load(list(overrides))
    return eval_compute(cfg, build_plan(cfg))


def test_eval_compute_follows_the_eval_config_and_lengthens_cpu_jobs():
    # The OLMo suite (33K examples, 5-shot, ~500 tokens a prompt) on a 1B model: ~4e16 FLOPs per checkpoint.
    olmo = evaluation("ladder=olmo", "eval=olmo")
    per_checkpoint = olmo["olmo-1B-c4-M20"] / 10  # the olmo ladder checkpoints every tenth
    assert 2e16 < per_checkpoint < 8e16
    assert evaluation("ladder=olmo", "eval=olmo", "eval.num_fewshot=0")["olmo-1B-c4-M20"] < olmo["olmo-1B-c4-M20"]
    assert evaluation("ladder=olmo", "eval=olmo", "train.checkpoint_fractions=[1.0]")["olmo-1B-c4-M20"] == \
        olmo["olmo-1B-c4-M20"] / 10
    cpu = load(["ladder=smoke", "ladder.lr_schedule=cosine", "launcher=slurm_cpu", "launcher.cpu_flops=1e7",
                 "launcher.max_time_min=100000"])
    small = build_plan(cpu).jobs[0].run
    assert resources_for(small, cpu.launcher, eval_compute(cpu, build_plan(cpu))[small.name]).time_min > \
        resources_for(small, cpu.launcher).time_min


@pytest.mark.parametrize("schedule", ["wsds", "branch"])
def test_a_trunk_ladder_evaluates_the_checkpoints_its_runs_write_not_one_set_per_rung(schedule):
    from ladder.core.schedules import checkpoint_steps

    cosine = evaluation("ladder=smoke", "ladder.lr_schedule=cosine")
    cfg = load(["ladder=smoke", f"ladder.lr_schedule={schedule}"])
    plan, fractions = build_plan(cfg), list(cfg.train.checkpoint_fractions)
    per_rung = eval_compute(cfg, plan)
    for trunk in plan.jobs:
        first = trunk.rungs[0]  # every rung of a trunk has the same N, so the same cost per checkpoint
        per_checkpoint = cosine[first.rung_id] / len(checkpoint_steps(first.hp.steps, fractions))
        written = len(trunk.run.saved_steps(fractions))  # the trunk's, then each branch's after its fork
        written += sum(sum(s > f.start_step for s in f.saved_steps(fractions)) for f in trunk.follow_ups)
        assert len(trunk.follow_ups) == (3 if schedule == "branch" else 0)
        assert sum(per_rung[r.rung_id] for r in trunk.rungs) == pytest.approx(per_checkpoint * written)
        assert written < sum(len(checkpoint_steps(r.hp.steps, fractions)) for r in trunk.rungs)  # fewer than rung by rung
