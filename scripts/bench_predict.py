"""Benchmark prediction throughput (views/s) at full N_sup, and what --halt-early saves.

Part 1 (throughput): untrained models of the paper's ARC config, a hidden-128 config and the
tiny recipe, on test views of a dataset built from the sample tasks on the 30x30 canvas (the tiny
recipe on its 10x10 canvas), 16 (or the recipe's) supervision steps per view, batches of 4 and 16.
The reference's inference on this machine class (its code, float32, eager, 2 threads, 16 ACT steps
per view): paper config 0.022 views/s at batch 4; hidden 128: 0.17 views/s at batch 4, 0.13 at 16.

Part 2 (--halt-early): a trained run (``--run``, e.g. the demo's) predicted with and without
early halting on its dataset's test split: views/s, mean steps, and per-view exact accuracy.

    python scripts/bench_predict.py [--batches 4 16] \
        [--run arcpipe-demo/run --data arcpipe-demo/data]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe.config import ModelConfig, load_config  # noqa: E402
from arcpipe.data.build import BuildOptions, build_arc_dataset  # noqa: E402
from arcpipe.data.dataset import Dataset  # noqa: E402
from arcpipe.model.trm import TRM  # noqa: E402
from arcpipe.predict import predict_candidates, run_views, view_rows  # noqa: E402
from arcpipe.runtime import tune_allocator  # noqa: E402
from arcpipe.train.checkpoint import (  # noqa: E402
    dataset_identity,
    load_checkpoint,
    model_from_checkpoint,
)

REFERENCE_VIEWS_PER_S = {("paper", 4): 0.022, ("hidden 128", 4): 0.17, ("hidden 128", 16): 0.13}


def throughput(model: TRM, dataset: Dataset, batch: int, repeats: int, warm_up: bool) -> float:
    """Views per second of full-N_sup prediction (median over ``repeats`` batches)."""
    rows = np.arange(batch) % len(dataset.examples("test"))
    if warm_up:
        run_views(model, dataset, "test", rows, torch.device("cpu"))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_views(model, dataset, "test", rows, torch.device("cpu"))
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times))


def part_throughput(batches: list[int], repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sample = REPO / "data" / "sample"
        for canvas in (30, 10):
            build_arc_dataset(
                [sample / "training"],
                sample / "evaluation",
                Path(tmp) / f"d{canvas}",
                BuildOptions(num_aug=8, canvas=canvas),
                quiet=True,
            )
        big, small = Dataset.open(Path(tmp) / "d30"), Dataset.open(Path(tmp) / "d10")
        models = {
            "paper": (ModelConfig(), big),
            "hidden 128": (ModelConfig(hidden_size=128, num_heads=4, puzzle_emb_dim=128), big),
            "tiny": (load_config("tiny").model, small),
        }
        print("| config | batch | views/s | s/view | reference views/s | speed-up |")
        print("|---|---|---|---|---|---|")
        for name, (cfg, ds) in models.items():
            model = TRM(cfg, ds.vocab_size, ds.seq_len, ds.num_puzzle_identifiers).eval()
            for batch in batches if name != "paper" else batches[:1]:  # paper: ~3 min a batch
                rate = throughput(
                    model, ds, batch, repeats if name != "paper" else 1, warm_up=name != "paper"
                )
                ref = REFERENCE_VIEWS_PER_S.get((name, batch))
                gain = f"{rate / ref:.2f}x" if ref else ""
                print(
                    f"| {name} | {batch} | {rate:.3f} | {1 / rate:.1f} | {ref or ''} | {gain} |",
                    flush=True,
                )


def part_halt_early(run: Path, data: Path, batch: int) -> None:
    dataset = Dataset.open(data)
    ckpt = load_checkpoint(run / "last")
    model = model_from_checkpoint(ckpt, dataset_identity(dataset), torch.device("cpu"))
    rows = view_rows(dataset, "test")
    print("| mode | views | seconds | views/s | mean steps | exact per view |")
    print("|---|---|---|---|---|---|")
    for halt_early in (False, True):
        start = time.perf_counter()
        _, metrics = predict_candidates(
            model,
            dataset,
            "test",
            rows,
            batch,
            torch.device("cpu"),
            halt_early=halt_early,
            loss_kind=ckpt.config.train.loss,
        )
        seconds = time.perf_counter() - start
        print(
            f"| {'--halt-early' if halt_early else 'full N_sup'} | {len(rows)} | {seconds:.1f} | "
            f"{len(rows) / seconds:.1f} | {metrics['mean_steps']:.2f} | "
            f"{metrics['exact_accuracy']:.3f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", type=Path, help="a trained run for the --halt-early part")
    parser.add_argument("--data", type=Path, help="its dataset")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    tune_allocator()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, eager")
    with torch.no_grad():
        if not args.skip_throughput:
            part_throughput(args.batches, args.repeats)
        if args.run is not None:
            part_halt_early(args.run, args.data, batch=32)


if __name__ == "__main__":
    main()
