"""Benchmark cross-view scoring at full scale: its time per view and the memory it holds.

The ARC-AGI-1 evaluation set at 1000 augmentations (385,814 views, 30x30 boards), visited in the
order ``arcpipe predict`` uses with cross-view scoring (:func:`arcpipe.predict.plan_batches`),
one simulated answer per view as in ``bench_vote.py`` and a per-cell log-probability table per
view (random values: the work does not depend on them). Times, per batch, the candidates step
``predict`` always does (crop, invert) and the cross-view step added on top (collect the tables,
vote each completed test input, score its top K grids under all its views), and tracks the
tables held at once (the memory bound). The model's own time per view is what this is compared
with (docs/benchmarks.md).

    python scripts/bench_crossview.py --data-root ../shared/data [--num-aug 1000] [--k 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe.arc.encode import VOCAB_SIZE  # noqa: E402
from arcpipe.arc.presets import PRESET_LEAKAGE, resolve_preset  # noqa: E402
from arcpipe.arc.score import load_solutions  # noqa: E402
from arcpipe.data.build import BuildOptions, build_arc_dataset  # noqa: E402
from arcpipe.data.dataset import Dataset  # noqa: E402
from arcpipe.predict import (  # noqa: E402
    ViewOutputs,
    make_scorer,
    plan_batches,
    to_candidates,
)

sys.path.insert(0, str(REPO / "scripts"))
from bench_vote import simulated_boards  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--num-aug", type=int, default=1000)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    sources = resolve_preset("arc-agi-1", args.data_root)
    with tempfile.TemporaryDirectory() as tmp:
        options = BuildOptions(num_aug=args.num_aug, leakage=PRESET_LEAKAGE)
        build_arc_dataset(sources.train, sources.eval, Path(tmp) / "ds", options, quiet=True)
        dataset = Dataset.open(Path(tmp) / "ds")
        boards = simulated_boards(dataset, load_solutions(sources.eval), np.random.default_rng(0))
        rows = np.arange(len(boards))
        batches = plan_batches(dataset, "test", rows, args.batch, 1, by_test_input=True)[0]
        scorer = make_scorer(dataset, "test", batches, args.k)
        rng = np.random.default_rng(1)
        logits = rng.standard_normal((args.batch, dataset.seq_len, VOCAB_SIZE))
        pool = (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).astype(np.float32)
        convert = score = 0.0
        held = scored = 0
        for chunk in batches:
            n = len(chunk)
            outputs = ViewOutputs(
                boards[chunk],
                np.zeros((n, dataset.seq_len), np.float32),
                np.full(n, 0.5),
                np.zeros(n, bool),
                np.full(n, 16, np.int32),
                pool[:n].copy(),
            )
            start = time.perf_counter()
            part = to_candidates(dataset, "test", chunk, outputs)
            middle = time.perf_counter()
            result = scorer.add(dataset, "test", chunk, outputs.tables, part)
            end = time.perf_counter()
            convert += middle - start
            score += end - middle
            scored += len(result[0])
            held = max(held, sum(len(e.tables) for e in scorer.open.values()))
        assert not scorer.open
    views = len(rows)
    table_bytes = dataset.seq_len * VOCAB_SIZE * 4
    print(f"views: {views:,} in {len(batches):,} batches of {args.batch}; K = {args.k}")
    print(f"candidates (crop, invert): {convert:.1f} s ({convert / views * 1e6:.0f} us/view)")
    print(
        f"cross-view scoring: {score:.1f} s ({score / views * 1e6:.0f} us/view), "
        f"{scored:,} grids scored"
    )
    print(
        f"tables held at most: {held:,} ({held * table_bytes / 2**20:.0f} MiB; all views would "
        f"be {views * table_bytes / 2**30:.1f} GiB)"
    )


if __name__ == "__main__":
    main()
