"""AdamW and the learning-rate schedule that follows a run's LR curve (ladder.core.lr). The loss is train/loss.py's."""
from __future__ import annotations

import torch

from ladder.core.lr import Curve
from ladder.core.recipes import Hyperparams


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay the weight matrices only: not norm gains (1-D) and, as in OLMo 2, not the input embedding."""
    embedding = model.get_input_embeddings().weight
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or p is embedding else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, hp: Hyperparams) -> torch.optim.AdamW:
    # fused: one kernel for every parameter (CUDA and CPU), and the only AdamW that can skip a step
    # on the device (`skip_unless`).
    return torch.optim.AdamW(param_groups(model, hp.weight_decay), lr=hp.lr, betas=(hp.beta1, hp.beta2),
                             eps=1e-8, fused=True)


def skip_unless(optimizer: torch.optim.Optimizer, ok: torch.Tensor) -> None:
    """Make the fused AdamW's next step a no-op where `ok` (a bool tensor on the parameters' device) is false.

    The fused kernel reads `found_inf` on the device (the flag torch's GradScaler uses) and leaves weights,
    moments and step count untouched when it is 1, so deciding costs the host no wait for the device.
    """
    optimizer.found_inf = (~ok).float()


def make_scheduler(optimizer: torch.optim.Optimizer, curve: Curve) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, curve.factor)

