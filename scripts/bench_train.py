"""Benchmark one training step (one supervision step: forward, backward, optimizers, EMA).

Runs the real training step (``Trainer.train_step``) on a dataset built from the project's
sample tasks on the 30x30 canvas (sequence 900 + 16 prefix positions, as ARC), for the paper's ARC
config and a hidden-128 variant, at the given batch sizes. Reports seconds per step, examples/s,
achieved model FLOP/s (matrix products counted analytically; median step time), its ratio to a
large matmul in the compute dtype on the same device (float32 on CPUs, bfloat16 on GPUs), the
model FLOP utilisation against ``--peak-tflops`` when given, and the peak GPU memory. On a CPU the
reference's figures (its code, float32, eager, 2 threads) are printed beside ours.

    python scripts/bench_train.py [--batches 4 16] [--steps 3] [--compile] [--device cpu]
    python scripts/bench_train.py --device cuda --hidden 512 --batches 96 192 --compile \\
        --peak-tflops 989
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

from arcpipe import precision  # noqa: E402
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


def matmul_flops_per_second(device: torch.device, dtype: torch.dtype) -> float:
    """Achieved FLOP/s of a large matmul in the training's compute dtype: the practical ceiling."""
    n, repeat = (8192, 20) if device.type == "cuda" else (4096, 5)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3 if device.type == "cuda" else 1):  # warm-up (and GPU clocks)
        a @ b
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeat):
        a @ b
    synchronize(device)
    return 2 * n**3 * repeat / (time.perf_counter() - start)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(
    dataset: Dataset, hidden: int, heads: int, batch: int, steps: int, compile_: bool, device: str
) -> dict:
    torch._dynamo.reset()  # compiled graphs of an earlier config would count against the limit
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    model = ModelConfig(hidden_size=hidden, num_heads=heads, puzzle_emb_dim=hidden)
    train = TrainConfig(global_batch_size=batch, compile=compile_, ema=True, lr_warmup_steps=10)
    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(dataset.path, Config(model=model, train=train), Path(tmp), quiet=True)
        trainer = Trainer(options, distributed.setup(device), dataset)
        trainer.train_step()  # warm-up (and compilation)
        synchronize(trainer.device)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            trainer.train_step()
            synchronize(trainer.device)
            times.append(time.perf_counter() - start)
        seconds = float(np.median(times))  # robust to other tenants' bursts on a shared machine
        peak_memory = (
            torch.cuda.max_memory_allocated(trainer.device) if trainer.device.type == "cuda" else 0
        )
    flops = step_flops(model, batch, dataset.seq_len, dataset.vocab_size)
    return {
        "hidden": hidden,
        "batch": batch,
        "s_per_step": seconds,
        "examples_per_s": batch / seconds,
        "flops_per_step": flops,
        "achieved_flop_s": flops / seconds,
        "peak_memory_bytes": peak_memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 128])
    parser.add_argument("--heads-128", type=int, default=4, help="heads of the hidden-128 config")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        help="the device's nominal dense peak in the compute dtype (H200 bf16: 989), for MFU",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    dtype = precision.compute_dtype(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    print(
        f"machine: {name}, {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}, compute dtype {dtype}"
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
        ceiling = matmul_flops_per_second(device, dtype)
        print(f"large {dtype} matmul: {ceiling / 1e9:.1f} GFLOP/s")
        print(
            "| config | batch | s/step | examples/s | GFLOP/s | of matmul | MFU | peak memory "
            "| reference s/step | speed-up |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        rows = []
        for hidden in args.hidden:
            for batch in args.batches:
                heads = 8 if hidden == 512 else args.heads_128
                r = bench(dataset, hidden, heads, batch, args.steps, args.compile, args.device)
                # The reference's figures are CPU float32 ones: compare only like with like.
                ref = REFERENCE_S_PER_STEP.get((hidden, batch)) if device.type == "cpu" else None
                r["reference_s_per_step"] = ref
                r["matmul_ratio"] = r["achieved_flop_s"] / ceiling
                r["mfu"] = (
                    r["achieved_flop_s"] / (args.peak_tflops * 1e12) if args.peak_tflops else None
                )
                rows.append(r)
                mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else ""
                memory = (
                    f"{r['peak_memory_bytes'] / 2**30:.1f} GiB" if r["peak_memory_bytes"] else ""
                )
                speedup = f"{ref / r['s_per_step']:.2f}x" if ref else ""
                print(
                    f"| hidden {hidden} | {batch} | {r['s_per_step']:.3f} | "
                    f"{r['examples_per_s']:.2f} | {r['achieved_flop_s'] / 1e9:.1f} | "
                    f"{r['matmul_ratio']:.0%} | {mfu} | {memory} | {ref or ''} | {speedup} |",
                    flush=True,
                )
    if args.json:
        summary = {"device": name, "dtype": str(dtype), "matmul_flop_s": ceiling, "rows": rows}
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
