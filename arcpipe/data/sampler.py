"""Training batches by the reference's epoch rule (reference §3), views encoded on the fly.

An epoch visits every group (task) once in a random order; for each group it picks one random
variant and appends all of that variant's examples, in random order, until the global batch is
full. The variant that overflows a batch is cut and its remaining examples are dropped; the next
batch starts with the next group, continuing into the next epoch (the reference restarts its
stream every ``eval_interval`` epochs and drops the incomplete batch there).

Every rank computes the same global batch from ``(seed, epoch)`` and keeps its own slice, so there
is nothing to synchronise. The position (epoch, next group) is the whole sampler state.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from arcpipe.arc.encode import PAD
from arcpipe.data.dataset import Dataset
from arcpipe.train.losses import IGNORE


@dataclass
class Batch:
    """Model inputs and targets for B slots."""

    inputs: torch.Tensor  # (B, S) token ids
    labels: torch.Tensor  # (B, S) token ids, IGNORE where unsupervised
    puzzle_ids: torch.Tensor  # (B,)

    def where(self, mask: torch.Tensor, other: Batch) -> Batch:
        """Rows from ``other`` where ``mask`` (B,) is set, from ``self`` elsewhere."""

        def pick(mine: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor:
            return torch.where(mask.view(-1, *[1] * (mine.dim() - 1)), theirs, mine)

        return Batch(
            pick(self.inputs, other.inputs),
            pick(self.labels, other.labels),
            pick(self.puzzle_ids, other.puzzle_ids),
        )

    def to(self, device: torch.device) -> Batch:
        return Batch(*(getattr(self, f.name).to(device, non_blocking=True) for f in fields(self)))


@dataclass
class _EpochPlan:
    order: np.ndarray  # (G,) groups in visiting order
    variant: np.ndarray  # (G,) chosen variant (index into the split's variant list) per group
    shuffle_keys: np.ndarray  # (G, max examples per variant) random keys ordering the examples


class TrainSampler:
    """Yields the rows of each global batch; see the module docstring."""

    def __init__(self, dataset: Dataset, split: str, global_batch: int, seed: int) -> None:
        self.dataset = dataset
        self.split = split
        self.global_batch = global_batch
        self.seed = seed
        variants = np.asarray(dataset.examples(split)[:, 0])
        # The split's variants, each with its contiguous run of example rows.
        self.variant_ids, self.variant_start, self.variant_count = np.unique(
            variants, return_index=True, return_counts=True
        )
        tasks = np.asarray(dataset.arrays["variants"][self.variant_ids, 0])
        _, self.group_start, self.group_size = np.unique(
            tasks, return_index=True, return_counts=True
        )
        self.max_examples = int(self.variant_count.max())
        self.epoch, self.group = 0, 0
        self._plan: tuple[int, _EpochPlan] | None = None

    @property
    def num_groups(self) -> int:
        return len(self.group_start)

    def examples_per_epoch(self) -> float:
        """The reference's measure: groups x mean examples per variant."""
        return self.num_groups * len(self.dataset.examples(self.split)) / len(self.variant_ids)

    def _epoch_plan(self, epoch: int) -> _EpochPlan:
        if self._plan is None or self._plan[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(self.num_groups)
            variant = self.group_start + rng.integers(0, self.group_size)
            keys = rng.random((self.num_groups, self.max_examples))
            self._plan = (epoch, _EpochPlan(order, variant, keys))
        return self._plan[1]

    def next_rows(self) -> np.ndarray:
        """Example rows (global_batch,) of the next batch, advancing the position."""
        rows: list[np.ndarray] = []
        filled = 0
        while filled < self.global_batch:
            if self.group == self.num_groups:
                self.epoch, self.group = self.epoch + 1, 0
            plan = self._epoch_plan(self.epoch)
            g = plan.order[self.group]
            v = plan.variant[g]
            count = self.variant_count[v]
            order = np.argsort(plan.shuffle_keys[g, :count], kind="stable")
            take = order[: self.global_batch - filled]
            rows.append(self.variant_start[v] + take)
            filled += len(take)
            self.group += 1
        return np.concatenate(rows)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "group": self.group}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.group = int(state["epoch"]), int(state["group"])


def encode_batch(dataset: Dataset, split: str, rows: np.ndarray) -> Batch:
    """Encode example ``rows`` as model tensors (PAD labels become IGNORE)."""
    inputs, labels, puzzle_ids = dataset.encode(split, rows)
    labels = torch.from_numpy(labels.astype(np.int64))
    labels[labels == PAD] = IGNORE
    return Batch(
        torch.from_numpy(inputs.astype(np.int64)),
        labels,
        torch.from_numpy(puzzle_ids.astype(np.int64)),
    )
