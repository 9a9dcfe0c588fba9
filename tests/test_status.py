import json

from ladder.core.layout import rung_dir
from ladder.core.plan import build_plan
from ladder.core.sizes import format_count
from ladder.orchestration.compose import load
from ladder.orchestration.lock import try_lock
from ladder.orchestration.status import read_status, status_table


def test_status_reads_each_rungs_record(tmp_path):
    plan = build_plan(load(["ladder=smoke", "ladder.lr_schedule=cosine"]))
    done, failed, corrupt = plan.rungs[:3]
    for rung, record in ((done, {"state": "done", "tokens": done.tokens}),
                         (failed, {"state": "failed", "tokens": 1000, "reason": "loss is nan at step 7"})):
        rung_dir(tmp_path, rung.rung_id).mkdir(parents=True)
        (rung_dir(tmp_path, rung.rung_id) / "record.json").write_text(json.dumps(record))
    rung_dir(tmp_path, corrupt.rung_id).mkdir(parents=True)
    (rung_dir(tmp_path, corrupt.rung_id) / "record.json").write_text("{truncated")

    assert read_status(tmp_path, done).state == "done"
    assert read_status(tmp_path, failed).reason == "loss is nan at step 7"
    assert read_status(tmp_path, corrupt).state == "corrupt"
    assert read_status(tmp_path, plan.rungs[3]).state == "pending"
    table = status_table(plan, tmp_path)
    assert "loss is nan at step 7" in table and "unreadable record" in table
    assert "1 done, 0 running, 1 failed, 1 corrupt, 9 pending" in table
    spent = done.compute + failed.compute * 1000 / failed.tokens
    assert f"compute {spent:.3g} of {plan.compute:.3g}" in table


def test_a_running_record_whose_runner_is_gone_is_stale(tmp_path):
    """A record says `running` while its runner holds the rung's lock; once the runner is gone (kill -9
    drops its lock with the process), the same record shows as stale."""
    rung = build_plan(load(["ladder=smoke", "ladder.lr_schedule=cosine"])).rungs[0]
    directory = rung_dir(tmp_path, rung.rung_id)
    directory.mkdir(parents=True)
    (directory / "record.json").write_text(json.dumps({"state": "running", "tokens": 10, "pid": 4321,
                                                       "host": "node7", "updated": "2026-11-29T07:00:00"}))
    lock = try_lock(directory)
    assert read_status(tmp_path, rung).state == "running"
    lock.release()
    status = read_status(tmp_path, rung)
    assert status.state == "stale" and "pid 4321 on node7" in status.reason and "ladder run" in status.reason


def test_a_running_trunk_shows_its_rungs_running_and_its_pace(tmp_path):
    """While a trunk trains, its rungs (no records of their own yet) show as running in it, not pending; the
    trunk's row gives the last logged loss, the token rate and the time left at that rate."""
    plan = build_plan(load(["ladder=smoke"]))
    trunk = next(j for j in plan.jobs if j.linked)
    directory = trunk.directory(tmp_path)
    directory.mkdir(parents=True)
    tokens = trunk.run.tokens // 2
    (directory / "record.json").write_text(json.dumps({"state": "running", "tokens": tokens}))
    (directory / "metrics.jsonl").write_text(json.dumps({"step": 5, "loss": 3.21449, "tokens": tokens,
                                                         "tokens_per_s": tokens / 600}) + "\n")
    lock = try_lock(directory)
    try:
        table = status_table(plan, tmp_path)
    finally:
        lock.release()
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    for rung in trunk.rungs:
        assert "running" in rows[rung.rung_id] and f"in its trunk {trunk.name}" in rows[rung.rung_id]
    assert rows[trunk.name].endswith(f"loss 3.214, {format_count(tokens / 600)} tok/s, ETA 10 min")
    assert f"{len(trunk.rungs)} running" in table


def test_status_shows_the_runs_own_plan_without_its_overrides(tmp_path, capsys):
    """`ladder status out_dir=DIR` of a run made with overrides shows that run's rungs (its plan.json keeps the
    ladder that made them), not the default ladder's."""
    from ladder.orchestration.cli import main
    from ladder.orchestration.pipeline import _write_plan

    cfg = load(["ladder=smoke", "ladder.sizes=[smoke-24,smoke-32]", "ladder.multipliers=[1,2]",
                "ladder.datasets=[smoke,smoke_wiki]", f"out_dir={tmp_path}"])
    plan = build_plan(cfg)
    _write_plan(cfg, plan, tmp_path)
    assert main(["status", f"out_dir={tmp_path}"]) == 0
    table = capsys.readouterr().out
    assert "0 done, 0 running, 0 failed, 8 pending" in table
    assert "smoke-32-smoke_wiki-M2" in table and "smoke-64" not in table
