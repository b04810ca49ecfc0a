"""Write a synthetic task corpus in the formats ``build-data --train`` reads: JSONL or re-ARC.

Each task applies one simple rule (a flip, a turn, a transpose, a colour map, a shift, gravity)
to random small grids (1-4 colours on a 0 background), so its pairs are correct by construction
and no two tasks are alike. One generator seeded with ``--seed`` draws everything, task after
task: the same arguments write the same bytes. The corpus is written as it is drawn, one task at a
time, so a file of any size is made in constant memory.

    python scripts/make_corpus.py --out corpus.jsonl --tasks 100000          # {"id","train","test"}
    python scripts/make_corpus.py --out corpus.jsonl --tasks 1000 --examples # {"examples": [...]}
    python scripts/make_corpus.py --out rearc/ --tasks 20 --pairs 200        # re-ARC: one file each
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import orjson

Grid = np.ndarray


def _gravity(grid: Grid) -> Grid:
    """Non-zero cells fall to the bottom of their column, in order."""
    out = np.zeros_like(grid)
    for c in range(grid.shape[1]):
        column = grid[:, c][grid[:, c] != 0]
        out[grid.shape[0] - len(column) :, c] = column
    return out


RULES: dict[str, Callable[[Grid, np.ndarray], Grid]] = {
    "flip_lr": lambda g, _: g[:, ::-1],
    "flip_ud": lambda g, _: g[::-1],
    "rot90": lambda g, _: np.rot90(g),
    "transpose": lambda g, _: g.T,
    "recolour": lambda g, colours: colours[g],
    "shift_right": lambda g, _: np.roll(g, 1, axis=1),
    "gravity": lambda g, _: _gravity(g),
}


def draw_task(rng: np.random.Generator, pairs: int, max_side: int) -> list[dict]:
    """One task's pairs: a rule, a palette, and ``pairs`` random inputs with their outputs."""
    rule = RULES[list(RULES)[rng.integers(len(RULES))]]
    palette = rng.choice(np.arange(1, 10), size=rng.integers(1, 5), replace=False)
    colours = np.concatenate([[0], rng.permutation(np.arange(1, 10))])
    made = []
    for _ in range(pairs):
        h, w = rng.integers(2, max_side + 1, size=2)
        grid = np.where(rng.random((h, w)) < 0.4, rng.choice(palette, size=(h, w)), 0)
        made.append({"input": grid.tolist(), "output": rule(grid, colours).tolist()})
    return made


def corpus_lines(
    tasks: int, seed: int = 0, pairs: int = 4, max_side: int = 6, examples: bool = False
) -> Iterator[bytes]:
    """JSONL lines (with their newline), one task each: ARC style with an id, or ``examples``."""
    rng = np.random.default_rng(seed)
    width = len(str(tasks - 1))
    for index in range(tasks):
        made = draw_task(rng, pairs, max_side)
        task = (
            {"examples": made}
            if examples
            else {"id": f"syn{index:0{width}d}", "train": made[:-1], "test": made[-1:]}
        )
        yield orjson.dumps(task) + b"\n"


def write_jsonl(path: Path, tasks: int, **kw) -> Path:
    """Write ``tasks`` tasks to the JSONL file ``path`` (see :func:`corpus_lines`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for line in corpus_lines(tasks, **kw):
            f.write(line)
    return path


def write_rearc(folder: Path, tasks: int, seed: int = 0, pairs: int = 50, max_side: int = 6):
    """Write ``tasks`` re-ARC files (``rN.json``, each a list of ``pairs`` pairs) to ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    width = len(str(tasks - 1))
    for index in range(tasks):
        made = draw_task(rng, pairs, max_side)
        (folder / f"r{index:0{width}d}.json").write_bytes(orjson.dumps(made))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a .jsonl file or a folder")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--pairs", type=int, help="pairs per task (JSONL 4, re-ARC 50)")
    parser.add_argument("--max-side", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", action="store_true", help="JSONL lines as {examples}")
    args = parser.parse_args()
    if args.out.suffix == ".jsonl":
        write_jsonl(
            args.out,
            args.tasks,
            seed=args.seed,
            pairs=args.pairs or 4,
            max_side=args.max_side,
            examples=args.examples,
        )
    else:
        write_rearc(args.out, args.tasks, args.seed, args.pairs or 50, args.max_side)
    print(f"wrote {args.tasks} tasks to {args.out}")


if __name__ == "__main__":
    main()
