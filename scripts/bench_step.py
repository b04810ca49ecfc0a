"""Step time of config variants side by side: e.g. ``rope2d`` against ``rope``, NorMuon against
AdamATan2. Same recipe, data and seed; only the variant's ``--set`` items differ.

The real training step (``Trainer.train_step``) of each variant, in turns (``--rounds`` times
over, ``--steps`` timed steps each after ``--warmup``), so that a shared machine's load falls on
every variant alike. Time is this process's CPU time on one thread (robust to other tenants);
reported: the median CPU seconds per step of each variant and its ratio to the first variant,
per round and over all rounds. The data: the protocol's set A (``scripts/bench_protocol.py``)
built with ``--num-aug 16 --canvas 30``, or the project's sample tasks on the 30x30 canvas with
``--sample``.

    python scripts/bench_step.py --recipe tiny --set model.board=boxed \\
        --variant rope=model.pos_encodings=rope --variant rope2d=model.pos_encodings=rope2d
    python scripts/bench_step.py --recipe arc1 --sample --set train.global_batch_size=4 \\
        --variant rope=model.pos_encodings=rope --variant rope2d=model.pos_encodings=rope2d
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(REPO / "scripts"))

from arcpipe.config import load_config  # noqa: E402
from arcpipe.data.build import BuildOptions, build_arc_dataset  # noqa: E402
from arcpipe.data.dataset import Dataset  # noqa: E402
from arcpipe.train import distributed  # noqa: E402
from arcpipe.train.trainer import RunOptions, Trainer  # noqa: E402


def dataset(args, work: Path) -> Dataset:
    """Set A of the protocol, or the sample tasks, on the 30x30 canvas."""
    if args.sample:
        sample = REPO / "data" / "sample"
        build_arc_dataset(
            [sample / "training"], sample / "evaluation", work / "data", BuildOptions(num_aug=16)
        )
        return Dataset.open(work / "data")
    from bench_protocol import Arm, prepare

    arm = Arm.parse(f"x={args.recipe}")
    return Dataset.open(prepare("A", arm, args.data_root, work))


def trainer(args, data: Dataset, sets: list[str], work: Path) -> Trainer:
    config = load_config(args.recipe, [*args.set, *sets])
    options = RunOptions(data.path, config, work / "run", quiet=True, device="cpu")
    return Trainer(options, distributed.setup("cpu"), data)


def cpu_per_step(t: Trainer, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        start = time.process_time()
        t.train_step()
        times.append(time.process_time() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="tiny")
    parser.add_argument("--set", action="append", default=[], help="for every variant")
    parser.add_argument("--variant", action="append", required=True, help="NAME=KEY=VALUE[;...]")
    parser.add_argument("--sample", action="store_true", help="the sample tasks, not set A")
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"1 thread; load {os.getloadavg()}"
    )
    variants = {}
    for spec in args.variant:
        name, _, sets = spec.partition("=")
        variants[name] = sets.split(";")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = dataset(args, work)
        trainers = {n: trainer(args, data, s, work / n) for n, s in variants.items()}
        for t in trainers.values():
            cpu_per_step(t, args.warmup)
        times = {n: [] for n in variants}
        first = next(iter(variants))
        for r in range(args.rounds):
            medians = {}
            for name, t in trainers.items():
                round_times = cpu_per_step(t, args.steps)
                times[name] += round_times
                medians[name] = float(np.median(round_times))
            print(
                f"round {r + 1}: "
                + ", ".join(
                    f"{n} {m:.4f} s ({m / medians[first]:.3f}x)" for n, m in medians.items()
                ),
                flush=True,
            )
    overall = {n: float(np.median(v)) for n, v in times.items()}
    print(
        "all rounds (median CPU s/step): "
        + ", ".join(f"{n} {m:.4f} ({m / overall[first]:.3f}x)" for n, m in overall.items())
    )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
