"""The one prepared GPU check: what the harness achieves on a GPU, in one JSON file, with no network.

    scripts/gpu_check.sh                                            # one H100/H200, < 8 min: gpu_check.json
    python scripts/gpu_check.py --device cpu --tiny --out check.json  # the same sections, a tiny model, a CPU

Sections, in order, each timed and recorded even when it fails (its error then stands in its place):
1. throughput: bf16 tokens/s and MFU of the harness (`train_run`) and of a plain PyTorch loop
   (scripts/bench_train.py's), compiled, for olmo-190M and olmo-1B, on random tokens in memory and on
   packed memmap shards on disk;
2. eval_share: one checkpoint of the OLMo suite (8 RC tasks, 5-shot) evaluated by the eval stage's
   entry point on task files written locally in each task's HF schema; its time per example,
   extrapolated to the suite's full size, as a share of the training time between two of a rung's
   10 checkpoints at M = 20 (the shortest rungs, so the largest share);
3. fsdp, zero2: one rung of 2 steps through `torchrun --nproc-per-node 1 -m train.worker`, with
   train=fsdp and train=deepspeed_zero2, written and checkpointed as a real run is.
Sections past `--budget-s` are skipped (recorded as such), so the file is always written.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_train import harness_loop, packed_shards, plain_loop, RandomSequences, timed_from  # noqa: E402
from ladder.core.configs import load_model  # noqa: E402
from ladder.core.schedules import Run  # noqa: E402
from ladder.core.recipes import Hyperparams  # noqa: E402
from ladder.core.sizes import ModelShape  # noqa: E402
from train.config import TrainConfig, WandbConfig  # noqa: E402
from train.metrics import peak_flops  # noqa: E402
from train.sizing import derive_micro_batch, device_memory  # noqa: E402

TINY = ModelShape(name="tiny", d_model=64, n_layers=2, n_heads=2, mlp_hidden=128, vocab_size=512, seq_len=64)
# Examples in each OLMo-suite task's evaluated split (the HF datasets the eval stage reads): 33,145 in all.
SUITE = {"hellaswag": 10042, "arc_easy": 2376, "arc_challenge": 1172, "piqa": 1838, "csqa": 1221,
         "socialiqa": 1954, "openbookqa": 500, "mmlu": 14042}
SECTIONS = ("throughput", "eval_share", "fsdp", "deepspeed_zero2")
WORDS = ("the a river old mill farmer grain autumn miller ledger leather sack careful account bound kept brought "
         "where each every water stone bridge village market morning evening light road field").split()


def shapes(args) -> list[ModelShape]:
    return [TINY] if args.tiny else [ModelShape(**load_model(name)) for name in args.sizes]


def train_config(args, **overrides) -> TrainConfig:
    base = dict(device=args.device, precision="bf16" if args.device == "cuda" else "fp32", compile=args.device == "cuda",
                checkpoint_fractions=[1.0], progress=False, log_every=args.log_every,
                wandb=WandbConfig(mode="disabled"))
    return TrainConfig(**{**base, **overrides})


def rung_for(shape: ModelShape, batch: int, steps: int) -> Run:
    hp = Hyperparams(batch_size=batch, lr=1e-3, warmup_steps=1, steps=steps, final_lr=1e-4, weight_decay=0.1,
                     z_loss=1e-5)
    return Run("check", shape, "check", shape.total_params, hp)


def micro_batch(shape: ModelShape, cfg: TrainConfig, tiny: bool) -> int:
    micro = derive_micro_batch(shape, cfg.precision, device_memory(torch.device(cfg.device)))
    return min(micro, 4) if tiny else micro  # a CPU's RAM would hold thousands of tiny sequences


def halving_on_oom(run, micro: int) -> tuple[float, int]:
    """run(micro) -> tokens/s, retried with half the micro-batch while the device runs out of memory."""
    while True:
        try:
            return run(micro), micro
        except torch.OutOfMemoryError:
            if micro == 1:
                raise
            micro //= 2
            torch.cuda.empty_cache()


def throughput(shape: ModelShape, data: str, args, tmp: Path) -> dict:
    cfg = train_config(args)
    micro = micro_batch(shape, cfg, args.tiny)
    batch, steps = 2 * micro, args.warmup + args.steps  # two micro-batches a step: accumulation is timed too
    rung = rung_for(shape, batch, steps)
    count = steps * batch
    source = (packed_shards(tmp / f"{shape.name}-{data}", count, shape.seq_len, shape.vocab_size)
              if data == "shards" else RandomSequences(count, shape.seq_len, shape.vocab_size))
    device = torch.device(args.device)

    def configured(m: int) -> TrainConfig:
        return train_config(args, micro_batch_size=m)

    # The plain loop holds the full logits (and their fp32 copy), so it may need a smaller micro-batch.
    harness, harness_micro = halving_on_oom(lambda m: harness_loop(rung, source, configured(m), args.warmup), micro)
    plain, plain_micro = halving_on_oom(lambda m: plain_loop(rung, source, configured(m), device, args.warmup), micro)
    peak = peak_flops(cfg)
    flops = shape.flops_per_token()
    return {"size": shape.name, "data": data, "batch": batch, "micro_batch": harness_micro,
            "plain_micro_batch": plain_micro, "seq_len": shape.seq_len,
            "timed_steps": steps - timed_from(args.warmup, args.log_every, steps),
            "harness_tokens_per_s": harness, "plain_tokens_per_s": plain, "ratio": harness / plain,
            "harness_mfu": harness * flops / peak if peak else None, "plain_mfu": plain * flops / peak if peak else None}


def write_tasks(directory: Path, n: int, seed: int = 0) -> dict[str, str]:
    """n rows per OLMo-suite task, in the task's HF schema, of plausible length (OLMo's ~500-token 5-shot prompts)."""
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    def choices(k: int, words: int) -> dict:
        return {"text": [text(words) for _ in range(k)], "label": list("ABCDE"[:k])}

    rows = {
        "hellaswag": lambda: {"ctx_a": text(30), "ctx_b": text(10), "endings": [text(20) for _ in range(4)],
                              "label": str(rng.randrange(4)), "activity_label": text(2)},
        "arc_easy": lambda: {"question": text(25), "choices": choices(4, 6), "answerKey": rng.choice("ABCD")},
        "arc_challenge": lambda: {"question": text(30), "choices": choices(4, 8), "answerKey": rng.choice("ABCD")},
        "piqa": lambda: {"goal": text(15), "sol1": text(20), "sol2": text(20), "label": rng.randrange(2)},
        "csqa": lambda: {"question": text(15), "choices": choices(5, 2), "answerKey": rng.choice("ABCDE")},
        "socialiqa": lambda: {"context": text(25), "question": text(8), "answerA": text(4), "answerB": text(4),
                              "answerC": text(4), "label": str(rng.randrange(1, 4))},
        "openbookqa": lambda: {"question_stem": text(15), "choices": choices(4, 5), "answerKey": rng.choice("ABCD")},
        # One subject: 5-shot prompts are drawn from the example's own subject.
        "mmlu": lambda: {"question": text(40), "subject": "astronomy", "choices": [text(6) for _ in range(4)],
                         "answer": rng.randrange(4)},
    }
    paths = {}
    for name, row in rows.items():
        path = directory / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row()) + "\n" for _ in range(n)))
        paths[name] = str(path)
    return paths


def eval_share(shape: ModelShape, tokens_per_s: float, args, tmp: Path) -> dict:
    """Time the eval stage's entry point on one saved checkpoint; extrapolate to the suite and a rung."""
    from eval.checkpoints import load_checkpoint
    from eval.config import EvalConfig
    from eval.run import RungInfo, evaluate_checkpoint, prepare_task
    from train.data.tokenizer import train_bpe
    from train.model import build_model

    per_task = max(args.eval_examples, 6)  # 5-shot prompts need 5 other examples
    (tmp / "tasks").mkdir()
    paths = write_tasks(tmp / "tasks", per_task)
    tokenizer = train_bpe(iter([" ".join(WORDS)] * 50), min(1000, shape.vocab_size), tmp / "tokenizer")
    checkpoint = tmp / "checkpoint" / "step-00000001"
    model = build_model(shape)
    model.save_pretrained(str(checkpoint))
    for f in Path(tokenizer).iterdir():
        (checkpoint / f.name).write_bytes(f.read_bytes())
    cfg = EvalConfig(tasks=list(SUITE), num_fewshot=5, batch_size=args.eval_batch, task_paths=paths,
                     fewshot_paths=paths, device=args.device)  # demonstrations from the same local files: no hub
    tasks = {name: prepare_task(name, cfg) for name in SUITE}
    rung = RungInfo({"run": "check"}, 1, 1, tmp)
    start = time.perf_counter()
    load_checkpoint(checkpoint, None, args.device)  # what the hook spends once per checkpoint
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    records = evaluate_checkpoint(checkpoint, lm_sets={}, tasks=tasks, cfg=cfg, rung=rung, step=1)
    seconds = time.perf_counter() - start
    examples = sum(len(v) for v in tasks.values())
    suite_s = load_s + max(0.0, seconds - load_s) / examples * sum(SUITE.values())
    # A rung at M = 20 trains 20·N tokens; its 10 checkpoints split that into 10 intervals.
    interval_s = 20 * shape.total_params / 10 / tokens_per_s
    return {"size": shape.name, "entry_point": "eval.run.evaluate_checkpoint", "examples_timed": examples,
            "records": len(records), "seconds": seconds, "load_seconds": load_s, "suite_examples": sum(SUITE.values()),
            "suite_seconds_estimate": suite_s, "train_seconds_per_checkpoint_M20": interval_s,
            "share_of_training": suite_s / interval_s}


def distributed_step(shape: ModelShape, kind: str, args, tmp: Path) -> dict:
    """2 steps of one rung under torchrun with the shipped train config `kind` (fsdp or deepspeed_zero2)."""
    from omegaconf import OmegaConf

    from train.rundir import read_record
    from train.worker import launch_command, write_launch

    shipped = OmegaConf.to_container(OmegaConf.load(ROOT / f"configs/train/{kind}.yaml"))
    cfg = train_config(args, **{**shipped, "device": args.device, "num_processes": 1, "compile": False,
                                "precision": "bf16" if args.device == "cuda" else "fp32"})
    cfg.micro_batch_size = micro = micro_batch(shape, cfg, args.tiny)
    rung = rung_for(shape, micro, 2)
    run_dir = tmp / kind
    seqs = packed_shards(tmp / f"{kind}-shards", 2 * micro, shape.seq_len, shape.vocab_size)
    write_launch(run_dir, rung, cfg, {"tokens": seqs.tokens, "seed": 0}, data_args=[str(seqs.directory)])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    proc = subprocess.run(launch_command(run_dir, 1), env=env, capture_output=True, text=True, timeout=args.step_timeout)
    record = read_record(run_dir) or {}
    result = {"config": kind, "size": shape.name, "returncode": proc.returncode, "seconds": time.perf_counter() - start,
              "state": record.get("state"), "steps": record.get("step"), "loss": record.get("loss")}
    if proc.returncode:
        result["stderr_tail"] = proc.stderr[-3000:]
    return result


def run_section(report: dict, key: str, deadline: float, fn, *fn_args) -> dict | None:
    if time.perf_counter() > deadline:
        report["sections"].append({"section": key, "skipped": "past --budget-s"})
        return None
    start = time.perf_counter()
    try:
        result = {"section": key, **fn(*fn_args)}
    except Exception as exc:  # one broken section must not lose the others' figures
        result = {"section": key, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
    result["section_seconds"] = time.perf_counter() - start
    report["sections"].append(result)
    print(json.dumps({k: v for k, v in result.items() if k != "traceback"}), flush=True)
    return result


def environment(args) -> dict:
    import importlib.util

    import accelerate
    import transformers

    env = {"torch": torch.__version__, "transformers": transformers.__version__, "accelerate": accelerate.__version__,
           "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
           **{f"has_{m}": importlib.util.find_spec(m) is not None for m in ("liger_kernel", "flash_attn", "deepspeed")}}
    if args.device == "cuda":
        env["cuda"] = torch.version.cuda
    return env


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--tiny", action="store_true", help="a tiny model instead of the olmo sizes (CPU dry run)")
    parser.add_argument("--sizes", nargs="+", default=["olmo-190M", "olmo-1B"])
    parser.add_argument("--steps", type=int, default=10, help="timed optimizer steps per loop")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation)")
    parser.add_argument("--log-every", type=int, default=5, help="steps between loss reads; divides --warmup, "
                        "since the harness's clock starts at a logged step")
    parser.add_argument("--eval-examples", type=int, default=24, help="examples per task timed")
    parser.add_argument("--eval-batch", type=int, default=32)
    parser.add_argument("--step-timeout", type=int, default=240, help="seconds for each torchrun step check")
    parser.add_argument("--budget-s", type=float, default=420, help="no section starts after this many seconds")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS, help="which to run")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible (use --device cpu --tiny for a dry run)")

    deadline = time.perf_counter() + args.budget_s
    report = {"command": " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
              "environment": environment(args), "sections": []}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        speed = {}
        for shape in shapes(args) if "throughput" in args.sections else []:
            for data in ("synthetic", "shards"):
                result = run_section(report, "throughput", deadline, throughput, shape, data, args, tmp)
                if result and "harness_tokens_per_s" in result:
                    speed[shape.name] = result["harness_tokens_per_s"]
        largest = shapes(args)[-1]
        if "eval_share" in args.sections and largest.name in speed:  # the share needs the training speed
            run_section(report, "eval_share", deadline, eval_share, largest, speed[largest.name], args, tmp)
        for kind in ("fsdp", "deepspeed_zero2"):
            if kind in args.sections:
                run_section(report, kind, deadline, distributed_step, shapes(args)[0], kind, args, tmp)
    report["seconds"] = time.perf_counter() - start
    tmp_out = args.out.with_name(args.out.name + ".tmp")
    tmp_out.write_text(json.dumps(report, indent=2))
    os.replace(tmp_out, args.out)
    failed = [s["section"] for s in report["sections"] if "error" in s or s.get("returncode")]
    print(f"wrote {args.out} in {report['seconds']:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
