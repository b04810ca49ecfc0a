"""Draw a task's puzzle variants with the reference's duplicate rule (reference §1.3).

The original comes first; then random (dihedral, colour map) transforms are drawn, up to
``5 * num_aug`` tries, and a draw is kept only when the multiset of its transformed
(input, output) pairs differs from every variant kept so far. A task with few colours or
symmetric grids therefore saturates below ``num_aug + 1`` variants (72 for one non-zero colour,
576 for two).

The reference compares sha256 digests of the transformed grids; we compare a 128-bit content
hash computed without materialising any grid: each grid's hash is linear in per-colour positional
sums precomputed once per dihedral transform, so a try costs O(pairs x colours) instead of
O(cells). A collision needs two 64-bit lanes to collide at once (probability ~2^-120 per pair of
variants), so the kept set is the reference's for all practical purposes.
"""

from __future__ import annotations

import hashlib

import numba
import numpy as np

from arcpipe.arc.augment import NUM_DIHEDRAL, dihedral_source
from arcpipe.arc.tasks import NUM_COLOURS

RETRIES_FACTOR = 5  # the reference's ARCAugmentRetriesFactor: at most 5 * num_aug tries
_STRIDE = 32  # position key stride; >= the largest canvas side
_LANES = 2
_KEYS = np.random.default_rng(0xA5C91E).integers(
    0, np.iinfo(np.uint64).max, size=(3, _LANES, _STRIDE * _STRIDE), dtype=np.uint64, endpoint=True
)
_POSITION_KEYS, _SHAPE_KEYS, _COLOUR_KEYS = _KEYS[0], _KEYS[1], _KEYS[2, :, :NUM_COLOURS] | 1
_UNKNOWN_OUTPUT = np.uint64(0x9E3779B97F4A7C15)


def task_seed(seed: int, task_id: str, stream: int) -> np.random.Generator:
    """A generator for one task and purpose, independent of which other tasks are in the build."""
    key = int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, key, stream])


@numba.njit(cache=True, inline="always")
def _mix(x: np.uint64) -> np.uint64:
    """splitmix64's finaliser: a bijective scramble of 64 bits."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@numba.njit(cache=True)
def grid_features(cells, grids, grid_ids, position_keys, shape_keys):
    """Per grid and dihedral transform: per-colour sums of position keys, and a shape key.

    Returns:
        sums uint64 [n, 8, 10, lanes], shapes uint64 [n, 8, lanes].
    """
    n = grid_ids.shape[0]
    lanes = position_keys.shape[0]
    sums = np.zeros((n, NUM_DIHEDRAL, NUM_COLOURS, lanes), dtype=np.uint64)
    shapes = np.zeros((n, NUM_DIHEDRAL, lanes), dtype=np.uint64)
    for g in range(n):
        start, h, w = grids[grid_ids[g], 0], grids[grid_ids[g], 1], grids[grid_ids[g], 2]
        for d in range(NUM_DIHEDRAL):
            th, tw = (w, h) if (d == 1 or d == 3 or d == 6 or d == 7) else (h, w)
            for lane in range(lanes):
                shapes[g, d, lane] = shape_keys[lane, th * _STRIDE + tw]
            for i in range(th):
                for j in range(tw):
                    si, sj = dihedral_source(d, i, j, h, w)
                    colour = cells[start + si * w + sj]
                    for lane in range(lanes):
                        sums[g, d, colour, lane] += position_keys[lane, i * _STRIDE + j]
    return sums, shapes


@numba.njit(cache=True, inline="always")
def _grid_hash(sums, shapes, g, d, colours, colour_keys, lane):
    acc = shapes[g, d, lane]
    for k in range(NUM_COLOURS):
        acc += sums[g, d, k, lane] * colour_keys[lane, colours[k]]
    return _mix(acc)


@numba.njit(cache=True)
def _content_hash(sums, shapes, pairs, d, colours, colour_keys, lane):
    """Order-independent hash of the multiset of transformed (input, output) pairs."""
    total = np.uint64(0)
    for p in range(pairs.shape[0]):
        h_in = _grid_hash(sums, shapes, pairs[p, 0], d, colours, colour_keys, lane)
        if pairs[p, 1] < 0:
            h_out = _UNKNOWN_OUTPUT
        else:
            h_out = _grid_hash(sums, shapes, pairs[p, 1], d, colours, colour_keys, lane)
        total += _mix(h_in * np.uint64(0x2545F4914F6CDD1D) + h_out)
    return total


@numba.njit(cache=True)
def _keep_new(sums, shapes, pairs, dihedrals, colours, colour_keys, table, kept, wanted):
    """Walk the tries in order and mark in ``kept`` those whose content is new, up to ``wanted``.

    ``table`` (uint64 [size, 2], zero = empty, size a power of two) holds the hashes seen so far
    and persists across calls. Returns (tries consumed, variants kept).
    """
    mask = table.shape[0] - 1
    count = 0
    for t in range(dihedrals.shape[0]):
        if count >= wanted:
            return t, count
        h0 = _content_hash(sums, shapes, pairs, dihedrals[t], colours[t], colour_keys, 0)
        h0 |= np.uint64(1)  # zero marks an empty slot
        h1 = _content_hash(sums, shapes, pairs, dihedrals[t], colours[t], colour_keys, 1)
        slot = np.int64(h0 >> np.uint64(33)) & mask
        while table[slot, 0] != 0 and not (table[slot, 0] == h0 and table[slot, 1] == h1):
            slot = (slot + 1) & mask
        if table[slot, 0] == 0:
            table[slot, 0], table[slot, 1] = h0, h1
            kept[t] = True
            count += 1
    return dihedrals.shape[0], count


def draw_variants(
    cells: np.ndarray,
    grids: np.ndarray,
    pairs: np.ndarray,
    num_aug: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Choose up to ``num_aug + 1`` distinct variants of one task, the original first.

    Args:
        cells, grids: the grid store (see :mod:`arcpipe.data.dataset`).
        pairs: int64 [P, 2] the task's (input grid, output grid or -1) ids into ``grids``.
        num_aug: augmented variants wanted besides the original.
        rng: the task's generator.

    Returns:
        dihedrals uint8 [V], colours uint8 [V, 10]; row 0 is the identity.
    """
    grid_ids, local = np.unique(pairs[pairs >= 0], return_inverse=True)
    local_pairs = np.full(pairs.shape, -1, dtype=np.int64)
    local_pairs[pairs >= 0] = local
    sums, shapes = grid_features(cells, grids, grid_ids, _POSITION_KEYS, _SHAPE_KEYS)

    limit = num_aug + 1
    table = np.zeros((1 << max(4, (4 * limit).bit_length()), 2), dtype=np.uint64)
    dihedrals = np.zeros(1, dtype=np.uint8)
    colours = np.arange(NUM_COLOURS, dtype=np.uint8)[None]
    _, count = _keep_new(
        sums, shapes, local_pairs, dihedrals, colours, _COLOUR_KEYS, table, np.zeros(1, bool), 1
    )
    chosen = [(dihedrals, colours)]
    tries_left = RETRIES_FACTOR * num_aug
    while count < limit and tries_left > 0:
        chunk = min(limit, tries_left)
        d = rng.integers(0, NUM_DIHEDRAL, size=chunk, dtype=np.uint8)
        perms = rng.permuted(np.tile(np.arange(1, NUM_COLOURS, dtype=np.uint8), (chunk, 1)), axis=1)
        c = np.concatenate([np.zeros((chunk, 1), dtype=np.uint8), perms], axis=1)
        mask = np.zeros(chunk, dtype=bool)
        used, new = _keep_new(
            sums, shapes, local_pairs, d, c, _COLOUR_KEYS, table, mask, limit - count
        )
        chosen.append((d[mask], c[mask]))
        count += new
        tries_left -= used
    return np.concatenate([d for d, _ in chosen]), np.concatenate([c for _, c in chosen])
