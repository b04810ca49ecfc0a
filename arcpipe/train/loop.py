"""``arcpipe train``: deep supervision with ACT, EMA, periodic evaluation, resumable checkpoints.

The run steps a :class:`~arcpipe.train.trainer.Trainer` (one optimizer step = one supervision
step on every slot of the global batch, reference §5.3), evaluates and checkpoints it on schedule.
All loop state lives in the trainer and goes into each checkpoint, so ``--resume auto``
continues bit-exactly on CPU. ``--max-time`` (wall), ``--max-cpu-time`` (this process's CPU time,
for budgets on a shared machine), ``--max-steps`` and SIGTERM stop cleanly with a checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from arcpipe.config import resumed_config, save_config
from arcpipe.data.dataset import Dataset
from arcpipe.data.leakage import training_note
from arcpipe.errors import ArcpipeError
from arcpipe.export import load_init_source
from arcpipe.fsutil import write_bytes_atomic
from arcpipe.progress import Progress
from arcpipe.runtime import StopSignal
from arcpipe.train import distributed as dist
from arcpipe.train.checkpoint import (
    checkpoint_name,
    load_checkpoint,
    point_link,
    prune_checkpoints,
)
from arcpipe.train.evaluate import eval_split, evaluate
from arcpipe.train.trainer import RunOptions, Trainer, average_metrics


@dataclass
class RunResult:
    """How a run ended."""

    step: int
    reason: str  # "finished", "max-steps", "max-time", "max-cpu-time" or "signal"
    checkpoint: Path | None
    start_step: int = 0  # the step this sitting started from (a resumed run's checkpoint step)
    last_eval: dict = field(default_factory=dict)


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
                record = average_metrics(window)
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
