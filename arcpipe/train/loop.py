"""``arcpipe train``: deep supervision with ACT, EMA, periodic evaluation, resumable checkpoints.

One optimizer step = one supervision step on every slot of the global batch (reference §5.3):
``(loss / global batch).backward()``, dense optimizer and sparse puzzle-table update, EMA update.
All loop state lives in :class:`Trainer` and goes into each checkpoint, so ``--resume auto``
continues bit-exactly on CPU. ``--max-time`` (wall), ``--max-cpu-time`` (this process's CPU time,
for budgets on a shared machine), ``--max-steps`` and SIGTERM stop cleanly with a checkpoint.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import orjson
import torch
from torch.nn.parallel import DistributedDataParallel

from arcpipe import __version__
from arcpipe.config import Config, resumed_config, save_config
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import Layout
from arcpipe.data.leakage import training_note
from arcpipe.data.sampler import BucketedSampler, draw_augmentations, encode_batch
from arcpipe.errors import ArcpipeError
from arcpipe.export import load_init_source
from arcpipe.fsutil import cannot_write, write_bytes_atomic
from arcpipe.model.puzzle_embedding import SparseSignSGD
from arcpipe.model.trm import TRM
from arcpipe.precision import autocast, compute_dtype
from arcpipe.progress import Progress
from arcpipe.runtime import StopSignal
from arcpipe.train import distributed as dist
from arcpipe.train.act import Carry, act_step, draw_exploration, initial_carry
from arcpipe.train.checkpoint import (
    Checkpoint,
    begin_checkpoint,
    check_dataset,
    checkpoint_name,
    dataset_identity,
    finish_checkpoint,
    load_checkpoint,
    point_link,
    prune_checkpoints,
    save_tensors,
    write_checkpoint_files,
)
from arcpipe.train.ema import EMA
from arcpipe.train.evaluate import eval_split, evaluate
from arcpipe.train.losses import step_loss
from arcpipe.train.optim import lr_factor, make_optimizer

_FRESH_STREAM = 0xF2E5  # seeds each step's fresh augmentations (train.fresh_augmentations)


class TrainingDiverged(ArcpipeError):
    """The loss became NaN or infinite; the run stopped without saving the bad weights."""


@dataclass
class RunOptions:
    """What the CLI passes to :func:`train`."""

    data: Path
    config: Config
    out: Path
    resume: bool = False
    overrides: tuple[str, ...] = ()  # the --set items, re-applied to a resumed run's own config
    init_from: Path | None = None
    max_time: float | None = None  # seconds
    max_cpu_time: float | None = None  # seconds of this process's CPU time (all threads)
    max_steps: int | None = None  # absolute step at which to stop
    device: str = "auto"
    quiet: bool = False


@dataclass
class RunResult:
    """How a run ended."""

    step: int
    reason: str  # "finished", "max-steps", "max-time", "max-cpu-time" or "signal"
    checkpoint: Path | None
    start_step: int = 0  # the step this sitting started from (a resumed run's checkpoint step)
    last_eval: dict = field(default_factory=dict)


class Trainer:
    """Model, optimizers, EMA, sampler, ACT carry and counters of one run on one rank."""

    def __init__(self, options: RunOptions, topology: dist.Topology, dataset: Dataset) -> None:
        self.options = options
        self.topo = topology
        self.dataset = dataset
        self.config = options.config
        cfg = self.config.train
        if cfg.global_batch_size % topology.world_size:
            raise ArcpipeError(
                f"train.global_batch_size {cfg.global_batch_size} is not divisible by the "
                f"{topology.world_size} ranks"
            )
        self.local_batch = cfg.global_batch_size // topology.world_size
        if cfg.fresh_augmentations and self.config.model.puzzle_table != "task":
            raise ArcpipeError(
                "train.fresh_augmentations needs model.puzzle_table = task (a per-variant table "
                "has no row for a view the build did not make)"
            )
        self.device = topology.device
        self.model = TRM(
            self.config.model,
            dataset.vocab_size,
            dataset.seq_len,
            dataset.puzzle_table_rows(self.config.model.puzzle_table),
            seed=cfg.seed,
        ).to(self.device)
        self.model.compute_dtype = compute_dtype(self.device, cfg.dtype)
        if cfg.compile:
            self.model.compile_network()
        self.forward = self.model
        if topology.distributed:
            ids = [topology.local_rank] if self.device.type == "cuda" else None
            self.forward = DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = make_optimizer(self.model.parameters(), cfg, self.model.hidden_matrices())
        self.sparse = None
        if self.model.puzzle_table is not None:
            self.sparse = SparseSignSGD(
                self.model.puzzle_table, cfg.puzzle_emb_lr, cfg.puzzle_emb_weight_decay
            )
        self.ema = EMA(self.model, cfg.ema_rate) if cfg.ema else None
        self.layout = Layout(dataset, self.config.model.board)
        self.sampler = BucketedSampler(
            self.layout,
            "train",
            cfg.global_batch_size,
            cfg.seed,
            cfg.board_buckets,
            cfg.num_variants,
        )
        self.exploration_rng = torch.Generator().manual_seed(cfg.seed + 1)
        self.carries: dict[int, Carry] = {}  # one ACT carry per bucket of boards
        self.step = 0
        self.elapsed = 0.0  # training seconds over all sittings
        self.best: dict = {}
        # The last evaluation: {"step": s, "metrics": {...}}. A run resumed from the checkpoint
        # its final evaluation was saved in does not evaluate (and record) that step again.
        self.evaluation: dict = {}
        # Per-step metrics since the last metrics.jsonl record; saved with each checkpoint so a
        # resumed run logs the same window averages as an uninterrupted one.
        self.log_window: list[dict[str, float]] = []
        # metrics.jsonl records written up to this state: a resumed run drops the later ones
        # (an evaluation recorded after the checkpoint of its step, say).
        self.records: int | None = 0
        self.total_steps = max(
            1, int(cfg.epochs * self.sampler.examples_per_epoch() / cfg.global_batch_size)
        )

    def _mine(self, rows):
        """This rank's slice of something laid out over the global batch."""
        return rows[self.topo.rank * self.local_batch : (self.topo.rank + 1) * self.local_batch]

    # ------------------------------------------------------------------------- one step

    def train_step(self) -> dict[str, float]:
        """One optimizer step; returns this rank's summed metrics of the step."""
        cfg = self.config.train
        sys.audit("arcpipe.train.step", self.step + 1)  # a fault-injection point (arcpipe.faults)
        bucket, rows = self.sampler.next_rows()
        boards = self.sampler.buckets[bucket]
        table = self.config.model.puzzle_table
        fresh = None
        if cfg.fresh_augmentations:
            rng = np.random.default_rng([cfg.seed, _FRESH_STREAM, self.step])
            fresh = self._mine(draw_augmentations(self.dataset, "train", rows, rng))
        batch = encode_batch(
            self.dataset, "train", self._mine(rows), self.layout, boards, table, fresh
        )
        batch = batch.to(self.device)
        carry = self.carries.get(bucket) or initial_carry(self.model, batch)
        draws = draw_exploration(
            self.exploration_rng,
            cfg.global_batch_size,
            self.config.model.supervision_steps,
            self.config.model.halt_exploration_prob,
        )
        draws.explore, draws.min_steps = self._mine(draws.explore), self._mine(draws.min_steps)
        self.model.train()
        with autocast(self.device, self.model.compute_dtype):
            carry, out = act_step(self.model, carry, batch, draws, self.forward)
            loss = step_loss(
                out.logits, out.q_halt, carry.batch.labels, cfg.loss, cfg.q_loss_weight
            )
        self.carries[bucket] = carry
        # Each rank divides by its own slots; DDP averages over ranks: the global-batch mean.
        (loss.total / self.local_batch).backward()
        self._check_finite(loss.total.detach())
        self.step += 1
        factor = lr_factor(self.step, self.total_steps, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * factor
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.sparse is not None:
            self.sparse.lr = cfg.puzzle_emb_lr * factor
            self.sparse.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return self._step_metrics(carry, loss, out.q_halt.detach(), factor)

    def _check_finite(self, total: torch.Tensor) -> None:
        bad = torch.tensor([0.0 if torch.isfinite(total) else 1.0], device=self.device)
        if dist.all_reduce_sum(bad).item() > 0:
            raise TrainingDiverged(
                f"non-finite loss at step {self.step + 1}; the weights of that step were not "
                "applied and the last good checkpoint is kept",
                file=self.options.out,
            )

    def _step_metrics(
        self, carry: Carry, loss, q_halt: torch.Tensor, factor: float
    ) -> dict[str, float]:
        """Metrics over the slots that halted this step (reference §4.6), summed over ranks."""
        valid = carry.halted & loss.supervised
        q_right = ((q_halt >= 0) == loss.exact) & valid
        sums = torch.stack(
            [
                valid.sum(),
                (loss.token_accuracy * valid).sum(),
                (loss.exact & valid).sum(),
                q_right.sum(),
                (carry.steps * valid).sum(),
                loss.lm_loss,
                loss.q_halt_loss,
            ]
        ).double()
        dist.all_reduce_sum(sums)
        count = max(1.0, sums[0].item())
        batch = self.config.train.global_batch_size
        return {
            "count": sums[0].item(),
            "accuracy": sums[1].item() / count,
            "exact_accuracy": sums[2].item() / count,
            "q_halt_accuracy": sums[3].item() / count,
            "steps": sums[4].item() / count,
            "lm_loss": sums[5].item() / batch,
            "q_halt_loss": sums[6].item() / batch,
            "lr": self.config.train.lr * factor,
        }

    # ------------------------------------------------------------------------- state

    def state_record(self) -> dict:
        return {
            "step": self.step,
            "total_steps": self.total_steps,
            "elapsed_seconds": self.elapsed,
            "sampler": self.sampler.state_dict(),
            "dataset": dataset_identity(self.dataset),
            "best": self.best,
            "evaluation": self.evaluation,
            "log_window": self.log_window,
            "metrics_records": self.records,
            "world_size": self.topo.world_size,
            "arcpipe_version": __version__,
        }

    def save(self, run: Path) -> Path:
        """Write a checkpoint of the current step (all ranks call this).

        Raises:
            ArcpipeError: the checkpoint could not be written (a full disk, say); the temporary
                directory is removed and the previous checkpoints are untouched.
        """
        folder = run / "checkpoints" / checkpoint_name(self.step)
        tmp = dist.broadcast_object(begin_checkpoint(folder) if self.topo.is_main else None)
        try:
            self._write(Path(tmp), folder, run)
        except (OSError, ArcpipeError) as err:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(err, ArcpipeError):
                raise
            raise cannot_write(folder, err) from None
        return folder

    def _write(self, tmp: Path, folder: Path, run: Path) -> None:
        if self.carries:
            carries = {
                k: v.cpu()
                for bucket, carry in self.carries.items()
                for k, v in carry.state_dict(self._carry_prefix(bucket)).items()
            }
            save_tensors(carries, tmp / f"carry-{self.topo.rank}.pt")
        dist.barrier()
        if self.topo.is_main:
            table = self.model.puzzle_table
            weights = {
                k: v
                for k, v in self.model.state_dict().items()
                if not k.startswith("puzzle_table.")
            }
            tensors = {
                "weights": weights,
                "ema": None if self.ema is None else self.ema.state_dict(),
                "puzzle_table": None if table is None else {"weights": table.weights},
                "optimizer": {
                    "dense": self.optimizer.state_dict(),
                    "sparse": {} if self.sparse is None else self.sparse.state_dict(),
                },
                "rng": {"exploration": self.exploration_rng.get_state()},
            }
            write_checkpoint_files(tmp, tensors, self.state_record(), self.config)
            finish_checkpoint(tmp, folder)
            point_link(run, "last", folder)
        dist.barrier()

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue from a checkpoint of this run (bit-exact on CPU)."""
        check_dataset(ckpt, self.dataset, exact=True)
        t = ckpt.tensors
        if "optimizer" not in t or "sampler" not in ckpt.state:
            raise ArcpipeError(
                "holds weights only (an imported checkpoint), not a run to resume: post-train "
                "from it with --init-from into a new --out",
                file=ckpt.path,
            )
        self.model.load_state_dict(_with_table(t["weights"], t.get("puzzle_table")), strict=True)
        if self.ema is not None and t.get("ema"):
            self.ema.load_state_dict(t["ema"])
        self.optimizer.load_state_dict(t["optimizer"]["dense"])
        if self.sparse is not None:
            self.sparse.load_state_dict(t["optimizer"]["sparse"])
        self.exploration_rng.set_state(t["rng"]["exploration"])
        self.sampler.load_state_dict(ckpt.state["sampler"])
        self.step = int(ckpt.state["step"])
        self.elapsed = float(ckpt.state.get("elapsed_seconds", 0.0))
        self.best = dict(ckpt.state.get("best", {}))
        self.evaluation = dict(ckpt.state.get("evaluation", {}))
        self.log_window = list(ckpt.state.get("log_window", []))
        self.records = ckpt.state.get("metrics_records")
        if "carry" in t:
            local = {k: self._mine(v) for k, v in t["carry"].items()}
            for bucket in range(len(self.sampler.buckets)):
                prefix = self._carry_prefix(bucket)
                if f"{prefix}answer" in local:
                    self.carries[bucket] = Carry.from_state_dict(local, self.device, prefix)

    def _carry_prefix(self, bucket: int) -> str:
        """Names of a bucket's carry tensors in a checkpoint (full boards: one, unprefixed)."""
        return f"{bucket}." if self.layout.boxed else ""

    def init_from(self, ckpt: Checkpoint) -> None:
        """Post-training: all network weights from ``ckpt`` (a task table's augmentation code
        included), a fresh table at its mean row."""
        check_dataset(ckpt, self.dataset, exact=False)
        weights = ckpt.model_weights(prefer_ema=True)
        table = self.model.puzzle_table
        missing = self.model.load_state_dict(weights, strict=False).missing_keys
        if [k for k in missing if not k.startswith("puzzle_table.")]:
            raise ArcpipeError(f"checkpoint lacks weights {missing[:3]}", file=ckpt.path)
        old = (ckpt.tensors.get("puzzle_table") or {}).get("weights")
        if table is not None and old is not None:
            with torch.no_grad():
                table.weights.copy_(old.mean(0).to(table.weights).expand_as(table.weights))
        if self.ema is not None:
            self.ema = EMA(self.model, self.config.train.ema_rate)


def _with_table(weights: dict, table: dict | None) -> dict:
    merged = dict(weights)
    if table is not None:
        merged["puzzle_table.weights"] = table["weights"]
    return merged


# ----------------------------------------------------------------------------- the run


def train(options: RunOptions) -> RunResult:
    """Train (or continue training) a run; see the module docstring.

    Raises:
        ArcpipeError: bad data, config or checkpoint; TrainingDiverged on a non-finite loss.
    """
    topo = dist.setup(options.device)
    try:
        return _train(options, topo)
    finally:
        dist.teardown()


def _train(options: RunOptions, topo: dist.Topology) -> RunResult:
    dataset = Dataset.open(options.data)
    run = options.out
    resume_from = None
    if options.resume and (run / "last").exists():
        resume_from = load_checkpoint(run / "last")
        # The run's own resolved config wins; --set may only change what RESUMABLE_KEYS allow.
        options.config = resumed_config(resume_from.config, options.overrides)
    elif (run / "last").exists() and not options.resume:
        raise ArcpipeError("already holds a run (use --resume auto to continue it)", file=run)
    source = None
    if resume_from is None and options.init_from is not None:
        source = load_init_source(options.init_from)
        # The architecture is the source's; the recipe contributes only its [train] settings.
        options.config = replace(options.config, model=source.config.model)
    trainer = Trainer(options, topo, dataset)
    if resume_from is not None:
        trainer.restore(resume_from)
    elif source is not None:
        trainer.init_from(source)
    start_step = trainer.step
    if topo.is_main:
        run.mkdir(parents=True, exist_ok=True)
        save_config(trainer.config, run / "config.toml")
        trainer.records = _truncate_metrics(run / "metrics.jsonl", trainer.step, trainer.records)
        _repair_best_link(run, trainer.best)
    log = _MetricsLog(run / "metrics.jsonl", trainer)
    if topo.is_main and not options.quiet:
        _announce(trainer, resume_from is not None)
    with StopSignal() as stop:  # also shields the final evaluation and save
        reason = _loop(trainer, options, log, stop)
        last_eval = {}
        interval = trainer.config.train.eval_interval
        # The loop leaves the last step's evaluation to here: at the end of the run, and at a
        # --max-steps stop that falls on the evaluation schedule.
        on_schedule = reason == "max-steps" and interval and trainer.step % interval == 0
        if reason == "finished" or interval == 0 or on_schedule:
            last_eval = _final_evaluation(trainer, log)
        checkpoint = _checkpoint(trainer, run, last_eval)
        if topo.is_main:
            prune_checkpoints(run, trainer.config.train.keep_checkpoints)
    return RunResult(trainer.step, reason, checkpoint, start_step, last_eval)


def _loop(trainer: Trainer, options: RunOptions, log: _MetricsLog, stop: StopSignal) -> str:
    cfg = trainer.config.train
    end = (
        trainer.total_steps
        if options.max_steps is None
        else min(trainer.total_steps, options.max_steps)
    )
    start_time = time.monotonic()
    start_cpu = time.process_time()
    start_elapsed = trainer.elapsed
    window = trainer.log_window
    step_seconds = step_cpu = 0.0
    quiet = options.quiet or not trainer.topo.is_main
    with Progress("train", end, quiet=quiet, completed=trainer.step) as bar:
        while trainer.step < end:
            spent = (
                time.monotonic() - start_time + step_seconds,
                time.process_time() - start_cpu + step_cpu,  # every thread of this process
            )
            reason = _stop_reason(trainer, options, stop, spent)
            if reason:
                return reason
            t0, c0 = time.monotonic(), time.process_time()
            window.append(trainer.train_step())
            step_seconds, step_cpu = time.monotonic() - t0, time.process_time() - c0
            trainer.elapsed = start_elapsed + time.monotonic() - start_time
            if trainer.step % cfg.log_interval == 0 or trainer.step == end:
                record = _average(window)
                record["examples_per_s"] = cfg.global_batch_size / max(step_seconds, 1e-9)
                log.write({"step": trainer.step, "elapsed": trainer.elapsed, **record})
                window.clear()
                bar.advance(
                    0,
                    f"loss {record['lm_loss']:.3f} exact {record['exact_accuracy']:.2f} "
                    f"{record['examples_per_s']:.1f} ex/s",
                )
            bar.advance(1)
            if cfg.eval_interval and trainer.step % cfg.eval_interval == 0 and trainer.step < end:
                _checkpoint(trainer, options.out, _evaluate_and_record(trainer, log))
            elif cfg.checkpoint_interval and trainer.step % cfg.checkpoint_interval == 0:
                _checkpoint(trainer, options.out)
                if trainer.topo.is_main:
                    prune_checkpoints(options.out, cfg.keep_checkpoints)
    return "finished" if end == trainer.total_steps else "max-steps"


def _stop_reason(
    trainer: Trainer, options: RunOptions, stop: StopSignal, spent: tuple[float, float]
) -> str | None:
    """Why to stop before the next step, agreed by all ranks (rank 0 decides).

    ``spent``: the wall and CPU seconds this sitting will have used after one more step like the
    last; a budget it would overrun stops the run now.
    """
    reason = None
    if stop.received is not None:
        reason = "signal"
    elif options.max_time is not None and spent[0] > options.max_time:
        reason = "max-time"
    elif options.max_cpu_time is not None and spent[1] > options.max_cpu_time:
        reason = "max-cpu-time"
    codes = (None, "signal", "max-time", "max-cpu-time")
    code = codes.index(reason)
    agreed = dist.broadcast_object(code) if trainer.topo.distributed else code
    return codes[agreed]


def _final_evaluation(trainer: Trainer, log: _MetricsLog) -> dict:
    """The last step's evaluation: the one already recorded when the run resumed from the
    checkpoint saved after it (killed before it finished, say), else a new one."""
    if trainer.evaluation.get("step") == trainer.step:
        return trainer.evaluation["metrics"]
    return _evaluate_and_record(trainer, log)


def _evaluate_and_record(trainer: Trainer, log: _MetricsLog) -> dict:
    metrics = evaluate(
        trainer.model,
        trainer.dataset,
        trainer.config.train,
        trainer.topo,
        trainer.local_batch,
        trainer.ema,
        trainer.layout,
    )
    if metrics:
        log.write({"step": trainer.step, "eval": metrics})
    trainer.evaluation = {"step": trainer.step, "metrics": metrics}
    return metrics


def _checkpoint(trainer: Trainer, run: Path, metrics: dict | None = None) -> Path:
    """Save a checkpoint; point best/ at it when ``metrics`` improve the config's metric.

    The best record goes into the checkpoint's own state.json, which is never rewritten later.
    """
    name = trainer.config.train.best_metric
    improved = False
    if metrics and name in metrics and trainer.topo.is_main:
        value = metrics[name]
        improved = not trainer.best or value > trainer.best["value"]
        if improved:
            trainer.best = {"metric": name, "value": value, "step": trainer.step}
    folder = trainer.save(run)
    if improved:
        point_link(run, "best", folder)
    return folder


def _repair_best_link(run: Path, best: dict) -> None:
    """Point best/ at the checkpoint the run's state names (a kill can fall between the two)."""
    if not best:
        return
    folder = run / "checkpoints" / checkpoint_name(int(best["step"]))
    link = run / "best"
    if folder.is_dir() and (not link.exists() or link.resolve() != folder.resolve()):
        point_link(run, "best", folder)


def _average(window: list[dict[str, float]]) -> dict[str, float]:
    """Means over the logged steps; accuracies weighted by the number of halted samples."""
    counts = np.array([w["count"] for w in window])
    out = {}
    for key in window[0]:
        values = np.array([w[key] for w in window])
        if key in ("accuracy", "exact_accuracy", "q_halt_accuracy", "steps"):
            out[key] = float((values * counts).sum() / max(counts.sum(), 1))
        elif key == "count":
            out[key] = float(values.sum())
        else:
            out[key] = float(values.mean())
    return out


class _MetricsLog:
    """Append-only metrics.jsonl (rank 0 only), counted in the trainer's state."""

    def __init__(self, path: Path, trainer: Trainer) -> None:
        self.path = path
        self.trainer = trainer

    def write(self, record: dict) -> None:
        if self.trainer.topo.is_main:
            with open(self.path, "ab") as f:
                f.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
            self.trainer.records += 1


def _truncate_metrics(path: Path, step: int, records: int | None) -> int:
    """Keep the first ``records`` records (those written before the checkpoint a resumed run
    restarts from; ``None``, from a checkpoint that does not count them: those up to ``step``)
    and drop a last line cut short by a kill. Returns the number kept."""
    if not path.exists():
        return 0
    kept = []
    for line in path.read_bytes().splitlines(keepends=True):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            break  # only the last line can be torn: every earlier one ended with its newline
        if len(kept) == records or (records is None and record["step"] > step):
            break
        kept.append(line if line.endswith(b"\n") else line + b"\n")
    write_bytes_atomic(path, b"".join(kept))
    return len(kept)


def _announce(trainer: Trainer, resumed: bool) -> None:
    from arcpipe.progress import console

    m = trainer.model
    rows = 0 if m.puzzle_table is None else m.puzzle_table.weights.shape[0]
    console.print(
        f"{'resuming' if resumed else 'training'} {m.config.family.upper()}, "
        f"{m.num_parameters():,} parameters "
        f"(+ {rows:,} {m.config.puzzle_table} puzzle embeddings) on "
        f"{trainer.topo.world_size} x {trainer.device} in {str(m.compute_dtype).split('.')[-1]}; "
        f"step {trainer.step} of {trainer.total_steps:,}, global batch "
        f"{trainer.config.train.global_batch_size}"
    )
    note = training_note(trainer.dataset.manifest)
    if note and eval_split(trainer.dataset, trainer.config.train.eval_split) == "test":
        console.print(f"warning: {note}")
    if trainer.layout.boxed:
        lengths = [b.length for b in trainer.sampler.buckets]
        console.print(
            f"boxed boards: {len(lengths)} buckets of {lengths} cells, "
            f"{trainer.sampler.overhead:.1%} of them fillers"
        )
