"""Cross-view scores: a test input's top grids scored under all its views (product of experts).

A view answers only in its own frame, but its final per-cell distribution can score any grid: map
the grid into the view's frame (its colours, then its dihedral transform, placed on the view's
board with its EOS row and column, :func:`arcpipe.arc.encode.label_cells`) and add up the
view's log-probabilities of the cells a label of that grid would supervise (colours and EOS
border, so the shape counts; PAD cells are never supervised and are left out). For each test
input, once all its views are predicted, the top K distinct grids by the ``count`` rule are
scored under every one of its views, including views that answered something else; the sums
over views (and the numbers of cells scored) are kept in the candidates file, from which
:mod:`arcpipe.arc.vote` ranks by them.

Memory stays bounded: a view's log-probability table (seq_len x vocab float32) is held only until
its test input is complete, and prediction visits views so that few test inputs are open at a
time (:func:`arcpipe.predict.plan_batches`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from arcpipe.arc.augment import Transform
from arcpipe.arc.candidates import Candidates, score_arrays
from arcpipe.arc.encode import label_cells
from arcpipe.arc.vote import vote
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import Layout


def view_logprob(
    table: np.ndarray, grid: np.ndarray, transform: Transform, frame: dict
) -> tuple[float, int]:
    """Log-probability of ``grid`` (in its task's frame) under one view's per-cell table.

    Args:
        table: float [board cells, vocab] the view's final per-cell log-probabilities.
        grid: uint8 [h, w] a candidate answer in the original task's frame and colours.
        transform: the view's augmentation (how the task's grids appear in it).
        frame: the view's board, ``{"canvas": side, "offset": (row, col), "box": (h, w) or
            None}``: with a box (boxed boards, untranslated test views) the table holds the
            box's cells in row-major order, and label cells outside it are not scored.

    Returns:
        the summed log-probability of the grid's label cells, and how many cells that is.
    """
    canvas = frame["canvas"]
    positions, tokens = label_cells(transform.view(grid), canvas, frame["offset"])
    if frame.get("box") is not None:
        rows, cols = np.divmod(positions, canvas)
        height, width = frame["box"]
        inside = (rows < height) & (cols < width)
        positions, tokens = rows[inside] * width + cols[inside], tokens[inside]
    return float(table[positions, tokens].sum(dtype=np.float64)), len(positions)


def view_frames(
    dataset: Dataset, split: str, rows: np.ndarray, layout: Layout | None = None
) -> list[dict]:
    """Per example row: ``{"row", "pair", "transform", "frame"}``, its row, the dataset pair id
    of its test input, its augmentation and its board (see :func:`view_logprob`)."""
    records = np.asarray(dataset.examples(split)[np.asarray(rows)])
    boxes = layout.boxes(split, rows) if layout is not None and layout.boxed else None
    return [
        {
            "row": int(row),
            "pair": int(record[1]),
            "transform": dataset.view(split, int(row)).transform,
            "frame": {
                "canvas": dataset.canvas,
                "offset": (int(record[2]), int(record[3])),
                "box": None if boxes is None else tuple(int(x) for x in boxes[k]),
            },
        }
        for k, (row, record) in enumerate(zip(rows, records))
    ]


@dataclass
class _Open:
    """One test input whose views are still arriving."""

    expected: int  # views planned for it
    transforms: list[Transform] = field(default_factory=list)
    frames: list[dict] = field(default_factory=list)
    tables: list[np.ndarray] = field(default_factory=list)
    answers: list[tuple] = field(default_factory=list)  # (task, test, view, q, logprob, grid)


class CrossViewScorer:
    """Collects views per test input and scores its top ``k`` grids once all of them are in.

    Args:
        k: grids per test input to score (the top ``k`` by the count rule).
        expected: views to expect per test input, keyed by the dataset pair id of the input.
        task_ids, num_tests: the target tasks, as in the candidates.
    """

    def __init__(
        self, k: int, expected: Counter, task_ids: list[str], num_tests: np.ndarray
    ) -> None:
        self.k = k
        self.expected = expected
        self.task_ids = task_ids
        self.num_tests = num_tests
        self.open: dict[int, _Open] = {}
        self.seconds = 0.0  # time spent in add() and finish()

    def add(
        self,
        dataset: Dataset,
        split: str,
        rows: np.ndarray,
        tables: np.ndarray,
        candidates: Candidates,
        layout: Layout | None = None,
    ) -> tuple[np.ndarray, ...]:
        """Take one batch of views; return the scores of the test inputs it completes.

        Args:
            dataset, split, rows: the batch's example rows.
            tables: float [B, board cells, vocab] each view's final per-cell log-probabilities.
            candidates: the batch's candidates (malformed views have none).
            layout: the boards' layout (full boards when None).

        Returns:
            ``(scored_view, scored_over, scored_logprob, scored_cells)`` arrays, see
            :class:`~arcpipe.arc.candidates.Candidates`.
        """
        start = time.perf_counter()
        answer_of = {int(v): i for i, v in enumerate(candidates.view)}
        done = []
        for b, view in enumerate(view_frames(dataset, split, rows, layout)):
            entry = self.open.setdefault(view["pair"], _Open(self.expected[view["pair"]]))
            entry.transforms.append(view["transform"])
            entry.frames.append(view["frame"])
            entry.tables.append(np.array(tables[b], dtype=np.float32))  # a copy: own memory
            i = answer_of.get(view["row"])
            if i is not None:
                c = candidates
                entry.answers.append(
                    (c.task[i], c.test[i], c.view[i], c.q_halt[i], c.logprob[i], c.grid(i))
                )
            if len(entry.tables) == entry.expected:
                done.append(view["pair"])
        scores = self._score(done)
        self.seconds += time.perf_counter() - start
        return scores

    def finish(self) -> tuple[np.ndarray, ...]:
        """Score the test inputs still open (a stopped run), over the views they got."""
        start = time.perf_counter()
        scores = self._score(list(self.open))
        self.seconds += time.perf_counter() - start
        return scores

    def _score(self, pairs: list[int]) -> tuple[np.ndarray, ...]:
        records = [r for pair in pairs for r in self._score_one(self.open.pop(pair))]
        return score_arrays(list(zip(*records)) if records else None)

    def _score_one(self, entry: _Open) -> list[tuple[int, int, float, int]]:
        """Per top grid: view row of its first candidate, views, summed log-probability, cells."""
        if not entry.answers:
            return []
        columns = list(zip(*entry.answers))
        own = Candidates.from_grids(self.task_ids, self.num_tests, *columns[:5], list(columns[5]))
        votes = vote(own, "count")
        records = []
        for g in votes.top(int(own.task[0]), int(own.test[0]), self.k):
            grid = votes.grid(g)
            scored = [
                view_logprob(table, grid, transform, frame)
                for table, transform, frame in zip(entry.tables, entry.transforms, entry.frames)
            ]
            total, cells = (sum(column) for column in zip(*scored))
            records.append((int(own.view[votes.representative[g]]), len(scored), total, cells))
        return records
