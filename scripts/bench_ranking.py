"""The CPU ranking testbed (issue 14): how much of the ranking gap each voting rule closes.

Tasks: the ARC-AGI-1 evaluation tasks whose every grid is at most ``--max-size`` (10) on a side,
built on a canvas of that side with ``--num-aug`` augmented variants (so ``num_aug + 1`` views
per test input). As for the reference's ARC-AGI-1 recipe, their demonstrations are trained on and
their test outputs are held out (the dataset stores them only to score). For each training seed:
train the recipe, predict every test view with cross-view scores (``arcpipe predict``'s own code
path, ``--cross-view-k K``), then vote the same candidates under every rule and report

- pass@1, pass@2: ARC Prize's per-task average, top-1 / top-2 of the rule;
- pass@all: the right answer among any candidate (rule-independent), and pass@K of ``count``
  (among the K grids that were scored across views: all a poe rule can reach);
- gap closed: (pass@2 of the rule - pass@2 of count) / (pass@all - pass@2 of count);
- top-1 shape and cells: how often the rule's first answer has the truth's shape, and its mean
  share of right cells (0 for a wrong shape), over all test inputs: a graded signal of the
  ranking where a CPU-sized model gets few answers exactly right.

Then the same for the ensemble of all seeds' candidates (``arcpipe vote`` merged), and the extra
prediction time of cross-view scoring (first seed): the same views predicted with
``--cross-view-k 0`` and ``K``, alternately, ``--timing-repeats`` times (median ratio), and the
share of the K run spent in the scoring itself.

    python scripts/bench_ranking.py --data-root ../shared/data --work runs/ranking \
        [--seeds 0 1 2] [--steps 2000] [--json runs/ranking/results.json]

Runs already trained to ``--steps`` in ``--work`` are reused, so a stopped testbed resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe.arc.candidates import Candidates, merge_runs  # noqa: E402
from arcpipe.arc.vote import RULES, Votes, pass_at_k, vote  # noqa: E402
from arcpipe.config import load_config  # noqa: E402
from arcpipe.data.build import BuildOptions, build_arc_dataset  # noqa: E402
from arcpipe.data.dataset import Dataset  # noqa: E402
from arcpipe.predict import PredictOptions, PredictResult, predict  # noqa: E402
from arcpipe.runtime import tune_allocator  # noqa: E402
from arcpipe.train.evaluate import split_solutions  # noqa: E402
from arcpipe.train.loop import RunOptions, train  # noqa: E402

# The recipe: the tiny CPU recipe (hidden 128, 2 layers, T=1, n=2, N_sup 2, batch 32, lr 1e-3,
# puzzle lr 3e-2, no EMA) for --steps steps, evaluated every 500 steps (the report's curves).
RECIPE = "tiny"
RECIPE_SET = ("train.epochs=100000", "train.eval_interval=500")
ALL = 1 << 30  # "k" of pass@all: every candidate


def small_tasks(root: Path, max_size: int) -> list[Path]:
    """ARC-AGI-1 evaluation task files whose every grid fits ``max_size x max_size``."""
    chosen = []
    for path in sorted((root / "arc-agi-1" / "evaluation").glob("*.json")):
        task = orjson.loads(path.read_bytes())
        grids = [g for pair in task["train"] + task["test"] for g in pair.values()]
        if all(len(g) <= max_size and len(g[0]) <= max_size for g in grids):
            chosen.append(path)
    return chosen


def build(args: argparse.Namespace) -> Path:
    """The testbed dataset ``work/data``; an existing identical one is kept (runs use it)."""
    tasks, data = args.work / "tasks", args.work / "data"
    tasks.mkdir(parents=True, exist_ok=True)
    chosen = small_tasks(args.data_root, args.max_size)
    for path in chosen:
        copy = tasks / path.name
        if not copy.exists() or copy.read_bytes() != path.read_bytes():
            shutil.copy(path, copy)
    for stale in set(tasks.glob("*.json")) - {tasks / p.name for p in chosen}:
        stale.unlink()
    options = BuildOptions(num_aug=args.num_aug, canvas=args.max_size, seed=42)
    fresh = args.work / "data.new"
    build_arc_dataset([], tasks, fresh, options, overwrite=True, quiet=True)
    manifest = "manifest.json"
    if data.exists() and (data / manifest).read_bytes() == (fresh / manifest).read_bytes():
        shutil.rmtree(fresh)
    else:
        shutil.rmtree(data, ignore_errors=True)
        fresh.rename(data)
    return data


def train_seed(args: argparse.Namespace, data: Path, seed: int) -> tuple[Path, float]:
    """Train (or reuse) the recipe at ``seed``; returns the run and its training seconds."""
    run = args.work / f"seed-{seed}"
    overrides = [*RECIPE_SET, *args.set, f"train.seed={seed}"]
    config = load_config(args.config, overrides)
    last = run / "last" / "state.json"
    if last.exists() and json.loads(last.read_text())["step"] >= args.steps:
        return run, float(json.loads(last.read_text()).get("elapsed_seconds", 0.0))
    start = time.perf_counter()
    options = RunOptions(
        data,
        config,
        run,
        resume=True,
        overrides=tuple(overrides),
        max_steps=args.steps,
        quiet=not args.verbose,
    )
    train(options)
    return run, time.perf_counter() - start


def predict_seed(
    args: argparse.Namespace, data: Path, run: Path, k: int, name: str
) -> PredictResult:
    """``arcpipe predict`` of every test view."""
    out = run / f"{name}.json"
    options = PredictOptions(
        data,
        out,
        run=run,
        checkpoint="last",
        cross_view_k=k,
        batch_size=args.batch_size,
        device="cpu",
        quiet=True,
    )
    return predict(options)


def top1_quality(votes: Votes, solutions: dict) -> dict:
    """Over all test inputs: how often the rule's first answer has the truth's shape, and its
    mean share of right cells (0 for a wrong shape): a graded signal where few are exact."""
    shape, cells = [], []
    for t, task_id in enumerate(votes.candidates.task_ids):
        for i, truth in enumerate(solutions[task_id]):
            top = votes.top(t, i, 1)
            grid = votes.grid(top[0]) if top else np.zeros((0, 0), np.uint8)
            same = grid.shape == truth.shape
            shape.append(same)
            cells.append(float((grid == truth).mean()) if same else 0.0)
    return {"top1_shape": float(np.mean(shape)), "top1_cells": float(np.mean(cells))}


def scores(candidates: Candidates, solutions: dict, k: int) -> dict:
    """pass@1 / pass@2 per rule, pass@all, count's pass@K, gap closed, top-1 quality, voting s."""
    result = {}
    for rule in RULES:
        start = time.perf_counter()
        votes = vote(candidates, rule)
        seconds = time.perf_counter() - start
        result[rule] = {
            **pass_at_k(votes, solutions, ks=(1, 2, k, ALL)),
            **top1_quality(votes, solutions),
            "vote_s": seconds,
        }
    base = result["count"]
    result["pass@all"] = base[f"pass@{ALL}"]
    result[f"count pass@{k}"] = base[f"pass@{k}"]
    gap = result["pass@all"] - base["pass@2"]
    for rule in RULES:
        closed = (result[rule]["pass@2"] - base["pass@2"]) / gap if gap > 0 else None
        result[rule]["gap_closed"] = closed
    return result


def timing(args: argparse.Namespace, data: Path, run: Path) -> dict:
    """Seconds with and without cross-view scoring, alternating; median ratio."""
    plain, scored, scoring = [], [], []
    for _ in range(args.timing_repeats):
        plain.append(predict_seed(args, data, run, 0, "timing-k0").seconds)
        result = predict_seed(args, data, run, args.cross_view_k, "timing-k")
        scored.append(result.seconds)
        scoring.append(result.scoring_seconds / result.seconds)
    ratios = [s / p for s, p in zip(scored, plain)]
    return {
        "k0_s": plain,
        "k_s": scored,
        "extra": float(np.median(ratios)) - 1.0,
        "scoring_share": float(np.median(scoring)),
    }


def table(rows: list[tuple[str, dict]], k: int) -> str:
    """The markdown table of docs/benchmarks.md: one row per (seed, rule)."""
    lines = [
        f"| seed | rule | pass@1 | pass@2 | pass@all | count pass@{k} | gap closed "
        "| top-1 shape | top-1 cells |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in rows:
        for rule in RULES:
            r = result[rule]
            closed = "n/a" if r["gap_closed"] is None else f"{r['gap_closed']:+.2f}"
            lines.append(
                f"| {name} | {rule} | {r['pass@1']:.3f} | {r['pass@2']:.3f} | "
                f"{result['pass@all']:.3f} | {result[f'count pass@{k}']:.3f} | {closed} | "
                f"{r['top1_shape']:.3f} | {r['top1_cells']:.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("runs/ranking"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--max-size", type=int, default=10)
    parser.add_argument("--num-aug", type=int, default=8)
    parser.add_argument("--cross-view-k", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--config", default=RECIPE)
    parser.add_argument("--set", action="append", default=[], help="extra config override")
    parser.add_argument("--timing-repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    tune_allocator()
    data = build(args)
    dataset = Dataset.open(data)
    solutions = split_solutions(dataset, "test")
    tests = sum(len(v) for v in solutions.values())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {len(solutions)} tasks, {tests} test inputs, "
        f"{len(dataset.examples('test'))} test views ({args.num_aug + 1} per input); recipe "
        f"{args.config} {' '.join([*RECIPE_SET, *args.set])}, {args.steps} steps",
        flush=True,
    )
    results, files = [], []
    for seed in args.seeds:
        run, train_s = train_seed(args, data, seed)
        predict_s = predict_seed(args, data, run, args.cross_view_k, "submission").seconds
        files.append(run / "submission.candidates.npz")
        result = scores(Candidates.load(files[-1]), solutions, args.cross_view_k)
        result.update(seed=seed, train_s=train_s, predict_s=predict_s)
        if seed == args.seeds[0]:  # the time does not depend on the seed: measured once
            result.update(timing(args, data, run))
        results.append((f"{seed}", result))
        print(json.dumps({"seed": seed, **{r: result[r] for r in RULES}}), flush=True)
    ensemble = scores(merge_runs(files), solutions, args.cross_view_k)
    results.append((f"ensemble of {len(files)}", ensemble))
    print(table(results, args.cross_view_k))
    for name, r in results[:-1]:
        print(f"seed {name}: train {r['train_s']:.0f} s, predict {r['predict_s']:.1f} s")
    r = results[0][1]
    print(
        f"cross-view scoring K={args.cross_view_k} (seed {args.seeds[0]}): {r['extra']:+.1%} "
        f"prediction time (K=0 {np.median(r['k0_s']):.2f} s, K {np.median(r['k_s']):.2f} s, "
        f"median of {args.timing_repeats} alternating runs); the scoring itself "
        f"{r['scoring_share']:.1%} of the K run"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(results), indent=1))


if __name__ == "__main__":
    main()
