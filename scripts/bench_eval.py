"""RC scoring throughput on this CPU: shared-prefix batches vs one request at a time.

    PYTHONPATH=. python scripts/bench_eval.py [--examples 64] [--shots 5] [--batch-size 8]

A small OLMo-2 model (d128, 4 layers, vocab 2048) scores 4-choice examples with k-shot contexts
(OLMo's 5-shot by default), built from random words, with a byte-level BPE tokenizer trained on
them. "one-at-a-time" scores every (context, choice) alone with batch size 1, the way a naive loop
would; both paths must agree to 1e-4 or the script fails.
"""
from __future__ import annotations

import argparse
import random
import time

import torch

from eval.fewshot import with_fewshot
from eval.scoring import score_groups
from eval.tasks import Example
from ladder.sizes import ModelShape
from train.data.tokenizer import bpe_tokenizer
from train.model import build_model

WORDS = ("river mill bread flour water salt yeast dough committee budget chair vote star gas sun earth heat light "
         "window room breeze garden child boat morning question answer plant soil grow night city road").split()


def build(n_examples: int, shots: int, seed: int = 0):
    rng = random.Random(seed)
    sentence = lambda n: " ".join(rng.choice(WORDS) for _ in range(n))  # noqa: E731
    examples = [Example(f"Question: {sentence(rng.randint(10, 25))}?\nAnswer:",
                        tuple(" " + sentence(rng.randint(2, 8)) for _ in range(4)), rng.randrange(4))
                for _ in range(n_examples + shots)]
    tokenizer = bpe_tokenizer([sentence(50) for _ in range(2000)], 2048)
    shape = ModelShape("bench", 128, 4, 4, 384, len(tokenizer), 1024)
    model = build_model(shape, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id).eval()
    return model, tokenizer, with_fewshot(examples[shots:], examples[:shots], shots)[:n_examples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    model, tokenizer, examples = build(args.examples, args.shots)
    groups = [ex.requests() for ex in examples]
    n_tokens = sum(len(tokenizer.encode(c + t)) for g in groups for c, t in g)
    print(f"{len(examples)} examples x 4 choices, {args.shots}-shot, {n_tokens / len(groups) / 4:.0f} tokens per "
          f"request, {torch.get_num_threads()} threads")

    score_groups(model, tokenizer, groups[:2], batch_size=2)  # warm-up
    start = time.perf_counter()
    batched = score_groups(model, tokenizer, groups, batch_size=args.batch_size)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    alone = [score_groups(model, tokenizer, [[pair]], batch_size=1)[0].logprobs[0] for g in groups for pair in g]
    t_alone = time.perf_counter() - start

    diff = max(abs(a - b) for a, b in zip((x for s in batched for x in s.logprobs), alone))
    print(f"shared-prefix batched (batch {args.batch_size}): {len(groups) / t_batched:8.1f} examples/s")
    print(f"one-at-a-time (batch 1):       {len(groups) / t_alone:8.1f} examples/s")
    print(f"speed-up {t_alone / t_batched:.1f}x, max |difference| {diff:.2e} nats")
    if diff > 1e-4:
        raise SystemExit("batched and one-at-a-time scores disagree")


if __name__ == "__main__":
    main()
