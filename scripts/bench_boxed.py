"""Boxed boards against the full canvas on the real preset datasets (arcpipe.data.layout).

Part 1 (always): for the ARC-AGI-1 and ARC-AGI-2 presets, the tokens per example of the training
mix (the epoch rule's weights: each task once per epoch, its variant's examples), full and boxed,
with and without the bucket padding, the bucket lengths and the filler share; the share of the
evaluation sets' test outputs inside their boxes, by the plain rule (demonstrations and test
inputs only) and by arcpipe's (with the predicted test-output sizes); tokens per test view.

Times on a CPU are CPU seconds of the process (all its threads), which other tenants of a shared
machine do not inflate as they do wall time; on a GPU, wall seconds.

Part 2 (``--train``): seconds per training step (the real ``Trainer.train_step``: forward,
backward, optimizers, EMA), full and boxed in the same run. A boxed step runs one bucket, drawn
in proportion to its examples per epoch, so its expected time is ``sum_b p_b t_b`` with ``t_b``
the median step time of bucket ``b``, measured bucket by bucket.

Part 3 (``--predict``): prediction views/s over the evaluation test views at full N_sup: one
supervision step without gradients per batch, timed per bucket, times N_sup (every step of a view
costs the same when nothing halts early), weighted by the views of each bucket.

    python scripts/bench_boxed.py --data-root ../shared/data [--train] [--predict] \
        [--hidden 512 128] [--batches 4 16] [--steps 2] [--device cpu]
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

from arcpipe.arc.presets import PRESET_LEAKAGE, resolve_preset  # noqa: E402
from arcpipe.arc.tasks import load_source  # noqa: E402
from arcpipe.config import Config, ModelConfig, TrainConfig  # noqa: E402
from arcpipe.data.build import BuildOptions, build_arc_dataset  # noqa: E402
from arcpipe.data.dataset import Dataset  # noqa: E402
from arcpipe.data.layout import Layout, padding_overhead, plan_buckets, task_box  # noqa: E402
from arcpipe.data.sampler import BucketedSampler, TrainSampler, encode_batch  # noqa: E402
from arcpipe.model.trm import TRM  # noqa: E402
from arcpipe.precision import autocast, compute_dtype  # noqa: E402
from arcpipe.predict import view_rows  # noqa: E402
from arcpipe.runtime import tune_allocator  # noqa: E402
from arcpipe.train import distributed  # noqa: E402
from arcpipe.train.trainer import RunOptions, Trainer  # noqa: E402

PRESETS = ("arc-agi-1", "arc-agi-2")
N_SUP = 16  # the paper's supervision steps per view
WARM_UP = 3  # untimed first steps of a run


# ----------------------------------------------------------------------------- part 1


def plain_box(task) -> tuple[int, int]:
    shapes = [p.input.shape for p in task.train + task.test] + [p.output.shape for p in task.train]
    return min(30, max(s[0] for s in shapes) + 1), min(30, max(s[1] for s in shapes) + 1)


def coverage(eval_source: Path) -> tuple[int, int, int]:
    """(test outputs, inside the plain box, inside arcpipe's box)."""
    total = plain = ours = 0
    for task in load_source(eval_source):
        demos = [(p.input.shape, p.output.shape) for p in task.train]
        box = task_box(demos, [p.input.shape for p in task.test], 30)
        for pair in task.test:
            need = (min(30, pair.output.shape[0] + 1), min(30, pair.output.shape[1] + 1))
            total += 1
            plain += need[0] <= plain_box(task)[0] and need[1] <= plain_box(task)[1]
            ours += need[0] <= box[0] and need[1] <= box[1]
    return total, plain, ours


def part_tokens(datasets: dict[str, Dataset], data_root: Path, buckets: int) -> None:
    print("\n## Tokens per example (puzzle prefix of 16 included)\n")
    print("| preset | full | boxed, no padding | boxed, bucketed | fillers | buckets |")
    print("|---|---|---|---|---|---|")
    for preset, dataset in datasets.items():
        every = TrainSampler(dataset, "train", 768, 0)
        cells = Layout(dataset, "boxed").task_cells()[every.tasks]
        weights = every.group_weights()
        lengths = plan_buckets(cells, weights, buckets)
        mean = (cells * weights).sum() / weights.sum()
        overhead = padding_overhead(cells, weights, lengths)
        print(
            f"| {preset} | {dataset.seq_len + 16} | {mean + 16:.0f} | "
            f"{mean / (1 - overhead) + 16:.0f} | {overhead:.1%} | {lengths.tolist()} |"
        )
    print("\n| preset | test outputs | inside the plain box | inside arcpipe's box | tokens/view |")
    print("|---|---|---|---|---|")
    for preset, dataset in datasets.items():
        total, plain, ours = coverage(resolve_preset(preset, data_root).eval)
        rows = view_rows(dataset, "test")
        views = Layout(dataset, "boxed").row_cells("test", rows).mean() + 16
        print(
            f"| {preset} evaluation | {total} | {plain} ({plain / total:.1%}) | "
            f"{ours} ({ours / total:.1%}) | {views:.0f} |"
        )


def model_flops(buckets: list[tuple[int, float]], per_view: bool) -> float:
    """Matrix-product FLOPs per example of the paper's ARC model over boards of the given
    (length, share) buckets: one training step, or one predicted view (N_sup steps forward)."""
    from bench_train import step_flops

    model = ModelConfig()
    call = sum(p * step_flops(model, 1, n, 12) / 25 for n, p in buckets)  # one application
    return N_SUP * model.cycles * (model.latent_steps + 1) * call if per_view else 25 * call


def part_kaggle(challenges: Path, buckets: int) -> None:
    """The Kaggle flow's two heavy phases on the placeholder test tasks, full vs boxed FLOPs."""
    with tempfile.TemporaryDirectory() as tmp:
        build_arc_dataset([], challenges, Path(tmp) / "d", BuildOptions(num_aug=1000), quiet=True)
        dataset = Dataset.open(Path(tmp) / "d")
        every = TrainSampler(dataset, "train", 384, 0)
        cells = Layout(dataset, "boxed").task_cells()[every.tasks]
        weights = every.group_weights()
        lengths = plan_buckets(cells, weights, buckets)
        train_share = [
            (int(n), float(weights[np.searchsorted(lengths, cells) == b].sum() / weights.sum()))
            for b, n in enumerate(lengths)
        ]
        layout = Layout(dataset, "boxed")
        views = [(len(c), b.length) for c, b in layout.batches("test", view_rows(dataset, "test"),
                                                              10**9, buckets)]  # fmt: skip
        total = sum(n for n, _ in views)
        view_share = [(length, n / total) for n, length in views]
    full = [(dataset.seq_len, 1.0)]
    print("\n## The Kaggle flow on the placeholder test tasks (analytic FLOPs, paper model)\n")
    print("| phase | full | boxed | ratio |\n|---|---|---|---|")
    for phase, share, per_view in (
        ("post-training, GFLOP per example per step", train_share, False),
        ("prediction, TFLOP per view (N_sup 16)", view_share, True),
    ):
        unit = 1e12 if per_view else 1e9
        a, b = model_flops(full, per_view) / unit, model_flops(share, per_view) / unit
        print(f"| {phase} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")


# ----------------------------------------------------------------------------- part 2


def trainer(dataset: Dataset, hidden: int, batch: int, board: str, device: str) -> Trainer:
    heads = 8 if hidden == 512 else 4
    model = ModelConfig(hidden_size=hidden, num_heads=heads, puzzle_emb_dim=hidden, board=board)
    train = TrainConfig(global_batch_size=batch, ema=True, lr_warmup_steps=10)
    tmp = Path(tempfile.mkdtemp())
    options = RunOptions(dataset.path, Config(model=model, train=train), tmp, quiet=True)
    return Trainer(options, distributed.setup(device), dataset)


def step_seconds(t: Trainer, steps: int, bucket: int | None = None, warm_up: int = 1) -> float:
    """Median CPU seconds (all threads of this process; wall seconds on a GPU) of ``steps``
    training steps after ``warm_up`` more, of one bucket if given. (A run's first steps also
    fault in the pages of its puzzle table and optimizer state; those are left out.)"""
    if bucket is not None:
        sampler = t.sampler.samplers[bucket]
        t.sampler.next_rows = lambda: (bucket, sampler.next_rows())
    times = []
    for i in range(warm_up + steps):
        start = clock(t.device)
        t.train_step()
        if i >= warm_up:
            times.append(clock(t.device) - start)
    return float(np.median(times)) if times else 0.0


def clock(device: torch.device) -> float:
    """CPU time of this process on a CPU (robust to other tenants of a shared machine, which
    wall time is not), wall time after synchronising on a GPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return time.perf_counter()
    return time.process_time()


def reset_peak_memory(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: str) -> str:
    """Peak GPU memory allocated since the last reset, in GiB ("-" on a CPU)."""
    if not device.startswith("cuda"):
        return "-"
    return f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"


def part_train(datasets, hiddens, batches, steps, device) -> None:
    print("\n## Training step (paper recipe's model, EMA on)\n")
    print(
        "| preset | hidden | batch | full s/step | boxed s/step | speed-up | full / boxed ex/s "
        "| peak GPU memory full / boxed | bucket: s x share |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for preset, dataset in datasets.items():
        for hidden in hiddens:
            for batch in batches:
                reset_peak_memory(device)
                full = trainer(dataset, hidden, batch, "full", device)
                full = step_seconds(full, steps, warm_up=WARM_UP)
                full_memory = peak_memory(device)
                reset_peak_memory(device)
                boxed = trainer(dataset, hidden, batch, "boxed", device)
                sampler: BucketedSampler = boxed.sampler
                share = np.array([s.examples_per_epoch() for s in sampler.samplers])
                share = share / share.sum()
                step_seconds(boxed, 0, warm_up=WARM_UP - 1)  # the run's first steps
                per = [step_seconds(boxed, steps, b) for b in range(len(sampler.buckets))]
                expected = float((share * np.array(per)).sum())
                memory = f"{full_memory} / {peak_memory(device)}"
                detail = ", ".join(
                    f"{b.length}: {t:.2f} x {p:.0%}" for b, t, p in zip(sampler.buckets, per, share)
                )
                print(
                    f"| {preset} | {hidden} | {batch} | {full:.2f} | {expected:.2f} | "
                    f"{full / expected:.2f}x | {batch / full:.3f} / {batch / expected:.3f} | "
                    f"{memory} | {detail} |",
                    flush=True,
                )


# ----------------------------------------------------------------------------- part 3


@torch.no_grad()
def forward_seconds(model: TRM, dataset, layout, rows, bucket, device, repeats: int) -> float:
    """Median CPU seconds (wall on a GPU) of one supervision step without gradients."""
    batch = encode_batch(dataset, "test", rows, layout, bucket).to(device)
    state = model.initial_state(len(rows), device, batch.inputs.shape[1])
    times = []
    for _ in range(repeats + 1):
        start = clock(device)
        with autocast(device, model.compute_dtype):
            model(state, batch.inputs, batch.puzzle_ids, batch.positions, batch.mask)
        times.append(clock(device) - start)
    return float(np.median(times[1:]))


def part_predict(datasets, hiddens, batches, repeats, device_name, buckets) -> None:
    device = torch.device(device_name)
    print(f"\n## Prediction, every evaluation test view, N_sup {N_SUP}\n")
    print("| preset | hidden | batch | full views/s | boxed views/s | speed-up |")
    print("|---|---|---|---|---|---|")
    for preset, dataset in datasets.items():
        rows = view_rows(dataset, "test")
        for hidden in hiddens:
            heads = 8 if hidden == 512 else 4
            model = TRM(
                ModelConfig(hidden_size=hidden, num_heads=heads, puzzle_emb_dim=hidden),
                dataset.vocab_size,
                dataset.seq_len,
                dataset.num_puzzle_identifiers,
            ).to(device)
            model.compute_dtype = compute_dtype(device, "auto")
            model.eval()
            for batch in batches:
                results = {}
                for board in ("full", "boxed"):
                    layout = Layout(dataset, board)
                    timing = {}  # bucket -> (the largest batch, views of the bucket)
                    for chunk, bucket in layout.batches("test", rows, batch, buckets):
                        sample, views = timing.get(bucket, (chunk, 0))
                        timing[bucket] = (max(sample, chunk, key=len), views + len(chunk))
                    seconds = sum(
                        views / len(sample) * N_SUP
                        * forward_seconds(model, dataset, layout, sample, bucket, device, repeats)
                        for bucket, (sample, views) in timing.items()
                    )  # fmt: skip
                    results[board] = len(rows) / seconds
                print(
                    f"| {preset} | {hidden} | {batch} | {results['full']:.3f} | "
                    f"{results['boxed']:.3f} | {results['boxed'] / results['full']:.2f}x |",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--num-aug", type=int, default=1000)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--predict", action="store_true")
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 128])
    parser.add_argument("--batches", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--buckets", type=int, default=TrainConfig().board_buckets)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    tune_allocator()
    torch.manual_seed(0)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        datasets = {}
        for preset in args.presets:
            sources = resolve_preset(preset, args.data_root)
            out = Path(tmp) / preset
            build_arc_dataset(
                sources.train,
                sources.eval,
                out,
                BuildOptions(num_aug=args.num_aug, leakage=PRESET_LEAKAGE),
                quiet=True,
            )
            datasets[preset] = Dataset.open(out)
        part_tokens(datasets, args.data_root, args.buckets)
        part_kaggle(args.data_root / "kaggle" / "arc-prize-2025" / "arc-agi_test_challenges.json",
                    args.buckets)  # fmt: skip
        if args.train:
            part_train(datasets, args.hidden, args.batches, args.steps, args.device)
        if args.predict:
            part_predict(datasets, args.hidden, args.batches, args.steps, args.device, args.buckets)


if __name__ == "__main__":
    main()
