"""Measure the activation memory one training step keeps for its backward pass, per example.

Runs one supervision step's forward (T cycles, the last differentiated; for URM's configs the
last n of T n loops) of a shipped config on the CPU, under bfloat16 autocast (what GPUs run) and
in float32, and adds up the distinct storages autograd keeps for the backward pass
(``torch.autograd.graph.saved_tensors_hooks``), parameters and autocast's weight copies left out.
This is the memory that grows with the batch; a GPU holds it at the peak of every step, beside
weights, optimizer state and workspace.

    python scripts/bench_memory.py [--config arc1 urm_arc1] [--batch 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe.arc.encode import VOCAB_SIZE  # noqa: E402
from arcpipe.config import load_config  # noqa: E402
from arcpipe.model.memory import saved_activation_bytes  # noqa: E402
from arcpipe.model.trm import TRM  # noqa: E402
from arcpipe.precision import autocast  # noqa: E402
from arcpipe.puzzles.build import MAZE_VOCAB, SUDOKU_VOCAB  # noqa: E402

# (vocabulary, board positions) of each dataset kind.
BOARDS = {
    "arc": (VOCAB_SIZE, 900),
    "sudoku": (SUDOKU_VOCAB["size"], 81),
    "maze": (MAZE_VOCAB["size"], 900),
}


def saved_bytes_per_example(model: TRM, batch: int, dtype: torch.dtype) -> float:
    """Activation bytes kept for the backward pass of one supervision step, per example."""
    model.compute_dtype = dtype
    inputs = torch.randint(0, model.vocab_size, (batch, model.seq_len))
    puzzle_ids = torch.ones(batch, dtype=torch.long)

    def step() -> None:
        with autocast(torch.device("cpu"), dtype):
            model(model.initial_state(batch), inputs, puzzle_ids)

    return saved_activation_bytes(step, model.parameters()) / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=["arc1", "sudoku_mlp"])
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    print("| config | dtype | kept for backward, per example | at 96 examples |")
    print("|---|---|---|---|")
    for name in args.config:
        config = load_config(name)
        kind = "sudoku" if "sudoku" in name else "maze" if "maze" in name else "arc"
        model = TRM(config.model, *BOARDS[kind], num_puzzle_ids=2)
        for dtype in (torch.bfloat16, torch.float32):
            per_example = saved_bytes_per_example(model, args.batch, dtype)
            print(
                f"| {name} | {str(dtype).split('.')[-1]} | {per_example / 2**20:.0f} MiB "
                f"| {96 * per_example / 2**30:.1f} GiB |",
                flush=True,
            )


if __name__ == "__main__":
    main()
