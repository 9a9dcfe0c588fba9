"""The data stage: raw documents → tokenizer → packed token shards that training and eval read.

    prepared = prepare_data(data_cfg, tokenizer_cfg, seq_len=128, val_tokens=200_000, seed=0)

Its output, packed token shards, is read by training and eval through `ladder.core.shards.TokenSequences`.
"""
from train.data.config import DataConfig, TokenizerConfig
from train.data.prepare import PreparedData, prepare_data, source_tokens, stream_need, token_store
from train.data.sources import DataError

__all__ = ["DataConfig", "TokenizerConfig", "PreparedData", "prepare_data", "source_tokens", "stream_need", "token_store",
           "DataError"]
