"""`ladder run` end to end on real stages: local C4-schema shards → BPE → tokens → training with
in-loop evaluation → fit → report, then a re-run that finds nothing to do."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from ladder.orchestration.pipeline import run_ladder
from ladder.core.layout import rung_dir
from ladder.core.plan import build_plan
from ladder.orchestration.status import read_status


def _wandb_log(directory: Path) -> bytes:
    """What an offline wandb run under `directory` recorded (its .wandb file holds each key as written)."""
    [run] = directory.glob("wandb/offline-run-*/run-*.wandb")
    return run.read_bytes()


def test_run_trains_evaluates_fits_and_skips_finished_work(tiny_ladder, tmp_path, capsys):
    cfg = tiny_ladder("ladder.targets=[{name: big, params: 1e6, tokens: 2e7}]", "train.wandb.mode=offline")
    assert run_ladder(cfg) == 0
    plan = build_plan(cfg)
    for rung in plan.rungs:
        assert read_status(cfg.out_dir, rung).state == "done"
        # wandb: each checkpoint's evaluation beside the training curves, the commit and the ladder's config.
        logged = _wandb_log(rung_dir(cfg.out_dir, rung.rung_id))
        assert all(key in logged for key in (b"eval/c4_val:loss", b"eval/derived:acc", b"harness_commit",
                                             b"multipliers"))  # the last only in the ladder's config
        config = yaml.safe_load((rung_dir(cfg.out_dir, rung.rung_id) / "config.yaml").read_text())
        ladder_config = yaml.safe_load((rung_dir(cfg.out_dir, rung.rung_id) / config["config"]).read_text())
        assert ladder_config["ladder"]["sizes"] == list(cfg.ladder.sizes) and config["harness_commit"]
        records = [json.loads(line) for line in (rung_dir(cfg.out_dir, rung.rung_id) / "results.jsonl").open()]
        steps = {r["step"] for r in records}
        assert len(steps) == 2 and max(steps) == rung.hp.steps  # both checkpoints, the last is final
        assert {"c4_val:loss", "derived:acc", "derived:bpb"} <= {r["metric"] for r in records}
        assert all(r["params"] == rung.params and r["run"] == rung.rung_id for r in records)
    assert len(list((tmp_path / "run" / "configs").glob("*.yaml"))) == 1  # one copy of it for every rung
    report = tmp_path / "run" / "report"
    assert (report / "predictions.csv").exists() and (report / "report.html").exists()
    assert "big" in (report / "predictions.csv").read_text()
    assert "report:" in capsys.readouterr().out
    assert b"predictions" in _wandb_log(tmp_path / "run") and b"report" in _wandb_log(tmp_path / "run")
    from ladder.orchestration.cli import fit_settings  # a later `ladder fit` of the run fits as the run did
    assert fit_settings([f"fit.results={tmp_path}/run"]).method == "chinchilla"

    checkpoints = sorted((tmp_path / "run").glob("rungs/*/checkpoints/step-*"))
    mtimes = [c.stat().st_mtime_ns for c in checkpoints]
    written = (report / "report.html").stat().st_mtime_ns
    assert run_ladder(cfg) == 0  # again: nothing is trained or evaluated twice, nor fitted
    assert [c.stat().st_mtime_ns for c in sorted((tmp_path / "run").glob("rungs/*/checkpoints/step-*"))] == mtimes
    said = capsys.readouterr().out
    assert "6 done, 0 running, 0 failed, 0 pending" in said and "nothing changed since the report" in said
    assert (report / "report.html").stat().st_mtime_ns == written
    _wandb_log(tmp_path / "run")  # still the one report run: the rerun started none
    assert run_ladder(tiny_ladder("ladder.targets=[{name: big, params: 1e6, tokens: 3e7}]")) == 0  # a new target
    assert (report / "report.html").stat().st_mtime_ns > written and "report:" in capsys.readouterr().out


def test_a_failing_rung_is_reported_and_the_rest_go_on(tiny_ladder, capsys):
    # A spike threshold below 1 makes every rung "diverge" once its window fills: all fail, none stops the ladder.
    cfg = tiny_ladder("ladder.sizes=[smoke-24]", "train.divergence.spike_factor=0.5",
                     "train.divergence.window=2")
    assert run_ladder(cfg) == 1
    out = capsys.readouterr().out
    assert out.count("failed: ") == 2 and "0 done, 0 running, 2 failed" in out
    assert "fit: skipped: no rung has evaluation results" in out  # said plainly, not a traceback


def test_torchrun_workers_train_and_evaluate_a_rung(tiny_ladder):
    from ladder.orchestration.rung import run_job

    cfg = tiny_ladder("ladder.sizes=[smoke-24]", "ladder.multipliers=[1]", "train=ddp_cpu",
                      "train.micro_batch_size=8", "train.wandb.mode=disabled", "train.progress=false",
                      "train.checkpoint_fractions=[1.0]")
    rung = build_plan(cfg).rungs[0]
    assert run_job(cfg, rung.rung_id) == "done"
    directory = rung_dir(cfg.out_dir, rung.rung_id)
    assert "world_size: 2" in (directory / "config.yaml").read_text()
    metrics = {json.loads(line)["metric"] for line in (directory / "results.jsonl").open()}
    assert {"c4_val:loss", "derived:acc"} <= metrics  # the workers' eval hook ran


def _final_loss(cfg, rung):
    return json.loads((rung_dir(cfg.out_dir, rung.rung_id) / "record.json").read_text())["loss"]


def _ladder_run(cfg, tmp_path):
    """`run_ladder` in a process of its own, as `ladder run` would be: every run of the comparison
    gets the same threads and process state, so their floating-point sums agree bit for bit."""
    config_file = tmp_path / f"{Path(cfg.out_dir).name}.yaml"
    config_file.write_text(OmegaConf.to_yaml(cfg))
    script = ("import sys; from omegaconf import OmegaConf; from ladder.orchestration.pipeline import run_ladder; "
              "from ladder.core.interrupt import stop_on_sigterm; stop_on_sigterm(); "  # as `ladder run` does
              "sys.exit(run_ladder(OmegaConf.load(sys.argv[1]), fit=False))")
    return subprocess.Popen([sys.executable, "-c", script, str(config_file)], env=os.environ.copy())


def test_a_killed_run_completes_on_rerun_with_the_uninterrupted_loss(tiny_ladder, tmp_path):
    """SIGKILL and SIGTERM (Slurm's preemption), each on its own out_dir, against one uninterrupted reference."""
    overrides = ["ladder.sizes=[smoke-48]", "ladder.multipliers=[2]", "train.checkpoint_fractions=[0.25,0.5,0.75,1.0]"]
    reference = tiny_ladder(*overrides, f"out_dir={tmp_path}/reference")
    assert _ladder_run(reference, tmp_path).wait() == 0
    for sig in (signal.SIGKILL, signal.SIGTERM):
        cfg = tiny_ladder(*overrides, f"out_dir={tmp_path}/{sig.name}")
        rung = build_plan(cfg).rungs[0]
        proc = _ladder_run(cfg, tmp_path)
        checkpoints = rung_dir(cfg.out_dir, rung.rung_id) / "checkpoints"
        deadline = time.time() + 120
        while not list(checkpoints.glob("step-*")) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(sig)  # killed once its first checkpoint is written, most often before its evaluation
        proc.wait()
        # SIGTERM is recorded; after SIGKILL the record says running, but nobody holds the rung.
        status = read_status(cfg.out_dir, rung)
        assert status.state == {signal.SIGKILL: "stale", signal.SIGTERM: "interrupted"}[sig], status
        assert _ladder_run(cfg, tmp_path).wait() == 0  # the same command again
        assert read_status(cfg.out_dir, rung).state == "done"
        assert _final_loss(cfg, rung) == _final_loss(reference, rung), sig.name
        assert _evaluated_steps(cfg, rung) == _evaluated_steps(reference, rung) == _checkpoint_steps(cfg, rung)


def _evaluated_steps(cfg, rung):
    results = rung_dir(cfg.out_dir, rung.rung_id) / "results.jsonl"
    return sorted({json.loads(line)["step"] for line in results.open()})


def _checkpoint_steps(cfg, rung):
    return [int(p.name.split("-")[1]) for p in sorted((rung_dir(cfg.out_dir, rung.rung_id) / "checkpoints").glob("step-*"))]


def test_a_checkpoint_committed_but_not_yet_evaluated_is_evaluated_on_rerun(tiny_ladder, monkeypatch):
    """A stop that lands between a checkpoint's commit and its evaluation: the re-run evaluates it."""
    import ladder.orchestration.publish as publish
    from ladder.core.interrupt import Interrupted
    from ladder.core.schedules import checkpoint_steps

    cfg = tiny_ladder("ladder.sizes=[smoke-24]", "ladder.multipliers=[1]")
    rung = build_plan(cfg).rungs[0]

    def stopped_before_evaluating(eval_cfg, directory):
        def hook(*args, **kwargs):
            raise Interrupted("SIGTERM")
        return hook

    with monkeypatch.context() as patch:
        patch.setattr(publish, "make_eval_hook", stopped_before_evaluating)
        with pytest.raises(Interrupted):
            run_ladder(cfg, fit=False)
    status = read_status(cfg.out_dir, rung)
    assert status.state == "interrupted" and "SIGTERM" in status.reason
    assert len(_checkpoint_steps(cfg, rung)) == 1 and not (rung_dir(cfg.out_dir, rung.rung_id) / "results.jsonl").exists()
    assert run_ladder(cfg, fit=False) == 0
    assert read_status(cfg.out_dir, rung).state == "done"
    assert _evaluated_steps(cfg, rung) == _checkpoint_steps(cfg, rung) == checkpoint_steps(rung.hp.steps, [0.5, 1.0])


def test_two_runners_on_one_ladder_train_each_rung_once(tiny_ladder, tmp_path):
    cfg = tiny_ladder("ladder.sizes=[smoke-24,smoke-32]", "ladder.multipliers=[1]", "train.log_every=1")
    first, second = _ladder_run(cfg, tmp_path), _ladder_run(cfg, tmp_path)
    assert first.wait() == 0 and second.wait() == 0
    for rung in build_plan(cfg).rungs:
        assert read_status(cfg.out_dir, rung).state == "done"
        directory = rung_dir(cfg.out_dir, rung.rung_id)
        steps = [json.loads(line)["step"] for line in (directory / "metrics.jsonl").open()]
        assert steps == list(range(1, rung.hp.steps + 1))  # trained once: every step logged once, none lost
        records = [json.loads(line) for line in (directory / "results.jsonl").open()]
        assert len({(r["step"], r["metric"]) for r in records}) == len(records)
        assert sorted({r["step"] for r in records}) == _checkpoint_steps(cfg, rung)


def test_a_rung_that_fails_before_training_is_recorded_failed_with_its_reason(tiny_ladder, capsys):
    cfg = tiny_ladder("ladder.sizes=[smoke-24]", "ladder.multipliers=[1000]")  # more tokens than the shards hold
    assert run_ladder(cfg) == 1
    status = read_status(cfg.out_dir, build_plan(cfg).rungs[0])
    assert status.state == "failed" and "NotEnoughTokens" in status.reason and "allow_repeat" in status.reason
    out = capsys.readouterr().out
    assert "fit: skipped: no rung has evaluation results" in out and "cannot detect" not in out


def test_a_corrupt_record_is_redone(tiny_ladder, capsys):
    cfg = tiny_ladder("ladder.sizes=[smoke-24]", "ladder.multipliers=[1]")
    rung = build_plan(cfg).rungs[0]
    rung_dir(cfg.out_dir, rung.rung_id).mkdir(parents=True)
    (rung_dir(cfg.out_dir, rung.rung_id) / "record.json").write_text('{"state": "do')
    assert run_ladder(cfg, fit=False) == 0
    assert read_status(cfg.out_dir, rung).state == "done"


def test_a_full_disk_fails_the_rung_cleanly_and_a_rerun_completes_it(tiny_ladder, tmp_path, monkeypatch, capsys):
    import errno

    import transformers

    from ladder.core.schedules import checkpoint_steps

    overrides = ["ladder.sizes=[smoke-32]", "ladder.multipliers=[2]", "train.checkpoint_fractions=[0.5,1.0]"]
    reference = tiny_ladder(*overrides, f"out_dir={tmp_path}/reference")
    assert run_ladder(reference, fit=False) == 0
    cfg = tiny_ladder(*overrides)
    rung = build_plan(cfg).rungs[0]
    save = transformers.PreTrainedModel.save_pretrained
    calls = []

    def second_save_hits_a_full_disk(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(self, *args, **kwargs)

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", second_save_hits_a_full_disk)
    assert run_ladder(cfg, fit=False) == 1
    status = read_status(cfg.out_dir, rung)
    assert status.state == "failed" and "No space left on device" in status.reason
    checkpoints = rung_dir(cfg.out_dir, rung.rung_id) / "checkpoints"
    half_way, end = checkpoint_steps(rung.hp.steps, [0.5, 1.0])
    named = f"cannot write checkpoint {checkpoints}/.tmp-step-{end:08d} (OSError: [Errno 28] No space left on device;"
    assert named in status.reason and "free there)" in status.reason  # the path, and the room left beside it
    assert named in capsys.readouterr().out
    complete = sorted(p.name for p in checkpoints.glob("step-*"))
    assert complete == [f"step-{half_way:08d}"]  # the half-written one is not taken for complete
    assert not list(checkpoints.glob(".tmp-*"))  # and is gone, so a full disk has the room to record why

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", save)  # space freed
    assert run_ladder(cfg, fit=False) == 0
    assert _final_loss(cfg, rung) == _final_loss(reference, rung)


@pytest.mark.slow
def test_a_disk_that_fills_mid_trunk_is_one_line_naming_the_file(tiny_ladder, tmp_path):
    """A real full disk (a small tmpfs; root only), with wandb writing offline beside the run: the trunk fails
    with one line naming the file it could not write (here a checkpoint), and nothing prints a traceback."""
    full = tmp_path / "full"
    full.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(full)],
                                           capture_output=True).returncode:
        pytest.skip("needs root that may mount a tmpfs")
    try:
        cfg = tiny_ladder("ladder.lr_schedule=wsds", "ladder.sizes=[smoke-24]", "ladder.multipliers=[1,2,4]",
                          "train.wandb.mode=offline", f"out_dir={full}/run",
                          "train.checkpoint_fractions=[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0]")
        config_file = tmp_path / "full.yaml"
        config_file.write_text(OmegaConf.to_yaml(cfg))
        script = ("import sys; from omegaconf import OmegaConf; from ladder.orchestration.pipeline import run_ladder; "
                  "sys.exit(run_ladder(OmegaConf.load(sys.argv[1]), fit=False))")
        done = subprocess.run([sys.executable, "-c", script, str(config_file)], capture_output=True, text=True,
                              env=os.environ.copy(), timeout=600)
    finally:
        subprocess.run(["umount", "--lazy", str(full)], check=True)  # wandb-core may still hold a file
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    failed = [line for line in done.stdout.splitlines() if line.startswith("rung ") and " failed: " in line]
    assert failed and all(f"{full}/run/" in line for line in failed), done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def test_ladder_run_plans_once_per_process(finished, monkeypatch):
    """`ladder run` builds its plan once and hands it on (jobs, Slurm, packing), rather than each step rebuilding it
    from the config: a rerun of a finished ladder plans exactly once."""
    import ladder.core.plan as plan_module
    from ladder.orchestration import cli, pipeline, rung

    calls = []
    real = plan_module.build_plan

    def counted(cfg):
        calls.append(1)
        return real(cfg)

    for module in (plan_module, pipeline, rung):  # a job's other processes read its job file (tests/test_jobfile.py)
        monkeypatch.setattr(module, "build_plan", counted)
    assert cli.main(["run", *finished]) == 1  # one size: trained and evaluated, but no law to fit
    assert len(calls) == 1
