"""Run directories and checkpoints: atomic saves, everything needed to resume bit-exactly.

A run directory::

    RUN/config.toml            the resolved config of the run
    RUN/metrics.jsonl          one JSON object per log/eval record
    RUN/checkpoints/step-N/    weights.pt, ema.pt, puzzle_table.pt, optimizer.pt, rng.pt,
                               carry-R.pt (rank R's slots), state.json, config.toml; tensors are
                               loaded with weights_only=True
    RUN/last -> checkpoints/step-N     the newest checkpoint (relative symlink, swapped atomically)
    RUN/best -> checkpoints/step-M     the best by the config's metric

A checkpoint directory is written under a temporary name and renamed into place, so a crash
leaves either the old checkpoint or the new one. ``state.json`` records the sha256 of every other
file; loading checks them, so a checkpoint cut short by a full disk, a copy or a flipped bit is
refused with one line instead of training or predicting from damaged tensors.
"""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import orjson
import torch

from arcpipe.config import Config, load_config, save_config
from arcpipe.data.dataset import Dataset
from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import (
    file_digest,
    make_temporary_directory,
    remove_stale_temporaries,
    replace_directory,
    temporary_prefix,
    write_json_atomic,
)
from arcpipe.precision import compute_dtype

TENSOR_FILES = ("weights", "ema", "puzzle_table", "optimizer", "rng")


@dataclass
class Checkpoint:
    """A loaded checkpoint: its tensors, its state record and its config."""

    path: Path
    tensors: dict[str, dict]  # file stem -> loaded object (dicts of tensors)
    state: dict  # step, sampler position, dataset fingerprint, metrics ...
    config: Config

    @property
    def holds_run(self) -> bool:
        """Whether it holds a whole run to continue (optimizer and sampler states), not only
        weights (an imported checkpoint)."""
        return "optimizer" in self.tensors and "sampler" in self.state

    def model_weights(self, prefer_ema: bool = True) -> dict[str, torch.Tensor]:
        """Parameters and buffers of the network; EMA-averaged parameters when present."""
        weights = dict(self.tensors["weights"])
        if prefer_ema and self.tensors.get("ema"):
            weights.update(self.tensors["ema"])
        return weights


def begin_checkpoint(folder: Path) -> Path:
    """Create the temporary directory a checkpoint is written into."""
    tmp = make_temporary_directory(folder)
    tmp.chmod(0o755)
    return tmp


def write_checkpoint_files(
    tmp: Path, tensors: dict[str, object], state: dict, config: Config
) -> None:
    """Write the tensor files (skipping None), config.toml, then state.json with every file's
    sha256 (the carry files the ranks wrote into ``tmp`` included)."""
    for name, obj in tensors.items():
        if obj is not None:
            save_tensors(obj, tmp / f"{name}.pt")
    save_config(config, tmp / "config.toml")
    files = {f.name: file_digest(f) for f in sorted(tmp.iterdir()) if f.name != "state.json"}
    write_json_atomic(tmp / "state.json", {**state, "files": files})


def save_tensors(obj: object, path: Path) -> None:
    """``torch.save`` through a Python file object (so its write is an audited event)."""
    with open(path, "wb") as f:
        torch.save(obj, f)


def finish_checkpoint(tmp: Path, folder: Path) -> Path:
    """Move the completed ``tmp`` into place as ``folder`` (atomically, even over an old one)."""
    replace_directory(tmp, folder)
    return folder


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint directory or the ``last`` link of a run directory.

    (Exports are read by :func:`arcpipe.export.load_init_source`, for ``--init-from``.)

    Raises:
        ArcpipeError: the path is not a complete, undamaged checkpoint, or a file holds objects
            other than tensors (refused without running any of it).
    """
    path = Path(path)
    if (path / "last").exists() and not (path / "state.json").exists():
        path = path / "last"
    if not (path / "state.json").is_file() or not (path / "weights.pt").is_file():
        hint = (
            "; an export has no puzzle table: post-train from it with train --init-from"
            if (path / "export.json").is_file()
            else ""
        )
        raise ArcpipeError(
            f"not a checkpoint directory (no state.json/weights.pt){hint}", file=path
        )
    try:
        state = orjson.loads((path / "state.json").read_bytes())
    except orjson.JSONDecodeError as err:
        raise ArcpipeError(f"damaged checkpoint: {err}", file=path / "state.json") from None
    _verify_files(path, state.get("files", {}))
    tensors = {}
    for name in TENSOR_FILES:
        file = path / f"{name}.pt"
        if file.exists():
            tensors[name] = _load_tensors(file, map_location)
    carry_files = sorted(path.glob("carry-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    if carry_files:  # one slice per rank, joined in rank order
        slices = [_load_tensors(f, map_location) for f in carry_files]
        tensors["carry"] = {k: torch.cat([s[k] for s in slices]) for k in slices[0]}
    return Checkpoint(path.resolve(), tensors, state, load_config(path / "config.toml"))


def _verify_files(path: Path, files: dict[str, str]) -> None:
    for name, digest in files.items():
        file = path / name
        if not file.is_file():
            raise ArcpipeError("incomplete checkpoint: file missing", file=file)
        if file_digest(file) != digest:
            raise ArcpipeError(
                "damaged checkpoint: contents differ from the sha256 in state.json (truncated "
                "or corrupted; use another checkpoint of the run)",
                file=file,
            )


def _load_tensors(file: Path, map_location: str | torch.device) -> dict:
    """``torch.load`` with ``weights_only=True``: plain containers of tensors and numbers only."""
    try:
        return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[-1][:200]
        raise ArcpipeError(
            "refused: holds objects other than tensors, which loading would run as code "
            f"(nothing was run; weights_only: {reason})",
            file=file,
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ArcpipeError(f"damaged checkpoint file: {reason}", file=file) from None


def point_link(run: Path, name: str, target: Path) -> None:
    """Make ``run/name`` a relative symlink to ``target``, replacing any old one atomically."""
    link = run / name
    remove_stale_temporaries(link)
    tmp = run / f"{temporary_prefix(link)}link"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(target, run))
    os.replace(tmp, link)


def prune_checkpoints(run: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step-N checkpoints, never the targets of last/best,
    and the temporaries of checkpoints whose writer was killed."""
    folder = run / "checkpoints"
    remove_stale_temporaries(folder / "step-*")
    steps = sorted(folder.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    protected = {(run / n).resolve() for n in ("last", "best") if (run / n).exists()}
    for old in steps[: max(0, len(steps) - keep)]:
        if old.resolve() not in protected:
            shutil.rmtree(old, ignore_errors=True)


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def dataset_identity(dataset: Dataset) -> dict:
    """What a checkpoint records of its dataset, to refuse a mismatched one later."""
    return {
        "fingerprint": dataset.fingerprint,
        "path": str(dataset.path),
        "vocab_size": dataset.vocab_size,
        "seq_len": dataset.seq_len,
        "canvas": dataset.canvas,
        "num_puzzle_identifiers": dataset.num_puzzle_identifiers,
    }


def check_dataset(ckpt: Checkpoint, dataset: Dataset, exact: bool) -> None:
    """Refuse a checkpoint that does not belong to ``dataset`` (never a silent 0% score).

    ``exact``: the puzzle table must be this dataset's (resume, predict); otherwise only the
    vocabulary and canvas must agree (post-training on new tasks with a fresh table).
    """
    theirs = ckpt.state.get("dataset", {})
    for key in ("vocab_size", "seq_len", "canvas"):
        if theirs.get(key) != getattr(dataset, key):
            raise ArcpipeError(
                f"checkpoint was trained with {key} {theirs.get(key)}, the dataset has "
                f"{getattr(dataset, key)}",
                file=ckpt.path,
            )
    if exact and theirs.get("fingerprint") != dataset.fingerprint:
        raise ArcpipeError(
            f"checkpoint belongs to another dataset ({theirs.get('path')}, "
            f"{theirs.get('num_puzzle_identifiers')} puzzle ids); its puzzle embeddings do not "
            f"match {dataset.path} ({dataset.num_puzzle_identifiers} puzzle ids). Use --init-from "
            "to post-train on new tasks",
            file=ckpt.path,
        )


def model_from_checkpoint(ckpt: Checkpoint, dataset_dims: dict, device: torch.device):
    """Rebuild the network from the checkpoint's resolved config alone, with its EMA weights.

    ``dataset_dims`` gives vocab_size and seq_len; the puzzle table has the checkpoint's rows (a
    row per puzzle id of ``dataset_dims``, or per task with a task table).
    """
    from arcpipe.model.trm import TRM

    weights = ckpt.model_weights(prefer_ema=True)
    table = ckpt.tensors.get("puzzle_table")
    rows = dataset_dims["num_puzzle_identifiers"]
    if table is not None:
        weights["puzzle_table.weights"] = table["weights"]
        rows = table["weights"].shape[0]
    model = TRM(ckpt.config.model, dataset_dims["vocab_size"], dataset_dims["seq_len"], rows)
    model.load_state_dict(weights, strict=True)
    return model.to(device).eval()


def inference_model(ckpt: Checkpoint, dataset: Dataset, device: torch.device):
    """The checkpoint's network, ready to predict on ``dataset`` (``predict``, ``evaluate``).

    Refuses a checkpoint of another dataset; EMA weights, eval mode, on ``device`` in the run's
    compute dtype there.
    """
    check_dataset(ckpt, dataset, exact=True)
    model = model_from_checkpoint(ckpt, dataset_identity(dataset), device)
    model.compute_dtype = compute_dtype(device, ckpt.config.train.dtype)
    return model
