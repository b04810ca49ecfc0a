"""The ACT carry: halting at N_sup or on q_halt, exploration, halted slots take new samples."""

from __future__ import annotations

import dataclasses

import torch

from arcpipe.config import ModelConfig
from arcpipe.data.sampler import Batch
from arcpipe.model.trm import TRM
from arcpipe.train.act import (
    Exploration,
    act_step,
    draw_exploration,
    draw_reveal,
    initial_carry,
)

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


def test_one_supervision_step_trains_every_sample_once_exploration_or_not() -> None:
    generator = torch.Generator().manual_seed(0)
    explore = draw_exploration(generator, 4, 1, prob=1.0)  # the reference's 2..1 is empty
    assert explore.explore.all() and explore.min_steps.tolist() == [1, 1, 1, 1]
    model = TRM(dataclasses.replace(CFG, supervision_steps=1), 12, 9, 8)
    carry = initial_carry(model, batch(1))
    for step in range(3):
        carry, _ = act_step(model, carry, batch(step + 1), explore)
        assert carry.halted.all() and carry.batch.inputs[0, 0] == step + 1
    drawn = draw_exploration(torch.Generator().manual_seed(0), 64, 3, prob=0.5).min_steps
    assert set(drawn.tolist()) == {2, 3}  # N_sup >= 2: the reference's range, unchanged


def test_evaluation_mode_never_halts_early() -> None:
    model = TRM(CFG, 12, 9, 8)
    with torch.no_grad():
        model.q_head.bias.fill_(5.0)
    carry = initial_carry(model, batch(1))
    carry, _ = act_step(model, carry, batch(1), None)
    assert not carry.halted.any()


def test_a_denoising_sample_starts_from_its_revealed_target_cells_and_only_then() -> None:
    model = TRM(dataclasses.replace(CFG, state="single"), 12, 9, 8)  # f's h is the answer
    labels = torch.tensor([[2, 3, 4, 5, 6, 7, 8, 9, -100]]).expand(4, -1)
    inputs = torch.full((4, 9), 2)
    fresh = Batch(inputs, labels, torch.ones(4, dtype=torch.long))
    reveal = torch.zeros(4, 9, dtype=torch.bool)
    reveal[0, [1, 8]] = True  # cell 8 is unsupervised: never revealed
    reveal[1] = reveal[3] = True
    seen = []
    model.f = lambda h, injection, geometry=None: seen.append(h.clone()) or h  # the start state
    carry = initial_carry(model, fresh)
    carry.halted[3] = False  # slot 3 continues its sample: its state is not a start
    carry, _ = act_step(model, carry, fresh, no_exploration(), reveal=reveal)
    start, blank = seen[0], model.answer_init
    hint = model.embed_scale * model.embed(labels.clamp(min=0))  # (4, 9, D)
    P = model.prefix_len
    assert torch.equal(start[:, :P], blank.expand(4, P, -1))  # the prefix never holds a hint
    assert torch.equal(start[0, P + 1], blank + hint[0, 1])
    assert torch.equal(start[0, P + 8], blank)
    assert torch.equal(start[0, P + 2], blank)
    assert torch.equal(start[1, P : P + 8], blank + hint[1, :8])
    assert torch.equal(start[2, P:], blank.expand(9, -1))  # nothing drawn for it
    assert torch.equal(start[3, P:], blank.expand(9, -1))  # drawn, but not a start
    # the next step continues every sample: the draws of that step are not applied
    seen.clear()
    carry, _ = act_step(model, carry, fresh, no_exploration(), reveal=reveal)
    assert torch.equal(seen[0], start)


def test_denoising_draws_every_noise_level_and_the_blank_start() -> None:
    g = torch.Generator().manual_seed(0)
    cells = draw_reveal(g, 4000, 50, 0.5)  # (B, S)
    shown = cells.float().mean(dim=1)
    assert abs((shown == 0).float().mean().item() - 0.5) < 0.03  # the blank starts
    noisy = shown[shown > 0]
    assert abs(noisy.mean().item() - 0.5) < 0.03  # kept share uniform on [0, 1)
    assert noisy.min() < 0.1 and noisy.max() > 0.9
    assert not draw_reveal(g, 100, 50, 0.0).any()
