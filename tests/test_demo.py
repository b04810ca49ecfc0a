"""``arcpipe demo``: the whole flow on the project's own sample tasks."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from arcpipe.cli import main
from arcpipe.data.dataset import Dataset


def run_demo(out: Path, steps: int):
    return CliRunner().invoke(main, ["demo", "--out", str(out), "--steps", str(steps), "--quiet"])


def test_demo_runs_every_stage(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", steps=3)
    assert result.exit_code == 0, result.output
    ds = Dataset.open(tmp_path / "demo" / "data")
    assert ds.manifest["counts"]["tasks"] == 16
    assert sum(t.role == "target" for t in ds.tasks) == 4
    submission = orjson.loads((tmp_path / "demo" / "submission.json").read_bytes())
    assert sorted(submission) == ["colour_swap", "flip_lr", "gravity_down", "scale_x2"]
    assert (tmp_path / "demo" / "report.html").stat().st_size > 10_000
    assert "score" in result.stdout and "report" in result.stdout


@pytest.mark.slow
def test_full_demo_learns_a_target_task(tmp_path: Path) -> None:
    """The default demo (400 steps, about 3 minutes on 2 cores) solves at least one target."""
    result = run_demo(tmp_path / "demo", steps=400)
    assert result.exit_code == 0, result.output
    assert "solved: none" not in result.stdout
