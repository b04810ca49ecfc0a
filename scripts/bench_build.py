"""Benchmark ``arcpipe build-data`` on the reference's presets: wall time, peak RSS, disk, counts.

Each build runs in a fresh subprocess (so the peak RSS is the build's own; numba's JIT cache is
warmed by a first small build), into a temporary folder that is removed afterwards.

    python scripts/bench_build.py --data-root ../shared/data [--presets arc-agi-1 arc-agi-2]
        [--num-aug 1000] [--repeat 3] [--materialize] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The reference builder (dataset/build_arc_dataset.py) on the ARC-AGI-1 preset at 1000
# augmentations, measured on this machine class (2 cores): trm-reference.md and issue 2.
REFERENCE = {
    "arc-agi-1": {
        "seconds": 13 * 60 + 6,
        "peak_rss_mb": 15.5 * 1024,
        "disk_mb": 7 * 1024,
        "puzzle_identifiers": 876_406,
        "train_examples": 3_633_410,
        "test_examples": 385_815,
        "tasks_below_cap": 164,
    },
    "arc-agi-2": {
        "puzzle_identifiers": 1_191_730,
        "train_examples": 5_163_277,
        "test_examples": 170_393,
        "tasks_below_cap": 175,
    },
}


def run_build(preset: str, data_root: Path, num_aug: int, materialize: bool) -> dict:
    """One build in a child process; returns its wall time, peak RSS, disk use and counts."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        cmd = [
            sys.executable,
            "-m",
            "arcpipe",
            "build-data",
            "--preset",
            preset,
            "--data-root",
            str(data_root),
            "--out",
            str(out),
            "--num-aug",
            str(num_aug),
            "--quiet",
        ]
        if materialize:
            cmd.append("--materialize")
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"build failed: {' '.join(cmd)}")
        manifest = json.loads((out / "manifest.json").read_text())
        tasks = np.load(out / "tasks.npy")
        disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "disk_mb": disk / 1e6,
        **{
            k: manifest["counts"].get(k)
            for k in ("puzzle_identifiers", "train_examples", "test_examples")
        },
        "tasks_below_cap": int((tasks[:, 6] < num_aug + 1).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--presets", nargs="+", default=["arc-agi-1", "arc-agi-2"])
    parser.add_argument("--num-aug", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per preset (best kept)")
    parser.add_argument("--materialize", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"python {platform.python_version()}"
    )
    run_build(args.presets[0], args.data_root, 2, False)  # fill numba's cache once
    results = {}
    for preset in args.presets:
        runs = [
            run_build(preset, args.data_root, args.num_aug, args.materialize)
            for _ in range(args.repeat)
        ]
        best = min(runs, key=lambda r: r["seconds"])
        best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
        results[preset] = best
        ref = REFERENCE.get(preset, {}) if args.num_aug == 1000 else {}
        print(f"\n{preset} (num_aug {args.num_aug}, best of {args.repeat})")
        print("| quantity | arcpipe | reference |")
        print("|---|---|---|")
        for key, value in best.items():
            fmt = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
            theirs = ref.get(key)
            print(f"| {key} | {fmt} | {'' if theirs is None else f'{theirs:,}'} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
