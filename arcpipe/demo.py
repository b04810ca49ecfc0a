"""``arcpipe demo``: the whole flow on the project's own sample tasks, small enough for a laptop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from arcpipe.arc.build import BuildOptions, BuildSummary, build_arc_dataset
from arcpipe.errors import ArcpipeError

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"
DEMO_BUILD = BuildOptions(num_aug=64, canvas=10, seed=42)


def sample_sources(root: Path = SAMPLE_DIR) -> tuple[Path, Path]:
    """The sample tasks' training and evaluation folders."""
    train, evaluation = root / "training", root / "evaluation"
    if not train.is_dir() or not evaluation.is_dir():
        raise ArcpipeError(
            "sample tasks not found; run `python scripts/make_sample_tasks.py` in the repository",
            file=root,
        )
    return train, evaluation


def run_demo(
    out: Path, quiet: bool = False, print_summary: Callable[[BuildSummary, int], None] | None = None
) -> None:
    """Build the sample dataset under ``out`` (replacing an earlier demo's)."""
    train, evaluation = sample_sources()
    summary = build_arc_dataset(
        [train], evaluation, out / "data", DEMO_BUILD, overwrite=True, quiet=quiet
    )
    if print_summary is not None:
        print_summary(summary, DEMO_BUILD.num_aug)
