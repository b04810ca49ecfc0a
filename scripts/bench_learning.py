"""Learning at CPU scale: CPU-sized recipes (``tiny`` TRM, ``urm_tiny`` URM) on the same real tasks.

Picks small real ARC-AGI-1 training tasks (every grid at most ``--max-side`` cells a side, in id
order): the first ``--train-tasks`` are trained on whole, the next ``--target-tasks`` are targets
whose demonstration pairs are trained on and whose test outputs are held out. Builds one dataset
(``--num-aug`` variants a task, canvas ``--max-side``), then trains every recipe from each seed
for the same compute time, recipes taking turns within a seed. Reports per run: optimizer steps
reached, training exact accuracy (halted samples of the last ``--tail`` steps) and loss, and the
held-out pass@1 / pass@2 of an evaluation at the end (every view of the targets' test inputs).

The budget is ``--cpu-minutes`` of this process's CPU time on one thread, not wall time: on a
shared machine wall time measures the other tenants. On a dedicated core the two are the same.
A run trains in chunks of ``--chunk`` steps (``--resume auto`` between them, which continues
bit-exactly) until its budget is spent; checkpoints and the chunks' restarts count against it.

    python scripts/bench_learning.py --data-root ../shared/data [--cpu-minutes 5] [--seeds 0 1 2]
        [--recipes tiny urm_tiny] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe.config import load_config  # noqa: E402
from arcpipe.data.build import BuildOptions, build_arc_dataset  # noqa: E402
from arcpipe.train.loop import RunOptions, train  # noqa: E402


def small_tasks(folder: Path, max_side: int) -> list[Path]:
    """Task files whose every grid fits in ``max_side`` x ``max_side``, in id order."""
    chosen = []
    for path in sorted(folder.glob("*.json")):
        task = orjson.loads(path.read_bytes())
        grids = [
            g for pair in task["train"] + task["test"] for g in (pair["input"], pair["output"])
        ]
        if all(len(g) <= max_side and len(g[0]) <= max_side for g in grids):
            chosen.append(path)
    return chosen


def tail_mean(records: list[dict], key: str, tail: int) -> float:
    """Mean of ``key`` over the last ``tail`` training records, weighted by halted samples."""
    last = [r for r in records if key in r][-tail:]
    counts = np.array([r["count"] for r in last])
    return float((np.array([r[key] for r in last]) * counts).sum() / max(counts.sum(), 1))


def run_one(
    data: Path, recipe: str, seed: int, cpu_seconds: float, run: Path, tail: int, chunk: int
) -> dict:
    """Train ``recipe`` from ``seed`` for ``cpu_seconds`` of CPU time, then evaluate once."""
    # No evaluation at each chunk's stop (an interval never reached); one at the end.
    config = load_config(recipe, [f"train.seed={seed}", "train.log_interval=1"])
    config.train.eval_interval = 10**9
    start_cpu, start_wall = time.process_time(), time.monotonic()
    step = 0
    while time.process_time() - start_cpu < cpu_seconds:
        options = RunOptions(data, config, run, resume=step > 0, max_steps=step + chunk, quiet=True)
        result = train(options)
        if result.step == step or result.reason == "finished":
            break
        step = result.step
    cpu = time.process_time() - start_cpu
    final = RunOptions(
        data, config, run, resume=True, overrides=("train.eval_interval=0",), quiet=True
    )
    final.max_steps = step  # nothing more to train: the end-of-run evaluation only
    evaluation = train(final).last_eval
    records = [orjson.loads(line) for line in (run / "metrics.jsonl").read_bytes().splitlines()]
    training = [r for r in records if "lm_loss" in r]
    return {
        "recipe": recipe,
        "seed": seed,
        "steps": step,
        "cpu_seconds": cpu,
        "wall_seconds": time.monotonic() - start_wall,
        "train_exact_accuracy": tail_mean(training, "exact_accuracy", tail),
        "train_accuracy": tail_mean(training, "accuracy", tail),
        "lm_loss": float(np.mean([r["lm_loss"] for r in training[-tail:]])),
        "pass@1": evaluation.get("pass@1"),
        "pass@2": evaluation.get("pass@2"),
        "heldout_view_exact": evaluation.get("exact_accuracy"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--recipes", nargs="+", default=["tiny", "urm_tiny"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cpu-minutes", type=float, default=5.0, help="CPU time per run")
    parser.add_argument("--chunk", type=int, default=20, help="steps between budget checks")
    parser.add_argument("--max-side", type=int, default=10)
    parser.add_argument("--train-tasks", type=int, default=16)
    parser.add_argument("--target-tasks", type=int, default=4)
    parser.add_argument("--num-aug", type=int, default=2)
    parser.add_argument("--tail", type=int, default=50, help="last steps averaged")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    torch.set_num_threads(1)  # CPU time = compute time (no spinning second thread)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"1 thread; {args.cpu_minutes} CPU minutes per run"
    )
    tasks = small_tasks(args.data_root / "arc-agi-1" / "training", args.max_side)
    train_tasks = tasks[: args.train_tasks]
    targets = tasks[args.train_tasks : args.train_tasks + args.target_tasks]
    print(f"trained on: {' '.join(p.stem for p in train_tasks)}")
    print(f"targets (test outputs held out): {' '.join(p.stem for p in targets)}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for folder, chosen in (("train", train_tasks), ("targets", targets)):
            (work / folder).mkdir()
            for path in chosen:
                shutil.copy(path, work / folder / path.name)
        data = work / "data"
        options = BuildOptions(num_aug=args.num_aug, canvas=args.max_side, seed=42)
        build_arc_dataset([work / "train"], work / "targets", data, options, quiet=True)
        print(
            "| recipe | seed | steps | CPU s | wall s | train exact | train cell acc | lm loss "
            "| pass@1 | pass@2 |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for seed in args.seeds:
            for recipe in args.recipes:
                run = work / f"{recipe}-seed{seed}"
                r = run_one(data, recipe, seed, args.cpu_minutes * 60, run, args.tail, args.chunk)
                rows.append(r)
                print(
                    f"| {recipe} | {seed} | {r['steps']} | {r['cpu_seconds']:.0f} | "
                    f"{r['wall_seconds']:.0f} | {r['train_exact_accuracy']:.3f} | "
                    f"{r['train_accuracy']:.3f} | {r['lm_loss']:.3f} | {r['pass@1']:.3f} | "
                    f"{r['pass@2']:.3f} |",
                    flush=True,
                )
    for recipe in args.recipes:
        mine = [r for r in rows if r["recipe"] == recipe]
        means = {k: np.mean([r[k] for r in mine]) for k in ("steps", "train_exact_accuracy")}
        print(
            f"{recipe}: mean steps {means['steps']:.0f}, mean train exact "
            f"{means['train_exact_accuracy']:.3f}, pass@2 {[r['pass@2'] for r in mine]}"
        )
    if args.json:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"args": settings, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
