"""Token encoding on the canvas and the crop that recovers grids."""

from __future__ import annotations

import numpy as np
import pytest

from arcpipe.arc.augment import Transform, random_colours
from arcpipe.arc.encode import (
    COLOUR_OFFSET,
    EOS,
    PAD,
    encode_examples,
    grid_to_tokens,
    tokens_to_grid,
)


def test_reference_example_3x4() -> None:
    board = grid_to_tokens(np.zeros((3, 4), dtype=np.uint8)).reshape(30, 30)
    for r in range(3):
        assert board[r, :6].tolist() == [2, 2, 2, 2, 1, 0]
    assert board[3, :6].tolist() == [1, 1, 1, 1, 0, 0]
    assert board[4:].max() == PAD and board[:, 5:].max() == PAD


def test_full_canvas_grid_has_no_eos() -> None:
    grid = np.full((30, 30), 9, dtype=np.uint8)
    board = grid_to_tokens(grid)
    assert (board == 11).all()
    assert np.array_equal(tokens_to_grid(board), grid)


@pytest.mark.parametrize("canvas", [30, 10, 4])
def test_crop_round_trips_every_size(canvas: int) -> None:
    rng = np.random.default_rng(canvas)
    for h in range(1, canvas + 1):
        for w in range(1, canvas + 1):
            grid = rng.integers(0, 10, size=(h, w), dtype=np.uint8)
            board = grid_to_tokens(grid, canvas)
            assert np.array_equal(tokens_to_grid(board, canvas), grid)


def test_translated_grid_keeps_eos_around_it() -> None:
    grid = np.ones((2, 3), dtype=np.uint8)
    board = grid_to_tokens(grid, 10, offset=(4, 5)).reshape(10, 10)
    assert (board[4:6, 5:8] == 3).all()
    assert (board[6, 5:8] == EOS).all() and (board[4:6, 8] == EOS).all()
    assert board[6, 8] == PAD and board.sum() == 6 * 3 + 5 * EOS


def test_crop_takes_largest_top_left_rectangle_with_shrinking_width() -> None:
    board = np.zeros((5, 5), dtype=np.uint8)
    board[0, :4] = 2  # width 4 on row 0
    board[1, :2] = 3  # shrinks to 2 on row 1
    board[2, :3] = 4  # cannot grow back to 3
    board[3, 0] = 5
    # areas: 1x4=4, 2x2=4, 3x2=6, 4x1=4 -> 3 rows x 2 cols wins
    assert tokens_to_grid(board, 5).tolist() == [[0, 0], [1, 1], [2, 2]]
    board[0, 0] = EOS
    assert tokens_to_grid(board, 5).shape == (0, 0)


def test_batch_encoder_matches_transform_then_encode() -> None:
    rng = np.random.default_rng(7)
    shapes = [(3, 5), (4, 4), (1, 7), (6, 2)]
    grids_list = [rng.integers(0, 10, size=s, dtype=np.uint8) for s in shapes]
    cells = np.concatenate([g.ravel() for g in grids_list])
    starts = np.cumsum([0] + [g.size for g in grids_list])[:-1]
    grids = np.array([(s, *g.shape) for s, g in zip(starts, grids_list)], dtype=np.int64)
    pairs = np.array([[0, 1], [2, 3], [3, -1]], dtype=np.int32)
    canvas, batch = 10, 24
    pair_ids = rng.integers(0, 3, size=batch)
    dihedrals = rng.integers(0, 8, size=batch).astype(np.uint8)
    colours = np.stack([random_colours(rng) for _ in range(batch)])
    offsets = rng.integers(0, 3, size=(batch, 2)).astype(np.int32)
    inputs = np.empty((batch, canvas * canvas), dtype=np.uint8)
    labels = np.empty_like(inputs)
    identity = np.tile(np.arange(canvas, dtype=np.uint8), (batch, 1))
    encode_examples(
        cells,
        grids,
        pairs,
        dihedrals,
        colours,
        identity,
        identity,
        pair_ids,
        offsets,
        canvas,
        COLOUR_OFFSET,
        inputs,
        labels,
    )
    for b in range(batch):
        t = Transform(int(dihedrals[b]), colours[b])
        i, o = pairs[pair_ids[b]]
        expected_in = grid_to_tokens(t.view(grids_list[i]), canvas, offsets[b])
        assert np.array_equal(inputs[b], expected_in)
        if o < 0:
            assert (labels[b] == PAD).all()
        else:
            assert np.array_equal(
                labels[b], grid_to_tokens(t.view(grids_list[o]), canvas, offsets[b])
            )
