"""Prediction: the oracle path scores 1.0 on real data; the command always leaves a valid file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from helpers import TINY_MODEL, torchrun_arcpipe

import arcpipe.predict as predict_module
from arcpipe.arc.build import BuildOptions, build_arc_dataset
from arcpipe.arc.candidates import Candidates
from arcpipe.arc.encode import grid_to_tokens
from arcpipe.arc.presets import resolve_preset
from arcpipe.arc.score import load_solutions, score_submission
from arcpipe.arc.submission import submission_from_votes, validate_submission
from arcpipe.arc.vote import vote
from arcpipe.cli import main
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import Layout
from arcpipe.predict import ViewOutputs, target_test_inputs, to_candidates, view_rows


def oracle_outputs(
    dataset: Dataset, rows: np.ndarray, solutions, layout: Layout | None = None
) -> ViewOutputs:
    """What a perfect model would answer for each view: the truth, transformed into the view
    (on the canvas, or in the view's box)."""
    tokens = []
    for row in rows:
        view = dataset.view("test", int(row))
        truth = solutions[view.task_id][view.pair_index]
        tokens.append(grid_to_tokens(view.transform.view(truth), dataset.canvas))
    tokens = np.stack(tokens)
    if layout is not None and layout.boxed:
        length = int(layout.row_cells("test", rows).max())
        cells = layout.encode("test", rows, length)[3]  # test views: boxes at the origin
        tokens = np.where(cells >= 0, np.take_along_axis(tokens, np.maximum(cells, 0), 1), 0)
    n = len(rows)
    return ViewOutputs(
        tokens.astype(np.uint8),
        np.zeros(tokens.shape, np.float32),
        np.full(n, 0.5, np.float32),
        np.ones(n, bool),
        np.full(n, 16, np.int32),
    )


@pytest.mark.parametrize("board", ["full", "boxed"])
@pytest.mark.parametrize("preset", ["arc-agi-1", "arc-agi-2"])
def test_oracle_predictions_score_one_through_the_whole_inverse_path(
    shared_data: Path, tmp_path: Path, preset: str, board: str
) -> None:
    sources = resolve_preset(preset, shared_data)
    build_arc_dataset(
        sources.train, sources.eval, tmp_path / "ds", BuildOptions(num_aug=4), quiet=True
    )
    dataset = Dataset.open(tmp_path / "ds")
    solutions = load_solutions(sources.eval)
    rows = view_rows(dataset, "test", views=3)
    assert len(rows) == 3 * sum(len(v) for v in solutions.values())
    layout = Layout(dataset, board)
    outputs = oracle_outputs(dataset, rows, solutions, layout)
    candidates = to_candidates(dataset, "test", rows, outputs, layout)
    assert candidates.meta["malformed"] == 0
    submission = submission_from_votes(vote(candidates), target_test_inputs(dataset), k=2)
    score = score_submission(submission, solutions)
    assert score.task_score == 1.0 and score.output_score == 1.0
    assert len(score.tasks) == len(solutions)


def train_tiny(data: Path, run: Path, board: str = "full") -> Path:
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(run),
        "--max-steps",
        "3",
        "--quiet",
    ]
    for s in [*TINY_MODEL, f"model.board={board}"]:
        args += ["--set", s]
    assert CliRunner().invoke(main, args).exit_code == 0
    return run


@pytest.fixture(scope="module")
def trained_run(sample_dataset: Path, tmp_path_factory) -> Path:
    return train_tiny(sample_dataset, tmp_path_factory.mktemp("predict") / "run")


@pytest.fixture(scope="module")
def boxed_run(sample_dataset: Path, tmp_path_factory) -> Path:
    return train_tiny(sample_dataset, tmp_path_factory.mktemp("predict") / "boxed", "boxed")


def predict_args(run: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["predict", "--run", str(run), "--data", str(data), "--out", str(out), "--quiet", *extra]


def test_predict_writes_a_valid_submission_and_candidates(
    trained_run, sample_dataset, tmp_path
) -> None:
    out = tmp_path / "submission.json"
    result = CliRunner().invoke(main, predict_args(trained_run, sample_dataset, out))
    assert result.exit_code == 0, result.output
    dataset = Dataset.open(sample_dataset)
    inputs = target_test_inputs(dataset)
    submission = orjson.loads(out.read_bytes())
    validate_submission(submission, {t: len(g) for t, g in inputs.items()}, k=2)
    assert list(submission) == list(inputs)  # every target task, in order
    candidates = Candidates.load(tmp_path / "submission.candidates.npz")
    assert len(candidates) + candidates.meta["malformed"] == len(dataset.examples("test"))
    truths = {
        t.id: [o.tolist() for _, o in dataset.task_pairs(t)[t.num_train :]]
        for t in dataset.tasks
        if t.role == "target"
    }
    solutions = tmp_path / "sample_solutions.json"
    solutions.write_bytes(orjson.dumps(truths))
    score = CliRunner().invoke(
        main,
        [
            "score",
            str(out),
            str(solutions),
            "--candidates",
            str(tmp_path / "submission.candidates.npz"),
        ],
    )
    assert score.exit_code == 0, score.output
    assert "score per task (ARC Prize)" in score.stdout and "pass@1000" in score.stdout
    by_rule = {}
    for rule in ("count", "q_weighted", "consistency"):
        args = ["score", str(out), str(solutions), "--json", "--vote-rule", rule]
        args += ["--candidates", str(tmp_path / "submission.candidates.npz")]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        by_rule[rule] = orjson.loads(result.stdout)["candidates"]
        assert by_rule[rule]["vote_rule"] == rule
    # The rules only reorder the same candidates: with room for all of them they agree.
    assert len({r["pass@1000"] for r in by_rule.values()}) == 1


def test_max_time_zero_still_leaves_a_complete_submission(
    trained_run, sample_dataset, tmp_path
) -> None:
    out = tmp_path / "s.json"
    result = CliRunner().invoke(
        main, predict_args(trained_run, sample_dataset, out, "--max-time", "0s")
    )
    assert result.exit_code == 0 and "stopped by --max-time" in result.stdout
    inputs = target_test_inputs(Dataset.open(sample_dataset))
    validate_submission(orjson.loads(out.read_bytes()), {t: len(g) for t, g in inputs.items()}, k=2)


def test_a_crash_mid_inference_leaves_the_fallback(
    trained_run, sample_dataset, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "s.json"

    def explode(*args, **kwargs):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(predict_module, "run_views", explode)
    result = CliRunner().invoke(main, predict_args(trained_run, sample_dataset, out))
    assert isinstance(result.exception, RuntimeError)
    inputs = target_test_inputs(Dataset.open(sample_dataset))
    submission = orjson.loads(out.read_bytes())
    validate_submission(submission, {t: len(g) for t, g in inputs.items()}, k=2)
    first = next(iter(inputs))
    assert submission[first][0]["attempt_1"] == inputs[first][0].tolist()  # the fallback


def test_views_option_and_dataset_mismatch(trained_run, sample_dataset, tmp_path) -> None:
    out = tmp_path / "s.json"
    result = CliRunner().invoke(
        main, predict_args(trained_run, sample_dataset, out, "--views", "1")
    )
    assert result.exit_code == 0
    dataset = Dataset.open(sample_dataset)
    targets = sum(t.num_test for t in dataset.tasks if t.role == "target")
    originals = view_rows(dataset, "test", 1)  # each test input's untransformed view
    assert len(originals) == targets
    one = Candidates.load(tmp_path / "s.candidates.npz")
    assert len(one) + one.meta["malformed"] == targets  # one view each, every one predicted
    assert set(one.view.tolist()) <= set(originals.tolist())
    other = tmp_path / "other"
    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    build_arc_dataset(
        [sample / "training"],
        sample / "evaluation",
        other,
        BuildOptions(num_aug=1, canvas=10, tasks=("rotate_90", "scale_x2")),
        quiet=True,
    )
    wrong = CliRunner().invoke(main, predict_args(trained_run, other, tmp_path / "w.json"))
    assert wrong.exit_code == 2 and "belongs to another dataset" in wrong.stderr


@pytest.mark.slow
@pytest.mark.parametrize("board", ["full", "boxed"])
def test_two_gloo_ranks_predict_the_same_views(
    trained_run, boxed_run, sample_dataset, tmp_path, board
) -> None:
    """Under torchrun the views are split across ranks and gathered: the same candidates and the
    same submission as one process (batches of the same shape on every rank)."""
    trained_run = {"full": trained_run, "boxed": boxed_run}[board]
    single = tmp_path / "single.json"
    sized = ["--batch-size", "2"]
    result = CliRunner().invoke(main, predict_args(trained_run, sample_dataset, single, *sized))
    assert result.exit_code == 0, result.output
    double = tmp_path / "double.json"
    args = ["predict", "--run-dir", str(trained_run), "--data", str(sample_dataset), *sized]
    proc = torchrun_arcpipe([*args, "--out", str(double), "--device", "cpu", "--quiet"], 29700)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = Candidates.load(tmp_path / "single.candidates.npz")
    b = Candidates.load(tmp_path / "double.candidates.npz")
    order_a, order_b = np.argsort(a.view), np.argsort(b.view)
    assert len(a) == len(b) == len(Dataset.open(sample_dataset).examples("test"))
    assert np.array_equal(a.view[order_a], b.view[order_b])
    for i, j in zip(order_a, order_b):
        assert np.array_equal(a.grid(i), b.grid(j)), a.view[i]
    assert orjson.loads(double.read_bytes()) == orjson.loads(single.read_bytes())


def test_post_training_a_boxed_model_refuses_a_dataset_without_boxes(
    boxed_run, sample_dataset, tmp_path
) -> None:
    """A dataset built before boxes existed (here: one with its boxes taken out)."""
    old = tmp_path / "old"
    shutil.copytree(sample_dataset, old)
    (old / "boxes.npy").unlink()
    manifest = orjson.loads((old / "manifest.json").read_bytes())
    del manifest["files"]["boxes.npy"]
    (old / "manifest.json").write_bytes(orjson.dumps(manifest))
    post = tmp_path / "post"
    args = ["train", "--data", str(old), "--out", str(post), "--init-from", str(boxed_run)]
    result = CliRunner().invoke(main, [*args, "--max-steps", "1", "--quiet"])
    assert result.exit_code == 2 and "needs a dataset with task boxes" in result.stderr
    assert "Traceback" not in result.output and not post.exists()
