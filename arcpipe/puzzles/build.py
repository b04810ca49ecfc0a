"""``arcpipe build-data --task sudoku|maze``: puzzle CSV files -> the shared dataset directory.

Both builders follow the reference's ``build_sudoku_dataset.py`` / ``build_maze_dataset.py``
(reference §2) and write the format of :mod:`arcpipe.data.dataset`:

* every puzzle is one task with one pair (question -> answer); a training puzzle (role
  ``train``) holds it as its one train pair, a test puzzle (role ``target``) as its one test pair;
* every task has one variant per augmentation, the original first; each variant has one example,
  untranslated; test puzzles have exactly one variant, the original;
* every puzzle id is 0: one shared embedding row, ``num_puzzle_identifiers = 1``, as the
  reference.

**Sudoku** (canvas 9, tokens PAD 0, blank 1, digits 2-10; all 81 answer cells are supervised):
``num_aug`` random symmetries per training puzzle, drawn as the reference's ``shuffle_sudoku``
does (transpose with p = 0.5, bands then rows within each band, stacks then columns within each
stack, a digit map with the blank fixed), duplicates not removed (the reference does not either).
A variant stores the transpose as dihedral id 6 (else 0), the band/row order in ``row_perms``,
the stack/column order in ``col_perms`` and the digit map in ``colours``. Every example is
encoded once at build time, exactly as :meth:`Dataset.encode` gives it to the model, and checked:
its answer is a complete valid grid that agrees with its question's givens. ``min_rating`` keeps
the puzzles rated at least that in both files (the reference's ``min_difficulty``);
``subsample`` picks that many training puzzles (the paper: 1000).

**Maze** (canvas 30, tokens = the maze codes 1-5, PAD 0): with ``augment`` each training maze
gets the 8 dihedral variants (ids 0-7 in order, the paper's setting; the reference's README omits
its ``--aug`` flag); test mazes are not augmented. Every encoded example is checked to mark a
shortest path of its (transformed) question.

Randomness comes from generators seeded by ``(seed, stream, puzzle index)``, so the same files
and seed give byte-identical datasets. The directory is written atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arcpipe import __version__
from arcpipe.data.build import BuildSummary
from arcpipe.data.dataset import Dataset, TaskInfo, task_table, write_dataset
from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import atomic_directory, file_digest
from arcpipe.progress import Progress
from arcpipe.puzzles.maze import MAZE_SIDE, is_valid_shortest_path, read_maze_csv
from arcpipe.puzzles.sudoku import SIDE, read_sudoku_csv, valid_solutions

SUDOKU_VOCAB = {"size": 11, "pad": 0, "eos": None, "colour_offset": 1}
MAZE_VOCAB = {"size": 6, "pad": 0, "eos": None, "colour_offset": 0}
TRANSPOSE = 6  # the dihedral id of a transpose
MAZE_DIHEDRALS = 8
MAX_VARIANTS = np.iinfo(np.int32).max  # split records index variants with int32
_SUBSAMPLE_STREAM, _AUGMENT_STREAM = 0, 1
_VERIFY_CHUNK = 8192  # examples encoded and checked at a time
# check(questions, answers): cell values [B, canvas^2] each -> bool [B], the answer solves it
Check = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Puzzles:
    """Questions and answers of one file, with where each came from."""

    questions: np.ndarray  # uint8 [N, canvas^2] cell values
    answers: np.ndarray  # uint8 [N, canvas^2]
    rows: np.ndarray  # int64 [N] 0-based data row in the file (the header is not a row)

    def take(self, keep: np.ndarray) -> _Puzzles:
        return _Puzzles(self.questions[keep], self.answers[keep], self.rows[keep])


@dataclass(frozen=True)
class _Variants:
    """The variants of all tasks, in task order (one example each)."""

    task: np.ndarray  # int [V] task index
    dihedral: np.ndarray  # int [V] dihedral id
    colours: np.ndarray  # uint8 [V, 10] value map
    row_perms: np.ndarray | None  # uint8 [V, canvas]; None: identity, not stored
    col_perms: np.ndarray | None


@dataclass(frozen=True)
class _Layout:
    """The arrays of a build, before they are written."""

    tasks: list[TaskInfo]
    arrays: dict[str, np.ndarray]
    splits: dict[str, np.ndarray]
    counts: dict[str, int]


# ----------------------------------------------------------------------------- Sudoku


def build_sudoku_dataset(
    train_csv: str | Path,
    eval_csv: str | Path,
    out: str | Path,
    num_aug: int = 1000,
    subsample: int | None = None,
    min_rating: int | None = None,
    seed: int = 42,
    overwrite: bool = False,
    quiet: bool = False,
) -> BuildSummary:
    """Build a Sudoku dataset directory from Sudoku-Extreme CSV files (see the module docstring).

    Task ids are ``train-K`` and ``test-K``, ``K`` the puzzle's 0-based data row in its file.

    Args:
        train_csv: training puzzles (``source,question,answer,rating``).
        eval_csv: test puzzles, kept whole (after ``min_rating``) and never augmented.
        out: the dataset directory to write.
        num_aug: random symmetries per training puzzle besides the original (paper: 1000).
        subsample: train on this many puzzles drawn without replacement (paper: 1000).
        min_rating: keep only puzzles whose rating is at least this, in both files.
        seed: seeds the subsample and every puzzle's augmentations.
        overwrite: replace an existing ``out``.
        quiet: no progress output.

    Returns:
        The counts, size and time of the build.

    Raises:
        ArcpipeError: a bad CSV row (file, line, field), a bad option, or ``out`` exists.
    """
    start = time.monotonic()
    _check_options(out, overwrite, subsample)
    if num_aug < 0:
        raise ArcpipeError(f"--num-aug must be >= 0, got {num_aug}")
    train = _sudoku_puzzles(train_csv, min_rating)
    test = _sudoku_puzzles(eval_csv, min_rating)
    if subsample is not None:
        train = _take_subsample(train, subsample, seed)
    variants = _sudoku_variants(len(train.rows), len(test.rows), num_aug, seed, quiet)
    layout = _layout(train, test, SIDE, variants)
    options = {"num_aug": num_aug, "subsample": subsample, "min_rating": min_rating}
    head = _manifest_head("sudoku", seed, options, train_csv, eval_csv, SUDOKU_VOCAB, SIDE)
    return _write(out, overwrite, layout, head, valid_sudoku_answers, quiet, start)


def _sudoku_puzzles(path: str | Path, min_rating: int | None) -> _Puzzles:
    """Read a CSV file and keep the puzzles rated at least ``min_rating``."""
    puzzles = read_sudoku_csv(path)
    keep = np.arange(len(puzzles))
    if min_rating is not None:
        keep = np.flatnonzero(puzzles.ratings >= min_rating)
    if len(keep) == 0:
        rated = "" if min_rating is None else f" rated >= {min_rating}"
        raise ArcpipeError(f"has no puzzles{rated}", file=path)
    return _Puzzles(puzzles.questions[keep], puzzles.answers[keep], keep)


def _take_subsample(puzzles: _Puzzles, n: int, seed: int) -> _Puzzles:
    """``n`` puzzles drawn without replacement, kept in file order."""
    if n > len(puzzles.rows):
        raise ArcpipeError(f"--subsample {n} but the training file has {len(puzzles.rows)}")
    rng = np.random.default_rng([seed, _SUBSAMPLE_STREAM])
    return puzzles.take(np.sort(rng.choice(len(puzzles.rows), size=n, replace=False)))


def draw_sudoku_transforms(
    rng: np.random.Generator, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``count`` random Sudoku symmetries at once, distributed as ``random_sudoku_transform``.

    Returns:
        transpose bool [K], row_perms uint8 [K, 9] (output row i takes row ``row_perms[i]`` of
        the transposed-or-not grid; bands kept together), col_perms uint8 [K, 9] likewise for
        columns, digit maps uint8 [K, 10] with the blank (0) fixed.
    """
    digits = rng.permuted(np.tile(np.arange(1, SIDE + 1), (count, 1)), axis=1)
    digit_maps = np.concatenate([np.zeros((count, 1), np.int64), digits], axis=1)
    transpose = rng.random(count) < 0.5
    return (
        transpose,
        _band_permutations(rng, count),
        _band_permutations(rng, count),
        digit_maps.astype(np.uint8),
    )


def _band_permutations(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` random orders of the 3 bands and of the 3 lines within each, uint8 [K, 9]."""
    bands = rng.permuted(np.tile(np.arange(3), (count, 1)), axis=1)  # [K, 3]
    inner = rng.permuted(np.tile(np.arange(3), (count, 3, 1)), axis=2)  # [K, 3, 3]
    return (3 * bands[:, :, None] + inner).reshape(count, SIDE).astype(np.uint8)


def _sudoku_variants(n_train: int, n_test: int, num_aug: int, seed: int, quiet: bool) -> _Variants:
    """The original plus ``num_aug`` random symmetries per training puzzle; originals for tests.

    Raises:
        ArcpipeError: more variants than the format's int32 records can index.
    """
    per_task = 1 + num_aug
    if n_train * per_task + n_test > MAX_VARIANTS:
        raise ArcpipeError(
            f"{n_train:,} training puzzles x {per_task:,} variants exceed the format's "
            f"{MAX_VARIANTS:,} variants; pass --subsample (the paper: 1000) or a smaller --num-aug"
        )
    transpose = np.zeros((n_train, per_task), bool)
    row_perms = np.tile(np.arange(SIDE, dtype=np.uint8), (n_train, per_task, 1))
    col_perms = row_perms.copy()
    colours = np.tile(np.arange(10, dtype=np.uint8), (n_train, per_task, 1))
    with Progress("augment", n_train, quiet=quiet) as progress:
        for i in range(n_train):
            rng = np.random.default_rng([seed, _AUGMENT_STREAM, i])
            drawn = draw_sudoku_transforms(rng, num_aug)
            transpose[i, 1:], row_perms[i, 1:], col_perms[i, 1:], colours[i, 1:, :10] = drawn
            progress.advance(1)
    identity = _identity_variants(n_train, n_test, SIDE)
    return _Variants(
        task=np.concatenate([np.repeat(np.arange(n_train), per_task), identity.task]),
        dihedral=np.concatenate([np.where(transpose, TRANSPOSE, 0).reshape(-1), identity.dihedral]),
        colours=np.concatenate([colours.reshape(-1, 10), identity.colours]),
        row_perms=np.concatenate([row_perms.reshape(-1, SIDE), identity.row_perms]),
        col_perms=np.concatenate([col_perms.reshape(-1, SIDE), identity.col_perms]),
    )


def valid_sudoku_answers(questions: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """Which answers are complete valid grids that keep their question's givens.

    Args:
        questions: int [B, 81] cell values, 0 for a blank.
        answers: int [B, 81] cell values (anything outside 1-9 makes the answer invalid).

    Returns:
        bool [B].
    """
    keeps_givens = ((questions == 0) | (questions == answers)).all(axis=1)
    return keeps_givens & valid_solutions(answers)


# ----------------------------------------------------------------------------- Maze


def build_maze_dataset(
    train_csv: str | Path,
    eval_csv: str | Path,
    out: str | Path,
    augment: bool = True,
    subsample: int | None = None,
    seed: int = 42,
    overwrite: bool = False,
    quiet: bool = False,
) -> BuildSummary:
    """Build a Maze dataset directory from Maze-Hard CSV files (see the module docstring).

    Args:
        train_csv: training mazes (``source,question,answer,rating``, 30x30).
        eval_csv: test mazes, kept whole and never augmented.
        out: the dataset directory to write.
        augment: give each training maze its 8 dihedral variants (paper: on).
        subsample: train on this many mazes drawn without replacement.
        seed: seeds the subsample.
        overwrite: replace an existing ``out``.
        quiet: no progress output.

    Returns:
        The counts, size and time of the build.

    Raises:
        ArcpipeError: a bad CSV row (file, line, field), a bad option, or ``out`` exists.
    """
    start = time.monotonic()
    _check_options(out, overwrite, subsample)
    train, test = _maze_puzzles(train_csv), _maze_puzzles(eval_csv)
    if subsample is not None:
        train = _take_subsample(train, subsample, seed)
    n_train, n_test = len(train.rows), len(test.rows)
    per_task = MAZE_DIHEDRALS if augment else 1
    tests = _identity_variants(n_train, n_test, MAZE_SIDE)
    variants = _Variants(
        task=np.concatenate([np.repeat(np.arange(n_train), per_task), tests.task]),
        dihedral=np.concatenate([np.tile(np.arange(per_task), n_train), tests.dihedral]),
        colours=np.tile(np.arange(10, dtype=np.uint8), (n_train * per_task + n_test, 1)),
        row_perms=None,
        col_perms=None,
    )
    layout = _layout(train, test, MAZE_SIDE, variants)
    options = {"augment": augment, "subsample": subsample}
    head = _manifest_head("maze", seed, options, train_csv, eval_csv, MAZE_VOCAB, MAZE_SIDE)
    return _write(out, overwrite, layout, head, valid_maze_answers, quiet, start)


def _maze_puzzles(path: str | Path) -> _Puzzles:
    """Read a Maze-Hard CSV file; an empty one is an error."""
    mazes = read_maze_csv(path)
    if len(mazes) == 0:
        raise ArcpipeError("has no mazes", file=path)
    return _Puzzles(mazes.questions, mazes.answers, np.arange(len(mazes)))


def valid_maze_answers(questions: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """Which answers mark a shortest S-G path of their question (any shortest path).

    Args:
        questions: int [B, 900] maze codes.
        answers: int [B, 900] maze codes (anything outside 0-255 makes the answer invalid).

    Returns:
        bool [B].
    """
    in_range = ((answers >= 0) & (answers <= 255)).all(axis=1)
    return np.array(
        [ok and is_valid_shortest_path(q, a) for ok, q, a in zip(in_range, questions, answers)],
        dtype=bool,
    )


# ----------------------------------------------------------------------------- shared


def _check_options(out: str | Path, overwrite: bool, subsample: int | None) -> None:
    if Path(out).exists() and not overwrite:
        raise ArcpipeError("already exists (pass --overwrite to replace it)", file=out)
    if subsample is not None and subsample < 1:
        raise ArcpipeError(f"--subsample must be >= 1, got {subsample}")


def _identity_variants(n_train: int, n_test: int, side: int) -> _Variants:
    """One untransformed variant per test puzzle (tasks ``n_train`` onwards)."""
    return _Variants(
        task=np.arange(n_train, n_train + n_test),
        dihedral=np.zeros(n_test, np.int64),
        colours=np.tile(np.arange(10, dtype=np.uint8), (n_test, 1)),
        row_perms=np.tile(np.arange(side, dtype=np.uint8), (n_test, 1)),
        col_perms=np.tile(np.arange(side, dtype=np.uint8), (n_test, 1)),
    )


def _layout(train: _Puzzles, test: _Puzzles, side: int, variants: _Variants) -> _Layout:
    """Tasks, grid store, pairs, variants and splits: puzzle k is pair k (grids 2k, 2k + 1)."""
    n_train, n = len(train.rows), len(train.rows) + len(test.rows)
    num_variants = np.bincount(variants.task, minlength=n)
    first_variant = np.concatenate([[0], np.cumsum(num_variants)[:-1]])
    ids = [f"train-{r}" for r in train.rows] + [f"test-{r}" for r in test.rows]
    tasks = [
        TaskInfo(
            ids[k],
            "train" if k < n_train else "target",
            0 if k < n_train else 1,
            k,
            int(k < n_train),
            int(k >= n_train),
            int(first_variant[k]),
            int(num_variants[k]),
        )
        for k in range(n)
    ]
    cells = np.stack(
        [
            np.concatenate([train.questions, test.questions]),
            np.concatenate([train.answers, test.answers]),
        ],
        axis=1,
    )  # [N, 2, side^2]: question k then answer k
    arrays = {
        "cells": cells.astype(np.uint8).reshape(-1),
        "grids": np.column_stack(
            [np.arange(2 * n, dtype=np.int64) * side * side, np.full((2 * n, 2), side, np.int64)]
        ),
        "pairs": np.arange(2 * n, dtype=np.int32).reshape(n, 2),
        "variants": np.column_stack(
            [variants.task, variants.dihedral, np.zeros(len(variants.task), np.int64)]
        ).astype(np.int32),
        "colours": variants.colours.astype(np.uint8),
    }
    if variants.row_perms is not None:
        arrays["row_perms"] = variants.row_perms.astype(np.uint8)
        arrays["col_perms"] = variants.col_perms.astype(np.uint8)
    records = np.zeros((len(variants.task), 4), np.int32)
    records[:, 0] = np.arange(len(variants.task))
    records[:, 1] = variants.task
    is_train = variants.task < n_train
    splits = {"train": records[is_train], "test": records[~is_train]}
    counts = {
        "tasks": n,
        "variants": len(variants.task),
        "puzzle_identifiers": 1,
        "train_examples": len(splits["train"]),
        "test_examples": len(splits["test"]),
    }
    return _Layout(tasks, arrays, splits, counts)


def _manifest_head(
    kind: str,
    seed: int,
    options: dict,
    train_csv: str | Path,
    eval_csv: str | Path,
    vocab: dict,
    canvas: int,
) -> dict:
    """The kind-specific manifest fields (``write_dataset`` adds the rest)."""
    return {
        "arcpipe_version": __version__,
        "kind": kind,
        "seed": seed,
        "options": options,
        "sources": [
            {"path": str(path), "role": role, "sha256": file_digest(Path(path))}
            for path, role in ((train_csv, "train"), (eval_csv, "eval"))
        ],
        "vocab": vocab,
        "canvas": canvas,
        "seq_len": canvas * canvas,
    }


def _verify_examples(dataset: Dataset, check: Check, quiet: bool) -> None:
    """Encode every example of every split as the model will see it and ``check`` it.

    Raises:
        RuntimeError: an example fails (a builder bug, never a user mistake).
    """
    offset = int(dataset.manifest["vocab"]["colour_offset"])
    total = sum(len(records) for records in dataset.splits.values())
    with Progress("verify", total, quiet=quiet) as progress:
        for split, records in dataset.splits.items():
            for lo in range(0, len(records), _VERIFY_CHUNK):
                rows = np.arange(lo, min(len(records), lo + _VERIFY_CHUNK))
                inputs, labels, _ = dataset.encode(split, rows)
                ok = check(inputs.astype(np.int64) - offset, labels.astype(np.int64) - offset)
                if not ok.all():
                    bad = int(rows[np.flatnonzero(~ok)[0]])
                    raise RuntimeError(f"{split} example {bad} is not a valid solved puzzle")
                progress.advance(len(rows))


def _write(
    out: str | Path,
    overwrite: bool,
    layout: _Layout,
    head: dict,
    check: Check,
    quiet: bool,
    start: float,
) -> BuildSummary:
    """Verify every example and write the directory atomically."""
    out = Path(out)
    task_ids, tasks = task_table(layout.tasks)
    arrays = {"tasks": tasks, **layout.arrays}
    head = {**head, "counts": layout.counts}
    with atomic_directory(out, overwrite=overwrite) as tmp:
        manifest = {**head, "splits": {s: len(a) for s, a in layout.splits.items()}}
        _verify_examples(Dataset(tmp, manifest, task_ids, arrays, layout.splits), check, quiet)
        write_dataset(tmp, task_ids, arrays, layout.splits, head)
    return BuildSummary(
        path=out,
        counts=layout.counts,
        bytes_on_disk=sum(f.stat().st_size for f in out.rglob("*") if f.is_file()),
        seconds=time.monotonic() - start,
    )
