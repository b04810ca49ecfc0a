"""Cross-view scores: a grid is scored in each view's own frame, as the dataset encodes it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import arcpipe.predict as predict
from arcpipe.arc.encode import EOS, PAD, VOCAB_SIZE, label_cells
from arcpipe.arc.vote import vote
from arcpipe.crossview import CrossViewScorer, view_frames, view_logprob
from arcpipe.data.dataset import Dataset
from arcpipe.predict import (
    ViewOutputs,
    plan_batches,
    target_tasks,
    to_candidates,
    variant_rank,
)

WRONG = -1.0  # log-probability of every token but the label's in the oracle tables


def oracle_tables(dataset: Dataset, rows: np.ndarray) -> np.ndarray:
    """Per view: log-probability 0 for the dataset's own label token, -1 for any other token.

    The labels come from :meth:`Dataset.encode` (the numba encoder used for training), an
    independent path from the Transform.view + label_cells mapping under test.
    """
    _, labels, _ = dataset.encode("test", rows)
    tables = np.full((len(rows), dataset.seq_len, VOCAB_SIZE), WRONG, dtype=np.float32)
    b, cell = np.nonzero(labels != PAD)
    tables[b, cell, labels[b, cell]] = 0.0
    return tables


def truth_of(dataset: Dataset, row: int) -> np.ndarray:
    view = dataset.view("test", row)
    task = next(t for t in dataset.tasks if t.id == view.task_id)
    return dataset.task_pairs(task)[task.num_train + view.pair_index][1]


def test_label_cells_are_the_grid_and_its_eos_border() -> None:
    grid = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.uint8)
    positions, tokens = label_cells(grid, canvas=5, offset=(1, 1))
    board = np.full(25, PAD)
    board[positions] = tokens
    board = board.reshape(5, 5)
    assert (board[1:3, 1:4] == grid + 2).all()
    assert (board[3, 1:4] == EOS).all() and (board[1:3, 4] == EOS).all()
    assert board[3, 4] == PAD and len(positions) == 6 + 3 + 2  # the corner stays PAD
    full = np.zeros((5, 5), dtype=np.uint8)  # no room for a border at the canvas edge
    assert len(label_cells(full, canvas=5)[0]) == 25


def test_every_view_scores_the_truth_in_its_own_frame(sample_dataset: Path) -> None:
    """All 8 dihedral transforms and random colour maps: the truth scores exactly 0 everywhere."""
    dataset = Dataset.open(sample_dataset)
    rows = np.arange(len(dataset.examples("test")))
    tables = oracle_tables(dataset, rows)
    frames = view_frames(dataset, "test", rows)
    assert len({f["transform"].dihedral for f in frames}) >= 4
    for row, table, frame in zip(rows, tables, frames):
        truth = truth_of(dataset, int(row))
        seen = frame["transform"].view(truth)  # the truth as this view shows it
        h, w = seen.shape
        cells = h * w + (h if w < dataset.canvas else 0) + (w if h < dataset.canvas else 0)
        score = view_logprob(table, truth, frame["transform"], frame["frame"])
        assert score == (0.0, cells)
        wrong = truth.copy()
        wrong[-1, 0] = (wrong[-1, 0] + 1) % 10  # one cell: one wrong token in any frame
        assert view_logprob(table, wrong, frame["transform"], frame["frame"]) == (WRONG, cells)
        if w > 1:  # one column less in the view: its EOS column lands on the truth's colours
            smaller = frame["transform"].invert(seen[:, : w - 1])
            score = view_logprob(table, smaller, frame["transform"], frame["frame"])
            assert score == (h * WRONG, h * (w - 1) + h + (w - 1) * (h < dataset.canvas))


def _outputs(dataset: Dataset, rows: np.ndarray, answers: list[np.ndarray | None]) -> ViewOutputs:
    """Views answering ``answers`` (task frame; None: an empty, malformed board)."""
    frames = view_frames(dataset, "test", rows)
    tokens = np.zeros((len(rows), dataset.seq_len), dtype=np.uint8)
    for k, (answer, frame) in enumerate(zip(answers, frames)):
        if answer is None:
            tokens[k, 0] = EOS
            continue
        positions, cells = label_cells(
            frame["transform"].view(answer), dataset.canvas, frame["frame"]["offset"]
        )
        tokens[k, positions] = cells
    n = len(rows)
    return ViewOutputs(
        tokens,
        np.zeros((n, dataset.seq_len), np.float32),
        np.linspace(0.2, 0.9, n),
        np.zeros(n, bool),
        np.full(n, 2, np.int32),
        oracle_tables(dataset, rows),
    )


def test_scorer_scores_the_top_k_by_count_under_every_view(sample_dataset: Path) -> None:
    """A majority answer that is wrong, the truth in one view, a malformed view: poe finds it."""
    dataset = Dataset.open(sample_dataset)
    records = np.asarray(dataset.examples("test"))
    pair = records[0, 1]
    rows = np.flatnonzero(records[:, 1] == pair)
    assert len(rows) == 4
    truth = truth_of(dataset, int(rows[0]))
    wrong = truth.copy()
    wrong[0, :2] = (wrong[0, :2] + 1) % 10  # two wrong cells
    answers = [wrong, None, truth, wrong]
    outputs = _outputs(dataset, rows, answers)
    candidates = to_candidates(dataset, "test", rows, outputs)
    assert len(candidates) == 3 and candidates.meta["malformed"] == 1

    scorer = CrossViewScorer(2, Counter({int(pair): 4}), *target_tasks(dataset, "test"))

    def add(batch: slice) -> tuple:
        part = _outputs(dataset, rows[batch], answers[batch])
        batch_candidates = to_candidates(dataset, "test", rows[batch], part)
        return scorer.add(dataset, "test", rows[batch], part.tables, batch_candidates)

    assert [len(a) for a in add(slice(0, 3))] == [0, 0, 0, 0]  # the test input is still open
    views, over, logprob, cells = scores = add(slice(3, 4))
    assert not scorer.open
    assert views.tolist() == [rows[0], rows[2]]  # count order: wrong (2 votes), then the truth
    assert over.tolist() == [4, 4]  # every view, the malformed one included
    assert logprob.tolist() == [4 * 2 * WRONG, 0.0]
    h, w = truth.shape
    assert cells.tolist() == [4 * (h * w + h + w)] * 2  # same shape, same cells in every view

    scored = candidates.with_scores(scores)
    scored.meta["cross_view_k"] = 2
    by_count, by_poe = vote(scored, "count"), vote(scored, "poe")
    assert np.array_equal(by_count.grid(0), wrong) and np.array_equal(by_poe.grid(0), truth)
    assert by_poe.cross_logprob.tolist() == [0.0, 2 * WRONG]  # mean per view
    by_both = vote(scored, "poe_count")
    assert np.array_equal(by_both.grid(0), truth)  # ln 1 + 0 > ln 2 - 2
    assert by_both.poe_count.tolist() == pytest.approx([0.0, np.log(2) + 2 * WRONG])


def test_a_stopped_run_scores_its_open_test_inputs_over_the_views_done(
    sample_dataset: Path,
) -> None:
    dataset = Dataset.open(sample_dataset)
    records = np.asarray(dataset.examples("test"))
    rows = np.flatnonzero(records[:, 1] == records[0, 1])
    truth = truth_of(dataset, int(rows[0]))
    outputs = _outputs(dataset, rows[:2], [truth, truth])
    scorer = CrossViewScorer(8, Counter({int(records[0, 1]): 4}), *target_tasks(dataset, "test"))
    candidates = to_candidates(dataset, "test", rows[:2], outputs)
    scorer.add(dataset, "test", rows[:2], outputs.tables, candidates)
    views, over, logprob, _ = scorer.finish()
    assert (views.tolist(), over.tolist(), logprob.tolist()) == ([rows[0]], [2], [0.0])


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_plan_by_test_input_visits_every_row_once_with_few_open_inputs(
    sample_dataset: Path, world_size: int, monkeypatch
) -> None:
    monkeypatch.setattr(predict, "PREFIX_VIEWS", 2)
    dataset = Dataset.open(sample_dataset)
    rows = np.arange(len(dataset.examples("test")))
    pairs = np.asarray(dataset.examples("test")[:, 1])
    ranks = variant_rank(dataset, "test", rows)
    plan = plan_batches(dataset, "test", rows, 3, world_size, by_test_input=True)
    assert len(plan) == world_size
    visited = np.concatenate([b for batches in plan for b in batches])
    assert sorted(visited.tolist()) == rows.tolist()
    owners = [set(pairs[np.concatenate(b)].tolist()) if b else set() for b in plan]
    assert sum(len(o) for o in owners) == len(set(pairs.tolist()))  # one rank per test input
    for batches in plan:
        if not batches:
            continue
        order = np.concatenate(batches)
        prefix = ranks[order] < 2
        assert prefix[: prefix.sum()].all()  # first the two first variants of every input ...
        rest = pairs[order[~prefix]]
        changes = np.count_nonzero(rest[1:] != rest[:-1])
        assert changes == len(set(rest.tolist())) - 1  # ... then one test input at a time
    plain = plan_batches(dataset, "test", rows, 3, world_size)
    assert sorted(np.concatenate([b for bs in plain for b in bs]).tolist()) == rows.tolist()
