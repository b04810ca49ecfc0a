"""Benchmark the whole-grid program search (``predict --programs``, arcpipe.arc.programs).

For every task of each SOURCE with known test outputs: whether a program fits every
demonstration, and whether its answers are the test outputs (precision is what matters: a fitted
program's answer goes first in the submission); the same over the small tasks (every grid at most
8x8, the protocol's pool of docs/benchmarks.md) and the search's time per task.

    python scripts/bench_programs.py --data-root ../shared/data \
        [--sources arc-agi-1/training arc-agi-1/evaluation arc-agi-2/training \
         arc-agi-2/evaluation conceptarc/corpus] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe.arc.programs import solve  # noqa: E402
from arcpipe.arc.tasks import Task, load_source  # noqa: E402

SOURCES = (
    "arc-agi-1/training",
    "arc-agi-1/evaluation",
    "arc-agi-2/training",
    "arc-agi-2/evaluation",
    "conceptarc/corpus",
)
SMALL = 8  # the protocol's pool: every grid at most 8x8


def is_small(task: Task) -> bool:
    grids = [g for p in task.train + task.test for g in (p.input, p.output) if g is not None]
    return max(max(g.shape) for g in grids) <= SMALL


def measure(tasks: list[Task]) -> dict:
    """Fitted tasks, right tasks (every test output), outputs right, and seconds, over ``tasks``."""
    counts = {"tasks": len(tasks), "outputs": 0, "fitted": 0, "right": 0, "outputs_right": 0}
    wrong, start = [], time.perf_counter()
    for task in tasks:
        counts["outputs"] += len(task.test)
        found = solve([(p.input, p.output) for p in task.train], [p.input for p in task.test])
        if found is None:
            continue
        counts["fitted"] += 1
        hits = [np.array_equal(a, p.output) for a, p in zip(found[1], task.test)]
        counts["outputs_right"] += sum(hits)
        counts["right"] += all(hits)
        if not all(hits):
            wrong.append(f"{task.id} ({found[0].name})")
    seconds = time.perf_counter() - start
    counts["ms_per_task"] = round(1000 * seconds / max(1, len(tasks)), 1)
    return {**counts, "wrong": wrong}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--sources", nargs="+", default=list(SOURCES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(
        "| source | tasks | fitted | right | outputs right | ms / task | small tasks: "
        "tasks, fitted, right, outputs right of outputs |"
    )
    print("|---|---|---|---|---|---|---|")
    rows = {}
    for source in args.sources:
        tasks = [t for t in load_source(args.data_root / source) if t.test[0].output is not None]
        every, small = measure(tasks), measure([t for t in tasks if is_small(t)])
        rows[source] = {"all": every, "small": small}
        print(
            f"| {source} | {every['tasks']} | {every['fitted']} | {every['right']} | "
            f"{every['outputs_right']} of {every['outputs']} | {every['ms_per_task']} | "
            f"{small['tasks']}, {small['fitted']}, {small['right']}, "
            f"{small['outputs_right']} of {small['outputs']} |"
        )
        for miss in every["wrong"]:
            print(f"  wrong: {miss}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
