"""Task-shared puzzle embeddings against one row per variant: table size, and a learning signal.

``sizes``: the ARC-AGI-1 preset (1000 augmentations) with the paper's recipe (``arc1``): for
each ``model.puzzle_table`` a fresh process builds the trainer, takes one training step (global
batch ``--batch``, so that it runs on a CPU; the table, the weights, the optimizer state and the
EMA do not depend on the batch), saves the checkpoint and exports it. Reports the table's rows
and bytes, the training state held besides the activations (weights, AdamATan2's two moments,
EMA, table), the process's peak RSS, and the checkpoint's and export's bytes on disk.

``learning``: the ``tiny`` recipe on boxed boards on the 77 ARC-AGI-1 evaluation tasks whose
every grid is at most 10x10 (the 30x30 canvas; their demonstrations trained on, their 88 test
outputs held out), the setting where 8 variants a task hold ``tiny`` on the label-marginal
plateau (docs/benchmarks.md, "Boxed boards"). For each ``--num-aug``, seed and table, one run
trains for ``--cpu-minutes`` of its process's CPU time on one thread (in chunks resumed
bit-exactly, the restarts counted), then evaluates every view of the held-out test inputs.
Reports steps, lm loss over windows of steps, the cell and exact accuracy of the last
``--tail`` steps, and held-out pass@1 / pass@2.

    python scripts/bench_puzzle_table.py sizes --data-root ../shared/data [--batch 1]
    OMP_NUM_THREADS=1 python scripts/bench_puzzle_table.py learning --data-root ../shared/data \\
        [--num-aug 8 16] [--seeds 0 1 2] [--tables variant task] [--cpu-minutes 5] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_boxed_learning import small_tasks  # noqa: E402
from bench_learning import tail_mean  # noqa: E402

from arcpipe.arc.presets import resolve_preset  # noqa: E402
from arcpipe.config import load_config  # noqa: E402
from arcpipe.data.build import BuildOptions, build_arc_dataset  # noqa: E402
from arcpipe.train.loop import RunOptions, train  # noqa: E402

TABLES = ("variant", "task")
LOSS_WINDOWS = ((1, 100), (101, 300), (301, 500), (501, 900), (901, 10**9))

# ----------------------------------------------------------------------------- sizes


def measure_sizes(data: Path, table: str, work: Path, batch: int) -> dict:
    """One step of the arc1 recipe with ``table``, its checkpoint and export (in this process)."""
    from arcpipe.data.dataset import Dataset
    from arcpipe.export import export_checkpoint, export_size
    from arcpipe.train import distributed
    from arcpipe.train.trainer import Trainer

    torch.set_num_threads(2)
    sets = [f"model.puzzle_table={table}", f"train.global_batch_size={batch}"]
    config = load_config("arc1", sets)
    run = work / f"run-{table}"
    trainer = Trainer(
        RunOptions(data, config, run, quiet=True), distributed.setup("cpu"), Dataset.open(data)
    )
    start = time.process_time()
    trainer.train_step()
    step_cpu = time.process_time() - start
    checkpoint = trainer.save(run)
    export = export_checkpoint(checkpoint, work / f"export-{table}")
    model = trainer.model
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    moments = sum(
        t.numel() * t.element_size()
        for state in trainer.optimizer.state.values()
        for t in state.values()
        if isinstance(t, torch.Tensor)
    )
    ema = sum(t.numel() * t.element_size() for t in trainer.ema.shadow.values())
    rows = model.puzzle_table.weights
    return {
        "table": table,
        "rows": rows.shape[0],
        "table_bytes": rows.numel() * rows.element_size(),
        "code_parameters": 0
        if model.augmentation_code is None
        else sum(p.numel() for p in model.augmentation_code.parameters()),
        "weights_bytes": weights,
        "moments_bytes": moments,
        "ema_bytes": ema,
        "state_bytes": weights + moments + ema + rows.numel() * rows.element_size(),
        "step_cpu_seconds": step_cpu,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "checkpoint_files": {f.name: f.stat().st_size for f in sorted(checkpoint.iterdir())},
        "checkpoint_bytes": sum(f.stat().st_size for f in checkpoint.iterdir()),
        "export_bytes": export_size(export),
    }


def sizes(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sources = resolve_preset("arc-agi-1", args.data_root)
        data = work / "data"
        build_arc_dataset(list(sources.train), sources.eval, data, BuildOptions(), quiet=True)
        rows = []
        for table in args.tables:  # a fresh process each, for its own peak RSS
            cmd = [sys.executable, __file__, "_size", str(data), table, str(work), str(args.batch)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}")
    print("| table | rows | table MB | state MB | peak RSS MB | checkpoint MB | export MB |")
    print("|---|---|---|---|---|---|---|")
    mb = 1e6
    for r in rows:
        print(
            f"| {r['table']} | {r['rows']:,} | {r['table_bytes'] / mb:.2f} | "
            f"{r['state_bytes'] / mb:.1f} | {r['peak_rss_bytes'] / mb:.0f} | "
            f"{r['checkpoint_bytes'] / mb:.1f} | {r['export_bytes'] / mb:.2f} |"
        )
    for r in rows:
        print(f"{r['table']}: {json.dumps(r)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


# ----------------------------------------------------------------------------- learning


def run_learning(data: Path, table: str, seed: int, cpu_seconds: float, run: Path, args) -> dict:
    """Train tiny with ``table`` for ``cpu_seconds`` of CPU time, then evaluate once."""
    sets = [
        f"train.seed={seed}",
        f"model.puzzle_table={table}",
        "model.board=boxed",
        f"train.global_batch_size={args.batch}",
        "train.log_interval=1",
        "train.eval_interval=1000000000",  # no evaluation at each chunk's stop; one at the end
    ]
    config = load_config("tiny", sets)
    start_cpu = time.process_time()
    step = 0
    while time.process_time() - start_cpu < cpu_seconds:
        options = RunOptions(
            data, config, run, resume=step > 0, max_steps=step + args.chunk, quiet=True
        )
        result = train(options)
        if result.step == step or result.reason == "finished":
            break
        step = result.step
    cpu = time.process_time() - start_cpu
    final = RunOptions(
        data, config, run, resume=True, overrides=("train.eval_interval=0",), quiet=True
    )
    final.max_steps = step
    evaluation = train(final).last_eval
    records = [orjson.loads(x) for x in (run / "metrics.jsonl").read_bytes().splitlines()]
    training = [r for r in records if "lm_loss" in r]
    windows = {}
    for lo, hi in LOSS_WINDOWS:
        chosen = [r["lm_loss"] for r in training if lo <= r["step"] <= hi]
        windows[f"{lo}-{hi}"] = float(np.mean(chosen)) if chosen else None
    return {
        "table": table,
        "seed": seed,
        "steps": step,
        "cpu_seconds": cpu,
        "loss_windows": windows,
        "lm_loss_tail": float(np.mean([r["lm_loss"] for r in training[-args.tail :]])),
        "train_accuracy": tail_mean(training, "accuracy", args.tail),
        "train_exact_accuracy": tail_mean(training, "exact_accuracy", args.tail),
        "pass@1": evaluation.get("pass@1"),
        "pass@2": evaluation.get("pass@2"),
        "heldout_view_exact": evaluation.get("exact_accuracy"),
    }


def learning(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)  # CPU time = compute time (no spinning second thread)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, torch {torch.__version__}, "
        f"1 thread; {args.cpu_minutes} CPU minutes per run"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tasks = work / "tasks"
        kept = small_tasks(args.data_root / "arc-agi-1" / "evaluation", tasks)
        print(f"{kept} ARC-AGI-1 evaluation tasks with every grid at most 10x10, canvas 30")
        print(
            "| variants | table | seed | steps | CPU s | lm loss 1-100 / 101-300 / 301-500 / "
            "501-900 / 901- | last-tail loss | cells | exact | pass@1 | pass@2 |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for num_aug in args.num_aug:
            data = work / f"data-{num_aug}"
            build_arc_dataset([], tasks, data, BuildOptions(num_aug=num_aug), quiet=True)
            for seed in args.seeds:
                for table in args.tables:
                    run = work / f"{num_aug}-{table}-{seed}"
                    r = run_learning(data, table, seed, args.cpu_minutes * 60, run, args)
                    r["num_aug"] = num_aug
                    rows.append(r)
                    losses = " / ".join(
                        "-" if v is None else f"{v:.3f}" for v in r["loss_windows"].values()
                    )
                    print(
                        f"| {num_aug} | {table} | {seed} | {r['steps']} | {r['cpu_seconds']:.0f}"
                        f" | {losses} | {r['lm_loss_tail']:.3f} | {r['train_accuracy']:.3f} | "
                        f"{r['train_exact_accuracy']:.3f} | {r['pass@1']:.3f} | "
                        f"{r['pass@2']:.3f} |",
                        flush=True,
                    )
                    if args.json:  # after every run: a long benchmark keeps what it measured
                        args.json.write_text(json.dumps(rows, indent=2))
    for num_aug in args.num_aug:
        for table in args.tables:
            mine = [r for r in rows if r["num_aug"] == num_aug and r["table"] == table]
            means = {
                k: np.mean([r[k] for r in mine])
                for k in ("steps", "lm_loss_tail", "train_accuracy", "pass@2")
            }
            print(
                f"{num_aug} variants, {table}: steps {means['steps']:.0f}, last-{args.tail} "
                f"loss {means['lm_loss_tail']:.3f}, cells {means['train_accuracy']:.3f}, "
                f"pass@2 {means['pass@2']:.3f}"
            )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_size":  # the child process of ``sizes``
        data, table, work, batch = sys.argv[2:6]
        print(json.dumps(measure_sizes(Path(data), table, Path(work), int(batch))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("sizes", "learning"))
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    parser.add_argument("--batch", type=int, default=16, help="global batch (sizes: 1)")
    parser.add_argument("--num-aug", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cpu-minutes", type=float, default=5.0, help="CPU time per run")
    parser.add_argument("--chunk", type=int, default=50, help="steps between budget checks")
    parser.add_argument("--tail", type=int, default=100, help="last steps averaged")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.what == "sizes":
        if "--batch" not in sys.argv:
            args.batch = 1
        sizes(args)
    else:
        learning(args)


if __name__ == "__main__":
    main()
