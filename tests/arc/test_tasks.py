"""Reading and validating tasks: every kind of bad input is one clear line, exit 2, no output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from helpers import simple_task, write_task

from arcpipe.arc.tasks import load_source, merge_sources, parse_grid, solutions_path
from arcpipe.cli import main
from arcpipe.errors import ArcpipeError

GOOD = simple_task(0)


def run_build(tmp_path: Path, train: Path, target: Path | None = None, *extra: str):
    """Run build-data through click; return (result, output dir)."""
    if target is None:
        target = tmp_path / "eval"
        write_task(target, "target", simple_task(9))
    out = tmp_path / "out"
    args = ["build-data", "--train", str(train), "--eval", str(target), "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--num-aug", "2", "--quiet", *extra])
    return result, out


def assert_one_line_error(result, out: Path, *expected: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for part in expected:
        assert part in lines[0], (part, lines[0])
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*")), "temporary directory left behind"
    return lines[0]


def with_pair(section: str, index: int, **fields: object) -> dict:
    task = orjson.loads(orjson.dumps(GOOD))
    task[section][index].update(fields)
    return task


BAD_TASKS = {
    "missing-train": ({"test": GOOD["test"]}, ["task bad", "missing 'train'"]),
    "missing-test": ({"train": GOOD["train"]}, ["task bad", "missing 'test'"]),
    "no-train-pairs": ({"train": [], "test": GOOD["test"]}, ["no train pairs"]),
    "train-not-list": ({"train": {"a": 1}, "test": GOOD["test"]}, ["'train' is an object"]),
    "grid-not-list": (with_pair("train", 0, input=5), ["train[0].input", "expected a grid"]),
    "grid-rows-not-lists": (with_pair("train", 1, output=[1, 2, 3]), ["train[1].output", "row 0"]),
    "grid-string": (with_pair("test", 0, input="[[1]]"), ["test[0].input", "a string"]),
    "ragged": (with_pair("train", 0, input=[[1, 2], [3]]), ["train[0].input", "ragged"]),
    "empty-grid": (with_pair("train", 0, output=[]), ["train[0].output", "empty grid"]),
    "empty-row": (with_pair("train", 0, output=[[]]), ["train[0].output", "row 0 is empty"]),
    "too-large": (with_pair("train", 1, input=[[0] * 31] * 2), ["train[1].input", "2x31"]),
    "bool-cell": (with_pair("train", 0, input=[[0, True]]), ["column 1", "boolean"]),
    "float-cell": (with_pair("train", 0, input=[[0, 1.0]]), ["column 1", "float"]),
    "string-cell": (with_pair("train", 0, input=[["3"]]), ["column 0", "string"]),
    "null-cell": (with_pair("train", 0, input=[[None]]), ["column 0", "null"]),
    "negative-cell": (with_pair("train", 0, output=[[1], [-1]]), ["row 1 column 0", "-1"]),
    "ten-cell": (with_pair("test", 0, input=[[10]]), ["test[0].input", "is 10"]),
    "no-output": ({"train": [{"input": [[1]]}], "test": GOOD["test"]}, ["train[0]", "'output'"]),
    "pair-not-object": ({"train": [[1]], "test": GOOD["test"]}, ["train[0]", "a list"]),
    "not-object": ([1, 2], ["expected a task object"]),
}


@pytest.mark.parametrize("case", sorted(BAD_TASKS))
def test_bad_task_is_one_line_exit_2_and_nothing_written(tmp_path: Path, case: str) -> None:
    task, expected = BAD_TASKS[case]
    folder = tmp_path / "train"
    write_task(folder, "ok", GOOD)
    path = write_task(folder, "bad", task)
    result, out = run_build(tmp_path, folder)
    assert_one_line_error(result, out, str(path), *expected)


def test_grid_larger_than_chosen_canvas(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    write_task(folder, "big", with_pair("train", 0, input=[[1] * 11]))
    result, out = run_build(tmp_path, folder, None, "--canvas", "10")
    assert_one_line_error(result, out, "task big train[0].input", "1x11", "10x10 canvas")


def test_malformed_json(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "broken.json").write_text('{"train": [')
    result, out = run_build(tmp_path, folder)
    assert_one_line_error(result, out, "broken.json", "not valid JSON")


def test_unreadable_file(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    write_task(folder, "ok", GOOD)
    (folder / "gone.json").symlink_to(tmp_path / "nowhere.json")
    result, out = run_build(tmp_path, folder)
    assert_one_line_error(result, out, "gone.json", "cannot read")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    path = write_task(folder, "locked", GOOD)
    path.chmod(0)
    result, out = run_build(tmp_path, folder)
    assert_one_line_error(result, out, "locked.json", "cannot read")


def test_missing_source(tmp_path: Path) -> None:
    result, out = run_build(tmp_path, tmp_path / "nope")
    assert_one_line_error(result, out, "nope", "no such file")


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result, out = run_build(tmp_path, tmp_path / "empty")
    assert_one_line_error(result, out, "empty", "no task files")


def test_same_id_different_content_across_sources(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_task(a, "dup", simple_task(1))
    write_task(b, "dup", simple_task(2))
    result, out = run_build(tmp_path, a, b)
    assert_one_line_error(result, out, "task dup", "different content", str(a / "dup.json"))


def test_same_id_same_content_is_merged(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_task(a, "dup", simple_task(1))
    write_task(b, "dup", simple_task(1))
    tasks = merge_sources([load_source(a), load_source(b)])
    assert [t.id for t in tasks] == ["dup"]


def test_same_id_twice_in_one_folder(tmp_path: Path) -> None:
    write_task(tmp_path / "src" / "x", "dup", GOOD)
    write_task(tmp_path / "src" / "y", "dup", GOOD)
    with pytest.raises(ArcpipeError, match="task id also used by"):
        load_source(tmp_path / "src")


# ----------------------------------------------------------------------------- Kaggle files


def write_kaggle(folder: Path, name: str, tasks: dict, solutions: dict | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    challenges = folder / f"{name}_challenges.json"
    challenges.write_bytes(orjson.dumps(tasks))
    if solutions is not None:
        solutions_path(challenges).write_bytes(orjson.dumps(solutions))
    return challenges


def kaggle_tasks() -> tuple[dict, dict]:
    tasks, solutions = {}, {}
    for i, task_id in enumerate(["k1", "k2"]):
        task = simple_task(i, n_test=i + 1)
        solutions[task_id] = [p["output"] for p in task["test"]]
        tasks[task_id] = {
            "train": task["train"],
            "test": [{"input": p["input"]} for p in task["test"]],
        }
    return tasks, solutions


def test_kaggle_challenges_with_and_without_solutions(tmp_path: Path) -> None:
    tasks, solutions = kaggle_tasks()
    with_sol = load_source(write_kaggle(tmp_path / "a", "x", tasks, solutions))
    without = load_source(write_kaggle(tmp_path / "b", "x", tasks, None))
    assert [t.id for t in with_sol] == ["k1", "k2"]
    assert np.array_equal(with_sol[1].test[1].output, np.array(solutions["k2"][1]))
    assert all(p.output is None for t in without for p in t.test)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s.update(zz=[[[1]]]), ["task zz", "no such task"]),
        (lambda s: s.pop("k1"), ["task k1", "missing from the solutions file"]),
        (lambda s: s["k2"].pop(), ["task k2", "1 solutions for 2 test inputs"]),
        (lambda s: s.update(k1=[[[1, 2], [3]]]), ["task k1 test[0]", "ragged"]),
    ],
    ids=["extra-id", "missing-id", "wrong-count", "bad-grid"],
)
def test_solutions_mismatch(tmp_path: Path, mutate, expected: list[str]) -> None:
    tasks, solutions = kaggle_tasks()
    mutate(solutions)
    challenges = write_kaggle(tmp_path / "k", "arc-agi_x", tasks, solutions)
    result, out = run_build(tmp_path, challenges)
    assert_one_line_error(result, out, "arc-agi_x_solutions.json", *expected)


# ----------------------------------------------------------------------------- grids


def test_parse_grid_accepts_valid_grids() -> None:
    grid = parse_grid([[0, 9], [5, 1]])
    assert grid.dtype == np.uint8 and grid.tolist() == [[0, 9], [5, 1]]
    assert parse_grid([[7] * 30] * 30).shape == (30, 30)


def test_real_cli_prints_no_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    write_task(folder, "bad", with_pair("train", 0, input=[[1, 2], [3]]))
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "arcpipe",
            "build-data",
            "--train",
            str(folder),
            "--eval",
            str(folder),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "task bad train[0].input: ragged grid" in proc.stderr
    assert not out.exists()


def test_kaggle_test_challenges_merge_with_the_solved_training_copy(tmp_path: Path) -> None:
    tasks, solutions = kaggle_tasks()
    solved = load_source(write_kaggle(tmp_path / "a", "arc-agi_training", tasks, solutions))
    unsolved = load_source(write_kaggle(tmp_path / "b", "arc-agi_test", tasks, None))
    merged = merge_sources([solved, unsolved])
    assert all(p.output is not None for t in merged for p in t.test)
    merged = merge_sources([unsolved, solved])  # order does not matter
    assert all(p.output is not None for t in merged for p in t.test)
    tasks["k1"]["test"][0]["input"] = [[9]]
    changed = load_source(write_kaggle(tmp_path / "c", "arc-agi_test", tasks, None))
    with pytest.raises(ArcpipeError, match="different content"):
        merge_sources([solved, changed])


def test_kaggle_stand_in_builds_with_test_challenges_as_target(shared_data, tmp_path) -> None:
    kaggle = shared_data / "kaggle" / "arc-prize-2025"
    result, out = run_build(
        tmp_path,
        kaggle / "arc-agi_training_challenges.json",
        kaggle / "arc-agi_test_challenges.json",
    )
    assert result.exit_code == 0, result.output
    from arcpipe.data.dataset import Dataset

    ds = Dataset.open(out)
    assert sum(t.role == "target" for t in ds.tasks) == 240
    assert ds.manifest["counts"]["test_examples"] == 3 * 259  # 259 test inputs, 3 variants each
