from ladder.core.plan import build_plan
from ladder.orchestration.compose import load
from ladder.orchestration.resources import eval_compute, resources_for


def rungs(*overrides):
    cfg = load(["ladder=olmo", "launcher=slurm", *overrides])
    return cfg, {r.rung_id: r for r in build_plan(cfg).rungs}


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
    res = resources_for(build_plan(cfg).rungs[0], cfg.launcher)
    assert res.gpus_per_node == 0 and res.tasks_per_node == 1 and res.nodes == 1


def test_eval_compute_follows_the_eval_config_and_lengthens_cpu_jobs():
    # The OLMo suite (33K examples, 5-shot, ~500 tokens a prompt) on a 1B model: ~4e16 FLOPs per checkpoint.
    cfg, by_id = rungs("eval=olmo")
    rung = by_id["olmo-1B-c4-M20"]
    per_checkpoint = eval_compute(cfg, rung) / 10  # the olmo ladder checkpoints every tenth
    assert 2e16 < per_checkpoint < 8e16
    assert eval_compute(load(["ladder=olmo", "eval=olmo", "eval.num_fewshot=0"]), rung) < eval_compute(cfg, rung)
    assert eval_compute(load(["ladder=olmo", "eval=olmo", "train.checkpoint_fractions=[1.0]"]), rung) == \
        eval_compute(cfg, rung) / 10
    cpu = load(["ladder=smoke", "launcher=slurm_cpu", "launcher.cpu_flops=1e7", "launcher.max_time_min=100000"])
    small = build_plan(cpu).rungs[0]
    assert resources_for(small, cpu.launcher, eval_compute(cpu, small)).time_min > \
        resources_for(small, cpu.launcher).time_min
