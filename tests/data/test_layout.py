"""Boxed boards: the box rule, positions on the canvas, offsets, buckets, crop, and the encoding
against the full canvas it is cut from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import simple_task, write_task

from arcpipe.arc.augment import Augmentations, Transform
from arcpipe.arc.encode import COLOUR_OFFSET, EOS, IGNORE, PAD, grid_to_tokens
from arcpipe.arc.presets import resolve_preset
from arcpipe.arc.tasks import load_source
from arcpipe.data.build import BuildOptions, build_arc_dataset
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import (
    FILLER,
    Bucket,
    Layout,
    box_positions,
    boxed_offsets,
    crop_box,
    padding_overhead,
    plan_buckets,
    predicted_extent,
    task_box,
)
from arcpipe.data.sampler import draw_augmentations, encode_batch

# ----------------------------------------------------------------------------- the box rule


def test_box_holds_every_grid_plus_eos_where_it_fits() -> None:
    demos = [((3, 4), (5, 2)), ((2, 2), (2, 2))]
    assert task_box(demos, [], 30) == (6, 5)  # 5 rows, 4 columns, then EOS row and column
    assert task_box([((30, 7), (30, 7))], [], 30) == (30, 8)  # no EOS row below 30 rows
    assert task_box(demos, [(9, 1)], 30)[0] >= 10  # a test input counts too


@pytest.mark.parametrize(
    ("demos", "query", "expected"),
    [
        ([((3, 3), (6, 6)), ((4, 5), (8, 10))], (7, 2), (14, 4)),  # output = 2 x input
        ([((3, 3), (9, 9)), ((2, 5), (9, 9))], (7, 7), (9, 9)),  # a fixed output size
        ([((3, 3), (4, 5)), ((6, 2), (7, 4))], (10, 10), (11, 12)),  # output = input + d
        ([((3, 3), (9, 9)), ((4, 4), (16, 16))], (5, 5), (25, 25)),  # output = input squared
        ([((1, 13), (13, 13)), ((1, 5), (5, 5))], (1, 17), (17, 17)),  # rows from input width
        ([((4, 4), (8, 8)), ((4, 4), (12, 12))], (3, 3), (30, 30)),  # no rule: the canvas
    ],
)
def test_predicted_test_output_extents(demos, query, expected) -> None:
    got = tuple(predicted_extent(demos, query, axis, 30) for axis in (0, 1))
    assert got == expected


def test_outputs_that_turn_make_the_box_square() -> None:
    turned = [((5, 17), (17, 5)), ((3, 11), (11, 3))]
    assert task_box(turned, [(4, 9)], 30)[0] == task_box(turned, [(4, 9)], 30)[1]
    upright = [((5, 17), (5, 17)), ((3, 11), (3, 11))]
    assert task_box(upright, [(4, 9)], 30) == (6, 18)


@pytest.mark.parametrize("preset", ["arc-agi-1", "arc-agi-2"])
def test_box_rule_holds_the_test_outputs_of_the_evaluation_sets(shared_data, preset) -> None:
    """At least 99.5% of the test outputs fit their task's box (the rule sees only the
    demonstrations and the test inputs)."""
    tasks = load_source(resolve_preset(preset, shared_data).eval)
    fit = total = 0
    for task in tasks:
        demos = [(p.input.shape, p.output.shape) for p in task.train]
        height, width = task_box(demos, [p.input.shape for p in task.test], 30)
        for pair in task.test:
            h, w = pair.output.shape
            total += 1
            # The grid and, below 30, its EOS row and column inside the box.
            fit += min(30, h + 1) <= height and min(30, w + 1) <= width
    assert fit / total >= 0.995, (fit, total)


# ----------------------------------------------------------------------------- geometry


def test_box_positions_are_canvas_positions_row_major_then_fillers() -> None:
    positions = box_positions(np.array([[2, 3]]), np.array([[4, 5]]), 10, 8)
    assert positions.tolist() == [[45, 46, 47, 55, 56, 57, FILLER, FILLER]]


def test_boxed_offsets_keep_the_box_on_the_canvas_and_spread_over_its_range() -> None:
    extent, box, canvas = 5, 9, 30
    reference = np.arange(canvas - extent + 1)  # every offset the reference can draw
    mapped = boxed_offsets(
        np.stack([reference, reference], 1),
        np.full((len(reference), 2), extent),
        np.full((len(reference), 2), box),
        canvas,
    )[:, 0]
    assert mapped[0] == 0 and mapped.max() == canvas - box  # origin kept, whole range reached
    assert np.all(np.diff(mapped) >= 0)  # order kept
    counts = np.bincount(mapped)
    assert counts.min() >= 1 and counts.max() - counts.min() <= 1  # as even as integers allow


def test_crop_box_reads_the_grid_of_a_rectangular_box() -> None:
    grid = np.arange(6, dtype=np.uint8).reshape(2, 3)
    board = np.full((4, 5), PAD, dtype=np.uint8)
    board[:2, :3] = grid + COLOUR_OFFSET
    board[2, :3] = EOS
    board[:2, 3] = EOS
    assert np.array_equal(crop_box(board.reshape(-1), (4, 5)), grid)
    filled = np.full((3, 7), COLOUR_OFFSET + 4, dtype=np.uint8)  # a grid filling its box
    assert crop_box(filled.reshape(-1), (3, 7)).shape == (3, 7)


# ----------------------------------------------------------------------------- buckets


def test_buckets_minimise_the_padded_cells() -> None:
    counts = np.array([10, 12, 40, 41, 100])
    weights = np.array([5, 5, 1, 1, 1])
    lengths = plan_buckets(counts, weights, 3)
    assert lengths.tolist() == [12, 41, 100]
    best = padding_overhead(counts, weights, lengths)
    for a in range(10, 100):  # every other split into three buckets pads more
        for b in range(a + 1, 100):
            other = np.array([a, b, 100])
            if (counts <= other.max()).all() and (np.searchsorted(other, counts) < 3).all():
                assert padding_overhead(counts, weights, other) >= best - 1e-12
    assert plan_buckets(counts, weights, 1).tolist() == [100]
    assert plan_buckets(counts, weights, 9).tolist() == [10, 12, 40, 41, 100]


# ----------------------------------------------------------------------------- on a dataset


@pytest.fixture(scope="module")
def boxed_data(tmp_path_factory) -> Dataset:
    """Small tasks of several sizes on a 12-cell canvas, translated."""
    root = tmp_path_factory.mktemp("layout")
    train, target = root / "train", root / "eval"
    for i, size in enumerate((2, 3, 5)):
        write_task(train, f"t{i}", simple_task(i, n_train=3, n_test=1, size=size))
    write_task(target, "goal", simple_task(9, n_train=2, n_test=2, size=4))
    build_arc_dataset([train], target, root / "ds", BuildOptions(num_aug=6, canvas=12), quiet=True)
    return Dataset.open(root / "ds")


def test_boxed_boards_are_the_full_canvas_cut_to_the_box(boxed_data: Dataset) -> None:
    layout = Layout(boxed_data, "boxed")
    rows = np.arange(len(boxed_data.examples("train")))
    length = int(layout.row_cells("train", rows).max()) + 3  # some fillers everywhere
    inputs, labels, ids, positions = layout.encode("train", rows, length)
    boxes = layout.boxes("train", rows)
    records = np.asarray(boxed_data.examples("train"))
    assert (records[:, 2:4] > 0).any()  # translated examples are among them
    canvas = boxed_data.canvas
    for b, row in enumerate(rows):
        cells = positions[b][positions[b] != FILLER]
        assert len(cells) == boxes[b].prod() and len(set(cells.tolist())) == len(cells)
        r0, c0 = divmod(int(cells[0]), canvas)
        assert r0 + boxes[b][0] <= canvas and c0 + boxes[b][1] <= canvas  # on the canvas
        # Scattered back onto a canvas, the box is the full board at the box's offset.
        shifted = records[row].copy()
        shifted[2:4] = (r0, c0)
        full_in, full_out, full_id = boxed_data.encode_records(shifted[None])
        board = np.full(canvas * canvas, PAD, np.uint8)
        board[cells] = inputs[b][: len(cells)]
        assert np.array_equal(board, full_in[0])  # nothing of the grid lies outside the box
        board[cells] = labels[b][: len(cells)]
        assert np.array_equal(board, full_out[0])
        assert ids[b] == full_id[0]
        assert (inputs[b][len(cells) :] == PAD).all() and (labels[b][len(cells) :] == PAD).all()
    batch = encode_batch(boxed_data, "train", rows, layout, Bucket(length, True))
    assert torch.equal(batch.mask, batch.positions != FILLER)
    assert (batch.labels[~batch.mask] == IGNORE).all()


def test_test_views_are_untranslated_and_crop_back_to_their_grids(boxed_data: Dataset) -> None:
    layout = Layout(boxed_data, "boxed")
    rows = np.arange(len(boxed_data.examples("test")))
    inputs, _, _, positions = layout.encode("test", rows, int(layout.row_cells("test", rows).max()))
    for b, row in enumerate(rows):
        assert positions[b][0] == 0  # the box sits at the canvas origin
        view = boxed_data.view("test", int(row))
        task = next(t for t in boxed_data.tasks if t.id == view.task_id)
        grid = boxed_data.task_pairs(task)[task.num_train + view.pair_index][0]
        assert np.array_equal(layout.crop(inputs[b], layout.boxes("test", [row])[0]),
                              view.transform.view(grid))  # fmt: skip


def test_full_layout_is_the_canvas(boxed_data: Dataset) -> None:
    layout = Layout(boxed_data, "full")
    rows = np.arange(5)
    assert (layout.row_cells("train", rows) == boxed_data.seq_len).all()
    grid = np.ones((3, 2), np.uint8)
    tokens = grid_to_tokens(grid, boxed_data.canvas)
    assert np.array_equal(layout.crop(tokens, layout.boxes("train", rows)[0]), grid)
    batches = layout.batches("train", np.arange(10), 4, max_buckets=6)
    assert [len(c) for c, _ in batches] == [4, 4, 2]
    assert all(b == Bucket(boxed_data.seq_len, False) for _, b in batches)


# ----------------------------------------------------------------------------- fresh augmentations


def stored_augmentations(dataset: Dataset, split: str, rows: np.ndarray) -> Augmentations:
    """The augmentations the dataset's own variants give examples ``rows``."""
    records = np.asarray(dataset.examples(split)[rows])
    variants = np.asarray(dataset.arrays["variants"])[records[:, 0]]
    colours = np.asarray(dataset.arrays["colours"])[records[:, 0]]
    return Augmentations(variants[:, 1].astype(np.int64), colours, records[:, 2:4].astype(np.int64))


@pytest.mark.parametrize("board", ["full", "boxed"])
def test_fresh_augmentations_equal_to_the_variants_encode_as_the_variants_do(
    boxed_data: Dataset, board: str
) -> None:
    layout = Layout(boxed_data, board)
    rows = np.arange(len(boxed_data.examples("train")))
    bucket = Bucket(int(layout.row_cells("train", rows).max()), True)
    stored = encode_batch(boxed_data, "train", rows, layout, bucket, "task")
    fresh = stored_augmentations(boxed_data, "train", rows)
    again = encode_batch(boxed_data, "train", rows, layout, bucket, "task", fresh)
    for name in ("inputs", "labels", "puzzle_ids", "positions", "augmentation"):
        mine, theirs = getattr(stored, name), getattr(again, name)
        assert (mine is None and theirs is None) or torch.equal(mine, theirs), name


@pytest.mark.parametrize("board", ["full", "boxed"])
def test_a_fresh_view_is_its_pair_seen_through_the_drawn_augmentation(
    boxed_data: Dataset, board: str
) -> None:
    layout = Layout(boxed_data, board)
    rows = np.arange(len(boxed_data.examples("train")))
    fresh = draw_augmentations(boxed_data, "train", rows, np.random.default_rng(3))
    # Every dihedral, colour maps fixing 0 and permuting 1-9, translations on the canvas.
    assert set(fresh.dihedrals.tolist()) == set(range(8))
    assert (fresh.colours[:, 0] == 0).all()
    assert (np.sort(fresh.colours[:, 1:], axis=1) == np.arange(1, 10)).all()
    assert (fresh.offsets > 0).any()
    assert not np.array_equal(
        fresh.colours, stored_augmentations(boxed_data, "train", rows).colours
    )
    bucket = Bucket(int(layout.row_cells("train", rows).max()), True)
    batch = encode_batch(boxed_data, "train", rows, layout, bucket, "task", fresh)
    boxes = layout.boxes("train", rows, fresh)
    canvas = boxed_data.canvas
    for b, row in enumerate(rows):
        view = boxed_data.view("train", int(row))
        task = next(t for t in boxed_data.tasks if t.id == view.task_id)
        grid_in, grid_out = boxed_data.task_pairs(task)[view.pair_index]
        transform = Transform(int(fresh.dihedrals[b]), fresh.colours[b])
        assert batch.augmentation[b].tolist() == [transform.dihedral, *transform.colours.tolist()]
        assert batch.puzzle_ids[b] == boxed_data.tasks.index(task)
        inputs, labels = batch.inputs[b].numpy(), batch.labels[b].numpy()
        labels = np.where(labels == IGNORE, PAD, labels).astype(np.uint8)
        if board == "full":  # the grid sits at its offset on the canvas
            r0, c0 = fresh.offsets[b]
            inputs = inputs.reshape(canvas, canvas)[r0:, c0:].reshape(-1)
            labels = labels.reshape(canvas, canvas)[r0:, c0:].reshape(-1)
            shape = (canvas - r0, canvas - c0)
            inputs, labels = (
                np.pad(t.reshape(shape), ((0, r0), (0, c0))) for t in (inputs, labels)
            )
            inputs, labels = inputs.reshape(-1), labels.reshape(-1)
        assert np.array_equal(layout.crop(inputs, boxes[b]), transform.view(grid_in)), b
        assert np.array_equal(layout.crop(labels, boxes[b]), transform.view(grid_out)), b


def test_boxed_needs_a_dataset_with_boxes(boxed_data: Dataset, tmp_path: Path) -> None:
    from arcpipe.errors import ArcpipeError

    without = Dataset(boxed_data.path, boxed_data.manifest, boxed_data.task_ids,
                      {k: v for k, v in boxed_data.arrays.items() if k != "boxes"},
                      boxed_data.splits)  # fmt: skip
    with pytest.raises(ArcpipeError, match="needs a dataset with task boxes"):
        Layout(without, "boxed")
