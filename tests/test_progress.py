"""Progress lines for logs (Kaggle, nohup): the time left counts only this process's work."""

from __future__ import annotations

import re

import pytest

from arcpipe import progress


def test_plain_lines_estimate_time_left_from_this_process_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(progress, "is_terminal", lambda: False)
    # A resumed run: 900 of 1000 steps were done before; this process does 10 steps in 10 s.
    with progress.Progress("train", 1000, every=5.0, completed=900) as bar:
        clock[0] += 10.0
        bar.advance(10, "loss 0.5")
    line = capsys.readouterr().err.strip()
    assert line.startswith("train: 910/1000 loss 0.5")
    assert re.search(r"\[10s elapsed, 90s left\]$", line), line  # 1 step/s, not 91 steps/s
