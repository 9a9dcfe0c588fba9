"""The training loss straight from the last hidden states: next-token CE plus z-loss, one logsumexp for both,
without ever holding the fp32 logits of a whole micro-batch.

The model's forward is given a training path (`attach_loss`): called with `labels=`, it runs the
transformer body, then `linear_cross_entropy` over the LM head; called without, it is the unchanged
transformers forward (logits), as evaluation and generation expect. The head's weight is used inside
the model's own forward, so DDP, FSDP (the head belongs to the root unit) and ZeRO-3 (registered as an
external parameter) see it as they see any other.

On CUDA, liger-kernel's fused linear cross-entropy is used when it is installed; otherwise (and on CPU)
`_ChunkedLinearCE` computes logits `chunk_rows` rows at a time and their gradient in the same pass, so
backward is two matmuls per chunk and nothing is recomputed.
"""
from __future__ import annotations

import logging
import types
from typing import NamedTuple

import torch

log = logging.getLogger(__name__)

CHUNK_ROWS = 4096  # token positions per logits chunk: 4096 × 100k vocab × 4 B = 1.6 GB of fp32 at most


class LossOutput(NamedTuple):
    total: torch.Tensor  # CE + z·mean(log Z)², what is backpropagated
    ce: torch.Tensor  # CE alone (detached), what the run reports


def _liger():
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError:
        return None
    return liger_fused_linear_cross_entropy


def _compute_dtype(device: torch.device, dtype: torch.dtype) -> torch.dtype:
    return torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else dtype


class _ChunkedLinearCE(torch.autograd.Function):
    """mean CE and z·mean(lse²) of logits = hidden @ weightᵀ, gradients computed chunk by chunk in forward."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, z_loss: float, chunk_rows: int):
        n, dtype = hidden.size(0), _compute_dtype(hidden.device, hidden.dtype)
        h, w = hidden.to(dtype), weight.to(dtype)
        grads = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        grad_h = torch.empty_like(hidden) if grads else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if grads else None
        ce_sum = torch.zeros((), device=hidden.device, dtype=torch.float32)
        z_sum = torch.zeros_like(ce_sum)
        with torch.autocast(hidden.device.type, enabled=False):
            for s in range(0, n, chunk_rows):
                h_c, t_c = h[s:s + chunk_rows], targets[s:s + chunk_rows]
                logits = (h_c @ w.T).float()
                lse = torch.logsumexp(logits, dim=-1)
                ce_sum += (lse - logits.gather(1, t_c[:, None]).squeeze(1)).sum()
                z_sum += lse.pow(2).sum()
                if not grads:
                    continue
                # d/dlogits of (CE + z·lse²) summed over rows: softmax·(1 + 2z·lse) − onehot; the mean's 1/n here.
                g = torch.exp_(logits.sub_(lse[:, None])).mul_(((1 + 2 * z_loss * lse) / n)[:, None])
                g[torch.arange(len(t_c), device=g.device), t_c] -= 1 / n
                g = g.to(dtype)
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
        return grad_h * d_total, (grad_w * d_total).to(ctx.weight_dtype), None, None, None


@torch.compiler.disable  # a few large matmuls: nothing for the compiler to fuse, and liger brings its own kernels
def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, input_ids: torch.Tensor, z_loss: float,
                         chunk_rows: int = CHUNK_ROWS) -> LossOutput:
    """Next-token CE (mean) and the z-loss of logits = hidden @ weightᵀ, for hidden (B, T, d) of input_ids (B, T)."""
    h = hidden[:, :-1].reshape(-1, hidden.size(-1))
    targets = input_ids[:, 1:].reshape(-1)
    fused = _liger() if h.is_cuda else None
    if fused is not None:
        total, z = fused(h, weight, targets, lse_square_scale=z_loss, return_z_loss=True)
        return LossOutput(total, (total - z).detach())
    total, ce = _ChunkedLinearCE.apply(h, weight, targets, float(z_loss), chunk_rows)
    return LossOutput(total, ce)


def attach_loss(model, z_loss: float, chunk_rows: int = CHUNK_ROWS):
    """Give `model` (a transformers causal LM) the training path `model(input_ids=ids, labels=ids) -> LossOutput`.

    Only this instance's forward changes: its class, parameter names, config and checkpoints stay those of
    the plain model, and a call without `labels` returns the usual logits.
    """
    plain = model.forward

    def forward(self, input_ids=None, labels=None, **kwargs):
        if labels is None:
            return plain(input_ids=input_ids, **kwargs)
        hidden = self.model(input_ids=input_ids, **kwargs).last_hidden_state
        return linear_cross_entropy(hidden, self.lm_head.weight, labels, z_loss, chunk_rows)

    model.forward = types.MethodType(forward, model)
    return model
