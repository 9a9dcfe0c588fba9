"""The one prepared GPU check: the harness on one GPU, the figure that matters first, in one JSON file, with no
network.

    scripts/gpu_check.sh $OUT/gpu_check.json                          # on the lent H100 or H200 (docs/train.md)
    python scripts/gpu_check.py --device cpu --tiny --out check.json  # the same sections on a CPU, tiny shapes

Sections, in order of what a lent machine's minutes are worth, each timed and recorded even when it fails (its
error then stands in its place). The JSON is rewritten atomically after every section, so a run killed at its
time limit still returns what it measured; a section whose estimate no longer fits in what is left of
`--budget-s` is skipped with a line saying so, and recorded as skipped.
0. imports: every module of ladder, train, eval and fit, and `python -m ladder plan ladder=olmo` (Hydra):
   a wheel missing from .whl/ shows here, by name, before anything trains;
1. throughput, for each of `--sizes` (olmo-1B, then olmo-190M): tokens/s of the harness (`train_run`, as
   scripts/bench_train.py's harness_loop runs it: compiled, bf16, on packed memmap shards, two micro-batches a
   step, its final checkpoint timed), MFU in both conventions (below), the SDPA kernel that ran (a one-step
   torch.profiler trace of the live model at the run's last checkpoint: its scaled-dot-product op and CUDA
   kernels, classified as flash, efficient, cudnn or math) and the section's peak GPU memory;
2. distributed: one rung of 2 steps through `torchrun --nproc-per-node 1 -m train.worker` with each of the
   shipped train=fsdp (torch's FSDP2) and train=deepspeed_zero2, compiled as shipped, written and
   checkpointed as a real run is; the two workers side by side, a micro-batch of 4 each;
3. eval_in_loop: the smallest size (olmo-190M, the largest eval share) trained as `ladder run` trains it on a
   GPU (configs/train/gpu.yaml: bf16, compiled), 4 steps with a checkpoint at 2 and 4, each evaluated by the
   eval stage's hook (eval.cli.make_eval_hook) with the live model on the OLMo suite (configs/eval/olmo.yaml:
   8 RC tasks, 5-shot) from task files written here in each task's HF schema, sampled in the suite's
   proportions (`SUITE`). The second checkpoint's evaluation (the tasks already prepared), per example times
   the suite's 33,145, is its share of the training time between two of a rung's 10 checkpoints at M = 20
   (2·N tokens, N in the OLMo convention) at the speed measured after the first checkpoint. Also the
   checkpoint's time on the training loop (`CheckpointTimer`);
4. resume: a small rung of 2k steps trained straight through, and again stopped after its checkpoint
   at step k (ladder.core.interrupt.Interrupted, what SIGTERM raises) and resumed to 2k: the losses and
   gradient norms of steps k+1..2k of the two runs, and their largest difference;
5. bf16_vs_fp32: 20 steps of the small shape with train.precision=bf16 and =fp32, same seed and data, side by
   side in two torchrun workers (accelerate fixes one mixed precision per process): the loss differences. On a
   GPU "fp32" is fp32 weights with TF32 matmuls (train.backends.make_backend turns TF32 on), as the record's
   `fp32_matmuls` says;
6. baseline, for each size: bench_train's plain PyTorch loop (no accelerate, no reader thread, no records; the
   same compiled blocks and chunked loss, so the same micro-batch fits) against the harness's tokens/s.
7. ladder_run: the real CLI, `python -m ladder run ladder=node` shrunk to three CPU sizes at M = 1, 2 on a C4-schema
   shard and task files written here, with train.wandb.mode left at its default (offline): on the device, whose
   image has no wandb, one warning and on to the fit's report (the optional loggers' path).
A loop that runs out of memory is retried with half its micro-batch. Every in-process section records its
peak GPU memory (torch.cuda.max_memory_allocated, reset first). Estimates and micro-batches are those of the
device found (`GPUS`: an H100's 80 GB or an H200's 141 GB; `--estimate-for` on a CPU).

MFU, against the GPU's dense bf16 datasheet peak (`peak_flops`: train.metrics.peak_flops), in two conventions:
- model FLOPs (`mfu_model`): ladder.core.sizes.ModelShape.flops_per_token, 6·N_matmul + 12·L·d·T per
  token (PaLM, appendix B): forward and backward of every matmul parameter (the LM head included, the
  input lookup not), and QKᵀ and PV over all T×T scores. The same whatever runs it.
- hardware FLOPs (`mfu_hardware`): what the kernels execute. The same 6·N_matmul (nothing recomputed: no
  activation checkpointing), and per layer, per token, 2·d FLOPs per key for each T×T×d product: forward
  QKᵀ and PV (2), backward dV, dP, dQ, dK (4) and, in the fused kernels (flash, efficient, cudnn), QKᵀ
  again (+1); those skip the keys after each causal query, (T+1)/2 keys on average, while math multiplies
  all T and masks afterwards. So the attention term is 7·L·d·(T+1) for flash/efficient/cudnn (counted per
  element: the diagonal tiles' masked half adds under one tile per row) and 12·L·d·T for math.

Every import of the harness sits inside the section that needs it, so a missing package fails that
section, not the whole check.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from ladder.core.layout import METRICS  # noqa: E402  (stdlib only)
from ladder.core.sizes import ModelShape  # noqa: E402  (stdlib only)

TINY = ModelShape(name="tiny", d_model=64, n_layers=2, n_heads=2, mlp_hidden=128, vocab_size=512, seq_len=64)
# The resume and precision checks' model: the training path at full speed, not a size's figures.
SMALL = ModelShape(name="small", d_model=512, n_layers=4, n_heads=8, mlp_hidden=1536, vocab_size=8192, seq_len=512)
# Examples in each OLMo-suite task's evaluated split (the HF datasets the eval stage reads): 33,145 in all.
SUITE = {"hellaswag": 10042, "arc_easy": 2376, "arc_challenge": 1172, "piqa": 1838, "csqa": 1221,
         "socialiqa": 1954, "openbookqa": 500, "mmlu": 14042}
DISTRIBUTED = ("fsdp", "deepspeed_zero2")  # the shipped train configs the distributed section runs
TORCHRUN = ("distributed", "bf16_vs_fp32")  # the sections that train in torchrun's processes, not this one
FEWSHOT_POOL = 8  # rows in each task's few-shot file: 5 demonstrations and some choice
# In the order they run: the figure a lent machine is for first, then what finds bugs, then the baselines.
SECTIONS = ("imports", "throughput", "distributed", "eval_in_loop", "resume", "bf16_vs_fp32", "baseline",
            "ladder_run")
WORDS = ("the a river old mill farmer grain autumn miller ledger leather sack careful account bound kept brought "
         "where each every water stone bridge village market morning evening light road field").split()
# The aten op each SDPA backend runs (its backward adds _backward); the CPU's flash is ..._flash_attention_for_cpu.
SDPA_OPS = {"flash": "_scaled_dot_product_flash_attention", "efficient": "_scaled_dot_product_efficient_attention",
            "cudnn": "_scaled_dot_product_cudnn_attention", "math": "_scaled_dot_product_attention_math"}
ATTENTION_KERNEL = re.compile(r"flash|fmha|attention|sdpa|attn", re.IGNORECASE)
# Seconds that the up-front estimates assume on either lent GPU (an H200 computes as fast as an H100 SXM, with
# more and faster memory); the first device run's section_seconds replace them.
ASSUMED = {"start": 15, "imports": 10, "torchrun": 25, "deepspeed": 10, "compile": 40, "compile_cached": 15,
           "achieved_flops": 0.35 * 989e12, "init_s_per_param": 6e-9, "save_bytes_per_s": 1.5e9, "eval_s": 5,
           "profile_steps": 2, "ladder_run": 45}
# The lent devices' memory as torch reports it (total_memory: the datasheet's 80 GB and 141 GB less what the
# driver keeps), which sizes their micro-batches (train.sizing) and so the estimates.
GPUS = {"H100": int(79.1 * 2**30), "H200": int(139.8 * 2**30)}


def shapes(args) -> list[ModelShape]:
    from ladder.core.configs import load_model

    return [TINY] if args.tiny else [ModelShape(**load_model(name)) for name in args.sizes]


def train_config(args, **overrides):
    """What configs/train/gpu.yaml trains with on a GPU (bf16, compiled), fp32 uncompiled on a CPU."""
    from train.config import TrainConfig, WandbConfig

    cuda = args.device == "cuda"
    base = dict(device=args.device, precision="bf16" if cuda else "fp32", compile=cuda, checkpoint_fractions=[1.0],
                progress=False, log_every=args.log_every, wandb=WandbConfig(mode="disabled"))
    return TrainConfig(**{**base, **overrides})


def rung_for(shape: ModelShape, batch: int, steps: int):
    """A run of its own rung, as a cosine ladder trains one: its config.yaml names the rung, which the eval
    hook reads."""
    from ladder.core.lr import Cosine
    from ladder.core.plan import Rung
    from ladder.core.recipes import Hyperparams
    from ladder.core.schedules import Run

    hp = Hyperparams(batch_size=batch, lr=1e-3, warmup_steps=1, steps=steps, final_lr=1e-4, weight_decay=0.1,
                     z_loss=1e-5)
    rung = Rung(shape, "check", 1.0, shape.total_params, steps * batch * shape.seq_len, hp)
    return Run(rung.rung_id, shape, rung.dataset, rung.params, hp, Cosine.of(hp), rung=rung.as_dict())


def micro_batch(shape: ModelShape, precision: str, args) -> int:
    from train.sizing import derive_micro_batch, device_memory

    micro = derive_micro_batch(shape, precision, device_memory(torch.device(args.device)))
    return min(micro, 4) if args.tiny else micro  # a CPU's RAM would hold thousands of tiny sequences


def shards(directory: Path, shape: ModelShape, count: int):
    from bench_train import packed_shards

    return packed_shards(directory, count, shape.seq_len, shape.vocab_size)


def metrics_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / METRICS).read_text().splitlines()]


def fresh_device() -> None:
    """Free what the last section or attempt left: its frames (gc breaks the cycles a traceback makes), the
    allocator's cache, the peak-memory counter, and Dynamo's caches: after a recompile at another shape,
    Dynamo would otherwise mark that dimension dynamic in every later compile."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.compiler.reset()


def is_oom(exc: BaseException) -> bool:
    # Inductor's autotuning and some wrappers re-raise an OOM as a plain RuntimeError.
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def halving_on_oom(run, micro: int) -> tuple[float, int, list[int]]:
    """run(micro) -> tokens/s, retried with half the micro-batch while the device runs out of memory;
    (tokens/s, the micro-batch that ran, those that ran out)."""
    failed = []
    while True:
        fresh_device()
        try:
            return run(micro), micro, failed
        except Exception as exc:
            if micro == 1 or not is_oom(exc):
                raise
        # Here, outside the except block, the exception and its traceback (holding the failed run's model
        # and optimizer through its frames) are gone, so fresh_device() can free their memory.
        failed.append(micro)
        micro //= 2


class CheckpointTimer:
    """An eval hook timing each checkpoint: its save, and `inner` (an eval hook) when given.

    The save time runs from the step's line in metrics.jsonl, the loop's last write before it checkpoints,
    to this call, which follows the commit: gathering the weights, save_pretrained, the optimizer and RNG
    state, the trainer state and the rename. None when metrics.jsonl's last line is not this step's.
    """

    def __init__(self, inner=None):
        self.inner, self.calls = inner, []

    def __call__(self, checkpoint_dir, step, model, **kwargs):
        now, metrics = time.time(), Path(checkpoint_dir).parent.parent / METRICS
        last = json.loads(metrics.read_text().splitlines()[-1])
        saved = now - metrics.stat().st_mtime if last["step"] == step else None
        start = time.perf_counter()
        if self.inner is not None:
            self.inner(checkpoint_dir, step, model, **kwargs)
        self.calls.append({"step": step, "checkpoint_seconds": saved, "eval_seconds": time.perf_counter() - start,
                           "checkpoint_bytes": sum(f.stat().st_size for f in Path(checkpoint_dir).rglob("*")
                                                   if f.is_file())})


def environment(args) -> dict:
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu"}
    if args.device == "cuda":
        env["cuda"] = torch.version.cuda
    # Versions without importing: the wheels carried in (.whl/) and the image's packages they run against.
    for name in ("transformers", "accelerate", "tokenizers", "safetensors", "huggingface-hub", "numpy", "triton",
                 "deepspeed", "liger-kernel", "datasets", "omegaconf", "hydra-core", "pydantic", "typing-extensions",
                 "pyarrow", "fsspec", "pandas", "flash-attn"):
        try:
            env[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            env[name] = None
    return env


def check_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


# --- 0. imports ---------------------------------------------------------------------------------------------

def imports(args, tmp: Path) -> dict:
    failed, modules = {}, []
    for package in ("ladder", "train", "eval", "fit"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] != "__main__":
                modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
    cli = subprocess.run([sys.executable, "-m", "ladder", "plan", "ladder=olmo"], capture_output=True, text=True,
                         env=check_env(), timeout=300)
    result = {"modules": len(modules), "failed": failed, "cli": "python -m ladder plan ladder=olmo",
              "cli_returncode": cli.returncode, "cli_tail": (cli.stdout if cli.returncode == 0 else cli.stderr)[-1500:]}
    if failed or cli.returncode:
        result["error"] = f"{len(failed)} module(s) failed to import" + (", the CLI failed" if cli.returncode else "")
    return result


# --- 2. distributed ------------------------------------------------------------------------------------------

def start_worker(run_dir: Path, rung, cfg, seqs) -> tuple[subprocess.Popen, Path]:
    """One rung under `torchrun --nproc-per-node 1 -m train.worker`, as a launch runs it; (process, its log)."""
    from train.worker import launch_command, write_launch

    write_launch(run_dir, rung, cfg, {"tokens": seqs.tokens, "seed": 0}, data_args=[str(seqs.directory)])
    log = run_dir / "worker.log"
    with open(log, "w") as f:
        return subprocess.Popen(launch_command(run_dir, 1), env=check_env(), stdout=f, stderr=subprocess.STDOUT), log


def finish_worker(proc: subprocess.Popen, log: Path, run_dir: Path, args) -> dict:
    from train.rundir import read_record

    try:
        proc.wait(timeout=args.step_timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    record = read_record(run_dir) or {}
    out = {"returncode": proc.returncode, "state": record.get("state"), "steps": record.get("step"),
           "loss": record.get("loss"), "checkpoints": sorted(p.name for p in (run_dir / "checkpoints").glob("step-*"))}
    if proc.returncode:
        out["log_tail"] = log.read_text()[-3000:]
    return out


def distributed(shape: ModelShape, args, tmp: Path) -> dict:
    """2 steps of a rung under torchrun with each of the shipped train=fsdp and train=deepspeed_zero2, compiled
    as shipped on a GPU, the two side by side (a small micro-batch each, so both fit on the one GPU)."""
    from omegaconf import OmegaConf

    precision, records = "bf16" if args.device == "cuda" else "fp32", {}
    micro = min(4, micro_batch(shape, precision, args))
    seqs = shards(tmp / "shards", shape, 2 * micro)
    workers = {}
    for kind in DISTRIBUTED:
        shipped = OmegaConf.to_container(OmegaConf.load(ROOT / f"configs/train/{kind}.yaml"))
        cfg = train_config(args, **{**shipped, "device": args.device, "num_processes": 1, "precision": precision,
                                    "compile": shipped.get("compile", False) and args.device == "cuda",
                                    "micro_batch_size": micro, "log_every": 1})
        workers[kind] = (start_worker(tmp / kind, rung_for(shape, micro, 2), cfg, seqs), cfg.compile)
    for kind, ((proc, log), compiled) in workers.items():
        records[kind] = {"size": shape.name, "micro_batch": micro, "precision": precision, "compile": compiled,
                         **finish_worker(proc, log, tmp / kind, args)}
    failed = [k for k, r in records.items() if (r["state"], r["steps"]) != ("done", 2)]
    return {**records, **({"error": f"{', '.join(failed)}: did not train 2 steps to the end"} if failed else {})}


# --- 3. eval_in_loop ------------------------------------------------------------------------------------------

def suite_sample(total: int) -> dict[str, int]:
    """Examples per task, about `total` in all, in the suite's proportions: their mean time is the suite's."""
    return {name: max(1, round(total * n / sum(SUITE.values()))) for name, n in SUITE.items()}


def write_tasks(directory: Path, counts: dict[str, int], seed: int = 0) -> dict[str, str]:
    """counts[task] rows per OLMo-suite task, in the task's HF schema, of plausible length (OLMo's ~500-token
    5-shot prompts)."""
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
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, count in counts.items():
        path = directory / f"{name}.jsonl"
        path.write_text("".join(json.dumps(rows[name]()) + "\n" for _ in range(count)))
        paths[name] = str(path)
    return paths


def eval_in_loop(shape: ModelShape, args, tmp: Path) -> dict:
    from omegaconf import OmegaConf

    from eval.cli import make_eval_hook
    from eval.config import EvalConfig
    from eval.run import read_results
    from train.data.tokenizer import train_bpe
    from train.loop import train_run

    counts = suite_sample(args.eval_examples)
    shipped = OmegaConf.load(ROOT / "configs/eval/olmo.yaml")
    eval_cfg = OmegaConf.create({"eval": OmegaConf.merge(OmegaConf.structured(EvalConfig), shipped, {
        "task_paths": write_tasks(tmp / "tasks", counts),
        "fewshot_paths": write_tasks(tmp / "fewshot", dict.fromkeys(SUITE, FEWSHOT_POOL), seed=1)})})
    tokenizer = train_bpe(iter([" ".join(WORDS)] * 50), min(1000, shape.vocab_size), tmp / "tokenizer")
    cfg = train_config(args, checkpoint_fractions=[0.5, 1.0], log_every=1)
    cfg.micro_batch_size = micro = micro_batch(shape, cfg.precision, args)
    steps, run_dir = 4, tmp / "eval-rung"
    rung = rung_for(shape, micro, steps)
    timer = CheckpointTimer(make_eval_hook(eval_cfg, run_dir))
    result = train_run(rung, shards(tmp / "eval-shards", shape, steps * micro), run_dir, cfg,
                        tokenizer_dir=Path(tokenizer), eval_hook=timer)
    if result.state != "done" or len(timer.calls) != 2:
        return {"error": f"training ended {result.state} ({result.reason}) after {len(timer.calls)} evaluations"}
    rows = metrics_rows(run_dir)
    speed = statistics.median(r["tokens_per_s"] for r in rows if r["step"] > timer.calls[0]["step"])
    first, steady = timer.calls
    examples = sum(counts.values())
    suite_s = steady["eval_seconds"] / examples * sum(SUITE.values())
    # A rung at M = 20 trains 20·N tokens; its 10 checkpoints split that into 10 intervals.
    interval_s = 20 * shape.params("olmo") / 10 / speed
    return {"size": shape.name, "steps": steps, "micro_batch": micro, "precision": cfg.precision,
            "compile": cfg.compile, "tokens_per_s_by_step": {r["step"]: r["tokens_per_s"] for r in rows},
            "train_tokens_per_s": speed, "hook": "eval.cli.make_eval_hook", "evaluations": timer.calls,
            "examples_per_task": counts, "examples_timed": examples, "records": len(read_results(run_dir)),
            "prepare_seconds": first["eval_seconds"] - steady["eval_seconds"], "eval_seconds": steady["eval_seconds"],
            "suite_examples": sum(SUITE.values()), "suite_seconds_estimate": suite_s,
            "train_seconds_per_checkpoint_M20": interval_s, "share_of_training": suite_s / interval_s,
            "checkpoint_seconds": steady["checkpoint_seconds"], "checkpoint_bytes": steady["checkpoint_bytes"]}


# --- 4. resume, 5. bf16_vs_fp32 -----------------------------------------------------------------------------

def resume(shape: ModelShape, args, tmp: Path) -> dict:
    from ladder.core.interrupt import Interrupted
    from train.loop import train_run
    from train.rundir import read_record

    k = args.resume_steps
    cfg = train_config(args, compile=False, checkpoint_fractions=[0.5, 1.0], log_every=1)
    cfg.micro_batch_size = micro = min(4, micro_batch(shape, cfg.precision, args))
    rung = rung_for(shape, 2 * micro, 2 * k)  # two micro-batches a step: accumulation resumes too
    seqs = shards(tmp / "resume-shards", shape, 2 * k * 2 * micro)

    def stop(checkpoint_dir, step, model, **kwargs):
        if step == k:
            raise Interrupted("SIGTERM")  # what ladder.core.interrupt raises when Slurm or torchrun stops a run

    straight = train_run(rung, seqs, tmp / "straight", cfg)
    try:
        train_run(rung, seqs, tmp / "stopped", cfg, eval_hook=stop)
    except Interrupted:
        pass
    stopped = read_record(tmp / "stopped") or {}
    resumed = train_run(rung, seqs, tmp / "stopped", cfg)
    a, b = ({r["step"]: r for r in metrics_rows(run)} for run in (tmp / "straight", tmp / "stopped"))
    later = range(k + 1, 2 * k + 1)
    out = {"size": shape.name, "k": k, "steps": 2 * k, "micro_batch": micro, "batch": 2 * micro,
           "precision": cfg.precision, "compile": cfg.compile,
           "stopped_state": stopped.get("state"), "stopped_step": stopped.get("step"),
           "straight_state": straight.state, "resumed_state": resumed.state,
           "straight_losses": [a[s]["loss"] for s in later if s in a],
           "resumed_losses": [b[s]["loss"] for s in later if s in b]}
    if (stopped.get("state"), stopped.get("step"), straight.state, resumed.state) != ("interrupted", k, "done", "done") \
            or any(s not in a or s not in b for s in later):
        return {**out, "error": "the stopped run did not stop at its checkpoint and resume to the end"}
    out["max_abs_loss_diff"] = max(abs(a[s]["loss"] - b[s]["loss"]) for s in later)
    out["max_abs_grad_norm_diff"] = max(abs(a[s]["grad_norm"] - b[s]["grad_norm"]) for s in later)
    return out


def precision_diff(shape: ModelShape, args, tmp: Path) -> dict:
    """Both precisions side by side, each in its own worker: accelerate fixes one mixed precision per process."""
    steps, losses = args.precision_steps, {}
    micro = min(8, micro_batch(shape, "fp32", args))
    rung, seqs = rung_for(shape, micro, steps), shards(tmp / "shards", shape, steps * micro)
    workers = {p: start_worker(tmp / p, rung, train_config(args, precision=p, compile=False, micro_batch_size=micro,
                                                          log_every=1), seqs) for p in ("fp32", "bf16")}
    for precision, (proc, log) in workers.items():
        result = finish_worker(proc, log, tmp / precision, args)
        if result["state"] != "done":
            return {"error": f"{precision}: training ended {result['state']}", **result}
        losses[precision] = [r["loss"] for r in metrics_rows(tmp / precision)]
    diffs = [b - a for a, b in zip(losses["fp32"], losses["bf16"])]
    return {"size": shape.name, "steps": steps, "micro_batch": micro,
            # what the fp32 run's matmuls ran in: make_backend turns TF32 on wherever it trains on CUDA
            "fp32_matmuls": "tf32" if args.device == "cuda" else "fp32", "fp32_losses": losses["fp32"],
            "bf16_losses": losses["bf16"], "final_diff": diffs[-1], "final_rel_diff": diffs[-1] / losses["fp32"][-1],
            "max_abs_diff": max(map(abs, diffs)), "mean_abs_diff_last5": statistics.fmean(map(abs, diffs[-5:]))}


# --- 1. throughput (with the SDPA kernel), 6. baseline -----------------------------------------------------------

def attention_kernel(model, shape: ModelShape, micro: int, dtype) -> dict:
    """A torch.profiler trace of one training step of `model` (compiled as it trained, so the trace runs the
    graphs the run ran): the scaled-dot-product op that ran and its CUDA kernels, classified by SDPA_OPS."""
    from torch.profiler import ProfilerActivity, profile

    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    ids = torch.randint(0, shape.vocab_size, (micro, shape.seq_len), device=device)
    model.train()
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as trace:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = model(input_ids=ids, labels=ids)
        out.total.backward()
        if cuda:
            torch.cuda.synchronize()
    model.zero_grad(set_to_none=True)
    events = trace.key_averages()
    ops = sorted({e.key for e in events if "scaled_dot_product" in e.key})
    kernels = {e.key: e.device_time_total for e in events
               if "CUDA" in str(e.device_type) and ATTENTION_KERNEL.search(e.key)}
    all_kernels = sum(e.device_time_total for e in events if "CUDA" in str(e.device_type))
    kind = next((k for k, op in SDPA_OPS.items() if any(op in o for o in ops)), None)
    return {"sdpa_kernel": kind, "sdpa_aten_ops": ops, "attention_cuda_kernels_us": kernels,
            "attention_share_of_kernel_time": sum(kernels.values()) / all_kernels if all_kernels else None}


class KernelProbe:
    """An eval hook tracing one training step of the live model at the run's last checkpoint
    (`attention_kernel`): after the timed steps, on the model as the loop compiled and wrapped it."""

    def __init__(self, shape: ModelShape, last_step: int, micro: int):
        self.shape, self.last_step, self.micro, self.found = shape, last_step, micro, {}

    def __call__(self, checkpoint_dir, step, model, dtype=None, **kwargs):
        if step == self.last_step:
            self.found = attention_kernel(model, self.shape, self.micro, dtype)


def hardware_flops_per_token(shape: ModelShape, kernel: str | None) -> int | None:
    """The kernels' FLOPs per trained token (module docstring); None for an unknown kernel."""
    L, d, T = shape.n_layers, shape.d_model, shape.seq_len
    matmuls = shape.flops_per_token() - 12 * L * d * T  # 6·N_matmul
    if kernel in ("flash", "efficient", "cudnn"):
        return matmuls + 7 * L * d * (T + 1)
    return matmuls + 12 * L * d * T if kernel == "math" else None


def throughput(shape: ModelShape, args, tmp: Path) -> dict:
    """The harness's tokens/s, MFU and SDPA kernel at `shape`."""
    return loop_speed(shape, "harness", None, args, tmp)


def baseline(shape: ModelShape, kernel: str | None, args, tmp: Path) -> dict:
    """bench_train's plain loop at `shape`; `kernel` is the one the harness's step ran at that size."""
    return loop_speed(shape, "plain", kernel, args, tmp)


def loop_speed(shape: ModelShape, loop: str, kernel: str | None, args, tmp: Path) -> dict:
    from bench_train import harness_loop, plain_loop, timed_from
    from train.metrics import peak_flops

    cfg = train_config(args)
    micro = micro_batch(shape, cfg.precision, args)
    batch, steps = 2 * micro, args.warmup + args.steps  # two micro-batches a step: accumulation is timed too
    rung = rung_for(shape, batch, steps)
    source = shards(tmp / f"{shape.name}-{loop}-shards", shape, steps * batch)
    probe = KernelProbe(shape, steps, micro)
    timer = CheckpointTimer(probe)

    def run(m: int) -> float:
        configured = train_config(args, micro_batch_size=m)
        if loop == "harness":
            probe.micro = m  # the step traced is one the run trained: its graphs are compiled
            return harness_loop(rung, source, configured, args.warmup, eval_hook=timer)
        return plain_loop(rung, source, configured, torch.device(args.device), args.warmup)

    tokens_per_s, ran, failed = halving_on_oom(run, micro)
    kernel = probe.found.get("sdpa_kernel", kernel)
    peak = peak_flops(cfg)
    model, hardware = shape.flops_per_token(), hardware_flops_per_token(shape, kernel)
    out = {"size": shape.name, "loop": loop, "data": "shards", "batch": batch, "micro_batch": ran,
           "out_of_memory_at": failed, "seq_len": shape.seq_len, "precision": cfg.precision, "compile": cfg.compile,
           "timed_steps": steps - timed_from(args.warmup, args.log_every, steps), "tokens_per_s": tokens_per_s,
           "sdpa_kernel": kernel, "model_flops_per_token": model, "hardware_flops_per_token": hardware,
           "peak_flops": peak,
           "mfu_model": tokens_per_s * model / peak if peak else None,
           "mfu_hardware": tokens_per_s * hardware / peak if peak and hardware else None, **probe.found}
    if loop == "harness" and kernel is None:
        out["error"] = f"no scaled-dot-product attention op in the trace (ops: {probe.found.get('sdpa_aten_ops')})"
    if timer.calls:
        out.update(checkpoint_seconds=timer.calls[-1]["checkpoint_seconds"],
                   checkpoint_bytes=timer.calls[-1]["checkpoint_bytes"])
    return out


# --- 7. ladder_run ---------------------------------------------------------------------------------------------

def ladder_run(args, tmp: Path) -> dict:
    import gzip

    corpus, tasks = tmp / "c4", tmp / "tasks"
    corpus.mkdir()
    rng = random.Random(0)
    with gzip.open(corpus / "c4-train.00000-of-00001.json.gz", "wt") as f:
        for i in range(1500):
            f.write(json.dumps({"text": " ".join(rng.choice(WORDS) for _ in range(40 + i % 40)),
                                "timestamp": "2019-04-25T12:57:54Z", "url": f"u{i}"}) + "\n")
    for name, path in write_tasks(tasks, dict.fromkeys(("hellaswag", "mmlu"), 8)).items():
        (tasks / f"{name}-fewshot.jsonl").write_text(Path(path).read_text())
    command = [sys.executable, "-m", "ladder", "run", "ladder=node", f"data.path={corpus}", f"out_dir={tmp}/run",
               "ladder.sizes=[smoke-24,smoke-32,smoke-48]", "ladder.multipliers=[1,2]",
               "ladder.convention=non_embedding", "ladder.tokenizer.train_vocab_size=300", "ladder.recipe=smoke",
               "data.val_tokens=4096", "train=cpu", "train.progress=false", "train.checkpoint_fractions=[1.0]",
               "launcher.devices=1", "eval.tasks=[hellaswag,mmlu]", "eval.max_examples=4", "eval.max_sequences=8",
               "eval.batch_size=8", "fit=default", "fit.method=chinchilla", "fit.bootstrap=0"]
    env = {**check_env(), "LADDER_CACHE": str(tmp / "cache"), "LADDER_TASKS": str(tasks)}
    env.pop("WANDB_MODE", None)  # train.wandb.mode decides, as on a user's machine
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.step_timeout)
    output = proc.stdout + proc.stderr
    out = {"command": " ".join(command[1:]), "returncode": proc.returncode,
           "wandb_installed": importlib.util.find_spec("wandb") is not None,
           "wandb_missing_warnings": output.count("wandb is not installed"),
           "report": (tmp / "run" / "report" / "report.html").is_file()}
    if proc.returncode or not out["report"]:
        out.update(error="ladder run did not reach its report", tail=output[-3000:])
    return out


# --- the plan, its estimates, the report ---------------------------------------------------------------------

def estimated_device(args) -> tuple[str, int]:
    """(the lent GPU the estimates are for, its memory): the one found, else `--estimate-for` (a CPU run)."""
    if args.device == "cuda":
        name = torch.cuda.get_device_name()
        return ("H200" if "H200" in name else "H100"), torch.cuda.get_device_properties(0).total_memory
    return args.estimate_for, GPUS[args.estimate_for]


def train_seconds(shape: ModelShape, tokens: int, compiled: str | None = None, saves: int = 0) -> float:
    """The estimate of one training run (ASSUMED): building, compiling, the steps and saves."""
    a = ASSUMED
    return (2 + shape.total_params * a["init_s_per_param"] + (a[compiled] if compiled else 0)
            + tokens * shape.flops_per_token() / a["achieved_flops"]
            + saves * 12 * shape.total_params / a["save_bytes_per_s"])  # fp32 weights + AdamW's two moments


def plan(args, memory: int) -> list[tuple[str, tuple, float]]:
    """(section, its arguments, estimated seconds on a GPU of `memory` bytes) in the order they run."""
    from train.sizing import derive_micro_batch

    sizes = shapes(args)
    smallest, small = min(sizes, key=lambda s: s.total_params), TINY if args.tiny else SMALL

    def micro(shape):  # what derive_micro_batch gives on that GPU
        return derive_micro_batch(shape, "bf16", memory)

    seq = lambda shape: shape.seq_len  # noqa: E731
    steps = args.warmup + args.steps
    # A size's first compile in this process is the harness's (Inductor's cache then holds its block graph at
    # that micro-batch: eval_in_loop's and the plain loop's are the same)
    timed = "throughput" in args.sections
    out = [("imports", (), ASSUMED["imports"])]
    for shape in sizes:
        out.append(("throughput", (shape,), train_seconds(shape, (steps + ASSUMED["profile_steps"]) * 2 * micro(shape)
                                                          * seq(shape), "compile", saves=1)))
    # The two workers side by side: the slower one's time (DeepSpeed's start), each compiling its own graph
    out.append(("distributed", (smallest,), ASSUMED["torchrun"] + ASSUMED["deepspeed"]
                + train_seconds(smallest, 2 * 4 * seq(smallest), "compile", saves=1)))
    out.append(("eval_in_loop", (smallest,), train_seconds(smallest, 4 * micro(smallest) * seq(smallest),
                                                           "compile_cached" if timed else "compile", saves=2)
                + 2 * ASSUMED["eval_s"]))
    k = args.resume_steps
    out.append(("resume", (small,), 3 * train_seconds(small, 0, saves=1) + train_seconds(small, 4 * k * 8 * seq(small))))
    out.append(("bf16_vs_fp32", (small,), ASSUMED["torchrun"]  # the two workers run side by side
                + train_seconds(small, 2 * args.precision_steps * 8 * seq(small), saves=2)))
    for shape in sizes:
        out.append(("baseline", (shape,), train_seconds(shape, steps * 2 * micro(shape) * seq(shape),
                                                        "compile_cached" if timed else "compile")))
    out.append(("ladder_run", (), ASSUMED["ladder_run"]))
    return [(name, a, s) for name, a, s in out if name in args.sections]


def write_report(report: dict, path: Path) -> None:
    # Not ladder.core.files: the report must be written even when the harness's own imports fail.
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, path)


def run_section(key: str, left: float, estimate: float, fn, *fn_args) -> dict:
    """The section's record; skipped, with a line saying why, where its estimate exceeds the `left` seconds."""
    if estimate > left:
        result = {"section": key, "skipped": f"estimated {estimate:.0f} s, {max(left, 0):.0f} s of --budget-s left"}
        print(f"gpu_check: skipped {key}: {result['skipped']}", flush=True)
        return result
    fresh_device()
    start = time.perf_counter()
    try:
        result = {"section": key, **fn(*fn_args)}
    except Exception as exc:  # one broken section must not lose the others' figures
        result = {"section": key, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()[-3000:]}
    result["section_seconds"] = time.perf_counter() - start
    if torch.cuda.is_available() and key not in TORCHRUN:
        result["peak_memory_bytes"] = torch.cuda.max_memory_allocated()
    fresh_device()
    return result


def label(name: str, fn_args: tuple) -> str:
    return " ".join([name, *(str(getattr(a, "name", a)) for a in fn_args)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--tiny", action="store_true", help="tiny models instead of the olmo sizes (CPU dry run)")
    parser.add_argument("--sizes", nargs="+", default=["olmo-1B", "olmo-190M"], help="throughput's and baseline's "
                        "sizes, in that order; the smallest also runs distributed and eval_in_loop")
    parser.add_argument("--estimate-for", default="H100", choices=tuple(GPUS),
                        help="on a CPU: the GPU whose memory the estimates assume (on a GPU: the one found)")
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps per throughput loop")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation)")
    parser.add_argument("--log-every", type=int, default=2, help="steps between loss reads in throughput; divides "
                        "--warmup, since the harness's clock starts at a logged step")
    parser.add_argument("--eval-examples", type=int, default=200, help="examples timed, over the suite's tasks")
    parser.add_argument("--resume-steps", type=int, default=4, help="k: stop after step k, resume to 2k")
    parser.add_argument("--precision-steps", type=int, default=20, help="steps of the bf16-vs-fp32 runs")
    parser.add_argument("--step-timeout", type=int, default=240, help="seconds for each torchrun step check")
    parser.add_argument("--budget-s", type=float, default=420, help="seconds for the whole check: a section starts "
                        "only where its estimate fits in what is left")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS, help="which to run")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible (use --device cpu --tiny for a dry run)")

    start = time.perf_counter()
    gpu, memory = estimated_device(args)
    report = {"command": " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
              "environment": environment(args), "estimates_for": gpu, "estimates_s": {}, "sections": [],
              "finished": False}
    try:
        steps = plan(args, memory)
    except Exception as exc:  # the harness's configs (omegaconf) or sizes do not import: say so in the report
        report["error"] = f"{type(exc).__name__}: {exc}"
        write_report(report, args.out)
        print(f"gpu_check: cannot plan the sections: {report['error']}", file=sys.stderr)
        return 1
    print(f"estimated on one {gpu} (ASSUMED in {Path(__file__).name}): each section, and when it ends; "
          f"--budget-s {args.budget_s:g}:")
    end = ASSUMED["start"]
    for name, fn_args, seconds in steps:
        end += seconds
        report["estimates_s"][label(name, fn_args)] = round(seconds)
        print(f"  {label(name, fn_args):32} {seconds:6.0f} s {end:6.0f} s")
    report["estimates_s"]["total"] = round(end)
    print(f"  {'total, start-up included':32} {end:6.0f} s", flush=True)
    write_report(report, args.out)
    kernels = {}  # size -> the SDPA kernel its harness step ran, for the plain loop's hardware FLOPs
    with tempfile.TemporaryDirectory() as tmp_dir:
        for name, fn_args, estimate in steps:
            tmp = Path(tempfile.mkdtemp(dir=tmp_dir, prefix=f"{name}-"))
            fn = {"imports": imports, "throughput": throughput, "distributed": distributed,
                  "eval_in_loop": eval_in_loop, "resume": resume, "bf16_vs_fp32": precision_diff,
                  "baseline": baseline, "ladder_run": ladder_run}[name]
            if name == "baseline":
                fn_args = (*fn_args, kernels.get(fn_args[0].name))
            left = args.budget_s - (time.perf_counter() - start)
            result = run_section(name, left, estimate, fn, *fn_args, args, tmp)
            if name == "throughput":
                kernels[fn_args[0].name] = result.get("sdpa_kernel")
            report["sections"].append(result)
            report["seconds"] = time.perf_counter() - start
            write_report(report, args.out)  # before the line: a run stopped after it still holds the section
            print(json.dumps({k: v for k, v in result.items() if k not in ("traceback", "cli_tail")}), flush=True)
    report["finished"] = True
    report["seconds"] = time.perf_counter() - start
    write_report(report, args.out)
    failed = [s["section"] for s in report["sections"] if "error" in s or s.get("returncode")]
    print(f"wrote {args.out} in {report['seconds']:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
