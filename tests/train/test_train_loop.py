"""The single-process training loop: schedule, checkpoints, resume, divergence, outputs."""
import json
import math
import os
import re
import signal
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

import train.loss
from train.config import DivergenceConfig, TrainConfig, WandbConfig
from ladder.core.schedules import SCHEDULES, checkpoint_steps
from train.loop import divergence, split_batch, train_run
from scripts.bench_train import training_loss
from ladder.core.layout import checkpoints, temporary_checkpoint_dir
from train.rundir import read_record
from train_fakes import FakeSequences, sequences_for, tiny_rung, tiny_run


def config(**overrides) -> TrainConfig:
    base = dict(micro_batch_size=4, checkpoint_fractions=[0.25, 0.5, 1.0], progress=False,
                wandb=WandbConfig(mode="disabled"))
    return TrainConfig(**{**base, **overrides})


def losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


class CrashingSequences(FakeSequences):
    """Raises after `crash_after` batches, as a killed process would stop mid-run."""

    def __init__(self, count, crash_after):
        super().__init__(count)
        self.crash_after = crash_after

    def batches(self, batch_size, start=0, **kwargs):
        for i, batch in enumerate(super().batches(batch_size, start, **kwargs)):
            if i == self.crash_after:
                raise KeyboardInterrupt("killed")
            yield batch


def test_split_batch_and_checkpoint_steps():
    assert split_batch(16, 1, 16) == (16, 16, 1)
    assert split_batch(16, 2, 4) == (8, 4, 2)
    assert split_batch(12, 1, 8) == (12, 6, 2)  # largest micro-batch dividing the batch
    with pytest.raises(ValueError):
        split_batch(10, 4, 4)
    assert checkpoint_steps(35, [0.1 * i for i in range(1, 11)]) == [4, 7, 11, 14, 18, 21, 25, 28, 32, 35]
    assert checkpoint_steps(12, [0.5]) == [6, 12]  # the end is always saved


@pytest.mark.parametrize("schedule", ["cosine", "wsd"])
def test_schedule_warms_up_then_decays_to_final_lr(schedule):
    run = SCHEDULES[schedule].jobs([tiny_rung(steps=100)], 0.2)[0].run
    hp = run.hp
    f = [run.curve.factor(s) for s in range(hp.steps)]
    assert f[0] == pytest.approx(1 / hp.warmup_steps) and f[hp.warmup_steps - 1] == pytest.approx(1.0)
    assert f[-1] == pytest.approx(hp.final_lr / hp.lr)
    assert all(a >= b - 1e-12 for a, b in zip(f[hp.warmup_steps:], f[hp.warmup_steps + 1:]))
    if schedule == "wsd":
        assert f[79] == 1.0 and f[81] < 1.0  # stable until the last 20 %


def test_loss_adds_z_loss_to_cross_entropy():
    logits, ids = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5))
    total, ce = training_loss(logits, ids, z_loss=0.1)
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 7), ids[:, 1:].reshape(-1))
    assert ce == pytest.approx(float(expected))
    assert total == pytest.approx(float(ce + 0.1 * torch.logsumexp(logits[:, :-1], -1).pow(2).mean()))


def test_divergence_rules():
    rule = DivergenceConfig(spike_factor=2.0, window=3)
    assert "non-finite" in divergence(float("nan"), [], rule)
    assert "non-finite" in divergence(float("inf"), [1.0] * 5, rule)
    assert divergence(5.0, [1.0, 1.0], rule) is None  # window not full yet
    assert "spike" in divergence(2.5, [1.0, 1.0, 1.0], rule)
    assert divergence(1.9, [1.0, 1.0, 1.0], rule) is None


def test_run_writes_formats_and_loadable_checkpoints(tmp_path):
    rung = tiny_run()
    tok_dir = tmp_path / "tokenizer"
    from tokenizers import Tokenizer, models
    PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0, "<eos>": 1}, unk_token="<unk>")),
                            eos_token="<eos>", unk_token="<unk>").save_pretrained(tok_dir)
    hooked = []
    result = train_run(rung, sequences_for(rung), tmp_path / "run", config(), tokenizer_dir=tok_dir,
                        eval_hook=lambda path, step, model, **kw: hooked.append(
                            (path.name, step, path.exists(), model.training, kw)))
    run = tmp_path / "run"
    assert result.state == "done" and result.step == 12 and result.tokens == 12 * 8 * 32
    assert [p.name for p in result.checkpoints] == ["step-00000003", "step-00000006", "step-00000012"]
    # The live model, in eval mode, in the training precision (fp32: no autocast), parameters not sharded.
    fp32 = {"dtype": None, "lockstep": False}
    assert hooked == [("step-00000003", 3, True, False, fp32), ("step-00000006", 6, True, False, fp32),
                      ("step-00000012", 12, True, False, fp32)]
    record = read_record(run)
    assert record["state"] == "done" and record["last_checkpoint"] == "checkpoints/step-00000012"
    assert (run / "config.yaml").exists()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert {"loss", "lr", "tokens", "tokens_per_s", "grad_norm", "mfu"} <= set(rows[0])
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert [r["lr"] for r in rows] == pytest.approx([rung.hp.lr * rung.curve.factor(r["step"] - 1) for r in rows])
    # A standard transformers directory: loads as is, with the size rule's parameter count.
    final = run / "checkpoints/step-00000012"
    model = AutoModelForCausalLM.from_pretrained(final)
    assert sum(p.numel() for p in model.parameters()) == rung.shape.total_params
    assert model.config.eos_token_id == 1 and (final / "tokenizer.json").exists()
    # A finished run is not trained again.
    again = train_run(rung, sequences_for(rung), run, config())
    assert again.state == "done" and losses(run) == [r["loss"] for r in rows]


@pytest.mark.parametrize("distributed", ["ddp", "fsdp"])  # FSDP2: the optimizer state saved sharded (DCP)
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, distributed):
    rung = tiny_run()
    whole = train_run(rung, sequences_for(rung), tmp_path / "whole", config(distributed=distributed))
    run = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train_run(rung, CrashingSequences(12 * 8, crash_after=8), run, config(distributed=distributed))
    assert read_record(run)["state"] == "interrupted" and "killed" in read_record(run)["reason"]
    assert [s for s, _ in checkpoints(run)] == [3, 6]
    temporary_checkpoint_dir(run, 9).mkdir()  # as if the crash hit a checkpoint write
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 9, "lo')  # and a metrics line
    resumed = train_run(rung, sequences_for(rung), run, config(distributed=distributed))
    assert resumed.state == "done" and resumed.loss == whole.loss
    assert losses(run) == losses(tmp_path / "whole")  # step for step, bit for bit on CPU
    assert not temporary_checkpoint_dir(run, 9).exists()
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "whole/checkpoints/step-00000012").state_dict()
    b = AutoModelForCausalLM.from_pretrained(run / "checkpoints/step-00000012").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost exception, on purpose
def test_a_sigterm_lost_in_a_finalizer_still_stops_the_run(tmp_path, monkeypatch):
    """The handler's exception is lost when the signal lands inside a finalizer (Python prints "Exception
    ignored" and goes on), as it did in a CI run; the next step stops the run all the same."""
    import ladder.core.interrupt as interrupt

    class SignalsWhenCollected:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(interrupt, "_received", None)
    previous = signal.getsignal(signal.SIGTERM)
    interrupt.stop_on_sigterm()
    try:
        rung = tiny_run()
        with pytest.raises(interrupt.Interrupted):
            train_run(rung, sequences_for(rung), tmp_path, config(),
                       eval_hook=lambda path, step, model, **kw: SignalsWhenCollected() if step == 3 else None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    record = read_record(tmp_path)
    assert record["state"] == "interrupted" and "SIGTERM" in record["reason"] and record["step"] == 3
    assert [s for s, _ in checkpoints(tmp_path)] == [3]


def test_the_run_trains_with_its_own_lr_schedule(tmp_path):
    run = SCHEDULES["wsd"].jobs([tiny_rung(steps=10)], 0.2)[0].run
    assert run.curve.kind == "wsd" and run.curve.decays == ((8, 10),)
    train_run(run, sequences_for(run), tmp_path, config())
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == pytest.approx([run.hp.lr * run.curve.factor(s) for s in range(10)])


def test_accumulation_matches_one_big_batch(tmp_path):
    rung = tiny_run(steps=4)
    one = train_run(rung, sequences_for(rung), tmp_path / "a", config(micro_batch_size=8))
    four = train_run(rung, sequences_for(rung), tmp_path / "b", config(micro_batch_size=2))
    assert losses(tmp_path / "a") == pytest.approx(losses(tmp_path / "b"), rel=1e-5)
    assert one.loss == pytest.approx(four.loss, rel=1e-5)


def poison(monkeypatch, bad_calls):
    """Make the loss (and so every gradient) NaN on the given 1-based calls of the loss."""
    calls, original = {"n": 0}, train.loss.linear_cross_entropy

    def poisoned(hidden, *args, **kwargs):
        calls["n"] += 1
        return original(hidden * math.nan if calls["n"] in bad_calls else hidden, *args, **kwargs)

    monkeypatch.setattr(train.loss, "linear_cross_entropy", poisoned)


def test_non_finite_loss_stops_run_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    poison(monkeypatch, range(15, 10**6))  # from the 8th step on (2 micro-batches a step)
    rung = tiny_run()
    result = train_run(rung, sequences_for(rung), tmp_path, config())
    record = read_record(tmp_path)
    assert result.state == "failed" and result.step == 8 and "non-finite" in result.reason
    assert record["state"] == "failed" and record["step"] == 8 and "non-finite" in record["reason"]
    assert record["last_checkpoint"] == "checkpoints/step-00000006"
    assert [s for s, _ in checkpoints(tmp_path)] == [3, 6]
    assert len(losses(tmp_path)) == 7


def test_non_finite_step_between_checks_is_skipped_then_named(tmp_path, monkeypatch):
    """With checks every 4 steps, a NaN at step 7 is found at the check of step 8 and named as step 7's
    (that its update is skipped on the device: test_optimizer_step_is_skipped_on_the_device_when_not_finite)."""
    poison(monkeypatch, {13, 14})
    rung = tiny_run()
    result = train_run(rung, sequences_for(rung), tmp_path, config(log_every=4))
    assert result.state == "failed" and result.step == 7 and "non-finite loss" in result.reason
    assert [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [3, 4, 6]


@pytest.mark.parametrize("distributed", ["ddp", "fsdp"])  # FSDP2's parameters and AdamW state are DTensors
def test_optimizer_step_is_skipped_on_the_device_when_not_finite(distributed):
    from train.backends import make_backend
    from train.loss import attach_loss
    from train.model import build_model
    from train.optim import make_optimizer, make_scheduler

    rung = tiny_run()
    backend = make_backend(config(device="cpu", distributed=distributed))
    model = attach_loss(build_model(rung.shape), rung.hp.z_loss)
    wrapped = backend.prepare(model, lambda m: make_optimizer(m, rung.hp),
                              lambda opt: make_scheduler(opt, rung.curve), 1, rung.hp)
    optimizer = backend.optimizer
    ids = sequences_for(rung).ids[:4]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = wrapped(input_ids=ids, labels=ids)
    backend.backward(out.total * math.nan, boundary=True)
    norm = backend.step(1.0, torch.isfinite(out.ce * math.nan))
    assert not torch.isfinite(norm)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(float(s["step"]) == 0 for s in optimizer.state.values())  # AdamW's bias correction unmoved
    out = wrapped(input_ids=ids, labels=ids)
    backend.backward(out.total, boundary=True)
    assert torch.isfinite(backend.step(1.0, torch.isfinite(out.ce)))
    assert not all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_loss_spike_stops_run(tmp_path):
    rung = tiny_run()
    # A factor below 1 trips on the first step after the window fills: the rule itself is tested above.
    result = train_run(rung, sequences_for(rung), tmp_path, config(divergence=DivergenceConfig(0.5, 4)))
    assert result.state == "failed" and result.step == 5 and "spike" in result.reason
    assert read_record(tmp_path)["last_checkpoint"] == "checkpoints/step-00000003"


def test_wandb_offline_writes_locally(tmp_path):
    rung = tiny_run(steps=4)
    result = train_run(rung, sequences_for(rung), tmp_path, config(wandb=WandbConfig(mode="offline")))
    assert result.state == "done"
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_a_missing_logger_is_one_warning_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    """The device image has no wandb: train.wandb.mode=offline (the default) there must train, log to
    metrics.jsonl, and say once per process that wandb logs nothing; the ladder's report goes without it too."""
    import train.metrics
    from ladder.orchestration.pipeline import _report_to_wandb
    from omegaconf import OmegaConf

    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError, as where it is absent
    monkeypatch.setattr(train.metrics, "_MISSING_REPORTED", set())
    rung = tiny_run(steps=4)
    for attempt in ("a", "b"):  # a process that trains several runs
        result = train_run(rung, sequences_for(rung), tmp_path / attempt, config(wandb=WandbConfig(mode="offline")))
        assert result.state == "done" and len(losses(tmp_path / attempt)) == 4
        assert not (tmp_path / attempt / "wandb").exists()
    _report_to_wandb(OmegaConf.create({"train": {"wandb": {"mode": "offline"}}}), None, tmp_path / "no-report")
    warnings = [r.getMessage() for r in caplog.records if "wandb" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("wandb is not installed") and "goes on" in warnings[0]


def _trunk(schedule, ends=(8, 16, 24), decay_fraction=0.4):
    (job,) = SCHEDULES[schedule].jobs([tiny_rung(steps=e, multiplier=float(e)) for e in ends], decay_fraction)
    return job


def test_wsds_schedule_decays_at_the_end_of_every_period_and_rises_back():
    trunk = _trunk("wsds")  # periods of 8 steps, each decaying over its last round(0.4 · 8) = 3
    hp, curve = trunk.run.hp, trunk.run.curve
    assert curve.decays == ((5, 8), (13, 16), (21, 24)) and hp.steps == 24
    f = [curve.factor(s) for s in range(hp.steps)]
    floor = hp.final_lr / hp.lr
    assert f[0] == pytest.approx(1 / hp.warmup_steps) and f[4] == 1.0
    assert f[5] == 1.0 and f[6] == pytest.approx((1 + floor) / 2) and f[7] == pytest.approx(floor)  # the bottom ends M1
    assert f[8] == 1.0 and f[12] == 1.0 and f[15] == pytest.approx(floor) and f[23] == pytest.approx(floor)
    assert trunk.run.save_steps == (8, 16)  # every bottom but the last, which ends the run anyway
    # A rung alone under wsd is a trunk of one period, trained in the rung's own directory.
    (alone,) = SCHEDULES["wsd"].jobs([tiny_rung(steps=24, multiplier=24.0)], 0.4)
    (lone_trunk,) = SCHEDULES["wsds"].jobs([tiny_rung(steps=24, multiplier=24.0)], 0.4)
    assert (alone.run.hp, alone.run.curve) == (lone_trunk.run.hp, lone_trunk.run.curve) and not alone.linked and lone_trunk.linked


@pytest.mark.parametrize("crash_after,resumes_from", [(14, 12), (7, 6)])  # stable phase; inside the first decay
def test_a_wsds_trunk_killed_in_a_stable_phase_or_a_decay_resumes_exactly(tmp_path, crash_after, resumes_from):
    trunk = _trunk("wsds")
    run, cfg = trunk.run, config(checkpoint_fractions=[0.25, 0.5, 0.625, 1.0])  # 6, 12, 15, 24 and 8, 16
    whole = train_run(run, sequences_for(run), tmp_path / "whole", cfg)
    assert [s for s, _ in checkpoints(tmp_path / "whole")] == [6, 8, 12, 15, 16, 24]
    with pytest.raises(KeyboardInterrupt):
        train_run(run, CrashingSequences(24 * 8, crash_after=crash_after), tmp_path / "resumed", cfg)
    assert [s for s, _ in checkpoints(tmp_path / "resumed")][-1] == resumes_from
    resumed = train_run(run, sequences_for(run), tmp_path / "resumed", cfg)
    assert resumed.loss == whole.loss and losses(tmp_path / "resumed") == losses(tmp_path / "whole")
    rows = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == pytest.approx([run.hp.lr * run.curve.factor(s) for s in range(24)])


def test_a_branch_from_the_trunk_equals_one_run_with_its_schedule(tmp_path):
    import os

    trunk = _trunk("branch")
    assert trunk.run.hp.steps == 21 and trunk.run.curve.decays == () and trunk.run.save_steps == (5, 13, 21)
    assert trunk.run.keep_steps == (5, 13, 21)  # the branches start from them
    sequences = sequences_for(trunk.follow_ups[-1])
    train_run(trunk.run, sequences, tmp_path / "trunk", config(checkpoint_fractions=[1.0]))
    branch = trunk.follow_ups[1]  # M16: forks at step 13, decays to 16
    assert branch.start_step == 13 and branch.rung["rung_id"] == trunk.rungs[1].rung_id
    fork = tmp_path / "trunk" / "checkpoints" / "step-00000013"
    (tmp_path / "branch" / "checkpoints").mkdir(parents=True)
    os.symlink(fork, tmp_path / "branch" / "checkpoints" / fork.name)
    forked = train_run(branch, sequences, tmp_path / "branch", config(checkpoint_fractions=[1.0]))
    straight = train_run(branch, sequences, tmp_path / "straight", config(checkpoint_fractions=[1.0]))
    assert forked.state == "done" and forked.step == 16 and forked.loss == straight.loss
    assert losses(tmp_path / "branch") == losses(tmp_path / "straight")[13:]


def test_a_stop_between_the_final_checkpoint_and_the_done_record_keeps_the_loss(tmp_path):
    """The resumed run trains no step: its done record still carries the loss of the step it resumed at."""
    rung = tiny_run()
    whole = train_run(rung, sequences_for(rung), tmp_path / "whole", config())

    def stopped_after_the_final_checkpoint(path, step, model, **kw):
        if step == rung.hp.steps:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        train_run(rung, sequences_for(rung), tmp_path / "run", config(), eval_hook=stopped_after_the_final_checkpoint)
    assert read_record(tmp_path / "run")["state"] == "interrupted"
    resumed = train_run(rung, sequences_for(rung), tmp_path / "run", config())
    assert resumed.state == "done" and resumed.loss == whole.loss is not None
    assert read_record(tmp_path / "run")["loss"] == whole.loss


def test_a_done_trunk_continues_to_a_longer_run_that_agrees_with_it_bit_for_bit(tmp_path):
    """A WSD-S trunk given one more period: its decays for the old rungs are the same windows, so the old run is a
    prefix of the new one and continues from its last checkpoint (the bottom of its last decay)."""
    short, long = _trunk("wsds", ends=(8, 16)), _trunk("wsds", ends=(8, 16, 24))
    sequences, cfg = sequences_for(long.run), config(checkpoint_fractions=[1.0])  # a shorter D reads a prefix
    whole = train_run(long.run, sequences, tmp_path / "whole", cfg)
    assert train_run(short.run, sequences, tmp_path / "run", cfg).step == 16
    longer = train_run(long.run, sequences, tmp_path / "run", cfg)
    assert longer.state == "done" and longer.step == 24 and longer.loss == whole.loss
    assert losses(tmp_path / "run") == losses(tmp_path / "whole")
    assert [s for s, _ in checkpoints(tmp_path / "run")] == [s for s, _ in checkpoints(tmp_path / "whole")]
    assert train_run(short.run, sequences, tmp_path / "run", cfg).state == "done"  # the shorter one is held in it


@pytest.mark.parametrize("other,named", [(dict(lr=2e-2), "hp.lr: 0.01 → 0.02"),
                                         (dict(steps=24), "lr_curve: cosine to step 12")])
def test_a_run_unlike_the_one_that_trained_the_directory_is_refused_and_the_record_kept(tmp_path, other, named):
    from ladder.core.schedules import RunMismatch

    rung = tiny_run()
    train_run(rung, sequences_for(rung), tmp_path, config())
    unlike = tiny_run(**other)
    with pytest.raises(RunMismatch, match=re.escape(named)):
        train_run(unlike, sequences_for(unlike), tmp_path, config())
    assert read_record(tmp_path)["state"] == "done" and read_record(tmp_path)["step"] == 12


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


_FILES = ["model.safetensors", "trainer_state.pt", "state/optimizer/__0_0.distcp", "state/scheduler.pt"]


@pytest.mark.parametrize("name", _FILES)
def test_a_damaged_newest_checkpoint_is_set_aside_for_the_one_before_it_bit_for_bit(tmp_path, caplog, name):
    """An unfinished run keeps the state of its two newest checkpoints, so a damaged newest one costs the steps
    since the one before it, not the run."""
    rung = tiny_run()
    whole = train_run(rung, sequences_for(rung), tmp_path / "whole", config())
    with pytest.raises(KeyboardInterrupt):
        train_run(rung, CrashingSequences(12 * 8, crash_after=8), tmp_path / "run", config())
    assert [(s, (p / "state").is_dir()) for s, p in checkpoints(tmp_path / "run")] == [(3, True), (6, True)]
    damaged = tmp_path / "run" / "checkpoints" / "step-00000006"
    _truncate(damaged / name)
    resumed = train_run(rung, sequences_for(rung), tmp_path / "run", config())
    assert resumed.state == "done" and resumed.loss == whole.loss
    assert losses(tmp_path / "run") == losses(tmp_path / "whole")
    assert (damaged.parent / "step-00000006.damaged" / name).is_file()  # kept, under a name that says so
    assert f"step-00000006/{name}" in caplog.text and "step-00000006.damaged" in caplog.text
    assert [(s, (p / "state").is_dir()) for s, p in checkpoints(tmp_path / "run")] == [  # done: the newest only
        (3, False), (6, False), (12, True)]


@pytest.mark.parametrize("name", _FILES)
def test_a_run_whose_checkpoints_with_state_are_all_damaged_is_named_not_restarted(tmp_path, name):
    from train.rundir import CheckpointDamaged

    rung = tiny_run()
    with pytest.raises(KeyboardInterrupt):
        train_run(rung, CrashingSequences(12 * 8, crash_after=8), tmp_path, config())
    newest = tmp_path / "checkpoints" / "step-00000006"
    for step in (3, 6):
        _truncate(tmp_path / "checkpoints" / f"step-{step:08d}" / name)
    for _ in range(2):  # the same line every time, and nothing restarted from scratch
        with pytest.raises(CheckpointDamaged, match="restore that file, or move step-00000006 and step-00000003") as error:
            train_run(rung, sequences_for(rung), tmp_path, config())
        assert f"{newest / name}: " in str(error.value) and "when it was written" in str(error.value)
        assert "\n" not in str(error.value)
    assert read_record(tmp_path)["state"] == "interrupted" and newest.is_dir()
    assert [s for s, _ in checkpoints(tmp_path)] == [3, 6]
