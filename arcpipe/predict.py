"""Prediction: run every view of every test input, map answers back, collect candidates.

Each view (an example row of the test or validation split) runs ``N_sup`` supervision steps from a
fresh y and z, as the reference evaluates; with ``halt_early`` a row stops at the first step whose
``q_halt > 0`` (a speed option). The final answer is cropped at EOS, checked (non-empty), and
inverted (dihedral, then colours) into its task's frame. Under torchrun the rows are split across
ranks and the candidates gathered on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from arcpipe.arc.candidates import Candidates
from arcpipe.arc.encode import tokens_to_grid
from arcpipe.data.dataset import Dataset
from arcpipe.data.sampler import encode_batch
from arcpipe.model.trm import TRM
from arcpipe.precision import autocast
from arcpipe.train.distributed import gather_objects
from arcpipe.train.losses import IGNORE, log_stablemax


@dataclass
class ViewOutputs:
    """Raw results of a batch of views, on CPU."""

    tokens: np.ndarray  # uint8 (B, S) predicted board
    logprob: np.ndarray  # float32 (B, S) log-probability of each predicted token
    q_halt: np.ndarray  # float32 (B,) sigmoid of the halting logit at the final step
    exact: np.ndarray  # bool (B,) every supervised cell right (False when unsupervised)
    steps: np.ndarray  # int32 (B,) supervision steps run


@torch.no_grad()
def run_views(
    model: TRM,
    dataset: Dataset,
    split: str,
    rows: np.ndarray,
    device: torch.device,
    halt_early: bool = False,
    loss_kind: str = "stablemax",
) -> ViewOutputs:
    """Run one batch of views for N_sup steps (or until they halt)."""
    batch = encode_batch(dataset, split, rows).to(device)
    size = len(rows)
    state = model.initial_state(size, device)
    final_logits = torch.empty(size, dataset.seq_len, model.vocab_size, device=device)
    final_q = torch.empty(size, device=device)
    steps = torch.zeros(size, dtype=torch.int32, device=device)
    active = torch.arange(size, device=device)
    with autocast(device, model.compute_dtype):
        for step in range(1, model.config.supervision_steps + 1):
            out = model(state, batch.inputs[active], batch.puzzle_ids[active])
            last = step == model.config.supervision_steps
            done = (
                torch.ones_like(out.q_halt, dtype=torch.bool)
                if last
                else (
                    out.q_halt > 0 if halt_early else torch.zeros_like(out.q_halt, dtype=torch.bool)
                )
            )
            finished = active[done]
            final_logits[finished] = out.logits[done].float()
            final_q[finished] = out.q_halt[done]
            steps[finished] = step
            active = active[~done]
            if len(active) == 0:
                break
            state = type(out.state)(out.state.answer[~done], out.state.latent[~done])
    logp = (
        log_stablemax(final_logits.double())
        if loss_kind == "stablemax"
        else torch.log_softmax(final_logits, -1)
    )
    best, tokens = logp.max(-1)
    labels = batch.labels
    supervised = labels != IGNORE
    exact = ((tokens == labels) | ~supervised).all(-1) & supervised.any(-1)
    return ViewOutputs(
        tokens.to(torch.uint8).cpu().numpy(),
        best.float().cpu().numpy(),
        torch.sigmoid(final_q).cpu().numpy(),
        exact.cpu().numpy(),
        steps.cpu().numpy(),
    )


def to_candidates(
    dataset: Dataset, split: str, rows: np.ndarray, outputs: ViewOutputs
) -> Candidates:
    """Crop, check and invert each view's answer; malformed (empty) answers are dropped."""
    task_ids = target_task_ids(dataset, split)
    index = {t: i for i, t in enumerate(task_ids)}
    num_tests = [next(t.num_test for t in dataset.tasks if t.id == tid) for tid in task_ids]
    records, grids, malformed = [], [], 0
    canvas = dataset.canvas
    for k, row in enumerate(rows):
        view = dataset.view(split, int(row))
        grid = tokens_to_grid(outputs.tokens[k], canvas)
        if grid.size == 0:
            malformed += 1
            continue
        h, w = grid.shape
        logprob = float(outputs.logprob[k].reshape(canvas, canvas)[:h, :w].mean())
        grids.append(view.transform.invert(grid))
        records.append((index[view.task_id], view.pair_index, row, outputs.q_halt[k], logprob))
    columns = list(zip(*records)) if records else [[]] * 5
    return Candidates.from_grids(
        task_ids,
        np.array(num_tests),
        *columns,
        grids,
        meta={"dataset": dataset.fingerprint, "split": split, "malformed": malformed},
    )


def target_task_ids(dataset: Dataset, split: str) -> list[str]:
    """Ids of the tasks with examples in ``split``, in dataset order."""
    role = "val" if split == "val" else "target"
    return [t.id for t in dataset.tasks if t.role == role]


def view_rows(dataset: Dataset, split: str, views: int = 0) -> np.ndarray:
    """The rows to predict: all of ``split``, or the first ``views`` variants of each task.

    Variants are in build order (the original first), so the choice is deterministic.
    """
    records = np.asarray(dataset.examples(split))
    if views <= 0:
        return np.arange(len(records))
    variants = np.asarray(dataset.arrays["variants"])
    first_variant = np.array([t.first_variant for t in dataset.tasks])
    rank = records[:, 0] - first_variant[variants[records[:, 0], 0]]
    return np.flatnonzero(rank < views)


def predict_candidates(
    model: TRM,
    dataset: Dataset,
    split: str,
    rows: np.ndarray,
    batch_size: int,
    device: torch.device,
    rank: int = 0,
    world_size: int = 1,
    halt_early: bool = False,
    loss_kind: str = "stablemax",
    on_batch=None,
) -> tuple[Candidates, dict[str, float]]:
    """Predict ``rows`` of ``split`` (this rank's share), gather, and return all candidates.

    Returns:
        the candidates (on every rank) and view-level metrics: exact accuracy per view (over the
        views with labels) and the mean number of steps run.
    """
    mine = np.array_split(rows, world_size)[rank]
    parts, exact, labelled, steps = [], 0, 0, 0
    for lo in range(0, len(mine), batch_size):
        chunk = mine[lo : lo + batch_size]
        out = run_views(model, dataset, split, chunk, device, halt_early, loss_kind)
        parts.append(to_candidates(dataset, split, chunk, out))
        exact += int(out.exact.sum())
        labelled += int(_labelled(dataset, split, chunk).sum())
        steps += int(out.steps.sum())
        if on_batch is not None:
            on_batch(len(chunk))
    gathered = gather_objects((parts, exact, labelled, steps, len(mine)))
    all_parts = [p for g in gathered for p in g[0]]
    if not all_parts:
        all_parts = [to_candidates(dataset, split, rows[:0], _empty_outputs())]
    totals = np.sum([g[1:] for g in gathered], axis=0)
    metrics = {
        "exact_accuracy": float(totals[0] / max(1, totals[1])),
        "mean_steps": float(totals[2] / max(1, totals[3])),
    }
    return Candidates.concat(all_parts), metrics


def _labelled(dataset: Dataset, split: str, rows: np.ndarray) -> np.ndarray:
    pairs = np.asarray(dataset.examples(split)[rows, 1])
    return np.asarray(dataset.arrays["pairs"][pairs, 1]) >= 0


def _empty_outputs() -> ViewOutputs:
    z = np.zeros(0)
    return ViewOutputs(z.astype(np.uint8).reshape(0, 0), z.reshape(0, 0), z, z.astype(bool), z)
