"""``arcpipe export``: a slim model for Kaggle (or any post-training elsewhere).

The export holds the EMA weights of the network, its resolved config, and the mean row of the
puzzle table, which is all that post-training on new tasks needs (their fresh table starts at
that mean, the reference's rule). The per-puzzle table itself (1.7 GB for ARC-AGI-1) is left out.

    OUT/model.safetensors   network weights and buffers, plus "puzzle_table.mean" (D,)
    OUT/config.toml         the resolved config
    OUT/export.json         format, arcpipe version, step, and the source dataset's vocabulary,
                            canvas and fingerprint
"""

from __future__ import annotations

from pathlib import Path

import orjson

from arcpipe import __version__
from arcpipe.config import load_config, save_config
from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import atomic_directory, write_json_atomic
from arcpipe.safetensors import load_file, save_file

EXPORT_FORMAT = "arcpipe-export"
EXPORT_VERSION = 1
MEAN_KEY = "puzzle_table.mean"


def export_checkpoint(checkpoint: Path, out: Path, overwrite: bool = False) -> Path:
    """Write the export of a checkpoint directory (or a run's best/last) to ``out``."""
    from arcpipe.train.checkpoint import load_checkpoint

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
        "dataset": ckpt.state.get("dataset", {}),
        "best": ckpt.state.get("best", {}),
    }
    with atomic_directory(out, overwrite=overwrite) as tmp:
        save_file(tensors, tmp / "model.safetensors", metadata={"format": EXPORT_FORMAT})
        save_config(ckpt.config, tmp / "config.toml")
        write_json_atomic(tmp / "export.json", record)
    return out


def is_export(path: Path) -> bool:
    return (path / "export.json").is_file()


def load_export(path: Path):
    """An export as a :class:`~arcpipe.train.checkpoint.Checkpoint` for ``--init-from``.

    The table is the single mean row, so "start the new table at the old table's mean" holds.
    """
    from arcpipe.train.checkpoint import Checkpoint

    record = orjson.loads((path / "export.json").read_bytes())
    if record.get("format") != EXPORT_FORMAT or record.get("format_version") != EXPORT_VERSION:
        raise ArcpipeError("not an arcpipe export of this version", file=path)
    tensors, _ = load_file(path / "model.safetensors")
    mean = tensors.pop(MEAN_KEY, None)
    loaded = {"weights": tensors}
    if mean is not None:
        loaded["puzzle_table"] = {"weights": mean[None]}
    state = {"step": record.get("step"), "dataset": record.get("dataset", {})}
    return Checkpoint(path.resolve(), loaded, state, load_config(path / "config.toml"))


def export_size(path: Path) -> int:
    """Bytes of an export on disk."""
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())
