"""Compare the voting rules and ``--halt-early`` on a split whose answers are known (issue 4).

Loads a trained run's checkpoint (EMA weights), predicts every view of the validation split (or
of the test split when its outputs are known) twice, at full N_sup and with ``halt_early``, and
scores the same candidates under each voting rule (``count``, the reference's; ``q_weighted``;
``consistency``; ``poe`` and ``poe_count`` from the cross-view scores of the top
``--cross-view-k`` grids). Prints, per setting, the seconds, mean supervision steps per view,
per-view exact accuracy, and pass@1 / pass@2 per rule (per-task average, as ARC Prize scores),
plus how often the rules disagree on the first attempt.

    python scripts/bench_vote_rules.py --run RUN --data DATA [--split auto|val|test] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe.arc.vote import RULES, Votes, pass_at_k, vote  # noqa: E402
from arcpipe.data.dataset import Dataset  # noqa: E402
from arcpipe.predict import predict_candidates, resolve_checkpoint, view_rows  # noqa: E402
from arcpipe.runtime import tune_allocator  # noqa: E402
from arcpipe.train.checkpoint import (  # noqa: E402
    inference_model,
    load_checkpoint,
)
from arcpipe.train.evaluate import eval_split, split_solutions  # noqa: E402


def first_attempts(votes: Votes) -> dict[tuple[int, int], bytes]:
    """The top-ranked grid of every test input, as bytes with its shape, for comparisons."""
    top = {}
    for g in np.flatnonzero(votes.rank == 0):
        grid = votes.grid(int(g))
        top[(int(votes.task[g]), int(votes.test[g]))] = bytes(grid.shape) + grid.tobytes()
    return top


def compare(
    dataset: Dataset, split: str, model, device, batch: int, halt_early: bool, k: int
) -> dict:
    rows = view_rows(dataset, split)
    start = time.perf_counter()
    candidates, metrics = predict_candidates(
        model, dataset, split, rows, batch, device, halt_early=halt_early, cross_view_k=k
    )
    seconds = time.perf_counter() - start
    solutions = split_solutions(dataset, split)
    result = {"halt_early": halt_early, "views": len(rows), "seconds": seconds, **metrics}
    votes = {rule: vote(candidates, rule) for rule in RULES}  # same groups, ranked differently
    firsts = {rule: first_attempts(v) for rule, v in votes.items()}
    for rule in RULES:
        result[rule] = pass_at_k(votes[rule], solutions, ks=(1, 2))
    inputs = sorted(firsts["count"])
    result["test_inputs"] = len(inputs)
    result["distinct_answers_per_input"] = len(votes["count"].rank) / max(1, len(inputs))
    for rule in RULES[1:]:
        result[f"first_attempt_differs_{rule}"] = sum(
            firsts[rule].get(i) != firsts["count"][i] for i in inputs
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--split", default="auto", choices=["auto", "val", "test"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cross-view-k", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    tune_allocator()
    device = torch.device(args.device)
    dataset = Dataset.open(args.data)
    split = eval_split(dataset, args.split)
    if split is None:
        sys.exit(f"{args.data}: no validation split and no test split with known outputs")
    ckpt = load_checkpoint(resolve_checkpoint(args.run, args.checkpoint))
    model = inference_model(ckpt, dataset, device)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; checkpoint {ckpt.path} (step {ckpt.state['step']}); "
        f"split {split}; N_sup {model.config.supervision_steps}"
    )
    results = [
        compare(dataset, split, model, device, args.batch_size, h, args.cross_view_k)
        for h in (False, True)
    ]
    print(
        "| setting | views | s | mean steps | view exact | "
        + " | ".join(f"{r} pass@1 / pass@2" for r in RULES)
        + " |"
    )
    print("|---" * (5 + len(RULES)) + "|")
    for r in results:
        cells = [f"{r[rule]['pass@1']:.3f} / {r[rule]['pass@2']:.3f}" for rule in RULES]
        name = "--halt-early" if r["halt_early"] else "full N_sup"
        print(
            f"| {name} | {r['views']} | {r['seconds']:.1f} | {r['mean_steps']:.2f} | "
            f"{r['exact_accuracy']:.3f} | " + " | ".join(cells) + " |"
        )
    for r in results:
        differs = ", ".join(f"{rule} {r[f'first_attempt_differs_{rule}']}" for rule in RULES[1:])
        print(
            f"{'halt-early' if r['halt_early'] else 'full N_sup'}: {r['test_inputs']} test inputs "
            f"in {r[RULES[0]]['scored_tasks']} tasks, {r['distinct_answers_per_input']:.1f} "
            f"distinct answers per input; first attempt differs from count's: {differs}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
