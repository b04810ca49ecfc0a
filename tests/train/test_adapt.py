"""Test-time training (predict --adapt-*): the run continues, on the target tasks only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import orjson
import pytest
import torch
from click.testing import CliRunner
from helpers import torchrun_arcpipe, train_args

from arcpipe.arc.candidates import Candidates, merge_runs
from arcpipe.arc.submission import validate_submission
from arcpipe.cli import main
from arcpipe.data.dataset import Dataset
from arcpipe.data.sampler import BucketedSampler
from arcpipe.model.puzzle_embedding import AugmentationCode
from arcpipe.predict import PredictOptions, predict, target_test_inputs
from arcpipe.train import distributed as dist
from arcpipe.train.adapt import AdaptBudget, adapt, target_task_indices
from arcpipe.train.checkpoint import load_checkpoint
from arcpipe.train.ema import EMA

TRAINED_STEPS = 6


@pytest.fixture(scope="module")
def run(sample_dataset: Path, tmp_path_factory) -> Path:
    """A tiny run with an EMA, stopped after a few steps."""
    out = tmp_path_factory.mktemp("adapt") / "run"
    args = train_args(sample_dataset, out, "--max-steps", str(TRAINED_STEPS))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


def test_the_first_limit_reached_ends_adaptation_and_zero_is_no_limit() -> None:
    assert not AdaptBudget() and not AdaptBudget(0, 0, 0)  # predict then does not adapt
    budget = AdaptBudget(steps=0, seconds=5.0)
    assert budget and budget.spent(10**6, 4.9, 10**6) is None
    assert budget.spent(0, 5.1, 0) == "time"
    both = AdaptBudget(steps=3, cpu_seconds=1.0)
    assert both.spent(3, 0, 0) == "steps" and both.spent(2, 0, 1.5) == "cpu-time"
    assert both.spent(2, 10**6, 0.9) is None


def test_adaptation_continues_the_run_on_the_target_tasks_rows_only(
    run: Path, sample_dataset: Path, monkeypatch
) -> None:
    dataset = Dataset.open(sample_dataset)
    ckpt = load_checkpoint(run)
    drawn: list[np.ndarray] = []
    next_rows = BucketedSampler.next_rows

    def recording(self):
        bucket, rows = next_rows(self)
        drawn.append(rows)
        return bucket, rows

    monkeypatch.setattr(BucketedSampler, "next_rows", recording)
    model, summary = adapt(ckpt, dataset, dist.setup("cpu"), AdaptBudget(steps=3))
    assert (summary.steps, summary.start_step, summary.stopped) == (3, TRAINED_STEPS, "steps")
    assert len(drawn) == 3
    variants = np.asarray(dataset.examples("train")[np.concatenate(drawn), 0])
    tasks = set(np.asarray(dataset.arrays["variants"])[variants, 0].tolist())
    assert tasks == set(target_task_indices(dataset).tolist())  # both targets, nothing else
    # The EMA weights of the continued run: three steps from the checkpoint's EMA, far nearer
    # it than the raw weights are (a run restarted from scratch, or the raw weights, are not).
    ema, raw = ckpt.tensors["ema"], ckpt.tensors["weights"]
    for name, p in model.named_parameters():
        moved = (p.detach() - ema[name]).abs().max().item()
        assert 0 < moved < 0.1 * (raw[name] - ema[name]).abs().max().item(), name
    # (adapt continues the optimizer state in the checkpoint's own tensors: load it afresh)
    again, _ = adapt(load_checkpoint(run), dataset, dist.setup("cpu"), AdaptBudget(steps=3))
    for (name, p), q in zip(model.named_parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q), name  # deterministic on CPU


def test_the_adapt_lr_scale_multiplies_every_update_of_the_step(
    run: Path, sample_dataset: Path, monkeypatch
) -> None:
    """One adapted step at lr x1 and x2 from the same checkpoint: the step's update of every
    weight (AdamATan2's, weight decay's, the puzzle table's sign step: all linear in the lr)
    doubles. The raw adapted weights are caught as the run's EMA replaces them."""
    dataset = Dataset.open(sample_dataset)
    tensors = load_checkpoint(run).tensors
    before = {**tensors["weights"], "puzzle_table.weights": tensors["puzzle_table"]["weights"]}
    adapted: list[dict[str, torch.Tensor]] = []
    copy_to = EMA.copy_to

    def catching(self, model):
        adapted.append({n: t.clone() for n, t in model.state_dict().items()})
        copy_to(self, model)

    monkeypatch.setattr(EMA, "copy_to", catching)
    for scale in (1.0, 2.0):
        model, _ = adapt(
            load_checkpoint(run), dataset, dist.setup("cpu"), AdaptBudget(steps=1), None, scale
        )
    once, twice = adapted
    moved = {n for n, weights in before.items() if (once[n] - weights).abs().max() > 1e-4}
    assert moved == {n for n, _ in model.named_parameters()} | {"puzzle_table.weights"}
    for name, weights in before.items():  # (the fixed buffers stay: 0 = 2 x 0)
        torch.testing.assert_close(twice[name] - weights, 2 * (once[name] - weights))


def test_predict_after_adaptation_writes_a_valid_submission_from_the_adapted_network(
    run: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    dataset = Dataset.open(sample_dataset)
    expected = {t: len(g) for t, g in target_test_inputs(dataset).items()}
    logprobs = {}
    for name, steps in (("plain", None), ("adapted", 2)):
        out = tmp_path / f"{name}.json"
        options = PredictOptions(sample_dataset, out, run, "last", adapt_steps=steps, quiet=True)
        result = predict(options)
        validate_submission(orjson.loads(out.read_bytes()), expected, k=2)
        assert result.views_done == result.views_total == len(dataset.examples("test"))
        logprobs[name] = Candidates.load(result.candidates).logprob
        if steps is None:
            assert result.adaptation is None
        else:
            assert (result.adaptation.steps, result.adaptation.stopped) == (2, "steps")
    assert not np.array_equal(logprobs["plain"], logprobs["adapted"])
    timed = predict(
        PredictOptions(sample_dataset, tmp_path / "t.json", run, "last", adapt_time=0.5, quiet=True)
    )
    assert timed.adaptation.stopped == "time" and timed.adaptation.steps >= 1


def test_the_adapt_ensemble_votes_the_trained_and_the_adapted_views_as_vote_merges_runs(
    run: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    """One command equals two predictions (without and with test-time training) voted
    together by ``arcpipe vote``: the same candidates, view rows shifted alike, same submission."""
    results = {}
    for name, steps, ensemble in (("plain", None, False), ("adapted", 2, False), ("both", 2, True)):
        options = PredictOptions(
            sample_dataset, tmp_path / f"{name}.json", run, "last", adapt_steps=steps, quiet=True
        )
        results[name] = predict(dataclasses.replace(options, adapt_ensemble=ensemble))
    both, views = results["both"], len(Dataset.open(sample_dataset).examples("test"))
    assert both.views_done == both.views_total == 2 * views
    assert both.adaptation.steps == 2
    merged = merge_runs([results["plain"].candidates, results["adapted"].candidates])
    joint = Candidates.load(both.candidates)
    for field in ("task", "test", "view", "q_halt", "logprob", "shapes", "starts", "cells"):
        assert np.array_equal(getattr(joint, field), getattr(merged, field)), field
    assert np.array_equal(joint.scored_view, merged.scored_view)
    assert joint.view.max() >= views  # the adapted pass's rows come after the trained pass's
    voted = tmp_path / "voted.json"
    args = ["vote", "--data", str(sample_dataset), "--out", str(voted)]
    args += [str(results["plain"].candidates), str(results["adapted"].candidates)]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert orjson.loads(voted.read_bytes()) == orjson.loads((tmp_path / "both.json").read_bytes())


def test_the_adapt_options_are_checked_and_reported(
    run: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    base = ["predict", "--run", str(run), "--data", str(sample_dataset)]
    out = tmp_path / "s.json"
    bad = CliRunner().invoke(main, [*base, "--out", str(out), "--adapt-steps", "-1"])
    assert bad.exit_code == 2 and "--adapt-steps must be >= 0" in bad.stderr
    assert not out.exists()
    bad = CliRunner().invoke(main, [*base, "--out", str(out), "--adapt-lr-scale", "0"])
    assert bad.exit_code == 2 and "--adapt-lr-scale must be > 0" in bad.stderr
    assert not out.exists()
    for flag in (["--adapt-lr-scale", "2"], ["--adapt-ensemble"]):
        bad = CliRunner().invoke(main, [*base, "--out", str(out), *flag])
        assert bad.exit_code == 2 and f"{flag[0]} needs test-time training" in bad.stderr
        assert not out.exists()
    result = CliRunner().invoke(main, [*base, "--out", str(out), "--adapt-steps", "2"])
    assert result.exit_code == 0, result.output
    assert f"test-time training: 2 steps on the target tasks from step {TRAINED_STEPS}" in (
        " ".join(result.output.split())
    )


def test_fresh_views_adapt_on_new_augmentations_and_need_a_task_table(
    run: Path, sample_dataset: Path, tmp_path: Path, monkeypatch
) -> None:
    """With a task table, --adapt-fresh-views adapts on augmentations the build never stored
    (the targets' demonstrations only, as ever); a per-variant table's run refuses it."""
    table_run = tmp_path / "table"
    sets = ["train.ema=true", "model.puzzle_table=task"]
    trained = CliRunner().invoke(
        main, train_args(sample_dataset, table_run, "--max-steps", "2", sets=sets)
    )
    assert trained.exit_code == 0, trained.output
    dataset = Dataset.open(sample_dataset)
    seen: list[torch.Tensor] = []
    forward = AugmentationCode.forward

    def recording(self, augmentation):
        if self.training:
            seen.append(augmentation.clone())
        return forward(self, augmentation)

    monkeypatch.setattr(AugmentationCode, "forward", recording)
    codes = {}
    for fresh in (False, True):
        seen.clear()
        ckpt = load_checkpoint(table_run)
        adapt(ckpt, dataset, dist.setup("cpu"), AdaptBudget(steps=4), None, 1.0, fresh)
        codes[fresh] = {tuple(c) for c in torch.cat(seen).tolist()}
    variants = np.asarray(dataset.arrays["variants"])
    stored = np.isin(variants[:, 0], target_task_indices(dataset)).sum()
    assert len(codes[False]) <= stored  # the targets' built variants
    assert len(codes[True]) > stored and len(codes[True] - codes[False]) > stored
    base = ["predict", "--run", str(run), "--data", str(sample_dataset)]
    out = tmp_path / "s.json"
    bad = CliRunner().invoke(main, [*base, "--out", str(out), "--adapt-fresh-views"])
    assert bad.exit_code == 2 and "--adapt-fresh-views needs test-time training" in bad.stderr
    args = [*base, "--out", str(out), "--adapt-fresh-views", "--adapt-steps", "1"]
    bad = CliRunner().invoke(main, args)
    assert bad.exit_code == 2 and "needs a run with model.puzzle_table = task" in bad.stderr
    assert not out.exists()


@pytest.mark.slow
def test_two_gloo_ranks_adapt_like_one_process(
    run: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    """Under torchrun every rank steps its slice of the same global batches (DDP averages the
    gradients): the adapted network predicts the same grids as one process's."""
    common = ["--data", str(sample_dataset), "--adapt-steps", "3", "--batch-size", "2", "--quiet"]
    single = tmp_path / "single.json"
    args = ["predict", "--run", str(run), "--out", str(single), *common]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    double = tmp_path / "double.json"
    args = ["predict", "--run-dir", str(run), "--out", str(double), "--device", "cpu", *common]
    proc = torchrun_arcpipe(args, 29740)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test-time training: 3 steps" in proc.stdout
    a = Candidates.load(tmp_path / "single.candidates.npz")
    b = Candidates.load(tmp_path / "double.candidates.npz")
    order_a, order_b = np.argsort(a.view), np.argsort(b.view)
    assert np.array_equal(a.view[order_a], b.view[order_b])
    for i, j in zip(order_a, order_b):
        assert np.array_equal(a.grid(i), b.grid(j)), a.view[i]
    assert np.allclose(a.logprob[order_a], b.logprob[order_b], atol=1e-4)
    assert orjson.loads(double.read_bytes()) == orjson.loads(single.read_bytes())
