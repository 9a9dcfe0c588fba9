"""The evaluation key: what the numbers of one task or eval set depend on besides the checkpoint, as a flat
object every record carries (`eval_key`, docs/formats.md). A checkpoint whose records hold another key is
evaluated again (eval/run.py `is_done`), and the fit refuses to mix keys, so a rerun with other settings
never leaves old and new numbers side by side.

Settings are named by the config key that sets them; what is read from files by a digest of the files'
contents, so a moved out_dir or a path spelled another way is the same key:

- every task: `task_version` (its `TaskSpec.version`), `eval.num_fewshot`, `eval.max_examples`, `eval.seed`
  (null where nothing is drawn: no sample and no task built from documents), `tokenizer`, `source` (the
  local task and few-shot files; null: the hub split its TaskSpec names, which its version covers);
- a task built from held-out documents also `eval.derived.*` and `data.text_field`, its `source` the documents;
- an eval set (`<name>_val`): `source` (its split's manifest), `eval.max_sequences`, `tokenizer` (bits per byte
  count the bytes of its decoded text).

`tokenizer` is the digest of the tokenizer files evaluation reads (the checkpoint's own, else
eval.tokenizer's). Left out as changing a number only by rounding: eval.precision and eval.device (in-loop
evaluation runs in the training precision, `ladder eval` in bf16 on a GPU and fp32 on a CPU) and
eval.batch_size.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig

from eval.tasks import task_spec
from ladder.core.shards import MANIFEST

# What a transformers tokenizer directory may hold that changes the tokens (not its README or licence).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model")
_hashed: dict[tuple, str] = {}  # (path, size, mtime) -> sha256: a file read once per process, not per checkpoint


def file_digest(path: str | Path) -> Optional[str]:
    """The sha256 of a file's contents; None when there is no such file (reading it fails later, naming it)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        return None
    stat = path.stat()
    seen = (path, stat.st_size, stat.st_mtime_ns)
    if seen not in _hashed:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _hashed[seen] = digest.hexdigest()
    return _hashed[seen]


def digest_of(parts: dict) -> Optional[str]:
    """One short digest of labelled file digests; None when none of them is a file."""
    if all(v is None for v in parts.values()):
        return None
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def tokenizer_digest(directory: Optional[Path]) -> Optional[str]:
    if directory is None:
        return None
    return digest_of({name: file_digest(Path(directory) / name) for name in TOKENIZER_FILES})


def evaluation_keys(cfg: DictConfig, tokenizer_dir: Optional[Path]) -> dict[str, dict]:
    """The key of each task and eval set `cfg.eval` evaluates, by the name its records' metrics start with
    (`c4_val`, `hellaswag`); `tokenizer_dir`: where the checkpoint's tokenizer is read from."""
    e, tokenizer = cfg.eval, tokenizer_digest(tokenizer_dir)
    keys = {f"{name}_val": {"source": digest_of({"manifest": file_digest(Path(path) / MANIFEST)}),
                            "eval.max_sequences": e.max_sequences, "tokenizer": tokenizer}
            for name, path in e.lm_sets.items()}
    for name in e.tasks:
        spec = task_spec(name)
        documents = spec.loader.needs_documents
        key = {"task_version": spec.version, "eval.num_fewshot": e.num_fewshot, "eval.max_examples": e.max_examples,
               "eval.seed": e.seed if e.max_examples is not None or documents else None, "tokenizer": tokenizer}
        if documents:
            key["source"] = digest_of({"documents": file_digest(e.derived.docs) if e.derived.docs else None})
            key.update({f"eval.derived.{k}": v for k, v in e.derived.items() if k != "docs"})
            key["data.text_field"] = cfg.data.text_field
        else:
            fewshot = e.fewshot_paths.get(name) if e.num_fewshot else None
            key["source"] = digest_of({"task": file_digest(e.task_paths[name]) if name in e.task_paths else None,
                                       "fewshot": file_digest(fewshot) if fewshot else None})
        keys[name] = key
    return keys

