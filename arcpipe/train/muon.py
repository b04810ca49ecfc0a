"""Muon as URM's ARC-AGI-2 recipe runs it (urm-reference §5.3), with AdamW for the other weights.

By default every 2-D parameter (the token embedding and both heads included, the reference's
``ndim == 2`` rule) gets an orthogonalised momentum step; all other parameters (biases, URM's conv
filters) get AdamW. ``matrices`` names the Muon parameters instead: the trainer passes the
network's hidden matrices for ``train.muon_params = "hidden"`` (attention, SwiGLU and the MLP
token mixer; embeddings and heads on AdamW, as Muon's authors use it). For a matrix W (A x B)
with gradient G::

    M <- 0.95 M + G                           (no dampening)
    N <- bfloat16(G + 0.95 M)                 (Nesterov; rounded, as the reference does)
    O <- msign(N)
    W <- W (1 - lr wd) - lr 0.2 sqrt(max(A, B)) O

NorMuon (Li et al. 2025, ``normalize_neurons``) rescales O per neuron (row) before the step::

    v <- 0.95 v + 0.05 mean_columns(O * O)    (A values, one per row; no bias correction)
    O <- O / (sqrt(v) + 1e-10),  then  O <- O |O_before|_F / |O|_F

so each output neuron moves at an Adam-like rate of its own while the update keeps Muon's size.

``msign`` is five Newton-Schulz steps in float32 on N / |N|_F (transposed when A > B), step i
with its own (a_i, b_i, c_i) from :data:`NS_COEFFICIENTS`: ``X <- a X + (b X X^T + c (X X^T)^2) X``.
The factor 0.2 sqrt(max(A, B)) matches AdamW's update RMS (Moonlight). The AdamW part::

    m <- lerp(m, g, 1 - b1);  v <- lerp(v, g^2, 1 - b2)        (in the parameter's dtype)
    W <- W (1 - lr wd) - lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)

``torch.optim.Muon`` (torch 2.13) cannot express this: it applies one (a, b, c) triple at every
step, iterates in bfloat16, and keeps a dampened momentum (``lerp``); only its
``adjust_lr_fn="match_rms_adamw"`` scaling is the same. Every rank computes the same update from
the same all-reduced gradient, so DDP ranks keep identical weights; no collective is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

# (a, b, c) of Newton-Schulz step i (urm-reference §5.3.4); steps past the table reuse its last row.
NS_COEFFICIENTS = (
    (7.2086, -15.5131, 9.0178),
    (3.9623, -2.5813, 0.4542),
    (3.9466, -2.5765, 0.4544),
    (3.8991, -2.5671, 0.4566),
    (3.7186, -2.5308, 0.4653),
    (3.1390, -2.3073, 0.4733),
    (2.1715, -1.5246, 0.3885),
    (1.8648, -1.2224, 0.3577),
)
NS_STEPS = 5
MOMENTUM = 0.95
RMS_MATCH = 0.2  # the update's scale per sqrt(max(rows, cols)), AdamW's typical RMS
NORM_EPS = 1e-7
NEURON_BETA = 0.95  # NorMuon: decay of each row's second moment (the authors' default)
NEURON_EPS = 1e-10


def msign(matrix: torch.Tensor, steps: int = NS_STEPS) -> torch.Tensor:
    """Newton-Schulz approximation of U V^T for ``matrix`` = U S V^T, (A, B), in float32."""
    x = matrix.float()
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.t()
    x = x / x.norm().clamp_min(NORM_EPS)
    for i in range(steps):
        a, b, c = NS_COEFFICIENTS[min(i, len(NS_COEFFICIENTS) - 1)]
        gram = x @ x.t()  # (A, A) with A <= B
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)  # b X X^T + c (X X^T)^2
        x = torch.addmm(x, poly, x, beta=a)  # a X + poly X
    return x.t() if tall else x


def normalize_neurons(update: torch.Tensor, second_moment: torch.Tensor) -> torch.Tensor:
    """NorMuon's per-row rescaling of an orthogonalised update (A, B); updates ``second_moment``
    (A, 1) in place."""
    second_moment.lerp_(update.square().mean(dim=1, keepdim=True), 1 - NEURON_BETA)
    scaled = update / (second_moment.sqrt() + NEURON_EPS)
    return scaled * (update.norm() / (scaled.norm() + NEURON_EPS))


class Muon(torch.optim.Optimizer):
    """Muon on the 2-D parameters (or on ``matrices``), AdamW on the rest (two param groups).

    Both groups share ``lr`` (the trainer sets it every step from the schedule) and
    ``weight_decay``; ``betas`` and ``eps`` are the AdamW group's. ``normalize_neurons``: NorMuon.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-4,
        weight_decay: float = 0.1,
        momentum: float = MOMENTUM,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        matrices: Iterable[torch.Tensor] | None = None,
        normalize_neurons: bool = False,
    ) -> None:
        params = list(params)
        chosen = {id(p) for p in (matrices if matrices is not None else params) if p.ndim == 2}
        groups = [
            {
                "params": [p for p in params if id(p) in chosen],
                "use_muon": True,
                "normalize_neurons": normalize_neurons,
            },
            {"params": [p for p in params if id(p) not in chosen], "use_muon": False, "step": 0},
        ]
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "betas": betas,
            "eps": eps,
        }
        super().__init__([g for g in groups if g["params"]], defaults)

    @torch.no_grad()
    def step(self, closure=None) -> None:
        for group in self.param_groups:
            if group["use_muon"]:
                self._muon_step(group)
            else:
                self._adamw_step(group)

    def _muon_step(self, group: dict) -> None:
        lr, wd, mu = group["lr"], group["weight_decay"], group["momentum"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["momentum_buffer"] = torch.zeros_like(p.grad)
            buffer = state["momentum_buffer"]
            buffer.mul_(mu).add_(p.grad)
            nesterov = p.grad.add(buffer, alpha=mu).bfloat16()
            update = msign(nesterov)
            if group["normalize_neurons"]:
                if "neuron_second_moment" not in state:
                    state["neuron_second_moment"] = update.new_zeros(update.shape[0], 1)
                update = normalize_neurons(update, state["neuron_second_moment"])
            p.mul_(1 - lr * wd)
            p.add_(update.to(p.dtype), alpha=-lr * RMS_MATCH * math.sqrt(max(p.shape)))

    def _adamw_step(self, group: dict) -> None:
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        group["step"] += 1
        t = group["step"]
        scale = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["exp_avg"] = torch.zeros_like(p.grad)
                state["exp_avg_sq"] = torch.zeros_like(p.grad)
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m.lerp_(p.grad, 1 - beta1)
            v.lerp_(p.grad.square(), 1 - beta2)
            p.mul_(1 - lr * wd)
            p.add_(m / (v.sqrt() + eps), alpha=-scale)
