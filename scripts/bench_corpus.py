"""Benchmark the corpus path of ``build-data`` and the leakage guard.

1. The guard's cost: reading and screening (fingerprints, leak lookup, duplicates) the sources of
   the ARC-AGI-1 and ARC-AGI-2 presets, in process CPU seconds (numba warmed first).
2. Builds, each in a fresh child process (its own peak RSS): the ARC-AGI-1 preset's sources, then
   the same plus a synthetic JSONL corpus of small grids (``scripts/make_corpus.py``) with its own
   variant count (``corpus.jsonl:N``): wall and CPU seconds, peak RSS, disk, puzzle-table rows and
   the table's size in the paper config (``arc1``: rows x puzzle_emb_dim x 4 bytes, fp32).

    python scripts/bench_corpus.py --data-root ../shared/data [--tasks 100000] [--corpus-aug 8]
        [--json out.json]
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe.arc.corpora import SourceSpec  # noqa: E402
from arcpipe.config import load_config  # noqa: E402
from arcpipe.data.leakage import screen  # noqa: E402
from arcpipe.data.sources import read_tasks  # noqa: E402

PRESET_SOURCES = {
    "arc-agi-1": (["arc-agi-1/training", "conceptarc/corpus"], "arc-agi-1/evaluation"),
    "arc-agi-2": (["arc-agi-2/training", "conceptarc/corpus"], "arc-agi-2/evaluation"),
}


def load_corpus_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_corpus", REPO / "scripts/make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def guard_cost(root: Path, preset: str, repeat: int) -> dict:
    """CPU seconds to read a preset's sources, and to screen them (best of ``repeat``)."""
    train, target = PRESET_SOURCES[preset]
    specs = [SourceSpec(root / t) for t in train]
    read, screened = [], []
    for _ in range(repeat):
        t0 = time.process_time()
        table = read_tasks(specs, SourceSpec(root / target), 30, 10)
        t1 = time.process_time()
        result = screen(table, "allow", "drop")
        screened.append(time.process_time() - t1)
        read.append(t1 - t0)
    return {
        "preset": preset,
        "tasks": len(table),
        "pairs": len(table.pairs),
        "read_cpu_s": min(read),
        "screen_cpu_s": min(screened),
        "test_outputs_hit": result.leakage["test_pairs_hit"],
    }


def run_build(args: list[str], out: Path) -> dict:
    """One build in a child process: wall and CPU seconds, peak RSS, disk, counts."""
    cmd = [sys.executable, "-m", "arcpipe", "build-data", *args, "--out", str(out), "--quiet"]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"build failed: {' '.join(cmd)}")
    manifest = json.loads((out / "manifest.json").read_text())
    rows = manifest["counts"]["puzzle_identifiers"]
    dim = load_config("arc1").model.puzzle_emb_dim
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "disk_mb": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6,
        "tasks": manifest["counts"]["tasks"],
        "puzzle_table_rows": rows,
        "puzzle_table_gib_paper": rows * dim * 4 / 2**30,
        "train_examples": manifest["counts"]["train_examples"],
        "duplicates": manifest["duplicates"]["count"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--tasks", type=int, default=100_000, help="synthetic corpus tasks")
    parser.add_argument("--corpus-aug", type=int, default=8, help="variants per corpus task")
    parser.add_argument("--repeat", type=int, default=3, help="guard timing repeats")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = args.data_root.resolve()
    results = {"machine": f"{platform.node()} {platform.processor()} {os.cpu_count()} cpus"}
    sample = [SourceSpec(REPO / "data/sample" / s) for s in ("training", "evaluation")]
    screen(read_tasks(sample[:1], sample[1], 30, 10), "allow", "drop")  # numba warmed
    results["guard"] = [guard_cost(root, p, args.repeat) for p in PRESET_SOURCES]
    train, target = PRESET_SOURCES["arc-agi-1"]
    arc1 = [a for t in train for a in ("--train", str(root / t))]
    arc1 += ["--eval", str(root / target), "--leakage", "allow"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = tmp / "corpus.jsonl"
        t0 = time.perf_counter()
        load_corpus_module().write_jsonl(corpus, args.tasks, seed=0)
        results["corpus"] = {
            "tasks": args.tasks,
            "bytes": corpus.stat().st_size,
            "write_s": time.perf_counter() - t0,
        }
        warm = ["--train", str(sample[0].path), "--eval", str(sample[1].path)]
        run_build(warm, tmp / "warm")
        results["arc1_preset"] = run_build(arc1, tmp / "a")
        extra = ["--train", f"{corpus}:{args.corpus_aug}"]
        results["arc1_preset_plus_corpus"] = run_build(arc1 + extra, tmp / "b")
    results["corpus_aug"] = args.corpus_aug
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
