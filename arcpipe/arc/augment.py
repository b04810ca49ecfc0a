"""ARC augmentations: the 8 dihedral transforms, colour permutations, and their exact inverses.

A puzzle variant applies one :class:`Transform` to every pair of its task: first the colour map
(colour 0 fixed, colours 1-9 permuted), then the dihedral transform (reference §1.3). Inverting a
prediction undoes the dihedral first, then the colours (reference §1.7).

Dihedral ids, as the reference numbers them (``np.rot90`` turns counter-clockwise):

====  ===========================  ==========
 id    transform                    inverse
====  ===========================  ==========
 0     identity                     0
 1     rot90 (k=1)                  3
 2     rot90 (k=2)                  2
 3     rot90 (k=3)                  1
 4     fliplr                       4
 5     flipud                       5
 6     transpose                    6
 7     fliplr(rot90) (anti-transpose) 7
====  ===========================  ==========
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

NUM_DIHEDRAL = 8
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)
IDENTITY_COLOURS = np.arange(10, dtype=np.uint8)


def dihedral(grid: np.ndarray, d: int) -> np.ndarray:
    """Apply dihedral transform ``d`` (0-7) to a 2-D grid."""
    if d == 0:
        return grid
    if d in (1, 2, 3):
        return np.rot90(grid, k=d)
    if d == 4:
        return np.fliplr(grid)
    if d == 5:
        return np.flipud(grid)
    if d == 6:
        return grid.T
    if d == 7:
        return np.fliplr(np.rot90(grid, k=1))
    raise ValueError(f"dihedral id must be 0-7, got {d}")


def transposes(d: int) -> bool:
    """True when transform ``d`` swaps height and width."""
    return d in (1, 3, 6, 7)


@numba.njit(cache=True, inline="always")
def dihedral_source(d: int, i: int, j: int, h: int, w: int) -> tuple[int, int]:
    """Cell of an ``h x w`` source grid that lands at ``(i, j)`` of its transform ``d``."""
    if d == 0:
        return i, j
    if d == 1:
        return j, w - 1 - i
    if d == 2:
        return h - 1 - i, w - 1 - j
    if d == 3:
        return h - 1 - j, i
    if d == 4:
        return i, w - 1 - j
    if d == 5:
        return h - 1 - i, j
    if d == 6:
        return j, i
    return h - 1 - j, w - 1 - i


@dataclass(frozen=True)
class Augmentations:
    """One augmentation per example, chosen at training time instead of its stored variant's
    (``train.fresh_augmentations``): dihedral ids int64 [B], colour maps uint8 [B, 10]
    (``colours[:, 0] == 0``) and (row, column) offsets int64 [B, 2] on the canvas."""

    dihedrals: np.ndarray
    colours: np.ndarray
    offsets: np.ndarray

    def __getitem__(self, index: slice | np.ndarray) -> Augmentations:
        """The augmentations of some of the examples (a rank's slice of the global batch)."""
        return Augmentations(self.dihedrals[index], self.colours[index], self.offsets[index])


def random_transforms(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform augmentations: dihedral ids int64 [n] and colour maps uint8 [n, 10] (colour
    0 fixed, 1-9 permuted)."""
    dihedrals = rng.integers(0, NUM_DIHEDRAL, size=n)
    colours = np.zeros((n, 10), dtype=np.uint8)
    colours[:, 1:] = rng.permuted(np.tile(np.arange(1, 10, dtype=np.uint8), (n, 1)), axis=1)
    return dihedrals, colours


def random_colours(rng: np.random.Generator) -> np.ndarray:
    """A colour map of 0..9 with 0 fixed and 1..9 permuted uniformly."""
    return np.concatenate([[0], rng.permutation(np.arange(1, 10))]).astype(np.uint8)


@dataclass(frozen=True)
class Transform:
    """One puzzle variant's augmentation: ``view(g) = dihedral(colours[g], d)``."""

    dihedral: int
    colours: np.ndarray  # uint8 [10], colours[0] == 0

    @staticmethod
    def identity() -> Transform:
        return Transform(0, IDENTITY_COLOURS)

    def view(self, grid: np.ndarray) -> np.ndarray:
        """The grid as this variant shows it."""
        return np.ascontiguousarray(dihedral(self.colours[grid], self.dihedral))

    def invert(self, grid: np.ndarray) -> np.ndarray:
        """Map a grid seen in this variant back to the original task's frame and colours."""
        inverse_colours = np.argsort(self.colours).astype(np.uint8)
        unrotated = dihedral(grid, DIHEDRAL_INVERSE[self.dihedral])
        return np.ascontiguousarray(inverse_colours[unrotated])

    def name(self, task_id: str) -> str:
        """The reference's variant name, ``id|||t3|||0419...`` (the bare id for the original)."""
        if self.dihedral == 0 and np.array_equal(self.colours, IDENTITY_COLOURS):
            return task_id
        return f"{task_id}|||t{self.dihedral}|||{''.join(str(int(c)) for c in self.colours)}"
