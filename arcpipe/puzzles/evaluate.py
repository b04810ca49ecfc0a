"""``arcpipe evaluate``: score a checkpoint on a Sudoku or Maze dataset's test puzzles.

Each test puzzle is one view (no augmentation, no voting), run for ``N_sup`` supervision steps
from a fresh answer and latent, as the reference evaluates. A predicted board is decoded
(token - ``vocab.colour_offset``) and compared with the test answer:

* ``exact_accuracy``: every cell equals the answer (the paper's metric);
* Sudoku ``valid_solution_rate``: the board is a complete valid grid that keeps every given of
  the question (it may differ from the file's answer when the puzzle has several solutions);
* Maze ``valid_path_rate``: the board marks *a* shortest S-G path of the question
  (:func:`~arcpipe.puzzles.maze.is_valid_shortest_path`), not necessarily the file's one.

:func:`evaluate_model` is the loop shared with training-time evaluation; :func:`evaluate_run`
loads a run's checkpoint and evaluates it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from arcpipe.data.dataset import Dataset
from arcpipe.errors import ArcpipeError
from arcpipe.model.trm import TRM
from arcpipe.predict import resolve_checkpoint, run_views
from arcpipe.progress import Progress
from arcpipe.puzzles.build import valid_maze_answers, valid_sudoku_answers
from arcpipe.train.checkpoint import (
    inference_model,
    load_checkpoint,
)
from arcpipe.train.distributed import gather_objects, teardown
from arcpipe.train.distributed import setup as setup_topology

VALID_METRIC = {"sudoku": "valid_solution_rate", "maze": "valid_path_rate"}


def puzzle_kind(dataset: Dataset) -> str:
    """The dataset's kind, ``sudoku`` or ``maze``.

    Raises:
        ArcpipeError: another kind (ARC datasets are scored by ``arcpipe predict``/``score``).
    """
    kind = dataset.manifest.get("kind")
    if kind not in VALID_METRIC:
        raise ArcpipeError(
            f"is a {kind!r} dataset; evaluate scores sudoku and maze datasets (use predict and "
            "score for ARC)",
            file=dataset.path,
        )
    return kind


def count_correct(
    dataset: Dataset, tokens: np.ndarray, rows: np.ndarray, split: str = "test"
) -> dict[str, int]:
    """Count exact and valid predictions of examples ``rows`` of ``split``.

    Args:
        dataset: a sudoku or maze dataset.
        tokens: uint8 [B, seq_len], the predicted board of each row.
        rows: int [B], example rows of ``split``.
        split: the split the rows index.

    Returns:
        ``count`` (rows), ``exact`` (boards equal to the answer), ``valid`` (valid solutions).
    """
    kind = puzzle_kind(dataset)
    offset = int(dataset.manifest["vocab"]["colour_offset"])
    inputs, labels, _ = dataset.encode(split, np.asarray(rows))
    questions = inputs.astype(np.int64) - offset
    answers = np.asarray(tokens).astype(np.int64) - offset
    exact = (answers == labels.astype(np.int64) - offset).all(axis=1)
    check = valid_sudoku_answers if kind == "sudoku" else valid_maze_answers
    valid = check(questions, answers)
    return {"count": len(rows), "exact": int(exact.sum()), "valid": int(valid.sum())}


def metrics_from_counts(kind: str, counts: dict[str, int]) -> dict:
    """Rates from :func:`count_correct`'s counts (summed over batches)."""
    total = max(1, counts["count"])
    return {
        "puzzles": counts["count"],
        "exact": counts["exact"],
        "valid": counts["valid"],
        "exact_accuracy": counts["exact"] / total,
        VALID_METRIC[kind]: counts["valid"] / total,
    }


def evaluate_predictions(
    dataset: Dataset, tokens: np.ndarray, rows: np.ndarray, split: str = "test"
) -> dict:
    """Exact accuracy and validity rate of predicted boards.

    Args:
        dataset: a sudoku or maze dataset.
        tokens: uint8 [B, seq_len] predicted tokens, one board per row.
        rows: int [B], example rows of ``split`` the boards answer.
        split: ``test`` (the untransformed test puzzles) or another split of the dataset.

    Returns:
        ``puzzles``, ``exact``, ``valid`` (counts), ``exact_accuracy`` and
        ``valid_solution_rate`` (sudoku) or ``valid_path_rate`` (maze).
    """
    return metrics_from_counts(puzzle_kind(dataset), count_correct(dataset, tokens, rows, split))


def evaluate_model(
    model: TRM,
    dataset: Dataset,
    split: str,
    rows: np.ndarray,
    batch_size: int,
    device: torch.device,
    loss_kind: str = "stablemax",
    halt_early: bool = False,
    rank: int = 0,
    world_size: int = 1,
    on_batch: Callable[[int], None] | None = None,
) -> dict:
    """Run ``model`` on examples ``rows`` of ``split`` and score its boards.

    Under torchrun each rank runs its share of ``rows`` and the counts are summed over ranks
    (every rank calls this). The model runs in eval mode; its previous mode is restored.

    Args:
        model: the network, with the weights to evaluate (apply EMA weights beforehand).
        dataset: a sudoku or maze dataset.
        split: the split ``rows`` index (normally ``test``).
        rows: int [N] example rows, the same on every rank.
        batch_size: views per forward pass.
        device: where the model lives.
        loss_kind: ``stablemax`` or ``softmax``, how logits become probabilities.
        halt_early: stop a view at its first step with ``q_halt > 0``.
        rank: this process's rank.
        world_size: the number of ranks.
        on_batch: called with the number of rows after every batch (a progress bar).

    Returns:
        :func:`evaluate_predictions`'s metrics over all ranks, plus ``split``, ``views`` and
        ``mean_steps`` (supervision steps run per view).
    """
    kind = puzzle_kind(dataset)
    if batch_size < 1:
        raise ArcpipeError(f"the batch size must be >= 1, got {batch_size}")
    mine = np.array_split(np.asarray(rows), world_size)[rank]
    counts = {"count": 0, "exact": 0, "valid": 0, "steps": 0}
    was_training = model.training
    model.eval()
    try:
        for lo in range(0, len(mine), batch_size):
            chunk = mine[lo : lo + batch_size]
            out = run_views(model, dataset, split, chunk, device, halt_early, loss_kind)
            for key, value in count_correct(dataset, out.tokens, chunk, split).items():
                counts[key] += value
            counts["steps"] += int(out.steps.sum())
            if on_batch is not None:
                on_batch(len(chunk))
    finally:
        model.train(was_training)
    total = {key: sum(c[key] for c in gather_objects(counts)) for key in counts}
    return {
        "split": split,
        "views": total["count"],
        **metrics_from_counts(kind, total),
        "mean_steps": total["steps"] / max(1, total["count"]),
    }


def evaluation_rows(dataset: Dataset, limit: int | None = None) -> np.ndarray:
    """Rows of the test split: all of them, or those of the first ``limit`` test puzzles.

    Raises:
        ArcpipeError: ``limit`` below 1.
    """
    records = np.asarray(dataset.examples("test"))
    if limit is None:
        return np.arange(len(records))
    if limit < 1:
        raise ArcpipeError(f"--limit must be >= 1, got {limit}")
    task_of_row = np.asarray(dataset.arrays["variants"])[records[:, 0], 0]
    first = np.unique(task_of_row)[:limit]
    return np.flatnonzero(np.isin(task_of_row, first))


def evaluate_run(
    run: str | Path | None,
    data: str | Path,
    checkpoint: str = "best",
    batch_size: int = 0,
    device: str = "auto",
    limit: int | None = None,
    halt_early: bool = False,
    quiet: bool = False,
) -> dict:
    """Evaluate a run's checkpoint on the test puzzles of a sudoku or maze dataset.

    Args:
        run: the run directory (needed for ``best``/``last``).
        data: the dataset directory the run was trained on.
        checkpoint: ``best``, ``last`` or a checkpoint directory.
        batch_size: views per forward pass; 0: the run's evaluation batch size.
        device: ``auto``, ``cpu``, ``cuda`` ...
        limit: evaluate only the first ``limit`` test puzzles.
        halt_early: stop a view at its first step with ``q_halt > 0``.
        quiet: no progress bar.

    Returns:
        :func:`evaluate_model`'s metrics plus ``checkpoint``, ``step`` and ``seconds``.

    Raises:
        ArcpipeError: not a sudoku/maze dataset, no such checkpoint, or a checkpoint of another
            dataset.
    """
    topo = setup_topology(device)
    try:
        start = time.monotonic()
        dataset = Dataset.open(data)
        puzzle_kind(dataset)
        ckpt = load_checkpoint(resolve_checkpoint(None if run is None else Path(run), checkpoint))
        model = inference_model(ckpt, dataset, topo.device)
        train_cfg = ckpt.config.train
        batch = batch_size or train_cfg.eval_batch_size or train_cfg.global_batch_size
        rows = evaluation_rows(dataset, limit)
        with Progress("evaluate", len(rows), quiet=quiet or not topo.is_main) as bar:
            metrics = evaluate_model(
                model,
                dataset,
                "test",
                rows,
                batch,
                topo.device,
                train_cfg.loss,
                halt_early,
                topo.rank,
                topo.world_size,
                on_batch=lambda n: bar.advance(n * topo.world_size),
            )
        return {
            **metrics,
            "checkpoint": str(ckpt.path),
            "step": int(ckpt.state.get("step", 0)),
            "seconds": time.monotonic() - start,
        }
    finally:
        teardown()
