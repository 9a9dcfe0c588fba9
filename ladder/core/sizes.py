"""Model shapes and exact parameter counts.

A shape fixes every dimension of a GPT-style decoder. Parameter counts are closed-form in the
shape and equal `sum(p.numel())` of the transformers model that `train.model.build_model` makes
(tests/test_sizes.py checks this), so the ladder can be planned without building anything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

ARCHS = ("olmo2", "llama")
# How a ladder counts N. olmo: non-embedding + one input embedding (Bhagia et al. 2024, sec. 2);
# total: every parameter (open_lm's `params`, Gadre et al. 2024); non_embedding: Kaplan et al. 2020.
CONVENTIONS = ("olmo", "total", "non_embedding")


@dataclass(frozen=True)
class ModelShape:
    name: str
    d_model: int
    n_layers: int
    n_heads: int
    mlp_hidden: int
    vocab_size: int
    seq_len: int
    arch: str = "olmo2"

    def __post_init__(self):
        for key in ("d_model", "n_layers", "n_heads", "mlp_hidden", "vocab_size", "seq_len"):
            if getattr(self, key) <= 0:
                raise ValueError(f"model '{self.name}': {key} must be positive, got {getattr(self, key)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"model '{self.name}': d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(f"model '{self.name}': head dim {self.d_model // self.n_heads} must be even for RoPE")
        if self.arch not in ARCHS:
            raise ValueError(f"model '{self.name}': arch must be one of {ARCHS}, got '{self.arch}'")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.d_model

    @property
    def non_embedding_params(self) -> int:
        d, h = self.d_model, self.mlp_hidden
        # OLMo-2 adds QK-norm and normalises after attention and MLP: 4 gain vectors a layer; Llama has 2.
        norms = 4 * d if self.arch == "olmo2" else 2 * d
        per_layer = 4 * d * d + 3 * d * h + norms  # q,k,v,o + SwiGLU gate/up/down + norm gains
        return self.n_layers * per_layer + d  # + final norm

    @property
    def total_params(self) -> int:
        return self.non_embedding_params + 2 * self.embedding_params  # untied input embedding and head

    def params(self, convention: str = "total") -> int:
        if convention == "olmo":
            return self.non_embedding_params + self.embedding_params
        if convention == "non_embedding":
            return self.non_embedding_params
        if convention == "total":
            return self.total_params
        raise ValueError(f"unknown parameter convention '{convention}', expected one of {CONVENTIONS}")

    def flops_per_token(self) -> int:
        """Training FLOPs per token with attention (PaLM appendix B: 6N + 12·L·d·T, N = matmul params)."""
        matmul_params = self.non_embedding_params + self.embedding_params  # the head is a matmul, the input lookup is not
        return 6 * matmul_params + 12 * self.n_layers * self.d_model * self.seq_len


def mlp_hidden_for(d_model: int, arch: str) -> int:
    """SwiGLU width: 8d/3, times 1.5 for OLMo-2 (OLMo-core `hidden_size_multiplier`), rounded up."""
    multiple = 256 if d_model >= 512 else 32
    width = int(8 * d_model / 3) * (1.5 if arch == "olmo2" else 1.0)
    return multiple * math.ceil(width / multiple)


def shape_for_params(target: float, *, arch: str, vocab_size: int, seq_len: int, convention: str) -> ModelShape:
    """The shape whose N is closest to `target`, on a grid that keeps OLMo's proportions.

    Head dim 64 (16 for tiny models), aspect ratio d/L of 64 up to 1B parameters and 128 above,
    as in the OLMo ladder shapes (190M d768 l12 … 13B d5120 l40).
    """
    if target <= 0:
        raise ValueError(f"parameter count must be positive, got {target:g}")
    best = None
    for d in [d for d in range(32, 16385, 32) if d < 256 or d % 64 == 0]:
        head_dim = 64 if d >= 256 else 16
        aspect = 64 if target < 1e9 else 128
        layers = max(2, round(d / aspect))
        shape = ModelShape(
            name=format_count(target), d_model=d, n_layers=layers, n_heads=d // head_dim,
            mlp_hidden=mlp_hidden_for(d, arch), vocab_size=vocab_size, seq_len=seq_len, arch=arch,
        )
        error = abs(math.log(shape.params(convention) / target))
        if best is None or error < best[0]:
            best = (error, shape)
    error, shape = best
    if error > math.log(1.25):
        raise ValueError(f"no {arch} shape with vocab {vocab_size} has N near {format_count(target)} "
                         f"({convention} convention); the closest has {format_count(shape.params(convention))}")
    return shape


def parse_count(text: str | float | int) -> float:
    """'190M' -> 1.9e8, '1.3B' -> 1.3e9, '4T' -> 4e12, '5e7' -> 5e7."""
    if isinstance(text, (int, float)):
        return float(text)
    units = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
    text = text.strip()
    try:
        if text and text[-1].upper() in units:
            return float(text[:-1]) * units[text[-1].upper()]
        return float(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a count (expected e.g. 190M, 1.3B, 5e7)") from None


def format_count(value: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"
