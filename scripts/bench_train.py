"""Training throughput: the harness's loop against a plain PyTorch loop on the same model and data.

    python scripts/bench_train.py                                    # ~5M-parameter rung, this CPU, fp32
    python scripts/bench_train.py --size olmo-190M --device cuda --precision bf16
    python scripts/bench_train.py --size olmo-1B --device cuda --precision bf16 --batch 16 --micro-batch 4

Both loops read the same sequences from packed memmap shards (written first, random tokens, in the
data stage's format; `--data synthetic` keeps them in memory instead) and run the same model, AdamW,
schedule and z-loss. The plain loop is the textbook one: read the batch, forward (no KV cache), the loss,
backward, clip, step, the loss to the host every `--log-every` steps. Its loss is the harness's chunked one
by default, so it holds the same micro-batch and the ratio of their tokens/s is what the harness's loop
costs or saves (accelerate, its reader thread, logging, records); `--plain-loss full` takes the textbook
loss from the full fp32 logits instead (the loss's own share, at a micro-batch that leaves it room).
Achieved FLOP/s (PaLM-style 6N + attention per token) is reported against this machine's measured matmul
peak in the run's precision, and on GPUs against the datasheet peak (MFU). Runs alternate, and the median
of the repeats is reported.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ladder.core.configs import load_model  # noqa: E402
from ladder.core.lr import Cosine  # noqa: E402
from ladder.core.recipes import Hyperparams  # noqa: E402
from ladder.core.schedules import Run  # noqa: E402
from ladder.core.sizes import ModelShape, format_count, parse_count, shape_for_params  # noqa: E402
from train.config import TrainConfig, WandbConfig  # noqa: E402
from train.data.pack import write_arrays  # noqa: E402
from ladder.core.shards import TokenSequences  # noqa: E402
from train.loop import split_batch, train_run  # noqa: E402
from train.loss import attach_loss  # noqa: E402
from train.metrics import peak_flops  # noqa: E402
from train.model import build_model, compile_blocks  # noqa: E402
from train.optim import make_optimizer, make_scheduler  # noqa: E402


def training_loss(logits: torch.Tensor, input_ids: torch.Tensor, z_loss: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The textbook loss from the full logits: next-token cross-entropy plus the z-loss z·log²Z (PaLM), both in
    fp32; (total, CE). What train/loss.py computes chunk by chunk (its tests compare the two)."""
    logits = logits[:, :-1].float()
    targets = input_ids[:, 1:]
    log_z = torch.logsumexp(logits, dim=-1)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    total = ce + z_loss * log_z.pow(2).mean() if z_loss else ce
    return total, ce


class RandomSequences:
    """Uniform random token ids in memory, with train.data.TokenSequences' interface: no I/O in the timing."""

    def __init__(self, count: int, seq_len: int, vocab_size: int):
        self.ids = torch.randint(0, vocab_size, (count, seq_len), generator=torch.Generator().manual_seed(0))
        self.seq_len = seq_len

    def __len__(self) -> int:
        return len(self.ids)

    def batches(self, batch_size: int, start: int = 0, rows=None, pin_memory: bool = False):
        lo, hi = rows or (0, batch_size)
        for i in range(start, len(self) - batch_size + 1, batch_size):
            batch = self.ids[i + lo:i + hi]
            yield batch.pin_memory() if pin_memory else batch


def packed_shards(directory: Path, count: int, seq_len: int, vocab_size: int, seed: int = 0) -> TokenSequences:
    """`count` sequences of random tokens written as the data stage writes them (four files), read back
    in a seeded shuffled order as a rung reads its data."""
    ids = RandomSequences(count, seq_len, vocab_size).ids.numpy().reshape(-1)
    write_arrays(directory, list(np.array_split(ids, 4)), seq_len, "uint16" if vocab_size <= 2**16 else "uint32")
    return TokenSequences(directory, tokens=count * seq_len, seed=seed)


def shape_from(args) -> ModelShape:
    try:
        count = parse_count(args.size)
    except ValueError:
        return ModelShape(**load_model(args.size))
    try:
        return shape_for_params(count, arch=args.arch, vocab_size=args.vocab_size, seq_len=args.seq_len,
                                convention="total")
    except ValueError as exc:  # no shape near that count: one line, not a traceback
        raise SystemExit(f"bench_train.py: --size {args.size}: {exc}") from None


def timed_from(warmup: int, log_every: int, steps: int) -> int:
    """The step both loops start their clocks after: the first logged one at or after `warmup`, since
    the harness's tokens/s is known only over the intervals between its metrics records."""
    start = -(-warmup // log_every) * log_every
    if start >= steps:
        raise SystemExit(f"--warmup {warmup} --log-every {log_every}: no logged step before the last ({steps}) "
                         f"to start timing at; give more --steps or a --log-every that divides --warmup")
    return start


def plain_loop(rung: Run, data, cfg: TrainConfig, device: torch.device, warmup: int, loss: str = "chunked") -> float:
    """Tokens/s of the textbook loop: read, forward, backward, clip, AdamW, schedule, loss to the host.

    `loss`: "chunked" computes the harness's own loss (train.loss) from the last hidden states, so the loop
    holds the micro-batch the harness holds and the two differ by the loop alone; "full" the textbook loss
    from the full fp32 logits, which at 100k-token vocabularies needs tens of GB more at a GPU's micro-batch.
    Both run without a KV cache, as training does: Olmo 2's config asks for one, and each layer's cache
    index recompiles the compiled blocks per layer."""
    hp = rung.hp
    warmup = timed_from(warmup, cfg.log_every, hp.steps)
    _, micro, accumulation = split_batch(hp.batch_size, 1, cfg.micro_batch_size)
    model = build_model(rung.shape, seed=cfg.seed).to(device)
    if loss == "chunked":
        attach_loss(model, hp.z_loss, compiled=cfg.compile)
    if cfg.compile:  # as the harness compiles: per block (whole-model compile loses SDPA's flash path, docs/train.md)
        compile_blocks(model, key=(rung.shape, micro))
    optimizer = make_optimizer(model, hp)
    scheduler = make_scheduler(optimizer, rung.curve)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    start = None
    for step, batch in enumerate(data.batches(hp.batch_size)):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        ce_sum = 0.0
        for k in range(accumulation):
            ids = batch[k * micro:(k + 1) * micro].to(device, non_blocking=True)
            with autocast:
                out = model(input_ids=ids, labels=ids) if loss == "chunked" else model(input_ids=ids, use_cache=False)
            total, ce = out if loss == "chunked" else training_loss(out.logits, ids, hp.z_loss)
            (total / accumulation).backward()
            ce_sum += ce.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % cfg.log_every == 0:
            float(ce_sum)  # logged, as the harness logs its loss
    _sync(device)
    return (hp.steps - warmup) * hp.batch_size * rung.shape.seq_len / (time.perf_counter() - start)


def harness_loop(rung: Run, data, cfg: TrainConfig, warmup: int, eval_hook=None) -> float:
    """Tokens/s of train_run over the steps after `warmup`, from its own metrics.jsonl; `eval_hook` is
    train_run's (scripts/gpu_check.py times the checkpoint with it)."""
    warmup = timed_from(warmup, cfg.log_every, rung.hp.steps)
    with tempfile.TemporaryDirectory() as run_dir:
        result = train_run(rung, data, Path(run_dir), cfg, eval_hook=eval_hook)
        assert result.state == "done", result
        rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if r["step"] > warmup]
    steps = [b["step"] - a["step"] for a, b in zip([{"step": warmup}] + timed, timed)]
    # All tokens over all time: each record's rate covers the steps since the one before.
    return sum(steps) / sum(n / r["tokens_per_s"] for n, r in zip(steps, timed))


def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """Measured FLOP/s of large square matmuls: the achievable ceiling for this run's precision."""
    n = 8192 if device.type == "cuda" else 2048
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    _sync(device)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2.0:
        a @ b
        reps += 1
        _sync(device) if reps % 8 == 0 else None
    _sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="5M", help="a configs/model name (olmo-190M) or a total parameter count (5M)")
    parser.add_argument("--arch", default="olmo2", help="architecture for a size given as a count")
    parser.add_argument("--vocab-size", type=int, default=2048, help="vocabulary for a size given as a count")
    parser.add_argument("--seq-len", type=int, default=256, help="sequence length for a size given as a count")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--batch", type=int, default=8, help="global batch in sequences")
    parser.add_argument("--micro-batch", type=int, default=None, help="sequences per forward pass (default: the batch)")
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each loop; the median counts")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model in both loops")
    parser.add_argument("--data", default="shards", choices=("shards", "synthetic"),
                        help="packed memmap shards on disk (default) or random tokens in memory")
    parser.add_argument("--log-every", type=int, default=1, help="steps between loss reads in both loops")
    parser.add_argument("--plain-loss", default="chunked", choices=("chunked", "full"),
                        help="the plain loop's loss: the harness's chunked one, or the textbook full-logits one")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads on the CPU: 1 (as docs/train.md's figures were measured, "
                             "OMP_NUM_THREADS=1: on a shared machine more threads wait on each other) or 0 for "
                             "torch's default, every core")
    parser.add_argument("--json", type=Path, help="also append the figures to this JSONL file")
    parser.add_argument("--checkpoint-half-way", action="store_true",
                        help="the harness also checkpoints half-way, and prints each checkpoint state's write time "
                             "and the training loop's share of it (train.checkpoint)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():  # before the shards are written: one line
        raise SystemExit(f"bench_train.py: --device cuda: torch {torch.__version__} sees no CUDA device here; run it "
                         "on a GPU machine, or without --device cuda")

    shape = shape_from(args)
    steps = args.warmup + args.steps
    hp = Hyperparams(batch_size=args.batch, lr=1e-3, warmup_steps=1, steps=steps, final_lr=1e-4, weight_decay=0.1,
                     z_loss=1e-5)
    rung = Run("bench", shape, "random", shape.total_params, hp, Cosine.of(hp))
    cfg = TrainConfig(device=args.device, precision=args.precision, micro_batch_size=args.micro_batch or args.batch,
                      checkpoint_fractions=[0.5, 1.0] if args.checkpoint_half_way else [1.0], compile=args.compile,
                      progress=False, log_every=args.log_every, wandb=WandbConfig(mode="disabled"))
    if args.checkpoint_half_way:
        logging.basicConfig(format="%(name)s: %(message)s")
        logging.getLogger("train.checkpoint").setLevel(logging.INFO)
    device = torch.device(args.device)
    if device.type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32

    plain, harness = [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = (packed_shards(Path(tmp) / "train", steps * args.batch, shape.seq_len, shape.vocab_size)
                if args.data == "shards" else RandomSequences(steps * args.batch, shape.seq_len, shape.vocab_size))
        for _ in range(args.repeats):
            plain.append(plain_loop(rung, data, cfg, device, args.warmup, args.plain_loss))
            harness.append(harness_loop(rung, data, cfg, args.warmup))
    peak = matmul_peak(device, dtype)
    tokens_per_s, plain_tokens_per_s = statistics.median(harness), statistics.median(plain)
    flops = tokens_per_s * shape.flops_per_token()
    datasheet = peak_flops(cfg)
    figures = {
        "command": " ".join(["python", "scripts/bench_train.py", *(argv if argv is not None else sys.argv[1:])]),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else
        f"cpu ({torch.get_num_threads()} thread{'s' * (torch.get_num_threads() != 1)})",
        "size": shape.name, "total_params": shape.total_params, "shape": f"d{shape.d_model} l{shape.n_layers} "
        f"h{shape.n_heads} mlp{shape.mlp_hidden} V{shape.vocab_size} T{shape.seq_len}",
        "precision": args.precision, "plain_loss": args.plain_loss, "batch": args.batch,
        "micro_batch": cfg.micro_batch_size, "data": args.data,
        "harness_tokens_per_s": tokens_per_s, "plain_tokens_per_s": plain_tokens_per_s,
        "overhead_ratio": tokens_per_s / plain_tokens_per_s,
        "harness_runs": harness, "plain_runs": plain,
        "achieved_flops": flops, "measured_matmul_peak": peak, "fraction_of_measured_peak": flops / peak,
        "mfu": flops / datasheet if datasheet else None,
    }
    print(f"{figures['size']} ({format_count(shape.total_params)} params, {figures['shape']}) on {figures['device']}, "
          f"{args.precision}, batch {args.batch}×{shape.seq_len}, data: {args.data}")
    print(f"  harness {tokens_per_s:,.0f} tok/s, plain PyTorch {plain_tokens_per_s:,.0f} tok/s: "
          f"ratio {figures['overhead_ratio']:.3f}")
    print(f"  {flops / 1e9:,.1f} GFLOP/s achieved, {peak / 1e9:,.1f} GFLOP/s measured matmul peak: "
          f"{figures['fraction_of_measured_peak']:.1%}" + (f"; MFU {figures['mfu']:.1%}" if datasheet else ""))
    print(json.dumps(figures))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(figures) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
