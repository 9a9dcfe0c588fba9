"""`train.cli.main`: trains the plan's rungs that are not done, then skips them."""
import train.data
from ladder.config import load
from train.cli import main, run_dir_for
from train.rundir import read_record
from train_fakes import FakeSequences


class FakeTokenSequences(FakeSequences):
    """train.data.TokenSequences' constructor over the stand-in sequences."""

    def __init__(self, train_dir, tokens, seed=0):
        super().__init__(-(-tokens // 32), seed=seed)


def test_main_trains_unfinished_rungs_once(tmp_path, monkeypatch):
    prepared = []
    monkeypatch.setattr(train.data, "prepare_data", lambda cfg, dataset: prepared.append(dataset) or tmp_path,
                        raising=False)
    monkeypatch.setattr(train.data, "TokenSequences", FakeTokenSequences, raising=False)
    # The smoke ladder cut to one 33K-parameter rung of 65 steps on 32-token sequences.
    cfg = load(["ladder.sizes=[30K]", "ladder.multipliers=[1]", "ladder.vocab_size=256", "ladder.seq_len=32",
                f"out_dir={tmp_path}/ladder",
                "train.wandb.mode=disabled", "train.progress=false", "train.checkpoint_fractions=[1.0]"])
    assert main(cfg) == 0
    record = read_record(run_dir_for(cfg, "30K-smoke-M1"))
    assert record["state"] == "done" and record["step"] == record["steps"] == 65
    assert main(cfg) == 0 and prepared == ["smoke"]  # the done rung is skipped
