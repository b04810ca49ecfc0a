"""Evaluation during training: every view of the validation split with the EMA weights.

ARC: the exact accuracy per view (the reference's ``all/exact_accuracy``) and the voted pass@1 /
pass@2 through the same voting code that ``arcpipe predict`` uses, one checkpoint at a time (the
reference accumulates votes across evaluations by default; we do not). Sudoku and Maze: exact
accuracy and the rate of valid solutions (:mod:`arcpipe.puzzles.evaluate`).
"""

from __future__ import annotations

import contextlib

import numpy as np
from torch import nn

from arcpipe.arc.vote import pass_at_k, vote
from arcpipe.config import TrainConfig
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import Layout
from arcpipe.data.leakage import contained_test_outputs
from arcpipe.predict import predict_candidates, view_rows
from arcpipe.train.distributed import Topology
from arcpipe.train.ema import EMA


def eval_split(dataset: Dataset, setting: str) -> str | None:
    """The split to evaluate: ``val`` if built, else ``test`` when its answers are known."""
    if setting in ("auto", "val") and "val" in dataset.splits:
        return "val"
    if setting in ("auto", "test") and "test" in dataset.splits:
        pairs = np.asarray(dataset.examples("test")[:, 1])
        if (np.asarray(dataset.arrays["pairs"][pairs, 1]) >= 0).any():
            return "test"
    return None


def split_solutions(dataset: Dataset, split: str) -> dict[str, list[np.ndarray | None]]:
    """Known test outputs of the tasks in ``split``, by task id, in test order."""
    role = "val" if split == "val" else "target"
    solutions = {}
    for task in dataset.tasks:
        if task.role == role:
            solutions[task.id] = [out for _, out in dataset.task_pairs(task)[task.num_train :]]
    return solutions


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    topology: Topology,
    local_batch: int,
    ema: EMA | None = None,
    layout: Layout | None = None,
) -> dict[str, float]:
    """Metrics of ``model`` (with the ``ema`` weights, if any) on the evaluation split.

    Every rank calls this with its ``topology``; ``local_batch`` is the batch per rank when
    ``config.eval_batch_size`` is 0; ``layout`` says how boards are laid out (None: the full
    canvas). Returns {} when the dataset has nothing to evaluate on.
    """
    split = eval_split(dataset, config.eval_split)
    if split is None:
        return {}
    table = model.config.puzzle_table
    rows = view_rows(dataset, split, config.eval_views, config.num_variants, table)
    weights = ema.applied(model) if ema else contextlib.nullcontext()
    batch = config.eval_batch_size or local_batch
    spread = {"rank": topology.rank, "world_size": topology.world_size}
    model.eval()
    if dataset.manifest.get("kind", "arc") != "arc":
        from arcpipe.puzzles.evaluate import evaluate_model

        with weights:
            metrics = evaluate_model(
                model, dataset, split, rows, batch, topology.device, config.loss, **spread
            )
        model.train()
        return metrics
    with weights:
        candidates, view_metrics = predict_candidates(
            model,
            dataset,
            split,
            rows,
            batch,
            topology.device,
            **spread,
            loss_kind=config.loss,
            layout=layout,
            max_buckets=config.board_buckets,
        )
    model.train()
    scores = pass_at_k(vote(candidates), split_solutions(dataset, split), ks=(1, 2))
    metrics = {"split": split, "views": len(rows), **view_metrics, **scores}
    if split == "test" and contained_test_outputs(dataset.manifest):
        metrics["contained_test_outputs"] = contained_test_outputs(dataset.manifest)
    return metrics
