"""Evaluation during training: every view of the validation split with the EMA weights.

ARC: the exact accuracy per view (the reference's ``all/exact_accuracy``) and the voted pass@1 /
pass@2 through the same voting code that ``arcpipe predict`` uses, one checkpoint at a time (the
reference accumulates votes across evaluations by default; we do not). Sudoku and Maze: exact
accuracy and the rate of valid solutions (:mod:`arcpipe.puzzles.evaluate`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np

from arcpipe.arc.vote import pass_at_k, vote
from arcpipe.data.dataset import Dataset
from arcpipe.predict import predict_candidates, view_rows

if TYPE_CHECKING:
    from arcpipe.train.loop import Trainer


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


def evaluate(trainer: Trainer) -> dict[str, float]:
    """Metrics of the current (EMA) weights on the evaluation split; {} when there is none."""
    cfg = trainer.config.train
    split = eval_split(trainer.dataset, cfg.eval_split)
    if split is None:
        return {}
    rows = view_rows(trainer.dataset, split, cfg.eval_views)
    weights = trainer.ema.applied(trainer.model) if trainer.ema else contextlib.nullcontext()
    batch = cfg.eval_batch_size or trainer.local_batch
    trainer.model.eval()
    if trainer.dataset.manifest.get("kind", "arc") != "arc":
        from arcpipe.puzzles.evaluate import evaluate_model

        with weights:
            metrics = evaluate_model(
                trainer.model,
                trainer.dataset,
                split,
                rows,
                batch,
                trainer.device,
                cfg.loss,
                rank=trainer.topo.rank,
                world_size=trainer.topo.world_size,
            )
        trainer.model.train()
        return metrics
    with weights:
        candidates, view_metrics = predict_candidates(
            trainer.model,
            trainer.dataset,
            split,
            rows,
            batch,
            trainer.device,
            rank=trainer.topo.rank,
            world_size=trainer.topo.world_size,
            loss_kind=cfg.loss,
            layout=trainer.layout,
            max_buckets=cfg.board_buckets,
        )
    trainer.model.train()
    scores = pass_at_k(vote(candidates), split_solutions(trainer.dataset, split), ks=(1, 2))
    return {"split": split, "views": len(rows), **view_metrics, **scores}
