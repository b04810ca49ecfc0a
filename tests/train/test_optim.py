"""AdamATan2 against its formula, and the learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch

from arcpipe.config import TrainConfig
from arcpipe.train.optim import AdamATan2, lr_factor, make_optimizer


def test_adam_atan2_matches_the_reference_update_rule() -> None:
    torch.manual_seed(0)
    p = torch.randn(5, requires_grad=True)
    opt = AdamATan2([p], lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)
    ref, m, v = p.detach().clone(), torch.zeros(5), torch.zeros(5)
    for t in range(1, 4):
        g = torch.randn(5)
        p.grad = g.clone()
        opt.step()
        ref = ref * (1 - 0.01 * 0.1)
        m = 0.9 * m + 0.1 * g
        v = 0.95 * v + 0.05 * g * g
        ref = ref - 0.01 / (1 - 0.9**t) * torch.atan2(m, v.sqrt() / math.sqrt(1 - 0.95**t))
        assert torch.allclose(p.detach(), ref, atol=1e-6)


def test_adam_atan2_needs_no_epsilon_for_zero_gradients() -> None:
    p = torch.ones(3, requires_grad=True)
    opt = AdamATan2([p], lr=0.1)
    p.grad = torch.zeros(3)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3))


def test_adamw_option() -> None:
    opt = make_optimizer([torch.zeros(2, requires_grad=True)], TrainConfig(optimizer="adamw"))
    assert isinstance(opt, torch.optim.AdamW)


@pytest.mark.parametrize(
    ("step", "constant", "cosine"),
    [(1, 0.01, 0.01), (50, 0.5, 0.5), (100, 1.0, 1.0), (550, 1.0, 0.55), (1000, 1.0, 0.1)],
)
def test_warmup_then_constant_or_cosine(step: int, constant: float, cosine: float) -> None:
    ref = TrainConfig(lr_warmup_steps=100)
    cos = TrainConfig(lr_warmup_steps=100, lr_schedule="cosine", lr_min_ratio=0.1)
    assert lr_factor(step, 1000, ref) == pytest.approx(constant)
    assert lr_factor(step, 1000, cos) == pytest.approx(cosine)
