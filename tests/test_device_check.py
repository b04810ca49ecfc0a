"""The prepared GPU check (scripts/device_check.py), dry-run on the CPU at tiny sizes, so that a
broken script is caught before a device is spent on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

SCRIPT = REPO / "scripts" / "device_check.py"


def device_check(
    tmp_path: Path, data: Path, *options: str
) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--data-root", str(data)]
    command += ["--out", str(out), "--work", str(tmp_path / "work"), *options]
    process = subprocess.run(command, capture_output=True, text=True, timeout=900)
    summary = out / "summary.json"
    return process, json.loads(summary.read_text()) if summary.exists() else {}


@pytest.mark.slow  # every part at tiny sizes: about a minute
def test_dry_run_measures_every_part_and_fits_what_the_device_tool_brings_back(
    tmp_path: Path, shared_data: Path
) -> None:
    process, summary = device_check(tmp_path, shared_data)
    assert process.returncode == 0, process.stdout + process.stderr
    parts = summary["parts"]
    assert {p: r["status"] for p, r in parts.items()} == dict.fromkeys(
        ("data", "tests", "trm", "urm", "predict", "learn"), "ok"
    )
    assert parts["data"]["steps"]["puzzle_ids"] > parts["data"]["steps"]["num_aug"] > 0
    assert parts["tests"]["pytest"]["exit"] == 0
    trm = {(r["board"], r["compiled"]): r for r in parts["trm"]["steps"]}
    assert set(trm) == {("full", True), ("full", False), ("boxed", False), ("boxed", True)}
    for row in [*trm.values(), *parts["urm"]["steps"]]:
        assert row["share_measured"] == pytest.approx(1.0, abs=1e-3)
        assert row["s_per_step"] > 0 and row["examples_per_s"] > 0 and row["tflop_s"] >= 0
    assert len(trm["boxed", True]["buckets"]) == 2  # the dry run's two buckets, both compiled
    views = {v["board"]: v["views_per_s"] for v in parts["predict"]["views_per_s"]}
    assert set(views) == {"boxed", "full"} and min(views.values()) > 0
    curve = parts["learn"]["curve"]
    assert len(curve) >= 3 and curve[-1]["step"] == len(curve)  # logged every step
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(files) <= 8 and "summary.md" in files  # the device tool returns 8 files at most
    assert "learning run:" in (tmp_path / "out" / "summary.md").read_text()


@pytest.mark.slow  # the parts after the cut one still run: about 30 s
def test_a_part_over_its_limit_is_killed_and_the_next_parts_still_run(
    tmp_path: Path, shared_data: Path
) -> None:
    process, summary = device_check(
        tmp_path, shared_data, "--only", "data", "learn", "predict", "--cap", "learn=16"
    )  # the dry run's learning run alone trains for 15 s, after its start-up
    parts = summary["parts"]
    assert parts["learn"]["status"] == "timeout (16 s)" and parts["learn"]["seconds"] < 30
    assert parts["data"]["status"] == parts["predict"]["status"] == "ok"
    assert "parts not ok: learn" in process.stdout


def test_missing_data_is_one_line_and_exit_2(tmp_path: Path) -> None:
    process, summary = device_check(tmp_path, tmp_path / "nowhere")
    assert process.returncode == 2
    assert process.stderr.strip().count("\n") == 0 and "no ARC data at" in process.stderr
    assert "no ARC data" in summary["error"] and "parts" not in summary
