"""Sudoku and Maze datasets: layout, counts, exact augmentations, determinism, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from arcpipe.data.dataset import Dataset
from arcpipe.errors import ArcpipeError
from arcpipe.puzzles.build import build_maze_dataset, build_sudoku_dataset
from arcpipe.puzzles.cli import build_puzzle_data, generate
from arcpipe.puzzles.maze import (
    dihedral_maze,
    generate_mazes,
    is_valid_shortest_path,
    read_maze_csv,
    write_maze_csv,
)
from arcpipe.puzzles.sudoku import (
    SudokuTransform,
    consistent,
    generate_easy_sudoku,
    is_valid_solution,
    read_sudoku_csv,
    write_sudoku_csv,
)

NUM_AUG = 5


@pytest.fixture(scope="module")
def sudoku_csvs(tmp_path_factory) -> tuple[Path, Path]:
    """12 training and 4 test puzzles (20 blanks), ratings 0-11 / 0-3 by row."""
    folder = tmp_path_factory.mktemp("sudoku-csv")
    rng = np.random.default_rng(7)
    paths = []
    for name, count in (("train", 12), ("test", 4)):
        puzzles = generate_easy_sudoku(count, 20, rng)
        puzzles.ratings = np.arange(count, dtype=np.int32)
        write_sudoku_csv(folder / f"{name}.csv", puzzles)
        paths.append(folder / f"{name}.csv")
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def sudoku_data(sudoku_csvs, tmp_path_factory) -> Dataset:
    out = tmp_path_factory.mktemp("sudoku-data") / "data"
    build_sudoku_dataset(*sudoku_csvs, out, num_aug=NUM_AUG, quiet=True)
    return Dataset.open(out)


@pytest.fixture(scope="module")
def maze_csvs(tmp_path_factory) -> tuple[Path, Path]:
    """5 training and 2 test mazes with paths longer than 30 moves."""
    folder = tmp_path_factory.mktemp("maze-csv")
    rng = np.random.default_rng(3)
    for name, count in (("train", 5), ("test", 2)):
        write_maze_csv(folder / f"{name}.csv", generate_mazes(count, 30, rng))
    return folder / "train.csv", folder / "test.csv"


def _transform(dataset: Dataset, variant: int) -> SudokuTransform:
    """The SudokuTransform a stored variant stands for."""
    d = int(dataset.arrays["variants"][variant, 1])
    assert d in (0, 6)
    return SudokuTransform(
        transpose=d == 6,
        row_perm=np.asarray(dataset.arrays["row_perms"][variant], dtype=np.int64),
        col_perm=np.asarray(dataset.arrays["col_perms"][variant], dtype=np.int64),
        digit_map=np.asarray(dataset.arrays["colours"][variant]),
    )


# ----------------------------------------------------------------------------- Sudoku


def test_sudoku_counts_and_manifest(sudoku_data: Dataset) -> None:
    m = sudoku_data.manifest
    assert m["kind"] == "sudoku" and m["canvas"] == 9 and m["seq_len"] == 81
    assert m["vocab"] == {"size": 11, "pad": 0, "eos": None, "colour_offset": 1}
    assert m["counts"] == {
        "tasks": 16,
        "variants": 12 * (NUM_AUG + 1) + 4,
        "puzzle_identifiers": 1,
        "train_examples": 12 * (NUM_AUG + 1),
        "test_examples": 4,
    }
    assert sudoku_data.num_puzzle_identifiers == 1
    assert [t.role for t in sudoku_data.tasks] == ["train"] * 12 + ["target"] * 4
    assert (
        sudoku_data.task_ids[:2] == ["train-0", "train-1"] and sudoku_data.task_ids[-1] == "test-3"
    )
    for task in sudoku_data.tasks:
        assert (task.num_train, task.num_test) == ((1, 0) if task.role == "train" else (0, 1))
        assert task.num_variants == (NUM_AUG + 1 if task.role == "train" else 1)
    assert sudoku_data.arrays["row_perms"].shape == (m["counts"]["variants"], 9)
    assert (np.asarray(sudoku_data.arrays["variants"])[:, 2] == 0).all()


def test_sudoku_examples_equal_the_transform_and_are_valid(
    sudoku_data: Dataset, sudoku_csvs
) -> None:
    source = read_sudoku_csv(sudoku_csvs[0])
    records = np.asarray(sudoku_data.examples("train"))
    inputs, labels, puzzle_ids = sudoku_data.encode("train", np.arange(len(records)))
    assert (puzzle_ids == 0).all()
    assert inputs.min() >= 1 and inputs.max() <= 10 and labels.min() >= 2 and labels.max() <= 10
    for row, (variant, pair, r0, c0) in enumerate(records):
        assert (r0, c0) == (0, 0)
        transform = _transform(sudoku_data, variant)
        question, answer = (
            transform.apply(source.questions[pair]),
            transform.apply(source.answers[pair]),
        )
        np.testing.assert_array_equal(inputs[row], question + 1)
        np.testing.assert_array_equal(labels[row], answer + 1)
        assert is_valid_solution(labels[row] - 1) and consistent(inputs[row] - 1, labels[row] - 1)


def test_sudoku_variants_are_symmetries_with_the_original_first(sudoku_data: Dataset) -> None:
    variants = np.asarray(sudoku_data.arrays["variants"])
    colours = np.asarray(sudoku_data.arrays["colours"])
    perms = [np.asarray(sudoku_data.arrays[n]).astype(int) for n in ("row_perms", "col_perms")]
    identity = np.arange(9)
    for task in sudoku_data.tasks:
        first = task.first_variant
        assert variants[first, 1] == 0 and (colours[first] == np.arange(10)).all()
        assert all((p[first] == identity).all() for p in perms)
    assert colours[:, 0].max() == 0 and (np.sort(colours, axis=1) == np.arange(10)).all()
    for p in perms:  # bands stay together: the 3 lines of an output band share a source band
        bands = p.reshape(-1, 3, 3) // 3
        assert (bands == bands[:, :, :1]).all() and (np.sort(p, axis=1) == identity).all()
    train_variants = variants[: 12 * (NUM_AUG + 1)]
    assert set(train_variants[:, 1]) == {0, 6}  # transposed and not, both drawn


def test_sudoku_test_split_is_untransformed(sudoku_data: Dataset, sudoku_csvs) -> None:
    source = read_sudoku_csv(sudoku_csvs[1])
    inputs, labels, puzzle_ids = sudoku_data.encode("test", np.arange(4))
    np.testing.assert_array_equal(inputs, source.questions + 1)
    np.testing.assert_array_equal(labels, source.answers + 1)
    assert (puzzle_ids == 0).all()
    view = sudoku_data.view("test", 2)
    assert view.task_id == "test-2" and view.transform.dihedral == 0


def test_sudoku_rebuild_is_byte_identical(sudoku_csvs, sudoku_data: Dataset, tmp_path) -> None:
    build_sudoku_dataset(*sudoku_csvs, tmp_path / "again", num_aug=NUM_AUG, quiet=True)
    names = sorted(p.name for p in sudoku_data.path.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "again").iterdir())
    for name in names:
        assert (sudoku_data.path / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    build_sudoku_dataset(*sudoku_csvs, tmp_path / "seed", num_aug=NUM_AUG, seed=1, quiet=True)
    other = np.load(tmp_path / "seed" / "colours.npy")
    assert not np.array_equal(other, np.asarray(sudoku_data.arrays["colours"]))


def test_sudoku_min_rating_and_subsample(sudoku_csvs, tmp_path) -> None:
    summary = build_sudoku_dataset(
        *sudoku_csvs, tmp_path / "d", num_aug=2, subsample=3, min_rating=2, quiet=True
    )
    dataset = Dataset.open(tmp_path / "d")
    assert summary.counts["tasks"] == 3 + 2  # training rows 2-11 rated >= 2, then 3 of them
    train_ids = [int(t.split("-")[1]) for t in dataset.task_ids[:3]]
    assert train_ids == sorted(train_ids) and min(train_ids) >= 2
    assert dataset.task_ids[3:] == ["test-2", "test-3"]
    assert dataset.manifest["options"] == {"num_aug": 2, "subsample": 3, "min_rating": 2}
    with pytest.raises(ArcpipeError, match="--subsample 20 but the training file has 12"):
        build_sudoku_dataset(*sudoku_csvs, tmp_path / "e", subsample=20, quiet=True)
    with pytest.raises(ArcpipeError, match="has no puzzles rated >= 50"):
        build_sudoku_dataset(*sudoku_csvs, tmp_path / "f", min_rating=50, quiet=True)
    with pytest.raises(ArcpipeError, match="--num-aug must be >= 0"):
        build_sudoku_dataset(*sudoku_csvs, tmp_path / "g", num_aug=-1, quiet=True)
    with pytest.raises(ArcpipeError, match="pass --subsample"):
        build_sudoku_dataset(*sudoku_csvs, tmp_path / "h", num_aug=2**28, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_sudoku_bad_row_names_the_line_and_writes_nothing(sudoku_csvs, tmp_path) -> None:
    lines = sudoku_csvs[0].read_text().splitlines()
    source, question, answer, rating = lines[3].split(",")
    lines[3] = ",".join([source, question, answer[:-1] + "x", rating])
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ArcpipeError) as err:
        build_sudoku_dataset(bad, sudoku_csvs[1], tmp_path / "out", quiet=True)
    assert str(err.value).startswith(f"{bad}: line[4].answer: bad character 'x'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_existing_output_needs_overwrite(sudoku_csvs, tmp_path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(ArcpipeError, match="already exists"):
        build_sudoku_dataset(*sudoku_csvs, tmp_path / "out", num_aug=1, quiet=True)
    build_sudoku_dataset(*sudoku_csvs, tmp_path / "out", num_aug=1, overwrite=True, quiet=True)
    assert Dataset.open(tmp_path / "out").manifest["counts"]["variants"] == 12 * 2 + 4


# ----------------------------------------------------------------------------- Maze


def test_maze_dihedral_variants_are_valid_shortest_paths(maze_csvs, tmp_path) -> None:
    summary = build_maze_dataset(*maze_csvs, tmp_path / "m", quiet=True)
    dataset = Dataset.open(tmp_path / "m")
    assert dataset.manifest["kind"] == "maze" and dataset.canvas == 30
    assert dataset.manifest["vocab"] == {"size": 6, "pad": 0, "eos": None, "colour_offset": 0}
    assert summary.counts == {
        "tasks": 7,
        "variants": 5 * 8 + 2,
        "puzzle_identifiers": 1,
        "train_examples": 40,
        "test_examples": 2,
    }
    assert "row_perms" not in dataset.arrays
    source = read_maze_csv(maze_csvs[0])
    records = np.asarray(dataset.examples("train"))
    inputs, labels, puzzle_ids = dataset.encode("train", np.arange(len(records)))
    assert (puzzle_ids == 0).all() and inputs.min() >= 1 and inputs.max() <= 4
    assert labels.min() >= 1 and labels.max() == 5
    for row, (variant, pair, _, _) in enumerate(records):
        d = int(dataset.arrays["variants"][variant, 1])
        assert d == row % 8  # ids 0-7 in order
        np.testing.assert_array_equal(inputs[row], dihedral_maze(source.questions[pair], d))
        np.testing.assert_array_equal(labels[row], dihedral_maze(source.answers[pair], d))
        assert is_valid_shortest_path(inputs[row], labels[row])
    test = read_maze_csv(maze_csvs[1])
    test_inputs, test_labels, _ = dataset.encode("test", np.arange(2))
    np.testing.assert_array_equal(test_inputs, test.questions)
    np.testing.assert_array_equal(test_labels, test.answers)


def test_maze_without_augmentation_and_determinism(maze_csvs, tmp_path) -> None:
    build_maze_dataset(*maze_csvs, tmp_path / "a", augment=False, subsample=3, quiet=True)
    build_maze_dataset(*maze_csvs, tmp_path / "b", augment=False, subsample=3, quiet=True)
    dataset = Dataset.open(tmp_path / "a")
    assert dataset.manifest["counts"]["variants"] == 3 + 2
    assert (np.asarray(dataset.arrays["variants"])[:, 1] == 0).all()
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()


def test_maze_bad_row_names_the_line(maze_csvs, tmp_path) -> None:
    lines = maze_csvs[0].read_text().splitlines()
    lines[2] = lines[2].replace("S", " ", 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ArcpipeError, match=r"line\[3\]\.question: has 0 'S' cells"):
        build_maze_dataset(bad, maze_csvs[1], tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- CLI pieces


def test_generate_easy_split_then_build(tmp_path) -> None:
    runner = CliRunner()
    args = ["sudoku", "--count", "20", "--easy-blanks", "8", "--seed", "3"]
    args += ["--out", str(tmp_path / "tr.csv"), "--test-count", "5"]
    result = runner.invoke(generate, [*args, "--test-out", str(tmp_path / "te.csv")])
    assert result.exit_code == 0, result.output
    assert "20 puzzles" in result.output and "mean blanks 8.0" in result.output
    train, test = read_sudoku_csv(tmp_path / "tr.csv"), read_sudoku_csv(tmp_path / "te.csv")
    assert (len(train), len(test)) == (20, 5)
    assert ((train.questions == 0).sum(axis=1) == 8).all()
    summary = build_puzzle_data(
        "sudoku",
        [tmp_path / "tr.csv"],
        tmp_path / "te.csv",
        tmp_path / "d",
        2,
        0,
        None,
        None,
        False,
        True,
    )
    assert summary.counts["train_examples"] == 60


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sudoku", "--count", "5", "--min-rating", "101"], "--min-rating must be 0-100"),
        (["sudoku", "--count", "5", "--easy-blanks", "3", "--min-rating", "1"], "not rated"),
        (["sudoku", "--count", "5", "--test-count", "2"], "go together"),
        (["sudoku", "--count", "5", "--min-rating", "3", "--max-rating", "2"], "below"),
        (["maze", "--count", "2", "--min-path", "401"], "--min-path must be 0-150"),
        (["maze", "--count", "0"], "--count must be >= 1"),
    ],
)
def test_generate_refuses_silly_values(args, message, tmp_path) -> None:
    result = CliRunner().invoke(generate, [*args, "--out", str(tmp_path / "x.csv")])
    assert isinstance(result.exception, ArcpipeError) and message in str(result.exception)
    assert not (tmp_path / "x.csv").exists()


def test_build_puzzle_data_checks_its_options(maze_csvs, tmp_path) -> None:
    with pytest.raises(ArcpipeError, match="exactly one --train"):
        build_puzzle_data(
            "maze", [*maze_csvs], maze_csvs[1], tmp_path / "o", 8, 0, None, None, False, True
        )
    with pytest.raises(ArcpipeError, match="--min-rating applies to --task sudoku only"):
        build_puzzle_data(
            "maze", maze_csvs[0], maze_csvs[1], tmp_path / "o", 8, 0, None, 3, False, True
        )
    with pytest.raises(ArcpipeError, match="needs --eval"):
        build_puzzle_data(
            "sudoku", maze_csvs[0], None, tmp_path / "o", 8, 0, None, None, False, True
        )
    summary = build_puzzle_data(
        "maze", maze_csvs[0], maze_csvs[1], tmp_path / "o", 0, 0, None, None, False, True
    )
    assert summary.counts["variants"] == 5 + 2
