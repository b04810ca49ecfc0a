"""The ACT carry: halting at N_sup or on q_halt, exploration, halted slots take new samples."""

from __future__ import annotations

import torch

from arcpipe.config import ModelConfig
from arcpipe.data.sampler import Batch
from arcpipe.model.trm import TRM
from arcpipe.train.act import Exploration, act_step, initial_carry

CFG = ModelConfig(
    hidden_size=16,
    num_heads=2,
    cycles=1,
    latent_steps=1,
    supervision_steps=3,
    puzzle_emb_dim=16,
    puzzle_emb_len=1,
)


def batch(value: int, size: int = 4) -> Batch:
    return Batch(
        torch.full((size, 9), value), torch.full((size, 9), value), torch.full((size,), value)
    )


def no_exploration(size: int = 4) -> Exploration:
    return Exploration(torch.zeros(size, dtype=torch.bool), torch.full((size,), 2))


def test_slots_run_n_sup_steps_then_take_new_samples() -> None:
    model = TRM(CFG, 12, 9, 8)
    carry = initial_carry(model, batch(1))
    seen = []
    for step in range(7):
        carry, _ = act_step(model, carry, batch(step + 1), no_exploration())
        seen.append(int(carry.batch.inputs[0, 0]))
        assert carry.halted.all() == (carry.steps[0] == 3).item()
    # q_halt starts at -5, so nothing halts early: samples change every 3 steps
    assert seen == [1, 1, 1, 4, 4, 4, 7]


def test_positive_q_halt_halts_unless_exploration_demands_more_steps() -> None:
    model = TRM(CFG, 12, 9, 8)
    with torch.no_grad():
        model.q_head.bias.fill_(5.0)
    carry = initial_carry(model, batch(1))
    explore = Exploration(torch.tensor([False, True, False, True]), torch.tensor([2, 2, 3, 3]))
    carry, _ = act_step(model, carry, batch(1), explore)
    assert carry.halted.tolist() == [True, False, True, False]
    carry, _ = act_step(model, carry, batch(2), explore)
    assert carry.halted.tolist() == [True, True, True, False]
    assert carry.batch.inputs[:, 0].tolist() == [2, 1, 2, 1]


def test_evaluation_mode_never_halts_early() -> None:
    model = TRM(CFG, 12, 9, 8)
    with torch.no_grad():
        model.q_head.bias.fill_(5.0)
    carry = initial_carry(model, batch(1))
    carry, _ = act_step(model, carry, batch(1), None)
    assert not carry.halted.any()
