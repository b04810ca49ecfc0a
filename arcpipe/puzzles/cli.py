"""Command-line pieces for Sudoku and Maze: ``generate``, ``evaluate`` and the build-data hook.

The commands are plain click commands that ``arcpipe.cli`` attaches to its group, which prints
an :class:`~arcpipe.errors.ArcpipeError` as one line and exits with status 2; these commands only
raise it. ``build-data --task sudoku|maze`` calls :func:`build_puzzle_data`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from arcpipe.data.build import BuildSummary
from arcpipe.errors import ArcpipeError
from arcpipe.progress import Progress

if TYPE_CHECKING:
    from arcpipe.puzzles.sudoku import SudokuSet

MAX_MIN_RATING = 100  # above this, rated generation would practically never finish
# Acceptance falls about 10x per 10 moves above 100 (1 layout in 1e5 passes at 110, 3e-6 at 120):
# at 150 one maze takes a core about half an hour.
MAX_MIN_PATH = 150
_CHUNK = 256  # puzzles generated between progress updates

stdout = Console(highlight=False)


# ----------------------------------------------------------------------------- build-data


def build_puzzle_data(
    task: str,
    train: Path | Sequence[Path],
    eval_: Path | None,
    out: Path,
    num_aug: int,
    seed: int,
    subsample: int | None,
    min_rating: int | None,
    overwrite: bool,
    quiet: bool,
) -> BuildSummary:
    """``build-data --task sudoku|maze``: one training and one test CSV file -> a dataset.

    Args:
        task: ``sudoku`` or ``maze``.
        train: the training CSV file (``--train`` given once).
        eval_: the test CSV file.
        out: the dataset directory.
        num_aug: Sudoku: random symmetries per training puzzle; Maze: 0 for none, any other
            value for the 8 dihedral variants.
        seed: seeds subsampling and augmentation.
        subsample: train on this many puzzles.
        min_rating: Sudoku only: keep puzzles rated at least this.
        overwrite: replace an existing ``out``.
        quiet: no progress output.

    Raises:
        ArcpipeError: a wrong option for the task, or any build error.
    """
    from arcpipe.puzzles.build import build_maze_dataset, build_sudoku_dataset

    sources = [train] if isinstance(train, (str, Path)) else list(train)
    if len(sources) != 1:
        raise ArcpipeError(f"--task {task} takes exactly one --train CSV file, got {len(sources)}")
    if eval_ is None:
        raise ArcpipeError(f"--task {task} needs --eval CSV (the test puzzles)")
    if task == "sudoku":
        return build_sudoku_dataset(
            sources[0], eval_, out, num_aug, subsample, min_rating, seed, overwrite, quiet
        )
    if task == "maze":
        if min_rating is not None:
            raise ArcpipeError("--min-rating applies to --task sudoku only")
        return build_maze_dataset(
            sources[0], eval_, out, num_aug > 0, subsample, seed, overwrite, quiet
        )
    raise ArcpipeError(f"--task must be sudoku or maze for a CSV build, got {task!r}")


# ----------------------------------------------------------------------------- generate


@click.group("generate")
def generate() -> None:
    """Generate puzzle CSV files in the Sudoku-Extreme / Maze-Hard layout."""


@generate.command("sudoku")
@click.option("--count", required=True, type=int, help="Puzzles to generate.")
@click.option("--min-rating", type=int, help="Smallest rating (solver guesses) kept [default: 0].")
@click.option("--max-rating", type=int, help="Largest rating kept.")
@click.option(
    "--easy-blanks",
    type=int,
    help="Instead: random full grids with K blanks (not unique, for tiny learning tests).",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="CSV file to write.")
@click.option(
    "--test-count",
    default=0,
    show_default=True,
    help="Also write this many test puzzles, none equivalent to a training one.",
)
@click.option("--test-out", type=click.Path(path_type=Path), help="CSV file for the test puzzles.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate_sudoku_command(
    count: int,
    min_rating: int | None,
    max_rating: int | None,
    easy_blanks: int | None,
    seed: int,
    out: Path,
    test_count: int,
    test_out: Path | None,
    quiet: bool,
) -> None:
    """Generate rated minimal Sudoku puzzles (or easy ones) as CSV."""
    from arcpipe.puzzles.sudoku import write_sudoku_csv

    _check_sudoku_options(count, min_rating, max_rating, easy_blanks, test_count, test_out)
    rng = np.random.default_rng(seed)
    start = time.monotonic()
    if test_count:
        train, test = sudoku_split(count, test_count, rng, min_rating or 0, max_rating, easy_blanks)
        write_sudoku_csv(test_out, test)
    else:
        train = _sudoku_chunks(count, min_rating or 0, max_rating, easy_blanks, rng, quiet)
    write_sudoku_csv(out, train)
    seconds = time.monotonic() - start
    made = count + test_count
    line = (
        f"{count:,} puzzles -> {out}"
        + (f", {test_count:,} -> {test_out}" if test_count else "")
        + f" in {seconds:.1f} s ({made / max(seconds, 1e-9):.1f}/s), mean rating "
        + f"{_mean(train.ratings):.2f}, mean blanks {_mean((train.questions == 0).sum(1)):.1f}"
    )
    stdout.print(line, soft_wrap=True)


def _check_sudoku_options(
    count: int,
    min_rating: int | None,
    max_rating: int | None,
    easy_blanks: int | None,
    test_count: int,
    test_out: Path | None,
) -> None:
    if count < 1 or test_count < 0:
        raise ArcpipeError(f"--count must be >= 1 and --test-count >= 0, got {count}, {test_count}")
    if (test_count > 0) != (test_out is not None):
        raise ArcpipeError("--test-count and --test-out go together")
    if easy_blanks is not None:
        if min_rating is not None or max_rating is not None:
            raise ArcpipeError("--easy-blanks puzzles are not rated; drop --min/--max-rating")
        if not 0 <= easy_blanks <= 81:
            raise ArcpipeError(f"--easy-blanks must be 0-81, got {easy_blanks}")
        return
    low = min_rating or 0
    if not 0 <= low <= MAX_MIN_RATING:
        raise ArcpipeError(
            f"--min-rating must be 0-{MAX_MIN_RATING}, got {low} (about 1 generated puzzle in "
            "300 is rated 40 or more; higher minimums would practically never finish)"
        )
    if max_rating is not None and max_rating < low:
        raise ArcpipeError(f"--max-rating {max_rating} is below --min-rating {low}")


def _sudoku_chunks(
    count: int,
    min_rating: int,
    max_rating: int | None,
    easy_blanks: int | None,
    rng: np.random.Generator,
    quiet: bool,
) -> SudokuSet:
    """``count`` puzzles, made in chunks of ``_CHUNK`` between progress updates."""
    from arcpipe.puzzles.sudoku import SudokuSet, generate_easy_sudoku, generate_sudoku

    parts = []
    with Progress("generate", count, quiet=quiet) as progress:
        for lo in range(0, count, _CHUNK):
            n = min(_CHUNK, count - lo)
            if easy_blanks is None:
                parts.append(generate_sudoku(n, min_rating, rng, max_rating))
            else:
                parts.append(generate_easy_sudoku(n, easy_blanks, rng))
            progress.advance(n)
    return SudokuSet.concatenate(parts)


def sudoku_split(
    n_train: int,
    n_test: int,
    rng: np.random.Generator,
    min_rating: int = 0,
    max_rating: int | None = None,
    easy_blanks: int | None = None,
) -> tuple[SudokuSet, SudokuSet]:
    """Train and test puzzles with no training puzzle equivalent to a test puzzle.

    Args:
        n_train: training puzzles.
        n_test: test puzzles (generated first).
        rng: the only source of randomness.
        min_rating: smallest rating of rated puzzles.
        max_rating: largest rating of rated puzzles, None for no limit.
        easy_blanks: make easy puzzles with this many blanks instead of rated ones.

    Returns:
        ``(train, test)``.
    """
    from arcpipe.puzzles.sudoku import (
        SudokuSet,
        deduplicate_across,
        generate_easy_sudoku,
        generate_split,
    )

    if easy_blanks is None:
        return generate_split(n_train, n_test, min_rating, rng, max_rating)
    test = generate_easy_sudoku(n_test, easy_blanks, rng)
    parts, have = [], 0
    while have < n_train:
        kept = deduplicate_across(generate_easy_sudoku(n_train - have, easy_blanks, rng), test)
        parts.append(kept)
        have += len(kept)
    return SudokuSet.concatenate(parts), test


@generate.command("maze")
@click.option("--count", required=True, type=int, help="Mazes to generate.")
@click.option(
    "--min-path",
    default=110,
    show_default=True,
    help="Keep mazes whose shortest path is longer than this (Maze-Hard: 110).",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="CSV file to write.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate_maze_command(count: int, min_path: int, seed: int, out: Path, quiet: bool) -> None:
    """Generate 30x30 Maze-Hard-style mazes as CSV."""
    from arcpipe.puzzles.maze import MazeSet, generate_mazes_counted, write_maze_csv

    if count < 1:
        raise ArcpipeError(f"--count must be >= 1, got {count}")
    if not 0 <= min_path <= MAX_MIN_PATH:
        raise ArcpipeError(
            f"--min-path must be 0-{MAX_MIN_PATH}, got {min_path} (acceptance falls about 10x "
            "per 10 moves above 100; longer minimums would practically never finish)"
        )
    rng = np.random.default_rng(seed)
    start = time.monotonic()
    parts, layouts = [], 0
    with Progress("generate", count, quiet=quiet) as progress:
        for lo in range(0, count, _CHUNK):
            mazes, examined = generate_mazes_counted(min(_CHUNK, count - lo), min_path, rng)
            parts.append(mazes)
            layouts += examined
            progress.advance(len(mazes))
    mazes = MazeSet(
        [s for p in parts for s in p.sources],
        np.concatenate([p.questions for p in parts]),
        np.concatenate([p.answers for p in parts]),
        np.concatenate([p.ratings for p in parts]),
    )
    write_maze_csv(out, mazes)
    seconds = time.monotonic() - start
    stdout.print(
        f"{count:,} mazes -> {out} in {seconds:.1f} s ({count / max(seconds, 1e-9):.2f}/s), "
        f"mean path {_mean(mazes.ratings):.1f}, {layouts:,} layouts examined "
        f"(acceptance {count / max(layouts, 1):.2e})",
        soft_wrap=True,
    )


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else 0.0


# ----------------------------------------------------------------------------- evaluate


@click.command("evaluate")
@click.option("--run", "run_dir", type=click.Path(path_type=Path), help="Run directory.")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Dataset directory.")
@click.option(
    "--checkpoint", default="best", show_default=True, help="best, last, or a checkpoint directory."
)
@click.option("--limit", type=int, help="Evaluate only the first N test puzzles.")
@click.option("--batch-size", default=0, help="Views per batch (default: the run's eval batch).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--halt-early", is_flag=True, help="Stop a puzzle once its q_halt says halt.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evaluate(
    run_dir: Path | None,
    data: Path,
    checkpoint: str,
    limit: int | None,
    batch_size: int,
    device: str,
    halt_early: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Score a checkpoint on a Sudoku or Maze dataset's test puzzles (exact and valid rates)."""
    from arcpipe.puzzles.evaluate import evaluate_run

    metrics = evaluate_run(run_dir, data, checkpoint, batch_size, device, limit, halt_early, quiet)
    if as_json:
        click.echo(orjson.dumps(metrics, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"{metrics['checkpoint']} (step {metrics['step']})", show_header=False)
    for key, value in metrics.items():
        if key not in ("checkpoint", "step"):
            table.add_row(
                key.replace("_", " "), f"{value:.4f}" if isinstance(value, float) else str(value)
            )
    stdout.print(table)
