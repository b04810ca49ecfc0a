"""Score a submission against known solutions, by both of ARC's averaging rules.

A test input counts when any attempt equals its solution exactly (shape and every cell).
``task_score`` averages per task (correct test inputs / test inputs) and then over tasks, as the
ARC Prize scorer does; ``output_score`` averages over all test outputs, as Kaggle's text reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arcpipe.arc.submission import validate_submission
from arcpipe.arc.tasks import load_source, parse_grid, read_json
from arcpipe.errors import ArcpipeError


@dataclass
class TaskScore:
    """One task's outcome."""

    task_id: str
    correct: list[bool]  # per test input
    attempts_used: list[int]  # 1-based attempt that matched, 0 when none did

    @property
    def score(self) -> float:
        return sum(self.correct) / len(self.correct)


@dataclass
class Score:
    """A submission's score by both rules, with the per-task detail."""

    tasks: list[TaskScore]

    @property
    def task_score(self) -> float:
        return float(np.mean([t.score for t in self.tasks])) if self.tasks else 0.0

    @property
    def output_score(self) -> float:
        flags = [c for t in self.tasks for c in t.correct]
        return float(np.mean(flags)) if flags else 0.0

    def to_dict(self) -> dict:
        return {
            "task_score": self.task_score,
            "output_score": self.output_score,
            "tasks": len(self.tasks),
            "test_outputs": sum(len(t.correct) for t in self.tasks),
            "solved_tasks": sum(t.score == 1.0 for t in self.tasks),
            "per_task": {
                t.task_id: {"correct": t.correct, "attempt": t.attempts_used} for t in self.tasks
            },
        }


def load_solutions(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Known test outputs by task id, from a ``*_solutions.json`` file or any task SOURCE.

    Tasks with an unknown test output are left out.

    Raises:
        ArcpipeError: unreadable or malformed solutions.
    """
    path = Path(path)
    if path.is_file() and path.name.endswith("_solutions.json"):
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise ArcpipeError("expected an object mapping task ids to output lists", file=path)
        solutions = {}
        for task_id, grids in raw.items():
            if not isinstance(grids, list) or not grids:
                raise ArcpipeError("expected a non-empty list of grids", file=path, task=task_id)
            parsed = []
            for i, grid in enumerate(grids):
                try:
                    parsed.append(parse_grid(grid))
                except ArcpipeError as err:
                    raise err.located(file=path, task=task_id, split="test", index=i) from None
            solutions[task_id] = parsed
        return solutions
    return {
        t.id: [p.output for p in t.test]
        for t in load_source(path)
        if all(p.output is not None for p in t.test)
    }


def score_submission(
    submission: dict, solutions: dict[str, list[np.ndarray]], file: str | Path | None = None
) -> Score:
    """Score ``submission`` on every task of ``solutions`` (validated first).

    Raises:
        ArcpipeError: the submission misses a task, a test input or an attempt, or has a bad grid.
    """
    validate_submission(submission, {t: len(g) for t, g in solutions.items()}, file=file)
    tasks = []
    for task_id, truths in solutions.items():
        correct, used = [], []
        for entry, truth in zip(submission[task_id], truths):
            match = next(
                (
                    i
                    for i, key in enumerate(sorted(entry, key=_attempt_order), 1)
                    if _equal(entry[key], truth)
                ),
                0,
            )
            correct.append(match > 0)
            used.append(match)
        tasks.append(TaskScore(task_id, correct, used))
    return Score(tasks)


def _attempt_order(key: str) -> int:
    return int(key.rsplit("_", 1)[1]) if key.rsplit("_", 1)[-1].isdigit() else 1 << 30


def _equal(grid: list, truth: np.ndarray) -> bool:
    array = np.asarray(grid)
    return array.shape == truth.shape and bool((array == truth).all())
