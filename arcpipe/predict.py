"""``arcpipe predict``: every view of every test input -> answers in the task's frame -> vote.

Each view (an example row of the test or validation split) runs ``N_sup`` supervision steps from a
fresh y and z (or URM's h), as the reference evaluates; with ``halt_early`` a row stops at the first
step whose ``q_halt > 0`` (a speed option). The final answer is cropped at EOS, checked (non-empty:
an empty crop is dropped, where the reference counts it as a vote), and inverted (dihedral, then
colours) into its task's frame. With ``cross_view_k`` > 0 each test input's top K grids by count
are then scored under every one of its views (:mod:`arcpipe.crossview`), so that the
candidates file can be voted by every rule without the model. Under torchrun the rows are split
across ranks and the candidates gathered.

Boxed boards (:mod:`arcpipe.data.layout`) run in batches of one bucket of board lengths each.

The checkpoint and dataset are checked before anything is written. A complete fallback
submission is then written (unless the output already holds a valid submission for these tasks,
which stays until the first vote replaces it) and replaced atomically with the current vote as
views complete; ``max_time`` (or ``max_cpu_time``), SIGTERM and SIGINT stop inference after the
current batch and keep the vote of the views done. The order of the views (:func:`plan_batches`)
is chosen for a stopped run: without cross-view scoring they go variant by variant across all
tasks (every test input's original first), so the views done are spread evenly; with it, the
first few variants of every test input go first in that way, then the rest test input by test
input, which bounds the log-probability tables held in memory to those of the open test inputs.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arcpipe.arc.candidates import Candidates
from arcpipe.arc.encode import IGNORE
from arcpipe.arc.programs import solve
from arcpipe.arc.submission import (
    fallback_submission,
    load_submission,
    submission_from_votes,
    validate_submission,
    write_submission,
)
from arcpipe.arc.vote import CROSS_VIEW_RULES, vote
from arcpipe.config import Config
from arcpipe.crossview import CrossViewScorer
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import Bucket, Layout
from arcpipe.data.sampler import encode_batch
from arcpipe.errors import ArcpipeError
from arcpipe.model.trm import TRM
from arcpipe.precision import autocast
from arcpipe.progress import Progress
from arcpipe.runtime import StopSignal
from arcpipe.train.adapt import Adaptation, AdaptBudget, adapt, check_adaptable
from arcpipe.train.checkpoint import (
    inference_model,
    load_checkpoint,
)
from arcpipe.train.distributed import broadcast_object, gather_objects, teardown
from arcpipe.train.distributed import setup as setup_topology
from arcpipe.train.losses import log_stablemax


@dataclass
class ViewOutputs:
    """Raw results of a batch of views, on CPU."""

    tokens: np.ndarray  # uint8 (B, S) predicted board
    logprob: np.ndarray  # float32 (B, S) log-probability of each predicted token
    q_halt: np.ndarray  # float64 (B,) sigmoid of the halting logit at the final step
    exact: np.ndarray  # bool (B,) every supervised cell right (False when unsupervised)
    steps: np.ndarray  # int32 (B,) supervision steps run
    tables: np.ndarray | None = None  # float32 (B, S, V) every token's log-probability, if kept


@torch.no_grad()
def run_views(
    model: TRM,
    dataset: Dataset,
    split: str,
    rows: np.ndarray,
    device: torch.device,
    halt_early: bool = False,
    loss_kind: str = "stablemax",
    keep_tables: bool = False,
    layout: Layout | None = None,
    bucket: Bucket | None = None,
) -> ViewOutputs:
    """Run one batch of views for N_sup steps (or until they halt).

    ``keep_tables`` also returns every token's final log-probability (for cross-view scoring);
    with a boxed ``layout`` the boards are those of one ``bucket``.
    """
    table = model.config.puzzle_table
    batch = encode_batch(dataset, split, rows, layout, bucket, table).to(device)
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
                None if batch.augmentation is None else batch.augmentation[active],
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
            state = out.state.select(~done)
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
        torch.sigmoid(final_q.double()).cpu().numpy(),  # float64, as the reference's evaluator
        exact.cpu().numpy(),
        steps.cpu().numpy(),
        logp.float().cpu().numpy() if keep_tables else None,
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
    task_ids, num_tests = target_tasks(dataset, split)
    index = {t: i for i, t in enumerate(task_ids)}
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
        num_tests,
        *columns,
        grids,
        meta={"dataset": dataset.fingerprint, "split": split, "malformed": malformed},
    )


def target_tasks(dataset: Dataset, split: str) -> tuple[list[str], np.ndarray]:
    """The ids of the tasks with examples in ``split`` and their numbers of test inputs."""
    task_ids = target_task_ids(dataset, split)
    tests_of = {t.id: t.num_test for t in dataset.tasks}
    return task_ids, np.array([tests_of[t] for t in task_ids], dtype=np.int32)


def make_scorer(
    dataset: Dataset, split: str, batches: list[np.ndarray], k: int
) -> CrossViewScorer | None:
    """A cross-view scorer expecting the views of ``batches`` (None when ``k`` is 0)."""
    if k <= 0:
        return None
    rows = np.concatenate([np.asarray(b, dtype=np.int64) for b in batches] or [np.zeros(0, int)])
    expected = Counter(np.asarray(dataset.examples(split)[rows, 1]).tolist())
    return CrossViewScorer(k, expected, *target_tasks(dataset, split))


def predict_batch(
    model: TRM,
    dataset: Dataset,
    split: str,
    rows: np.ndarray,
    device: torch.device,
    halt_early: bool,
    loss_kind: str,
    scorer: CrossViewScorer | None,
    layout: Layout,
    bucket: Bucket,
) -> tuple[Candidates, ViewOutputs]:
    """One batch of views (of one bucket of boards) -> candidates, with the scores of the test
    inputs it completes."""
    keep = scorer is not None
    out = run_views(
        model, dataset, split, rows, device, halt_early, loss_kind, keep, layout, bucket
    )
    part = to_candidates(dataset, split, rows, out, layout)
    if scorer is not None:
        part = part.with_scores(scorer.add(dataset, split, rows, out.tables, part, layout))
    return part, out


def scores_part(dataset: Dataset, split: str, scores: tuple) -> Candidates:
    """No candidates, only cross-view scores (those of test inputs left open at the end)."""
    task_ids, num_tests = target_tasks(dataset, split)
    return Candidates.from_grids(task_ids, num_tests, [], [], [], [], [], [], scores=scores)


def target_task_ids(dataset: Dataset, split: str) -> list[str]:
    """Ids of the tasks with examples in ``split``, in dataset order."""
    role = "val" if split == "val" else "target"
    return [t.id for t in dataset.tasks if t.role == role]


def view_rows(
    dataset: Dataset,
    split: str,
    views: int = 0,
    num_variants: int = 0,
    puzzle_table: str = "variant",
) -> np.ndarray:
    """The rows to predict: all of ``split``, or the first ``views`` variants of each task.

    ``num_variants`` > 0 (a run trained on the first K variants, ``train.num_variants``) caps
    ``views`` at K when the run has one ``puzzle_table`` row per variant: the later variants' rows
    were never trained. A task table does not cap them: every variant trained the task's row and
    each view's augmentation code is made of the dihedral and colour terms all variants share.
    Variants are in build order (the original first), so the choice is deterministic.
    """
    count = len(dataset.examples(split))
    if num_variants > 0 and puzzle_table == "variant":
        views = num_variants if views <= 0 else min(views, num_variants)
    if views <= 0:
        return np.arange(count)
    return np.flatnonzero(variant_rank(dataset, split, np.arange(count)) < views)


def variant_rank(dataset: Dataset, split: str, rows: np.ndarray) -> np.ndarray:
    """int64 [N] each row's variant index within its task (0: the original)."""
    return dataset.variant_index(dataset.examples(split)[rows, 0])


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
    cross_view_k: int = 0,
    layout: Layout | None = None,
    max_buckets: int = 1,
) -> tuple[Candidates, dict[str, float]]:
    """Predict ``rows`` of ``split`` (this rank's share), gather, and return all candidates.

    Boxed boards (``layout``) run in batches of one bucket each (at most ``max_buckets``).

    Returns:
        the candidates (on every rank; with cross-view scores of the top ``cross_view_k`` grids
        per test input) and view-level metrics: exact accuracy per view (over the views with
        labels) and the mean number of steps run.
    """
    layout = layout or Layout(dataset, "full")
    plan = plan_batches(dataset, split, rows, batch_size, world_size, cross_view_k > 0)
    mine = bucketed(plan, layout, split, rows, max_buckets)[rank]
    scorer = make_scorer(dataset, split, [chunk for chunk, _ in mine], cross_view_k)
    parts, exact, labelled, steps = [], 0, 0, 0
    for chunk, bucket in mine:
        if not len(chunk):
            continue
        part, out = predict_batch(
            model, dataset, split, chunk, device, halt_early, loss_kind, scorer, layout, bucket
        )
        parts.append(part)
        exact += int(out.exact.sum())
        labelled += int(_labelled(dataset, split, chunk).sum())
        steps += int(out.steps.sum())
    if scorer is not None:
        parts.append(scores_part(dataset, split, scorer.finish()))
    views = sum(len(chunk) for chunk, _ in mine)
    gathered = gather_objects((parts, exact, labelled, steps, views))
    all_parts = [p for g in gathered for p in g[0]]
    if not all_parts:
        all_parts = [to_candidates(dataset, split, rows[:0], _empty_outputs())]
    totals = np.sum([g[1:] for g in gathered], axis=0)
    metrics = {
        "exact_accuracy": float(totals[0] / max(1, totals[1])),
        "mean_steps": float(totals[2] / max(1, totals[3])),
    }
    candidates = Candidates.concat(all_parts)
    candidates.meta["cross_view_k"] = cross_view_k
    return candidates, metrics


def _labelled(dataset: Dataset, split: str, rows: np.ndarray) -> np.ndarray:
    pairs = np.asarray(dataset.examples(split)[rows, 1])
    return np.asarray(dataset.arrays["pairs"][pairs, 1]) >= 0


def _empty_outputs() -> ViewOutputs:
    z = np.zeros(0)
    return ViewOutputs(z.astype(np.uint8).reshape(0, 0), z.reshape(0, 0), z, z.astype(bool), z)


# ----------------------------------------------------------------------------- the command

CROSS_VIEW_K = 8  # default --cross-view-k


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
    max_cpu_time: float | None = None  # seconds of this process's CPU time (all threads)
    halt_early: bool = False
    # N_sup at inference: supervision steps each view runs; 0: the run's own (the reference)
    supervision_steps: int = 0
    batch_size: int = 0  # 0: 64 on GPU, 8 on CPU
    candidates: Path | None = None  # default: next to the submission
    vote_rule: str = "count"
    cross_view_k: int = CROSS_VIEW_K  # grids per test input scored under every view; 0: none
    device: str = "auto"
    sync_seconds: float = 60.0  # seconds between submission refreshes (0: after every batch)
    # Test-time training on the target tasks' demonstrations before inference
    # (arcpipe.train.adapt); counted in max_time / max_cpu_time. None: no such limit.
    adapt_steps: int | None = None
    adapt_time: float | None = None  # seconds
    adapt_cpu_time: float | None = None  # seconds of this process's CPU time
    adapt_lr_scale: float = 1.0  # the run's learning rates times this while adapting
    adapt_fresh_views: bool = False  # adapt on fresh augmentations of the demonstrations
    adapt_ensemble: bool = False  # vote the trained network's views with the adapted one's
    programs: bool = False  # a fitted whole-grid program's answer first (arcpipe.arc.programs)
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
    stopped: str | None = None  # why inference ended early: "max-time", "max-cpu-time", "signal"
    scoring_seconds: float = 0.0  # of ``seconds``, spent on cross-view scores (this rank)
    adaptation: Adaptation | None = None  # what test-time training did, if asked for
    programmed: int = 0  # target tasks answered first by a whole-grid program (--programs)


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


def target_program_answers(dataset: Dataset) -> dict[str, list[np.ndarray]]:
    """The answers of the first whole-grid program that reproduces every demonstration
    (:func:`arcpipe.arc.programs.solve`), by task id, for the target tasks one fits."""
    answers = {}
    for task in dataset.tasks:
        if task.role == "target":
            pairs = dataset.task_pairs(task)
            found = solve(pairs[: task.num_train], [x for x, _ in pairs[task.num_train :]])
            if found is not None:
                answers[task.id] = found[1]
    return answers


def interleaved(dataset: Dataset, split: str, rows: np.ndarray) -> np.ndarray:
    """``rows`` ordered by each view's variant rank within its task, originals first."""
    return rows[np.argsort(variant_rank(dataset, split, rows), kind="stable")]


PREFIX_VIEWS = 8  # with cross-view scoring: variants of every test input visited first


def plan_batches(
    dataset: Dataset,
    split: str,
    rows: np.ndarray,
    batch: int,
    world_size: int = 1,
    by_test_input: bool = False,
) -> list[list[np.ndarray]]:
    """Each rank's batches of example rows, in visiting order: ``plan[rank][j]``.

    Without ``by_test_input`` the rows go variant by variant across all tasks, originals first,
    each round of ``batch x world_size`` rows split evenly across the ranks. With it (cross-view
    scoring), each test input belongs to one rank (balanced by views); a rank visits the first
    :data:`PREFIX_VIEWS` variants of all its test inputs in that interleaved way, then the rest
    test input by test input, so that a stopped run still has a few views of every test input
    while only one test input beyond those prefixes is open at a time.
    """
    ordered = interleaved(dataset, split, np.asarray(rows))
    if not by_test_input:
        rounds = np.array_split(ordered, max(1, -(-len(ordered) // (batch * world_size))))
        return [[np.array_split(c, world_size)[r] for c in rounds] for r in range(world_size)]
    pairs = np.asarray(dataset.examples(split)[ordered, 1])  # each row's test input
    _, first, inverse, sizes = np.unique(
        pairs, return_index=True, return_inverse=True, return_counts=True
    )
    visit = np.argsort(first, kind="stable")  # test inputs in the order they are first met
    owner, load = np.empty(len(visit), dtype=np.int64), np.zeros(world_size, dtype=np.int64)
    for i in visit:
        owner[i] = np.argmin(load)
        load[owner[i]] += sizes[i]
    position = np.empty(len(visit), dtype=np.int64)
    position[visit] = np.arange(len(visit))
    in_prefix = variant_rank(dataset, split, ordered) < PREFIX_VIEWS
    plan = []
    for r in range(world_size):
        mine = np.flatnonzero(owner[inverse] == r)
        rest = mine[~in_prefix[mine]]
        rest = rest[np.argsort(position[inverse[rest]], kind="stable")]
        own = ordered[np.concatenate([mine[in_prefix[mine]], rest])]
        plan.append([own[j : j + batch] for j in range(0, len(own), batch)])
    return plan


def bucketed(
    plan: list[list[np.ndarray]], layout: Layout, split: str, rows: np.ndarray, max_buckets: int
) -> list[list[tuple[np.ndarray, Bucket]]]:
    """The plan's batches, each split into one batch per bucket of boards (one for full
    boards), the buckets chosen over all of ``rows``; the order within a batch is kept."""
    buckets, which = layout.buckets(split, rows, max_buckets)
    bucket_of = dict(zip(np.asarray(rows).tolist(), which.tolist()))
    out = []
    for batches in plan:
        mine = []
        for chunk in batches:
            ids = np.array([bucket_of[int(r)] for r in chunk], dtype=np.int64)
            mine += [(chunk[ids == b], buckets[b]) for b in np.unique(ids)] or [(chunk, buckets[0])]
        out.append(mine)
    return out


def predict(options: PredictOptions) -> PredictResult:
    """Run a prediction (see the module docstring); every rank calls this under torchrun."""
    topo = setup_topology(options.device)
    try:
        return _predict(options, topo)
    finally:
        teardown()


def _predict(options: PredictOptions, topo) -> PredictResult:
    start, start_cpu = time.monotonic(), time.process_time()
    dataset = Dataset.open(options.data)
    _check_options(options)
    ckpt = load_checkpoint(resolve_checkpoint(options.run, options.checkpoint))
    config = ckpt.config
    budget = AdaptBudget(options.adapt_steps, options.adapt_time, options.adapt_cpu_time)
    if budget:
        check_adaptable(ckpt, dataset, options.adapt_fresh_views)  # before anything is written
    # The trained network, where a pass predicts with it: built before adapt() uses the
    # checkpoint up and (without adaptation) before anything is written, so a bad checkpoint
    # is refused first.
    trained = (
        None
        if budget and not options.adapt_ensemble
        else inference_model(ckpt, dataset, topo.device)
    )
    views = _ViewPasses(options, topo, dataset, config, start, start_cpu)
    expected = views.expected
    if topo.is_main and not _holds_valid_submission(options.out, expected, options.attempts):
        fallback = fallback_submission(views.test_inputs, options.attempts, views.programmed)
        write_submission(options.out, fallback, expected, options.attempts)
    adaptation = None
    if trained is not None:  # the trained network's views: all of them, or the ensemble's first
        views.run(trained, "predict" if not budget else "predict (trained)")
    if budget and views.stopped is None:
        with views.signal_stop:
            model, adaptation = adapt(
                ckpt,
                dataset,
                topo,
                budget,
                views.signal_stop,
                options.adapt_lr_scale,
                options.adapt_fresh_views,
            )
        views.run(model, "predict (adapted)" if options.adapt_ensemble else "predict")
    return views.result(adaptation)


class _ViewPasses:
    """Passes over every view of every test input, each with a network (the trained one, the
    adapted one, or both for ``--adapt-ensemble``), voted together into the submission; the
    time limits and the stop signal span all of them."""

    def __init__(
        self,
        options: PredictOptions,
        topo,
        dataset: Dataset,
        config: Config,
        start: float,
        start_cpu: float,
    ) -> None:
        self.options, self.topo, self.dataset = options, topo, dataset
        self.test_inputs = target_test_inputs(dataset)
        self.expected = {t: len(g) for t, g in self.test_inputs.items()}
        # Rank 0 writes the submission, so only it searches for programs.
        self.programmed = (
            target_program_answers(dataset) if options.programs and topo.is_main else {}
        )
        self.start, self.start_cpu = start, start_cpu
        self.candidates_path = options.candidates or options.out.with_suffix(".candidates.npz")
        self.loss_kind = config.train.loss
        self.layout = Layout(dataset, config.model.board)
        self.rows = view_rows(
            dataset, "test", options.views, config.train.num_variants, config.model.puzzle_table
        )
        batch = options.batch_size or (64 if topo.device.type == "cuda" else 8)
        k = options.cross_view_k
        plan = plan_batches(dataset, "test", self.rows, batch, topo.world_size, by_test_input=k > 0)
        self.plan = bucketed(plan, self.layout, "test", self.rows, config.train.board_buckets)
        self.signal_stop = StopSignal()
        self.earlier: list[Candidates] = []  # the finished passes' candidates (rank 0)
        self.passes = self.done = self.malformed = 0
        self.stopped: str | None = None
        self.scoring_seconds = 0.0

    def run(self, model: torch.nn.Module, label: str) -> None:
        """Predict every view with ``model`` (until a limit or signal), voting after the earlier
        passes: this pass's view rows are shifted past theirs, as ``arcpipe vote`` merges runs."""
        options, topo = self.options, self.topo
        if options.supervision_steps:
            model.config.supervision_steps = options.supervision_steps
        own = self.plan[topo.rank]
        scorer = make_scorer(
            self.dataset, "test", [chunk for chunk, _ in own], options.cross_view_k
        )
        offset = max((c.view_end() for c in self.earlier), default=0)
        mine: list[Candidates] = []
        gathered: list[Candidates] = []
        done, last_sync = 0, time.monotonic()

        def sync() -> None:
            nonlocal mine
            for parts in gather_objects(mine):
                gathered.extend(part.with_views_offset(offset) for part in parts)
            mine = []
            if topo.is_main and (self.earlier or gathered):
                _write_outputs(
                    self.earlier + gathered,
                    self.test_inputs,
                    self.expected,
                    options,
                    self.candidates_path,
                    self.programmed,
                )

        quiet = options.quiet or not topo.is_main
        with self.signal_stop, Progress(label, len(self.rows), quiet=quiet) as bar:
            for j in range(max(len(batches) for batches in self.plan)):
                sys.audit("arcpipe.predict.batch", self.done + done)  # a fault-injection point
                share, bucket = own[j] if j < len(own) else (self.rows[:0], None)
                if len(share):
                    part, _ = predict_batch(
                        model, self.dataset, "test", share, topo.device, options.halt_early,
                        self.loss_kind, scorer, self.layout, bucket,
                    )  # fmt: skip
                    mine.append(part)
                size = sum(len(batches[j][0]) for batches in self.plan if j < len(batches))
                done += size
                bar.advance(size)
                reason = self._limit_reached()
                refresh = time.monotonic() - last_sync >= options.sync_seconds
                reason, refresh = broadcast_object((reason, refresh))  # rank 0 decides for all
                if reason is not None and done < len(self.rows):
                    self.stopped = reason
                    break
                if refresh:
                    sync()
                    last_sync = time.monotonic()
            if scorer is not None:
                mine.append(scores_part(self.dataset, "test", scorer.finish()))
            sync()
        self.passes += 1
        self.done += done
        self.malformed += sum(int(c.meta.get("malformed", 0)) for c in gathered)
        self.scoring_seconds += 0.0 if scorer is None else scorer.seconds
        self.earlier += gathered

    def _limit_reached(self) -> str | None:
        options = self.options
        if self.signal_stop.received is not None:
            return "signal"
        if options.max_time is not None and time.monotonic() - self.start > options.max_time:
            return "max-time"
        cpu = time.process_time() - self.start_cpu
        if options.max_cpu_time is not None and cpu > options.max_cpu_time:
            return "max-cpu-time"
        return None

    def result(self, adaptation: Adaptation | None) -> PredictResult:
        if self.topo.is_main and not self.earlier:
            _write_outputs(
                [],
                self.test_inputs,
                self.expected,
                self.options,
                self.candidates_path,
                self.programmed,
            )
        return PredictResult(
            self.options.out,
            self.candidates_path,
            self.done,
            len(self.rows) * max(1, self.passes),
            self.malformed,
            time.monotonic() - self.start,
            self.stopped,
            self.scoring_seconds,
            adaptation,
            len(self.programmed),
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


def _check_options(options: PredictOptions) -> None:
    if options.attempts < 1:
        raise ArcpipeError("--attempts must be >= 1")
    if options.cross_view_k < 0:
        raise ArcpipeError("--cross-view-k must be >= 0")
    if options.supervision_steps < 0:
        raise ArcpipeError("--supervision-steps must be >= 0")
    for name in ("adapt_steps", "adapt_time", "adapt_cpu_time"):
        if (getattr(options, name) or 0) < 0:
            raise ArcpipeError(f"--{name.replace('_', '-')} must be >= 0")
    if not options.adapt_lr_scale > 0:
        raise ArcpipeError("--adapt-lr-scale must be > 0")
    budget = AdaptBudget(options.adapt_steps, options.adapt_time, options.adapt_cpu_time)
    for name, given in (
        ("--adapt-lr-scale", options.adapt_lr_scale != 1.0),
        ("--adapt-fresh-views", options.adapt_fresh_views),
        ("--adapt-ensemble", options.adapt_ensemble),
    ):
        if given and not budget:
            raise ArcpipeError(
                f"{name} needs test-time training: give --adapt-steps, --adapt-time or "
                "--adapt-cpu-time"
            )
    if options.vote_rule in CROSS_VIEW_RULES and options.cross_view_k == 0:
        raise ArcpipeError(f"--vote-rule {options.vote_rule} needs --cross-view-k >= 1")


def _write_outputs(
    parts, test_inputs, expected, options: PredictOptions, candidates_path, programmed
) -> None:
    """Vote over everything gathered so far; write the candidates and the submission (with the
    programmed answers first)."""
    task_ids = list(test_inputs)
    if not parts:
        parts = [
            Candidates.from_grids(
                task_ids, [len(g) for g in test_inputs.values()], [], [], [], [], [], []
            )
        ]
    candidates = Candidates.concat(parts)
    candidates.meta["cross_view_k"] = options.cross_view_k
    candidates.save(candidates_path)
    submission = submission_from_votes(
        vote(candidates, options.vote_rule), test_inputs, options.attempts, programmed
    )
    write_submission(options.out, submission, expected, options.attempts)
