"""Throughput and scale of the data stage.

Tokenizer throughput: the offline corpus tokenized into a fresh token store by 1, 2, … processes (each a unit
at a time, train/data/store.py), with the BPE of the smoke ladder or a 32k one, as tokens/s and per process:

    .venv/bin/python scripts/bench_data.py [--procs 1 2] [--vocab 2048]

Scale: a synthetic corpus of each given size (MB) written to a temporary directory, then one `prepare_data` of
all of it in a fresh process, which prints its wall time, CPU time (its tokenizer processes included), bytes
read (by read() calls in the preparing process, after its imports, and the tokens read through memory maps;
tokenizer processes' reads are not seen), the preparing process's peak heap (Python and numpy allocations,
tracemalloc: what grows with a file read whole) and peak resident memory (of its largest process, mapped file
pages included; "before MB" is the preparing process's after its imports, before prepare starts; "worker MB"
the largest tokenizer process's, where units were tokenized by several). `--kind text` writes
C4-schema JSON lines (8 MB files) of Zipf-distributed words, tokenized by a 2,048-token BPE trained on the first MB;
`--kind npy` writes headerless uint16 token files (Dolma's layout, 64 MB each) with an eos every 20-1,000 tokens:

    .venv/bin/python scripts/bench_data.py --scale 50 100 200 --kind npy
    .venv/bin/python scripts/bench_data.py --scale 4 8 16 --kind text
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from train.data import corpus  # noqa: E402
from train.data.prepare import default_cache_dir, open_stream  # noqa: E402
from train.data.store import fill  # noqa: E402
from train.data.tokenizer import ensure_tokenizer, load, token_dtype  # noqa: E402


# The prepare a scale run times, in a process of its own so that its CPU time and peak memory are its own.
PREPARE = """
import json, resource, sys, time, tracemalloc
from pathlib import Path
from train.data import prepare_data, tokenized
read = [0]
real = tokenized.read_tokens
def counted(file, start, stop):
    tokens = real(file, start, stop)
    read[0] += tokens.nbytes
    return tokens
tokenized.read_tokens = counted
import train.data.prepare as prepare
prepare.read_tokens = counted
import datasets, tokenizers, transformers  # imported before the counters start: their reads are not prepare's
def rchar():
    return int(dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())["rchar"])
corpus, tokenizer, cache = sys.argv[1:4]
from train.data.tokenizer import load
load(tokenizer)  # its modules loaded too
def cpu():
    return sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))
before, cpu_before, base = rchar(), cpu(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
tracemalloc.start()
start = time.perf_counter()
prepared = prepare_data({"name": "scale", "path": corpus}, {"name_or_path": tokenizer}, seq_len=2048,
                        val_tokens=200_000, cache_dir=Path(cache), progress=False)
wall = time.perf_counter() - start
heap = tracemalloc.get_traced_memory()[1]
usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print(json.dumps({"wall": wall, "cpu": cpu() - cpu_before, "base": base, "heap": heap,
                  "peak": usage[0].ru_maxrss * 1024, "worker": usage[1].ru_maxrss * 1024, "read": rchar() - before + read[0],
                  "tokens": prepared.train_manifest["num_tokens"] + prepared.val_manifest["num_tokens"]}))
"""


def _words(rng, count: int) -> list[str]:
    """Zipf-distributed pseudo-words over a 50,000-word vocabulary: text a BPE finds as much to do in as prose."""
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    vocab = ["".join(letters[rng.zipf(1.3, size=rng.integers(2, 9)) % 26]) for _ in range(50_000)]
    ranks = np.minimum(rng.zipf(1.1, size=count), len(vocab)) - 1
    return [vocab[r] for r in ranks]


def write_text(directory: Path, megabytes: float, seed: int = 0) -> None:
    """C4-schema JSON lines of about `megabytes` MB, documents of 50-1,000 words, in files of 8 MB."""
    rng = np.random.default_rng(seed)
    words = _words(rng, 2_000_000)
    written, shard, out = 0, 0, None
    while written < megabytes * 1e6:
        if out is None or out.tell() > 8e6:
            out = open(directory / f"c4-train.{shard:05d}.jsonl", "w")
            shard += 1
        start = int(rng.integers(0, len(words) - 1000))
        line = json.dumps({"text": " ".join(words[start:start + int(rng.integers(50, 1000))]),
                           "timestamp": "2019-04-25T12:57:54Z", "url": f"https://example.com/{written}"}) + "\n"
        out.write(line)
        written += len(line)
    out.close()


def write_npy(directory: Path, megabytes: float, eos: int, vocab: int, seed: int = 0) -> None:
    """Headerless uint16 token files of about `megabytes` MB in all, 64 MB each, an eos every 20-1,000 tokens."""
    rng = np.random.default_rng(seed)
    tokens, shard = int(megabytes * 1e6) // 2, 0
    while tokens > 0:
        count = min(tokens, 32_000_000)
        ids = rng.integers(0, vocab, size=count, dtype=np.uint16)
        ids[ids == eos] = eos + 1
        ids[np.cumsum(rng.integers(20, 1000, size=count // 20)) % count] = eos
        ids[-1] = eos
        ids.tofile(directory / f"part-{shard:05d}.npy")
        tokens, shard = tokens - count, shard + 1


def scale(sizes: list[float], kind: str) -> None:
    from train.data.tokenizer import train_bpe

    print(f"{'MB':>8} {'tokens':>13} {'wall s':>8} {'CPU s':>8} {'read MB':>9} {'heap MB':>8} {'RSS MB':>8} "
          f"{'before MB':>9} {'worker MB':>9}  ({kind}, {os.cpu_count()} cores)")
    for megabytes in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus"
            corpus.mkdir()
            write_text(corpus, 1, seed=1)  # the tokenizer's training text, and for text the corpus's first MB
            texts = [json.loads(line)["text"] for f in sorted(corpus.iterdir()) for line in f.open()]
            tokenizer = train_bpe(iter(texts), 2048, Path(tmp) / "bpe")
            for f in corpus.iterdir():
                f.unlink()
            if kind == "text":
                write_text(corpus, megabytes)
            else:
                write_npy(corpus, megabytes, eos=0, vocab=2048)
            size = sum(f.stat().st_size for f in corpus.iterdir())
            run = subprocess.run([sys.executable, "-c", PREPARE, str(corpus), str(tokenizer), str(Path(tmp) / "cache")],
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if run.returncode:
                sys.exit(run.stderr)
            got = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{size / 1e6:8.0f} {got['tokens']:13,} {got['wall']:8.1f} {got['cpu']:8.1f} "
                  f"{got['read'] / 1e6:9.0f} {got['heap'] / 1e6:8.1f} {got['peak'] / 1e6:8.0f} {got['base'] / 1e6:9.0f} "
                  f"{got['worker'] / 1e6:9.0f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2], help="tokenizer process counts to time")
    parser.add_argument("--vocab", type=int, default=2048, help="BPE vocabulary (trained once on the corpus)")
    parser.add_argument("--scale", type=float, nargs="+", help="corpus sizes in MB: time a prepare of each")
    parser.add_argument("--kind", choices=("text", "npy"), default="text", help="the scale corpus's kind")
    args = parser.parse_args()
    if args.scale:
        scale(args.scale, args.kind)
        return 0
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
