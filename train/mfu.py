"""The MFU a size is expected to train at, for plans: a share of a wide model's (launcher.expected_mfu), by the
model's width and sequence length.

ASSUMED, NOT MEASURED: no GPU has been lent to this work. The table encodes what is known of small models on
H100s: narrow matmuls (d_model of a few hundred) are memory-bound, and the per-token elementwise work (norms,
RoPE, SwiGLU, the loss's softmax over the vocabulary) grows as d against the matmuls' d², so MFU falls with
width, to roughly 10-20 % at 10-20M parameters and 25-30 % at 110M where a 1B model reaches 35-40 % (OLMo-core,
torchtitan); attention, whose share of a token's FLOPs grows with T / d, runs below the matmuls' rate at a head
dimension of 64, so longer sequences cost a little. `scripts/gpu_check.sh` measures olmo-190M and olmo-1B
(`throughput`: `mfu_model`); those figures, and a node ladder's own metrics.jsonl (`mfu`), are to replace it.
"""
from __future__ import annotations

import bisect
import math

from ladder.core.sizes import ModelShape

# Sequence lengths of the columns, then per d_model the share of a wide model's MFU at each.
SEQ_LENS = (1024, 2048, 4096)
WIDTH_SHARE = {
    128: (0.28, 0.25, 0.22),
    256: (0.43, 0.40, 0.36),
    512: (0.68, 0.65, 0.60),
    768: (0.82, 0.80, 0.76),
    1024: (0.92, 0.90, 0.87),
    2048: (1.00, 1.00, 0.97),
}


def _interpolate(points: tuple, values: tuple, x: float) -> float:
    """Linear in log2(x) between the neighbouring points, held flat beyond the ends."""
    i = bisect.bisect_left(points, x)
    if i == 0 or i == len(points):
        return values[min(i, len(points) - 1)]
    lo, hi = math.log2(points[i - 1]), math.log2(points[i])
    t = (math.log2(x) - lo) / (hi - lo)
    return values[i - 1] + t * (values[i] - values[i - 1])


def mfu_share(d_model: int, seq_len: int) -> float:
    """The share of a wide model's MFU at this width and sequence length (the table, interpolated)."""
    widths = tuple(WIDTH_SHARE)
    by_seq = tuple(_interpolate(widths, tuple(WIDTH_SHARE[w][j] for w in widths), d_model)
                   for j in range(len(SEQ_LENS)))
    return _interpolate(SEQ_LENS, by_seq, seq_len)


def expected_mfu(shape: ModelShape, wide_mfu: float) -> float:
    """The MFU `shape` is expected to train at where a wide model trains at `wide_mfu`."""
    return wide_mfu * mfu_share(shape.d_model, shape.seq_len)
