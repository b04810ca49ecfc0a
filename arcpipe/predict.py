"""``arcpipe predict``: every view of every test input -> answers in the task's frame -> vote.

Each view (an example row of the test or validation split) runs ``N_sup`` supervision steps from a
fresh y and z, as the reference evaluates; with ``halt_early`` a row stops at the first step whose
``q_halt > 0`` (a speed option). The final answer is cropped at EOS, checked (non-empty), and
inverted (dihedral, then colours) into its task's frame. Under torchrun the rows are split across
ranks and the candidates gathered.

The checkpoint and dataset are checked before anything is written. A complete fallback
submission is then written (unless the output already holds a valid submission for these tasks,
which stays until the first vote replaces it) and replaced atomically with the current vote as
views complete; ``max_time``, SIGTERM and SIGINT stop inference after the current batch and keep
the vote of the views done. Views are visited variant by variant across all tasks (every test
input's original first), so a stopped run has spread its views evenly.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arcpipe.arc.candidates import Candidates
from arcpipe.arc.submission import (
    fallback_submission,
    load_submission,
    submission_from_votes,
    validate_submission,
    write_submission,
)
from arcpipe.arc.vote import vote
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import Bucket, Layout
from arcpipe.data.sampler import encode_batch
from arcpipe.errors import ArcpipeError
from arcpipe.model.trm import TRM
from arcpipe.precision import autocast
from arcpipe.progress import Progress
from arcpipe.runtime import StopSignal
from arcpipe.train.checkpoint import (
    inference_model,
    load_checkpoint,
)
from arcpipe.train.distributed import broadcast_object, gather_objects, teardown
from arcpipe.train.distributed import setup as setup_topology
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
    layout: Layout | None = None,
    bucket: Bucket | None = None,
) -> ViewOutputs:
    """Run one batch of views for N_sup steps (or until they halt); boxed boards of one
    ``bucket`` with a boxed ``layout``."""
    batch = encode_batch(dataset, split, rows, layout, bucket).to(device)
    size, board_len = batch.inputs.shape
    state = model.initial_state(size, device, board_len)
    final_logits = torch.empty(size, board_len, model.vocab_size, device=device)
    final_q = torch.empty(size, device=device)
    steps = torch.zeros(size, dtype=torch.int32, device=device)
    active = torch.arange(size, device=device)
    with autocast(device, model.compute_dtype):
        for step in range(1, model.config.supervision_steps + 1):
            out = model(
                state,
                batch.inputs[active],
                batch.puzzle_ids[active],
                None if batch.positions is None else batch.positions[active],
                None if batch.mask is None else batch.mask[active],
            )
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
    dataset: Dataset,
    split: str,
    rows: np.ndarray,
    outputs: ViewOutputs,
    layout: Layout | None = None,
) -> Candidates:
    """Crop, check and invert each view's answer; malformed (empty) answers are dropped."""
    layout = layout or Layout(dataset, "full")
    task_ids = target_task_ids(dataset, split)
    index = {t: i for i, t in enumerate(task_ids)}
    tests_of = {t.id: t.num_test for t in dataset.tasks}
    num_tests = [tests_of[t] for t in task_ids]
    records, grids, malformed = [], [], 0
    boxes = layout.boxes(split, rows)
    for k, row in enumerate(rows):
        view = dataset.view(split, int(row))
        grid = layout.crop(outputs.tokens[k], boxes[k])
        if grid.size == 0:
            malformed += 1
            continue
        h, w = grid.shape
        board = outputs.logprob[k][: boxes[k].prod()].reshape(boxes[k])
        logprob = float(board[:h, :w].mean())
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
    layout: Layout | None = None,
    max_buckets: int = 1,
) -> tuple[Candidates, dict[str, float]]:
    """Predict ``rows`` of ``split`` (this rank's share), gather, and return all candidates.

    Boxed boards (``layout``) run in batches of one bucket each (at most ``max_buckets``).

    Returns:
        the candidates (on every rank) and view-level metrics: exact accuracy per view (over the
        views with labels) and the mean number of steps run.
    """
    layout = layout or Layout(dataset, "full")
    mine = np.array_split(rows, world_size)[rank]
    parts, exact, labelled, steps = [], 0, 0, 0
    for chunk, bucket in layout.batches(split, mine, batch_size, max_buckets):
        out = run_views(model, dataset, split, chunk, device, halt_early, loss_kind, layout, bucket)
        parts.append(to_candidates(dataset, split, chunk, out, layout))
        exact += int(out.exact.sum())
        labelled += int(_labelled(dataset, split, chunk).sum())
        steps += int(out.steps.sum())
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


# ----------------------------------------------------------------------------- the command


@dataclass
class PredictOptions:
    """What ``arcpipe predict`` takes."""

    data: Path
    out: Path  # submission.json
    run: Path | None = None
    checkpoint: str = "best"  # "best", "last" or a checkpoint directory
    attempts: int = 2
    views: int = 0  # views per test input; 0: all
    max_time: float | None = None  # seconds
    halt_early: bool = False
    batch_size: int = 0  # 0: 64 on GPU, 8 on CPU
    candidates: Path | None = None  # default: next to the submission
    vote_rule: str = "count"
    device: str = "auto"
    sync_seconds: float = (
        60.0  # how often the submission is refreshed during inference (0: each batch)
    )
    quiet: bool = False


@dataclass
class PredictResult:
    """What a prediction run did."""

    submission: Path
    candidates: Path
    views_done: int
    views_total: int
    malformed: int
    seconds: float
    stopped: str | None = None  # why inference ended early: "max-time" or "signal"


def resolve_checkpoint(run: Path | None, which: str) -> Path:
    """The checkpoint directory for ``--checkpoint best|last|PATH``."""
    if which in ("best", "last"):
        if run is None:
            raise ArcpipeError(f"--checkpoint {which} needs --run")
        path = run / which
        if which == "best" and not path.exists():
            path = run / "last"  # a run without evaluations has no best/
        if not path.exists():
            raise ArcpipeError("no checkpoint in this run directory", file=run)
        return path
    return Path(which)


def target_test_inputs(dataset: Dataset) -> dict[str, list[np.ndarray]]:
    """The target tasks' test inputs, by task id, in test order."""
    return {
        t.id: [inp for inp, _ in dataset.task_pairs(t)[t.num_train :]]
        for t in dataset.tasks
        if t.role == "target"
    }


def interleaved(dataset: Dataset, rows: np.ndarray) -> np.ndarray:
    """``rows`` ordered by each view's variant rank within its task, originals first."""
    records = np.asarray(dataset.examples("test"))
    variants = np.asarray(dataset.arrays["variants"])
    first_variant = np.array([t.first_variant for t in dataset.tasks])
    rank = records[rows, 0] - first_variant[variants[records[rows, 0], 0]]
    return rows[np.argsort(rank, kind="stable")]


def predict(options: PredictOptions) -> PredictResult:
    """Run a prediction (see the module docstring); every rank calls this under torchrun."""
    topo = setup_topology(options.device)
    try:
        return _predict(options, topo)
    finally:
        teardown()


def _predict(options: PredictOptions, topo) -> PredictResult:
    start = time.monotonic()
    dataset = Dataset.open(options.data)
    if options.attempts < 1:
        raise ArcpipeError("--attempts must be >= 1")
    ckpt = load_checkpoint(resolve_checkpoint(options.run, options.checkpoint))
    model = inference_model(ckpt, dataset, topo.device)  # refused before anything is written
    layout = Layout(dataset, ckpt.config.model.board)
    max_buckets = ckpt.config.train.board_buckets
    test_inputs = target_test_inputs(dataset)
    expected = {t: len(g) for t, g in test_inputs.items()}
    candidates_path = options.candidates or options.out.with_suffix(".candidates.npz")
    if topo.is_main and not _holds_valid_submission(options.out, expected, options.attempts):
        fallback = fallback_submission(test_inputs, options.attempts)
        write_submission(options.out, fallback, expected, options.attempts)
    loss_kind = ckpt.config.train.loss
    batch = options.batch_size or (64 if topo.device.type == "cuda" else 8)
    rows = interleaved(dataset, view_rows(dataset, "test", options.views))
    # Rounds of views spread over all tasks; boxed boards split each round into buckets.
    per_round = batch * topo.world_size * (max_buckets if layout.boxed else 1)
    rounds = np.array_split(rows, max(1, -(-len(rows) // per_round)))
    mine: list[Candidates] = []
    gathered: list[Candidates] = []
    done, stopped, last_sync = 0, None, time.monotonic()

    def sync() -> None:
        nonlocal mine
        for parts in gather_objects(mine):
            gathered.extend(parts)
        mine = []
        if topo.is_main and gathered:
            _write_outputs(gathered, test_inputs, expected, options, candidates_path)

    quiet = options.quiet or not topo.is_main
    with StopSignal() as signal_stop, Progress("predict", len(rows), quiet=quiet) as bar:
        for chunk in rounds:
            sys.audit("arcpipe.predict.batch", done)  # a fault-injection point (arcpipe.faults)
            for part, bucket in layout.batches("test", chunk, batch * topo.world_size, max_buckets):
                share = np.array_split(part, topo.world_size)[topo.rank]
                if len(share):
                    out = run_views(
                        model, dataset, "test", share, topo.device, options.halt_early,
                        loss_kind, layout, bucket,
                    )  # fmt: skip
                    mine.append(to_candidates(dataset, "test", share, out, layout))
            done += len(chunk)
            bar.advance(len(chunk))
            reason = None
            if signal_stop.received is not None:
                reason = "signal"
            elif options.max_time is not None and time.monotonic() - start > options.max_time:
                reason = "max-time"
            refresh = time.monotonic() - last_sync >= options.sync_seconds
            reason, refresh = broadcast_object((reason, refresh))  # rank 0 decides for all
            if reason is not None and done < len(rows):
                stopped = reason
                break
            if refresh:
                sync()
                last_sync = time.monotonic()
        sync()
    malformed = sum(int(c.meta.get("malformed", 0)) for c in gathered)
    if topo.is_main and not gathered:
        _write_outputs([], test_inputs, expected, options, candidates_path)
    return PredictResult(
        options.out, candidates_path, done, len(rows), malformed, time.monotonic() - start, stopped
    )


def _holds_valid_submission(path: Path, expected: dict[str, int], attempts: int) -> bool:
    """Whether ``path`` already holds a complete, valid submission for these test inputs."""
    if not path.is_file():
        return False
    try:
        validate_submission(load_submission(path), expected, path, attempts)
    except ArcpipeError:
        return False
    return True


def _write_outputs(parts, test_inputs, expected, options: PredictOptions, candidates_path) -> None:
    """Vote over everything gathered so far; write the candidates and the submission."""
    task_ids = list(test_inputs)
    if not parts:
        parts = [
            Candidates.from_grids(
                task_ids, [len(g) for g in test_inputs.values()], [], [], [], [], [], []
            )
        ]
    candidates = Candidates.concat(parts)
    candidates.save(candidates_path)
    submission = submission_from_votes(
        vote(candidates, options.vote_rule), test_inputs, options.attempts
    )
    write_submission(options.out, submission, expected, options.attempts)
