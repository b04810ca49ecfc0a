"""The build's tasks: every source read, one task at a time, into one packed table, in build order.

Each task's grids go straight into a grid store (``cells``, ``grids``, ``pairs``: the arrays the
dataset directory keeps, see :mod:`arcpipe.data.dataset`), so a corpus of 100k tasks is held as a
few numpy arrays, never as Python objects per grid. Build order: the training sources in the order
given, each sorted by task id, then the target (eval) source. A task id seen again in a later
source merges with the first copy when the two agree (:meth:`arcpipe.arc.tasks.Task.merged_with`:
test outputs known to either are kept, and the task is a target when either copy is); copies that
disagree stay apart as a *conflict*, which :mod:`arcpipe.data.leakage` resolves or reports.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from arcpipe.arc.corpora import SourceSpec, iter_source, source_format
from arcpipe.arc.tasks import Pair, Task
from arcpipe.errors import ArcpipeError

TRAIN, TARGET = 0, 1  # task roles before the validation split is drawn


class Packer:
    """A growing grid store and task list; tasks are added one at a time."""

    def __init__(self) -> None:
        self.cells = bytearray()
        self.grid_rows = array("q")  # (first cell, height, width) per grid, flat
        self.pair_rows = array("q")  # (input grid, output grid or -1) per pair, flat
        self.first_pair = array("q", [0])
        self.num_train = array("q")
        self.ids: list[str] = []
        self.files: list[str] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, task: Task) -> int:
        """Append a task; returns its row."""
        for pair in task.train + task.test:
            self.pair_rows.append(self._add_grid(pair.input))
            self.pair_rows.append(-1 if pair.output is None else self._add_grid(pair.output))
        self.first_pair.append(len(self.pair_rows) // 2)
        self.num_train.append(len(task.train))
        self.ids.append(task.id)
        self.files.append(task.file)
        return len(self.ids) - 1

    def _add_grid(self, grid: np.ndarray) -> int:
        self.grid_rows.extend((len(self.cells), *grid.shape))
        self.cells += np.ascontiguousarray(grid, dtype=np.uint8).tobytes()
        return len(self.grid_rows) // 3 - 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """cells uint8 [C], grids int64 [G, 3], pairs int32 [P, 2], first_pair int64 [T + 1]."""
        return (
            np.frombuffer(bytes(self.cells), dtype=np.uint8),
            np.frombuffer(self.grid_rows, dtype=np.int64).reshape(-1, 3).copy(),
            np.frombuffer(self.pair_rows, dtype=np.int64).reshape(-1, 2).astype(np.int32),
            np.frombuffer(self.first_pair, dtype=np.int64).copy(),
        )

    def task(self, row: int) -> Task:
        """Task ``row`` as a :class:`Task` again (for the few tasks that need comparing)."""
        cells = np.frombuffer(self.cells, dtype=np.uint8)
        grids = np.frombuffer(self.grid_rows, dtype=np.int64).reshape(-1, 3)

        def grid(g: int) -> np.ndarray | None:
            if g < 0:
                return None
            start, h, w = (int(x) for x in grids[g])
            return cells[start : start + h * w].reshape(h, w).copy()

        pairs = np.frombuffer(self.pair_rows, dtype=np.int64).reshape(-1, 2)
        rows = pairs[self.first_pair[row] : self.first_pair[row + 1]]
        made = tuple(Pair(grid(i), grid(o)) for i, o in rows.tolist())
        n = self.num_train[row]
        return Task(self.ids[row], made[:n], made[n:], self.files[row])


def pack_grids(tasks: Sequence[Task]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Store every grid of ``tasks`` once, flattened back to back (see :meth:`Packer.arrays`)."""
    packer = Packer()
    for task in tasks:
        packer.add(task)
    return packer.arrays()


@dataclass
class SourceInfo:
    """One source of a build, as the manifest records it."""

    spec: SourceSpec
    role: str  # "train" or "eval"
    format: str
    tasks: int = 0  # tasks read (re-ARC and examples lists: groups)


@dataclass
class TaskTable:
    """The build's tasks in build order, with their grids packed.

    ``conflicts`` lists (row, row) pairs: the same id with content that does not merge.
    """

    ids: list[str]
    files: list[str]
    role: np.ndarray  # int8 [T], TRAIN or TARGET
    source: np.ndarray  # int32 [T], index into the build's sources
    first_pair: np.ndarray  # int64 [T + 1]
    num_train: np.ndarray  # int64 [T]
    cells: np.ndarray
    grids: np.ndarray
    pairs: np.ndarray
    sources: list[SourceInfo]
    conflicts: list[tuple[int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_test(self) -> np.ndarray:
        return np.diff(self.first_pair) - self.num_train

    def task_of_pair(self) -> np.ndarray:
        """int64 [P]: the task row of every pair."""
        return np.repeat(np.arange(len(self)), np.diff(self.first_pair))

    def test_pair_mask(self) -> np.ndarray:
        """bool [P]: which pairs are test pairs (the others are demonstrations)."""
        counts = np.diff(self.first_pair)
        local = np.arange(len(self.pairs)) - np.repeat(self.first_pair[:-1], counts)
        return local >= np.repeat(self.num_train, counts)

    def select(self, rows: Sequence[int], ids: list[str] | None = None) -> TaskTable:
        """The tasks ``rows`` in that order, grids packed anew (as :func:`pack_grids` would)."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = np.diff(self.first_pair)[rows]
        pair_ids = _ranges(self.first_pair[rows], counts)
        old = self.pairs[pair_ids]
        known = old[:, 1] >= 0
        grid_ids = np.stack([old[:, 0], np.where(known, old[:, 1], -1)], axis=1).reshape(-1)
        grid_ids = grid_ids[grid_ids >= 0]  # input then output of every pair, in order
        new_pairs = np.full(old.shape, -1, dtype=np.int64)
        per_pair = 1 + known.astype(np.int64)
        first_grid = np.cumsum(per_pair) - per_pair
        new_pairs[:, 0] = first_grid
        new_pairs[known, 1] = first_grid[known] + 1
        sizes = self.grids[grid_ids, 1] * self.grids[grid_ids, 2]
        cells = self.cells[_ranges(self.grids[grid_ids, 0], sizes)]
        starts = np.cumsum(sizes) - sizes
        remap = {r: i for i, r in enumerate(rows.tolist())}
        return TaskTable(
            ids=[self.ids[r] for r in rows] if ids is None else ids,
            files=[self.files[r] for r in rows],
            role=self.role[rows],
            source=self.source[rows],
            first_pair=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            num_train=self.num_train[rows],
            cells=cells,
            grids=np.column_stack([starts, self.grids[grid_ids, 1:3]]).astype(np.int64),
            pairs=new_pairs.astype(np.int32),
            sources=self.sources,
            conflicts=[
                (remap[a], remap[b]) for a, b in self.conflicts if a in remap and b in remap
            ],
        )


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for every (s, c), int64."""
    counts = np.asarray(counts, dtype=np.int64)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(np.asarray(starts, dtype=np.int64), counts) + offsets


# ----------------------------------------------------------------------------- reading


def read_tasks(
    train: Sequence[SourceSpec],
    target: SourceSpec,
    canvas: int,
    pairs_per_task: int,
    only: tuple[str, ...] | None = None,
) -> TaskTable:
    """Read, validate and merge every source into one table in build order.

    Args:
        train: the training sources; target: the eval source.
        canvas: the largest grid side allowed.
        pairs_per_task: the demonstration-group size of re-ARC and ``examples`` lists.
        only: keep just the tasks with these ids (``--tasks``).

    Raises:
        ArcpipeError: a source is missing or invalid, an id repeats inside one source, or
            ``only`` names an id no source has.
    """
    packer = Packer()
    infos, order, source_of = [], [], []
    for index, spec in enumerate([*train, target]):
        start = len(packer)
        for task in iter_source(spec.path, canvas, pairs_per_task):
            packer.add(task)
        rows = range(start, len(packer))
        _check_unique_ids(packer, rows)
        order += sorted(rows, key=packer.ids.__getitem__)
        source_of += [index] * len(rows)
        role = "eval" if index == len(train) else "train"
        infos.append(SourceInfo(spec, role, source_format(spec.path), len(rows)))
    entries, conflicts = _merge_ids(packer, order, np.array(source_of), len(train))
    if only is not None:
        known = set(packer.ids[e.row] for e in entries)
        unknown = [t for t in only if t not in known]
        if unknown:
            raise ArcpipeError(f"--tasks names unknown task id {unknown[0]!r}")
        wanted = set(only)
        entries = [e for e in entries if packer.ids[e.row] in wanted]
    return _table(packer, entries, conflicts, infos)


@dataclass
class _Entry:
    row: int  # the packer row holding the task's (merged) content
    source: int  # the first source the id appeared in
    target: bool


def _check_unique_ids(packer: Packer, rows: range) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        first = seen.setdefault(packer.ids[row], row)
        if first != row:
            raise ArcpipeError(
                f"task id also used by {packer.files[first]}",
                file=packer.files[row],
                task=packer.ids[row],
            )


def _merge_ids(
    packer: Packer, order: list[int], source_of: np.ndarray, num_train: int
) -> tuple[list[_Entry], list[tuple[_Entry, _Entry]]]:
    """One entry per task in build order; repeats of an id merge when they agree."""
    entries: list[_Entry] = []
    first_of: dict[str, _Entry] = {}
    conflicts = []
    for row in order:
        source = int(source_of[row])
        entry = _Entry(row, source, source == num_train)
        first = first_of.get(packer.ids[row])
        if first is None:
            first_of[packer.ids[row]] = entry
            entries.append(entry)
            continue
        merged = packer.task(first.row).merged_with(packer.task(row))
        if merged is None:
            conflicts.append((first, entry))
            entries.append(entry)
            continue
        first.row = packer.add(merged)
        first.target = first.target or entry.target
    return entries, conflicts


def _table(
    packer: Packer,
    entries: list[_Entry],
    conflicts: list[tuple[_Entry, _Entry]],
    infos: list[SourceInfo],
) -> TaskTable:
    cells, grids, pairs, first_pair = packer.arrays()
    position = {id(e): i for i, e in enumerate(entries)}
    whole = TaskTable(
        ids=packer.ids,
        files=packer.files,
        role=np.zeros(len(packer), dtype=np.int8),
        source=np.zeros(len(packer), dtype=np.int32),
        first_pair=first_pair,
        num_train=np.frombuffer(packer.num_train, dtype=np.int64).copy(),
        cells=cells,
        grids=grids,
        pairs=pairs,
        sources=infos,
    )
    for e in entries:
        whole.role[e.row] = TARGET if e.target else TRAIN
        whole.source[e.row] = e.source
    table = whole.select([e.row for e in entries])
    table.conflicts = [
        (position[id(a)], position[id(b)])
        for a, b in conflicts
        if id(a) in position and id(b) in position
    ]
    return table
