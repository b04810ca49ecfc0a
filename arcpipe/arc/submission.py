"""submission.json: build it from votes, fill missing attempts, validate, write atomically.

Kaggle's format is ``{task_id: [{"attempt_1": G, "attempt_2": G}, ...]}``: every task of the test
challenges, one dict per test input in order, every attempt key present, grids of ints 0-9 from
1x1 to 30x30. The reference drops a test input without predictions (misaligning the task's list);
we never do.

Fill rule, per test input: the distinct voted grids, best first; when there are fewer than K, the
test input itself (a common ARC fallback) if not already among them; then the first attempt
repeated. A test input without any candidate therefore gets its own input K times. With
programmed answers (``predict --programs``, :mod:`arcpipe.arc.programs`), a task a program fits
gets the program's answer first and the voted grids after it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from arcpipe.arc.tasks import MAX_GRID_SIZE, describe, parse_grid
from arcpipe.arc.vote import Votes
from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import write_bytes_atomic

Grid = list[list[int]]


def attempt_keys(k: int) -> list[str]:
    return [f"attempt_{i}" for i in range(1, k + 1)]


def fill_attempts(ranked: list[np.ndarray], test_input: np.ndarray, k: int) -> list[Grid]:
    """K attempts for one test input by the module's fill rule."""
    chosen: list[np.ndarray] = list(ranked[:k])
    if len(chosen) < k and not any(_same(g, test_input) for g in chosen):
        chosen.append(test_input)
    while len(chosen) < k:
        chosen.append(chosen[0])
    return [g.tolist() for g in chosen]


Programmed = dict[str, list[np.ndarray]]  # task id -> a program's answer for each test input


def fallback_submission(
    test_inputs: dict[str, list[np.ndarray]], k: int = 2, programmed: Programmed | None = None
) -> dict:
    """The submission before any prediction: every attempt is the test input itself (after the
    programmed answer, where a task has one)."""
    submission = {}
    for task_id, grids in test_inputs.items():
        ranked = [_first(programmed, task_id, test, []) for test in range(len(grids))]
        submission[task_id] = [
            dict(zip(attempt_keys(k), fill_attempts(r, grid, k))) for r, grid in zip(ranked, grids)
        ]
    return submission


def submission_from_votes(
    votes: Votes,
    test_inputs: dict[str, list[np.ndarray]],
    k: int = 2,
    programmed: Programmed | None = None,
) -> dict:
    """Top-K voted answers of every test input of every task in ``test_inputs``; a task in
    ``programmed`` gets its programmed answer first, then the distinct voted ones."""
    index = {task_id: i for i, task_id in enumerate(votes.candidates.task_ids)}
    submission = {}
    for task_id, grids in test_inputs.items():
        entries = []
        for test, grid in enumerate(grids):
            t = index.get(task_id)
            ranked = [] if t is None else [votes.grid(g) for g in votes.top(t, test, k)]
            ranked = _first(programmed, task_id, test, ranked)
            entries.append(dict(zip(attempt_keys(k), fill_attempts(ranked, grid, k))))
        submission[task_id] = entries
    return submission


def _first(
    programmed: Programmed | None, task_id: str, test: int, ranked: list[np.ndarray]
) -> list[np.ndarray]:
    """``ranked`` after the task's programmed answer for this test input, if it has one."""
    if not programmed or task_id not in programmed:
        return ranked
    answer = programmed[task_id][test]
    return [answer, *(g for g in ranked if not _same(g, answer))]


def validate_submission(
    submission: object,
    expected: dict[str, int],
    file: str | Path | None = None,
    k: int | None = None,
) -> None:
    """Check a submission against the expected task ids and test counts.

    Args:
        expected: task id -> number of test inputs.
        k: attempts required per test input; None requires the same K >= 1 everywhere, K being
            the most attempts any entry has.

    Raises:
        ArcpipeError: naming the task, the test index and the attempt that is wrong.
    """
    if not isinstance(submission, dict):
        raise ArcpipeError(f"is {describe(submission)}, expected an object of task ids", file=file)
    if k is None:
        k = max(
            (
                len(e)
                for t in expected
                if isinstance(submission.get(t), list)
                for e in submission[t]
                if isinstance(e, dict)
            ),
            default=1,
        )
    for task_id, count in expected.items():
        if task_id not in submission:
            raise ArcpipeError("missing from the submission", file=file, task=task_id)
        entries = submission[task_id]
        if not isinstance(entries, list) or len(entries) != count:
            got = len(entries) if isinstance(entries, list) else describe(entries)
            raise ArcpipeError(
                f"has {got} entries for {count} test inputs", file=file, task=task_id
            )
        for i, entry in enumerate(entries):
            _validate_entry(entry, k, file, task_id, i)


def _validate_entry(entry: object, k: int, file, task_id: str, index: int) -> None:
    where = {"file": file, "task": task_id, "split": "test", "index": index}
    if not isinstance(entry, dict) or not entry:
        raise ArcpipeError(f"is {describe(entry)}, expected an object of attempts", **where)
    for key in attempt_keys(k):
        if key not in entry:
            raise ArcpipeError(f"missing '{key}'", **where)
        try:
            parse_grid(entry[key], MAX_GRID_SIZE)
        except ArcpipeError as err:
            raise err.located(field=key, **where) from None


def write_submission(path: str | Path, submission: dict, expected: dict[str, int], k: int) -> None:
    """Validate, then write atomically (readers see the old file or the new one)."""
    validate_submission(submission, expected, file=path, k=k)
    write_bytes_atomic(path, orjson.dumps(submission))


def load_submission(path: str | Path) -> dict:
    """Read a submission.json (validated by :func:`validate_submission` separately)."""
    path = Path(path)
    try:
        return orjson.loads(path.read_bytes())
    except OSError as err:
        raise ArcpipeError(f"cannot read: {err.strerror or err}", file=path) from None
    except orjson.JSONDecodeError as err:
        raise ArcpipeError(f"not valid JSON: {err}", file=path) from None


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool((a == b).all())
