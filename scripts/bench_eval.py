"""RC scoring throughput on this CPU: ours (shared prefix) vs lm-evaluation-harness on the same checkpoint.

    .venv/bin/python scripts/bench_eval.py [--examples 64] [--shots 0 5] [--batch-size 32] [--repeats 3]
                                              [--threads 1]

A small OLMo-2 model (d128, 4 layers, vocab 2048) with a byte-level BPE tokenizer trained on random
words; an ARC-schema task of 4-choice questions built from those words, written to local files (the
evaluated split and a train split for the demonstrations) and an lm-eval config of the OLMES ARC
format reading them. Both tools score the same examples back to back in this process, from the task
files to per-choice log-likelihoods, with the same sequences per forward pass (`--batch-size`: lm-eval's
batch of requests; ours runs batch-size / choices examples, one sequence per choice). Prints examples/s
of each per CPU second (median of the repeats) and the ratio, and fails when the log-likelihoods differ by more than
1e-4 or the accuracies differ.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from eval.fewshot import with_fewshot
from eval.metrics import example_metrics
from eval.run import scored_example
from eval.scoring import encode_groups, pad_id, score_encoded
from eval.tasks import load_task
from ladder.core.sizes import ModelShape
from train.data.tokenizer import bpe_tokenizer
from train.model import build_model

WORDS = ("river mill bread flour water salt yeast dough committee budget chair vote star gas sun earth heat light "
         "window room breeze garden child boat morning question answer plant soil grow night city road").split()
N_CHOICES = 4
LM_EVAL_TASK = """task: bench_arc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {test}
    train: {train}
test_split: test
fewshot_split: train
fewshot_config:
  sampler: first_n
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices.text}}}}"
doc_to_target: "{{{{choices.label.index(answerKey)}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
metadata:
  version: 1.0
"""


def arc_rows(n: int, rng: random.Random) -> list[dict]:
    sentence = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    labels = "ABCD"[:N_CHOICES]
    return [{"id": str(i), "question": sentence(rng.randint(10, 25)) + "?", "answerKey": rng.choice(labels),
             "choices": {"text": [sentence(rng.randint(2, 8)) for _ in labels], "label": list(labels)}}
            for i in range(n)]


def build(root: Path, n_examples: int, seed: int = 0):
    """The checkpoint's model and tokenizer, the task files and lm-eval's config for them."""
    rng = random.Random(seed)
    tokenizer = bpe_tokenizer([" ".join(rng.choice(WORDS) for _ in range(50)) for _ in range(2000)], 2048)
    shape = ModelShape("bench", 128, 4, 4, 384, len(tokenizer), 1024)
    model = build_model(shape, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id).eval()
    files = {}
    for split, n in (("test", n_examples), ("train", 8)):
        files[split] = root / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps(r) + "\n" for r in arc_rows(n, rng)))
    (root / "tasks").mkdir()
    (root / "tasks" / "bench_arc.yaml").write_text(LM_EVAL_TASK.format(**files))
    return model, tokenizer, files


def run_ours(model, tokenizer, files, shots: int, batch_size: int):
    examples = with_fewshot(load_task("arc_easy", str(files["test"])),
                            load_task("arc_easy", str(files["train"]), fewshot=True), shots)
    encoded = encode_groups(tokenizer, [ex.requests() for ex in examples], model.config.max_position_embeddings)
    scores = score_encoded(model, encoded, pad_id(tokenizer), batch_size // N_CHOICES)
    lls = [s.logprobs for s in scores]
    per = []
    for ex, s in zip(examples, scores):
        per.append(example_metrics(scored_example(ex, s)))
    acc = {k: sum(p[k] for p in per) / len(per) for k in ("acc_raw", "acc")}
    return lls, acc, examples


def run_lm_eval(lm, task_manager, shots: int):
    import lm_eval

    out = lm_eval.simple_evaluate(model=lm, tasks=["bench_arc"], num_fewshot=shots, log_samples=True,
                                  task_manager=task_manager, verbosity="ERROR")
    samples = sorted(out["samples"]["bench_arc"], key=lambda s: s["doc_id"])
    res = out["results"]["bench_arc"]
    return [[ll for ll, _ in s["filtered_resps"]] for s in samples], {"acc_raw": res["acc,none"],
                                                                      "acc": res["acc_norm,none"]}


def timed(fn, *args):
    """fn's result and the CPU seconds this process spent on it: on a shared machine, wall time measures
    the other jobs as much as this one; with one thread, CPU time is the work done."""
    start = time.process_time()
    result = fn(*args)
    return result, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 5])
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each tool per setting; medians reported")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU seconds are summed over them)")
    args = parser.parse_args()
    try:
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError:
        HFLM = None
        print("lm_eval is not installed (pip install -e '.[test]'): our throughput only, no comparison")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model, tokenizer, files = build(root, args.examples)
        print(f"{args.examples} examples x {N_CHOICES} choices, batch {args.batch_size} sequences, "
              f"{torch.get_num_threads()} threads")
        score_encoded(model, encode_groups(tokenizer, [[("warm", " up")]], model.config.max_position_embeddings),
                      pad_id(tokenizer))
        if HFLM is not None:  # indexing lm-eval's task registry (seconds) is a one-off, not part of its scoring
            lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size, device="cpu")
            task_manager = TaskManager(include_path=str(root / "tasks"))
        failed = False
        for shots in args.shots:
            t_ours, t_theirs = [], []
            for _ in range(args.repeats):  # alternating, so a change in the machine's load hits both alike
                (ours, our_acc, examples), t = timed(run_ours, model, tokenizer, files, shots, args.batch_size)
                t_ours.append(t)
                if HFLM is not None:
                    (theirs, their_acc), t = timed(run_lm_eval, lm, task_manager, shots)
                    t_theirs.append(t)
            tokens = sum(len(tokenizer.encode(c + t)) for ex in examples for c, t in ex.requests()) / len(examples)
            line = (f"{shots}-shot ({tokens / N_CHOICES:.0f} tokens per request): "
                    f"ours {args.examples / statistics.median(t_ours):7.1f} examples/CPU-s")
            if HFLM is None:
                print(line)
                continue
            diff = max(abs(a - b) for x, y in zip(ours, theirs) for a, b in zip(x, y))
            print(f"{line}, lm-eval {args.examples / statistics.median(t_theirs):7.1f} examples/CPU-s, "
                  f"ratio {statistics.median(t_theirs) / statistics.median(t_ours):.2f}x; max |difference| {diff:.1e} "
                  f"nats; acc {our_acc['acc']:.3f} / {their_acc['acc']:.3f}, "
                  f"acc_raw {our_acc['acc_raw']:.3f} / {their_acc['acc_raw']:.3f} (ours / lm-eval)")
            failed |= diff > 1e-4 or any(abs(our_acc[k] - their_acc[k]) > 1e-9 for k in our_acc)
        if failed:
            raise SystemExit("our scores and lm-eval's differ")

if __name__ == "__main__":
    main()
