"""The fault-injection harness: real ``arcpipe`` commands under an ``ARCPIPE_FAULTS`` plan.

A clean run with a ``trace`` plan lists the command's counted events (file writes, renames,
symlinks, removals, training steps, prediction batches) in order; kill points are drawn from that
list with a seeded generator, and the same command is run again with a plan that fires at each
one. The checks say what may be on disk afterwards: readable files only (hidden ``.NAME.tmp-*``
temporaries aside), the previous checkpoint, dataset or submission intact.

Used by ``tests/test_reliability.py`` and ``scripts/fault_sweep.py``.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import torch

from arcpipe.arc.submission import load_submission, validate_submission
from arcpipe.config import load_config
from arcpipe.data.dataset import Dataset
from arcpipe.faults import ENV
from arcpipe.train.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
SEED_ENV = "ARCPIPE_FAULT_SEED"
REPORT_ENV = "ARCPIPE_FAULT_REPORT"  # a JSON-lines file: every kill point recovered from


def fault_seed(default: int = 0) -> int:
    """The seed of the kill points: ``$ARCPIPE_FAULT_SEED`` or ``default`` (reported on failure)."""
    return int(os.environ.get(SEED_ENV, default))


def arcpipe_env(plan: dict | None = None) -> dict[str, str]:
    """The environment of a command under ``plan`` (one thread, like the other CLI tests)."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env["OMP_NUM_THREADS"] = "1"
    if plan is not None:
        env[ENV] = json.dumps(plan)
    return env


def run_arcpipe(
    args: list[str], plan: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``python -m arcpipe ARGS`` to completion (or to the fault that ends it)."""
    cmd = [sys.executable, "-m", "arcpipe", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=arcpipe_env(plan), timeout=timeout, check=False
    )


def trace_events(args: list[str], under: Path, trace: Path, **plan: object) -> list[str]:
    """Run ``args`` cleanly, recording its counted events under ``under``; their descriptions."""
    trace.unlink(missing_ok=True)
    done = run_arcpipe(args, {"under": str(under), "trace": str(trace), **plan})
    assert done.returncode == 0, done.stderr[-3000:]
    return [line.split("\t", 1)[1] for line in trace.read_text().splitlines()]


@dataclass(frozen=True)
class KillPoint:
    """One fault: at counted event ``at`` (1-based), ``action`` ("kill" or "torn")."""

    at: int
    event: str
    action: str

    def plan(self, under: Path, **extra: object) -> dict:
        return {"under": str(under), "at": self.at, "action": self.action, **extra}

    def __str__(self) -> str:
        return f"{self.action} at event {self.at} ({self.event})"


def kill_points(
    events: list[str], count: int, seed: int, must: tuple[str, ...] = ()
) -> list[KillPoint]:
    """``count`` distinct kill points drawn with ``seed``: at least one event matching each
    regular expression of ``must``, the rest from all events; a write of an in-place file (not a
    temporary) is torn."""
    rng = random.Random(seed)
    chosen: list[int] = []
    for text in must:
        matching = [i for i, e in enumerate(events) if re.search(text, e)]
        assert matching, f"no event matches {text!r}"
        free = [i for i in matching if i not in chosen]
        if free:  # else a point drawn for an earlier expression already matches this one
            chosen.append(rng.choice(free))
    others = [i for i in range(len(events)) if i not in chosen]
    chosen += rng.sample(others, max(0, min(count - len(chosen), len(others))))
    points = []
    for i in sorted(chosen):
        in_place = events[i].startswith(("write ", "append ")) and ".tmp-" not in events[i]
        points.append(KillPoint(i + 1, events[i], "torn" if in_place else "kill"))
    return points


def report_recovered(phase: str, point: KillPoint, seed: int, **detail: object) -> None:
    """Note a kill point whose every check passed in ``$ARCPIPE_FAULT_REPORT`` (the sweep)."""
    path = os.environ.get(REPORT_ENV)
    if path:
        record = {"phase": phase, "at": point.at, "event": point.event, "action": point.action}
        with open(path, "ab") as f:
            f.write(orjson.dumps({**record, "seed": seed, **detail}) + b"\n")


def killed(result: subprocess.CompletedProcess) -> bool:
    """The process (or, under torchrun, one of its ranks) died of SIGKILL."""
    return result.returncode in (-9, 137) or "Signals.SIGKILL" in result.stderr


# ----------------------------------------------------------------------------- what may be on disk


def temporaries(folder: Path) -> list[Path]:
    """Hidden temporaries (``.NAME.tmp-*``) anywhere under ``folder``."""
    return sorted(p for p in folder.rglob(".*.tmp-*"))


def assert_run_readable(run: Path) -> None:
    """Every checkpoint, link and the config of a run directory load; metrics.jsonl parses but
    for a torn last line."""
    for name in ("last", "best"):
        link = run / name
        if link.is_symlink():
            assert link.exists(), f"{name} -> {os.readlink(link)} dangles"
    for folder in sorted((run / "checkpoints").glob("step-*")):
        ckpt = load_checkpoint(folder)  # verifies every file's sha256
        assert ckpt.state["step"] == int(folder.name.split("-")[1])
    if (run / "config.toml").exists():
        load_config(run / "config.toml")
    metrics = run / "metrics.jsonl"
    if metrics.exists():
        for line in metrics.read_bytes().splitlines()[:-1]:
            orjson.loads(line)


def assert_submission_valid(path: Path, expected: dict[str, int]) -> dict:
    submission = load_submission(path)
    validate_submission(submission, expected, path, 2)
    return submission


def dataset_digests(path: Path) -> dict[str, str]:
    """The manifest's digests of a dataset that opens (and so verifies)."""
    return dict(Dataset.open(path).manifest["files"])


def training_state(run: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a run's last checkpoint that resuming restores, flattened by name."""
    ckpt = load_checkpoint(run)
    flat = {}
    for name, content in ckpt.tensors.items():
        if name == "optimizer":
            content = {
                f"{kind}.{i}.{k}": v
                for kind, state in content.items()
                for i, slots in state.get("state", {}).items()
                for k, v in slots.items()
            }
        for key, value in content.items():
            if isinstance(value, torch.Tensor):
                flat[f"{name}.{key}"] = value
    return flat


def assert_same_training(a: Path, b: Path) -> None:
    """Two runs ended in the same state: tensors bit for bit, and the same metrics records."""
    sa, sb = training_state(a), training_state(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert comparable_metrics(a) == comparable_metrics(b)


def comparable_metrics(run: Path) -> list[dict]:
    """metrics.jsonl without its wall-clock fields."""
    records = [orjson.loads(x) for x in (run / "metrics.jsonl").read_bytes().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("elapsed", "examples_per_s")} for r in records]
