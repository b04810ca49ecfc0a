"""Whole-grid programs: what the search fits, what it answers, and where it must not answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from arcpipe.arc.programs import dihedral, programs, self_similar, solve, upscale

RNG = np.random.default_rng(0)


def random_grid(h: int, w: int, colours=(0, 1, 2, 3)) -> np.ndarray:
    return RNG.choice(colours, size=(h, w)).astype(np.int64)


def mirrored_tiling(x: np.ndarray) -> np.ndarray:
    """[[x, x mirrored left-right], [x mirrored up-down, x turned 180 degrees]]."""
    return np.block([[x, x[:, ::-1]], [x[::-1], x[::-1, ::-1]]])


def test_dihedral_gives_eight_distinct_transforms_the_first_the_identity() -> None:
    x = np.arange(6).reshape(2, 3)
    transforms = [dihedral(x, t) for t in range(8)]
    assert np.array_equal(transforms[0], x)
    assert len({(g.shape, g.tobytes()) for g in transforms}) == 8
    assert {g.shape for g in transforms} == {(2, 3), (3, 2)}
    assert np.array_equal(dihedral(x, 4), x.T)


def test_a_mirrored_tiling_is_found_and_answers_a_new_input() -> None:
    demos = [(x, mirrored_tiling(x)) for x in (random_grid(3, 3), random_grid(2, 4))]
    test = random_grid(3, 2)
    program, (answer,) = solve(demos, [test])
    assert np.array_equal(answer, mirrored_tiling(test))
    assert program.colours is None  # exact: no colour map needed
    assert all(np.array_equal(program(x), y) for x, y in demos)


def test_an_upscale_with_a_colour_map_answers_only_inputs_of_seen_colours() -> None:
    swap = np.array([0, 5, 1, 3, 4, 2, 6, 7, 8, 9])  # 1 -> 5, 2 -> 1, 5 -> 2
    grids = (np.array([[1, 2], [5, 0]]), np.array([[2, 2, 0], [1, 5, 5]]))
    demos = [(x, swap[upscale(x, 2, 3)]) for x in grids]
    test = np.array([[5, 1, 0]])
    program, (answer,) = solve(demos, [test])
    assert np.array_equal(answer, swap[upscale(test, 2, 3)])
    assert program.colours == {0: 0, 1: 5, 2: 1, 5: 2}
    assert program(np.array([[7, 1]])) is None  # colour 7 never mapped: no answer
    assert solve(demos, [np.array([[7, 1]])]) is None


def test_a_self_similar_output_is_found() -> None:
    x = np.array([[0, 4, 0], [4, 4, 0], [0, 0, 4]])
    out = self_similar(x, inverse=False)
    assert out.shape == (9, 9)
    assert np.array_equal(out[3:6, 0:3], x) and not out[0:3, 0:3].any()
    demos = [(x, out), (x.T, self_similar(x.T, inverse=False))]
    test = np.array([[4, 0], [0, 0]])
    program, (answer,) = solve(demos, [test])
    assert program.name.startswith("self-similar")
    assert np.array_equal(answer, [[4, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])


def test_demonstrations_that_no_one_program_explains_get_no_answer() -> None:
    x1, x2 = random_grid(3, 3), random_grid(3, 3)
    demos = [(x1, x1[:, ::-1]), (x2, np.rot90(x2))]  # one mirrored, the other turned
    assert solve(demos, [random_grid(3, 3)]) is None
    assert next(programs(demos), None) is None


def test_exact_programs_are_tried_before_colour_maps() -> None:
    x1, x2 = random_grid(3, 4), random_grid(4, 3)
    demos = [(x1, x1.T), (x2, x2.T)]
    found = list(programs(demos))
    assert found[0].colours is None
    assert any(p.colours is not None for p in found)  # a map fits too (the identity), later


def test_on_real_arc_agi_1_training_tasks_every_fitted_answer_is_right(shared_data: Path) -> None:
    fitted = right = 0
    for path in sorted((shared_data / "arc-agi-1" / "training").glob("*.json")):
        task = json.loads(path.read_text())
        demos = [(np.array(p["input"]), np.array(p["output"])) for p in task["train"]]
        found = solve(demos, [np.array(p["input"]) for p in task["test"]])
        if found is not None:
            fitted += 1
            truths = [np.array(p["output"]) for p in task["test"]]
            right += all(np.array_equal(a, t) for a, t in zip(found[1], truths))
    assert (fitted, right) == (26, 26)  # docs/benchmarks.md, "Whole-grid programs"
