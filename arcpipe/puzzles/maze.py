"""Maze-Hard: CSV I/O, the Searchformer-style generator, shortest-path checks, augmentation.

A maze is a 30x30 grid over the charset ``# SGo`` (wall, open, start, goal, path), held as a
uint8 array of the codes 1-5 (``'#'=1, ' '=2, 'S'=3, 'G'=4, 'o'=5``; 0 is reserved for padding),
flat ``[900]`` row-major or ``[30, 30]``; a batch is ``[N, 900]``. The solving functions accept any
2-D ``[H, W]`` grid too. Files use the Maze-Hard CSV layout ``source,question,answer,rating``.

**Generation** (the recipe of Searchformer's ``maze.py``, which HRM and TRM's Maze-Hard used):
draw a wall count uniformly from ``cells // 10 * 3`` to ``cells // 10 * 5`` (270-450 of 900,
i.e. a 30-50% density), put the walls on a uniformly random set of cells, place S and G on two
distinct free cells chosen uniformly, and keep the layout only when the shortest 4-neighbour path
from S to G takes more than ``min_path`` moves (Maze-Hard: 110). Searchformer fixes the wall
count rather than drawing each cell independently; the two differ only by the binomial spread of
the count. About 1 layout in 100,000 passes at 110 (1.0e-5 measured over 100 mazes), so the
search is numba code driven by a splitmix64 generator seeded per maze from the caller's
``np.random.Generator``; mazes are generated in parallel over numba's threads.

**Canonical path.** The answer marks one shortest path with ``o`` on the cells strictly between
S and G. BFS from G gives every cell its distance to G; the path starts at S and repeatedly steps
to the first neighbour, in the order up, left, right, down, whose distance is one less.

**Augmentation.** :func:`dihedral_maze` applies one of the 8 dihedral transforms (ids as in
:mod:`arcpipe.arc.augment`). The canonical rule is not preserved by them: a transformed answer
is still a shortest path, but not necessarily the one :func:`solve_maze` would pick for the
transformed question. Exact match against an augmented answer therefore compares with the
transformed path; evaluation should use :func:`is_valid_shortest_path`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from arcpipe.arc.augment import dihedral
from arcpipe.errors import ArcpipeError
from arcpipe.puzzles.sudoku import read_csv_rows, write_csv_rows

CHARSET = "# SGo"
PAD, WALL, OPEN, START, GOAL, PATH = 0, 1, 2, 3, 4, 5
MAZE_SIDE = 30
MAZE_CELLS = MAZE_SIDE * MAZE_SIDE
DEFAULT_MIN_PATH = 110
GENERATED_SOURCE = "arcpipe-gen"
# Neighbour order of the canonical path rule: up, left, right, down.
STEPS = np.array([[-1, 0], [0, -1], [0, 1], [1, 0]], dtype=np.int64)
_CODE_OF_CHAR = np.zeros(128, dtype=np.uint8)
_CODE_OF_CHAR[[ord(ch) for ch in CHARSET]] = np.arange(1, len(CHARSET) + 1)
_CHAR_OF_CODE = np.frombuffer(("?" + CHARSET).encode("ascii"), dtype=np.uint8)
_SPLITMIX_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_SPLITMIX_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_SPLITMIX_MUL2 = np.uint64(0x94D049BB133111EB)


@dataclass
class MazeSet:
    """Mazes with their solutions, in file order.

    Attributes:
        sources: the ``source`` column, one string per maze.
        questions: uint8 [N, 900], codes 1-4.
        answers: uint8 [N, 900], codes 1-5 (the question plus ``o`` on the path).
        ratings: int32 [N], the shortest path length in moves for generated mazes.
    """

    sources: list[str]
    questions: np.ndarray
    answers: np.ndarray
    ratings: np.ndarray

    def __len__(self) -> int:
        return len(self.sources)


# --------------------------------------------------------------------------------------------
# Encoding and CSV I/O
# --------------------------------------------------------------------------------------------


def encode_maze(text: str) -> np.ndarray:
    """Codes (uint8 [len]) of a maze string over ``CHARSET``; raises ValueError on other chars."""
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    codes = _CODE_OF_CHAR[np.minimum(points, 127)]
    if (codes == PAD).any() or (points > 127).any():
        bad = next(ch for ch in text if ch not in CHARSET)
        raise ValueError(f"{bad!r} is not one of {CHARSET!r}")
    return codes


def decode_maze(codes: np.ndarray) -> str:
    """The string of a code array (any shape, read row-major, codes 1-5)."""
    flat = np.asarray(codes, dtype=np.uint8).reshape(-1)
    if flat.size and not 1 <= flat.min() <= flat.max() <= len(CHARSET):
        raise ValueError("maze codes must be 1-5")
    return _CHAR_OF_CODE[flat].tobytes().decode("ascii")


def read_maze_csv(path: str | Path) -> MazeSet:
    """Read and validate a Maze-Hard CSV file of 30x30 mazes.

    Raises:
        ArcpipeError: naming the file, the line (``line[K]``, the header is line 1), the column
            and the problem: length, character, not exactly one S and one G, answer walls (or S,
            G) differing from the question's, an answer that is not a shortest S-G path, a
            non-integer rating.
    """
    sources, questions, answers, ratings = [], [], [], []
    for line, (source, question, answer, rating) in read_csv_rows(path):
        try:
            q, a = _check_row(question, answer)
            ratings.append(_parse_rating(rating))
        except ArcpipeError as e:
            raise e.located(file=path, split="line", index=line) from None
        sources.append(source)
        questions.append(q)
        answers.append(a)
    return MazeSet(
        sources,
        np.array(questions, dtype=np.uint8).reshape(-1, MAZE_CELLS),
        np.array(answers, dtype=np.uint8).reshape(-1, MAZE_CELLS),
        np.array(ratings, dtype=np.int32),
    )


def _check_row(question: str, answer: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes (uint8 [900] each) of one row's question and answer; ArcpipeError names the field."""
    q = _decode_field(question, "# SG", "question")
    a = _decode_field(answer, CHARSET, "answer")
    for symbol in "SG":
        found = int(np.count_nonzero(q == CHARSET.index(symbol) + 1))
        if found != 1:
            raise ArcpipeError(f"has {found} {symbol!r} cells, expected 1", field="question")
    fixed = (q != OPEN) | (a == WALL) | (a == START) | (a == GOAL)
    if not np.array_equal(q[fixed], a[fixed]):
        raise ArcpipeError("walls, S or G differ from the question's", field="answer")
    if not is_valid_shortest_path(q, a):
        raise ArcpipeError("the 'o' cells do not form a shortest path from S to G", field="answer")
    return q, a


def _decode_field(text: str, allowed: str, field: str) -> np.ndarray:
    """Codes (uint8 [900]) of one CSV field whose characters must be in ``allowed``."""
    if len(text) != MAZE_CELLS:
        raise ArcpipeError(f"has {len(text)} characters, expected {MAZE_CELLS}", field=field)
    bad = next((i for i, ch in enumerate(text) if ch not in allowed), None)
    if bad is not None:
        raise ArcpipeError(
            f"bad character {text[bad]!r} at position {bad} (allowed {allowed!r})", field=field
        )
    return encode_maze(text)


def _parse_rating(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ArcpipeError(f"{text!r} is not an integer", field="rating") from None


def write_maze_csv(path: str | Path, mazes: MazeSet) -> None:
    """Atomically write ``mazes`` as Maze-Hard CSV (deterministic bytes)."""
    rows = [
        (source, decode_maze(q), decode_maze(a), str(int(r)))
        for source, q, a, r in zip(mazes.sources, mazes.questions, mazes.answers, mazes.ratings)
    ]
    write_csv_rows(path, rows)


# --------------------------------------------------------------------------------------------
# Shortest paths
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _bfs(grid: np.ndarray, source: int, target: int, dist: np.ndarray, queue: np.ndarray) -> int:
    """Breadth-first search over non-wall cells of ``grid`` (uint8 [H, W]) from flat ``source``.

    Fills ``dist`` (int32 [H*W], -1 unreached) until ``target`` is reached (pass -1 to search
    the whole component) and returns its distance, or -1.
    """
    h, w = grid.shape
    dist[:] = -1
    dist[source] = 0
    head, tail = 0, 1
    queue[0] = source
    while head < tail:
        cell = queue[head]
        head += 1
        if cell == target:
            return dist[cell]
        r, c = cell // w, cell % w
        for k in range(4):
            nr, nc = r + STEPS[k, 0], c + STEPS[k, 1]
            if 0 <= nr < h and 0 <= nc < w:
                nxt = nr * w + nc
                if dist[nxt] < 0 and grid[nr, nc] != WALL and grid[nr, nc] != PAD:
                    dist[nxt] = dist[cell] + 1
                    queue[tail] = nxt
                    tail += 1
    return -1


@numba.njit(cache=True)
def _mark_canonical_path(answer: np.ndarray, start: int, dist: np.ndarray) -> None:
    """Mark ``o`` on the canonical path from ``start`` down the BFS distances to G (dist 0)."""
    h, w = answer.shape
    cell = start
    while dist[cell] > 1:
        r, c = cell // w, cell % w
        for k in range(4):
            nr, nc = r + STEPS[k, 0], c + STEPS[k, 1]
            if 0 <= nr < h and 0 <= nc < w and dist[nr * w + nc] == dist[cell] - 1:
                cell = nr * w + nc
                break
        answer[cell // w, cell % w] = PATH


@numba.njit(cache=True)
def _find(grid: np.ndarray, code: int) -> int:
    """Flat index of the single cell holding ``code``, or -1 when there is none or several."""
    found = -1
    flat = grid.reshape(-1)
    for i in range(flat.shape[0]):
        if flat[i] == code:
            if found >= 0:
                return -1
            found = i
    return found


@numba.njit(cache=True)
def _shortest(grid: np.ndarray, dist: np.ndarray, queue: np.ndarray) -> tuple[int, int]:
    """(start cell, shortest S-G length) with ``dist`` filled from G; length -1 if unreachable."""
    start, goal = _find(grid, START), _find(grid, GOAL)
    if start < 0 or goal < 0:
        return start, -1
    return start, _bfs(grid, goal, start, dist, queue)


def _as_grid(maze: np.ndarray) -> np.ndarray:
    """A uint8 [H, W] view: flat 900-cell input is read as 30x30."""
    grid = np.ascontiguousarray(maze, dtype=np.uint8)
    if grid.ndim == 1:
        if grid.size != MAZE_CELLS:
            raise ValueError(f"a flat maze has {MAZE_CELLS} cells, got {grid.size}")
        return grid.reshape(MAZE_SIDE, MAZE_SIDE)
    if grid.ndim != 2:
        raise ValueError(f"a maze is [900] or [H, W], got shape {grid.shape}")
    return grid


def shortest_path_length(question: np.ndarray) -> int:
    """Moves on a shortest 4-neighbour S-G path, or -1 (unreachable, or not one S and one G).

    Args:
        question: uint8 [900] or [H, W] codes.
    """
    grid = _as_grid(question)
    dist = np.empty(grid.size, np.int32)
    return int(_shortest(grid, dist, np.empty(grid.size, np.int64))[1])


def solve_maze(question: np.ndarray) -> np.ndarray | None:
    """The answer with the canonical shortest path marked, or None when G is unreachable.

    Args:
        question: uint8 [900] or [H, W] codes (without ``o``).

    Returns:
        An array of the question's shape with ``o`` (5) on the path's inner cells.
    """
    grid = _as_grid(question)
    dist = np.empty(grid.size, np.int32)
    start, length = _shortest(grid, dist, np.empty(grid.size, np.int64))
    if length < 0:
        return None
    answer = grid.copy()
    _mark_canonical_path(answer, start, dist)
    return answer.reshape(np.shape(question))


@numba.njit(cache=True)
def _valid_shortest_path(question: np.ndarray, answer: np.ndarray) -> bool:
    h, w = question.shape
    for r in range(h):
        for c in range(w):
            q, a = question[r, c], answer[r, c]
            if q == OPEN:
                if a != OPEN and a != PATH:
                    return False
            elif q != a or q == PATH:
                return False
    dist = np.empty(h * w, np.int32)
    queue = np.empty(h * w, np.int64)
    length = _shortest(question, dist, queue)[1]
    if length < 0:
        return False
    marked = 0
    track = np.full((h, w), WALL, np.uint8)
    for r in range(h):
        for c in range(w):
            if answer[r, c] == PATH or answer[r, c] == START or answer[r, c] == GOAL:
                track[r, c] = answer[r, c]
                marked += answer[r, c] == PATH
    return marked == length - 1 and _shortest(track, dist, queue)[1] == length


def is_valid_shortest_path(question: np.ndarray, answer: np.ndarray) -> bool:
    """True when ``answer`` marks a shortest S-G path of ``question`` (any one of them).

    The answer must equal the question except that free cells may hold ``o``; the ``o`` cells
    must number exactly (shortest length - 1) and connect S to G by a path of that length.

    Args:
        question: uint8 [900] or [H, W] codes 1-4.
        answer: same shape, codes 1-5.
    """
    q, a = _as_grid(question), _as_grid(answer)
    return q.shape == a.shape and bool(_valid_shortest_path(q, a))


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _next_uniform(state: np.ndarray) -> float:
    """Advance the splitmix64 ``state`` (uint64 [1]) and return a float in [0, 1)."""
    state[0] += _SPLITMIX_GAMMA
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * _SPLITMIX_MUL1
    z = (z ^ (z >> np.uint64(27))) * _SPLITMIX_MUL2
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True)
def _random_layout(grid: np.ndarray, cells: np.ndarray, state: np.ndarray) -> tuple[int, int]:
    """Draw S, G and the walls of a new layout into ``grid``; return (start, goal) cells.

    A partial Fisher-Yates shuffle of ``cells`` (a permutation of the flat indices, reused
    between calls) picks S, G and then a uniform number of walls in [3/10, 5/10] of the cells
    (as ``cells // 10 * 3`` to ``cells // 10 * 5``, inclusive), all distinct and uniform.
    """
    h, w = grid.shape
    n = h * w
    low, high = n // 10 * 3, n // 10 * 5
    num_walls = low + int(_next_uniform(state) * (high - low + 1))
    for i in range(num_walls + 2):
        j = i + int(_next_uniform(state) * (n - i))
        cells[i], cells[j] = cells[j], cells[i]
    grid[:] = OPEN
    for i in range(2, num_walls + 2):
        grid[cells[i] // w, cells[i] % w] = WALL
    grid[cells[0] // w, cells[0] % w] = START
    grid[cells[1] // w, cells[1] % w] = GOAL
    return cells[0], cells[1]


@numba.njit(cache=True)
def _meeting_distance(
    grid: np.ndarray,
    a: int,
    b: int,
    mark: np.ndarray,
    base: int,
    dist: np.ndarray,
    queue: np.ndarray,
) -> int:
    """Shortest distance between cells ``a`` and ``b`` by bidirectional BFS, or -1.

    Expands whole levels of the smaller frontier; the first level where the searches meet gives
    the exact distance. ``mark`` (int64 [H*W]) records the side that reached a cell as
    ``base + side``, so a fresh ``base`` (larger than any earlier one by 2) resets it for free.
    ``dist`` (int32 [H*W]) and ``queue`` (int64 [2, H*W]) are scratch space.
    """
    h, w = grid.shape
    head = np.zeros(2, np.int64)
    tail = np.ones(2, np.int64)
    queue[0, 0], queue[1, 0] = a, b
    mark[a], mark[b] = base, base + 1
    dist[a], dist[b] = 0, 0
    while head[0] < tail[0] and head[1] < tail[1]:
        side = 0 if tail[0] - head[0] <= tail[1] - head[1] else 1
        best = -1
        level_end = tail[side]
        while head[side] < level_end:
            cell = queue[side, head[side]]
            head[side] += 1
            r, c = cell // w, cell % w
            for k in range(4):
                nr, nc = r + STEPS[k, 0], c + STEPS[k, 1]
                if not (0 <= nr < h and 0 <= nc < w) or grid[nr, nc] == WALL:
                    continue
                nxt = nr * w + nc
                if mark[nxt] == base + 1 - side:
                    found = dist[cell] + 1 + dist[nxt]
                    best = found if best < 0 else min(best, found)
                elif mark[nxt] != base + side:
                    mark[nxt] = base + side
                    dist[nxt] = dist[cell] + 1
                    queue[side, tail[side]] = nxt
                    tail[side] += 1
        if best >= 0:
            return best
    return -1


@numba.njit(cache=True)
def _generate_maze(
    seed: np.uint64, min_path: int, question: np.ndarray, answer: np.ndarray
) -> tuple[int, int]:
    """Draw layouts from ``seed`` until one's shortest path exceeds ``min_path`` moves.

    Writes the accepted maze to ``question`` and ``answer`` (uint8 [H, W]); returns (path
    length, layouts examined).
    """
    n = question.size
    state = np.full(1, seed, np.uint64)
    cells = np.arange(n)
    mark = np.zeros(n, np.int64)
    dist = np.empty(n, np.int32)
    queue = np.empty((2, n), np.int64)
    layouts = 0
    while True:
        layouts += 1
        start, goal = _random_layout(question, cells, state)
        length = _meeting_distance(question, start, goal, mark, 2 * layouts, dist, queue)
        if length > min_path:
            _bfs(question, goal, start, dist, queue[0])
            answer[:] = question
            _mark_canonical_path(answer, start, dist)
            return length, layouts


@numba.njit(cache=True, parallel=True)
def _generate_batch(seeds: np.ndarray, side: int, min_path: int) -> tuple[np.ndarray, ...]:
    """One maze per seed, in parallel over numba's threads (each maze depends on its seed only)."""
    n = seeds.shape[0]
    questions = np.empty((n, side, side), np.uint8)
    answers = np.empty((n, side, side), np.uint8)
    lengths = np.empty(n, np.int32)
    layouts = np.empty(n, np.int64)
    for i in numba.prange(n):
        lengths[i], layouts[i] = _generate_maze(seeds[i], min_path, questions[i], answers[i])
    return questions, answers, lengths, layouts.sum()


def generate_mazes_counted(
    count: int, min_path: int, rng: np.random.Generator
) -> tuple[MazeSet, int]:
    """:func:`generate_mazes`, also returning how many random layouts were examined."""
    if count < 0 or not 0 <= min_path < MAZE_CELLS:
        raise ArcpipeError(f"need count >= 0 and 0 <= min_path < 900, got {count}, {min_path}")
    seeds = rng.integers(0, np.iinfo(np.int64).max, size=count, dtype=np.int64).astype(np.uint64)
    questions, answers, lengths, layouts = _generate_batch(seeds, MAZE_SIDE, min_path)
    mazes = MazeSet(
        [GENERATED_SOURCE] * count,
        questions.reshape(count, MAZE_CELLS),
        answers.reshape(count, MAZE_CELLS),
        lengths,
    )
    return mazes, int(layouts)


def generate_mazes(count: int, min_path: int, rng: np.random.Generator) -> MazeSet:
    """Generate 30x30 mazes whose shortest S-G path is longer than ``min_path`` moves.

    Each maze has its own splitmix64 seed drawn from ``rng``, so the same seed gives the same
    mazes whatever the number of numba threads. About 1 random layout in 100,000 passes at
    Maze-Hard's ``min_path`` of 110 (``DEFAULT_MIN_PATH``); the acceptance rate falls steeply as
    ``min_path`` grows, so very large values run practically forever.

    Args:
        count: mazes to return.
        min_path: accept only shortest paths of more than this many moves.
        rng: the only source of randomness.

    Returns:
        Questions, answers (canonical path marked) and path lengths as ratings.
    """
    return generate_mazes_counted(count, min_path, rng)[0]


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------


def dihedral_maze(grid: np.ndarray, d: int) -> np.ndarray:
    """Apply dihedral transform ``d`` (0-7, ids of :mod:`arcpipe.arc.augment`) to a maze.

    Args:
        grid: uint8 [900] (read as 30x30) or [H, W].
        d: transform id.

    Returns:
        A new array of the input's shape ([W, H] for a transposing transform of a 2-D grid).
    """
    out = np.ascontiguousarray(dihedral(_as_grid(grid), d))
    return out.reshape(-1) if np.ndim(grid) == 1 else out
