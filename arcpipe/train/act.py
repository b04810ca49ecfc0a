"""Deep supervision with adaptive halting: the carry that spans optimizer steps (reference §4.5).

Each training step runs one supervision step on every slot of the batch. A slot keeps its sample
(and its y, z) until it halts: at ``N_sup`` steps, or earlier when ``q_halt > 0``, except that with
probability ``halt_exploration_prob`` a sample must first reach a random minimum of 2..N_sup
steps. Halted slots take the row at the same index of the next batch, with fresh y and z; the
other rows of that batch are discarded, as in the reference. Evaluation always runs N_sup steps.

Denoising (``train.denoise_prob`` > 0; after Denoising Recursion Models, arXiv 2604.18839, not in
the reference): a training sample may start from its target with a random share of its cells
revealed in the answer state, and is trained to reach the whole target over its supervision
steps from there; prediction always starts blank (every cell "noise"), the reference's start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from arcpipe.data.sampler import Batch
from arcpipe.model.trm import TRM, RecursionState, StepOutput


@dataclass
class Carry:
    """Per-slot state that persists across training steps (and checkpoints)."""

    answer: torch.Tensor  # y (or URM's single state h), (B, L, D)
    latent: torch.Tensor | None  # z, (B, L, D); None with state = "single"
    steps: torch.Tensor  # (B,) int32 supervision steps taken by the slot's sample
    halted: torch.Tensor  # (B,) bool: the slot takes a new sample at the next step
    batch: Batch  # the slot's current sample

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The tensors to save, named ``prefix + field`` (one carry per bucket of boards)."""
        state = {
            "answer": self.answer,
            "latent": self.latent,
            "steps": self.steps,
            "halted": self.halted,
            "inputs": self.batch.inputs,
            "labels": self.batch.labels,
            "puzzle_ids": self.batch.puzzle_ids,
            "positions": self.batch.positions,
            "mask": self.batch.mask,
            "augmentation": self.batch.augmentation,
        }
        return {prefix + k: v for k, v in state.items() if v is not None}

    @staticmethod
    def from_state_dict(
        state: dict[str, torch.Tensor], device: torch.device, prefix: str = ""
    ) -> Carry:
        t = {k[len(prefix) :]: v.to(device) for k, v in state.items() if k.startswith(prefix)}
        batch = Batch(
            t["inputs"],
            t["labels"],
            t["puzzle_ids"],
            t.get("positions"),
            t.get("mask"),
            t.get("augmentation"),
        )
        return Carry(t["answer"], t.get("latent"), t["steps"], t["halted"], batch)


def initial_carry(model: TRM, batch: Batch) -> Carry:
    """Every slot halted, so the first step takes the first batch whole."""
    size, board_len = batch.inputs.shape
    state = model.initial_state(size, batch.inputs.device, board_len)
    steps = torch.zeros(size, dtype=torch.int32, device=batch.inputs.device)
    halted = torch.ones(size, dtype=torch.bool, device=batch.inputs.device)
    return Carry(state.answer, state.latent, steps, halted, batch)


@dataclass
class Exploration:
    """Per-slot draws of the exploration rule for one step, (B,) each."""

    explore: torch.Tensor  # bool: this slot gets a random minimum step count
    min_steps: torch.Tensor  # int in 2..N_sup (1 where N_sup = 1: nothing to explore)


def draw_exploration(
    generator: torch.Generator, global_batch: int, max_steps: int, prob: float
) -> Exploration:
    """Draw for the whole global batch on CPU (every rank draws alike and takes its slice)."""
    explore = torch.rand(global_batch, generator=generator) < prob
    low = min(2, max_steps)  # the reference's 2..N_sup, which is empty for N_sup = 1
    min_steps = torch.randint(low, max_steps + 1, (global_batch,), generator=generator)
    return Exploration(explore, min_steps)


def draw_reveal(
    generator: torch.Generator, global_batch: int, board_len: int, prob: float
) -> torch.Tensor:
    """Denoising's draws for the whole global batch on CPU, (B, S) bool: the target cells each
    slot's sample would start from, were it to start at this step. With probability ``prob`` a
    slot's start is a corrupted target: each cell kept with a probability drawn uniformly from
    [0, 1) for the slot (so every noise level is trained); otherwise no cell (the blank start)."""
    noisy = torch.rand(global_batch, generator=generator) < prob
    kept = torch.rand(global_batch, generator=generator)
    cells = torch.rand(global_batch, board_len, generator=generator) < kept[:, None]
    return cells & noisy[:, None]


def act_step(
    model: TRM,
    carry: Carry,
    batch: Batch,
    exploration: Exploration | None,
    forward: Callable[..., StepOutput] | None = None,
    reveal: torch.Tensor | None = None,
) -> tuple[Carry, StepOutput]:
    """One supervision step on every slot; halted slots first take ``batch``'s rows.

    ``exploration`` is None in evaluation: then nothing halts before N_sup steps. ``forward`` is
    the module to call (a DDP wrapper of ``model``); ``model`` itself by default. ``reveal``
    (B, S) bool, training with denoising only: the target cells a sample that starts at this
    step begins from (:meth:`TRM.reveal`); slots continuing a sample ignore it.
    """
    state = model.reset(RecursionState(carry.answer, carry.latent), carry.halted)
    steps = torch.where(carry.halted, 0, carry.steps)
    current = carry.batch.where(carry.halted, batch)
    if reveal is not None:
        state = model.reveal(state, current.labels, reveal & carry.halted[:, None])
    out = (model if forward is None else forward)(
        state,
        current.inputs,
        current.puzzle_ids,
        current.positions,
        current.mask,
        current.augmentation,
    )
    max_steps = model.config.supervision_steps
    with torch.no_grad():
        steps = steps + 1
        halted = steps >= max_steps
        if exploration is not None and max_steps > 1:
            halted = halted | (out.q_halt > 0)
            explore = exploration.explore.to(steps.device)
            minimum = torch.where(explore, exploration.min_steps.to(steps.device), 0)
            halted = halted & (steps >= minimum)
    new = Carry(out.state.answer, out.state.latent, steps.to(torch.int32), halted, current)
    return new, out
