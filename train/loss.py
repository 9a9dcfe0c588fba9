"""The training loss straight from the last hidden states: next-token CE plus z-loss, one logsumexp for both,
without ever holding the fp32 logits of a whole micro-batch.

The model's forward is given a training path (`attach_loss`): called with `labels=`, it runs the
transformer body (no KV cache), then `linear_cross_entropy` over the LM head; called without, it is the
unchanged transformers forward (logits), as evaluation and generation expect. The head's weight is used
inside the model's own forward, so DDP, FSDP (the head belongs to the root unit) and ZeRO-3 (registered as
an external parameter) see it as they see any other.

`_ChunkedLinearCE` computes logits `chunk_rows` rows at a time and their gradient in the same pass, so
backward is two matmuls per chunk and nothing is recomputed. What happens to a chunk's logits between its
matmuls (logsumexp, the picked logit, softmax, the z-loss factor) is one function, `_chunk_loss_and_grad`,
that `train.compile=true` compiles into a fused kernel or two instead of ~8 passes over the fp32 chunk.
`train.loss=liger` uses liger-kernel's fused linear cross-entropy on CUDA instead; it reads a token count
back to the host in its forward and compares a tensor on the host in its backward, so it is not the default.
"""
from __future__ import annotations

import functools
import types
from typing import NamedTuple

import torch

CHUNK_ROWS = 4096  # token positions per logits chunk: 4096 × 100k vocab × 4 B = 1.6 GB of fp32 at most


class LossOutput(NamedTuple):
    total: torch.Tensor  # CE + z·mean(log Z)², what is backpropagated
    ce: torch.Tensor  # CE alone (detached), what the run reports


def _compute_dtype(device: torch.device, dtype: torch.dtype) -> torch.dtype:
    return torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else dtype


def _chunk_loss_and_grad(logits: torch.Tensor, targets: torch.Tensor, z_loss: float, inv_n: float, grads: bool):
    """(Σ CE, Σ lse², d(mean CE + z·mean lse²)/d logits) of one chunk's logits (rows, V), in fp32; the
    gradient in the logits' own dtype, or None without `grads`."""
    logits32 = logits.float()  # the chunk's own logits (a copy where they are bf16): overwritten below
    lse = torch.logsumexp(logits32, dim=-1)
    ce_sum = (lse - logits32.gather(1, targets[:, None]).squeeze(1)).sum()
    z_sum = lse.pow(2).sum()
    if not grads:
        return ce_sum, z_sum, None
    # d/dlogits of (CE + z·lse²) summed over rows: softmax·(1 + 2z·lse) − onehot; the mean's 1/n here.
    # In place, so eagerly the chunk needs no second fp32 buffer.
    g = logits32.sub_(lse[:, None]).exp_().mul_(((1 + 2 * z_loss * lse) * inv_n)[:, None])
    g.scatter_add_(1, targets[:, None], torch.full_like(lse[:, None], -inv_n))
    return ce_sum, z_sum, g.to(logits.dtype)


@functools.cache
def _compiled_chunk_loss_and_grad():
    return torch.compile(_chunk_loss_and_grad)


class _ChunkedLinearCE(torch.autograd.Function):
    """mean CE and z·mean(lse²) of logits = hidden @ weightᵀ, gradients computed chunk by chunk in forward."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, z_loss: float, chunk_rows: int, compiled: bool):
        n, dtype = hidden.size(0), _compute_dtype(hidden.device, hidden.dtype)
        h, w = hidden.to(dtype), weight.to(dtype)
        grads = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        grad_h = torch.empty_like(hidden) if grads else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if grads else None
        ce_sum = torch.zeros((), device=hidden.device, dtype=torch.float32)
        z_sum = torch.zeros_like(ce_sum)
        chunk = _compiled_chunk_loss_and_grad() if compiled else _chunk_loss_and_grad
        with torch.autocast(hidden.device.type, enabled=False):
            for s in range(0, n, chunk_rows):
                h_c = h[s:s + chunk_rows]
                ce_c, z_c, g = chunk(h_c @ w.T, targets[s:s + chunk_rows], z_loss, 1 / n, grads)
                ce_sum += ce_c
                z_sum += z_c
                if not grads:
                    continue
                grad_h[s:s + chunk_rows] = g @ w
                if dtype == torch.float32:
                    grad_w.addmm_(g.T, h_c)
                else:  # bf16 products, summed over chunks in fp32
                    grad_w += g.T @ h_c
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        ce = ce_sum / n
        ctx.mark_non_differentiable(ce)
        return ce + z_loss * z_sum / n, ce

    @staticmethod
    def backward(ctx, d_total, _d_ce):
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * d_total, (grad_w * d_total).to(ctx.weight_dtype), None, None, None, None


def _liger(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, z_loss: float) -> LossOutput:
    from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

    out = liger_fused_linear_cross_entropy(h, weight, targets, lse_square_scale=z_loss, return_z_loss=True)
    # liger-kernel < 0.6.4 returns (loss, z_loss); later releases a CrossEntropyOutput.
    total, z = (out.loss, out.z_loss) if hasattr(out, "loss") else out
    return LossOutput(total, (total - z).detach())


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, input_ids: torch.Tensor, z_loss: float,
                         chunk_rows: int = CHUNK_ROWS, compiled: bool = False, liger: bool = False) -> LossOutput:
    """Next-token CE (mean) and the z-loss of logits = hidden @ weightᵀ, for hidden (B, T, d) of input_ids (B, T).

    `liger` takes liger-kernel's fused kernel where the hidden states are on a GPU; `compiled` the compiled
    form of the chunked loss's elementwise part."""
    h = hidden[:, :-1].reshape(-1, hidden.size(-1))
    targets = input_ids[:, 1:].reshape(-1)
    if liger and h.is_cuda:
        return _liger(h, weight, targets, z_loss)
    return LossOutput(*_ChunkedLinearCE.apply(h, weight, targets, float(z_loss), chunk_rows, compiled))


def attach_loss(model, z_loss: float, chunk_rows: int = CHUNK_ROWS, compiled: bool = False, liger: bool = False):
    """Give `model` (a transformers causal LM) the training path `model(input_ids=ids, labels=ids) -> LossOutput`.

    Only this instance's forward changes: its class, parameter names, config and checkpoints stay those of
    the plain model, and a call without `labels` returns the usual logits. The training path runs without
    a KV cache: Olmo 2's config asks for one by default, a new cache object per forward, and each layer's
    cache index would make the compiled blocks recompile per layer.
    """
    plain = model.forward

    def forward(self, input_ids=None, labels=None, **kwargs):
        if labels is None:
            return plain(input_ids=input_ids, **kwargs)
        hidden = self.model(input_ids=input_ids, use_cache=False, **kwargs).last_hidden_state
        return linear_cross_entropy(hidden, self.lm_head.weight, labels, z_loss, chunk_rows, compiled, liger)

    model.forward = types.MethodType(forward, model)
    return model
