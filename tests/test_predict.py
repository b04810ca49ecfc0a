"""Prediction: the oracle path scores 1.0 on real data; the command always leaves a valid file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest
import torch
from click.testing import CliRunner
from helpers import REPO, TINY_MODEL, TINY_URM, torchrun_arcpipe

import arcpipe.predict as predict_module
from arcpipe.arc.candidates import Candidates
from arcpipe.arc.encode import grid_to_tokens
from arcpipe.arc.presets import PRESET_LEAKAGE, resolve_preset
from arcpipe.arc.score import load_solutions, score_submission
from arcpipe.arc.submission import submission_from_votes, validate_submission
from arcpipe.arc.vote import vote
from arcpipe.cli import main
from arcpipe.crossview import view_frames, view_logprob
from arcpipe.data.build import BuildOptions, build_arc_dataset
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import Layout
from arcpipe.predict import (
    ViewOutputs,
    resolve_checkpoint,
    run_views,
    target_program_answers,
    target_test_inputs,
    to_candidates,
    variant_rank,
    view_rows,
)
from arcpipe.train.checkpoint import inference_model, load_checkpoint


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
        sources.train,
        sources.eval,
        tmp_path / "ds",
        BuildOptions(num_aug=4, leakage=PRESET_LEAKAGE),
        quiet=True,
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


def train_tiny(data: Path, run: Path, board: str = "full", *sets: str) -> Path:
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
    for s in [*TINY_MODEL, f"model.board={board}", *sets]:
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


def test_a_urm_run_stopped_by_max_time_predicts_a_valid_submission(
    sample_dataset: Path, tmp_path: Path
) -> None:
    """URM through train --max-time, predict (full N_sup and --halt-early) and voting."""
    run = tmp_path / "urm"
    args = ["train", "--data", str(sample_dataset), "--out", str(run), "--max-time", "4s"]
    for s in TINY_URM:
        args += ["--set", s]
    result = CliRunner().invoke(main, [*args, "--quiet"])
    assert result.exit_code == 0 and "(max-time)" in result.stdout, result.output
    inputs = target_test_inputs(Dataset.open(sample_dataset))
    for extra in ([], ["--halt-early"]):
        out = tmp_path / f"submission{len(extra)}.json"
        result = CliRunner().invoke(main, predict_args(run, sample_dataset, out, *extra))
        assert result.exit_code == 0, result.output
        submission = orjson.loads(out.read_bytes())
        validate_submission(submission, {t: len(g) for t, g in inputs.items()}, k=2)
        candidates = Candidates.load(out.with_suffix(".candidates.npz"))
        views = len(Dataset.open(sample_dataset).examples("test"))
        assert len(candidates) + candidates.meta["malformed"] == views


@pytest.mark.parametrize("budget", ["--max-time", "--max-cpu-time"])
def test_a_zero_budget_still_leaves_a_complete_submission(
    trained_run, sample_dataset, tmp_path, budget: str
) -> None:
    out = tmp_path / "s.json"
    result = CliRunner().invoke(main, predict_args(trained_run, sample_dataset, out, budget, "0s"))
    assert result.exit_code == 0 and f"stopped by {budget}" in result.stdout, result.output
    candidates = Candidates.load(out.with_suffix(".candidates.npz"))
    assert len(candidates) + candidates.meta["malformed"] < len(
        Dataset.open(sample_dataset).examples("test")
    )
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
    # A run trained on the first K variants predicts only their views (at most K each).
    ranks = variant_rank(dataset, "test", view_rows(dataset, "test", 0, num_variants=2))
    assert sorted(set(ranks.tolist())) == [0, 1] and len(ranks) == 2 * targets
    assert len(view_rows(dataset, "test", 1, num_variants=2)) == targets
    assert len(view_rows(dataset, "test", 5, num_variants=2)) == 2 * targets
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


@pytest.mark.parametrize("table", ["variant", "task"])
def test_a_run_on_the_first_k_variants_predicts_their_views_only(
    sample_dataset, tmp_path, table
) -> None:
    """train.num_variants = 2 with a per-variant table: the other variants' puzzle embeddings were
    never trained, so prediction runs the original and the first augmented view of each test
    input. With a task table every variant trained the task's row, so it runs every view."""
    sets = ["train.num_variants=2", f"model.puzzle_table={table}"]
    run = train_tiny(sample_dataset, tmp_path / "k2", "full", *sets)
    out = tmp_path / "s.json"
    assert CliRunner().invoke(main, predict_args(run, sample_dataset, out)).exit_code == 0
    dataset = Dataset.open(sample_dataset)
    candidates = Candidates.load(tmp_path / "s.candidates.npz")
    views = len(candidates) + candidates.meta["malformed"]
    ranks = set(variant_rank(dataset, "test", candidates.view).tolist())
    if table == "variant":
        assert views == 2 * sum(t.num_test for t in dataset.tasks if t.role == "target")
        assert ranks <= {0, 1}
    else:
        assert views == len(dataset.examples("test")) and len(ranks) > 2


def test_evaluation_of_a_run_on_the_first_k_variants_runs_their_views_only(
    trained_run, sample_dataset, monkeypatch
) -> None:
    """Evaluation during training follows train.num_variants as prediction does: K views of each
    test input, the original and the next K - 1, and nothing else."""
    from arcpipe.train import distributed
    from arcpipe.train.evaluate import evaluate

    ckpt = load_checkpoint(trained_run)
    dataset = Dataset.open(sample_dataset)
    model = inference_model(ckpt, dataset, torch.device("cpu"))
    config = ckpt.config.train
    config.eval_views, config.num_variants = 0, 2
    seen = []
    real_run_views = predict_module.run_views

    def recording(model, dataset, split, rows, *args, **kwargs):
        seen.extend(rows.tolist())
        return real_run_views(model, dataset, split, rows, *args, **kwargs)

    monkeypatch.setattr(predict_module, "run_views", recording)
    topology = distributed.setup("cpu")
    metrics = evaluate(model, dataset, config, topology, 8, None, Layout(dataset, "full"))
    targets = sum(t.num_test for t in dataset.tasks if t.role == "target")
    assert metrics["views"] == len(seen) == 2 * targets
    assert set(variant_rank(dataset, "test", np.array(seen)).tolist()) == {0, 1}


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
    # cross-view scores: each test input scored on the rank that owns all its views
    scores_a = dict(zip(a.scored_view.tolist(), a.scored_logprob.tolist()))
    scores_b = dict(zip(b.scored_view.tolist(), b.scored_logprob.tolist()))
    common = set(scores_a) & set(scores_b)
    assert len(common) >= 0.9 * len(scores_a) and len(scores_b) == len(scores_a)
    assert all(abs(scores_a[v] - scores_b[v]) < 1e-3 * (1 + abs(scores_a[v])) for v in common)


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


def test_supervision_steps_option_recurses_further_at_test_time(
    trained_run, sample_dataset, tmp_path, monkeypatch
) -> None:
    """--supervision-steps N runs every view N supervision steps, not the run's N_sup (2)."""
    steps_run: list[np.ndarray] = []

    def recording(*args, **kwargs):
        out = run_views(*args, **kwargs)
        steps_run.append(out.steps)
        return out

    monkeypatch.setattr(predict_module, "run_views", recording)
    for option, expected in ((), 2), (("--supervision-steps", "5"), 5):
        steps_run.clear()
        out = tmp_path / f"s{expected}.json"
        result = CliRunner().invoke(main, predict_args(trained_run, sample_dataset, out, *option))
        assert result.exit_code == 0, result.output
        assert np.concatenate(steps_run).tolist() == [expected] * len(
            Dataset.open(sample_dataset).examples("test")
        )
    bad = ("--supervision-steps", "-1")
    refused = CliRunner().invoke(main, predict_args(trained_run, sample_dataset, out, *bad))
    assert refused.exit_code == 2 and "--supervision-steps must be >= 0" in refused.stderr


def test_sigmoid_q_halt_is_taken_in_float64(trained_run, sample_dataset) -> None:
    """The reference's evaluator computes sigmoid(q_halt.double()); float32 would round to 1."""
    dataset = Dataset.open(sample_dataset)
    ckpt = load_checkpoint(resolve_checkpoint(trained_run, "last"))
    model = inference_model(ckpt, dataset, torch.device("cpu"))
    with torch.no_grad():
        model.q_head.weight.zero_()
        model.q_head.bias.fill_(18.25)
    out = run_views(model, dataset, "test", np.arange(3), torch.device("cpu"))
    assert out.q_halt.dtype == np.float64
    expected = 1 / (1 + np.exp(-np.float64(np.float32(18.25))))
    assert expected < 1.0 and out.q_halt.tolist() == [expected] * 3


def test_an_empty_crop_is_dropped_not_voted(sample_dataset) -> None:
    """The reference counts an empty crop as a vote for the 0x0 grid; arcpipe drops it."""
    dataset = Dataset.open(sample_dataset)
    rows = np.arange(4)  # the four views of the first test input
    assert len(set(dataset.examples("test")[rows, 1].tolist())) == 1
    outputs = oracle_outputs(dataset, rows, load_solutions(REPO / "data/sample/evaluation"))
    outputs.tokens[1:] = 0
    outputs.tokens[1:, 0] = 1  # three boards starting with EOS: empty crops
    candidates = to_candidates(dataset, "test", rows, outputs)
    assert (len(candidates), candidates.meta["malformed"]) == (1, 3)
    votes = vote(candidates)
    assert votes.count.tolist() == [1] and votes.grid(0).size > 0  # the real answer wins


def test_cross_view_scores_equal_a_recomputation_over_all_views(
    trained_run, sample_dataset, tmp_path
) -> None:
    """Views in batches of 3 across test inputs: each top-K grid's score is the sum over every
    view of the input, recomputed here from one batch of all views."""
    out = tmp_path / "s.json"
    args = predict_args(
        trained_run, sample_dataset, out, "--cross-view-k", "2", "--batch-size", "3"
    )
    result = CliRunner().invoke(main, [*args, "--vote-rule", "poe"])
    assert result.exit_code == 0, result.output
    candidates = Candidates.load(tmp_path / "s.candidates.npz")
    assert candidates.cross_view_k == 2
    dataset = Dataset.open(sample_dataset)
    rows = np.arange(len(dataset.examples("test")))
    model = inference_model(
        load_checkpoint(resolve_checkpoint(trained_run, "best")), dataset, torch.device("cpu")
    )
    tables = run_views(model, dataset, "test", rows, torch.device("cpu"), keep_tables=True).tables
    frames = view_frames(dataset, "test", rows)
    pairs = np.asarray(dataset.examples("test")[:, 1])
    votes = vote(candidates, "count")
    expected = {}
    for g in range(len(votes.rank)):
        if votes.rank[g] >= 2:
            continue
        view = int(candidates.view[votes.representative[g]])
        grid = votes.grid(g)
        same_input = np.flatnonzero(pairs == pairs[view])
        scored = [
            view_logprob(tables[r], grid, frames[r]["transform"], frames[r]["frame"])
            for r in same_input
        ]
        expected[view] = (len(same_input), *(sum(column) for column in zip(*scored)))
    got = {int(v): (int(n), float(lp), int(c)) for v, n, lp, c in zip(*candidates.scores)}
    assert sorted(got) == sorted(expected)
    for view, (n, total, cells) in expected.items():
        assert got[view][0] == n == 4 and got[view][2] == cells
        assert got[view][1] == pytest.approx(total, rel=1e-5, abs=1e-4)
    submission = orjson.loads(out.read_bytes())
    poe = submission_from_votes(vote(candidates, "poe"), target_test_inputs(dataset), k=2)
    assert submission == poe  # the submission was voted by --vote-rule poe


def test_poe_needs_cross_view_scores(trained_run, sample_dataset, tmp_path) -> None:
    out = tmp_path / "s.json"
    args = predict_args(trained_run, sample_dataset, out, "--vote-rule", "poe")
    result = CliRunner().invoke(main, [*args, "--cross-view-k", "0"])
    assert result.exit_code == 2 and "--vote-rule poe needs --cross-view-k >= 1" in result.stderr
    args = predict_args(trained_run, sample_dataset, out, "--cross-view-k", "0")
    assert CliRunner().invoke(main, args).exit_code == 0
    candidates = Candidates.load(tmp_path / "s.candidates.npz")
    assert candidates.cross_view_k == 0 and len(candidates.scored_view) == 0
    args = ["vote", str(tmp_path / "s.candidates.npz"), "--data", str(sample_dataset)]
    voted = CliRunner().invoke(main, [*args, "--out", str(out), "--vote-rule", "poe_count"])
    assert voted.exit_code == 2 and "needs cross-view scores" in voted.stderr


def test_programs_answer_the_targets_they_fit_first(trained_run, sample_dataset, tmp_path) -> None:
    out = tmp_path / "programmed.json"
    args = predict_args(trained_run, sample_dataset, out, "--programs")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "2 task(s) answered first by a program" in " ".join(result.output.split())
    dataset = Dataset.open(sample_dataset)
    programmed = target_program_answers(dataset)
    assert set(programmed) == {"flip_lr", "colour_swap"}  # the targets; never a training task
    written = orjson.loads(out.read_bytes())
    votes = vote(Candidates.load(out.with_suffix(".candidates.npz")))
    inputs = target_test_inputs(dataset)
    assert written == submission_from_votes(votes, inputs, k=2, programmed=programmed)
    truths = load_solutions(REPO / "data" / "sample" / "evaluation")
    truths = {task_id: truths[task_id] for task_id in inputs}
    assert score_submission(written, truths).output_score == 1.0  # both targets are programs
    merged = tmp_path / "voted.json"
    args = ["vote", str(out.with_suffix(".candidates.npz")), "--data", str(sample_dataset)]
    result = CliRunner().invoke(main, [*args, "--out", str(merged), "--programs"])
    assert result.exit_code == 0, result.output
    assert "2 task(s) answered first" in " ".join(result.output.split())
    assert orjson.loads(merged.read_bytes()) == written


def test_vote_merges_runs_into_one_valid_submission(trained_run, sample_dataset, tmp_path) -> None:
    files = []
    for name, views in (("a", "2"), ("b", "0")):
        out = tmp_path / f"{name}.json"
        args = predict_args(trained_run, sample_dataset, out, "--views", views)
        assert CliRunner().invoke(main, args).exit_code == 0
        files.append(str(tmp_path / f"{name}.candidates.npz"))
    submission, merged = tmp_path / "ensemble.json", tmp_path / "merged.npz"
    args = ["vote", *files, "--data", str(sample_dataset), "--out", str(submission)]
    result = CliRunner().invoke(main, [*args, "--vote-rule", "poe", "--merged", str(merged)])
    assert result.exit_code == 0, result.output
    parts = [Candidates.load(f) for f in files]
    both = Candidates.load(merged)
    assert len(both) == sum(len(p) for p in parts)
    assert len(both.scored_view) == sum(len(p.scored_view) for p in parts)
    dataset = Dataset.open(sample_dataset)
    inputs = target_test_inputs(dataset)
    written = orjson.loads(submission.read_bytes())
    assert written == submission_from_votes(vote(both, "poe"), inputs, k=2)
    validate_submission(written, {t: len(g) for t, g in inputs.items()}, k=2)
    page = tmp_path / "ensemble.html"
    args = ["report", "--candidates", files[0], "--candidates", files[1], "--run", str(trained_run)]
    result = CliRunner().invoke(main, [*args, "--data", str(sample_dataset), "--out", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert html.count('<table class="rules">') == sum(len(g) for g in inputs.values())
    assert html.count('<figure class="chart"') == 5 and "run</span>" in html  # the run's curves
    missing = CliRunner().invoke(main, ["report", "--data", str(sample_dataset)])
    assert missing.exit_code == 2 and "--candidates is required" in missing.stderr

    other = tmp_path / "other"
    sample = REPO / "data" / "sample"
    options = BuildOptions(num_aug=1, canvas=10, tasks=("rotate_90", "scale_x2"))
    build_arc_dataset([sample / "training"], sample / "evaluation", other, options, quiet=True)
    args = ["vote", files[0], "--data", str(other), "--out", str(tmp_path / "w.json")]
    wrong = CliRunner().invoke(main, args)
    assert wrong.exit_code == 2 and wrong.stderr.count("\n") == 1
    assert "has no entry for target task" in wrong.stderr
    (tmp_path / "bad.npz").write_bytes(b"nope")
    bad = CliRunner().invoke(main, ["vote", str(tmp_path / "bad.npz"), "--data", str(other)])
    assert bad.exit_code == 2 and "cannot read candidates" in bad.stderr
