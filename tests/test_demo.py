"""``arcpipe demo``: the whole flow on the project's own sample tasks."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from arcpipe.cli import main
from arcpipe.config import load_config
from arcpipe.data.dataset import Dataset

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def run_demo(out: Path, steps: int, model: str = "trm"):
    args = ["demo", "--out", str(out), "--steps", str(steps), "--model", model, "--quiet"]
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize("model", ["trm", "urm"])
def test_demo_runs_every_stage(tmp_path: Path, model: str) -> None:
    result = run_demo(tmp_path / "demo", steps=3, model=model)
    assert result.exit_code == 0, result.output
    assert load_config(tmp_path / "demo" / "run" / "config.toml").model.family == model
    ds = Dataset.open(tmp_path / "demo" / "data")
    assert ds.manifest["counts"]["tasks"] == 16
    assert sum(t.role == "target" for t in ds.tasks) == 4
    submission = orjson.loads((tmp_path / "demo" / "submission.json").read_bytes())
    assert sorted(submission) == ["colour_swap", "flip_lr", "gravity_down", "scale_x2"]
    report = (tmp_path / "demo" / "report.html").read_text()
    assert len(report) > 10_000 and report.count('<figure class="chart"') == 5  # run curves
    assert "score" in result.stdout and "report" in result.stdout


def solved_targets(submission: dict) -> list[str]:
    """Target tasks whose every held-out test output is one of its attempts (read from JSON)."""
    solved = []
    for task_id, answers in submission.items():
        task = orjson.loads((SAMPLE / "evaluation" / f"{task_id}.json").read_bytes())
        truths = [pair["output"] for pair in task["test"]]
        if all(truth in attempts.values() for truth, attempts in zip(truths, answers, strict=True)):
            solved.append(task_id)
    return solved


@pytest.mark.slow
@pytest.mark.parametrize("model", ["trm", "urm"])
def test_full_demo_learns_a_target_task(tmp_path: Path, model: str) -> None:
    """The default demo (400 steps, about 3.5 minutes on 2 cores) solves a held-out target, with
    TRM's tiny recipe and with URM's.

    The targets' test outputs are never trained on; only their demonstration pairs are.
    """
    result = run_demo(tmp_path / "demo", steps=400, model=model)
    assert result.exit_code == 0, result.output
    solved = solved_targets(orjson.loads((tmp_path / "demo" / "submission.json").read_bytes()))
    assert solved, result.stdout
    assert "solved: none" not in result.stdout  # the demo's own score agrees
