"""Stablemax cross-entropy, masking, per-sample means, the halting target."""

from __future__ import annotations

import torch

from arcpipe.arc.encode import IGNORE
from arcpipe.train.losses import log_stablemax, step_loss, token_losses


def test_stablemax_is_a_distribution_and_matches_its_definition() -> None:
    x = torch.tensor([[-2.0, 0.0, 3.0]], dtype=torch.float64)
    s = torch.tensor([[1 / 3, 1.0, 4.0]], dtype=torch.float64)
    assert torch.allclose(log_stablemax(x), torch.log(s / s.sum()))
    assert torch.allclose(log_stablemax(x).exp().sum(), torch.tensor(1.0, dtype=torch.float64))


def test_token_losses_ignore_masked_cells_and_run_in_float64() -> None:
    logits = torch.randn(2, 4, 5)
    labels = torch.tensor([[1, IGNORE, 3, 0], [IGNORE] * 4])
    losses = token_losses(logits, labels, "stablemax")
    assert losses.dtype == torch.float64
    assert losses[0, 1] == 0 and (losses[1] == 0).all() and losses[0, 0] > 0
    soft = token_losses(logits, labels, "softmax")
    assert torch.allclose(soft[0, 0], -torch.log_softmax(logits[0, 0], -1)[1])


def test_step_loss_is_per_sample_mean_plus_half_bce_on_exactness() -> None:
    logits = torch.full((2, 3, 4), -5.0)
    logits[0, :, 2] = 5.0  # sample 0 predicts 2 everywhere: exactly right
    labels = torch.tensor([[2, 2, IGNORE], [1, 1, 1]])
    q_halt = torch.tensor([0.0, 0.0])
    loss = step_loss(logits, q_halt, labels, "softmax", q_loss_weight=0.5)
    assert loss.exact.tolist() == [True, False]
    per_token = token_losses(logits, labels, "softmax")
    lm = per_token[0].sum() / 2 + per_token[1].sum() / 3
    bce = 2 * torch.log(torch.tensor(2.0))  # sigmoid(0) against targets 1 and 0
    assert torch.allclose(loss.lm_loss, lm.to(loss.lm_loss.dtype))
    assert torch.allclose(loss.total, (lm + 0.5 * bce).to(loss.total.dtype), atol=1e-6)
    assert loss.token_accuracy.tolist() == [1.0, 0.0]
