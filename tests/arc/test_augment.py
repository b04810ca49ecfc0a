"""Dihedral transforms, colour maps and their inverses."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from arcpipe.arc.augment import (
    DIHEDRAL_INVERSE,
    NUM_DIHEDRAL,
    Transform,
    dihedral,
    dihedral_source,
    random_colours,
    transposes,
)

EXPECTED = {
    0: lambda g: g,
    1: lambda g: np.rot90(g, 1),
    2: lambda g: np.rot90(g, 2),
    3: lambda g: np.rot90(g, 3),
    4: np.fliplr,
    5: np.flipud,
    6: lambda g: g.T,
    7: lambda g: np.fliplr(np.rot90(g, 1)),
}


@st.composite
def grids_and_transforms(draw):
    h = draw(st.integers(1, 30))
    w = draw(st.integers(1, 30))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 10, size=(h, w), dtype=np.uint8)
    return grid, Transform(draw(st.integers(0, 7)), random_colours(rng))


@settings(max_examples=400, deadline=None)
@given(grids_and_transforms())
def test_inverse_of_view_is_identity(case) -> None:
    grid, transform = case
    view = transform.view(grid)
    assert view.shape == (grid.shape[::-1] if transposes(transform.dihedral) else grid.shape)
    assert np.array_equal(transform.invert(view), grid)


def test_every_transform_and_size_round_trips() -> None:
    rng = np.random.default_rng(0)
    for h in range(1, 31):
        for w in (1, h, 30):
            grid = rng.integers(0, 10, size=(h, w), dtype=np.uint8)
            for d in range(NUM_DIHEDRAL):
                t = Transform(d, random_colours(rng))
                assert np.array_equal(t.invert(t.view(grid)), grid)


def test_dihedral_ids_match_the_reference_table() -> None:
    grid = np.arange(12).reshape(3, 4)
    for d in range(NUM_DIHEDRAL):
        assert np.array_equal(dihedral(grid, d), EXPECTED[d](grid))
        back = dihedral(dihedral(grid, d), DIHEDRAL_INVERSE[d])
        assert np.array_equal(back, grid)


def test_compiled_index_map_matches_numpy() -> None:
    grid = np.arange(35).reshape(5, 7)
    for d in range(NUM_DIHEDRAL):
        expected = dihedral(grid, d)
        got = np.empty_like(expected)
        for i in range(expected.shape[0]):
            for j in range(expected.shape[1]):
                got[i, j] = grid[dihedral_source(d, i, j, 5, 7)]
        assert np.array_equal(got, expected), d


def test_colour_map_fixes_black_and_permutes_the_rest() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        colours = random_colours(rng)
        assert colours[0] == 0 and sorted(colours.tolist()) == list(range(10))


def test_colours_apply_before_the_dihedral_and_undo_after() -> None:
    grid = np.array([[1, 2, 0]], dtype=np.uint8)
    colours = np.array([0, 5, 7, 1, 2, 3, 4, 6, 8, 9], dtype=np.uint8)
    t = Transform(1, colours)
    assert t.view(grid).tolist() == [[0], [7], [5]]
    assert t.name("abc") == "abc|||t1|||0571234689"
    assert Transform.identity().name("abc") == "abc"
