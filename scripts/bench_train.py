"""Benchmark one training step (one supervision step: forward, backward, optimizers, EMA).

Runs the real training step (``Trainer.train_step``) on a dataset built from the project's
sample tasks on the 30x30 canvas (sequence 900 + 16 prefix positions, as ARC), for the paper's ARC
config and a hidden-128 variant, at the given batch sizes. Reports seconds per step, examples/s,
achieved model FLOP/s (matrix products counted analytically; median step time) and its ratio
to a large float32 matmul on the same machine. The reference's figures (its code, float32,
eager, 2 threads) are printed beside ours.

    python scripts/bench_train.py [--batches 4 16] [--steps 3] [--compile] [--device cpu]
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

from arcpipe.arc.build import BuildOptions, build_arc_dataset  # noqa: E402
from arcpipe.config import Config, ModelConfig, TrainConfig  # noqa: E402
from arcpipe.data.dataset import Dataset  # noqa: E402
from arcpipe.train import distributed  # noqa: E402
from arcpipe.train.loop import RunOptions, Trainer  # noqa: E402

# Reference seconds per training step on this machine class (issue 3): (hidden, batch) -> s.
REFERENCE_S_PER_STEP = {(512, 4): 13.0, (512, 16): 60.0, (128, 4): 2.04, (128, 16): 8.7}


def step_flops(model: ModelConfig, batch: int, seq_len: int, vocab: int) -> float:
    """Matrix-product FLOPs of one training step (forward T(n+1) calls, backward n+1 calls x 2)."""
    positions = seq_len + model.puzzle_emb_len
    d = model.hidden_size
    width = 256 * -(-round(model.expansion * d * 2 / 3) // 256)
    per_block = 2 * positions * (3 * d * width)  # SwiGLU: gate+up (2 d w) and down (w d)
    if model.token_mixer == "attention":
        per_block += 2 * positions * (4 * d * d)  # qkv and output projections
        per_block += 4 * positions * positions * d  # QK^T and AV
    else:
        mixer_width = 256 * -(-round(model.expansion * positions * 2 / 3) // 256)
        per_block += 2 * d * (3 * positions * mixer_width)
    call = model.num_layers * per_block
    calls_forward = model.cycles * (model.latent_steps + 1)
    calls_backward = 2 * (model.latent_steps + 1)
    head = 2 * seq_len * d * vocab
    return batch * ((calls_forward + calls_backward) * call + 3 * head)


def matmul_flops_per_second(device: torch.device, n: int = 4096, repeat: int = 5) -> float:
    """Achieved FLOP/s of a large float32 matmul: the machine's practical ceiling."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    start = time.perf_counter()
    for _ in range(repeat):
        c = a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    del c
    return 2 * n**3 * repeat / (time.perf_counter() - start)


def bench(
    dataset: Dataset, hidden: int, heads: int, batch: int, steps: int, compile_: bool, device: str
) -> dict:
    torch._dynamo.reset()  # compiled graphs of an earlier config would count against the limit
    model = ModelConfig(hidden_size=hidden, num_heads=heads, puzzle_emb_dim=hidden)
    train = TrainConfig(global_batch_size=batch, compile=compile_, ema=True, lr_warmup_steps=10)
    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(dataset.path, Config(model=model, train=train), Path(tmp), quiet=True)
        trainer = Trainer(options, distributed.setup(device), dataset)
        trainer.train_step()  # warm-up (and compilation)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            trainer.train_step()
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))  # robust to other tenants' bursts on a shared machine
    flops = step_flops(model, batch, dataset.seq_len, dataset.vocab_size)
    return {
        "hidden": hidden,
        "batch": batch,
        "s_per_step": seconds,
        "examples_per_s": batch / seconds,
        "flops_per_step": flops,
        "achieved_flop_s": flops / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 128])
    parser.add_argument("--heads-128", type=int, default=4, help="heads of the hidden-128 config")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    torch.manual_seed(0)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sample = REPO / "data" / "sample"
        data = Path(tmp) / "data"
        build_arc_dataset(
            [sample / "training"],
            sample / "evaluation",
            data,
            BuildOptions(num_aug=8, canvas=30),
            quiet=True,
        )
        dataset = Dataset.open(data)
        peak = matmul_flops_per_second(torch.device(args.device))
        print(f"large float32 matmul: {peak / 1e9:.1f} GFLOP/s")
        print(
            "| config | batch | s/step | examples/s | GFLOP/s | of matmul | reference s/step "
            "| speed-up |"
        )
        print("|---|---|---|---|---|---|---|---|")
        rows = []
        for hidden in args.hidden:
            for batch in args.batches:
                heads = 8 if hidden == 512 else args.heads_128
                r = bench(dataset, hidden, heads, batch, args.steps, args.compile, args.device)
                ref = REFERENCE_S_PER_STEP.get((hidden, batch))
                r["reference_s_per_step"] = ref
                r["matmul_ratio"] = r["achieved_flop_s"] / peak
                rows.append(r)
                speedup = f"{ref / r['s_per_step']:.2f}x" if ref else ""
                print(
                    f"| hidden {hidden} | {batch} | {r['s_per_step']:.2f} | "
                    f"{r['examples_per_s']:.2f} | {r['achieved_flop_s'] / 1e9:.1f} | "
                    f"{r['matmul_ratio']:.0%} | {ref or ''} | {speedup} |",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps({"matmul_flop_s": peak, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
