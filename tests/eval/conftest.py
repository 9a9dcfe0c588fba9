"""Shared fixtures: a byte-level BPE tokenizer trained on a few paragraphs, tiny real models, a ladder's
out_dir with one rung to evaluate (`ladder_dir`) and a two-process torchrun launch of sharded_eval_worker.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

# The eval tests import eval_helpers by name.
sys.path.insert(0, str(Path(__file__).parent))

from eval_helpers import DOCS, RUNG
from ladder.core.layout import CONFIG
from ladder.core.plan import build_plan
from ladder.core.sizes import ModelShape
from ladder.orchestration.compose import load
from train.data.tokenizer import bpe_tokenizer
from train.model import build_model

PARAGRAPHS = [
    "The river runs past the old mill and the children watch the boats go by in the morning light.",
    "A recipe for bread: mix flour, water, salt and yeast, knead the dough, let it rise, then bake it.",
    "Question: What do plants need to grow? Answer: water, light and soil with enough nutrients.",
    "The committee met on Tuesday to discuss the budget, and the chair asked for a vote on each item.",
    "Stars are huge balls of hot gas; the nearest one is the Sun, which gives the Earth heat and light.",
    "She opened the window because the room was too warm, and a cool breeze came in from the garden.",
    "Über naïve café — unicode text is encoded as bytes, so every character can be tokenized.",
]


@pytest.fixture(scope="session")
def tokenizer():
    return bpe_tokenizer(PARAGRAPHS * 3, 400)


def tiny_model(tokenizer, seq_len=64, seed=0, arch="olmo2"):
    shape = ModelShape("t", 64, 2, 4, 96, len(tokenizer), seq_len, arch)
    return build_model(shape, seed=seed, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id).eval()


@pytest.fixture(scope="session")
def model(tokenizer):
    return tiny_model(tokenizer)


@pytest.fixture(scope="session")
def make_model(tokenizer):
    """Build another tiny model: make_model(seq_len=16, seed=1, arch="llama")."""
    return lambda **kw: tiny_model(tokenizer, **kw)


@pytest.fixture
def ladder_dir(tmp_path, tokenizer, model):
    """out_dir with one rung (RUNG) holding two complete checkpoints and one being written, and held-out DOCS."""
    rung_dir = tmp_path / "rungs" / RUNG
    rung = next(r for r in build_plan(load()).rungs if r.rung_id == RUNG)
    rung_dir.mkdir(parents=True)
    (rung_dir / CONFIG).write_text(OmegaConf.to_yaml({"rung": rung.as_dict()}))  # as training writes it
    for step in (10, 20):
        model.save_pretrained(rung_dir / "checkpoints" / f"step-{step:08d}")
        tokenizer.save_pretrained(rung_dir / "checkpoints" / f"step-{step:08d}")
    (rung_dir / "checkpoints" / "step-00000030").mkdir()  # no files yet
    docs = tmp_path / "heldout.jsonl"
    docs.write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS))
    return tmp_path


@pytest.fixture
def launch_eval(tmp_path):
    """launch_eval(cfg, *args): sharded_eval_worker.py CONFIG *args on 2 gloo processes under torchrun."""
    here = Path(__file__).resolve().parent

    def launch(cfg, *args) -> subprocess.CompletedProcess:
        config_file = tmp_path / "eval_config.yaml"
        config_file.write_text(OmegaConf.to_yaml(cfg))
        env = {**os.environ, "PYTHONPATH": str(here.parents[1]), "OMP_NUM_THREADS": "1"}
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                               str(here / "sharded_eval_worker.py"), str(config_file), *args], env=env,
                              capture_output=True, text=True, timeout=600)
    return launch
