"""``arcpipe export``: a slim model for Kaggle (or any post-training elsewhere).

The export holds the EMA weights of the network, its resolved config, and the mean row of the
puzzle table, which is all that post-training on new tasks needs (their fresh table starts at
that mean, the reference's rule). The per-puzzle table itself (1.7 GB for ARC-AGI-1) is left out.
A task-shared table (``model.puzzle_table = "task"``) is left out too; its augmentation code is
part of the network's weights, so the new tasks' variants are coded as the old ones were.

    OUT/model.safetensors   network weights and buffers, plus "puzzle_table.mean" (D,)
    OUT/config.toml         the resolved config
    OUT/export.json         format, arcpipe version, step, the model it holds (family "trm" or
                            "urm", state, mlp, puzzle table, parameters), and the source dataset's
                            vocabulary, canvas and fingerprint

Imports run one way: this module reads checkpoints through :mod:`arcpipe.train.checkpoint`, which
knows nothing of exports; :func:`load_init_source` is what ``--init-from`` reads.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import safetensors.torch
import torch
from safetensors import SafetensorError, safe_open

from arcpipe import __version__
from arcpipe.config import ModelConfig, load_config, save_config
from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import atomic_directory, write_bytes_atomic, write_json_atomic
from arcpipe.train.checkpoint import Checkpoint, load_checkpoint

EXPORT_FORMAT = "arcpipe-export"
EXPORT_VERSION = 1
MEAN_KEY = "puzzle_table.mean"


def export_checkpoint(checkpoint: Path, out: Path, overwrite: bool = False) -> Path:
    """Write the export of a checkpoint directory (or a run's best/last) to ``out``."""
    ckpt = load_checkpoint(checkpoint)
    tensors = dict(ckpt.model_weights(prefer_ema=True))
    table = (ckpt.tensors.get("puzzle_table") or {}).get("weights")
    if table is not None:
        tensors[MEAN_KEY] = table.float().mean(0)
    record = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "arcpipe_version": __version__,
        "step": ckpt.state.get("step"),
        "model": model_record(ckpt.config.model, ckpt.tensors["weights"]),
        "dataset": ckpt.state.get("dataset", {}),
        "best": ckpt.state.get("best", {}),
    }
    with atomic_directory(out, overwrite=overwrite) as tmp:
        save_tensors(tensors, tmp / "model.safetensors", metadata={"format": EXPORT_FORMAT})
        save_config(ckpt.config, tmp / "config.toml")
        write_json_atomic(tmp / "export.json", record)
    return out


def model_record(config: ModelConfig, weights: dict[str, torch.Tensor]) -> dict:
    """Which network an export holds: family, recursion state, MLP, puzzle table (one row per
    variant or per task) and trainable parameters."""
    parameters = sum(
        t.numel() for k, t in weights.items() if not k.endswith(("_init", "puzzle_table.weights"))
    )
    return {
        "family": config.family,
        "state": config.state,
        "mlp": config.mlp,
        "puzzle_table": config.puzzle_table,
        "num_layers": config.num_layers,
        "hidden_size": config.hidden_size,
        "parameters": parameters,
    }


def is_export(path: Path) -> bool:
    return (path / "export.json").is_file()


def export_record(path: Path) -> dict:
    """The ``export.json`` of the export at ``path``.

    Raises:
        ArcpipeError: it is not an arcpipe export of this format version.
    """
    record = orjson.loads((path / "export.json").read_bytes())
    if record.get("format") != EXPORT_FORMAT or record.get("format_version") != EXPORT_VERSION:
        raise ArcpipeError("not an arcpipe export of this version", file=path)
    return record


def load_export(path: Path) -> Checkpoint:
    """An export as a :class:`~arcpipe.train.checkpoint.Checkpoint` for ``--init-from``.

    The table is the single mean row, so "start the new table at the old table's mean" holds.
    """
    record = export_record(path)
    tensors, _ = load_tensors(path / "model.safetensors")
    mean = tensors.pop(MEAN_KEY, None)
    loaded = {"weights": tensors}
    if mean is not None:
        loaded["puzzle_table"] = {"weights": mean[None]}
    state = {"step": record.get("step"), "dataset": record.get("dataset", {})}
    return Checkpoint(path.resolve(), loaded, state, load_config(path / "config.toml"))


def load_init_source(path: str | Path) -> Checkpoint:
    """What ``--init-from`` names: an export, a checkpoint directory, or a run (its ``last``)."""
    path = Path(path)
    return load_export(path) if is_export(path) else load_checkpoint(path)


def export_size(path: Path) -> int:
    """Bytes of an export on disk."""
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def save_tensors(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None
) -> None:
    """Write ``tensors`` (any device, contiguous or not) as a safetensors file, atomically."""
    cpu = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    write_bytes_atomic(path, safetensors.torch.save(cpu, metadata=metadata))


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file into CPU tensors; returns (tensors, metadata).

    Raises:
        ArcpipeError: the file is missing or not a valid safetensors file.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            names = list(f.keys())  # a safe_open handle, not a dict
            return {name: f.get_tensor(name) for name in names}, dict(f.metadata() or {})
    except (OSError, SafetensorError) as err:
        raise ArcpipeError(f"not a readable safetensors file: {err}", file=path) from None
