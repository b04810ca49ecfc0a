"""The puzzle-embedding table and its sparse sign-SGD optimizer (reference §4.4), and the
augmentation code of task-shared tables.

One row per puzzle id (id 0 is the blank), zero at init. The table is a buffer, not a parameter:
AdamW/AdamATan2 and the EMA never see it. In training, the forward pass hands out a leaf copy of
the batch's rows; after ``backward`` the optimizer sums the gradient per distinct id (across all
ranks) and updates only those rows: ``row = row * (1 - lr * wd) - lr * sign(grad)``. Memory and
time per step depend on the batch, not on the table's size.

With ``model.puzzle_table = "task"`` the table has one row per task, shared by all the task's
augmented variants, and the variant's augmentation enters as a code added to the row
(:class:`AugmentationCode`)::

    puzzle vector = row[task] + dihedral[d] + mean over colours c of colour[c, perm(c)]

a dihedral embedding (8 x E) and a colour-map term from a table of (colour, mapped colour) pairs
(10 x 10 x E, stored as 100 x E). The code is linear in the permutation matrix, so it can tell
any two colour maps apart; it is made of ordinary parameters, zero at init like the table, trained
by the dense optimizer with the network (every batch trains it), averaged by the EMA and kept by
exports, so post-training on new tasks starts with it.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


class PuzzleEmbedding(nn.Module):
    """A table of ``num_ids`` vectors of size ``dim``; see the module docstring."""

    def __init__(self, num_ids: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("weights", torch.zeros(num_ids, dim))
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None  # (ids, leaf rows)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows for ``ids`` (B,) as (B, dim); a gradient-tracking leaf in training."""
        rows = self.weights[ids]
        if not (self.training and torch.is_grad_enabled()):
            return rows
        rows.requires_grad_(True)
        self._batch = (ids, rows)
        return rows

    def take_batch(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The last training batch's (ids, row gradients), forgetting it; None if there was none."""
        batch, self._batch = self._batch, None
        if batch is None or batch[1].grad is None:
            return None
        return batch[0], batch[1].grad


DIHEDRAL_TRANSFORMS = 8  # the symmetries of the square (arc.augment's dihedral ids)
COLOURS = 10  # ARC's colours; a colour map is a permutation of them


class AugmentationCode(nn.Module):
    """The code of a variant's augmentation, (B, E): see the module docstring."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dihedral = nn.Parameter(torch.zeros(DIHEDRAL_TRANSFORMS, dim))  # (8, E)
        self.colour = nn.Parameter(torch.zeros(COLOURS * COLOURS, dim))  # (10 x 10, E)

    def forward(self, augmentation: torch.Tensor) -> torch.Tensor:
        """``augmentation`` (B, 11): dihedral id, then the colour map (c -> column 1 + c)."""
        pairs = COLOURS * torch.arange(COLOURS, device=augmentation.device) + augmentation[:, 1:]
        return self.dihedral[augmentation[:, 0]] + self.colour[pairs].mean(1)  # (B, E)


class SparseSignSGD:
    """Sign-SGD with decoupled weight decay on the rows of the batch only (all ranks alike)."""

    def __init__(self, table: PuzzleEmbedding, lr: float, weight_decay: float) -> None:
        self.table = table
        self.lr = lr
        self.weight_decay = weight_decay

    @torch.no_grad()
    def step(self) -> None:
        batch = self.table.take_batch()
        if batch is None:
            return
        ids, grads = _gather_across_ranks(*batch)
        unique, inverse = torch.unique(ids, return_inverse=True)
        summed = torch.zeros(len(unique), grads.shape[1], dtype=grads.dtype, device=grads.device)
        summed.index_add_(0, inverse, grads)
        rows = self.table.weights[unique]
        rows.mul_(1 - self.lr * self.weight_decay).add_(summed.sign(), alpha=-self.lr)
        self.table.weights[unique] = rows

    def state_dict(self) -> dict:
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def load_state_dict(self, state: dict) -> None:
        self.lr, self.weight_decay = state["lr"], state["weight_decay"]


def _gather_across_ranks(
    ids: torch.Tensor, grads: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate every rank's (ids, gradients); a no-op in one process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return ids, grads
    world = dist.get_world_size()
    all_ids = torch.empty(world * len(ids), dtype=ids.dtype, device=ids.device)
    all_grads = torch.empty(
        world * len(grads), grads.shape[1], dtype=grads.dtype, device=grads.device
    )
    dist.all_gather_into_tensor(all_ids, ids.contiguous())
    dist.all_gather_into_tensor(all_grads, grads.contiguous())
    return all_ids, all_grads
