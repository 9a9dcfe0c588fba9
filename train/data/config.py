"""Schema of the `data/` config group and of the ladder's `tokenizer:` block."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING


@dataclass
class DataConfig:
    """A training dataset: where its documents come from and which field holds the text."""
    name: str = MISSING
    hf_path: Optional[str] = None  # hub name, streamed where a network exists
    hf_name: Optional[str] = None  # hub config (subset), e.g. "en" for allenai/c4
    text_field: str = "text"
    path: Optional[str] = None  # local json.gz/jsonl/parquet file or directory in the same schema; wins over hf_path
    split: str = "train"  # the hub split the documents are read from; train and validation are both cut from it
    streaming: bool = True  # stream hub datasets instead of downloading them whole
    corpus: Optional[str] = None  # a built-in corpus (train.data.corpus), built under the cache; `path` wins
    val_tokens: int = 200_000  # held-out validation tokens, the first documents of the stream
    max_tokens: Optional[int] = None  # stop packing training tokens here (a hub dataset never ends)
    allow_repeat: bool = False  # let a rung draw more tokens than the split holds (epochs are recorded)
    token_dtype: str = "auto"  # auto (uint16 when the vocabulary fits, else uint32), uint16 or uint32
    num_proc: Optional[int] = None  # tokenizer processes; None: one per core, as many as memory holds (0.5 GB each)


@dataclass
class TokenizerConfig:
    """The ladder's tokenizer: a transformers tokenizer by hub name or local path, or a BPE trained here."""
    name_or_path: Optional[str] = None  # e.g. EleutherAI/gpt-neox-20b, or a local tokenizer directory
    train_vocab_size: Optional[int] = None  # else train a byte-level BPE of this vocabulary size
    train_path: Optional[str] = None  # documents (local shards) the BPE is trained on; default: the offline corpus
    train_chars: int = 20_000_000  # train the BPE on the first this many characters of those documents
