"""The sample ARC tasks in data/sample: what their generator writes, well-formed, and correct.

The rule checks below re-implement a few rules in plain Python, independently of the numpy code in
scripts/make_sample_tasks.py, so a bug there cannot hide behind a matching bug here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_sample_tasks.py"
SAMPLE = ROOT / "data" / "sample"

Grid = list[list[int]]


def _load_tasks() -> dict[str, tuple[str, dict]]:
    """task id -> (split folder, parsed task)."""
    return {
        path.stem: (path.parent.name, json.loads(path.read_text()))
        for path in sorted(SAMPLE.glob("*/*.json"))
    }


TASKS = _load_tasks()


def _run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


# ----------------------------------------------------------------------------- up to date


def test_sample_files_match_generator() -> None:
    result = _run_script("--check")
    assert result.returncode == 0, result.stderr


def test_generator_is_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert _run_script("--out", str(tmp_path / name)).returncode == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.json"))
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.json"))
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_check_reports_stale_files(tmp_path: Path) -> None:
    assert _run_script("--out", str(tmp_path)).returncode == 0
    path = tmp_path / "training" / "flip_ud.json"
    path.write_bytes(path.read_bytes() + b" ")
    result = _run_script("--check", "--out", str(tmp_path))
    assert result.returncode == 1
    assert "flip_ud.json" in result.stderr


# ----------------------------------------------------------------------------- shape of the set


def test_split_sizes() -> None:
    splits = [split for split, _ in TASKS.values()]
    assert splits.count("training") == 12
    assert splits.count("evaluation") == 4
    assert len(TASKS) == 16


def test_several_tasks_have_multiple_test_inputs() -> None:
    multi = {tid for tid, (_, task) in TASKS.items() if len(task["test"]) >= 2}
    assert len(multi) >= 3
    assert any(TASKS[tid][0] == "evaluation" for tid in multi)


def _assert_grid(grid: object) -> None:
    assert isinstance(grid, list) and 1 <= len(grid) <= 10
    assert all(isinstance(row, list) and len(row) == len(grid[0]) for row in grid), "ragged"
    assert 1 <= len(grid[0]) <= 10
    assert all(type(v) is int and 0 <= v <= 9 for row in grid for v in row)


@pytest.mark.parametrize("task_id", sorted(TASKS))
def test_task_is_well_formed(task_id: str) -> None:
    _, task = TASKS[task_id]
    assert set(task) == {"train", "test"}
    assert 3 <= len(task["train"]) <= 4
    assert 1 <= len(task["test"]) <= 3
    for pair in task["train"] + task["test"]:
        assert set(pair) == {"input", "output"}  # every test pair carries its solution
        _assert_grid(pair["input"])
        _assert_grid(pair["output"])
        assert len(pair["input"]) >= 3 and len(pair["input"][0]) >= 3
    train_inputs = [p["input"] for p in task["train"]]
    assert all(p["input"] not in train_inputs for p in task["test"])


def test_arcpipe_loads_the_sample() -> None:
    from arcpipe.arc.tasks import load_source

    tasks = load_source(SAMPLE)
    assert sorted(t.id for t in tasks) == sorted(TASKS)
    assert all(p.output is not None for t in tasks for p in t.test)


# ----------------------------------------------------------------------------- rules hold


def _gravity_down(g: Grid) -> Grid:
    columns = []
    for c in range(len(g[0])):
        cells = [row[c] for row in g if row[c] != 0]
        columns.append([0] * (len(g) - len(cells)) + cells)
    return [list(row) for row in zip(*columns, strict=True)]


def _crop(g: Grid) -> Grid:
    rows = [r for r, row in enumerate(g) if any(row)]
    cols = [c for c in range(len(g[0])) if any(row[c] for row in g)]
    return [row[cols[0] : cols[-1] + 1] for row in g[rows[0] : rows[-1] + 1]]


def _count_bar(g: Grid) -> Grid:
    cells = [v for row in g for v in row if v]
    return [[cells[0]] * len(cells)]


RULES: dict[str, Callable[[Grid], Grid]] = {
    "flip_lr": lambda g: [row[::-1] for row in g],
    "flip_ud": lambda g: g[::-1],
    "transpose": lambda g: [list(col) for col in zip(*g, strict=True)],
    "rotate_90": lambda g: [list(col) for col in zip(*g[::-1], strict=True)],  # clockwise
    "colour_swap": lambda g: [[{1: 2, 2: 1}.get(v, v) for v in row] for row in g],
    "gravity_down": _gravity_down,
    "scale_x2": lambda g: [[v for v in row for _ in "ab"] for row in g for _ in "ab"],
    "tile_2x2": lambda g: [row + row for row in g] * 2,
    "shift_right": lambda g: [[0, *row[:-1]] for row in g],
    "crop_bbox": _crop,
    "count_bar": _count_bar,
}


@pytest.mark.parametrize("task_id", sorted(RULES))
def test_rule_holds_for_every_pair(task_id: str) -> None:
    rule = RULES[task_id]
    _, task = TASKS[task_id]
    for i, pair in enumerate(task["train"] + task["test"]):
        assert rule(pair["input"]) == pair["output"], f"{task_id} pair {i}"
        assert pair["output"] != pair["input"], f"{task_id} pair {i} is unchanged"


def test_mirror_complete_outputs_are_symmetric_repairs() -> None:
    for pair in TASKS["mirror_complete"][1]["train"] + TASKS["mirror_complete"][1]["test"]:
        out = pair["output"]
        assert all(row == row[::-1] for row in out)
        # Only empty cells may change.
        for row_in, row_out in zip(pair["input"], out, strict=True):
            assert all(a in (0, b) for a, b in zip(row_in, row_out, strict=True))
