"""One run's training state on one rank, and its optimizer step (reference §5.3).

:class:`Trainer` holds the model, optimizers, EMA, sampler, ACT carries and counters; one
:meth:`Trainer.train_step` is one supervision step on every slot of the global batch:
``(loss / global batch).backward()``, dense optimizer and sparse puzzle-table update, EMA update.
Its whole state goes into each checkpoint (:meth:`Trainer.save`) and comes back bit-exactly on
CPU (:meth:`Trainer.restore`). The run around it (budgets, evaluation, logging) is
:mod:`arcpipe.train.loop`; test-time training (:mod:`arcpipe.train.adapt`) steps it too.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from arcpipe import __version__
from arcpipe.config import Config
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import Layout
from arcpipe.data.sampler import BucketedSampler, draw_augmentations, encode_batch
from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import cannot_write
from arcpipe.model.puzzle_embedding import SparseSignSGD
from arcpipe.model.trm import TRM
from arcpipe.precision import autocast, compute_dtype
from arcpipe.train import distributed as dist
from arcpipe.train.act import Carry, act_step, draw_exploration, draw_reveal, initial_carry
from arcpipe.train.checkpoint import (
    Checkpoint,
    begin_checkpoint,
    check_dataset,
    checkpoint_name,
    dataset_identity,
    finish_checkpoint,
    point_link,
    save_tensors,
    write_checkpoint_files,
)
from arcpipe.train.ema import EMA
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
        self.denoise_rng = None  # denoising's draws: their own stream, so 0 changes nothing
        if cfg.denoise_prob > 0:
            self.denoise_rng = torch.Generator().manual_seed(cfg.seed + 2)
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
        reveal = None
        if self.denoise_rng is not None:
            board_len = batch.inputs.shape[1]
            reveal = draw_reveal(
                self.denoise_rng, cfg.global_batch_size, board_len, cfg.denoise_prob
            )
            reveal = self._mine(reveal).to(self.device)
        self.model.train()
        with autocast(self.device, self.model.compute_dtype):
            carry, out = act_step(self.model, carry, batch, draws, self.forward, reveal)
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
                "rng": self._rng_states(),
            }
            write_checkpoint_files(tmp, tensors, self.state_record(), self.config)
            finish_checkpoint(tmp, folder)
            point_link(run, "last", folder)
        dist.barrier()

    def _rng_states(self) -> dict[str, torch.Tensor]:
        """The training draws' generator states (denoising's only when it is on)."""
        states = {"exploration": self.exploration_rng.get_state()}
        if self.denoise_rng is not None:
            states["denoise"] = self.denoise_rng.get_state()
        return states

    def restore(self, ckpt: Checkpoint) -> None:
        """Continue from a checkpoint of this run (bit-exact on CPU)."""
        check_dataset(ckpt, self.dataset, exact=True)
        t = ckpt.tensors
        if not ckpt.holds_run:
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
        if self.denoise_rng is not None:  # a denoising run saves its stream (config is fixed)
            self.denoise_rng.set_state(t["rng"]["denoise"])
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


def average_metrics(window: list[dict[str, float]]) -> dict[str, float]:
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
