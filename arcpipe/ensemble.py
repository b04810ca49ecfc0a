"""``arcpipe vote``: one or several runs' candidates files -> one submission, under any rule.

Competitors ensemble checkpoints and seeds; the reference does it implicitly by accumulating votes
across its in-training evaluations. Here the files are merged (:func:`merge_runs`: counts and
q_halt sums add up, cross-view scores average over every (run, view) that scored a grid), voted
by the chosen rule, and written as a complete, validated submission for the dataset's target
tasks, atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arcpipe.arc.candidates import Candidates, merge_runs
from arcpipe.arc.submission import submission_from_votes, write_submission
from arcpipe.arc.vote import vote
from arcpipe.data.dataset import Dataset
from arcpipe.errors import ArcpipeError


@dataclass(frozen=True)
class VoteResult:
    """What ``arcpipe vote`` did."""

    candidates: int  # merged candidates voted
    test_inputs: int
    programmed: int = 0  # target tasks answered first by a whole-grid program


def vote_files(
    paths: list[Path],
    data: Path,
    out: Path,
    rule: str = "count",
    attempts: int = 2,
    merged: Path | None = None,
    programs: bool = False,
) -> VoteResult:
    """Merge ``paths``, vote by ``rule`` and write the submission to ``out``.

    Args:
        paths: candidates files of runs that answered the same target tasks.
        data: the dataset those runs predicted (any of them: the target tasks and test inputs
            must agree), for the submission's tasks and its fill rule.
        out: the submission file.
        rule: a rule of :mod:`arcpipe.arc.vote`.
        attempts: attempts per test input.
        merged: where to also write the merged candidates, if wanted.
        programs: put a fitted whole-grid program's answer first (:mod:`arcpipe.arc.programs`).

    Raises:
        ArcpipeError: unreadable files, files or dataset answering other tasks, a rule the
            candidates cannot support, or a bad number of attempts.
    """
    from arcpipe.predict import target_program_answers, target_test_inputs

    if attempts < 1:
        raise ArcpipeError("--attempts must be >= 1")
    candidates = merge_runs(paths)
    dataset = Dataset.open(data)
    test_inputs = target_test_inputs(dataset)
    check_tasks(candidates, test_inputs, paths[0], dataset.path)
    votes = vote(candidates, rule)
    expected = {task_id: len(grids) for task_id, grids in test_inputs.items()}
    programmed = target_program_answers(dataset) if programs else None
    submission = submission_from_votes(votes, test_inputs, attempts, programmed)
    write_submission(out, submission, expected, attempts)
    if merged is not None:
        candidates.save(merged)
    return VoteResult(len(candidates), sum(expected.values()), len(programmed or {}))


def check_tasks(
    candidates: Candidates, test_inputs: dict[str, list[np.ndarray]], file: Path, data: Path
) -> None:
    """The candidates answer exactly the dataset's target tasks, with as many test inputs each."""
    tests = dict(zip(candidates.task_ids, candidates.num_tests.tolist()))
    for task_id, grids in test_inputs.items():
        if task_id not in tests:
            raise ArcpipeError(f"has no entry for target task {task_id} of {data}", file=file)
        if tests[task_id] != len(grids):
            raise ArcpipeError(
                f"has {tests[task_id]} test inputs, the dataset {len(grids)}",
                file=file,
                task=task_id,
            )
    extra = sorted(set(tests) - set(test_inputs))
    if extra:
        raise ArcpipeError(
            f"answers a task that the dataset {data} does not target", file=file, task=extra[0]
        )
