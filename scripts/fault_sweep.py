"""A longer fault-injection sweep: the reliability tests again under many kill-point seeds.

Each seed reruns the kill tests (training, DDP training, build-data, predict, each Kaggle phase)
with ``ARCPIPE_FAULT_SEED`` set, so every seed draws other kill points; the tests note every
point they recovered from in a report file, and a test that fails is a fault that lost something.
The other faults (full disk, deadlines, stalls, SIGTERM, out of memory, hostile inputs) run once,
with the first seed. Prints the table of docs/reliability.md.

    python scripts/fault_sweep.py --seeds 10          # about 10 x 6 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
KILL_TESTS = [
    "tests/test_reliability.py::test_training_killed_at_seeded_points_resumes_to_the_uninterrupted_run",
    "tests/test_reliability.py::test_build_killed_at_seeded_points_keeps_the_previous_dataset_and_rebuilds_the_same_bytes",
    "tests/test_reliability.py::test_prediction_killed_between_submission_replacements_leaves_a_valid_submission",
    "tests/train/test_train.py::test_resume_after_sigkill_continues_from_the_checkpoint_and_equals_uninterrupted",
    "tests/train/test_train.py::test_two_gloo_processes_killed_and_resumed_match_one_process",
    "tests/test_kaggle.py::test_a_kill_inside_a_phase_keeps_a_valid_submission_and_a_rerun_ends_as_uninterrupted",
]  # fmt: skip
OTHER_FAULTS = {
    "full disk (train, predict)": ["tests/test_reliability.py", "-k", "full_disk"],
    "deadline mid-predict, SIGTERM, a stall past the deadline": [
        "tests/test_reliability.py", "-k", "deadline or sigterm or stalled",
    ],
    "damaged or hostile checkpoints, candidates, datasets": [
        "tests/test_reliability.py", "-k", "bit_flipped or pickle or candidates_of or datasets_cut",
    ],
    "out of memory mid-phase (Kaggle train, predict)": [
        "tests/test_kaggle.py", "-k", "out_of_memory",
    ],
    "invalid submission at finish (Kaggle)": ["tests/test_kaggle.py", "-k", "finish_repairs"],
}  # fmt: skip


def pytest(args: list[str], env: dict[str, str]) -> tuple[bool, str, float]:
    start = time.monotonic()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    return done.returncode == 0, done.stdout[-3000:], time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    report = Path(tempfile.mkdtemp(prefix="arcpipe-sweep-")) / "recovered.jsonl"
    failures = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:
        env = {**os.environ, "ARCPIPE_FAULT_SEED": str(seed), "ARCPIPE_FAULT_REPORT": str(report)}
        ok, tail, seconds = pytest(KILL_TESTS, env)
        print(f"seed {seed}: {'ok' if ok else 'FAILED'} in {seconds:.0f} s", flush=True)
        if not ok:
            failures.append((seed, tail))
    records = [orjson.loads(x) for x in report.read_bytes().splitlines()] if report.exists() else []
    print(f"\n{len(seeds)} seeds ({args.first_seed}-{seeds[-1]}); failed runs: {len(failures)}\n")
    print(
        "| phase | kill points recovered | SIGKILL | torn write, then SIGKILL | distinct points |"
    )
    print("|---|---|---|---|---|")
    by_phase = collections.defaultdict(list)
    for r in records:
        by_phase[r["phase"]].append(r)
    for phase, rows in sorted(by_phase.items()):
        actions = collections.Counter(r["action"] for r in rows)
        kinds = {r["event"].split(" ")[0] for r in rows}
        print(
            f"| {phase} | {len(rows)} | {actions['kill']} | {actions['torn']} | "
            f"{len({(r['at'], r['event']) for r in rows})} ({', '.join(sorted(kinds))}) |"
        )
    print("\n| other faults | result |\n|---|---|")
    env = {**os.environ, "ARCPIPE_FAULT_SEED": str(args.first_seed)}
    for name, selection in OTHER_FAULTS.items():
        ok, tail, seconds = pytest(selection, env)
        print(f"| {name} | {'recovered' if ok else 'FAILED'} ({seconds:.0f} s) |", flush=True)
        if not ok:
            failures.append((name, tail))
    for what, tail in failures:
        print(f"\n--- {what}\n{tail}")


if __name__ == "__main__":
    main()
