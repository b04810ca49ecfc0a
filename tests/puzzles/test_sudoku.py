"""Sudoku: CSV I/O and validation, solver, generator, canonical forms, splits, augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arcpipe.errors import ArcpipeError
from arcpipe.puzzles.sudoku import (
    SudokuSet,
    augment_sudoku,
    canonical_form,
    canonical_forms,
    consistent,
    deduplicate_across,
    generate_easy_sudoku,
    generate_split,
    generate_sudoku,
    is_valid_solution,
    random_sudoku_transform,
    read_sudoku_csv,
    solve,
    solve_batch,
    subsample,
    write_sudoku_csv,
)

# Famous hard puzzles with their published solutions.
HARD = {
    "arto-inkala": (
        "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4..",
        "812753649943682175675491283154237896369845721287169534521974368438526917796318452",
    ),
    "easter-monster": (
        "1.......2.9.4...5...6...7...5.9.3.......7.......85..4.7.....6...3...9.8...2.....1",
        "174385962293467158586192734451923876928674315367851249719548623635219487842736591",
    ),
    "ai-escargot": (
        "1....7.9..3..2...8..96..5....53..9...1..8...26....4...3......1..4......7..7...3..",
        "162857493534129678789643521475312986913586742628794135356478219241935867897261354",
    ),
}
HEADER = "source,question,answer,rating\n"
INKALA_Q, INKALA_A = HARD["arto-inkala"]


def grid(text: str) -> np.ndarray:
    """uint8 [81] from an 81-char string, '.' or '0' for a blank."""
    return np.array([0 if ch in ".0" else int(ch) for ch in text], dtype=np.uint8)


@pytest.fixture(scope="module")
def puzzles() -> SudokuSet:
    return generate_sudoku(12, 0, np.random.default_rng(7))


# ----------------------------------------------------------------------------- CSV


def test_csv_round_trip(tmp_path: Path, puzzles: SudokuSet) -> None:
    path = tmp_path / "s.csv"
    write_sudoku_csv(path, puzzles)
    back = read_sudoku_csv(path)
    assert back.sources == puzzles.sources
    np.testing.assert_array_equal(back.questions, puzzles.questions)
    np.testing.assert_array_equal(back.answers, puzzles.answers)
    np.testing.assert_array_equal(back.ratings, puzzles.ratings)
    first = path.read_bytes()
    write_sudoku_csv(path, back)
    assert path.read_bytes() == first
    lines = first.decode().splitlines()
    assert lines[0] == HEADER.strip() and "." in lines[1] and "0" not in lines[1].split(",")[1]
    assert not list(tmp_path.glob("*.tmp"))


def test_csv_reads_zero_as_blank(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + f"x,{INKALA_Q.replace('.', '0')},{INKALA_A},172\n")
    read = read_sudoku_csv(path)
    np.testing.assert_array_equal(read.questions[0], grid(INKALA_Q))
    assert read.ratings.dtype == np.int32 and read.ratings[0] == 172


def _swap_first_two(answer: str) -> str:
    return answer[1] + answer[0] + answer[2:]


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        (f"x,{INKALA_Q},{INKALA_A}", None, "3 columns"),
        (f"x,{INKALA_Q[:-1]},{INKALA_A},1", "question", "80 characters"),
        (f"x,{INKALA_Q},{INKALA_A}1,1", "answer", "82 characters"),
        (f"x,x{INKALA_Q[1:]},{INKALA_A},1", "question", "bad character 'x' at position 0"),
        (f"x,{INKALA_Q},{INKALA_A[:-1]}.,1", "answer", "bad character '.'"),
        (f"x,{INKALA_Q},{_swap_first_two(INKALA_A)},1", "answer", "not a valid solution"),
        (f"x,{'9' + INKALA_Q[1:]},{INKALA_A},1", "question", "gives 9 at row 1, column 1"),
        (f"x,{INKALA_Q},{INKALA_A},hard", "rating", "'hard' is not an integer"),
    ],
)
def test_csv_validation_errors(tmp_path: Path, row: str, field: str | None, words: str) -> None:
    path = tmp_path / "bad.csv"
    good = f"ok,{INKALA_Q},{INKALA_A},172\n"
    path.write_text(HEADER + good + row + "\n")
    with pytest.raises(ArcpipeError) as info:
        read_sudoku_csv(path)
    message = str(info.value)
    assert str(path) in message and "line[3]" in message and words in message
    assert info.value.index == 3 and info.value.field == field
    if field:
        assert f".{field}:" in message


def test_csv_header_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("a,b,c,d\n")
    with pytest.raises(ArcpipeError, match=r"line\[1\]: header"):
        read_sudoku_csv(path)
    with pytest.raises(ArcpipeError, match="cannot read"):
        read_sudoku_csv(tmp_path / "missing.csv")


def test_subsample(puzzles: SudokuSet) -> None:
    a = subsample(puzzles, 5, np.random.default_rng(1))
    b = subsample(puzzles, 5, np.random.default_rng(1))
    assert len(a) == 5 and a.sources == b.sources
    np.testing.assert_array_equal(a.questions, b.questions)
    rows = [int(np.flatnonzero((puzzles.questions == q).all(axis=1))[0]) for q in a.questions]
    assert rows == sorted(set(rows))
    with pytest.raises(ArcpipeError, match="cannot pick 13"):
        subsample(puzzles, 13, np.random.default_rng(1))


# ----------------------------------------------------------------------------- validity


def test_validity_helpers() -> None:
    answer = grid(INKALA_A)
    assert is_valid_solution(answer)
    assert not is_valid_solution(grid(_swap_first_two(INKALA_A)))
    assert not is_valid_solution(grid(INKALA_Q))
    assert consistent(grid(INKALA_Q), answer)
    assert not consistent(grid("9" + INKALA_Q[1:]), answer)


# ----------------------------------------------------------------------------- solver


@pytest.mark.parametrize("name", sorted(HARD))
def test_solver_solves_hard_puzzles(name: str) -> None:
    question, answer = (grid(t) for t in HARD[name])
    solution, guesses, count = solve(question, max_solutions=2)
    assert count == 1 and guesses > 0
    assert solution is not None and is_valid_solution(solution) and consistent(question, solution)
    np.testing.assert_array_equal(solution, answer)


def test_solver_multiple_and_no_solutions() -> None:
    sparse = grid(INKALA_Q)
    sparse[np.flatnonzero(sparse)[:6]] = 0
    solution, _, count = solve(sparse, max_solutions=2)
    assert count == 2 and solution is not None and is_valid_solution(solution)
    assert solve(np.zeros(81, np.uint8), max_solutions=5)[2] == 5
    clash = np.zeros(81, np.uint8)
    clash[[0, 1]] = 4  # two 4s in row 1
    assert solve(clash, 2) == (None, 0, 0)
    hidden = np.zeros(81, np.uint8)
    hidden[:8] = np.arange(1, 9)  # row 1 needs 9 in its last cell ...
    hidden[9 * 5 + 8] = 9  # ... but column 9 already has one
    assert solve(hidden, 2)[2] == 0


def test_singles_only_puzzle_needs_no_guess() -> None:
    question = grid(INKALA_A)
    question[[0, 10, 20, 30, 40, 50, 60, 70, 80, 8, 16, 24]] = 0
    solution, guesses, count = solve(question, max_solutions=2)
    assert (guesses, count) == (0, 1)
    np.testing.assert_array_equal(solution, grid(INKALA_A))


def test_solve_batch_matches_solve(puzzles: SudokuSet) -> None:
    batch = np.concatenate([puzzles.questions, grid(INKALA_Q)[None], np.zeros((1, 81), np.uint8)])
    solutions, guesses, counts = solve_batch(batch, max_solutions=2)
    for i, question in enumerate(batch):
        solution, g, c = solve(question, max_solutions=2)
        assert (g, c) == (guesses[i], counts[i])
        np.testing.assert_array_equal(solution, solutions[i])
    np.testing.assert_array_equal(solutions[: len(puzzles)], puzzles.answers)


# ----------------------------------------------------------------------------- generator


def test_generated_puzzles_are_unique_minimal_and_rated() -> None:
    made = generate_sudoku(4, 3, np.random.default_rng(3), max_rating=40)
    assert made.sources == ["arcpipe-gen"] * 4
    assert ((made.ratings >= 3) & (made.ratings <= 40)).all()
    solutions, _, counts = solve_batch(made.questions, max_solutions=2)
    assert (counts == 1).all()
    np.testing.assert_array_equal(solutions, made.answers)
    np.testing.assert_array_equal(solve_batch(made.questions)[1], made.ratings)
    question = made.questions[0]
    for cell in np.flatnonzero(question):  # minimal: no clue can go
        fewer = question.copy()
        fewer[cell] = 0
        assert solve(fewer, max_solutions=2)[2] == 2


def test_generator_is_deterministic() -> None:
    a = generate_sudoku(3, 1, np.random.default_rng(11))
    b = generate_sudoku(3, 1, np.random.default_rng(11))
    c = generate_sudoku(3, 1, np.random.default_rng(12))
    np.testing.assert_array_equal(a.questions, b.questions)
    np.testing.assert_array_equal(a.ratings, b.ratings)
    assert not np.array_equal(a.questions, c.questions)


def test_generator_rejects_bad_ranges() -> None:
    with pytest.raises(ArcpipeError):
        generate_sudoku(1, 5, np.random.default_rng(0), max_rating=4)


def test_easy_sudoku() -> None:
    easy = generate_easy_sudoku(5, 10, np.random.default_rng(2))
    assert ((easy.questions == 0).sum(axis=1) == 10).all()
    for question, answer in zip(easy.questions, easy.answers):
        assert is_valid_solution(answer) and consistent(question, answer)
    again = generate_easy_sudoku(5, 10, np.random.default_rng(2))
    np.testing.assert_array_equal(easy.questions, again.questions)
    assert len({a.tobytes() for a in easy.answers}) == 5


# ----------------------------------------------------------------------------- canonical forms


def test_canonical_form_is_invariant(puzzles: SudokuSet) -> None:
    rng = np.random.default_rng(5)
    for question in puzzles.questions[:6]:
        form = canonical_form(question)
        for _ in range(5):
            assert canonical_form(random_sudoku_transform(rng).apply(question)) == form
        assert canonical_form(np.frombuffer(form, np.uint8)) == form


def test_canonical_form_of_sparse_and_full_grids() -> None:
    rng = np.random.default_rng(6)
    full = grid(INKALA_A)
    sparse = full.copy()
    sparse[rng.choice(81, 75, replace=False)] = 0
    for g in (full, sparse):
        form = canonical_form(g)
        assert all(canonical_form(random_sudoku_transform(rng).apply(g)) == form for _ in range(5))
    assert canonical_form(np.zeros(81, np.uint8)) == bytes(81)


def test_canonical_forms_distinguish_puzzles(puzzles: SudokuSet) -> None:
    forms = canonical_forms(puzzles.questions)
    assert len(set(forms)) == len(puzzles)
    assert forms[0] == canonical_form(puzzles.questions[0])
    one_more = puzzles.questions[0].copy()
    cell = int(np.flatnonzero(one_more == 0)[0])
    one_more[cell] = puzzles.answers[0][cell]
    assert canonical_form(one_more) != forms[0]


def test_deduplicate_across_and_split(puzzles: SudokuSet) -> None:
    rng = np.random.default_rng(8)
    test = puzzles.take(range(3))
    disguised = [random_sudoku_transform(rng).apply(q) for q in test.questions]
    train = SudokuSet.concatenate([puzzles.take(range(3, 8)), puzzles.take(range(3))])
    train.questions[5:] = disguised
    kept = deduplicate_across(train, test)
    assert kept.sources == puzzles.take(range(3, 8)).sources
    np.testing.assert_array_equal(kept.questions, puzzles.questions[3:8])

    train, test = generate_split(6, 3, 1, np.random.default_rng(9))
    assert (len(train), len(test)) == (6, 3)
    assert not set(canonical_forms(train.questions)) & set(canonical_forms(test.questions))
    assert (train.ratings >= 1).all() and (test.ratings >= 1).all()


# ----------------------------------------------------------------------------- augmentation


def test_augmentation_keeps_puzzles_valid(puzzles: SudokuSet) -> None:
    rng = np.random.default_rng(10)
    for question, answer in zip(puzzles.questions, puzzles.answers):
        q, a = augment_sudoku(question, answer, rng)
        assert is_valid_solution(a) and consistent(q, a)
        assert (q == 0).sum() == (question == 0).sum()
        solution, _, count = solve(q, max_solutions=2)
        assert count == 1
        np.testing.assert_array_equal(solution, a)


def test_transform_matches_reference_formula() -> None:
    rng = np.random.default_rng(4)
    answer = grid(INKALA_A)
    for _ in range(8):
        t = random_sudoku_transform(rng)
        assert t.digit_map[0] == 0 and sorted(t.digit_map[1:]) == list(range(1, 10))
        assert sorted(t.row_perm // 3 * 3 + t.row_perm % 3) == list(range(9))
        assert all(len(set(t.row_perm[3 * b : 3 * b + 3] // 3)) == 1 for b in range(3))
        source = answer.reshape(9, 9).T if t.transpose else answer.reshape(9, 9)
        mapping = np.array([t.row_perm[i // 9] * 9 + t.col_perm[i % 9] for i in range(81)])
        np.testing.assert_array_equal(t.apply(answer), t.digit_map[source.reshape(81)[mapping]])
    a = augment_sudoku(grid(INKALA_Q), answer, np.random.default_rng(1))
    b = augment_sudoku(grid(INKALA_Q), answer, np.random.default_rng(1))
    np.testing.assert_array_equal(a[0], b[0])
