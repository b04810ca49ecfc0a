"""Fingerprints of pairs and tasks that the augmentation group cannot change.

The group is the one the build draws its variants from (:mod:`arcpipe.arc.augment`): the 8
dihedral transforms times the relabellings of colours 1-9 (0 fixed), one element applied alike to
a pair's input and output. Two pairs are equal up to the group exactly when their canonical forms
are equal. The canonical form of a pair: for each of the 8 transforms, the transformed input and
then output with the non-zero colours renumbered 1, 2, ... in order of first appearance
(row-major over the input, then over the output), shapes included; of these 8 encodings, the one
with the smallest 128-bit hash. A colour relabelling does not change the renumbered encodings and
a transform only permutes them, so every pair of one orbit has the same 8 hashes, and pairs of
different orbits share none (up to a 128-bit hash collision).

A task's key is an order-independent hash of the multiset of its pairs' fingerprints
(demonstrations and test pairs together): two tasks with the same key hold the same pairs up to
the group, in any order and any split between demonstrations and tests.

The grids come from the grid store the build packs (:func:`arcpipe.data.sources.pack_grids`):
``cells`` uint8 [C], ``grids`` int64 [G, 3] (first cell, height, width), ``pairs`` [P, 2]
(input grid, output grid or -1 when unknown).
"""

from __future__ import annotations

import numba
import numpy as np

from arcpipe.arc.augment import NUM_DIHEDRAL, dihedral_source
from arcpipe.arc.tasks import NUM_COLOURS
from arcpipe.arc.variants import _mix

_BASE = np.uint64(0x100000001B3)  # lane 0: polynomial hash mod 2^64 (odd base)
_FNV = np.uint64(0x9E3779B97F4A7C15)  # lane 1: xor-then-multiply (FNV-1a style, odd factor)
_SEEDS = (np.uint64(0xCBF29CE484222325), np.uint64(0x84222325CBF29CE4))
_NO_OUTPUT = 2047  # stands for a missing output (values below are shapes, cells, markers)
_SEPARATOR = 2046


@numba.njit(cache=True, inline="always")
def _absorb(h0, h1, value):
    """Feed one symbol (a small non-negative int) into both lanes."""
    v = np.uint64(value + 1)
    return h0 * _BASE + v, (h1 ^ v) * _FNV


@numba.njit(cache=True)
def _encode(cells, grids, grid, d, relabel, colour_map, next_colour, h0, h1):
    """Absorb grid ``grid`` under transform ``d``: its shape, then its cells row-major.

    With ``relabel``, non-zero colours are renumbered by first appearance (``colour_map`` and
    ``next_colour`` carry the numbering from the input on to the output).
    """
    start, h, w = grids[grid, 0], grids[grid, 1], grids[grid, 2]
    th, tw = (w, h) if (d == 1 or d == 3 or d == 6 or d == 7) else (h, w)
    h0, h1 = _absorb(h0, h1, 64 + th * 32 + tw)
    for i in range(th):
        for j in range(tw):
            si, sj = dihedral_source(d, i, j, h, w)
            colour = cells[start + si * w + sj]
            if relabel and colour != 0:
                if colour_map[colour] < 0:
                    colour_map[colour] = next_colour
                    next_colour += 1
                colour = colour_map[colour]
            h0, h1 = _absorb(h0, h1, colour)
    return h0, h1, next_colour


@numba.njit(cache=True)
def _fingerprints(cells, grids, pairs, canonical, with_output, out):
    colour_map = np.empty(NUM_COLOURS, dtype=np.int64)
    transforms = NUM_DIHEDRAL if canonical else 1
    for p in range(pairs.shape[0]):
        best0, best1 = np.uint64(0), np.uint64(0)
        for d in range(transforms):
            colour_map[:] = -1
            h0, h1, nxt = _encode(
                cells, grids, pairs[p, 0], d, canonical, colour_map, 1, _SEEDS[0], _SEEDS[1]
            )
            h0, h1 = _absorb(h0, h1, _SEPARATOR)
            if with_output and pairs[p, 1] >= 0:
                h0, h1, nxt = _encode(
                    cells, grids, pairs[p, 1], d, canonical, colour_map, nxt, h0, h1
                )
            else:
                h0, h1 = _absorb(h0, h1, _NO_OUTPUT)
            h0, h1 = _mix(h0), _mix(h1 ^ _mix(h0))
            if d == 0 or h0 < best0 or (h0 == best0 and h1 < best1):
                best0, best1 = h0, h1
        out[p, 0], out[p, 1] = best0, best1


def pair_fingerprints(
    cells: np.ndarray,
    grids: np.ndarray,
    pairs: np.ndarray,
    canonical: bool = True,
    with_output: bool = True,
) -> np.ndarray:
    """One 128-bit fingerprint per pair.

    Args:
        cells, grids, pairs: the grid store (module docstring).
        canonical: invariant under the group (True), or of the pair exactly as stored (False).
        with_output: include the output (when known); False fingerprints the input alone.

    Returns:
        uint64 [P, 2].
    """
    out = np.empty((len(pairs), 2), dtype=np.uint64)
    _fingerprints(
        np.ascontiguousarray(cells),
        np.ascontiguousarray(grids, dtype=np.int64),
        np.ascontiguousarray(pairs, dtype=np.int64),
        canonical,
        with_output,
        out,
    )
    return out


def task_keys(fingerprints: np.ndarray, first_pair: np.ndarray) -> np.ndarray:
    """Order-independent key of each task's multiset of pair fingerprints.

    Args:
        fingerprints: uint64 [P, 2] of every pair, tasks back to back.
        first_pair: int64 [T + 1] CSR offsets of each task's pairs.

    Returns:
        uint64 [T, 2]; equal rows mean the same pairs up to the group, in any order and split.
    """
    scrambled = np.empty_like(fingerprints)
    with np.errstate(over="ignore"):
        scrambled[:, 0] = _mix_array(fingerprints[:, 0] ^ fingerprints[:, 1])
        scrambled[:, 1] = _mix_array(fingerprints[:, 1] + np.uint64(0x2545F4914F6CDD1D))
        sums = np.add.reduceat(scrambled, first_pair[:-1], axis=0) if len(scrambled) else scrambled
    counts = np.diff(first_pair).astype(np.uint64)
    sums[:, 0] ^= counts  # a task is never keyed like one with more (empty) pairs
    return sums.reshape(-1, 2)


def _mix_array(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over an array (as :func:`arcpipe.arc.variants._mix`)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def as_keys(fingerprints: np.ndarray) -> np.ndarray:
    """Rows of uint64 [N, 2] as N hashable, sortable 16-byte values (void [N])."""
    return np.ascontiguousarray(fingerprints, dtype=np.uint64).view(np.dtype((np.void, 16)))[:, 0]


def matching(queries: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (query row, key row) whose fingerprints are equal, sorted by query then key row.

    Args:
        queries: uint64 [Q, 2]; keys: uint64 [K, 2].

    Returns:
        two int64 arrays of equal length: query rows and key rows.
    """
    q, k = as_keys(queries), as_keys(keys)
    order = np.argsort(k, kind="stable")
    sorted_keys = k[order]
    lo = np.searchsorted(sorted_keys, q, side="left")
    hi = np.searchsorted(sorted_keys, q, side="right")
    counts = hi - lo
    query_rows = np.repeat(np.arange(len(q)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    key_rows = order[np.repeat(lo, counts) + offsets]
    return query_rows.astype(np.int64), key_rows.astype(np.int64)


def hex_digest(fingerprint: np.ndarray) -> str:
    """A fingerprint (uint64 [2]) as 32 hex digits, for manifests."""
    return f"{int(fingerprint[0]):016x}{int(fingerprint[1]):016x}"
