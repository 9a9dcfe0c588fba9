"""The ladder's tokenizer, always handed on as a local transformers tokenizer directory.

A hub name is fetched once through transformers and saved under the cache, so later stages (and
later runs without a network) read files only. The offline default trains a byte-level BPE.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

from train.data.config import TokenizerConfig
from train.data.sources import DataError

EOS = "<|endoftext|>"
PAD = "<|padding|>"
DTYPES = {"uint16": 2 ** 16, "uint32": 2 ** 32}


def tokenizer_config(cfg) -> TokenizerConfig:
    if isinstance(cfg, DictConfig):  # a node of the root config: resolve its interpolations (${data.path}) there
        cfg = OmegaConf.to_container(cfg, resolve=True)
    return OmegaConf.merge(OmegaConf.structured(TokenizerConfig), cfg)


def tokenizer_hash(directory: Path) -> str:
    """sha256 over the directory's files: names the exact vocabulary the tokens were made with."""
    digest = hashlib.sha256()
    for path in sorted(Path(directory).iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def load(directory: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory))
    except (OSError, ValueError) as exc:  # e.g. a directory given as ladder.tokenizer.name_or_path holds none
        raise DataError(f"{directory}: not a tokenizer directory ({str(exc).strip().splitlines()[0]})") from exc


def token_dtype(vocab_size: int, requested: str = "auto") -> str:
    """The smallest unsigned dtype that holds every token id; a requested one must fit."""
    if requested == "auto":
        return "uint16" if vocab_size <= DTYPES["uint16"] else "uint32"
    if requested not in DTYPES:
        raise DataError(f"data.token_dtype must be auto, uint16 or uint32, not '{requested}'")
    if vocab_size > DTYPES[requested]:
        raise DataError(f"tokenizer vocabulary of {vocab_size:,} ids does not fit data.token_dtype={requested} "
                         f"(at most {DTYPES[requested]:,}); use uint32 or auto")
    return requested


def _atomic_save(tokenizer, out: Path) -> Path:
    tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer.save_pretrained(str(tmp))
    tmp.rename(out)  # callers hold out's lock and found no tokenizer there: nothing is replaced
    return out


def bpe_tokenizer(texts: Iterator[str], vocab_size: int):
    """A byte-level BPE (GPT-2 style: no unknown bytes) with end-of-text and padding tokens, as a
    transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS, unk_token=EOS, pad_token=PAD)


def train_bpe(texts: Iterator[str], vocab_size: int, out: Path) -> Path:
    """`bpe_tokenizer`, saved to `out` for transformers."""
    return _atomic_save(bpe_tokenizer(texts, vocab_size), out)


def _chars(texts: Iterator[str], limit: int) -> Iterator[str]:
    total = 0
    for text in texts:
        if total >= limit:
            return
        total += len(text)
        yield text


def _hub_dir(name: str, cache_dir: Path) -> Path:
    return Path(cache_dir) / "tokenizers" / name.replace("/", "__")


def known_vocab(cfg, cache_dir: Path) -> Optional[int]:
    """The tokenizer's vocabulary size where it is known without fetching or training anything: a local
    directory or a hub tokenizer fetched before (its length), a BPE still to train (the size it is trained
    to); else None."""
    cfg = tokenizer_config(cfg)
    if not cfg.name_or_path:
        return cfg.train_vocab_size
    directory = Path(cfg.name_or_path)
    if not directory.is_dir():
        directory = _hub_dir(cfg.name_or_path, cache_dir)
        if not (directory / "tokenizer_config.json").exists():
            return None
    try:
        return len(load(directory))
    except DataError:
        return None


def check_tokenizer(cfg, cache_dir: Path) -> None:
    """Before anything is planned or written: a tokenizer named by `name_or_path` can be read, as one line
    (DataError) where it cannot. A local directory must exist; a hub name must be in the harness's cache or the
    HuggingFace cache, or (unless HF_HUB_OFFLINE says there is no hub) answer one request to the hub, made
    without the hub client's retries (where there is no network, they took ~40 s before the same refusal)."""
    cfg = tokenizer_config(cfg)
    name = cfg.name_or_path
    key = f"ladder.tokenizer.name_or_path={name}"
    if not name or Path(name).is_dir() or (_hub_dir(name, cache_dir) / "tokenizer_config.json").exists():
        return
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:  # a hub name is NAME or ORG/NAME
        raise DataError(f"{key}: could not load a tokenizer: " + (
            "a file, not a tokenizer directory" if Path(name).expanduser().is_file() else
            "no such directory (and not a hub name, which is NAME or ORG/NAME)"))
    import huggingface_hub
    from huggingface_hub import constants

    try:
        cached = huggingface_hub.try_to_load_from_cache(name, "tokenizer_config.json")
    except ValueError:  # the hub client's HFValidationError: no hub repository could have this name
        raise DataError(f"{key}: could not load a tokenizer: no such directory, and not a valid hub name") from None
    if isinstance(cached, str):
        return
    if constants.HF_HUB_OFFLINE:  # a constant in every huggingface_hub the pinned transformers allows
        raise DataError(f"{key}: not in the HuggingFace cache, and HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set, "
                        "so it cannot be fetched; fetch it where the hub is reachable, or give a local directory")
    try:  # one request, no retries (get_hf_file_metadata's default)
        huggingface_hub.get_hf_file_metadata(huggingface_hub.hf_hub_url(name, "tokenizer_config.json"))
    except Exception as exc:  # no network, no such repository, a gated one: each says what it is
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{key}: not in the HuggingFace cache and not fetched from the hub ({first}); fetch it where "
                        "the hub is reachable, or give a local directory") from None


def _from_hub(name: str):
    """A hub tokenizer from the HuggingFace cache where it is there (no request, so no retries without a network),
    else fetched."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError):  # not cached, or not wholly
        return AutoTokenizer.from_pretrained(name)


def ensure_tokenizer(cfg, cache_dir: Path) -> Path:
    """The tokenizer directory for `cfg`, made (fetched, or trained) once and reused."""
    cfg = tokenizer_config(cfg)
    cache_dir = Path(cache_dir)
    if cfg.name_or_path:
        if Path(cfg.name_or_path).is_dir():
            return Path(cfg.name_or_path)
        out = _hub_dir(cfg.name_or_path, cache_dir)
        with _made_once(out) as missing:
            if missing:
                try:
                    tokenizer = _from_hub(cfg.name_or_path)
                except Exception as exc:
                    raise DataError(f"ladder.tokenizer.name_or_path={cfg.name_or_path}: could not load a tokenizer "
                                    f"(hub name or local directory): {str(exc).strip().splitlines()[0]}") from exc
                _atomic_save(tokenizer, out)
        return out
    if not cfg.train_vocab_size:
        raise DataError("ladder.tokenizer: set name_or_path (hub name or directory) or train_vocab_size (train a BPE)")
    from train.data import corpus, sources
    from train.data.tokenized import tokenized_files

    train_path = Path(cfg.train_path) if cfg.train_path else corpus.build(cache_dir / "corpus" / "smoke")
    if train_path.exists() and tokenized_files(train_path):
        raise DataError(f"{train_path}: holds pre-tokenized .npy/.bin files, which a BPE cannot be trained on; set "
                        f"ladder.tokenizer.name_or_path to the tokenizer they were made with")
    files = sources.local_files(train_path)
    key = hashlib.sha256(json.dumps({
        "files": [[str(p.relative_to(train_path) if p != train_path else p.name), p.stat().st_size] for p in files],
        "vocab": cfg.train_vocab_size, "chars": cfg.train_chars}).encode()).hexdigest()[:12]
    out = cache_dir / "tokenizers" / f"bpe-{cfg.train_vocab_size}-{key}"
    with _made_once(out) as missing:
        if missing:
            docs = sources.documents({"name": "tokenizer", "path": str(train_path)})
            train_bpe(_chars(docs, cfg.train_chars), cfg.train_vocab_size, out)
    return out


@contextmanager
def _made_once(out: Path):
    """Yields whether the tokenizer at `out` is still to be made, under a lock, so that two processes
    starting together make it once and neither reads a half-written one."""
    if (out / "tokenizer_config.json").exists():
        yield False
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        yield not (out / "tokenizer_config.json").exists()
