"""Maze: encoding, CSV I/O and validation, generator, canonical path, shortest-path checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arcpipe.arc.augment import DIHEDRAL_INVERSE, NUM_DIHEDRAL
from arcpipe.errors import ArcpipeError
from arcpipe.puzzles.maze import (
    CHARSET,
    GOAL,
    OPEN,
    PATH,
    START,
    WALL,
    MazeSet,
    decode_maze,
    dihedral_maze,
    encode_maze,
    generate_mazes,
    generate_mazes_counted,
    is_valid_shortest_path,
    read_maze_csv,
    shortest_path_length,
    solve_maze,
    write_maze_csv,
)

HEADER = "source,question,answer,rating\n"


def small(*rows: str) -> np.ndarray:
    """uint8 [H, W] codes of a hand-drawn maze."""
    return encode_maze("".join(rows)).reshape(len(rows), len(rows[0]))


@pytest.fixture(scope="module")
def mazes() -> MazeSet:
    return generate_mazes(4, 30, np.random.default_rng(0))


# ----------------------------------------------------------------------------- encoding


def test_encode_decode_round_trip() -> None:
    text = "# SGo" * 180
    codes = encode_maze(text)
    assert codes.dtype == np.uint8 and codes.tolist()[:5] == [WALL, OPEN, START, GOAL, PATH]
    assert CHARSET == "# SGo" and decode_maze(codes) == text
    with pytest.raises(ValueError, match="'x'"):
        encode_maze("#x")


# ----------------------------------------------------------------------------- generator


def test_generated_mazes_are_valid(mazes: MazeSet) -> None:
    assert mazes.questions.shape == mazes.answers.shape == (4, 900)
    for question, answer, rating in zip(mazes.questions, mazes.answers, mazes.ratings):
        assert (question == START).sum() == 1 and (question == GOAL).sum() == 1
        assert set(np.unique(question)) <= {WALL, OPEN, START, GOAL}
        assert 270 <= (question == WALL).sum() <= 450
        assert rating == shortest_path_length(question) > 30
        assert (answer == PATH).sum() == rating - 1
        assert is_valid_shortest_path(question, answer)
        np.testing.assert_array_equal(solve_maze(question), answer)


def test_generator_is_deterministic(mazes: MazeSet) -> None:
    again, layouts = generate_mazes_counted(4, 30, np.random.default_rng(0))
    np.testing.assert_array_equal(again.questions, mazes.questions)
    np.testing.assert_array_equal(again.answers, mazes.answers)
    assert layouts >= 4
    other = generate_mazes(4, 30, np.random.default_rng(1))
    assert not np.array_equal(other.questions, mazes.questions)


def test_generator_at_maze_hard_length() -> None:
    hard = generate_mazes(2, 110, np.random.default_rng(3))
    assert (hard.ratings > 110).all()
    assert all(is_valid_shortest_path(q, a) for q, a in zip(hard.questions, hard.answers))


def test_generator_rejects_bad_arguments() -> None:
    with pytest.raises(ArcpipeError):
        generate_mazes(1, 900, np.random.default_rng(0))


# ----------------------------------------------------------------------------- shortest paths


def test_canonical_path_prefers_up_left_right_down() -> None:
    # S top-left, G bottom-right: "right" beats "down" at every tie.
    question = small("S  ", "   ", "  G")
    np.testing.assert_array_equal(solve_maze(question), small("Soo", "  o", "  G"))
    # S bottom-right, G top-left: "up" beats "left".
    question = small("G  ", "   ", "  S")
    np.testing.assert_array_equal(solve_maze(question), small("Goo", "  o", "  S"))
    # S and G on one row of an open 3x5 grid: the straight path is the only shortest one.
    question = small("     ", "S   G", "     ")
    np.testing.assert_array_equal(solve_maze(question), small("     ", "SoooG", "     "))


def test_shortest_path_length_edge_cases() -> None:
    assert shortest_path_length(small("S#G")) == -1
    assert shortest_path_length(small("S G")) == 2
    assert shortest_path_length(small("SG")) == 1
    assert shortest_path_length(small("S  ")) == -1  # no G
    assert shortest_path_length(small("SSG")) == -1  # two S
    assert solve_maze(small("S#G")) is None
    np.testing.assert_array_equal(solve_maze(small("SG")), small("SG"))


def test_is_valid_shortest_path() -> None:
    question = small("S  ", "   ", "  G")
    assert is_valid_shortest_path(question, small("Soo", "  o", "  G"))
    assert is_valid_shortest_path(question, small("S  ", "o  ", "ooG"))  # another shortest one
    assert is_valid_shortest_path(question, small("So ", " oo", "  G"))
    assert not is_valid_shortest_path(question, small("S  ", "   ", "  G"))  # no path
    assert not is_valid_shortest_path(question, small("Soo", "  o", "o G"))  # extra o
    assert not is_valid_shortest_path(question, small("Soo", "   ", " oG"))  # broken
    assert not is_valid_shortest_path(question, small("Soo", "# o", "  G"))  # wall added
    assert not is_valid_shortest_path(question, small("Go ", " oo", "  S"))  # S and G moved
    assert not is_valid_shortest_path(question, small("Soo", "  o"))  # shape
    detour = small("S#  ", "    ", "  #G")
    assert not is_valid_shortest_path(detour, small("S#  ", "oooo", "oo#G"))
    assert is_valid_shortest_path(detour, small("S#  ", "oooo", "  #G"))


# ----------------------------------------------------------------------------- augmentation


def test_dihedral_transforms_keep_paths_valid(mazes: MazeSet) -> None:
    question, answer = mazes.questions[0], mazes.answers[0]
    for d in range(NUM_DIHEDRAL):
        q, a = dihedral_maze(question, d), dihedral_maze(answer, d)
        assert q.shape == (900,)
        assert is_valid_shortest_path(q, a)
        assert shortest_path_length(q) == mazes.ratings[0]


def test_dihedral_inverse_round_trip(mazes: MazeSet) -> None:
    flat = mazes.answers[1]
    wide = small("S  #", "## G")
    for d in range(NUM_DIHEDRAL):
        back = dihedral_maze(dihedral_maze(flat, d), DIHEDRAL_INVERSE[d])
        np.testing.assert_array_equal(back, flat)
        np.testing.assert_array_equal(
            dihedral_maze(dihedral_maze(wide, d), DIHEDRAL_INVERSE[d]), wide
        )
    np.testing.assert_array_equal(dihedral_maze(wide, 1), np.rot90(wide))
    np.testing.assert_array_equal(dihedral_maze(wide, 7), np.fliplr(np.rot90(wide)))


# ----------------------------------------------------------------------------- CSV


def test_csv_round_trip(tmp_path: Path, mazes: MazeSet) -> None:
    path = tmp_path / "m.csv"
    write_maze_csv(path, mazes)
    back = read_maze_csv(path)
    assert back.sources == mazes.sources
    np.testing.assert_array_equal(back.questions, mazes.questions)
    np.testing.assert_array_equal(back.answers, mazes.answers)
    np.testing.assert_array_equal(back.ratings, mazes.ratings)
    first = path.read_bytes()
    write_maze_csv(path, back)
    assert path.read_bytes() == first


def _row_variants(question: str, answer: str) -> list[tuple[str, str | None, str]]:
    two_s = question.replace(" ", "S", 1)
    wall_moved = answer.replace(" ", "#", 1)
    no_path = answer.replace("o", " ")
    return [
        (f"x,{question},{answer}", None, "3 columns"),
        (f"x,{question[:-1]},{answer},1", "question", "899 characters"),
        (f"x,{question},{answer} ,1", "answer", "901 characters"),
        (f"x,{question},{answer.replace('o', 'x', 1)},1", "answer", "bad character 'x'"),
        (f"x,{question.replace(' ', 'o', 1)},{answer},1", "question", "bad character 'o'"),
        (f"x,{two_s},{answer},1", "question", "2 'S' cells"),
        (f"x,{question},{wall_moved},1", "answer", "walls, S or G differ"),
        (f"x,{question},{no_path},1", "answer", "shortest path"),
        (f"x,{question},{answer},long", "rating", "'long' is not an integer"),
    ]


def test_csv_validation_errors(tmp_path: Path, mazes: MazeSet) -> None:
    question, answer = decode_maze(mazes.questions[0]), decode_maze(mazes.answers[0])
    good = f"ok,{question},{answer},{mazes.ratings[0]}\n"
    for row, field, words in _row_variants(question, answer):
        path = tmp_path / "bad.csv"
        path.write_text(HEADER + good + row + "\n")
        with pytest.raises(ArcpipeError) as info:
            read_maze_csv(path)
        message = str(info.value)
        assert str(path) in message and "line[3]" in message and words in message, message
        assert info.value.field == field
