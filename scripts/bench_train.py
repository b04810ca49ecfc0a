"""Benchmark one training step (one supervision step: forward, backward, optimizers, EMA).

Runs the real training step (``Trainer.train_step``) on a dataset built from the project's
sample tasks on the 30x30 canvas (900 board positions, as ARC), for TRM's paper ARC config
(``trm``, 16 prefix positions) and URM's (``urm``: the ``urm_arc1`` recipe's network, 1 prefix
position), each also at hidden 128, at the given batch sizes. The models are measured in turn,
``--rounds`` times over, so that a shared machine's load falls on both alike; the URM / TRM ratio
is printed per round. Reports seconds per step (median), examples/s, achieved model FLOP/s
(matrix products counted analytically), its ratio to a large matmul in the compute dtype on the
same device (float32 on CPUs, bfloat16 on GPUs), the model FLOP utilisation against
``--peak-tflops`` when given, and the peak GPU memory. On a CPU the reference's TRM figures (its
code, float32, eager, 2 threads) are printed beside ours.

    python scripts/bench_train.py [--models trm urm] [--batches 4 16] [--steps 3] [--rounds 2]
        [--compile] [--device cpu]
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
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe import precision  # noqa: E402
from arcpipe.config import Config, ModelConfig, TrainConfig, load_config  # noqa: E402
from arcpipe.data.build import BuildOptions, build_arc_dataset  # noqa: E402
from arcpipe.data.dataset import Dataset  # noqa: E402
from arcpipe.train import distributed  # noqa: E402
from arcpipe.train.trainer import RunOptions, Trainer  # noqa: E402

# Reference seconds per training step on this machine class (issue 3): (hidden, batch) -> s.
REFERENCE_S_PER_STEP = {(512, 4): 13.0, (512, 16): 60.0, (128, 4): 2.04, (128, 16): 8.7}


def network_config(model: str, hidden: int, heads: int) -> ModelConfig:
    """TRM's paper network (the defaults) or URM's (the urm_arc1 recipe), at width ``hidden``."""
    base = ModelConfig() if model == "trm" else load_config("urm_arc1").model
    return replace(base, hidden_size=hidden, num_heads=heads, puzzle_emb_dim=hidden)


def step_flops(model: ModelConfig, batch: int, seq_len: int, vocab: int) -> float:
    """Matrix-product FLOPs of one training step: the forward calls of f, the backward ones x 2.

    TRM: T(n+1) calls forward, n+1 backward; URM (state single): T n forward, n backward. URM's
    depthwise convolution (4 FLOPs per channel and position) is not a matrix product, not counted.
    """
    positions = seq_len + model.prefix_len
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
    per_cycle = model.latent_steps + (0 if model.state == "single" else 1)
    calls_forward = model.cycles * per_cycle
    calls_backward = 2 * per_cycle
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
    dataset: Dataset, model: ModelConfig, batch: int, steps: int, compile_: bool, device: str
) -> dict:
    """Seconds of ``steps`` training steps (after one warm-up step) of ``model`` at ``batch``."""
    torch._dynamo.reset()  # compiled graphs of an earlier config would count against the limit
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
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
        peak_memory = (
            torch.cuda.max_memory_allocated(trainer.device) if trainer.device.type == "cuda" else 0
        )
    return {"times": times, "peak_memory_bytes": peak_memory}


def summarise(dataset: Dataset, model: ModelConfig, batch: int, runs: list[dict]) -> dict:
    """One table row from the rounds of one configuration: median step time over all of them."""
    seconds = float(np.median([t for r in runs for t in r["times"]]))  # robust to others' bursts
    flops = step_flops(model, batch, dataset.seq_len, dataset.vocab_size)
    return {
        "hidden": model.hidden_size,
        "batch": batch,
        "s_per_step": seconds,
        "round_s_per_step": [float(np.median(r["times"])) for r in runs],
        "examples_per_s": batch / seconds,
        "flops_per_step": flops,
        "achieved_flop_s": flops / seconds,
        "peak_memory_bytes": max(r["peak_memory_bytes"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=["trm", "urm"], default=["trm", "urm"])
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 128])
    parser.add_argument("--heads-128", type=int, default=4, help="heads of the hidden-128 config")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=1, help="turns of every model, in order")
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
        f"{torch.get_num_threads()} threads, device {args.device}, compute dtype {dtype}, "
        f"{'compiled' if args.compile else 'eager'}"
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
            "| model | config | batch | s/step | examples/s | GFLOP/step | GFLOP/s | of matmul "
            "| MFU | peak memory | reference s/step | speed-up |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        rows = []
        for hidden in args.hidden:
            heads = 8 if hidden == 512 else args.heads_128
            for batch in args.batches:
                configs = {m: network_config(m, hidden, heads) for m in args.models}
                runs: dict[str, list[dict]] = {m: [] for m in args.models}
                for _ in range(args.rounds):
                    for m, config in configs.items():
                        runs[m].append(
                            bench(dataset, config, batch, args.steps, args.compile, args.device)
                        )
                for m, config in configs.items():
                    r = {"model": m, **summarise(dataset, config, batch, runs[m])}
                    rows.append(r)
                    print_row(r, ceiling, args.peak_tflops, device)
                if len(configs) == 2:
                    ratios = [
                        u / t
                        for t, u in zip(
                            rows[-2]["round_s_per_step"], rows[-1]["round_s_per_step"], strict=True
                        )
                    ]
                    print(
                        f"  URM / TRM step time, per round: {', '.join(f'{x:.2f}' for x in ratios)}"
                    )
    if args.json:
        summary = {"device": name, "dtype": str(dtype), "matmul_flop_s": ceiling, "rows": rows}
        args.json.write_text(json.dumps(summary, indent=2))


def print_row(r: dict, ceiling: float, peak_tflops: float | None, device: torch.device) -> None:
    """One markdown row; the reference's figures only for TRM on a CPU (its float32 runs)."""
    ref = None
    if device.type == "cpu" and r["model"] == "trm":
        ref = REFERENCE_S_PER_STEP.get((r["hidden"], r["batch"]))
    r["reference_s_per_step"] = ref
    r["matmul_ratio"] = r["achieved_flop_s"] / ceiling
    r["mfu"] = r["achieved_flop_s"] / (peak_tflops * 1e12) if peak_tflops else None
    mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else ""
    memory = f"{r['peak_memory_bytes'] / 2**30:.1f} GiB" if r["peak_memory_bytes"] else ""
    speedup = f"{ref / r['s_per_step']:.2f}x" if ref else ""
    print(
        f"| {r['model'].upper()} | hidden {r['hidden']} | {r['batch']} | {r['s_per_step']:.3f} | "
        f"{r['examples_per_s']:.2f} | {r['flops_per_step'] / 1e9:.1f} | "
        f"{r['achieved_flop_s'] / 1e9:.1f} | {r['matmul_ratio']:.0%} | {mfu} | {memory} | "
        f"{ref or ''} | {speedup} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
