"""The prepared GPU check: one command of at most 8 minutes, every figure written to ``--out``.

Parts, in order of value. Each runs in its own process under its own time limit and never past
the overall ``--budget``, so a part that hangs or fails costs itself alone; each writes its
figures as it makes them, so a part cut short still reports what it measured.

  data     the ARC-AGI-1 preset built twice: 1000 variants a task (step and prediction figures)
           and 8 (the learning run)
  tests    tests/test_gpu.py: float32 equals the CPU, compiled equals eager, bfloat16 learns, a
           checkpoint moves between devices
  trm      the paper TRM config (arc1, arc1_boxed), bfloat16: seconds per step, examples/s, MFU
           against the chip's dense bf16 peak, peak memory. In turn: the full canvas compiled,
           full and boxed eager, boxed compiled bucket by bucket (as many as time allows), the
           full canvas compiled at the larger batch
  urm      urm_arc1 the same at the first batch (compiled full, eager boxed and full)
  predict  prediction views/s at full N_sup over every evaluation test view, boxed and full
  learn    ``arcpipe train --config arc1_boxed`` for about 2 minutes on the 8-variant data (its
           warm-up cut to 20 steps so that the curve shows something): the loss curve

Out: ``summary.json`` (every figure), ``summary.md`` (the tables) and one log a part: eight
files, as many as the device tool brings back.

    bash scripts/device_check.sh                     # on the device machine (writes to $OUT)
    python scripts/device_check.py --device cpu --tiny --data-root ../shared/data --out /tmp/dc
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("data", "tests", "trm", "urm", "predict", "learn")
# Seconds each part may take at most (on a GPU; --tiny: on a CPU, with tiny sizes).
CAPS = {"data": 60, "tests": 110, "trm": 140, "urm": 70, "predict": 45, "learn": 150}
TINY_CAPS = {"data": 120, "tests": 90, "trm": 240, "urm": 150, "predict": 60, "learn": 90}
MIN_PART_S = 15  # a part with less time left than this is skipped
NEEDED = ("torch", "numpy", "numba", "click", "rich", "orjson", "safetensors", "pytest")
# Dense bfloat16 peaks (TFLOP/s, no sparsity) by a name fragment, most specific first.
PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.4),
    ("H200", 989.4),
    ("GH200", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10G", 70.0),
)
LEARN_BATCH_SMALL_GPU = 384  # the recipe's 768 needs about 100 GiB on one GPU
N_SUP = 16
# The dry run's network: the recipes' code paths at a size a CPU runs in seconds.
TINY_MODEL = {
    "hidden_size": 32,
    "num_heads": 2,
    "puzzle_emb_dim": 32,
    "num_layers": 1,
    "cycles": 1,
    "latent_steps": 1,
    "supervision_steps": 2,
}


# ----------------------------------------------------------------------------- the runner


def main() -> None:
    args = parse_args()
    if args.part:
        run_part(args)
        return
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    summary = {"command": " ".join(sys.argv), "device": args.device, "tiny": args.tiny}
    problem = preflight(args)
    summary["machine"] = machine_facts(args.device)
    if problem:
        summary["error"] = problem
        write_summary(out, summary)
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    deadline = time.monotonic() + args.budget
    caps = {**(TINY_CAPS if args.tiny else CAPS), **dict(parse_cap(c) for c in args.cap)}
    summary["parts"] = {}
    for part in args.only or PARTS:  # in order of value
        left = deadline - time.monotonic()
        summary["parts"][part] = run_in_process(args, part, min(caps[part], left))
        write_summary(out, summary)
    failed = [p for p, r in summary["parts"].items() if r["status"] != "ok"]
    print(f"parts not ok: {', '.join(failed)}" if failed else "every part ok")
    print(f"summary: {out / 'summary.md'}")


def run_in_process(args: argparse.Namespace, part: str, seconds: float) -> dict:
    """Run ``part`` in a process of its own, killed (with its children) after ``seconds``."""
    if seconds < MIN_PART_S:
        return {"status": "skipped", "why": f"{seconds:.0f} s left of the budget", "seconds": 0}
    results = args.work / f"{part}.json"
    command = [sys.executable, __file__, "--part", part, "--results", str(results)]
    command += common_options(args)
    started = time.monotonic()
    with open(args.out / f"{part}.log", "w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait(timeout=seconds)
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            status = f"timeout ({seconds:.0f} s)"
    figures = json.loads(results.read_text()) if results.exists() else {}
    seconds_taken = round(time.monotonic() - started, 1)
    print(f"{part}: {status} in {seconds_taken} s", flush=True)
    return {"status": status, "seconds": seconds_taken, "limit_s": round(seconds), **figures}


def common_options(args: argparse.Namespace) -> list[str]:
    options = [
        "--device",
        args.device,
        "--data-root",
        str(args.data_root),
        "--work",
        str(args.work),
    ]
    options += ["--peak-tflops", str(args.peak_tflops)] if args.peak_tflops else []
    return options + (["--tiny"] if args.tiny else [])


def parse_cap(item: str) -> tuple[str, float]:
    part, _, seconds = item.partition("=")
    if part not in PARTS or not seconds:
        raise SystemExit(f"--cap takes PART=SECONDS with PART one of {', '.join(PARTS)}")
    return part, float(seconds)


def preflight(args: argparse.Namespace) -> str | None:
    """Why the check cannot start here (a missing module, data or device), or None."""
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        return (
            f"missing Python modules: {', '.join(missing)} (carry their wheels in .whl/; "
            "docs/benchmarks.md, 'On a GPU', has the commands)"
        )
    for folder in ("arc-agi-1/training", "arc-agi-1/evaluation", "conceptarc/corpus"):
        if not (args.data_root / folder).is_dir():
            return f"no ARC data at {args.data_root / folder} (copy ../shared/data to arc-data/)"
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        return "--device cuda but torch sees no CUDA device"
    return None


def machine_facts(device: str) -> dict:
    import torch

    facts = {"python": sys.version.split()[0], "torch": torch.__version__, "cpus": os.cpu_count()}
    if device.startswith("cuda") and torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        facts |= {
            "gpu": properties.name,
            "gpu_memory_gib": round(properties.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
            "dense_bf16_peak_tflops": peak_tflops(properties.name),
        }
    return facts


def peak_tflops(name: str) -> float | None:
    """The chip's dense bfloat16 peak by its name, None for a chip not in the table."""
    return next((peak for fragment, peak in PEAK_TFLOPS if fragment in name), None)


def write_summary(out: Path, summary: dict) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text(markdown(summary))


# ----------------------------------------------------------------------------- parts


class Results:
    """A part's figures, rewritten to its file after every one (a killed part keeps them)."""

    def __init__(self, path: Path) -> None:
        self.path, self.figures = path, {}

    def add(self, key: str, value) -> None:
        self.figures[key] = value
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.figures))
        temporary.replace(self.path)

    def append(self, key: str, value) -> None:
        self.add(key, [*self.figures.get(key, []), value])


def run_part(args: argparse.Namespace) -> None:
    sys.path[:0] = [str(REPO), str(REPO / "scripts")]
    results = Results(args.results)
    {
        "data": part_data,
        "tests": part_tests,
        "trm": part_steps,
        "urm": part_steps,
        "predict": part_predict,
        "learn": part_learn,
    }[args.part](args, results)


def sizes(args: argparse.Namespace) -> dict:
    """The part's sizes: the real ones on a GPU, tiny ones for a CPU dry run."""
    if args.tiny:
        return {
            "num_aug": 1,
            "learn_aug": 1,
            "batches": [2],
            "steps": 1,
            "predict_batch": 8,
            "buckets": 2,
            "learn_s": 15,
            "model": TINY_MODEL,
        }
    return {
        "num_aug": 1000,
        "learn_aug": 8,
        "batches": [96, 384],
        "steps": 3,
        "predict_batch": 64,
        "buckets": None,
        "learn_s": 120,
        "model": {},
    }


def part_data(args: argparse.Namespace, results: Results) -> None:
    from arcpipe.arc.presets import PRESET_LEAKAGE, resolve_preset
    from arcpipe.data.build import BuildOptions, build_arc_dataset
    from arcpipe.data.dataset import Dataset

    size = sizes(args)
    sources = resolve_preset("arc-agi-1", args.data_root)
    for name, num_aug in (("steps", size["num_aug"]), ("learn", size["learn_aug"])):
        start = time.perf_counter()
        out = args.work / f"arc1-{name}"
        build_arc_dataset(
            sources.train,
            sources.eval,
            out,
            BuildOptions(num_aug=num_aug, leakage=PRESET_LEAKAGE),
            quiet=True,
        )
        dataset = Dataset.open(out)
        results.add(
            name,
            {
                "num_aug": num_aug,
                "seconds": round(time.perf_counter() - start, 1),
                "puzzle_ids": dataset.num_puzzle_identifiers,
                "train_examples": len(dataset.examples("train")),
            },
        )


def part_tests(args: argparse.Namespace, results: Results) -> None:
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
    process = subprocess.run(
        [*command, "tests/test_gpu.py"], cwd=REPO, capture_output=True, text=True
    )
    print(process.stdout, process.stderr, flush=True)
    counts = re.findall(r"(\d+) (passed|failed|skipped|error)", process.stdout)
    results.add("pytest", {kind: int(n) for n, kind in counts} | {"exit": process.returncode})


def paper_config(model: str, board: str, args: argparse.Namespace, batch: int, compiled: bool):
    """The recipe's config (arc1, arc1_boxed, urm_arc1, urm_arc1_boxed) at ``batch``, shrunk
    for a dry run."""
    from arcpipe.config import load_config

    name = {"trm": "arc1", "urm": "urm_arc1"}[model] + ("_boxed" if board == "boxed" else "")
    config = load_config(name)
    size = sizes(args)
    model_config = replace(config.model, **size["model"])
    train = replace(config.train, global_batch_size=batch, compile=compiled, lr_warmup_steps=10)
    if size["buckets"]:
        train = replace(train, board_buckets=size["buckets"])
    return replace(config, model=model_config, train=train)


def part_steps(args: argparse.Namespace, results: Results) -> None:
    """Training steps of the paper config: see the module docstring for the order."""
    from arcpipe.data.dataset import Dataset

    dataset = Dataset.open(args.work / "arc1-steps")
    size = sizes(args)
    first, *more = size["batches"]
    plan = [("full", True, first), ("full", False, first), ("boxed", False, first)]
    if args.part == "trm":
        plan += [("boxed", True, first)] + [("full", True, b) for b in more]
    for board, compiled, batch in plan:
        config = paper_config(args.part, board, args, batch, compiled)
        row = measure_steps(dataset, config, args, size["steps"], results, board, compiled)
        results.append("steps", row)
        print(json.dumps(row), flush=True)


def measure_steps(dataset, config, args, steps: int, results: Results, board, compiled) -> dict:
    """s/step, examples/s, FLOP/s, MFU and peak memory of one config; a boxed step is the
    buckets' times weighted by their examples (bucket by bucket, partial rows kept)."""
    import numpy as np
    import torch
    from bench_boxed import step_seconds
    from bench_train import step_flops

    from arcpipe.train import distributed
    from arcpipe.train.trainer import RunOptions, Trainer

    torch._dynamo.reset()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    out = Path(tempfile.mkdtemp(dir=args.work))
    options = RunOptions(dataset.path, config, out, quiet=True)
    trainer = Trainer(options, distributed.setup(args.device), dataset)
    batch = config.train.global_batch_size
    row = {"model": args.part, "board": board, "compiled": compiled, "batch": batch}
    shares = np.array([s.examples_per_epoch() for s in trainer.sampler.samplers], dtype=float)
    shares /= shares.sum()
    order = np.argsort(-shares)  # the buckets that weigh most first
    row["buckets"] = []
    for b in order:
        length = trainer.sampler.buckets[b].length
        start = time.perf_counter()
        step_seconds(trainer, 0, int(b), warm_up=1)  # the first step (and compilation)
        first = time.perf_counter() - start
        seconds = step_seconds(trainer, steps, int(b), warm_up=0)
        flops = step_flops(config.model, batch, length, dataset.vocab_size)
        row["buckets"].append(
            {
                "length": length,
                "share": round(float(shares[b]), 4),
                "s_per_step": seconds,
                "first_step_s": round(first, 2),
                "flops": flops,
            }
        )
        row |= combine(row["buckets"], batch, args)
        row["peak_memory_gib"] = peak_memory_gib(device)
        results.add("in_progress", row)
    return row


def combine(buckets: list[dict], batch: int, args: argparse.Namespace) -> dict:
    """A config's figures from its buckets measured so far (share-weighted, complete or not)."""
    share = sum(b["share"] for b in buckets)
    seconds = sum(b["share"] * b["s_per_step"] for b in buckets) / share
    flops = sum(b["share"] * b["flops"] for b in buckets) / share
    peak = args.peak_tflops or machine_facts(args.device).get("dense_bf16_peak_tflops")
    return {
        "share_measured": round(share, 4),
        "s_per_step": round(seconds, 4),
        "examples_per_s": round(batch / seconds, 1),
        "tflop_s": round(flops / seconds / 1e12, 2),
        "mfu": round(flops / seconds / (peak * 1e12), 4) if peak else None,
    }


def peak_memory_gib(device) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2)


def part_predict(args: argparse.Namespace, results: Results) -> None:
    """Views/s at full N_sup over every evaluation test view (one supervision step timed per
    bucket on its largest batch, times N_sup, weighted by the bucket's views)."""
    import torch
    from bench_boxed import forward_seconds

    from arcpipe.data.dataset import Dataset
    from arcpipe.data.layout import Layout
    from arcpipe.model.trm import TRM
    from arcpipe.precision import compute_dtype
    from arcpipe.predict import view_rows

    dataset = Dataset.open(args.work / "arc1-steps")
    config = paper_config("trm", "boxed", args, 1, False)
    device = torch.device(args.device)
    model = TRM(config.model, dataset.vocab_size, dataset.seq_len, dataset.num_puzzle_identifiers)
    model = model.to(device).eval()
    model.compute_dtype = compute_dtype(device, "auto")
    rows = view_rows(dataset, "test")
    batch = sizes(args)["predict_batch"]
    for board in ("boxed", "full"):
        layout = Layout(dataset, board)
        timing = {}  # bucket -> (its largest batch, its views)
        for chunk, bucket in layout.batches("test", rows, batch, config.train.board_buckets):
            sample, views = timing.get(bucket, (chunk, 0))
            timing[bucket] = (max(sample, chunk, key=len), views + len(chunk))
        seconds = sum(
            views
            / len(sample)
            * N_SUP
            * forward_seconds(model, dataset, layout, sample, bucket, device, 3)
            for bucket, (sample, views) in timing.items()
        )
        results.append(
            "views_per_s",
            {
                "board": board,
                "batch": batch,
                "views": len(rows),
                "views_per_s": round(len(rows) / seconds, 1),
            },
        )


def part_learn(args: argparse.Namespace, results: Results) -> None:
    """A real ``arcpipe train`` run of arc1_boxed; its metrics are the loss curve."""
    import torch

    size = sizes(args)
    batch = 768
    if args.device.startswith("cuda"):
        memory = torch.cuda.get_device_properties(0).total_memory / 2**30
        batch = 768 if memory >= 120 else LEARN_BATCH_SMALL_GPU
    if args.tiny:
        batch = 4
    run = args.work / "learn-run"
    sets = [
        f"train.global_batch_size={batch}",
        "train.lr_warmup_steps=20",
        f"train.log_interval={1 if args.tiny else 5}",
        "train.eval_split=val",
        "train.checkpoint_interval=0",
    ]
    sets += [f"model.{key}={value}" for key, value in size["model"].items()]
    command = [
        sys.executable,
        "-m",
        "arcpipe",
        "train",
        "--data",
        str(args.work / "arc1-learn"),
        "--config",
        "arc1_boxed",
        "--out",
        str(run),
        "--device",
        args.device,
        "--max-time",
        f"{size['learn_s']}s",
    ]
    for s in sets:
        command += ["--set", s]
    results.add("command", " ".join(command[1:]))
    results.add("batch", batch)
    subprocess.run(command, cwd=REPO, check=True)
    curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    curve = [r for r in curve if "lm_loss" in r]
    keep = ("step", "elapsed", "lm_loss", "accuracy", "exact_accuracy", "examples_per_s")
    results.add("curve", [{k: r[k] for k in keep if k in r} for r in curve])


# ----------------------------------------------------------------------------- the report


def markdown(summary: dict) -> str:
    machine = summary.get("machine", {})
    lines = ["# Device check", "", f"`{summary['command']}`", "", f"machine: {machine}", ""]
    if "error" in summary:
        return "\n".join([*lines, f"error: {summary['error']}", ""])
    parts = summary.get("parts", {})
    lines += ["| part | status | seconds | limit |", "|---|---|---|---|"]
    lines += [
        f"| {p} | {r['status']} | {r['seconds']} | {r.get('limit_s', '')} |"
        for p, r in parts.items()
    ]
    if "pytest" in parts.get("tests", {}):
        lines += ["", f"GPU tests: {parts['tests']['pytest']}"]
    rows = [r for p in ("trm", "urm") for r in parts.get(p, {}).get("steps", [])]
    rows += [
        parts[p]["in_progress"]
        for p in ("trm", "urm")
        if "in_progress" in parts.get(p, {}) and parts[p]["in_progress"] not in rows
    ]
    if rows:
        lines += [
            "",
            "| model | board | compiled | batch | s/step | ex/s | TFLOP/s | MFU | "
            "peak GiB | share measured | first step s (compile) |",
            "|---" * 11 + "|",
        ]
        for r in rows:
            first = max(b["first_step_s"] for b in r["buckets"])
            lines.append(
                f"| {r['model']} | {r['board']} | {r['compiled']} | {r['batch']} | "
                f"{r['s_per_step']} | {r['examples_per_s']} | {r['tflop_s']} | {r['mfu']} | "
                f"{r['peak_memory_gib']} | {r['share_measured']} | {first} |"
            )
    for v in parts.get("predict", {}).get("views_per_s", []):
        lines.append(
            f"\nprediction, {v['board']} boards, batch {v['batch']}: "
            f"{v['views_per_s']} views/s over {v['views']} views"
        )
    curve = parts.get("learn", {}).get("curve", [])
    if curve:
        lines += ["", f"learning run: {learning_summary(curve)}", ""]
        lines += ["| step | s | lm_loss | accuracy | exact | ex/s |", "|---|---|---|---|---|---|"]
        every = max(1, len(curve) // 20)  # about 20 rows; summary.json has every record
        lines += [
            f"| {r['step']} | {r['elapsed']:.0f} | {r['lm_loss']:.3f} | "
            f"{r.get('accuracy', 0):.3f} | {r.get('exact_accuracy', 0):.3f} | "
            f"{r.get('examples_per_s', 0):.0f} |"
            for r in [*curve[:-1:every], curve[-1]]
        ]
    return "\n".join([*lines, ""])


def learning_summary(curve: list[dict]) -> str:
    """The curve's first and last tenths: mean lm_loss and accuracy, steps and seconds."""
    tenth = max(1, len(curve) // 10)

    def mean(rows: list[dict], key: str) -> float:
        return sum(r.get(key, 0) for r in rows) / len(rows)

    head, tail = curve[:tenth], curve[-tenth:]
    return (
        f"{curve[-1]['step']} steps in {curve[-1]['elapsed']:.0f} s; lm_loss "
        f"{mean(head, 'lm_loss'):.3f} -> {mean(tail, 'lm_loss'):.3f}, accuracy "
        f"{mean(head, 'accuracy'):.3f} -> {mean(tail, 'accuracy'):.3f} (first and last tenth)"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data-root", type=Path, default=REPO / "arc-data")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "device-check")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "device-check")
    parser.add_argument("--budget", type=float, default=470, help="seconds for every part")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a dry run on a CPU")
    parser.add_argument("--peak-tflops", type=float, help="the chip's dense bf16 peak")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="these parts alone, in order")
    parser.add_argument("--cap", action="append", default=[], help="PART=SECONDS, a part's limit")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()
