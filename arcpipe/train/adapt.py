"""Test-time training: continue a trained run on the demonstrations of the tasks being predicted.

The run is restored exactly as ``--resume`` would (weights, EMA, optimizers, step, learning-rate
schedule), then steps on the training examples of the target tasks only (their demonstrations in
every built variant, or in fresh views when the run trained with ``train.fresh_augmentations``
or ``fresh_views`` asks for them), by the same epoch rule
and deep supervision as training, until a budget of steps, wall or CPU seconds is spent, with
the run's learning rates (dense and puzzle table alike) times ``lr_scale`` (1: the run's own,
schedule included). Nothing is written: the adapted network (its EMA weights when the run keeps
an EMA) serves the prediction that follows and is then dropped. Under torchrun every rank steps
together, as in training.

This spends prediction time where the reference spends none (it predicts with the trained weights
as they are); ``predict --adapt-steps/--adapt-time/--adapt-cpu-time`` 0 (the default) is the
reference's behaviour.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arcpipe.config import Config
from arcpipe.data.dataset import Dataset
from arcpipe.data.sampler import BucketedSampler
from arcpipe.errors import ArcpipeError
from arcpipe.runtime import StopSignal
from arcpipe.train import distributed as dist
from arcpipe.train.checkpoint import Checkpoint, check_dataset
from arcpipe.train.trainer import RunOptions, Trainer, average_metrics


@dataclass
class AdaptBudget:
    """When to stop adapting: the first of these that is spent (None or 0: no such limit; none
    set: no adaptation)."""

    steps: int | None = None
    seconds: float | None = None  # wall
    cpu_seconds: float | None = None  # this process's CPU time, all threads

    def __bool__(self) -> bool:
        return any(v for v in (self.steps, self.seconds, self.cpu_seconds))

    def spent(self, steps: int, seconds: float, cpu_seconds: float) -> str | None:
        """Which limit these amounts reach ("steps", "time", "cpu-time"), or None."""
        if self.steps and steps >= self.steps:
            return "steps"
        if self.seconds and seconds > self.seconds:
            return "time"
        if self.cpu_seconds and cpu_seconds > self.cpu_seconds:
            return "cpu-time"
        return None


@dataclass
class Adaptation:
    """What test-time training did."""

    steps: int  # optimizer steps taken
    start_step: int  # the run's step it continued from
    seconds: float
    lm_loss: float  # mean over the last steps (up to 50); nan when no step was taken
    exact_accuracy: float  # likewise, over the slots that halted
    stopped: str  # "steps", "time", "cpu-time" or "signal"


def target_task_indices(dataset: Dataset) -> np.ndarray:
    """Indices (into ``dataset.tasks``) of the tasks whose test inputs are predicted."""
    return np.array([i for i, t in enumerate(dataset.tasks) if t.role == "target"], dtype=np.int64)


def check_adaptable(ckpt: Checkpoint, dataset: Dataset, fresh_views: bool = False) -> None:
    """Refuse what :func:`adapt` cannot continue, before anything is written.

    Raises:
        ArcpipeError: a checkpoint of another dataset, a weights-only checkpoint (an imported
            one: nothing to continue), target tasks without training examples, or fresh views
            asked of a run with a per-variant puzzle table (a fresh view has no row there).
    """
    check_dataset(ckpt, dataset, exact=True)
    if fresh_views and ckpt.config.model.puzzle_table != "task":
        raise ArcpipeError(
            "--adapt-fresh-views needs a run with model.puzzle_table = task (a fresh view has "
            "no row in a per-variant table)",
            file=ckpt.path,
        )
    if not ckpt.holds_run:
        raise ArcpipeError(
            "holds weights only (an imported checkpoint), not a run to continue: test-time "
            "training needs a checkpoint of arcpipe train",
            file=ckpt.path,
        )
    variants = np.asarray(dataset.examples("train")[:, 0])
    tasks = np.asarray(dataset.arrays["variants"])[variants, 0]
    if not np.isin(tasks, target_task_indices(dataset)).any():
        raise ArcpipeError(
            "no training examples of the target tasks to adapt on (test-time training needs "
            "their demonstrations in the train split)",
            file=dataset.path,
        )


def adapt(
    ckpt: Checkpoint,
    dataset: Dataset,
    topo: dist.Topology,
    budget: AdaptBudget,
    stop: StopSignal | None = None,
    lr_scale: float = 1.0,
    fresh_views: bool = False,
) -> tuple[torch.nn.Module, Adaptation]:
    """Continue ``ckpt``'s run on the target tasks' demonstrations; see the module docstring.

    The optimizers continue in ``ckpt``'s own state tensors (no copy of them is made), so
    ``ckpt`` is used up: load it again to adapt a second time.

    Returns:
        the adapted network (EMA weights if the run has an EMA), in eval mode, and a summary.

    Raises:
        ArcpipeError: as :func:`check_adaptable`.
    """
    start, start_cpu = time.monotonic(), time.process_time()
    check_adaptable(ckpt, dataset, fresh_views)
    config = adaptation_config(ckpt.config, lr_scale, fresh_views)
    trainer = Trainer(RunOptions(Path(dataset.path), config, ckpt.path), topo, dataset)
    trainer.restore(ckpt)
    cfg = trainer.config.train
    trainer.sampler = BucketedSampler(
        trainer.layout,
        "train",
        cfg.global_batch_size,
        cfg.seed,
        cfg.board_buckets,
        cfg.num_variants,
        tasks=target_task_indices(dataset),
    )
    trainer.carries = {}  # the training carries hold other tasks' boards
    start_step, window = trainer.step, []
    stopped = _adapt_loop(trainer, budget, stop, window, start, start_cpu)
    model = trainer.model
    if trainer.ema is not None:
        trainer.ema.copy_to(model)
    model.eval()
    recent = average_metrics(window[-50:]) if window else {}
    summary = Adaptation(
        trainer.step - start_step,
        start_step,
        time.monotonic() - start,
        recent.get("lm_loss", float("nan")),
        recent.get("exact_accuracy", float("nan")),
        stopped,
    )
    return model, summary


def adaptation_config(config: Config, lr_scale: float, fresh_views: bool) -> Config:
    """A copy of ``config`` with its dense and puzzle-table learning rates times ``lr_scale``,
    and fresh augmentations on if ``fresh_views`` (else as the run trained)."""
    train = config.train
    changes = {"lr": train.lr * lr_scale, "puzzle_emb_lr": train.puzzle_emb_lr * lr_scale}
    if fresh_views:
        changes["fresh_augmentations"] = True
    return dataclasses.replace(config, train=dataclasses.replace(train, **changes))


def _adapt_loop(
    trainer: Trainer,
    budget: AdaptBudget,
    stop: StopSignal | None,
    window: list[dict[str, float]],
    start: float,
    start_cpu: float,
) -> str:
    """Step until the budget would be overrun by one more step like the last; every rank follows
    rank 0's decision."""
    first = trainer.step
    step_seconds = step_cpu = 0.0
    while True:
        reason = budget.spent(
            trainer.step - first,
            time.monotonic() - start + step_seconds,
            time.process_time() - start_cpu + step_cpu,
        )
        if stop is not None and stop.received is not None:
            reason = "signal"
        if trainer.topo.distributed:
            reason = dist.broadcast_object(reason)
        if reason is not None:
            return reason
        t0, c0 = time.monotonic(), time.process_time()
        window.append(trainer.train_step())
        step_seconds, step_cpu = time.monotonic() - t0, time.process_time() - c0
