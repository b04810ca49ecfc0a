"""Sudoku-Extreme: CSV I/O, guess-counting solver, rated generator, canonical forms, augmentation.

A puzzle is a numpy ``uint8`` array of 81 cells in row-major order, ``0`` for a blank and ``1-9``
for a digit; a batch is ``[N, 81]``. Files use the Sudoku-Extreme CSV layout
``source,question,answer,rating`` (``.`` or ``0`` marks a blank in the question).

The solver (numba) propagates naked and hidden singles with per-cell candidate bitmasks and
backtracks depth-first on the unplaced cell with the fewest candidates. Its guess count is the
difficulty rating (the tdoku-style measure Sudoku-Extreme's ``rating`` column uses; our numbers
follow our solver, so they are comparable with each other, not digit-for-digit with tdoku's).

**Guess.** Every time the search assigns a digit to a cell that still has two or more candidates
after propagation (i.e. every branch it takes at a choice point, the last remaining branch
included), the guess count grows by one. A puzzle solved by singles alone has 0 guesses. A
rating is the guess count of the deterministic solver (digits tried in increasing order, ties
between cells broken by the lowest index) stopping at the first solution.

Two puzzles are *equivalent* when one maps to the other by the Sudoku symmetries: relabelling the
digits, transposing, permuting the bands, the rows within a band, the stacks and the columns
within a stack. :func:`canonical_form` picks one representative per class exactly, so that
train/test splits can exclude equivalent puzzles.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numba
import numpy as np

from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import write_bytes_atomic

SIDE = 9
CELLS = 81
ALL_CANDIDATES = 0x1FF  # bit d-1 set <=> digit d is still possible
MAX_DEPTH = CELLS + 1  # every branch places at least one cell
CONTRADICTION, SOLVED, OPEN = 0, 1, 2
CSV_HEADER = ("source", "question", "answer", "rating")
GENERATED_SOURCE = "arcpipe-gen"
EASY_SOURCE = "arcpipe-easy"
QUESTION_CHARS = ".123456789"  # how a question cell is written; '0' is also read as a blank


def _unit_table() -> np.ndarray:
    """The 27 units (9 rows, 9 columns, 9 boxes) as cell indices, int64 [27, 9]."""
    rows = [[r * SIDE + c for c in range(SIDE)] for r in range(SIDE)]
    cols = [[r * SIDE + c for r in range(SIDE)] for c in range(SIDE)]
    boxes = [
        [(3 * (b // 3) + i) * SIDE + 3 * (b % 3) + j for i in range(3) for j in range(3)]
        for b in range(SIDE)
    ]
    return np.array(rows + cols + boxes, dtype=np.int64)


def _peer_table(units: np.ndarray) -> np.ndarray:
    """The 20 peers of every cell (same row, column or box), int64 [81, 20]."""
    peers = []
    for cell in range(CELLS):
        shared = {int(c) for unit in units if cell in unit for c in unit}
        peers.append(sorted(shared - {cell}))
    return np.array(peers, dtype=np.int64)


def _column_permutations() -> np.ndarray:
    """All 6^4 = 1296 stack orders x column orders within stacks, int64 [1296, 9]."""
    perms = list(itertools.permutations(range(3)))
    table = [
        [3 * stack + col for stack, inner in zip(stacks, inners) for col in inner]
        for stacks in perms
        for inners in itertools.product(perms, repeat=3)
    ]
    return np.array(table, dtype=np.int64)


UNITS = _unit_table()
PEERS = _peer_table(UNITS)
POPCOUNT = np.array([bin(m).count("1") for m in range(ALL_CANDIDATES + 1)], dtype=np.int64)
MASK_DIGIT = np.zeros(ALL_CANDIDATES + 1, dtype=np.uint8)  # single-bit mask -> its digit
MASK_DIGIT[1 << np.arange(SIDE)] = np.arange(1, SIDE + 1)
COLUMN_PERMUTATIONS = _column_permutations()
IDENTITY_DIGIT_ORDER = np.tile(np.arange(SIDE, dtype=np.int64), (MAX_DEPTH, 1))
IDENTITY_CELL_RANK = np.arange(CELLS, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Data set and CSV I/O
# --------------------------------------------------------------------------------------------


@dataclass
class SudokuSet:
    """Puzzles with their solutions, in file order.

    Attributes:
        sources: the ``source`` column, one string per puzzle.
        questions: uint8 [N, 81], 0 for a blank.
        answers: uint8 [N, 81], digits 1-9.
        ratings: int32 [N], guess counts.
    """

    sources: list[str]
    questions: np.ndarray
    answers: np.ndarray
    ratings: np.ndarray

    def __len__(self) -> int:
        return len(self.sources)

    def take(self, indices: Sequence[int] | np.ndarray) -> SudokuSet:
        """The puzzles at ``indices`` (int [K]), in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return SudokuSet(
            [self.sources[i] for i in idx],
            self.questions[idx],
            self.answers[idx],
            self.ratings[idx],
        )

    @staticmethod
    def concatenate(sets: Sequence[SudokuSet]) -> SudokuSet:
        """All puzzles of ``sets``, one set after the other."""
        return SudokuSet(
            [s for part in sets for s in part.sources],
            np.concatenate([p.questions for p in sets]).reshape(-1, CELLS),
            np.concatenate([p.answers for p in sets]).reshape(-1, CELLS),
            np.concatenate([p.ratings for p in sets]).astype(np.int32),
        )


def read_csv_rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, [source, question, answer, rating])`` for each data row.

    Shared with :mod:`arcpipe.puzzles.maze`, whose files have the same four columns.

    Raises:
        ArcpipeError: unreadable or non-UTF-8 file, missing or wrong header, wrong column count.
    """
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            yield from _checked_rows(path, handle)
    except OSError as e:
        raise ArcpipeError(f"cannot read: {e.strerror}", file=path) from None
    except UnicodeDecodeError:
        raise ArcpipeError("is not UTF-8 text", file=path) from None


def _checked_rows(path: str | Path, handle: TextIO) -> Iterator[tuple[int, list[str]]]:
    """The CSV rows of ``handle`` after checking the header and every column count."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != list(CSV_HEADER):
        raise ArcpipeError(
            f"header is {','.join(header or [])!r}, expected {','.join(CSV_HEADER)!r}",
            file=path,
            split="line",
            index=1,
        )
    for row in reader:
        if len(row) != len(CSV_HEADER):
            raise ArcpipeError(
                f"has {len(row)} columns, expected {len(CSV_HEADER)} ({','.join(CSV_HEADER)})",
                file=path,
                split="line",
                index=reader.line_num,
            )
        yield reader.line_num, row


def write_csv_rows(path: str | Path, rows: Sequence[Sequence[str]]) -> None:
    """Atomically write the header and ``rows`` with ``\\n`` line ends (deterministic bytes)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    write_bytes_atomic(path, buffer.getvalue().encode("utf-8"))


def _codepoints(texts: list[str]) -> np.ndarray:
    """Unicode code points of equal-length strings, uint32 [N, len]."""
    joined = "".join(texts).encode("utf-32-le")
    return np.frombuffer(joined, dtype=np.uint32).reshape(len(texts), -1)


def _decode_cells(texts: list[str], alphabet: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Map each 81-char string through ``alphabet``; return (uint8 [N, 81], bad bool [N, 81])."""
    table = np.full(128, 255, dtype=np.uint8)
    for char, value in alphabet.items():
        table[ord(char)] = value
    points = _codepoints(texts) if texts else np.zeros((0, CELLS), dtype=np.uint32)
    cells = table[np.minimum(points, 127)]
    cells[points > 127] = 255
    return cells, cells == 255


def read_sudoku_csv(path: str | Path) -> SudokuSet:
    """Read and validate a Sudoku-Extreme CSV file.

    Args:
        path: a CSV file with the header ``source,question,answer,rating``.

    Returns:
        The puzzles in file order.

    Raises:
        ArcpipeError: naming the file, the line (``line[K]``, 1-based, the header is line 1), the
            column, and what is wrong: column count, length, character, an answer that is not a
            complete valid grid, a given that disagrees with the answer, a non-integer rating.
    """
    lines, sources, questions, answers, ratings = [], [], [], [], []
    for line, (source, question, answer, rating) in read_csv_rows(path):
        for name, text in (("question", question), ("answer", answer)):
            if len(text) != CELLS:
                raise ArcpipeError(
                    f"has {len(text)} characters, expected {CELLS}",
                    file=path,
                    split="line",
                    index=line,
                    field=name,
                )
        try:
            ratings.append(int(rating))
        except ValueError:
            raise ArcpipeError(
                f"{rating!r} is not an integer", file=path, split="line", index=line, field="rating"
            ) from None
        lines.append(line)
        sources.append(source)
        questions.append(question)
        answers.append(answer)
    q, a = _parse_grids(path, lines, questions, answers)
    return SudokuSet(sources, q, a, np.array(ratings, np.int32))


def _parse_grids(
    path: str | Path, lines: list[int], questions: list[str], answers: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Decode and cross-check the question and answer columns; raise on the first bad row."""
    digits = {str(d): d for d in range(1, SIDE + 1)}
    q, q_bad = _decode_cells(questions, {**digits, ".": 0, "0": 0})
    a, a_bad = _decode_cells(answers, digits)

    def fail(row: int, field: str, message: str) -> ArcpipeError:
        return ArcpipeError(message, file=path, split="line", index=lines[row], field=field)

    for name, texts, bad, allowed in (
        ("question", questions, q_bad, "1-9, '.' or '0'"),
        ("answer", answers, a_bad, "1-9"),
    ):
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise fail(
                row, name, f"bad character {texts[row][col]!r} at position {col} ({allowed})"
            )
    invalid = ~valid_solutions(a)
    if invalid.any():
        row = int(np.flatnonzero(invalid)[0])
        raise fail(row, "answer", f"is not a valid solution: {_describe_invalid(a[row])}")
    clash = (q != 0) & (q != a)
    if clash.any():
        row, cell = np.argwhere(clash)[0]
        raise fail(
            row,
            "question",
            f"gives {q[row, cell]} at row {cell // SIDE + 1}, column {cell % SIDE + 1} "
            f"but the answer has {a[row, cell]}",
        )
    return q, a


def write_sudoku_csv(path: str | Path, puzzles: SudokuSet) -> None:
    """Atomically write ``puzzles`` as Sudoku-Extreme CSV (``.`` for blanks, ``\\n`` line ends)."""
    q_chars = np.frombuffer(QUESTION_CHARS.encode(), dtype=np.uint8)
    a_chars = np.frombuffer(b"0123456789", dtype=np.uint8)
    rows = [
        (source, q_chars[q].tobytes().decode(), a_chars[a].tobytes().decode(), str(int(r)))
        for source, q, a, r in zip(
            puzzles.sources, puzzles.questions, puzzles.answers, puzzles.ratings
        )
    ]
    write_csv_rows(path, rows)


def subsample(puzzles: SudokuSet, n: int, rng: np.random.Generator) -> SudokuSet:
    """Pick ``n`` puzzles without replacement, kept in file order (sorted indices).

    Raises:
        ArcpipeError: when ``n`` is negative or larger than the set.
    """
    if not 0 <= n <= len(puzzles):
        raise ArcpipeError(f"cannot pick {n} puzzles from a set of {len(puzzles)}")
    return puzzles.take(np.sort(rng.choice(len(puzzles), size=n, replace=False)))


# --------------------------------------------------------------------------------------------
# Validity
# --------------------------------------------------------------------------------------------


def valid_solutions(grids: np.ndarray) -> np.ndarray:
    """For uint8 [N, 81] grids, bool [N]: every unit holds each digit 1-9 exactly once."""
    in_range = ((grids >= 1) & (grids <= SIDE)).all(axis=1)
    bits = np.left_shift(1, np.clip(grids.astype(np.int64), 1, SIDE) - 1)
    unit_masks = np.bitwise_or.reduce(bits[:, UNITS], axis=2)  # [N, 27]
    return in_range & (unit_masks == ALL_CANDIDATES).all(axis=1)


def _describe_invalid(grid: np.ndarray) -> str:
    """Name the first unit of an invalid complete grid that does not hold 1-9 once each."""
    kinds = ("row", "column", "box")
    for u, unit in enumerate(UNITS):
        if sorted(grid[unit].tolist()) != list(range(1, SIDE + 1)):
            return f"{kinds[u // SIDE]} {u % SIDE + 1} holds {''.join(map(str, grid[unit]))}"
    return "unknown"


def is_valid_solution(grid: np.ndarray) -> bool:
    """True when ``grid`` (uint8 [81]) is a complete grid obeying every Sudoku constraint."""
    return bool(valid_solutions(np.asarray(grid, dtype=np.uint8).reshape(1, CELLS))[0])


def consistent(question: np.ndarray, answer: np.ndarray) -> bool:
    """True when every given digit of ``question`` (uint8 [81]) equals ``answer``'s there."""
    q = np.asarray(question).reshape(CELLS)
    return bool(np.all((q == 0) | (q == np.asarray(answer).reshape(CELLS))))


def _as_puzzle(puzzle: np.ndarray) -> np.ndarray:
    """Check and return ``puzzle`` as a contiguous uint8 [81] array of values 0-9."""
    p = np.ascontiguousarray(puzzle, dtype=np.uint8).reshape(-1)
    if p.size != CELLS or p.max(initial=0) > SIDE:
        raise ValueError(f"a puzzle has 81 cells of 0-9, got shape {np.shape(puzzle)}")
    return p


# --------------------------------------------------------------------------------------------
# Solver
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _propagate(cand: np.ndarray, placed: np.ndarray) -> int:
    """Apply naked and hidden singles to candidate masks (int32 [81]) until nothing changes.

    ``placed`` (bool [81]) marks cells whose digit was already removed from its peers. Returns
    CONTRADICTION, SOLVED or OPEN.
    """
    changed = True
    while changed:
        changed = False
        for cell in range(CELLS):
            m = cand[cell]
            if m == 0:
                return CONTRADICTION
            if placed[cell] or POPCOUNT[m] != 1:
                continue
            placed[cell] = True
            for k in range(20):
                p = PEERS[cell, k]
                if cand[p] & m:
                    cand[p] &= ~m
                    if cand[p] == 0:
                        return CONTRADICTION
                    changed = True
        for u in range(27):
            once = 0
            twice = 0
            for k in range(SIDE):
                m = cand[UNITS[u, k]]
                twice |= once & m
                once |= m
            if once != ALL_CANDIDATES:
                return CONTRADICTION
            only = once & ~twice
            if only == 0:
                continue
            for k in range(SIDE):
                c = UNITS[u, k]
                hit = cand[c] & only
                if hit == 0:
                    continue
                if POPCOUNT[hit] > 1:
                    return CONTRADICTION
                if cand[c] != hit:
                    cand[c] = hit
                    changed = True
    for cell in range(CELLS):
        if not placed[cell]:
            return OPEN
    return SOLVED


@numba.njit(cache=True)
def _choose_cell(cand: np.ndarray, placed: np.ndarray, cell_rank: np.ndarray) -> int:
    """The unplaced cell with the fewest candidates; ties go to the lowest ``cell_rank``."""
    best = -1
    best_key = CELLS * (SIDE + 1)
    for c in range(CELLS):
        if not placed[c]:
            key = POPCOUNT[cand[c]] * CELLS + cell_rank[c]
            if key < best_key:
                best_key = key
                best = c
    return best


@numba.njit(cache=True)
def _search(
    puzzle: np.ndarray,
    max_solutions: int,
    digit_order: np.ndarray,
    cell_rank: np.ndarray,
    solution: np.ndarray,
) -> tuple[int, int]:
    """Depth-first search; return (solutions found, capped at max_solutions; guesses).

    ``digit_order`` (int [82, 9]) gives, per depth, the order in which digits (0-based) are
    tried; ``cell_rank`` (int [81]) breaks ties between equally constrained cells. The first
    solution found is written to ``solution`` (uint8 [81]).
    """
    cand = np.empty((MAX_DEPTH, CELLS), np.int32)
    placed = np.zeros((MAX_DEPTH, CELLS), np.bool_)
    for c in range(CELLS):
        cand[0, c] = ALL_CANDIDATES if puzzle[c] == 0 else 1 << (puzzle[c] - 1)
    branch_cell = np.zeros(MAX_DEPTH, np.int64)
    branch_next = np.zeros(MAX_DEPTH, np.int64)
    count = 0
    guesses = 0
    depth = 0
    status = _propagate(cand[0], placed[0])
    while True:
        if status == SOLVED:
            count += 1
            if count == 1:
                for c in range(CELLS):
                    solution[c] = MASK_DIGIT[cand[depth, c]]
            if count >= max_solutions:
                return count, guesses
        if status == OPEN:
            branch_cell[depth] = _choose_cell(cand[depth], placed[depth], cell_rank)
            branch_next[depth] = 0
        else:
            depth -= 1
        bit = 0
        while depth >= 0:
            mask = cand[depth, branch_cell[depth]]
            while branch_next[depth] < SIDE and bit == 0:
                d = digit_order[depth, branch_next[depth]]
                branch_next[depth] += 1
                if mask & (1 << d):
                    bit = 1 << d
            if bit:
                break
            depth -= 1
        if depth < 0:
            return count, guesses
        guesses += 1
        cand[depth + 1] = cand[depth]
        placed[depth + 1] = placed[depth]
        cand[depth + 1, branch_cell[depth]] = bit
        depth += 1
        status = _propagate(cand[depth], placed[depth])


def solve(puzzle: np.ndarray, max_solutions: int = 1) -> tuple[np.ndarray | None, int, int]:
    """Solve one puzzle with the deterministic solver.

    Args:
        puzzle: uint8 [81] (or [9, 9]), 0 for a blank.
        max_solutions: stop after this many solutions: 1 to solve, 2 to check uniqueness.

    Returns:
        ``(solution, guesses, count)``: the first solution found (uint8 [81]) or None when there
        is none; the guesses made until the search stopped (see the module docstring); the number
        of solutions found, at most ``max_solutions``.
    """
    solution = np.zeros(CELLS, dtype=np.uint8)
    count, guesses = _search(
        _as_puzzle(puzzle), max_solutions, IDENTITY_DIGIT_ORDER, IDENTITY_CELL_RANK, solution
    )
    return (solution if count else None), int(guesses), int(count)


@numba.njit(cache=True)
def _solve_batch(puzzles: np.ndarray, max_solutions: int) -> tuple[np.ndarray, ...]:
    n = puzzles.shape[0]
    solutions = np.zeros((n, CELLS), np.uint8)
    guesses = np.zeros(n, np.int64)
    counts = np.zeros(n, np.int64)
    for i in range(n):
        counts[i], guesses[i] = _search(
            puzzles[i], max_solutions, IDENTITY_DIGIT_ORDER, IDENTITY_CELL_RANK, solutions[i]
        )
    return solutions, guesses, counts


def solve_batch(
    puzzles: np.ndarray, max_solutions: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve a batch with :func:`solve`'s rules in one numba loop.

    Args:
        puzzles: uint8 [N, 81].
        max_solutions: as in :func:`solve`.

    Returns:
        ``(solutions uint8 [N, 81], guesses int64 [N], counts int64 [N])``; an unsolvable
        puzzle has count 0 and an all-zero solution row.
    """
    batch = np.ascontiguousarray(puzzles, dtype=np.uint8).reshape(-1, CELLS)
    if batch.max(initial=0) > SIDE:
        raise ValueError("puzzle cells must be 0-9")
    return _solve_batch(batch, max_solutions)


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _generate_one(
    digit_order: np.ndarray,
    cell_rank: np.ndarray,
    removal_order: np.ndarray,
    question: np.ndarray,
    answer: np.ndarray,
) -> int:
    """Make a random full grid, remove clues while the solution stays unique; return its rating.

    Every clue is tried once in ``removal_order``, so the puzzle is minimal: removing any
    remaining clue would allow a second solution.
    """
    scratch = np.zeros(CELLS, np.uint8)
    _search(np.zeros(CELLS, np.uint8), 1, digit_order, cell_rank, answer)
    question[:] = answer
    for k in range(CELLS):
        cell = removal_order[k]
        digit = question[cell]
        question[cell] = 0
        count, _ = _search(question, 2, IDENTITY_DIGIT_ORDER, IDENTITY_CELL_RANK, scratch)
        if count != 1:
            question[cell] = digit
    _, rating = _search(question, 1, IDENTITY_DIGIT_ORDER, IDENTITY_CELL_RANK, scratch)
    return rating


def _random_search_order(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random digit order per depth (int [82, 9]) and cell tie-break rank (int [81])."""
    digit_order = rng.permuted(np.tile(np.arange(SIDE, dtype=np.int64), (MAX_DEPTH, 1)), axis=1)
    return digit_order, rng.permutation(CELLS).astype(np.int64)


def _random_full_grid(rng: np.random.Generator) -> np.ndarray:
    """A random complete grid, uint8 [81]: a randomised solve of the empty grid."""
    grid = np.zeros(CELLS, dtype=np.uint8)
    _search(np.zeros(CELLS, np.uint8), 1, *_random_search_order(rng), grid)
    return grid


def generate_sudoku(
    count: int,
    min_rating: int,
    rng: np.random.Generator,
    max_rating: int | None = None,
    source: str = GENERATED_SOURCE,
) -> SudokuSet:
    """Generate minimal puzzles with a unique solution and a rating in range.

    Each attempt solves the empty grid with a random digit order per depth and random cell
    tie-breaks, removes every clue in a random order unless that makes the solution ambiguous,
    and keeps the puzzle when ``min_rating <= rating <= max_rating``. Attempts are repeated
    until ``count`` puzzles are kept; higher minimum ratings need many more attempts.

    Args:
        count: puzzles to return.
        min_rating: smallest accepted guess count.
        rng: the only source of randomness; the same seed gives the same puzzles.
        max_rating: largest accepted guess count, or None for no limit.
        source: the ``source`` column value.

    Returns:
        ``count`` puzzles in generation order.
    """
    if count < 0 or min_rating < 0 or (max_rating is not None and max_rating < min_rating):
        raise ArcpipeError(
            f"need count >= 0 and 0 <= min_rating <= max_rating, got count={count}, "
            f"min_rating={min_rating}, max_rating={max_rating}"
        )
    questions, answers, ratings = [], [], []
    while len(ratings) < count:
        digit_order, cell_rank = _random_search_order(rng)
        removal_order = rng.permutation(CELLS).astype(np.int64)
        question = np.zeros(CELLS, np.uint8)
        answer = np.zeros(CELLS, np.uint8)
        rating = _generate_one(digit_order, cell_rank, removal_order, question, answer)
        if rating >= min_rating and (max_rating is None or rating <= max_rating):
            questions.append(question)
            answers.append(answer)
            ratings.append(rating)
    return _make_set(source, questions, answers, ratings)


def generate_easy_sudoku(count: int, num_blanks: int, rng: np.random.Generator) -> SudokuSet:
    """Random full grids with exactly ``num_blanks`` random cells blanked.

    The solution need not be unique; the answer is the full grid. Meant for tiny learning tests.

    Args:
        count: puzzles to return.
        num_blanks: blanks per puzzle, 0-81.
        rng: the only source of randomness.

    Returns:
        ``count`` puzzles; ``ratings`` are the solver's guess counts on the questions.
    """
    if count < 0 or not 0 <= num_blanks <= CELLS:
        raise ArcpipeError(f"need count >= 0 and 0 <= num_blanks <= 81, got {count}, {num_blanks}")
    answers = [_random_full_grid(rng) for _ in range(count)]
    questions = []
    for answer in answers:
        question = answer.copy()
        question[rng.choice(CELLS, size=num_blanks, replace=False)] = 0
        questions.append(question)
    guesses = solve_batch(np.array(questions).reshape(-1, CELLS))[1]
    return _make_set(EASY_SOURCE, questions, answers, guesses.tolist())


def _make_set(
    source: str, questions: list[np.ndarray], answers: list[np.ndarray], ratings: list[int]
) -> SudokuSet:
    return SudokuSet(
        [source] * len(ratings),
        np.array(questions, dtype=np.uint8).reshape(-1, CELLS),
        np.array(answers, dtype=np.uint8).reshape(-1, CELLS),
        np.array(ratings, dtype=np.int32),
    )


# --------------------------------------------------------------------------------------------
# Canonical forms
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _relabel_row(
    grid: np.ndarray,
    src: int,
    colperm: np.ndarray,
    labels: np.ndarray,
    next_label: int,
    out: np.ndarray,
) -> int:
    """Write row ``src`` of ``grid`` (uint8 [9, 9]) through ``colperm`` into ``out``.

    Digits are relabelled in order of first appearance: ``labels`` (uint8 [10], 0 = not yet
    seen) is updated in place. Returns the next unused label.
    """
    for c in range(SIDE):
        v = grid[src, colperm[c]]
        if v != 0 and labels[v] == 0:
            labels[v] = next_label
            next_label += 1
        out[c] = labels[v]
    return next_label


@numba.njit(cache=True)
def _compare(a: np.ndarray, b: np.ndarray) -> int:
    """-1, 0 or 1 as ``a`` is lexicographically below, equal to or above ``b``."""
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            return -1 if a[i] < b[i] else 1
    return 0


@numba.njit(cache=True)
def _row_choices(path: np.ndarray, depth: int, out: np.ndarray) -> int:
    """Source rows allowed at output row ``depth`` given rows ``path[:depth]``; return count.

    Output rows come in bands of three: the first row of a band may be any row of an unused
    band; the others must be unused rows of the same band.
    """
    n = 0
    if depth % 3 == 0:
        for band in range(3):
            used = False
            for j in range(0, depth, 3):
                used = used or path[j] // 3 == band
            if not used:
                for r in range(3 * band, 3 * band + 3):
                    out[n] = r
                    n += 1
        return n
    band = path[depth - 1] // 3
    for r in range(3 * band, 3 * band + 3):
        used = False
        for j in range(depth - depth % 3, depth):
            used = used or path[j] == r
        if not used:
            out[n] = r
            n += 1
    return n


@numba.njit(cache=True)
def _complete_rows(
    grid: np.ndarray,
    colperm: np.ndarray,
    first_row: int,
    labels0: np.ndarray,
    next0: int,
    best: np.ndarray,
    best_len: np.ndarray,
) -> None:
    """Branch and bound over output rows 1-8 for one transpose, column order and first row.

    ``best`` (uint8 [9, 9]) holds the smallest grid found; its first ``best_len[0]`` rows are
    valid. The current path always equals ``best`` on the rows above the current depth, so a
    row above ``best``'s prunes the branch and a row below it becomes the new best.
    """
    path = np.zeros(SIDE, np.int64)
    path[0] = first_row
    labels = np.zeros((SIDE + 1, SIDE + 1), np.uint8)  # labels entering each depth
    labels[1] = labels0
    next_label = np.zeros(SIDE + 1, np.int64)
    next_label[1] = next0
    choices = np.zeros((SIDE, SIDE), np.int64)
    n_choices = np.zeros(SIDE, np.int64)
    tried = np.zeros(SIDE, np.int64)
    row = np.zeros(SIDE, np.uint8)
    depth = 1
    n_choices[1] = _row_choices(path, 1, choices[1])
    while depth >= 1:
        if tried[depth] >= n_choices[depth]:
            depth -= 1
            continue
        src = choices[depth, tried[depth]]
        tried[depth] += 1
        labels[depth + 1] = labels[depth]
        nxt = _relabel_row(grid, src, colperm, labels[depth + 1], next_label[depth], row)
        if best_len[0] > depth:
            order = _compare(row, best[depth])
            if order > 0:
                continue
            if order < 0:
                best[depth] = row
                best_len[0] = depth + 1
        else:
            best[depth] = row
            best_len[0] = depth + 1
        if depth == SIDE - 1:
            continue
        path[depth] = src
        next_label[depth + 1] = nxt
        depth += 1
        n_choices[depth] = _row_choices(path, depth, choices[depth])
        tried[depth] = 0


@numba.njit(cache=True)
def _canonical(puzzle: np.ndarray) -> np.ndarray:
    """The lexicographically smallest equivalent of ``puzzle`` (uint8 [81]), uint8 [81].

    Relabelling digits by first appearance gives the smallest string for a fixed cell
    arrangement, so the search runs over the 2 x 6^8 arrangements only: first the smallest
    possible first row over every (transpose, column order, source row), then a branch and
    bound over the remaining rows for each combination that achieves it.
    """
    grids = np.empty((2, SIDE, SIDE), np.uint8)
    grids[0] = puzzle.reshape(SIDE, SIDE)
    grids[1] = grids[0].T
    best = np.full((SIDE, SIDE), 255, np.uint8)
    row = np.zeros(SIDE, np.uint8)
    labels = np.zeros(SIDE + 1, np.uint8)
    for t in range(2):
        for p in range(COLUMN_PERMUTATIONS.shape[0]):
            for r in range(SIDE):
                labels[:] = 0
                _relabel_row(grids[t], r, COLUMN_PERMUTATIONS[p], labels, 1, row)
                if _compare(row, best[0]) < 0:
                    best[0] = row
    best_len = np.ones(1, np.int64)
    for t in range(2):
        for p in range(COLUMN_PERMUTATIONS.shape[0]):
            for r in range(SIDE):
                labels[:] = 0
                nxt = _relabel_row(grids[t], r, COLUMN_PERMUTATIONS[p], labels, 1, row)
                if _compare(row, best[0]) == 0:
                    _complete_rows(grids[t], COLUMN_PERMUTATIONS[p], r, labels, nxt, best, best_len)
    return best.reshape(CELLS)


@numba.njit(cache=True)
def _canonical_batch(puzzles: np.ndarray) -> np.ndarray:
    out = np.empty_like(puzzles)
    for i in range(puzzles.shape[0]):
        out[i] = _canonical(puzzles[i])
    return out


def canonical_form(puzzle: np.ndarray) -> bytes:
    """The canonical form of a puzzle: equal for two puzzles exactly when they are equivalent.

    It is the lexicographically smallest row-major grid reachable by the Sudoku symmetries
    (transpose, band/row/stack/column permutations, digit relabelling), blanks (0) staying
    blank, as 81 bytes of values 0-9. Cost grows with symmetric or very sparse puzzles (an
    empty grid explores all 3.4 million arrangements); typical puzzles take a few milliseconds.

    Args:
        puzzle: uint8 [81] or [9, 9].
    """
    return _canonical(_as_puzzle(puzzle)).tobytes()


def canonical_forms(puzzles: np.ndarray) -> list[bytes]:
    """:func:`canonical_form` of each puzzle of uint8 [N, 81], in one numba loop."""
    batch = np.ascontiguousarray(puzzles, dtype=np.uint8).reshape(-1, CELLS)
    return [row.tobytes() for row in _canonical_batch(batch)]


def deduplicate_across(train: SudokuSet, test: SudokuSet) -> SudokuSet:
    """The puzzles of ``train`` not equivalent to any puzzle of ``test`` (order kept)."""
    forbidden = set(canonical_forms(test.questions))
    keep = [i for i, form in enumerate(canonical_forms(train.questions)) if form not in forbidden]
    return train.take(keep)


def generate_split(
    n_train: int,
    n_test: int,
    min_rating: int,
    rng: np.random.Generator,
    max_rating: int | None = None,
) -> tuple[SudokuSet, SudokuSet]:
    """Generate a train and a test set with no puzzle of one equivalent to a puzzle of the other.

    The test set is generated first; training puzzles equivalent to a test puzzle are dropped
    and replaced until ``n_train`` remain.

    Returns:
        ``(train, test)``.
    """
    test = generate_sudoku(n_test, min_rating, rng, max_rating)
    train = _make_set(GENERATED_SOURCE, [], [], [])
    while len(train) < n_train:
        more = generate_sudoku(n_train - len(train), min_rating, rng, max_rating)
        train = SudokuSet.concatenate([train, deduplicate_across(more, test)])
    return train, test


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SudokuTransform:
    """One Sudoku symmetry, applied as: transpose, then the cell permutation, then the digit map.

    Attributes:
        transpose: transpose the 9x9 grid first.
        row_perm: int [9], output row ``i`` takes row ``row_perm[i]`` (bands kept together).
        col_perm: int [9], output column ``j`` takes column ``col_perm[j]``.
        digit_map: uint8 [10], ``digit_map[0] == 0`` (blanks stay blank).
    """

    transpose: bool
    row_perm: np.ndarray
    col_perm: np.ndarray
    digit_map: np.ndarray

    def apply(self, grid: np.ndarray) -> np.ndarray:
        """Transform ``grid`` (uint8 [81]); returns uint8 [81]."""
        g = np.asarray(grid, dtype=np.uint8).reshape(SIDE, SIDE)
        if self.transpose:
            g = g.T
        return self.digit_map[g[self.row_perm][:, self.col_perm]].reshape(CELLS)


def random_sudoku_transform(rng: np.random.Generator) -> SudokuTransform:
    """Draw a symmetry as the reference does: digits, transpose (p=0.5), bands/rows, stacks/cols."""
    digit_map = np.concatenate([[0], rng.permutation(np.arange(1, SIDE + 1))]).astype(np.uint8)
    transpose = bool(rng.random() < 0.5)
    row_perm = np.concatenate([3 * b + rng.permutation(3) for b in rng.permutation(3)])
    col_perm = np.concatenate([3 * s + rng.permutation(3) for s in rng.permutation(3)])
    return SudokuTransform(transpose, row_perm, col_perm, digit_map)


def augment_sudoku(
    question: np.ndarray, answer: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Apply one random symmetry to a puzzle and its solution (uint8 [81] each)."""
    transform = random_sudoku_transform(rng)
    return transform.apply(question), transform.apply(answer)
