"""Tokenizer throughput of the data stage: the offline corpus tokenized into a fresh token store by 1, 2, …
processes (each a whole source file at a time, train/data/store.py), with the BPE of the smoke ladder or
a 32k one, as tokens/s and tokens/s per process.

    .venv/bin/python scripts/bench_data.py [--procs 1 2] [--vocab 2048]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.data import corpus  # noqa: E402
from train.data.prepare import default_cache_dir, open_stream  # noqa: E402
from train.data.store import fill  # noqa: E402
from train.data.tokenizer import ensure_tokenizer, load, token_dtype  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2], help="tokenizer process counts to time")
    parser.add_argument("--vocab", type=int, default=2048, help="BPE vocabulary (trained once on the corpus)")
    args = parser.parse_args()
    cache = default_cache_dir()
    path = corpus.build(cache / "corpus" / "smoke")
    tokenizer_dir = ensure_tokenizer({"train_vocab_size": args.vocab}, cache)
    tokenizer = load(tokenizer_dir)
    print(f"corpus {path}, tokenizer {tokenizer_dir}")
    for procs in args.procs:
        with tempfile.TemporaryDirectory() as tmp:
            store, _ = open_stream({"name": "smoke", "path": str(path), "text_field": "text"}, tokenizer_dir,
                                   tokenizer.eos_token_id, token_dtype(len(tokenizer)), Path(tmp))
            start = time.perf_counter()
            fill(store, None, procs, progress=False)
            seconds = time.perf_counter() - start
            units = store.usable()
            tokens = store.tokens(units)
            docs = sum(store.progress(i)["documents"] for i in units)
        print(f"num_proc={procs}: {tokens / seconds:,.0f} tokens/s, {tokens / seconds / procs:,.0f} per process, "
              f"{docs / seconds:,.0f} documents/s ({tokens:,} tokens, {docs:,} documents, {len(units)} files in "
              f"{seconds:.1f} s, including process start-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
