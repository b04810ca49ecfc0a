"""``arcpipe demo`` runs on the project's own sample tasks."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from arcpipe.cli import main
from arcpipe.data.dataset import Dataset


def test_demo_builds_the_sample_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo"), "--quiet"])
    assert result.exit_code == 0, result.output
    ds = Dataset.open(tmp_path / "demo" / "data")
    assert ds.manifest["counts"]["tasks"] == 16
    assert sum(t.role == "target" for t in ds.tasks) == 4
    assert "puzzle identifiers" in result.stdout
