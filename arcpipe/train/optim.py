"""Optimizers and the learning-rate schedule (reference §5.2).

AdamATan2 is the reference's update rule written in plain PyTorch (the reference needs a CUDA
extension): decoupled weight decay, Adam moments, and ``atan2(m, sqrt(v))`` in place of
``m / (sqrt(v) + eps)``, so no epsilon::

    p <- p * (1 - lr * wd)
    m <- lerp(m, g, 1 - b1);  v <- lerp(v, g^2, 1 - b2)
    p <- p - lr / (1 - b1^t) * atan2(m, sqrt(v) / sqrt(1 - b2^t))

For a parameter stored in bfloat16 (URM's conv filters) the moments are kept in bfloat16 too and
the step is computed in float32 and rounded once into the parameter, as the reference's fused
kernel does. ``train.optimizer = "muon"`` (and ``"normuon"``) is :class:`arcpipe.train.muon.Muon`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from arcpipe.config import TrainConfig
from arcpipe.train.muon import Muon


class AdamATan2(torch.optim.Optimizer):
    """Adam with atan2 in place of the epsilon-guarded division (a = b = 1, as the reference)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.95),
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None) -> None:
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                # At least float32; these are the tensors themselves for float32/64 parameters.
                wide = torch.promote_types(p.dtype, torch.float32)
                w, g = p.to(wide), p.grad.to(wide)
                m, v = state["exp_avg"].to(wide), state["exp_avg_sq"].to(wide)
                w.mul_(1 - lr * wd)
                m.lerp_(g, 1 - beta1)
                v.lerp_(g.square(), 1 - beta2)
                denom = v.sqrt() / math.sqrt(1 - beta2**t)
                w.add_(torch.atan2(m, denom), alpha=-lr / (1 - beta1**t))
                if p.dtype != wide:
                    p.copy_(w)
                    state["exp_avg"].copy_(m)
                    state["exp_avg_sq"].copy_(v)


def make_optimizer(
    params: Iterable[torch.Tensor],
    config: TrainConfig,
    hidden_matrices: Iterable[torch.Tensor] | None = None,
) -> torch.optim.Optimizer:
    """The dense optimizer named by ``config.optimizer``; its lr is set every step.

    ``hidden_matrices``: the network's hidden weight matrices, Muon's parameters when
    ``config.muon_params`` is ``"hidden"`` (else every 2-D parameter is).
    """
    betas = (config.beta1, config.beta2)
    if config.optimizer in ("muon", "normuon"):
        hidden = config.muon_params == "hidden"
        if hidden and hidden_matrices is None:
            raise ValueError('train.muon_params = "hidden" needs the hidden matrices')
        return Muon(
            params,
            lr=0.0,
            weight_decay=config.weight_decay,
            betas=betas,
            eps=config.adamw_eps,
            matrices=hidden_matrices if hidden else None,
            normalize_neurons=config.optimizer == "normuon",
        )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=0.0, betas=betas, weight_decay=config.weight_decay, eps=config.adamw_eps
        )
    return AdamATan2(params, lr=0.0, betas=betas, weight_decay=config.weight_decay)


def lr_factor(step: int, total_steps: int, config: TrainConfig) -> float:
    """Multiplier of the base learning rates at optimizer step ``step`` (1-based).

    Linear warmup over ``lr_warmup_steps``, then constant (the reference, ``lr_min_ratio`` 1) or a
    cosine from 1 down to ``lr_min_ratio`` at ``total_steps``.
    """
    if step < config.lr_warmup_steps:
        return step / config.lr_warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    span = max(1, total_steps - config.lr_warmup_steps)
    progress = min(1.0, (step - config.lr_warmup_steps) / span)
    floor = config.lr_min_ratio
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
