"""Tokenize+pack throughput on the offline default corpus: tokens/s and documents/s per process count.

    python scripts/bench_data.py [--docs 8000] [--procs 1 2]

The corpus and the smoke ladder's 2048-vocabulary BPE are made once under $LADDER_CACHE (default .cache);
each timed run packs the first --docs documents (read from the json.gz shards, as `prepare` does) into a
fresh directory, at the smoke ladder's sequence length.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.data import corpus  # noqa: E402
from train.data.pack import pack  # noqa: E402
from train.data.prepare import default_cache_dir  # noqa: E402
from train.data.sources import documents  # noqa: E402
from train.data.tokenizer import ensure_tokenizer, load  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=8000, help="documents per run (the corpus has ~19.5k)")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2], help="tokenizer process counts to time")
    args = parser.parse_args()
    cache = default_cache_dir()
    path = corpus.build(cache / "corpus" / "smoke")
    tokenizer_dir = ensure_tokenizer({"train_vocab_size": 2048}, cache)
    eos = load(tokenizer_dir).eos_token_id
    print(f"corpus {path}, tokenizer {tokenizer_dir}, {args.docs} documents, seq_len 128")
    for procs in args.procs:
        with tempfile.TemporaryDirectory() as tmp:
            docs = islice(documents({"name": "smoke", "path": str(path)}), args.docs)
            start = time.perf_counter()
            val, train = pack(docs, tokenizer_dir, Path(tmp) / "out", seq_len=128, val_tokens=200_000, eos=eos,
                              dtype="uint16", num_proc=procs, progress=False)
            val.close({}), train.close({})
            seconds = time.perf_counter() - start
        tokens = (val.sequences + train.sequences) * 128 + val.dropped_tokens + train.dropped_tokens
        n_docs = val.documents + train.documents
        print(f"num_proc={procs}: {tokens / seconds:,.0f} tokens/s, {n_docs / seconds:,.0f} documents/s "
              f"({tokens:,} tokens, {n_docs:,} documents in {seconds:.1f} s, including process start-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
