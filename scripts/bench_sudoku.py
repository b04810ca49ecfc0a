"""Sudoku on a CPU: does the tiny recipe learn, and how fast is a training step?

Part ``learn``: generate easy puzzles (random full grids with a few blanks; train and test
disjoint up to Sudoku symmetry, seeded), build the dataset with ``num_aug`` symmetries per
training puzzle, train ``sudoku_tiny`` for a fixed number of steps (or seconds) through the
library's training loop, and evaluate the last checkpoint on the held-out test puzzles with
``evaluate_run``: exact accuracy, valid-solution rate and wall time.

Part ``throughput``: seconds per training step (``Trainer.train_step``: one supervision step,
forward, backward, optimizers, EMA) of the paper's Sudoku MLP config (hidden 512, T=3, n=6,
N_sup=16, token-mixing MLP, no positional encoding) and of the same at hidden 128, float32 eager,
with the reference's figures on this machine class beside them.

    python scripts/bench_sudoku.py [--part learn|throughput|all] [--steps 1000] [--blanks 10]
        [--set train.lr=1e-3 ...] [--threads N] [--compile] [--json FILE]

Measured on the 2-core development machine (x86_64, torch 2.13 CPU, shared with other jobs):

* learn, defaults (2000 train / 200 test puzzles, 10 blanks, num_aug 100, ``sudoku_tiny``: hidden
  64, T=2, n=2, N_sup=2, batch 32, lr 2e-3): 1000 steps in 207 s of training (214 s wall, 2
  threads, machine otherwise idle) -> exact accuracy 0.985, valid-solution rate 0.985 on the
  held-out puzzles; with 1 thread beside another job: 351 s -> 0.975.
* throughput, batch 64, float32 eager, 2 threads: paper config 25.1 s/step (2.5 examples/s;
  reference 30.3 s, 2.1/s); hidden 128: 4.2-4.75 s/step (13.5-15.2/s; reference 3.85 s, 16.6/s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe.config import Config, ModelConfig, TrainConfig, load_config  # noqa: E402
from arcpipe.data.dataset import Dataset  # noqa: E402
from arcpipe.puzzles.build import build_sudoku_dataset  # noqa: E402
from arcpipe.puzzles.cli import sudoku_split  # noqa: E402
from arcpipe.puzzles.evaluate import evaluate_run  # noqa: E402
from arcpipe.puzzles.sudoku import write_sudoku_csv  # noqa: E402
from arcpipe.train import distributed  # noqa: E402
from arcpipe.train.loop import RunOptions, train  # noqa: E402
from arcpipe.train.trainer import Trainer  # noqa: E402

# The reference's seconds per step at batch 64, float32 eager, 2 threads (issue text).
REFERENCE_S_PER_STEP = {512: 30.3, 128: 3.85}


def learn(args: argparse.Namespace, folder: Path) -> dict:
    """Generate, build, train and evaluate; returns the figures."""
    start = time.monotonic()
    rng = np.random.default_rng(args.seed)
    train_set, test_set = sudoku_split(args.train, args.test, rng, easy_blanks=args.blanks)
    write_sudoku_csv(folder / "train.csv", train_set)
    write_sudoku_csv(folder / "test.csv", test_set)
    data = folder / "data"
    build_sudoku_dataset(
        folder / "train.csv", folder / "test.csv", data, num_aug=args.num_aug, quiet=True
    )
    prepared = time.monotonic()
    config = load_config(args.config, args.overrides)
    result = train(
        RunOptions(
            data,
            config,
            folder / "run",
            max_steps=args.steps,
            max_time=args.max_time,
            device="cpu",
            quiet=not args.verbose,
        )
    )
    trained = time.monotonic()
    metrics = evaluate_run(folder / "run", data, checkpoint="last", device="cpu", quiet=True)
    return {
        "train_puzzles": args.train,
        "test_puzzles": args.test,
        "blanks": args.blanks,
        "num_aug": args.num_aug,
        "config": args.config,
        "overrides": args.overrides,
        "steps": result.step,
        "stop_reason": result.reason,
        "exact_accuracy": metrics["exact_accuracy"],
        "valid_solution_rate": metrics["valid_solution_rate"],
        "prepare_seconds": prepared - start,
        "train_seconds": trained - prepared,
        "evaluate_seconds": metrics["seconds"],
        "wall_seconds": time.monotonic() - start,
    }


def step_seconds(dataset: Dataset, hidden: int, batch: int, steps: int, compile: bool) -> float:
    """Median seconds of ``steps`` training steps after one warm-up step (two when compiled)."""
    model = ModelConfig(
        hidden_size=hidden,
        num_heads=8,
        cycles=3,
        latent_steps=6,
        supervision_steps=16,
        token_mixer="mlp",
        pos_encodings="none",
        puzzle_emb_dim=hidden,
        puzzle_emb_len=16,
    )
    cfg = TrainConfig(global_batch_size=batch, dtype="float32", compile=compile)
    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(dataset.path, Config(model=model, train=cfg), Path(tmp), quiet=True)
        trainer = Trainer(options, distributed.setup("cpu"), dataset)
        for _ in range(2 if compile else 1):
            trainer.train_step()
        times = []
        for _ in range(steps):
            begin = time.perf_counter()
            trainer.train_step()
            times.append(time.perf_counter() - begin)
    return float(np.median(times))


def throughput(args: argparse.Namespace, folder: Path) -> list[dict]:
    """Step time of the paper's Sudoku config and of hidden 128, at ``args.batch``."""
    puzzles, tests = sudoku_split(256, 16, np.random.default_rng(0), easy_blanks=40)
    write_sudoku_csv(folder / "tp-train.csv", puzzles)
    write_sudoku_csv(folder / "tp-test.csv", tests)
    data = folder / "tp-data"
    build_sudoku_dataset(folder / "tp-train.csv", folder / "tp-test.csv", data, 8, quiet=True)
    dataset = Dataset.open(data)
    rows = []
    for hidden in args.hidden:
        seconds = step_seconds(dataset, hidden, args.batch, args.tp_steps, args.compile)
        reference = REFERENCE_S_PER_STEP.get(hidden) if args.batch == 64 else None
        rows.append(
            {
                "hidden": hidden,
                "batch": args.batch,
                "compiled": args.compile,
                "s_per_step": seconds,
                "examples_per_s": args.batch / seconds,
                "reference_s_per_step": reference,
                "reference_examples_per_s": None if reference is None else args.batch / reference,
            }
        )
        print_throughput_row(rows[-1])
    return rows


def print_throughput_row(row: dict) -> None:
    ref = row["reference_s_per_step"]
    ref_text = f"{ref:.2f} | {row['reference_examples_per_s']:.1f}" if ref else " | "
    speedup = f"{ref / row['s_per_step']:.2f}x" if ref else ""
    print(
        f"| hidden {row['hidden']}{' compiled' if row['compiled'] else ''} | {row['batch']} | "
        f"{row['s_per_step']:.2f} | "
        f"{row['examples_per_s']:.1f} | {ref_text} | {speedup} |",
        flush=True,
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["learn", "throughput", "all"], default="all")
    parser.add_argument("--train", type=int, default=2000, help="training puzzles")
    parser.add_argument("--test", type=int, default=200, help="held-out test puzzles")
    parser.add_argument("--blanks", type=int, default=10, help="blanks per easy puzzle")
    parser.add_argument("--num-aug", type=int, default=100, help="symmetries per puzzle")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", default="sudoku_tiny")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    parser.add_argument("--steps", type=int, default=1000, help="training steps")
    parser.add_argument("--max-time", type=float, help="stop training after this many seconds")
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 128])
    parser.add_argument("--batch", type=int, default=64, help="throughput batch size")
    parser.add_argument("--tp-steps", type=int, default=2, help="timed throughput steps")
    parser.add_argument("--compile", action="store_true", help="throughput with train.compile")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--verbose", action="store_true", help="show the training progress")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.part in ("learn", "all"):
            report["learn"] = learned = learn(args, folder)
            print(
                f"learn: {learned['train_puzzles']} train / {learned['test_puzzles']} test "
                f"puzzles, {learned['blanks']} blanks, num_aug {learned['num_aug']}, "
                f"{learned['config']} {' '.join(learned['overrides'])}: {learned['steps']} steps "
                f"in {learned['train_seconds']:.0f} s -> exact accuracy "
                f"{learned['exact_accuracy']:.3f}, valid {learned['valid_solution_rate']:.3f} "
                f"(wall {learned['wall_seconds']:.0f} s)",
                flush=True,
            )
        if args.part in ("throughput", "all"):
            print(
                "| config | batch | s/step | examples/s | reference s/step | ref ex/s | speed-up |"
            )
            print("|---|---|---|---|---|---|---|")
            report["throughput"] = throughput(args, folder)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
