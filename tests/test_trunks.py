"""`ladder run` with ladder.lr_schedule=wsds or branch: one trunk per size, and every rung still its own
directory with checkpoints, record and results that `ladder status`, `ladder eval` and the fit read."""
import json
import os
from pathlib import Path

import pytest

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
    import ladder.orchestration.rung as rung_module

    cfg = tiny_ladder("ladder.lr_schedule=branch", "ladder.sizes=[smoke-24]", "ladder.multipliers=[1,2]",
                      "ladder.lr_decay_fraction=0.3")
    trunk = build_plan(cfg).jobs[0]
    first, second = trunk.rungs
    real = rung_module.evaluate_unevaluated

    def failing_on_the_second(eval_cfg, directory):
        if directory == rung_dir(cfg.out_dir, second.rung_id):
            raise RuntimeError("evaluation broke")
        return real(eval_cfg, directory)

    monkeypatch.setattr(rung_module, "evaluate_unevaluated", failing_on_the_second)
    assert run_ladder(cfg, fit=False) == 1
    assert f"rung {second.rung_id} failed: RuntimeError: evaluation broke" in capsys.readouterr().out
    assert read_record(trunk_dir(cfg.out_dir, trunk.name))["state"] == "done"  # not blamed
    assert read_status(cfg.out_dir, first).state == "done" and read_status(cfg.out_dir, second).state == "failed"
    monkeypatch.setattr(rung_module, "evaluate_unevaluated", real)
    assert run_ladder(cfg, fit=False) == 0  # the same command again finishes it


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
