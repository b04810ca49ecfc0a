"""Generate the project's small sample ARC tasks into ``data/sample/{training,evaluation}/``.

Sixteen simple rules (flips, a rotation, a colour swap, gravity, flood fill, tiling, ...), one task
each. Every task draws random inputs and computes each output by applying its rule, so the pairs are
correct by construction; the rules also check their own invariants, and every grid is validated
(ints 0-9, at most 10x10, inputs with 1-4 colours on a 0 background) before anything is written.

The output is deterministic: each task draws from its own numpy Generator seeded with
``(SEED, crc32(task id))``, so adding, removing or reordering tasks leaves the others unchanged and
two runs write byte-identical files.

Usage::

    python scripts/make_sample_tasks.py              # (re)write data/sample
    python scripts/make_sample_tasks.py --out DIR    # write DIR/training, DIR/evaluation
    python scripts/make_sample_tasks.py --check      # exit 1 if data/sample is not a fresh run's
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SEED = 20250101
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "data" / "sample"
SPLITS = ("training", "evaluation")

MIN_SIDE, MAX_SIDE = 3, 10  # input sides; outputs may be smaller (count_bar) but never larger
MAX_ATTEMPTS = 10_000  # per task; only reached if a generator can no longer satisfy its checks

FILL_COLOUR = 4  # fill_enclosed paints enclosed background with this colour
MARKER_COLOUR = 2  # hline_through draws a line through every cell of this colour
OBJECT_COLOUR = 5  # recolour_by_size inputs are all grey objects ...
SIZE_COLOURS = {1: 1, 2: 2, 3: 3, 4: 4}  # ... recoloured by their cell count
SWAP = (1, 2)  # colour_swap exchanges these two colours

Grid = np.ndarray  # int64 [h, w], colours 0-9
Rule = Callable[[Grid], Grid]
InputMaker = Callable[[np.random.Generator], Grid | None]  # None asks for another draw


def _check(ok: bool, message: str) -> None:
    # Not ``assert``: the checks must still run under ``python -O``.
    if not ok:
        raise RuntimeError(message)


# ----------------------------------------------------------------------------- drawing helpers


def _side(rng: np.random.Generator, lo: int = MIN_SIDE, hi: int = MAX_SIDE) -> int:
    return int(rng.integers(lo, hi + 1))


def _colours(rng: np.random.Generator, k: int, exclude: tuple[int, ...] = ()) -> list[int]:
    """``k`` distinct non-zero colours, avoiding those a rule gives a special meaning."""
    pool = [c for c in range(1, 10) if c not in exclude]
    return [int(c) for c in rng.choice(pool, size=k, replace=False)]


def _scatter(rng: np.random.Generator, h: int, w: int, colours: list[int], density: float) -> Grid:
    """Random cells of ``colours`` on a 0 background."""
    grid = np.zeros((h, w), dtype=np.int64)
    mask = rng.random((h, w)) < density
    grid[mask] = rng.choice(colours, size=int(mask.sum()))
    return grid


def _random_scatter(
    rng: np.random.Generator, lo: int = MIN_SIDE, hi: int = MAX_SIDE, exclude: tuple[int, ...] = ()
) -> Grid:
    """A scatter of random size, 1-4 colours and density, the input of most geometric rules."""
    colours = _colours(rng, int(rng.integers(1, 5)), exclude)
    return _scatter(rng, _side(rng, lo, hi), _side(rng, lo, hi), colours, rng.uniform(0.25, 0.55))


_STEPS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _blob(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random 4-connected shape of exactly ``size`` cells, as a cropped boolean mask."""
    cells = [(0, 0)]  # a list, not a set: iteration order must not depend on hashing
    while len(cells) < size:
        r, c = cells[int(rng.integers(len(cells)))]
        dr, dc = _STEPS[int(rng.integers(4))]
        if (r + dr, c + dc) not in cells:
            cells.append((r + dr, c + dc))
    rows, cols = np.array(cells).T
    mask = np.zeros((np.ptp(rows) + 1, np.ptp(cols) + 1), dtype=bool)
    mask[rows - rows.min(), cols - cols.min()] = True
    return mask


def _outline(h: int, w: int) -> np.ndarray:
    """The border of an h x w rectangle, as a boolean mask."""
    mask = np.ones((h, w), dtype=bool)
    mask[1:-1, 1:-1] = False
    return mask


def _dilate8(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one cell in all eight directions."""
    padded = np.pad(mask, 1)
    h, w = mask.shape
    out = np.zeros_like(mask)
    for dr in (0, 1, 2):
        for dc in (0, 1, 2):
            out |= padded[dr : dr + h, dc : dc + w]
    return out


def _place(
    rng: np.random.Generator, h: int, w: int, masks: list[np.ndarray], colours: list[int]
) -> Grid | None:
    """Place each mask, in its colour, where it touches no earlier one (not even diagonally).

    Keeping objects apart makes "object" mean "connected component" unambiguously. Returns None
    when a mask finds no room, so the caller draws again.
    """
    grid = np.zeros((h, w), dtype=np.int64)
    blocked = np.zeros((h, w), dtype=bool)  # earlier objects and the ring of cells around them
    for mask, colour in zip(masks, colours, strict=True):
        mh, mw = mask.shape
        if mh > h or mw > w:
            return None
        for _ in range(100):
            r, c = int(rng.integers(h - mh + 1)), int(rng.integers(w - mw + 1))
            if not (blocked[r : r + mh, c : c + mw] & mask).any():
                break
        else:
            return None
        placed = np.zeros((h, w), dtype=bool)
        placed[r : r + mh, c : c + mw] = mask
        grid[placed] = colour
        blocked |= _dilate8(placed)
    return grid


# ----------------------------------------------------------------------------- grid analysis


def _components(grid: Grid) -> list[list[tuple[int, int]]]:
    """4-connected groups of non-zero cells (any colours), in reading order of their first cell."""
    h, w = grid.shape
    seen = np.zeros((h, w), dtype=bool)
    groups = []
    for r0 in range(h):
        for c0 in range(w):
            if grid[r0, c0] == 0 or seen[r0, c0]:
                continue
            seen[r0, c0] = True
            stack, group = [(r0, c0)], []
            while stack:
                r, c = stack.pop()
                group.append((r, c))
                for dr, dc in _STEPS:
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < h and 0 <= cc < w and grid[rr, cc] != 0 and not seen[rr, cc]:
                        seen[rr, cc] = True
                        stack.append((rr, cc))
            groups.append(group)
    return groups


def _enclosed_background(grid: Grid) -> np.ndarray:
    """Background cells that a 4-connected walk over background cannot reach from the border."""
    h, w = grid.shape
    outside = np.zeros((h, w), dtype=bool)
    stack = [(r, c) for r in range(h) for c in range(w) if r in (0, h - 1) or c in (0, w - 1)]
    stack = [(r, c) for r, c in stack if grid[r, c] == 0]
    for r, c in stack:
        outside[r, c] = True
    while stack:
        r, c = stack.pop()
        for dr, dc in _STEPS:
            rr, cc = r + dr, c + dc
            if 0 <= rr < h and 0 <= cc < w and grid[rr, cc] == 0 and not outside[rr, cc]:
                outside[rr, cc] = True
                stack.append((rr, cc))
    return (grid == 0) & ~outside


def _histogram(grid: Grid) -> list[int]:
    return np.bincount(grid.ravel(), minlength=10).tolist()


# ----------------------------------------------------------------------------- rules


def flip_lr(grid: Grid) -> Grid:
    return grid[:, ::-1].copy()


def flip_ud(grid: Grid) -> Grid:
    return grid[::-1, :].copy()


def rotate_90(grid: Grid) -> Grid:
    """Clockwise quarter turn."""
    return np.rot90(grid, k=-1).copy()


def transpose(grid: Grid) -> Grid:
    return grid.T.copy()


def colour_swap(grid: Grid) -> Grid:
    a, b = SWAP
    out = grid.copy()
    out[grid == a] = b
    out[grid == b] = a
    return out


def gravity_down(grid: Grid) -> Grid:
    """Non-zero cells fall to the bottom of their column, keeping their top-to-bottom order."""
    out = np.zeros_like(grid)
    h = grid.shape[0]
    for c in range(grid.shape[1]):
        column = grid[:, c][grid[:, c] != 0]
        out[h - len(column) :, c] = column
    _check((np.sort(out, axis=0) == np.sort(grid, axis=0)).all(), "gravity lost or made cells")
    return out


def fill_enclosed(grid: Grid) -> Grid:
    """Background cells closed off from the border (by any outline) become FILL_COLOUR."""
    _check(not (grid == FILL_COLOUR).any(), "fill_enclosed input already uses the fill colour")
    out = grid.copy()
    out[_enclosed_background(grid)] = FILL_COLOUR
    return out


def tile_2x2(grid: Grid) -> Grid:
    return np.tile(grid, (2, 2))


def scale_x2(grid: Grid) -> Grid:
    """Every cell becomes a 2x2 block."""
    return grid.repeat(2, axis=0).repeat(2, axis=1)


def shift_right(grid: Grid) -> Grid:
    """Every object moves one cell right; the input keeps its last column empty so none is cut."""
    _check(not grid[:, -1].any(), "shift_right input has cells in its last column")
    out = np.zeros_like(grid)
    out[:, 1:] = grid[:, :-1]
    return out


def hline_through(grid: Grid) -> Grid:
    """Every row holding a MARKER_COLOUR cell is painted MARKER_COLOUR across its full width."""
    out = grid.copy()
    out[(grid == MARKER_COLOUR).any(axis=1), :] = MARKER_COLOUR
    return out


def keep_largest(grid: Grid) -> Grid:
    """Only the object with the most cells stays; a tie would make the rule ambiguous."""
    groups = sorted(_components(grid), key=len, reverse=True)
    _check(len(groups) >= 2 and len(groups[0]) > len(groups[1]), "keep_largest needs one largest")
    out = np.zeros_like(grid)
    rows, cols = np.array(groups[0]).T
    out[rows, cols] = grid[rows, cols]
    return out


def recolour_by_size(grid: Grid) -> Grid:
    """Each OBJECT_COLOUR object takes the colour SIZE_COLOURS assigns to its cell count."""
    _check(set(np.unique(grid)) <= {0, OBJECT_COLOUR}, "recolour_by_size input has other colours")
    out = grid.copy()
    for group in _components(grid):
        _check(len(group) in SIZE_COLOURS, f"recolour_by_size has no colour for size {len(group)}")
        rows, cols = np.array(group).T
        out[rows, cols] = SIZE_COLOURS[len(group)]
    return out


def crop_bbox(grid: Grid) -> Grid:
    """The smallest rectangle holding every non-zero cell."""
    rows, cols = np.nonzero(grid)
    out = grid[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].copy()
    _check(_histogram(out)[1:] == _histogram(grid)[1:], "crop_bbox lost a cell")
    return out


def mirror_complete(grid: Grid) -> Grid:
    """Empty cells take the colour of their left-right mirror image, making the grid symmetric."""
    out = np.where(grid != 0, grid, grid[:, ::-1])
    _check((out == out[:, ::-1]).all(), "mirror_complete input was not a damaged symmetric grid")
    return out


def count_bar(grid: Grid) -> Grid:
    """A 1xN bar in the input's only colour, N being how many cells have that colour."""
    colours = np.unique(grid[grid != 0])
    _check(len(colours) == 1, "count_bar input must use exactly one colour")
    return np.full((1, int((grid != 0).sum())), colours[0], dtype=np.int64)


# ----------------------------------------------------------------------------- input makers


def scatter_input(rng: np.random.Generator) -> Grid:
    return _random_scatter(rng)


def small_scatter_input(rng: np.random.Generator) -> Grid:
    """At most 5x5, so that tiling or scaling by two stays within 10x10."""
    return _random_scatter(rng, hi=5)


def swap_input(rng: np.random.Generator) -> Grid:
    """A scatter that surely shows both swapped colours, plus up to two others left alone."""
    others = _colours(rng, int(rng.integers(0, 3)), exclude=SWAP)
    grid = _scatter(rng, _side(rng), _side(rng), [*SWAP, *others], rng.uniform(0.25, 0.5))
    cells = rng.choice(grid.size, size=2, replace=False)
    grid.flat[cells] = SWAP
    return grid


def gravity_input(rng: np.random.Generator) -> Grid:
    """Sparse, so that columns stay mostly empty and the fall is visible."""
    colours = _colours(rng, int(rng.integers(1, 5)))
    return _scatter(rng, _side(rng), _side(rng), colours, rng.uniform(0.15, 0.35))


def outlines_input(rng: np.random.Generator) -> Grid | None:
    """1-3 closed rectangle outlines in one colour, sometimes with an extra one left open.

    The open outline shows that only fully closed areas are filled, which is why the rule uses a
    flood fill from the border rather than "inside a rectangle".
    """
    h, w = _side(rng, 6), _side(rng, 6)
    masks = [_outline(_side(rng, 3, 6), _side(rng, 3, 6)) for _ in range(int(rng.integers(1, 4)))]
    if rng.random() < 0.5:
        gap = _outline(_side(rng, 4, 6), _side(rng, 4, 6))
        gap[0, int(rng.integers(1, gap.shape[1] - 1))] = False  # a gap in the top edge
        masks.append(gap)
    colour = _colours(rng, 1, exclude=(FILL_COLOUR,))[0]
    return _place(rng, h, w, masks, [colour] * len(masks))


def shift_input(rng: np.random.Generator) -> Grid | None:
    """1-4 small objects with the last column left empty, so each can move right by one."""
    h, w = _side(rng), _side(rng, 4)
    n = int(rng.integers(1, 5))
    masks = [_blob(rng, int(rng.integers(1, 6))) for _ in range(n)]
    grid = _place(rng, h, w - 1, masks, [_colours(rng, 1)[0] for _ in range(n)])
    return None if grid is None else np.pad(grid, ((0, 0), (0, 1)))


def marker_input(rng: np.random.Generator) -> Grid:
    """1-3 marker cells in distinct rows among a few cells of other colours."""
    h, w = _side(rng, 5), _side(rng, 5)
    others = _colours(rng, int(rng.integers(1, 3)), exclude=(MARKER_COLOUR,))
    grid = _scatter(rng, h, w, others, rng.uniform(0.05, 0.15))
    rows = rng.choice(h, size=int(rng.integers(1, 4)), replace=False)
    grid[rows, rng.integers(w, size=len(rows))] = MARKER_COLOUR
    return grid


def objects_input(rng: np.random.Generator) -> Grid | None:
    """2-4 objects of distinct sizes (1-8 cells) and random colours, so one is clearly largest."""
    sizes = rng.choice(np.arange(1, 9), size=int(rng.integers(2, 5)), replace=False)
    colours = [_colours(rng, 1)[0] for _ in sizes]
    return _place(rng, _side(rng, 6), _side(rng, 6), [_blob(rng, int(s)) for s in sizes], colours)


def grey_objects_input(rng: np.random.Generator) -> Grid | None:
    """One object of every size 1-4 plus up to two more, so each pair shows the whole mapping."""
    sizes = [*SIZE_COLOURS, *rng.integers(1, 5, size=int(rng.integers(0, 3)))]
    masks = [_blob(rng, int(s)) for s in rng.permutation(sizes)]
    return _place(rng, _side(rng, 7), _side(rng, 7), masks, [OBJECT_COLOUR] * len(masks))


def boxed_pattern_input(rng: np.random.Generator) -> Grid | None:
    """A 3-5 sided pattern touching all four sides of its box, somewhere in a larger grid."""
    ph, pw = _side(rng, 3, 5), _side(rng, 3, 5)
    pattern = _scatter(rng, ph, pw, _colours(rng, int(rng.integers(1, 4))), rng.uniform(0.5, 0.8))
    edges = (pattern[0], pattern[-1], pattern[:, 0], pattern[:, -1])
    if not all(edge.any() for edge in edges):
        return None  # the crop would be smaller than the pattern; draw again
    h, w = _side(rng, ph + 2), _side(rng, pw + 2)
    grid = np.zeros((h, w), dtype=np.int64)
    r, c = int(rng.integers(h - ph + 1)), int(rng.integers(w - pw + 1))
    grid[r : r + ph, c : c + pw] = pattern
    return grid


def damaged_symmetric_input(rng: np.random.Generator) -> Grid:
    """A left-right symmetric pattern with a rectangle erased from one half."""
    h, half = _side(rng, 3), _side(rng, 2, 5)
    colours = _colours(rng, int(rng.integers(1, 4)))
    left = _scatter(rng, h, half, colours, rng.uniform(0.5, 0.8))
    # Odd widths have a middle column that is its own mirror image.
    middle = [_scatter(rng, h, 1, colours, 0.6)] if rng.random() < 0.5 else []
    whole = np.hstack([left, *middle, left[:, ::-1]])
    eh, ew = _side(rng, 1, h), _side(rng, 1, half)
    r, c = int(rng.integers(h - eh + 1)), int(rng.integers(half - ew + 1))
    if rng.random() < 0.5:  # erase from the right half instead
        c = whole.shape[1] - c - ew
    grid = whole.copy()
    grid[r : r + eh, c : c + ew] = 0
    _check((mirror_complete(grid) == whole).all(), "mirror_complete does not restore the pattern")
    return grid


def counted_cells_input(rng: np.random.Generator) -> Grid:
    """2-10 cells of one colour scattered over the grid."""
    h, w = _side(rng), _side(rng)
    n = int(rng.integers(2, min(10, h * w) + 1))
    grid = np.zeros((h, w), dtype=np.int64)
    grid.flat[rng.choice(h * w, size=n, replace=False)] = _colours(rng, 1)[0]
    return grid


# ----------------------------------------------------------------------------- task table


@dataclass(frozen=True)
class TaskSpec:
    rule: Rule
    make_input: InputMaker
    n_train: int
    n_test: int
    split: str  # "training" or "evaluation"


# The evaluation ("target") tasks are four of the simplest rules; a model has to answer them
# from their train pairs alone.
TASKS: dict[str, TaskSpec] = {
    "flip_lr": TaskSpec(flip_lr, scatter_input, 3, 2, "evaluation"),
    "colour_swap": TaskSpec(colour_swap, swap_input, 4, 1, "evaluation"),
    "gravity_down": TaskSpec(gravity_down, gravity_input, 3, 2, "evaluation"),
    "scale_x2": TaskSpec(scale_x2, small_scatter_input, 3, 1, "evaluation"),
    "flip_ud": TaskSpec(flip_ud, scatter_input, 3, 1, "training"),
    "rotate_90": TaskSpec(rotate_90, scatter_input, 4, 1, "training"),
    "transpose": TaskSpec(transpose, scatter_input, 3, 2, "training"),
    "fill_enclosed": TaskSpec(fill_enclosed, outlines_input, 4, 1, "training"),
    "tile_2x2": TaskSpec(tile_2x2, small_scatter_input, 3, 1, "training"),
    "shift_right": TaskSpec(shift_right, shift_input, 3, 1, "training"),
    "hline_through": TaskSpec(hline_through, marker_input, 3, 1, "training"),
    "keep_largest": TaskSpec(keep_largest, objects_input, 3, 3, "training"),
    "recolour_by_size": TaskSpec(recolour_by_size, grey_objects_input, 3, 1, "training"),
    "crop_bbox": TaskSpec(crop_bbox, boxed_pattern_input, 3, 1, "training"),
    "mirror_complete": TaskSpec(mirror_complete, damaged_symmetric_input, 3, 2, "training"),
    "count_bar": TaskSpec(count_bar, counted_cells_input, 4, 1, "training"),
}


# ----------------------------------------------------------------------------- generation


def _validate_grid(grid: Grid, where: str, is_input: bool) -> None:
    _check(grid.ndim == 2 and grid.dtype.kind in "iu", f"{where}: not a 2-D integer grid")
    _check(grid.size > 0 and grid.min() >= 0 and grid.max() <= 9, f"{where}: colours not 0-9")
    h, w = grid.shape
    _check(h <= MAX_SIDE and w <= MAX_SIDE, f"{where}: {h}x{w} is larger than 10x10")
    if is_input:
        _check(h >= MIN_SIDE and w >= MIN_SIDE, f"{where}: {h}x{w} is smaller than 3x3")
        n_colours = len(np.unique(grid[grid != 0]))
        _check(1 <= n_colours <= 4, f"{where}: {n_colours} colours, expected 1-4")


def make_task(task_id: str, spec: TaskSpec) -> dict[str, list[dict[str, list[list[int]]]]]:
    """Draw distinct inputs until the task has all its pairs; the first ``n_train`` are train."""
    rng = np.random.default_rng([SEED, zlib.crc32(task_id.encode())])
    pairs: list[dict[str, list[list[int]]]] = []
    seen: set[tuple[tuple[int, ...], bytes]] = set()
    for _ in range(MAX_ATTEMPTS):
        if len(pairs) == spec.n_train + spec.n_test:
            break
        grid = spec.make_input(rng)
        if grid is None or (grid.shape, grid.tobytes()) in seen:
            continue  # distinct inputs keep every test input unseen in train
        out = spec.rule(grid)
        if out.shape == grid.shape and (out == grid).all():
            continue  # a pair the rule leaves unchanged teaches nothing
        where = f"{task_id} pair {len(pairs)}"
        _validate_grid(grid, f"{where} input", is_input=True)
        _validate_grid(out, f"{where} output", is_input=False)
        seen.add((grid.shape, grid.tobytes()))
        pairs.append({"input": grid.tolist(), "output": out.tolist()})
    _check(len(pairs) == spec.n_train + spec.n_test, f"{task_id}: ran out of attempts")
    return {"train": pairs[: spec.n_train], "test": pairs[spec.n_train :]}


def task_text(task: dict[str, list[dict[str, list[list[int]]]]]) -> str:
    """ARC JSON with one compact pair per line: small, diffable, and stable."""

    def compact(grid: list[list[int]]) -> str:
        return json.dumps(grid, separators=(",", ":"))

    parts = []
    for split in ("train", "test"):
        lines = [
            f'    {{"input": {compact(p["input"])}, "output": {compact(p["output"])}}}'
            for p in task[split]
        ]
        parts.append(f'  "{split}": [\n' + ",\n".join(lines) + "\n  ]")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def generate(out_dir: Path) -> list[Path]:
    """Write every task to ``out_dir/<split>/<id>.json``; returns the files written."""
    written = []
    for task_id, spec in TASKS.items():
        path = out_dir / spec.split / f"{task_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(task_text(make_task(task_id, spec)).encode())
        written.append(path)
    return written


def _task_files(root: Path) -> set[Path]:
    """Task files under root's split folders, relative to root."""
    return {p.relative_to(root) for split in SPLITS for p in (root / split).glob("*.json")}


def check(out_dir: Path) -> int:
    """0 when ``out_dir`` holds exactly what a fresh run writes; else print why and return 1."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh, current = _task_files(fresh_root), _task_files(out_dir)
        problems = [f"missing: {p}" for p in sorted(fresh - current)]
        problems += [f"not generated: {p}" for p in sorted(current - fresh)]
        problems += [
            f"differs: {p}"
            for p in sorted(fresh & current)
            if (fresh_root / p).read_bytes() != (out_dir / p).read_bytes()
        ]
    for problem in problems:
        print(f"{out_dir}: {problem}", file=sys.stderr)
    if problems:
        out = "" if out_dir == DEFAULT_OUT else f" --out {out_dir}"
        print(f"to update, run: python scripts/make_sample_tasks.py{out}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    parser.add_argument(
        "--check", action="store_true", help="compare OUT with a fresh run; exit 1 if it differs"
    )
    args = parser.parse_args(argv)
    if args.check:
        return check(args.out)
    written = generate(args.out)
    stale = _task_files(args.out) - {p.relative_to(args.out) for p in written}
    for path in sorted(stale):
        # Not deleted: --out may point at a folder that holds other tasks.
        print(f"warning: {args.out / path} is not a generated task", file=sys.stderr)
    print(f"wrote {len(written)} tasks to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
