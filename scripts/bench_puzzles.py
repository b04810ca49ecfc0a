"""Benchmark the Sudoku and Maze generators and the Sudoku solver on one CPU thread.

Usage: ``python scripts/bench_puzzles.py [--json] [--seed N] [--sudoku N] [--hard N] [--mazes N]``

Reports Sudoku puzzles generated per second at minimum rating 1 and 10, solver puzzles per
second on everything generated (``max_solutions=1`` and ``2``), canonical forms per second, and
Maze-Hard mazes (``min_path`` 110) per second with the random layouts examined per second and
the acceptance rate. JIT compilation is warmed up first and excluded from every timing.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import TypeVar

import numba
import numpy as np
from rich.console import Console
from rich.table import Table

from arcpipe.puzzles import maze, sudoku

T = TypeVar("T")
HARD_RATING = 10


def timed(fn: Callable[..., T], *args: object) -> tuple[T, float]:
    """``fn(*args)`` and the seconds it took."""
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def warm_up() -> None:
    """Compile every numba function the benchmark times."""
    rng = np.random.default_rng(0)
    puzzles = sudoku.generate_sudoku(2, 0, rng)
    sudoku.solve_batch(puzzles.questions, 2)
    sudoku.canonical_forms(puzzles.questions)
    maze.generate_mazes(1, 10, rng)


def bench_sudoku(count: int, hard: int, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Generation at rating >= 1 and >= HARD_RATING, then solving and canonicalising the lot."""
    results = {}
    sets = []
    for min_rating, n in ((1, count), (HARD_RATING, hard)):
        puzzles, seconds = timed(sudoku.generate_sudoku, n, min_rating, rng)
        sets.append(puzzles)
        results[f"sudoku_generate_min_rating_{min_rating}"] = {
            "count": n,
            "seconds": seconds,
            "per_second": n / seconds,
            "mean_rating": float(puzzles.ratings.mean()),
            "mean_clues": float((puzzles.questions > 0).sum(axis=1).mean()),
        }
    questions = np.concatenate([s.questions for s in sets])
    for max_solutions in (1, 2):
        (_, guesses, _), seconds = timed(sudoku.solve_batch, questions, max_solutions)
        results[f"sudoku_solve_max_solutions_{max_solutions}"] = {
            "count": len(questions),
            "seconds": seconds,
            "per_second": len(questions) / seconds,
            "mean_guesses": float(guesses.mean()),
        }
    _, seconds = timed(sudoku.canonical_forms, questions)
    results["sudoku_canonical_form"] = {
        "count": len(questions),
        "seconds": seconds,
        "per_second": len(questions) / seconds,
    }
    return results


def bench_maze(count: int, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Maze-Hard generation at the published minimum path length."""
    (mazes, layouts), seconds = timed(
        maze.generate_mazes_counted, count, maze.DEFAULT_MIN_PATH, rng
    )
    return {
        "maze_generate_min_path_110": {
            "count": count,
            "seconds": seconds,
            "per_second": count / seconds,
            "layouts": layouts,
            "layouts_per_second": layouts / seconds,
            "acceptance_rate": count / layouts,
            "mean_path_length": float(mazes.ratings.mean()),
        }
    }


def show(results: dict[str, dict[str, float]]) -> None:
    """Print the results as a table."""
    table = Table("benchmark", "count", "seconds", "per second", "notes")
    for name, r in results.items():
        notes = ", ".join(
            f"{k} {v:.3g}" for k, v in r.items() if k not in ("count", "seconds", "per_second")
        )
        table.add_row(name, str(r["count"]), f"{r['seconds']:.2f}", f"{r['per_second']:.1f}", notes)
    Console(width=132).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sudoku", type=int, default=200, help="puzzles at min rating 1")
    parser.add_argument("--hard", type=int, default=20, help=f"puzzles at min rating {HARD_RATING}")
    parser.add_argument("--mazes", type=int, default=20, help="mazes at min path 110")
    args = parser.parse_args()
    numba.set_num_threads(1)
    warm_up()
    rng = np.random.default_rng(args.seed)
    results = {**bench_sudoku(args.sudoku, args.hard, rng), **bench_maze(args.mazes, rng)}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        show(results)


if __name__ == "__main__":
    main()
