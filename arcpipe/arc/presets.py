"""Named source sets for the reference's two ARC runs, resolved against a data root.

``arc-agi-1``: ARC-AGI-1 training + ConceptARC train, ARC-AGI-1 evaluation is the target set.
``arc-agi-2``: ARC-AGI-2 training + ConceptARC train, ARC-AGI-2 evaluation is the target set.

The data root is laid out as ``scripts/fetch_arc_data.sh`` leaves it (and as the project's shared
data folder is): ``arc-agi-1/{training,evaluation}``, ``arc-agi-2/{training,evaluation}``,
``conceptarc/corpus``. The repositories' own ``data/`` level is accepted too.

A preset builds the reference's mix as the reference builds it, so its leakage mode is ``allow``
(:data:`PRESET_LEAKAGE`): what the guard finds is reported and recorded in the manifest, not
refused, and ``--leakage drop`` leaves it out. Measured on the public data: the ``arc-agi-1`` mix
holds 2 of the 419 evaluation test outputs (training task 40853293 is evaluation task 070dd51e;
training caa06a1f holds 50a16a69's test pair up to a transform and colours); ``arc-agi-2`` none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from arcpipe.errors import ArcpipeError

PRESETS = {
    "arc-agi-1": (("arc-agi-1/training", "conceptarc/corpus"), "arc-agi-1/evaluation"),
    "arc-agi-2": (("arc-agi-2/training", "conceptarc/corpus"), "arc-agi-2/evaluation"),
}
PRESET_LEAKAGE = "allow"  # the reference's mix, kept and recorded (module docstring)


@dataclass(frozen=True)
class Sources:
    """The training sources and the target (eval) source of a build."""

    train: tuple[Path, ...]
    eval: Path


def _locate(root: Path, relative: str) -> Path:
    head, _, tail = relative.partition("/")
    for candidate in (root / relative, root / head / "data" / tail):
        if candidate.is_dir():
            return candidate
    raise ArcpipeError(
        f"preset folder {relative} not found (fetch the data with scripts/fetch_arc_data.sh)",
        file=root,
    )


def resolve_preset(name: str, root: str | Path) -> Sources:
    """The sources of preset ``name`` under data root ``root``.

    Raises:
        ArcpipeError: unknown preset, or a folder is missing under ``root``.
    """
    if name not in PRESETS:
        raise ArcpipeError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    train, target = PRESETS[name]
    root = Path(root)
    return Sources(tuple(_locate(root, t) for t in train), _locate(root, target))
