"""Shared fixtures: a byte-level BPE tokenizer trained on a few paragraphs and tiny real models."""
import pytest

from ladder.core.sizes import ModelShape
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
