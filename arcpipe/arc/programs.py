"""Whole-grid programs: a small search for a transform that reproduces every demonstration.

The network answers a task from what it learnt; some tasks are one whole-grid transform that a
short search finds exactly and a CPU-scale network does not learn (docs/benchmarks.md: the
protocol's misses are tilings of rotated and mirrored copies of the input). ``predict
--programs`` and ``vote --programs`` put the answer of the first program that reproduces every
demonstration of a task exactly before the network's votes (:mod:`arcpipe.arc.submission`); the
network keeps the other attempts. Off by default: the reference has no such search.

Two generic families, searched in this order (simplest first; the first fit answers):

- **Tiles**: the output is k x m blocks (k m <= 36), block (a, b) being one of the 8 dihedral
  transforms of the input, upscaled first by integer factors (each cell a f x g block, f, g <= 4),
  with one transform per block, fitted block by block (the first of the 8 that holds in every
  demonstration). This holds the dihedral group itself (k = m = 1), mirrored and rotated tilings,
  upscaling and plain tiling. Without a colour map first; then with one global map fitted over
  all demonstrations (each colour to one colour).
- **Self-similar**: an h x w input becomes an (h h) x (w w) output whose block (i, j) is the
  input where cell (i, j) is not the background 0 (or where it is), blank elsewhere; without,
  then with a colour map.

A colour map answers a test input only if it has seen every colour of it: a colour the
demonstrations never mapped has no answer, and the program is skipped. Fitting is exact: a
program that misses one cell of one demonstration is not a fit. On the 2,080 real tasks of
ARC-AGI-1, ARC-AGI-2 and ConceptARC a program fits 74, and every one of their answers is right
(``scripts/bench_programs.py``; docs/benchmarks.md, "Whole-grid programs").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from arcpipe.arc.tasks import MAX_GRID_SIZE

MAX_FACTOR = 4  # the largest upscale factor
MAX_BLOCKS = 36  # the most blocks a tiling has


def dihedral(grid: np.ndarray, t: int) -> np.ndarray:
    """Transform ``t`` of the dihedral group: rotation by 90 t degrees (t < 4), or the
    rotation by 90 (t - 4) degrees followed by a transpose (the reflections, t >= 4)."""
    rotated = np.rot90(grid, t % 4)
    return rotated.T if t >= 4 else rotated


def upscale(grid: np.ndarray, f: int, g: int) -> np.ndarray:
    """Every cell as an f x g block."""
    return np.repeat(np.repeat(grid, f, axis=0), g, axis=1)


def self_similar(grid: np.ndarray, inverse: bool) -> np.ndarray:
    """(h h, w w): block (i, j) is the grid where cell (i, j) is not 0 (``inverse``: is 0)."""
    h, w = grid.shape
    keep = ((grid != 0) != inverse).astype(grid.dtype)  # (h, w) of 0 / 1
    return np.kron(keep, np.ones((h, w), grid.dtype)) * np.tile(grid, (h, w))


ColourMap = dict[int, int]


def _extend_map(colours: ColourMap, source: np.ndarray, target: np.ndarray) -> bool:
    """Add source -> target cell by cell to ``colours``; False where a colour would map to two."""
    pairs = np.unique(np.stack([source.ravel(), target.ravel()]), axis=1)  # (2, distinct pairs)
    return all(colours.setdefault(s, t) == t for s, t in pairs.T.tolist())


def _recolour(colours: ColourMap | None, grid: np.ndarray) -> np.ndarray | None:
    """``grid`` through the map (None: no map), or None where it holds an unmapped colour."""
    if colours is None:
        return grid
    lookup = np.full(10, -1, np.int64)
    for s, t in colours.items():
        lookup[s] = t
    out = lookup[grid]
    return None if (out < 0).any() else out.astype(grid.dtype)


@dataclass(frozen=True)
class Program:
    """A fitted whole-grid program: a shape transform, then an optional colour map."""

    name: str  # what it does, for logs and reports
    transform: Callable[[np.ndarray], np.ndarray]
    colours: ColourMap | None  # None: colours kept

    def __call__(self, grid: np.ndarray) -> np.ndarray | None:
        """The program's answer for ``grid``, or None where it cannot answer it."""
        return _recolour(self.colours, self.transform(grid))


Pair = tuple[np.ndarray, np.ndarray]


def _matches(made: np.ndarray, target: np.ndarray, colours: ColourMap | None) -> bool:
    """Whether ``made`` is ``target``: exactly (``colours`` None), or under ``colours``,
    extended in place."""
    if made.shape != target.shape:
        return False
    return np.array_equal(made, target) if colours is None else _extend_map(colours, made, target)


def _fit_colours(pairs: list[Pair], transform, recolour: bool) -> tuple[bool, ColourMap | None]:
    """Whether ``transform`` reproduces every pair: exactly, or (``recolour``) under one colour
    map, returned with it (None: colours kept)."""
    colours = {} if recolour else None
    return all(_matches(transform(x), y, colours) for x, y in pairs), colours


def _tiles(x: np.ndarray, f: int, g: int, blocks: np.ndarray) -> np.ndarray:
    """The input upscaled by (f, g), tiled as ``blocks`` (k, m) of dihedral transforms."""
    scaled = upscale(x, f, g)
    return np.block([[dihedral(scaled, int(t)) for t in row] for row in blocks])


def _fit_tiles(pairs: list[Pair], f: int, g: int, k: int, m: int, recolour: bool):
    """Each block's transform (k, m), fitted block by block with one colour map (None without
    ``recolour``); None where some block has none."""
    sources = [[dihedral(upscale(x, f, g), t) for x, _ in pairs] for t in range(8)]  # [t][pair]
    blocks = np.zeros((k, m), np.int64)
    colours = {} if recolour else None
    for a in range(k):
        for b in range(m):
            for t in range(8):
                trial = None if colours is None else dict(colours)
                if all(
                    _matches(source, _block(y, k, m, a, b), trial)
                    for source, (_, y) in zip(sources[t], pairs)
                ):
                    blocks[a, b], colours = t, trial
                    break
            else:
                return None
    return blocks, colours


def _block(y: np.ndarray, k: int, m: int, a: int, b: int) -> np.ndarray:
    """Block (a, b) of ``y`` cut into k x m equal blocks (empty where its shape does not divide)."""
    bh, bw = y.shape[0] // k, y.shape[1] // m
    if (bh * k, bw * m) != y.shape:
        return y[:0, :0]
    return y[a * bh : (a + 1) * bh, b * bw : (b + 1) * bw]


def _tile_shapes(x: np.ndarray, y: np.ndarray) -> Iterator[tuple[int, int, int, int]]:
    """(f, g, k, m) whose tiling of ``x`` has ``y``'s shape, smallest first."""
    h, w = x.shape
    for f in range(1, MAX_FACTOR + 1):
        for g in range(1, MAX_FACTOR + 1):
            for bh, bw in dict.fromkeys([(f * h, g * w), (g * w, f * h)]):
                k, r1 = divmod(y.shape[0], bh)
                m, r2 = divmod(y.shape[1], bw)
                if not r1 and not r2 and 1 <= k * m <= MAX_BLOCKS:
                    yield f, g, k, m


def programs(pairs: list[Pair]) -> Iterator[Program]:
    """Every program of the search that reproduces all ``pairs`` exactly, in search order."""
    x0, y0 = pairs[0]
    for recolour in (False, True):
        for f, g, k, m in _tile_shapes(x0, y0):
            fit = _fit_tiles(pairs, f, g, k, m, recolour)
            if fit is not None:
                blocks, colours = fit

                def transform(x, f=f, g=g, blocks=blocks):
                    return _tiles(x, f, g, blocks)

                name = f"tiles {k}x{m} of the input upscaled {f}x{g}, transforms {blocks.tolist()}"
                yield Program(name, transform, colours)
    for recolour in (False, True):
        for inverse in (False, True):

            def transform(x, inverse=inverse):
                return self_similar(x, inverse)

            fits, colours = _fit_colours(pairs, transform, recolour)
            if fits:
                yield Program(f"self-similar (inverse={inverse})", transform, colours)


def solve(
    demonstrations: list[Pair], test_inputs: list[np.ndarray]
) -> tuple[Program, list[np.ndarray]] | None:
    """The first program that reproduces every demonstration and answers every test input,
    with its answers; None where no program of the search does (or there is no demonstration)."""
    if not demonstrations:
        return None
    for program in programs(demonstrations):
        answers = [program(x) for x in test_inputs]
        if all(a is not None and max(a.shape) <= MAX_GRID_SIZE for a in answers):
            return program, answers
    return None
