"""Benchmark voting on the ARC-AGI-1 evaluation set at 1000 views per test input (~386k views).

Builds the ARC-AGI-1 preset, makes one simulated answer per test view (the true output in the
view's frame 40% of the time, one of a few wrong grids otherwise, so votes split realistically),
then times the two stages the reference's evaluator does together in Python (45.1 s for 385,815
rows, 114 us each): turning each view's board into a candidate (crop at EOS, undo dihedral and
colours) and voting + writing the two-attempt submission. Also checks the oracle share scores 1.0.

    python scripts/bench_vote.py --data-root ../shared/data [--num-aug 1000]
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

from arcpipe.arc.encode import grid_to_tokens  # noqa: E402
from arcpipe.arc.presets import PRESET_LEAKAGE, resolve_preset  # noqa: E402
from arcpipe.arc.score import load_solutions, score_submission  # noqa: E402
from arcpipe.arc.submission import submission_from_votes  # noqa: E402
from arcpipe.arc.vote import vote  # noqa: E402
from arcpipe.data.build import BuildOptions, build_arc_dataset  # noqa: E402
from arcpipe.data.dataset import Dataset  # noqa: E402
from arcpipe.predict import ViewOutputs, target_test_inputs, to_candidates  # noqa: E402

REFERENCE_SECONDS = 45.1  # crop + inverse + hash + vote of 385,815 rows in the reference


def simulated_boards(dataset: Dataset, solutions: dict, rng: np.random.Generator) -> np.ndarray:
    """One board per test view: the truth in the view's frame, or a wrong grid."""
    rows = len(dataset.examples("test"))
    boards = np.zeros((rows, dataset.seq_len), dtype=np.uint8)
    for row in range(rows):
        view = dataset.view("test", row)
        truth = solutions[view.task_id][view.pair_index]
        if rng.random() < 0.6:  # a wrong answer: the truth with one of three cells changed
            truth = truth.copy()
            truth.flat[rng.integers(0, 3) % truth.size] = (truth.flat[0] + 1) % 10
        boards[row] = grid_to_tokens(view.transform.view(truth), dataset.canvas)
    return boards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--num-aug", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=4096, help="views per candidates batch")
    args = parser.parse_args()

    sources = resolve_preset("arc-agi-1", args.data_root)
    with tempfile.TemporaryDirectory() as tmp:
        build_arc_dataset(
            sources.train,
            sources.eval,
            Path(tmp) / "ds",
            BuildOptions(num_aug=args.num_aug, leakage=PRESET_LEAKAGE),
            quiet=True,
        )
        dataset = Dataset.open(Path(tmp) / "ds")
        solutions = load_solutions(sources.eval)
        boards = simulated_boards(dataset, solutions, np.random.default_rng(0))
        rows = np.arange(len(boards))
        start = time.perf_counter()
        parts = []
        for lo in range(0, len(rows), args.chunk):
            chunk = rows[lo : lo + args.chunk]
            n = len(chunk)
            outputs = ViewOutputs(
                boards[chunk],
                np.zeros((n, dataset.seq_len), np.float32),
                np.full(n, 0.5, np.float32),
                np.zeros(n, bool),
                np.full(n, 16, np.int32),
            )
            parts.append(to_candidates(dataset, "test", chunk, outputs))
        from arcpipe.arc.candidates import Candidates

        candidates = Candidates.concat(parts)
        convert = time.perf_counter() - start
        start = time.perf_counter()
        votes = vote(candidates)
        submission = submission_from_votes(votes, target_test_inputs(dataset), k=2)
        voting = time.perf_counter() - start
        score = score_submission(submission, solutions)
    total = convert + voting
    print(f"views: {len(rows):,}")
    print(
        f"board -> candidate (crop, invert): {convert:.1f} s "
        f"({convert / len(rows) * 1e6:.0f} us/view)"
    )
    print(f"vote + submission: {voting:.2f} s ({voting / len(rows) * 1e6:.1f} us/view)")
    print(
        f"total {total:.1f} s vs reference {REFERENCE_SECONDS} s: {REFERENCE_SECONDS / total:.1f}x"
    )
    print(f"score of the simulated votes: {score.task_score:.4f} (per task)")


if __name__ == "__main__":
    main()
