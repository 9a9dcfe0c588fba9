"""`ladder run` with ladder.lr_schedule=wsds or branch: one trunk per size, and every rung still its own
directory with checkpoints, record and results that `ladder status`, `ladder eval` and the fit read."""
import json
from pathlib import Path

import pytest

from ladder.core.configs import ConfigError
from ladder.core.layout import rung_dir, trunk_dir
from ladder.core.plan import build_plan
from ladder.orchestration.pipeline import run_ladder
from ladder.orchestration.status import read_status, status_table
from train.rundir import read_record


def _results(cfg, rung):
    return [json.loads(line) for line in (rung_dir(cfg.out_dir, rung.rung_id) / "results.jsonl").open()]


def test_a_wsds_ladder_gives_every_rung_its_directory_and_fits(tiny_ladder):
    cfg = tiny_ladder("ladder.lr_schedule=wsds", "ladder.multipliers=[1,2,3]",
                      "ladder.targets=[{name: big, params: 1e6, tokens: 2e7}]")
    assert run_ladder(cfg) == 0
    plan = build_plan(cfg)
    for trunk in plan.jobs:
        saved = sorted(p.name for p in (trunk_dir(cfg.out_dir, trunk.name) / "checkpoints").glob("step-*"))
        linked = []
        ends = trunk.segment_ends
        for rung, start, end in zip(trunk.rungs, (0,) + ends, ends):
            directory = rung_dir(cfg.out_dir, rung.rung_id)
            own = sorted((directory / "checkpoints").glob("step-*"))
            assert all(p.is_symlink() and start < int(p.name[5:]) <= end for p in own)  # its own segment only
            assert own[-1].name == f"step-{end:08d}"  # the bottom of its decay is its final checkpoint
            linked += [p.name for p in own]
            record = read_record(directory)
            assert record["state"] == "done" and record["step"] == end == rung.hp.steps
            assert record["loss"] is not None and record["last_checkpoint"] == f"checkpoints/{own[-1].name}"
            results = _results(cfg, rung)
            assert {r["step"] for r in results} == {int(p.name[5:]) for p in own}
            assert [r["step"] for r in results if r["final"]] == [end] * len({r["metric"] for r in results})
            assert all(r["run"] == rung.rung_id and r["run_tokens"] == rung.tokens for r in results)
        assert linked == saved  # every trunk checkpoint belongs to exactly one rung
    table = status_table(plan, cfg.out_dir)
    assert "9 done, 0 running, 0 failed, 0 pending" in table and "smoke-48-c4-wsds  done" in table
    assert "100.0 %" in table
    assert "big" in (Path(cfg.out_dir) / "report" / "predictions.csv").read_text()  # the fit read it unchanged

    stamps = {p: p.stat().st_mtime_ns for p in Path(cfg.out_dir).glob("*/*/results.jsonl")}
    assert run_ladder(cfg, fit=False) == 0  # again: nothing trained or evaluated twice
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    rung = plan.rungs[1]  # as if a crash hit between a trunk checkpoint and its rung's link and record
    final = rung_dir(cfg.out_dir, rung.rung_id) / "checkpoints" / f"step-{rung.hp.steps:08d}"
    final.unlink()
    (rung_dir(cfg.out_dir, rung.rung_id) / "record.json").unlink()
    assert read_status(cfg.out_dir, rung).state == "pending"
    assert run_ladder(cfg, fit=False) == 0
    assert final.is_symlink() and read_status(cfg.out_dir, rung).state == "done"
    from ladder.orchestration.rung import run_job

    trunk = plan.jobs[0]
    (trunk_dir(cfg.out_dir, trunk.name) / "record.json").write_text('{"state": "do')  # a corrupt trunk record
    assert run_job(cfg, trunk.name) == "done"  # dropped; the trunk resumes from its last checkpoint
    assert read_record(trunk_dir(cfg.out_dir, trunk.name))["step"] == trunk.segment_ends[-1]


@pytest.mark.slow
def test_a_branch_ladder_decays_each_rung_from_its_fork(tiny_ladder):
    cfg = tiny_ladder("ladder.lr_schedule=branch", "ladder.sizes=[smoke-24]", "ladder.multipliers=[1,2,3]",
                      "ladder.lr_decay_fraction=0.3")
    assert run_ladder(cfg, fit=False) == 0
    trunk = build_plan(cfg).jobs[0]
    forks = trunk.segment_ends
    assert read_record(trunk_dir(cfg.out_dir, trunk.name))["step"] == forks[-1]  # the trunk stops at the last fork
    for rung, fork, end in zip(trunk.rungs, forks, (r.hp.steps for r in trunk.rungs)):
        directory = rung_dir(cfg.out_dir, rung.rung_id)
        own = sorted((directory / "checkpoints").glob("step-*"))
        assert own[-1].name == f"step-{end:08d}" and not own[-1].is_symlink()  # its branch's own
        assert f"step-{fork:08d}" in [p.name for p in own if p.is_symlink()]  # where it forked from
        assert read_status(cfg.out_dir, rung).state == "done"
        lrs = [json.loads(line)["lr"] for line in (directory / "metrics.jsonl").open()]
        assert len(lrs) == end - fork and lrs[0] == pytest.approx(rung.hp.lr) and lrs[-1] < lrs[0]
        assert max(r["step"] for r in _results(cfg, rung) if r["final"]) == end


def test_a_branch_that_fails_is_reported_as_its_rung_not_the_trunk(tiny_ladder, monkeypatch, capsys):
    import ladder.orchestration.publish as publish

    cfg = tiny_ladder("ladder.lr_schedule=branch", "ladder.sizes=[smoke-24]", "ladder.multipliers=[1,2,3]",
                      "ladder.lr_decay_fraction=0.3")
    trunk = build_plan(cfg).jobs[0]
    first, second, third = trunk.rungs
    real = publish.make_eval_hook

    def failing_on_the_second(eval_cfg, directory):
        hook = real(eval_cfg, directory)

        def failing(checkpoint, *args, **kwargs):
            if Path(checkpoint).parent.parent == rung_dir(cfg.out_dir, second.rung_id):  # its branch's own
                raise RuntimeError("evaluation broke")
            return hook(checkpoint, *args, **kwargs)
        return failing

    monkeypatch.setattr(publish, "make_eval_hook", failing_on_the_second)
    assert run_ladder(cfg, fit=False) == 1
    out = capsys.readouterr().out
    assert f"rung {second.rung_id} failed: RuntimeError: evaluation broke" in out
    # The branch after it never ran: a failure, not "pending", at the end of the run.
    assert f"rung {third.rung_id} failed: pending: its job ended before training it" in out
    assert read_record(trunk_dir(cfg.out_dir, trunk.name))["state"] == "done"  # not blamed
    assert read_status(cfg.out_dir, first).state == "done" and read_status(cfg.out_dir, second).state == "failed"
    monkeypatch.setattr(publish, "make_eval_hook", real)
    assert run_ladder(cfg, fit=False) == 0  # the same command again finishes it


def test_a_finished_wsds_ladder_given_a_larger_multiplier_continues_its_trunk(tiny_ladder, tmp_path):
    """Its trunk continues from its last checkpoint (the bottom of its last decay) to the new rung's D, exactly
    as a ladder trained with the larger grid from the start, where the training split keeps its size
    (data.max_tokens); the old rungs are left as they were. A split sized by the ladder grows with it, and a
    trunk continued on it would read other sequences than it started on: that is refused, naming the split."""
    grid = ("ladder.lr_schedule=wsds", "ladder.sizes=[smoke-24]")
    grown = ("ladder.multipliers=[1,2,3]", f"out_dir={tmp_path}/grown")
    assert run_ladder(tiny_ladder(*grid, "ladder.multipliers=[1,2]", f"out_dir={tmp_path}/grown"), fit=False) == 0
    with pytest.raises(ConfigError, match="data.split_tokens: ") as refused:
        run_ladder(tiny_ladder(*grid, *grown), fit=False)
    assert "to continue on the split it started on, set data.max_tokens=" in str(refused.value)
    split = f"data.max_tokens={max(r.trained_tokens for r in build_plan(tiny_ladder(*grid, *grown)).rungs)}"
    fresh = tiny_ladder(*grid, "ladder.multipliers=[1,2,3]", split, f"out_dir={tmp_path}/fresh")
    assert run_ladder(fresh, fit=False) == 0
    assert run_ladder(tiny_ladder(*grid, "ladder.multipliers=[1,2]", split), fit=False) == 0
    cfg = tiny_ladder(*grid, "ladder.multipliers=[1,2,3]", split)
    old = {p: p.stat().st_mtime_ns for p in Path(cfg.out_dir).glob("rungs/*/results.jsonl")}
    assert run_ladder(cfg, fit=False) == 0
    new = build_plan(cfg).rungs[-1]
    assert [read_status(cfg.out_dir, r).state for r in build_plan(cfg).rungs] == ["done"] * 3
    assert read_record(rung_dir(cfg.out_dir, new.rung_id))["loss"] == read_record(rung_dir(fresh.out_dir, new.rung_id))["loss"]
    assert {p: p.stat().st_mtime_ns for p in old} == old
    assert max(r["step"] for r in _results(cfg, new)) == new.hp.steps


@pytest.mark.slow
def test_a_finished_branch_ladder_given_a_larger_multiplier_continues_its_trunk_from_its_last_fork(tiny_ladder,
                                                                                                   tmp_path):
    grid = ("ladder.lr_schedule=branch", "ladder.sizes=[smoke-24]", "ladder.lr_decay_fraction=0.3")
    largest = max(r.trained_tokens for r in build_plan(tiny_ladder(*grid, "ladder.multipliers=[1,2,3]")).rungs)
    split = f"data.max_tokens={largest}"
    fresh = tiny_ladder(*grid, "ladder.multipliers=[1,2,3]", split, f"out_dir={tmp_path}/fresh")
    assert run_ladder(fresh, fit=False) == 0
    assert run_ladder(tiny_ladder(*grid, "ladder.multipliers=[1,2]", split), fit=False) == 0
    cfg = tiny_ladder(*grid, "ladder.multipliers=[1,2,3]", split)
    assert run_ladder(cfg, fit=False) == 0
    trunk, new = build_plan(cfg).jobs[0], build_plan(cfg).rungs[-1]
    assert read_record(trunk_dir(cfg.out_dir, trunk.name))["step"] == trunk.segment_ends[-1]
    assert read_record(rung_dir(cfg.out_dir, new.rung_id))["loss"] == read_record(rung_dir(fresh.out_dir, new.rung_id))["loss"]


@pytest.mark.parametrize("change,named", [
    ("ladder.lr_schedule=cosine", "ladder.lr_schedule: wsds → cosine"),
    ("ladder.lr_schedule=branch", "ladder.lr_schedule: wsds → branch"),
    ("ladder.lr_decay_fraction=0.3", "ladder.lr_decay_fraction: 0.1 → 0.3"),
    ("seed=1", "seed: 0 → 1"),
    ("train.seed=1", "train.seed: 0 → 1"),
    ("data.val_tokens=2048", "data.val_tokens: 4096 → 2048"),
    ("ladder.recipe=open_lm", "rung.hp.weight_decay: 0.1 → 0.033"),  # the LR, batch, ... of every rung
    # A multiplier between two trained ones moves the decay of the larger: its checkpoints are another run's.
    ("ladder.multipliers=[1,1.5,2]", "lr_curve: steps 0-14: wsd, warmup 1, decays [6, 7) [13, 14) → "),
    # The decay's shape: the same windows, other LRs in them.
    ("ladder.lr_decay_shape=1-sqrt", "lr_curve: steps 0-7: wsd, warmup 1, decays [6, 7) → "
                                     "steps 0-7: wsd, warmup 1, 1-sqrt decays [6, 7)"),
])
@pytest.mark.parametrize("command", ["run", "train"])
def test_a_finished_ladder_run_with_settings_that_change_its_rungs_is_refused(finished, capsys, change, named,
                                                                                command):
    from ladder.orchestration.cli import main

    out_dir = Path(next(o.split("=", 1)[1] for o in finished if o.startswith("out_dir=")))
    plan = (out_dir / "plan.json").read_text()
    assert main([command, *finished, change]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ladder {command}: error: out_dir={out_dir}: rungs/smoke-24-c4-M") and "\n" not in err
    assert named in err and "use another out_dir" in err
    assert (out_dir / "plan.json").read_text() == plan  # nothing rewritten


def test_a_trunk_stopped_by_sigterm_leaves_its_running_rung_interrupted_not_stale(tiny_ladder, monkeypatch):
    import ladder.orchestration.publish as publish
    from ladder.core.interrupt import Interrupted

    cfg = tiny_ladder("ladder.lr_schedule=wsds", "ladder.sizes=[smoke-24]", "train.checkpoint_fractions=[0.25,1.0]")

    def stopped_before_evaluating(eval_cfg, directory):
        def hook(*args, **kwargs):
            raise Interrupted("SIGTERM")
        return hook

    monkeypatch.setattr(publish, "make_eval_hook", stopped_before_evaluating)
    with pytest.raises(Interrupted):
        run_ladder(cfg, fit=False)
    status = read_status(cfg.out_dir, build_plan(cfg).rungs[0])  # the trunk's first checkpoint is in its segment
    assert status.state == "interrupted" and "SIGTERM" in status.reason


def test_a_damaged_checkpoint_of_a_done_trunk_is_named_and_its_record_kept(finished, capsys, caplog):
    from ladder.orchestration.compose import load

    cfg = load(finished)
    trunk, rung = build_plan(cfg).jobs[0], build_plan(cfg).rungs[0]
    weights = rung_dir(cfg.out_dir, rung.rung_id) / "checkpoints" / f"step-{rung.hp.steps:08d}" / "model.safetensors"
    with open(weights, "r+b") as f:  # the trunk's file, through the rung's link
        f.truncate(weights.stat().st_size // 2)
    (rung_dir(cfg.out_dir, rung.rung_id) / "results.jsonl").unlink()  # its evaluation lost: the run redoes it
    assert run_ladder(cfg, fit=False) == 1
    assert f"rung {rung.rung_id} failed: checkpoint(s) step-{rung.hp.steps:08d} not evaluated" in capsys.readouterr().out
    assert f"{weights}: " in caplog.text and "when it was written" in caplog.text
    assert read_record(trunk_dir(cfg.out_dir, trunk.name))["state"] == "done"  # never rewritten to failed
    assert read_status(cfg.out_dir, rung).state == "done"


def test_a_truncated_trunk_record_of_a_finished_ladder_is_rewritten_by_ladder_run(finished):
    """Its rungs' records are whole, so no rung is to do; `ladder run` still runs the trunk's job, which finds its
    last checkpoint the end and writes its record again, and `ladder status` stops saying it is unreadable
    (issue 40 item 4)."""
    from ladder.orchestration.compose import load

    cfg = load(finished)
    plan = build_plan(cfg)
    trunk = plan.jobs[0]
    record = trunk_dir(cfg.out_dir, trunk.name) / "record.json"
    record.write_text(record.read_text()[:20])
    assert "unreadable record" in status_table(plan, cfg.out_dir)
    assert run_ladder(cfg, fit=False) == 0
    assert read_record(trunk_dir(cfg.out_dir, trunk.name))["state"] == "done"
    assert "unreadable" not in status_table(plan, cfg.out_dir)


@pytest.mark.slow
def test_torchrun_workers_train_a_trunk_and_publish_its_checkpoints(tiny_ladder):
    from ladder.orchestration.rung import run_job

    cfg = tiny_ladder("ladder.lr_schedule=wsds", "ladder.sizes=[smoke-24]", "train=ddp_cpu", "train.micro_batch_size=8",
                      "train.wandb.mode=disabled", "train.progress=false")
    trunk = build_plan(cfg).jobs[0]
    assert run_job(cfg, trunk.name) == "done"
    assert "world_size: 2" in (trunk_dir(cfg.out_dir, trunk.name) / "config.yaml").read_text()
    for rung in trunk.rungs:  # each rung linked, recorded and evaluated
        assert read_status(cfg.out_dir, rung).state == "done"
        assert {"c4_val:loss", "derived:acc"} <= {r["metric"] for r in _results(cfg, rung) if r["final"]}


def test_a_ladder_trained_before_lr_curves_left_the_recipe_is_still_its_own(finished):
    """Its identities held rung.hp.lr_schedule and rung.hp.decays, its config.yaml the run's curve in its recipe:
    the same ladder run again finds nothing changed."""
    from omegaconf import OmegaConf

    from ladder.orchestration import identity
    from ladder.orchestration.compose import load

    cfg = load(finished)
    plan = build_plan(cfg)
    for path in Path(cfg.out_dir).glob("*/*/identity.json"):
        stored = json.loads(path.read_text())
        if "rung.hp.lr" in stored:
            path.write_text(json.dumps({**stored, "rung.hp.lr_schedule": "cosine", "rung.hp.decays": []}))
    for path in Path(cfg.out_dir).glob("*/*/config.yaml"):
        written = OmegaConf.to_container(OmegaConf.load(path))
        if "run" in written:
            curve = written["run"].pop("curve")
            written["run"]["hp"].update(lr_schedule=curve["kind"], decays=curve["decays"])
            OmegaConf.save(OmegaConf.create(written), path)
    identity.check(cfg, plan, plan.jobs)  # nothing differs
    changed = load([*finished, "ladder.lr_decay_shape=1-sqrt"])
    with pytest.raises(ConfigError, match=r"lr_curve: .* → .*1-sqrt decays"):
        identity.check(changed, build_plan(changed), build_plan(changed).jobs)
