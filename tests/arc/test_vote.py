"""Voting, attempts, submissions and scores on hand-made candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from arcpipe.arc.candidates import Candidates, merge_runs
from arcpipe.arc.score import load_solutions, score_submission
from arcpipe.arc.submission import (
    fallback_submission,
    fill_attempts,
    submission_from_votes,
    validate_submission,
    write_submission,
)
from arcpipe.arc.vote import pass_at_k, vote
from arcpipe.cli import main
from arcpipe.errors import ArcpipeError

A, B, C = (np.full((2, 2), v, dtype=np.uint8) for v in (1, 2, 3))
INPUT = np.array([[7, 7, 7]], dtype=np.uint8)


def make(rows: list[tuple[int, int, np.ndarray, float, float]], tasks=("t0", "t1"), tests=(1, 2)):
    """Candidates from (task, test, grid, q, logprob) rows; the view is the row index."""
    task, test, grid, q, lp = zip(*rows)
    return Candidates.from_grids(
        list(tasks), list(tests), task, test, range(len(rows)), q, lp, list(grid)
    )


def ranked(votes, task: int, test: int) -> list[int]:
    return [int(votes.grid(g)[0, 0]) for g in votes.top(task, test, 10)]


def test_count_then_mean_q_then_first_appearance() -> None:
    c = make(
        [
            (0, 0, B, 0.9, 0),
            (0, 0, A, 0.1, 0),
            (0, 0, A, 0.2, 0),
            (0, 0, B, 0.9, 0),  # tie 2:2, q
            (0, 0, C, 0.5, 0),
            (1, 0, C, 0.5, 0),
            (1, 0, B, 0.5, 0),  # tie on count and q: first appearance wins
        ]
    )
    votes = vote(c)
    assert ranked(votes, 0, 0) == [2, 1, 3]
    assert votes.count[votes.top(0, 0, 1)[0]] == 2
    assert votes.mean_q[votes.top(0, 0, 1)[0]] == pytest.approx(0.9)
    assert ranked(votes, 1, 0) == [3, 2]
    assert ranked(votes, 1, 1) == []


def test_other_rules() -> None:
    c = make(
        [
            (0, 0, A, 0.1, -0.1),
            (0, 0, A, 0.1, -0.1),
            (0, 0, A, 0.1, -0.1),
            (0, 0, B, 0.9, -2.0),
            (0, 0, C, 0.8, -0.01),
        ]
    )
    assert ranked(vote(c, "count"), 0, 0) == [1, 2, 3]
    assert ranked(vote(c, "q_weighted"), 0, 0) == [2, 3, 1]  # 0.9 > 0.8 > 0.3
    assert ranked(vote(c, "consistency"), 0, 0) == [3, 1, 2]  # mean log-probability


def with_scores(c: Candidates, scores: list[tuple], k: int = 2) -> Candidates:
    """``c`` with cross-view scores: (view row of the grid's candidate, views, summed logprob[,
    cells scored]); cells default to 10 per view."""
    rows = [(*r, 10 * r[1]) if len(r) == 3 else r for r in scores]
    c = c.with_scores(list(zip(*rows)) if rows else None)
    c.meta["cross_view_k"] = k
    return c


def test_poe_ranks_the_scored_grids_by_cross_view_logprob_then_the_rest_by_count() -> None:
    c = make(
        [
            (0, 0, A, 0.1, 0),
            (0, 0, A, 0.1, 0),
            (0, 0, A, 0.1, 0),
            (0, 0, B, 0.9, 0),
            (0, 0, B, 0.9, 0),
            (0, 0, C, 0.5, 0),  # third by count: not scored with k = 2
            (1, 0, B, 0.5, 0),
            (1, 0, C, 0.5, 0),  # tie on the poe score: count, then q, then first view
        ]
    )
    c = with_scores(c, [(0, 5, -10.0), (3, 5, -4.0), (6, 4, -2.0), (7, 4, -2.0)])
    poe = vote(c, "poe")
    assert ranked(poe, 0, 0) == [2, 1, 3]  # B (-0.8 per view), A (-2.0), C unscored
    assert poe.cross_logprob[poe.top(0, 0, 3)].tolist()[:2] == [-0.8, -2.0]
    assert np.isnan(poe.cross_logprob[poe.top(0, 0, 3)[2]]) and poe.cross_over[2] == 0
    assert ranked(poe, 1, 0) == [2, 3]
    both = vote(c, "poe_count")  # ln 3 - 2.0 = -0.90 < ln 2 - 0.8 = -0.11
    assert ranked(both, 0, 0) == [2, 1, 3]
    c2 = with_scores(c, [(0, 5, -5.0), (3, 5, -4.0)])  # A -1.0 vs B -0.8 per view
    assert ranked(vote(c2, "poe"), 0, 0) == [2, 1, 3]
    assert ranked(vote(c2, "poe_count"), 0, 0) == [1, 2, 3]  # ln 3 - 1.0 > ln 2 - 0.8
    assert ranked(vote(c2, "count"), 0, 0) == [1, 2, 3]  # the scores change nothing else


def test_poe_cells_scores_per_cell_where_poe_prefers_fewer_cells() -> None:
    small, large = np.zeros((1, 1), np.uint8), np.ones((3, 3), np.uint8)
    c = make([(0, 0, small, 0.5, 0), (0, 0, large, 0.5, 0)])
    # per view: small 3 cells at -1.0 each (-3), large 15 cells at -0.4 each (-6)
    c = with_scores(c, [(0, 2, -6.0, 6), (1, 2, -12.0, 30)])
    assert ranked(vote(c, "poe"), 0, 0) == [0, 1]  # -3 > -6 per view
    cells = vote(c, "poe_cells")
    assert ranked(cells, 0, 0) == [1, 0]  # -0.4 > -1.0 per cell
    assert cells.cross_cell_logprob.tolist() == pytest.approx([-0.4, -1.0])


def test_poe_without_cross_view_scores_is_a_clear_error() -> None:
    c = make([(0, 0, A, 0.1, 0)])
    with pytest.raises(ArcpipeError, match="--vote-rule poe needs cross-view scores"):
        vote(c, "poe")
    assert ranked(vote(with_scores(c, [], k=8), "poe"), 0, 0) == [1]  # none finished: count


def test_q_halt_tie_break_keeps_float64() -> None:
    """sigmoid(18.5) and sigmoid(18.0) are both 1.0 in float32; the reference compares float64."""
    q = [1 / (1 + np.exp(-18.0)), 1 / (1 + np.exp(-18.5))]
    assert np.float32(q[0]) == np.float32(q[1])
    c = make([(0, 0, A, q[0], 0), (0, 0, B, q[1], 0)])
    assert ranked(vote(c), 0, 0) == [2, 1]  # the higher q wins although A appeared first


def test_merged_runs_vote_as_one_ensemble(tmp_path: Path) -> None:
    """Counts add up over runs; poe averages over every (run, view) that scored a grid."""
    first = make([(0, 0, A, 0.5, 0), (0, 0, B, 0.5, 0), (1, 1, C, 0.5, 0)])
    second = make([(0, 0, B, 0.4, 0), (0, 0, A, 0.9, 0), (0, 0, A, 0.9, 0)])
    with_scores(first, [(1, 2, -1.0)]).save(tmp_path / "a.npz")  # B over run 1's 2 views
    with_scores(second, [(0, 3, -6.0), (1, 3, -9.0)]).save(tmp_path / "b.npz")
    merged = merge_runs([tmp_path / "a.npz", tmp_path / "b.npz"])
    assert len(merged) == 6 and merged.view.tolist() == [0, 1, 2, 3, 4, 5]
    assert merged.scored_view.tolist() == [1, 3, 4]  # run 2's rows moved past run 1's
    assert merged.meta["sources"] == [str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]
    assert ranked(vote(merged), 0, 0) == [1, 2]  # A: 1 + 2 votes, B: 1 + 1
    poe = vote(merged, "poe")
    assert ranked(poe, 0, 0) == [2, 1]  # B (-1 - 6) / 5 = -1.4 per view, A -9 / 3 = -3.0
    assert poe.cross_logprob[:2].tolist() == pytest.approx([-1.4, -3.0])
    assert poe.cross_over[:2].tolist() == [5, 3]
    assert ranked(vote(merged, "poe_count"), 0, 0) == [2, 1]  # ln 2 - 1.4 > ln 3 - 3
    make([(0, 0, A, 0.5, 0)], tasks=("t0", "t9")).save(tmp_path / "c.npz")
    with pytest.raises(ArcpipeError, match="answers other target tasks"):
        merge_runs([tmp_path / "a.npz", tmp_path / "c.npz"])


def test_fill_rule_and_fallback() -> None:
    assert fill_attempts([A, B, C], INPUT, 2) == [A.tolist(), B.tolist()]
    assert fill_attempts([A], INPUT, 2) == [A.tolist(), INPUT.tolist()]
    assert fill_attempts([INPUT], INPUT, 3) == [INPUT.tolist()] * 3
    assert fill_attempts([], INPUT, 2) == [INPUT.tolist(), INPUT.tolist()]
    sub = fallback_submission({"x": [INPUT, A]}, 2)
    assert sub == {
        "x": [
            {"attempt_1": INPUT.tolist(), "attempt_2": INPUT.tolist()},
            {"attempt_1": A.tolist(), "attempt_2": A.tolist()},
        ]
    }


def test_submission_keeps_every_test_input_in_order_even_without_candidates() -> None:
    c = make([(1, 1, B, 0.5, 0), (1, 1, B, 0.5, 0), (1, 1, C, 0.5, 0), (0, 0, A, 0.5, 0)])
    inputs = {"t0": [INPUT], "t1": [INPUT, INPUT], "t2": [INPUT]}  # t2: no candidates at all
    sub = submission_from_votes(vote(c), inputs, k=2)
    assert list(sub) == ["t0", "t1", "t2"]
    assert sub["t1"][0] == {"attempt_1": INPUT.tolist(), "attempt_2": INPUT.tolist()}
    assert sub["t1"][1] == {"attempt_1": B.tolist(), "attempt_2": C.tolist()}
    assert sub["t0"][0] == {"attempt_1": A.tolist(), "attempt_2": INPUT.tolist()}
    validate_submission(sub, {"t0": 1, "t1": 2, "t2": 1}, k=2)


def test_a_programmed_answer_comes_first_and_the_votes_fill_the_rest() -> None:
    c = make([(1, 1, B, 0.5, 0), (1, 1, B, 0.5, 0), (1, 1, C, 0.5, 0), (0, 0, A, 0.5, 0)])
    inputs = {"t0": [INPUT], "t1": [INPUT, INPUT], "t2": [INPUT]}
    D = np.full((1, 1), 9, dtype=np.uint8)
    programmed = {"t1": [D, B], "t2": [A]}  # t1's second answer is also its top vote
    sub = submission_from_votes(vote(c), inputs, k=2, programmed=programmed)
    assert sub["t0"][0] == {"attempt_1": A.tolist(), "attempt_2": INPUT.tolist()}  # no program
    assert sub["t1"][0] == {"attempt_1": D.tolist(), "attempt_2": INPUT.tolist()}
    assert sub["t1"][1] == {"attempt_1": B.tolist(), "attempt_2": C.tolist()}  # not B twice
    assert sub["t2"][0] == {"attempt_1": A.tolist(), "attempt_2": INPUT.tolist()}
    assert fallback_submission(inputs, 2, programmed)["t1"][1] == {
        "attempt_1": B.tolist(),
        "attempt_2": INPUT.tolist(),
    }


def test_hand_computed_scores() -> None:
    solutions = {"t0": [A], "t1": [B, C]}
    sub = {
        "t0": [{"attempt_1": C.tolist(), "attempt_2": A.tolist()}],  # right on attempt 2
        "t1": [
            {"attempt_1": B.tolist(), "attempt_2": B.tolist()},  # right
            {"attempt_1": A.tolist(), "attempt_2": A.tolist()},
        ],  # wrong
    }
    score = score_submission(sub, solutions)
    assert score.task_score == pytest.approx((1 + 0.5) / 2)
    assert score.output_score == pytest.approx(2 / 3)
    assert [t.attempts_used for t in score.tasks] == [[2], [1, 0]]


def test_pass_at_k_both_averages() -> None:
    c = make(
        [
            (0, 0, A, 0.5, 0),
            (0, 0, B, 0.5, 0),
            (0, 0, B, 0.5, 0),
            (1, 0, C, 0.5, 0),
            (1, 1, A, 0.5, 0),
        ]
    )
    result = pass_at_k(vote(c), {"t0": [A], "t1": [C, B]}, ks=(1, 2))
    assert result["pass@1"] == pytest.approx((0 + 0.5) / 2)
    assert result["pass@2"] == pytest.approx((1 + 0.5) / 2)
    assert result["pass@2_outputs"] == pytest.approx(2 / 3)


def test_candidates_round_trip(tmp_path: Path) -> None:
    c = make(
        [(0, 0, A, 0.25, -1.5), (1, 1, np.arange(6, dtype=np.uint8).reshape(2, 3), 0.75, -0.5)]
    )
    c.meta["malformed"] = 3
    c.save(tmp_path / "c.npz")
    back = Candidates.load(tmp_path / "c.npz")
    assert back.task_ids == ["t0", "t1"] and back.meta["malformed"] == 3
    assert np.array_equal(back.grid(1), c.grid(1)) and back.q_halt.tolist() == [0.25, 0.75]
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ArcpipeError, match="cannot read candidates"):
        Candidates.load(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.pop("t1"), "task t1: missing from the submission"),
        (lambda s: s["t1"].pop(), "task t1: has 1 entries for 2 test inputs"),
        (lambda s: s["t1"][1].pop("attempt_2"), "task t1 test[1]: missing 'attempt_2'"),
        (lambda s: s["t0"][0].update(attempt_1=[[1, 2], [3]]), "test[0].attempt_1: ragged"),
        (lambda s: s["t0"][0].update(attempt_1=[[10]]), "is 10"),
        (lambda s: s["t0"][0].update(attempt_2=[[0] * 31]), "larger than the 30x30"),
    ],
    ids=["missing-task", "wrong-count", "missing-attempt", "ragged", "colour", "too-large"],
)
def test_malformed_submission_is_one_line_exit_2(tmp_path: Path, mutate, message: str) -> None:
    good = {
        "t0": [{"attempt_1": [[1]], "attempt_2": [[2]]}],
        "t1": [{"attempt_1": [[1]], "attempt_2": [[2]]}] * 2,
    }
    solutions = tmp_path / "x_solutions.json"
    solutions.write_bytes(orjson.dumps({"t0": [[[1]]], "t1": [[[2]], [[3]]]}))
    bad = orjson.loads(orjson.dumps(good))
    mutate(bad)
    path = tmp_path / "submission.json"
    path.write_bytes(orjson.dumps(bad))
    result = CliRunner().invoke(main, ["score", str(path), str(solutions)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    path.write_bytes(orjson.dumps(good))
    ok = CliRunner().invoke(main, ["score", str(path), str(solutions), "--json"])
    assert ok.exit_code == 0
    assert orjson.loads(ok.stdout)["task_score"] == pytest.approx(0.75)


def test_write_submission_validates_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    write_submission(path, {"t": [{"attempt_1": [[1]], "attempt_2": [[1]]}]}, {"t": 1}, 2)
    with pytest.raises(ArcpipeError):
        write_submission(path, {"t": []}, {"t": 1}, 2)
    assert orjson.loads(path.read_bytes())["t"][0]["attempt_1"] == [[1]]  # old file intact


def test_load_solutions_from_kaggle_file_and_task_folder(shared_data) -> None:
    kaggle = shared_data / "kaggle" / "arc-prize-2025" / "arc-agi_evaluation_solutions.json"
    assert len(load_solutions(kaggle)) == 120
    folder = load_solutions(shared_data / "arc-agi-1" / "evaluation")
    assert len(folder) == 400 and sum(len(v) for v in folder.values()) == 419


def test_an_empty_part_keeps_the_grids_of_the_parts_after_it_aligned() -> None:
    """A rank's part without candidates (only cross-view scores) may come first in a gather."""
    empty = make([(0, 0, A, 0.5, 0)])
    empty = Candidates.from_grids(empty.task_ids, empty.num_tests, [], [], [], [], [], [])
    assert len(empty.starts) == 0
    full = make([(0, 0, A, 0.5, 0), (0, 0, np.arange(6, dtype=np.uint8).reshape(2, 3), 0.5, 0)])
    joined = Candidates.concat([empty, full, empty, full])
    assert len(joined.starts) == len(joined) == 4
    for i in range(4):
        assert np.array_equal(joined.grid(i), full.grid(i % 2))


def test_a_version_1_candidates_file_still_loads_and_votes(tmp_path: Path) -> None:
    c = make([(0, 0, A, 0.25, -1.5), (0, 0, B, 0.75, -0.5), (0, 0, B, 0.5, -0.5)])
    arrays = {k: getattr(c, k) for k in ("num_tests", "task", "test", "view", "logprob")}
    arrays |= {k: getattr(c, k) for k in ("shapes", "starts", "cells")}
    np.savez(
        tmp_path / "v1.npz",
        format_version=np.array(1),
        task_ids=np.array(c.task_ids),
        meta=np.array('{"malformed": 0}'),
        q_halt=c.q_halt.astype(np.float32),
        **arrays,
    )
    old = Candidates.load(tmp_path / "v1.npz")
    assert old.cross_view_k == 0 and len(old.scored_view) == 0
    assert old.q_halt.dtype == np.float64 and ranked(vote(old), 0, 0) == [2, 1]
    with pytest.raises(ArcpipeError, match="needs cross-view scores"):
        vote(old, "poe")
