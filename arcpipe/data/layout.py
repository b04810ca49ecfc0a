"""Board layouts: which cells of the canvas an example puts in the model's sequence, at which
positions, and how a predicted board is cropped back (``model.board``).

``full`` (the reference, §1.4): all ``canvas x canvas`` cells in row-major order; cell ``(r, c)``
has position ``r * canvas + c`` (after the puzzle prefix).

``boxed``: only the cells of the task's *box* (:func:`task_box`), in row-major order of the box,
each with the position it has on the full canvas, so rotary and learned position embeddings see
the same geometry as in ``full``. The box is a property of the task, never of one example: it
holds every demonstration input and output, every test input, and the test outputs' sizes that
the demonstrations predict (a per-example box would reveal the size of a test output). A variant
whose dihedral transform transposes sees the box transposed. Translation moves the box on the
canvas (its positions), not its tokens: the reference's offset, drawn so that the grids fit the
canvas, is scaled onto the range that keeps the whole box on the canvas (:func:`boxed_offsets`).

A batch holds examples of one *bucket*: sequences of one length, boxes shorter than it filled
with filler cells (PAD token, ignored label, position :data:`FILLER`) that attention masks out,
so no real cell sees them and the result does not depend on the bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from arcpipe.arc.augment import NUM_DIHEDRAL, Augmentations, transposes
from arcpipe.arc.encode import COLOUR_OFFSET, PAD, crop_shape, tokens_to_grid
from arcpipe.errors import ArcpipeError

if TYPE_CHECKING:
    from arcpipe.data.dataset import Dataset

BOARDS = ("full", "boxed")
FILLER = -1  # position of a filler cell: masked out of attention, never supervised

Shape = tuple[int, int]


# ----------------------------------------------------------------------------- the box rule


def predicted_extent(demos: Sequence[tuple[Shape, Shape]], query: Shape, axis: int, canvas: int):
    """The largest test-output extent along ``axis`` that a rule true of every demonstration
    predicts for an input of shape ``query``; ``canvas`` when no rule fits them all.

    Rules, each from either input axis: a fixed output extent; output = input x r (r rational);
    output = input + d; output = input squared.
    """
    outs = [out[axis] for _, out in demos]
    found = [outs[0]] if len(set(outs)) == 1 else []
    for source in (axis, 1 - axis):
        ins = [inp[source] for inp, _ in demos]
        ratios = {Fraction(o, i) for o, i in zip(outs, ins)}
        if len(ratios) == 1:
            r = ratios.pop()
            found.append(-(-query[source] * r.numerator // r.denominator))  # ceil
        differences = {o - i for o, i in zip(outs, ins)}
        if len(differences) == 1:
            found.append(query[source] + differences.pop())
        if all(o == i * i for o, i in zip(outs, ins)):
            found.append(query[source] ** 2)
    return min(canvas, max(found)) if found else canvas


def _orientation_changes(demos: Sequence[tuple[Shape, Shape]]) -> bool:
    """Outputs both taller and wider than they are the other way, or turned against inputs."""

    def tall(shape: Shape) -> bool | None:
        return None if shape[0] == shape[1] else shape[0] > shape[1]

    outs = {tall(out) for _, out in demos} - {None}
    turned = any(
        tall(inp) is not None and tall(out) is not None and tall(inp) != tall(out)
        for inp, out in demos
    )
    return len(outs) > 1 or turned


def task_box(demos: Sequence[tuple[Shape, Shape]], queries: Sequence[Shape], canvas: int) -> Shape:
    """The box of a task, in cells, its EOS row and column included where they fit.

    Args:
        demos: (input shape, output shape) of every pair trained on.
        queries: input shapes of the pairs whose outputs are to be predicted (test inputs).
        canvas: the board side; no box is larger.

    The box holds every grid of ``demos`` and ``queries`` and, for each query, the output
    extents the demonstrations predict (:func:`predicted_extent`); when outputs turn (tall in
    one demonstration, wide in another), the box is square.
    """
    shapes = [s for pair in demos for s in pair] + list(queries)
    height, width = max(s[0] for s in shapes), max(s[1] for s in shapes)
    if queries and demos:
        for query in queries:
            height = max(height, predicted_extent(demos, query, 0, canvas))
            width = max(width, predicted_extent(demos, query, 1, canvas))
        if _orientation_changes(demos):
            height = width = max(height, width)
    return min(canvas, height + 1), min(canvas, width + 1)


# ----------------------------------------------------------------------------- examples


_TRANSPOSES = np.array([transposes(d) for d in range(NUM_DIHEDRAL)])


def view_boxes(boxes: np.ndarray, dihedrals: np.ndarray) -> np.ndarray:
    """(rows, columns) pairs as each example's variant sees them (swapped by transposing
    dihedrals), [B, 2]."""
    swap = _TRANSPOSES[np.asarray(dihedrals, dtype=np.int64)]
    return np.where(swap[:, None], boxes[:, ::-1], boxes)


def boxed_offsets(
    offsets: np.ndarray, extents: np.ndarray, boxes: np.ndarray, canvas: int
) -> np.ndarray:
    """Map the reference's offsets (uniform over ``[0, canvas - extent]``, the grids fitting the
    canvas) onto ``[0, canvas - box]`` (the box fitting it): ``floor(o (R_box + 1) / (R + 1))``.

    Args:
        offsets: [B, 2] the stored (row, column) offsets.
        extents: [B, 2] the larger of each example's input and output extents, in its view.
        boxes: [B, 2] each example's box, in its view.
    """
    room = canvas - extents.astype(np.int64) + 1
    box_room = canvas - boxes.astype(np.int64) + 1
    return (offsets.astype(np.int64) * box_room) // room


def box_positions(boxes: np.ndarray, offsets: np.ndarray, canvas: int, length: int) -> np.ndarray:
    """Canvas positions of each example's box cells, row-major, then fillers: int64 [B, length]."""
    out = np.full((len(boxes), length), FILLER, dtype=np.int64)
    for b, ((h, w), (r0, c0)) in enumerate(zip(boxes.tolist(), offsets.tolist())):
        rows = np.arange(r0, r0 + h)[:, None] * canvas
        out[b, : h * w] = (rows + np.arange(c0, c0 + w)[None]).reshape(-1)
    return out


# ----------------------------------------------------------------------------- buckets


@dataclass(frozen=True)
class Bucket:
    """Boards of one sequence length."""

    length: int  # cells per board
    masked: bool  # some boxes are shorter: their fillers are masked out of attention


def plan_buckets(counts: np.ndarray, weights: np.ndarray, max_buckets: int) -> np.ndarray:
    """Sequence lengths of at most ``max_buckets`` buckets that minimise the padded cells.

    Args:
        counts: [N] cells of each kind of example (a task's box), any order.
        weights: [N] how many examples of each kind a pass over the data has.
        max_buckets: the most buckets to use (>= 1).

    Returns:
        int64 [K] increasing lengths; the last is ``counts.max()``. Each kind goes to the shortest
        bucket that holds it; the split of the sorted kinds into K runs is optimal (dynamic
        programming over the distinct counts).
    """
    values, inverse = np.unique(np.asarray(counts, dtype=np.int64), return_inverse=True)
    mass = np.bincount(inverse, weights=np.asarray(weights, dtype=np.float64))
    prefix = np.concatenate([[0.0], np.cumsum(mass)])
    n, k = len(values), min(max_buckets, len(values))
    # cost[j, i]: the best padded total of the first i values in j buckets (the last ends at i-1).
    cost = np.full((k + 1, n + 1), np.inf)
    cut = np.zeros((k + 1, n + 1), dtype=np.int64)
    cost[0, 0] = 0.0
    for j in range(1, k + 1):
        for i in range(j, n + 1):
            starts = np.arange(j - 1, i)
            totals = cost[j - 1, starts] + values[i - 1] * (prefix[i] - prefix[starts])
            best = int(np.argmin(totals))
            cost[j, i], cut[j, i] = totals[best], starts[best]
    j = int(np.argmin(cost[1:, n])) + 1
    lengths, i = [], n
    while j > 0:
        lengths.append(int(values[i - 1]))
        i, j = int(cut[j, i]), j - 1
    return np.array(sorted(lengths), dtype=np.int64)


def bucket_of(counts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The shortest bucket holding each count, int64 [N]."""
    return np.searchsorted(lengths, np.asarray(counts), side="left")


def padding_overhead(counts: np.ndarray, weights: np.ndarray, lengths: np.ndarray) -> float:
    """Share of the sequence cells that are fillers when ``counts`` go to ``lengths``' buckets."""
    padded = lengths[bucket_of(counts, lengths)] * np.asarray(weights, dtype=np.float64)
    return float(1 - (np.asarray(counts) * np.asarray(weights)).sum() / padded.sum())


# ----------------------------------------------------------------------------- crop


def crop_box(tokens: np.ndarray, box: Shape) -> np.ndarray:
    """The grid in a predicted box (its first ``h * w`` tokens), cropped as the reference's
    evaluator crops a canvas (:func:`~arcpipe.arc.encode.crop_shape`). uint8 [h', w']."""
    h, w = box
    board = np.ascontiguousarray(np.asarray(tokens[: h * w]).reshape(h, w))
    rows, cols = crop_shape(board)
    return (board[:rows, :cols] - COLOUR_OFFSET).astype(np.uint8)


# ----------------------------------------------------------------------------- a dataset's boards


class Layout:
    """The boards of one dataset under ``board``: each example's cells, positions and crop.

    Raises:
        ArcpipeError: boxed boards on a dataset without boxes (built before them, or a Sudoku or
            Maze dataset).
    """

    def __init__(self, dataset: Dataset, board: str) -> None:
        self.dataset, self.board = dataset, board
        self.canvas = dataset.canvas
        if board == "boxed" and "boxes" not in dataset.arrays:
            raise ArcpipeError(
                "model.board = boxed needs a dataset with task boxes (an ARC dataset built by "
                "this arcpipe's build-data)",
                file=dataset.path,
            )

    @property
    def boxed(self) -> bool:
        return self.board == "boxed"

    def task_cells(self) -> np.ndarray:
        """Board cells of each task's examples, int64 [T] (the canvas for ``full``)."""
        if not self.boxed:
            return np.full(len(self.dataset.tasks), self.canvas * self.canvas, dtype=np.int64)
        return np.prod(np.asarray(self.dataset.arrays["boxes"], dtype=np.int64), axis=1)

    def row_cells(self, split: str, rows: np.ndarray) -> np.ndarray:
        """Board cells of examples ``rows`` of ``split``, int64 [B]."""
        return self.task_cells()[self._records(split, rows)[1]]

    def buckets(
        self, split: str, rows: np.ndarray, max_buckets: int
    ) -> tuple[list[Bucket], np.ndarray]:
        """At most ``max_buckets`` buckets for ``rows`` (each example weighs one) and each
        row's bucket, int64 [N] (full boards: one bucket, the canvas)."""
        rows = np.asarray(rows)
        if not self.boxed:
            full = Bucket(self.canvas * self.canvas, False)
            return [full], np.zeros(len(rows), dtype=np.int64)
        cells = self.row_cells(split, rows)
        kinds, counts = np.unique(cells, return_counts=True)
        lengths = plan_buckets(kinds, counts, max_buckets) if len(kinds) else np.array([1])
        which = bucket_of(cells, lengths)
        buckets = [
            Bucket(int(n), bool((cells[which == b] < n).any())) for b, n in enumerate(lengths)
        ]
        return buckets, which

    def batches(
        self, split: str, rows: np.ndarray, size: int, max_buckets: int
    ) -> list[tuple[np.ndarray, Bucket]]:
        """``rows`` in batches of at most ``size`` of one bucket each, in the order of ``rows``
        within a bucket, buckets by length (full boards: consecutive batches of one bucket)."""
        rows = np.asarray(rows)
        buckets, which = self.buckets(split, rows, max_buckets)
        out = []
        for b, bucket in enumerate(buckets):
            mine = rows[which == b]
            out += [(mine[i : i + size], bucket) for i in range(0, len(mine), size)]
        return out

    def _records(
        self, split: str, rows: np.ndarray, fresh: Augmentations | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The example records of ``rows`` (at ``fresh``'s offsets), their tasks and their
        dihedral ids (the variants', or ``fresh``'s)."""
        records = self.dataset.records(split, rows, fresh)
        variants = np.asarray(self.dataset.arrays["variants"][records[:, 0]])
        dihedrals = variants[:, 1] if fresh is None else fresh.dihedrals
        return records, variants[:, 0].astype(np.int64), dihedrals

    def boxes(self, split: str, rows: np.ndarray, fresh: Augmentations | None = None) -> np.ndarray:
        """Each example's box in its view's frame, int64 [B, 2] (the canvas for ``full``)."""
        _, tasks, dihedrals = self._records(split, rows, fresh)
        return self._view_boxes(tasks, dihedrals)

    def _view_boxes(self, tasks: np.ndarray, dihedrals: np.ndarray) -> np.ndarray:
        if not self.boxed:
            return np.full((len(tasks), 2), self.canvas, dtype=np.int64)
        return view_boxes(
            np.asarray(self.dataset.arrays["boxes"], dtype=np.int64)[tasks], dihedrals
        )

    def encode(
        self, split: str, rows: np.ndarray, length: int, fresh: Augmentations | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Boxed boards of examples ``rows`` (seen through ``fresh`` if given), ``length`` cells
        each (fillers after the box).

        Returns:
            inputs, labels (PAD where unsupervised, fillers included) uint8 [B, length],
            puzzle ids int32 [B], canvas positions int64 [B, length] (:data:`FILLER` for fillers).
        """
        records, tasks, dihedrals = self._records(split, rows, fresh)
        boxes = self._view_boxes(tasks, dihedrals)
        extents = view_extents(self.dataset, records[:, 1], dihedrals)
        shifted = records.copy()
        shifted[:, 2:4] = boxed_offsets(records[:, 2:4], extents, boxes, self.canvas)
        inputs, labels, puzzle_ids = self.dataset.encode_records(shifted, fresh)  # full canvases
        positions = box_positions(boxes, shifted[:, 2:4], self.canvas, length)
        cells = np.maximum(positions, 0)
        filler = positions == FILLER
        inputs = np.where(filler, PAD, np.take_along_axis(inputs, cells, 1)).astype(np.uint8)
        labels = np.where(filler, PAD, np.take_along_axis(labels, cells, 1)).astype(np.uint8)
        return inputs, labels, puzzle_ids, positions

    def crop(self, tokens: np.ndarray, box: Shape) -> np.ndarray:
        """The grid a predicted board holds (``box``: the example's box in its view)."""
        if not self.boxed:
            return tokens_to_grid(tokens, self.canvas)
        return crop_box(tokens, (int(box[0]), int(box[1])))


def view_extents(dataset: Dataset, pair_ids: np.ndarray, dihedrals: np.ndarray) -> np.ndarray:
    """The larger of each pair's input and output extents, in its variant's frame, [B, 2]."""
    grids = np.asarray(dataset.arrays["grids"])
    pairs = np.asarray(dataset.arrays["pairs"])[np.asarray(pair_ids)]
    extents = grids[pairs[:, 0], 1:3]
    known = pairs[:, 1] >= 0
    extents[known] = np.maximum(extents[known], grids[pairs[known, 1], 1:3])
    return view_boxes(extents, dihedrals)
