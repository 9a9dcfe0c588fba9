"""`train.cli.main`: trains the plan's rungs that are not done, in-process or in torchrun workers."""
import os
from pathlib import Path

import pytest

import train.data
import train.worker
from ladder.config import load
from train.cli import main, run_dir_for
from train.rundir import read_record
from train_fakes import FakeTokenSequences

HERE = Path(__file__).resolve().parent


@pytest.fixture
def fake_data(tmp_path, monkeypatch):
    """The data stage replaced by the stand-in; returns the datasets it was asked to prepare."""
    prepared = []
    monkeypatch.setattr(train.data, "prepare_data", lambda cfg, dataset: prepared.append(dataset) or tmp_path,
                        raising=False)
    monkeypatch.setattr(train.data, "TokenSequences", FakeTokenSequences, raising=False)
    return prepared


def ladder_config(tmp_path, *overrides):
    # The smoke ladder cut to one 33K-parameter rung of 65 steps on 32-token sequences.
    return load(["ladder.sizes=[30K]", "ladder.multipliers=[1]", "ladder.vocab_size=256", "ladder.seq_len=32",
                 f"out_dir={tmp_path}/ladder", "train.wandb.mode=disabled", "train.progress=false",
                 "train.checkpoint_fractions=[1.0]", *overrides])


def test_main_trains_unfinished_rungs_once(tmp_path, fake_data):
    cfg = ladder_config(tmp_path)
    assert main(cfg) == 0
    record = read_record(run_dir_for(cfg, "30K-smoke-M1"))
    assert record["state"] == "done" and record["step"] == record["steps"] == 65
    assert main(cfg) == 0 and fake_data == ["smoke"]  # the done rung is skipped


def test_main_starts_torchrun_workers(tmp_path, fake_data, monkeypatch):
    write_launch = train.worker.write_launch
    # The workers are other processes: they open the stand-in by its import path.
    monkeypatch.setattr(train.worker, "write_launch",
                        lambda *a, **k: write_launch(*a, **{**k, "data": "train_fakes:FakeTokenSequences"}))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE.parents[1]), str(HERE)]))
    cfg = ladder_config(tmp_path, "train=ddp_cpu", "train.micro_batch_size=4")
    assert main(cfg) == 0
    run_dir = run_dir_for(cfg, "30K-smoke-M1")
    assert read_record(run_dir)["state"] == "done"
    assert "world_size: 2" in (run_dir / "config.yaml").read_text()
