"""Losses and per-sample metrics of one supervision step (reference §4.6).

``lm_loss`` is the per-sample mean token cross-entropy (stablemax, in float64, by default), summed
over the batch; ``q_halt_loss`` is the BCE of the halting logit against "the current answer is
exactly right"; the total is ``lm_loss + q_loss_weight * q_halt_loss``. Labels equal to
``IGNORE`` (PAD cells) are not supervised.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from arcpipe.arc.encode import IGNORE


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log(s(x) / sum s(x)) with s(x) = x + 1 for x >= 0 and 1 / (1 - x) below."""
    s = torch.where(x < 0, 1 / (1 - x + 1e-30), x + 1)
    return torch.log(s / s.sum(dim=dim, keepdim=True))


def token_losses(logits: torch.Tensor, labels: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-token cross-entropy (B, S), zero where ``labels`` is IGNORE."""
    mask = labels != IGNORE
    safe = torch.where(mask, labels, 0)
    if kind == "stablemax":
        logp = log_stablemax(logits.to(torch.float64))
        nll = -logp.gather(-1, safe.unsqueeze(-1).long()).squeeze(-1)
    else:
        nll = F.cross_entropy(logits.float().transpose(1, 2), safe.long(), reduction="none")
    return torch.where(mask, nll, 0)


@dataclass
class StepLoss:
    """Loss terms (summed over the batch) and per-sample outcomes of one step."""

    total: torch.Tensor  # scalar, to be divided by the batch size before backward
    lm_loss: torch.Tensor  # scalar
    q_halt_loss: torch.Tensor  # scalar
    token_accuracy: torch.Tensor  # (B,) fraction of supervised cells right
    exact: torch.Tensor  # (B,) bool: every supervised cell right
    supervised: torch.Tensor  # (B,) bool: the row has supervised cells


def step_loss(
    logits: torch.Tensor,
    q_halt: torch.Tensor,
    labels: torch.Tensor,
    kind: str = "stablemax",
    q_loss_weight: float = 0.5,
) -> StepLoss:
    """Loss of one supervision step on every slot (halted or not, as the reference)."""
    mask = labels != IGNORE
    counts = mask.sum(-1)
    correct = mask & (logits.argmax(-1) == labels)
    exact = correct.sum(-1) == counts
    per_sample = token_losses(logits, labels, kind).sum(-1) / counts.clamp_min(1)
    lm_loss = per_sample.sum()
    q_halt_loss = F.binary_cross_entropy_with_logits(
        q_halt, exact.to(q_halt.dtype), reduction="sum"
    )
    return StepLoss(
        total=lm_loss + q_loss_weight * q_halt_loss,
        lm_loss=lm_loss.detach(),
        q_halt_loss=q_halt_loss.detach(),
        token_accuracy=(correct.sum(-1) / counts.clamp_min(1)).detach(),
        exact=exact.detach(),
        supervised=counts > 0,
    )
