"""Training batches by the reference's epoch rule (reference §3), views encoded on the fly.

An epoch visits every group (task) once in a random order; for each group it picks one random
variant and appends all of that variant's examples, in random order, until the global batch is
full. The variant that overflows a batch is cut and its remaining examples are dropped; the next
batch starts with the next group, continuing into the next epoch (the reference restarts its
stream every ``eval_interval`` epochs and drops the incomplete batch there).

Every rank computes the same global batch from ``(seed, epoch)`` and keeps its own slice, so there
is nothing to synchronise. The position (epoch, next group) is the whole sampler state.

``train.num_variants`` = K trains on the first K variants of each task only (the dataset need not
be rebuilt to try fewer augmentations); evaluation and prediction then run those K views.

With boxed boards (:mod:`arcpipe.data.layout`) the tasks are split into a few buckets of one
sequence length each (:class:`BucketedSampler`); each bucket runs the epoch rule over its own
tasks, and each step draws one bucket, in proportion to its examples per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from arcpipe.arc.augment import Augmentations, random_transforms
from arcpipe.arc.encode import IGNORE, PAD
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import (
    FILLER,
    Bucket,
    Layout,
    bucket_of,
    padding_overhead,
    plan_buckets,
    view_extents,
)

_BUCKET_STREAM = 0xB0C  # seeds the per-step choice of a bucket


@dataclass
class Batch:
    """Model inputs and targets for B slots."""

    inputs: torch.Tensor  # (B, S) token ids
    labels: torch.Tensor  # (B, S) token ids, IGNORE where unsupervised
    puzzle_ids: torch.Tensor  # (B,) puzzle-table rows: puzzle ids, or task indices (task table)
    positions: torch.Tensor | None = None  # (B, S) canvas position of each cell; None: in order
    mask: torch.Tensor | None = None  # (B, S) bool, False for filler cells; None: no fillers
    # (B, 11) each variant's dihedral id and colour map, with a task table; None otherwise
    augmentation: torch.Tensor | None = None

    def where(self, mask: torch.Tensor, other: Batch) -> Batch:
        """Rows from ``other`` where ``mask`` (B,) is set, from ``self`` elsewhere."""

        def pick(mine: torch.Tensor | None, theirs: torch.Tensor | None) -> torch.Tensor | None:
            if mine is None:
                return None
            return torch.where(mask.view(-1, *[1] * (mine.dim() - 1)), theirs, mine)

        return Batch(*(pick(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)))

    def to(self, device: torch.device) -> Batch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(*(move(getattr(self, f.name)) for f in fields(self)))


@dataclass
class _EpochPlan:
    order: np.ndarray  # (G,) groups in visiting order
    variant: np.ndarray  # (G,) chosen variant (index into the split's variant list) per group
    shuffle_keys: np.ndarray  # (G, max examples per variant) random keys ordering the examples


class TrainSampler:
    """Yields the rows of each global batch; see the module docstring.

    ``tasks`` restricts the groups to those task indices (a bucket); ``stream`` then seeds
    their own epoch plans. ``num_variants`` > 0 keeps only the first that many variants of each
    task (in build order, the original first): a dataset built with more serves fewer.
    """

    def __init__(
        self,
        dataset: Dataset,
        split: str,
        global_batch: int,
        seed: int,
        tasks: np.ndarray | None = None,
        stream: int | None = None,
        num_variants: int = 0,
    ) -> None:
        self.dataset = dataset
        self.split = split
        self.global_batch = global_batch
        self.seed = seed
        self.stream = stream
        variants = np.asarray(dataset.examples(split)[:, 0])
        # The split's variants, each with its contiguous run of example rows.
        self.variant_ids, self.variant_start, self.variant_count = np.unique(
            variants, return_index=True, return_counts=True
        )
        tasks_of = np.asarray(dataset.arrays["variants"][self.variant_ids, 0])
        keep = np.ones(len(tasks_of), dtype=bool)
        if tasks is not None:
            keep &= np.isin(tasks_of, tasks)
        if num_variants > 0:
            keep &= dataset.variant_index(self.variant_ids) < num_variants
        if not keep.all():
            self.variant_ids, self.variant_start = self.variant_ids[keep], self.variant_start[keep]
            self.variant_count, tasks_of = self.variant_count[keep], tasks_of[keep]
        self.tasks = np.unique(tasks_of)
        _, self.group_start, self.group_size = np.unique(
            tasks_of, return_index=True, return_counts=True
        )
        self.max_examples = int(self.variant_count.max())
        self.epoch, self.group = 0, 0
        self._plan: tuple[int, _EpochPlan] | None = None

    @property
    def num_groups(self) -> int:
        return len(self.group_start)

    def examples_per_epoch(self) -> float:
        """The reference's measure: groups x mean examples per variant."""
        return self.num_groups * self.variant_count.sum() / max(1, len(self.variant_ids))

    def group_weights(self) -> np.ndarray:
        """Each group's mean examples per variant (what one visit brings), float [G]."""
        return np.add.reduceat(self.variant_count, self.group_start) / self.group_size

    def _epoch_plan(self, epoch: int) -> _EpochPlan:
        if self._plan is None or self._plan[0] != epoch:
            key = [self.seed, epoch] if self.stream is None else [self.seed, self.stream, epoch]
            rng = np.random.default_rng(key)
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


class BucketedSampler:
    """Training batches of one board length each: a :class:`TrainSampler` per bucket of tasks.

    Full boards have one bucket (the canvas) whose sampler is exactly the plain one. Boxed
    boards group the tasks into at most ``max_buckets`` lengths chosen to minimise filler cells
    (:func:`~arcpipe.data.layout.plan_buckets`, each task weighing its examples per epoch); step
    ``t`` draws bucket ``b`` with probability proportional to its examples per epoch, from a
    generator seeded by ``(seed, t)``, the same on every rank and after a resume. ``tasks``
    restricts the batches to those task indices (test-time training on the targets).
    """

    def __init__(
        self,
        layout: Layout,
        split: str,
        global_batch: int,
        seed: int,
        max_buckets: int,
        num_variants: int = 0,
        tasks: np.ndarray | None = None,
    ) -> None:
        self.layout, self.seed, self.step = layout, seed, 0
        dataset = layout.dataset
        every = TrainSampler(dataset, split, global_batch, seed, tasks, num_variants=num_variants)
        if not layout.boxed:
            self.samplers = [every]
            self.buckets = [Bucket(dataset.seq_len, False)]
            self.overhead = 0.0  # filler share of the cells
            return
        cells = layout.task_cells()[every.tasks]
        weights = every.group_weights()
        lengths = plan_buckets(cells, weights, max_buckets)
        which = bucket_of(cells, lengths)
        self.samplers = [
            TrainSampler(
                dataset, split, global_batch, seed, every.tasks[which == b], b + 1, num_variants
            )
            for b in range(len(lengths))
        ]
        self.buckets = [
            Bucket(int(n), bool((cells[which == b] < n).any())) for b, n in enumerate(lengths)
        ]
        self.overhead = padding_overhead(cells, weights, lengths)

    def examples_per_epoch(self) -> float:
        return float(sum(s.examples_per_epoch() for s in self.samplers))

    def next_rows(self) -> tuple[int, np.ndarray]:
        """The next bucket and its global batch's example rows, advancing the position."""
        bucket = 0
        if len(self.samplers) > 1:
            share = np.cumsum([s.examples_per_epoch() for s in self.samplers])
            draw = np.random.default_rng([self.seed, _BUCKET_STREAM, self.step]).random()
            bucket = int(np.searchsorted(share / share[-1], draw, side="right"))
        self.step += 1
        return bucket, self.samplers[bucket].next_rows()

    def state_dict(self) -> dict:
        if not self.layout.boxed:
            return self.samplers[0].state_dict()  # as a plain sampler's (older checkpoints)
        return {"step": self.step, "buckets": [s.state_dict() for s in self.samplers]}

    def load_state_dict(self, state: dict) -> None:
        if not self.layout.boxed:
            self.samplers[0].load_state_dict(state)
            return
        self.step = int(state["step"])
        for sampler, saved in zip(self.samplers, state["buckets"], strict=True):
            sampler.load_state_dict(saved)


def draw_augmentations(
    dataset: Dataset, split: str, rows: np.ndarray, rng: np.random.Generator
) -> Augmentations:
    """A uniformly random augmentation for each example of ``rows``: dihedral transform, colour
    permutation and, for a dataset built with translation, an offset that keeps the pair on the
    canvas (uniform over ``[0, canvas - extent]`` per axis, as the build draws them)."""
    dihedrals, colours = random_transforms(rng, len(rows))
    offsets = np.zeros((len(rows), 2), dtype=np.int64)
    if dataset.manifest.get("options", {}).get("translate", False):
        pairs = np.asarray(dataset.examples(split)[np.asarray(rows)])[:, 1]
        room = dataset.canvas - view_extents(dataset, pairs, dihedrals) + 1
        offsets = np.floor(rng.random((len(rows), 2)) * room).astype(np.int64)
    return Augmentations(dihedrals, colours, offsets)


def encode_batch(
    dataset: Dataset,
    split: str,
    rows: np.ndarray,
    layout: Layout | None = None,
    bucket: Bucket | None = None,
    puzzle_table: str = "variant",
    fresh: Augmentations | None = None,
) -> Batch:
    """Encode example ``rows`` as model tensors (PAD labels become IGNORE).

    Full boards without a boxed ``layout``; with one, boards of ``bucket.length`` cells with
    their positions, and a filler mask when the bucket is masked. ``puzzle_table = "task"``:
    each example's puzzle row is its task's, and its augmentation comes with it. ``fresh``: each
    example seen through this augmentation instead of its variant's (with a task table: the
    trainer refuses it otherwise).
    """
    positions = mask = augmentation = None
    if layout is None or not layout.boxed:
        inputs, labels, puzzle_ids = dataset.encode(split, rows, fresh)
    else:
        inputs, labels, puzzle_ids, cells = layout.encode(split, rows, bucket.length, fresh)
        positions = torch.from_numpy(cells)
        if bucket.masked:
            mask = positions != FILLER
    if puzzle_table == "task":
        puzzle_ids, codes = dataset.task_augmentations(split, rows, fresh)
        augmentation = torch.from_numpy(codes)
    labels = torch.from_numpy(labels.astype(np.int64))
    labels[labels == PAD] = IGNORE
    return Batch(
        torch.from_numpy(inputs.astype(np.int64)),
        labels,
        torch.from_numpy(puzzle_ids.astype(np.int64)),
        positions,
        mask,
        augmentation,
    )
