"""Sudoku and Maze evaluation: exact and valid rates, the model loop, a checkpoint end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
import torch
from click.testing import CliRunner

import arcpipe.puzzles.evaluate as evaluate_module
from arcpipe.config import Config, ModelConfig, TrainConfig
from arcpipe.data.dataset import Dataset
from arcpipe.errors import ArcpipeError
from arcpipe.model.trm import TRM
from arcpipe.predict import ViewOutputs, run_views
from arcpipe.puzzles.build import build_maze_dataset, build_sudoku_dataset
from arcpipe.puzzles.cli import evaluate
from arcpipe.puzzles.evaluate import (
    evaluate_model,
    evaluate_predictions,
    evaluate_run,
    evaluation_rows,
    puzzle_kind,
)
from arcpipe.puzzles.maze import (
    GOAL,
    OPEN,
    PATH,
    START,
    MazeSet,
    generate_mazes,
    solve_maze,
    write_maze_csv,
)
from arcpipe.puzzles.sudoku import SudokuSet, generate_easy_sudoku, write_sudoku_csv
from arcpipe.train.loop import RunOptions, train


@pytest.fixture(scope="module")
def sudoku_data(tmp_path_factory) -> Dataset:
    """Test puzzles 0-2 have 10 blanks, 3-4 are entirely blank (any valid grid solves them)."""
    folder = tmp_path_factory.mktemp("sudoku")
    rng = np.random.default_rng(11)
    write_sudoku_csv(folder / "train.csv", generate_easy_sudoku(4, 10, rng))
    test = SudokuSet.concatenate(
        [generate_easy_sudoku(3, 10, rng), generate_easy_sudoku(2, 81, rng)]
    )
    write_sudoku_csv(folder / "test.csv", test)
    build_sudoku_dataset(folder / "train.csv", folder / "test.csv", folder / "d", 1, quiet=True)
    return Dataset.open(folder / "d")


def _open_maze() -> tuple[np.ndarray, np.ndarray]:
    """An empty 30x30 room, S at (0, 0), G at (1, 1): two shortest paths."""
    question = np.full(900, OPEN, np.uint8)
    question[0], question[31] = START, GOAL
    return question, solve_maze(question)


@pytest.fixture(scope="module")
def maze_data(tmp_path_factory) -> Dataset:
    """Test maze 0 is the open room, 1 a generated maze."""
    folder = tmp_path_factory.mktemp("maze")
    rng = np.random.default_rng(5)
    write_maze_csv(folder / "train.csv", generate_mazes(2, 20, rng))
    generated = generate_mazes(1, 20, rng)
    room_q, room_a = _open_maze()
    test = MazeSet(
        ["room", *generated.sources],
        np.stack([room_q, generated.questions[0]]),
        np.stack([room_a, generated.answers[0]]),
        np.array([2, generated.ratings[0]], np.int32),
    )
    write_maze_csv(folder / "test.csv", test)
    build_maze_dataset(folder / "train.csv", folder / "test.csv", folder / "d", quiet=True)
    return Dataset.open(folder / "d")


def _truth(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(len(dataset.examples("test")))
    return rows, dataset.encode("test", rows)[1].copy()


# ----------------------------------------------------------------------------- predictions


def test_sudoku_oracle_scores_one(sudoku_data: Dataset) -> None:
    rows, labels = _truth(sudoku_data)
    metrics = evaluate_predictions(sudoku_data, labels, rows)
    assert metrics == {
        "puzzles": 5,
        "exact": 5,
        "valid": 5,
        "exact_accuracy": 1.0,
        "valid_solution_rate": 1.0,
    }


def test_sudoku_corruptions_lower_exact_and_valid(sudoku_data: Dataset) -> None:
    rows, tokens = _truth(sudoku_data)
    questions = sudoku_data.encode("test", rows)[0]
    blank = int(np.flatnonzero(questions[0] == 1)[0])
    tokens[0, blank] = 2 + (tokens[0, blank] - 2 + 1) % 9  # a wrong digit in a blank cell
    given = int(np.flatnonzero(questions[1] > 1)[0])
    tokens[1, given] = 2 + (tokens[1, given] - 2 + 1) % 9  # a given overwritten
    tokens[2, 40] = 0  # PAD is no digit
    relabel = np.array([0, 1, 3, 2, 4, 5, 6, 7, 8, 9, 10], np.uint8)  # swap digits 1 and 2
    tokens[3] = relabel[tokens[3]]  # another valid grid: fine for an all-blank question
    metrics = evaluate_predictions(sudoku_data, tokens, rows)
    assert (metrics["exact"], metrics["valid"]) == (1, 2)
    assert metrics["exact_accuracy"] == 0.2 and metrics["valid_solution_rate"] == 0.4
    relabelled_givens = tokens.copy()
    relabelled_givens[0] = relabel[_truth(sudoku_data)[1][0]]
    assert evaluate_predictions(sudoku_data, relabelled_givens[:1], rows[:1])["valid"] == 0


def test_maze_oracle_other_path_and_corruptions(maze_data: Dataset) -> None:
    rows, tokens = _truth(maze_data)
    metrics = evaluate_predictions(maze_data, tokens, rows)
    assert (metrics["exact_accuracy"], metrics["valid_path_rate"]) == (1.0, 1.0)
    room = tokens[0].copy()
    on_path = int(np.flatnonzero(room == PATH)[0])
    other = 30 if on_path == 1 else 1
    room[on_path], room[other] = OPEN, PATH  # the other shortest path around the corner
    swapped = tokens.copy()
    swapped[0] = room
    metrics = evaluate_predictions(maze_data, swapped, rows)
    assert (metrics["exact"], metrics["valid"]) == (1, 2)
    detour = tokens.copy()
    detour[1, np.flatnonzero(detour[1] == OPEN)[0]] = PATH  # one 'o' too many
    detour[0, 31] = OPEN  # the goal erased
    metrics = evaluate_predictions(maze_data, detour, rows)
    assert (metrics["exact"], metrics["valid"]) == (0, 0)
    assert metrics["valid_path_rate"] == 0.0
    assert tokens[0, 31] == GOAL


def test_evaluation_rows_and_kind(sudoku_data: Dataset, sample_dataset: Path) -> None:
    assert evaluation_rows(sudoku_data).tolist() == [0, 1, 2, 3, 4]
    assert evaluation_rows(sudoku_data, limit=2).tolist() == [0, 1]
    with pytest.raises(ArcpipeError, match="--limit must be >= 1"):
        evaluation_rows(sudoku_data, limit=0)
    assert puzzle_kind(sudoku_data) == "sudoku"
    with pytest.raises(ArcpipeError, match="'arc' dataset; evaluate scores sudoku and maze"):
        puzzle_kind(Dataset.open(sample_dataset))


# ----------------------------------------------------------------------------- the model loop


def _tiny_config(supervision_steps: int = 2) -> Config:
    model = ModelConfig(
        hidden_size=32,
        num_heads=4,
        cycles=1,
        latent_steps=1,
        supervision_steps=supervision_steps,
        token_mixer="mlp",
        pos_encodings="none",
        puzzle_emb_dim=32,
        puzzle_emb_len=1,
    )
    train_cfg = TrainConfig(global_batch_size=4, epochs=10, lr_warmup_steps=1, log_interval=1)
    return Config(model=model, train=train_cfg)


def scripted_views(dataset: Dataset, answers: dict[int, str]):
    """A stand-in for the network's views: for each row, the answer, the puzzle itself, or a
    valid solution other than the answer (the digits relabelled), as ``answers`` says."""

    def run_views(model, data, split, rows, device, halt_early=False, loss_kind="stablemax"):
        inputs, labels, _ = data.encode(split, rows)
        offset = int(data.manifest["vocab"]["colour_offset"])
        tokens = []
        for row, question, label in zip(rows, inputs, labels):
            kind = answers[int(row)]
            if kind == "answer":
                tokens.append(label)
            elif kind == "question":
                tokens.append(question)
            else:  # relabel digits 1 <-> 2: still a valid grid, not the answer
                digits = label.astype(np.int64) - offset
                swapped = np.where(digits == 1, 2, np.where(digits == 2, 1, digits))
                tokens.append((swapped + offset).astype(np.uint8))
        n = len(rows)
        return ViewOutputs(
            np.stack(tokens), np.zeros((n, data.seq_len), np.float32), np.zeros(n, np.float32),
            np.zeros(n, bool), np.full(n, 3, np.int32),
        )  # fmt: skip

    return run_views


def test_evaluate_model_counts_every_view_and_restores_the_mode(
    sudoku_data: Dataset, monkeypatch
) -> None:
    # Rows 0 and 3 answered right, row 1 with the puzzle itself, row 4 (an entirely blank
    # puzzle) with another valid grid, row 2 with the answer relabelled (invalid: clues broken).
    answers = {0: "answer", 1: "question", 2: "relabelled", 3: "answer", 4: "relabelled"}
    monkeypatch.setattr(evaluate_module, "run_views", scripted_views(sudoku_data, answers))
    model = TRM(_tiny_config(3).model, sudoku_data.vocab_size, sudoku_data.seq_len, 1)
    model.train()
    seen = []
    metrics = evaluate_model(
        model,
        sudoku_data,
        "test",
        np.arange(5),
        2,
        torch.device("cpu"),
        on_batch=seen.append,
    )
    assert seen == [2, 2, 1] and model.training
    assert metrics["split"] == "test" and metrics["views"] == metrics["puzzles"] == 5
    assert metrics["mean_steps"] == 3.0
    assert (metrics["exact"], metrics["valid"]) == (2, 3)  # rows 0, 3 exact; 0, 3, 4 valid
    assert metrics["exact_accuracy"] == 0.4 and metrics["valid_solution_rate"] == 0.6
    with pytest.raises(ArcpipeError, match="batch size must be >= 1"):
        evaluate_model(model, sudoku_data, "test", np.arange(5), 0, torch.device("cpu"))


def test_evaluate_model_counts_the_real_networks_views(sudoku_data: Dataset) -> None:
    """Without the stand-in: the counts equal what the network's own boards give."""
    model = TRM(_tiny_config(3).model, sudoku_data.vocab_size, sudoku_data.seq_len, 1)
    rows = np.arange(5)
    metrics = evaluate_model(model, sudoku_data, "test", rows, 2, torch.device("cpu"))
    out = run_views(model.eval(), sudoku_data, "test", rows, torch.device("cpu"))
    expected = evaluate_predictions(sudoku_data, out.tokens, rows)
    assert (metrics["exact"], metrics["valid"]) == (expected["exact"], expected["valid"])


def test_checkpoint_end_to_end_and_cli(sudoku_data: Dataset, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(RunOptions(sudoku_data.path, _tiny_config(), run, max_steps=2, device="cpu", quiet=True))
    metrics = evaluate_run(run, sudoku_data.path, "last", device="cpu", limit=3, quiet=True)
    assert metrics["views"] == 3 and metrics["step"] == 2 and metrics["seconds"] > 0
    assert set(metrics) >= {"exact_accuracy", "valid_solution_rate", "checkpoint"}
    result = CliRunner().invoke(
        evaluate,
        ["--run", str(run), "--data", str(sudoku_data.path), "--checkpoint", "last", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["views"] == 5
    table = CliRunner().invoke(evaluate, ["--run", str(run), "--data", str(sudoku_data.path)])
    assert table.exit_code == 0 and "exact accuracy" in table.output
