"""Does a boxed board learn as well as the full canvas? Same seed and steps, then same wall time.

The tasks: the ARC-AGI-1 evaluation tasks whose every grid is at most 10x10 (77 tasks, 88 test
inputs), on the 30x30 canvas; their demonstrations are trained on (``--num-aug`` variants each,
default 1) and their test outputs held out. One variant, because with 8 (693 puzzle identifiers)
the tiny recipe stays on the label-marginal plateau (lm loss 1.9-2.1 against the labels' entropy
of 1.91 nats) for 900 steps and more in both layouts, and the comparison would show nothing.
For each training seed the tiny recipe trains

1. on full boards for ``--steps`` steps (its training seconds are the budget),
2. on boxed boards for the same steps,
3. on boxed boards for the same training seconds as 1 (``--max-time``),

and each run predicts every view of every held-out test input and is scored: the training exact
accuracy and the cell accuracy (count-weighted over the last ``--window`` steps' records) and
pass@2 per task (ARC Prize's average). Prints a markdown table and the means over seeds.

    python scripts/bench_boxed_learning.py --data-root ../shared/data [--seeds 0 1 2] \
        [--steps 300] [--batch 16] [--num-aug 1]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe.arc.score import load_solutions, score_submission  # noqa: E402
from arcpipe.arc.submission import load_submission  # noqa: E402
from arcpipe.arc.tasks import load_source  # noqa: E402
from arcpipe.config import load_config  # noqa: E402
from arcpipe.data.build import BuildOptions, build_arc_dataset  # noqa: E402
from arcpipe.predict import PredictOptions, predict  # noqa: E402
from arcpipe.runtime import tune_allocator  # noqa: E402
from arcpipe.train.checkpoint import load_checkpoint  # noqa: E402
from arcpipe.train.loop import RunOptions, train  # noqa: E402

MAX_SIDE = 10


def small_tasks(source: Path, into: Path) -> int:
    """Copy the tasks whose grids are all at most MAX_SIDE on each side; their number."""
    into.mkdir(parents=True)
    kept = 0
    for task in load_source(source):
        grids = [g for p in task.train + task.test for g in (p.input, p.output) if g is not None]
        if all(max(g.shape) <= MAX_SIDE for g in grids):
            shutil.copy(source / f"{task.id}.json", into / f"{task.id}.json")
            kept += 1
    return kept


def train_metric(run: Path, records: int, name: str) -> float:
    """``name`` (exact or cell accuracy) of the halted samples over the last ``records`` metrics
    records, weighted by their counts."""
    lines = (run / "metrics.jsonl").read_bytes().splitlines()
    last = [r for r in map(orjson.loads, lines) if name in r and "eval" not in r][-records:]
    counts = np.array([r["count"] for r in last])
    return float((np.array([r[name] for r in last]) * counts).sum() / max(1.0, counts.sum()))


def run_one(data, tasks, work, seed, board, args, max_time=None) -> dict:
    name = f"seed{seed}-{board}-{'time' if max_time else 'steps'}"
    sets = [
        f"train.seed={seed}",
        f"model.board={board}",
        f"train.global_batch_size={args.batch}",
        f"train.log_interval={args.log_interval}",
    ]
    config = load_config("tiny", sets)
    run = work / name
    steps = args.steps if max_time is None else 10**9
    result = train(
        RunOptions(data, config, run, max_steps=steps, max_time=max_time, device="cpu", quiet=True)
    )
    seconds = load_checkpoint(run).state["elapsed_seconds"]
    out = work / f"{name}.json"
    predict(PredictOptions(data=data, out=out, run=run, checkpoint="last", quiet=True))
    score = score_submission(load_submission(out), load_solutions(tasks))
    return {
        "seed": seed,
        "board": board,
        "budget": "same time" if max_time else "same steps",
        "steps": result.step,
        "seconds": seconds,
        "train_exact": train_metric(run, args.window // args.log_interval, "exact_accuracy"),
        "train_cells": train_metric(run, args.window // args.log_interval, "accuracy"),
        "pass@2": score.task_score,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--num-aug", type=int, default=1)
    parser.add_argument("--window", type=int, default=50, help="steps of the training accuracy")
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tune_allocator()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tasks = work / "tasks"
        kept = small_tasks(args.data_root / "arc-agi-1" / "evaluation", tasks)
        data = work / "data"
        build_arc_dataset([], tasks, data, BuildOptions(num_aug=args.num_aug), quiet=True)
        print(f"{kept} ARC-AGI-1 evaluation tasks with every grid at most {MAX_SIDE}x{MAX_SIDE}")
        print("| seed | board | budget | steps | train s | train exact | train cells | pass@2 |")
        print("|---|---|---|---|---|---|---|---|")
        for seed in args.seeds:
            full = run_one(data, tasks, work, seed, "full", args)
            runs = [full, run_one(data, tasks, work, seed, "boxed", args)]
            runs.append(run_one(data, tasks, work, seed, "boxed", args, full["seconds"]))
            for r in runs:
                rows.append(r)
                print(
                    f"| {r['seed']} | {r['board']} | {r['budget']} | {r['steps']} | "
                    f"{r['seconds']:.0f} | {r['train_exact']:.3f} | {r['train_cells']:.3f} | "
                    f"{r['pass@2']:.3f} |",
                    flush=True,
                )
    print("\nmeans over seeds:")
    for board, budget in (("full", "same steps"), ("boxed", "same steps"), ("boxed", "same time")):
        chosen = [r for r in rows if r["board"] == board and r["budget"] == budget]
        print(
            f"- {board}, {budget}: steps {np.mean([r['steps'] for r in chosen]):.0f}, "
            f"train exact {np.mean([r['train_exact'] for r in chosen]):.3f}, "
            f"train cells {np.mean([r['train_cells'] for r in chosen]):.3f}, "
            f"pass@2 {np.mean([r['pass@2'] for r in chosen]):.3f}"
        )
    if args.json:
        args.json.write_text(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
