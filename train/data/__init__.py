"""The data stage: raw documents → tokenizer → packed token shards that training and eval read.

    prepared = prepare_data(data_cfg, tokenizer_cfg, seq_len=128, val_tokens=200_000, seed=0)
    seqs = TokenSequences(prepared.train_dir, tokens=D, seed=0)
"""
from train.data.config import DataConfig, TokenizerConfig
from train.data.prepare import PreparedData, prepare_data
from train.data.sources import DataError
from train.data.tokens import NotEnoughTokens, TokenSequences

__all__ = ["DataConfig", "TokenizerConfig", "PreparedData", "prepare_data", "DataError", "NotEnoughTokens",
           "TokenSequences"]
