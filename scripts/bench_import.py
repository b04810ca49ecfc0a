"""Benchmark ``arcpipe import`` on synthetic reference checkpoints of ARC-AGI-1 and -2 size.

For each preset: a checkpoint in the reference's format (the paper's network, float32 weights,
bfloat16 H_init/L_init, keys ``_orig_mod.model.inner.*``) whose float32 puzzle table has the
reference's row count (876,406 / 1,191,730 x 512), with its ``all_config.yaml``; an
``identifiers.json`` of as many rows naming real variants of the preset's tasks (arcpipe's own
build's variants, tasks in a shuffled order so that no row stays where it was; trimmed or padded
with names of a task the sources lack to the reference's count) and the dataset built from it with
``build-data --variants-from``. Then, each in a fresh child process with one thread:

- ``import`` without identifiers (the mean row is kept: the post-training route);
- ``import --identifiers --data`` (every row mapped onto the dataset's puzzle ids);
- for comparison, a plain ``torch.load(weights_only=True)`` of the file, the reference's loader.

Reported per run: wall seconds, CPU seconds (user + system, of the child), peak RSS (``wait4``),
and the peaks of its anonymous and file-backed resident memory (``/proc/PID/status`` sampled every
10 ms): pages of the memory-mapped checkpoint count as resident when touched, but they are the
page cache's, shared and dropped under pressure; anonymous memory is what the process owns.

    python scripts/bench_import.py --data-root ../shared/data [--presets arc-agi-1 arc-agi-2]
        [--work DIR] [--keep] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

REFERENCE_ROWS = {"arc-agi-1": 876_406, "arc-agi-2": 1_191_730}  # trm-reference §1.5, §1.8
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from reference_format import PAPER_ROPE, PREFIX, all_config_yaml, reference_state  # noqa: E402

PAPER = {
    **PAPER_ROPE,
    "hidden_size": 512,
    "num_heads": 8,
    "puzzle_emb_ndim": 512,
    "H_cycles": 3,
    "L_cycles": 4,
    "halt_max_steps": 16,
}


def arcpipe(*args: str) -> list[str]:
    return [sys.executable, "-m", "arcpipe", *args]


def measure(cmd: list[str]) -> dict:
    """Run ``cmd`` in a child process with one thread; its time and memory peaks."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
    peaks = {"RssAnon": 0, "RssFile": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                lines = Path(f"/proc/{child.pid}/status").read_text().splitlines()
            except OSError:
                return
            for line in lines:
                key, _, value = line.partition(":")
                if key in peaks:
                    peaks[key] = max(peaks[key], int(value.split()[0]))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "peak_anon_mib": round(peaks["RssAnon"] / 1024),
        "peak_file_mib": round(peaks["RssFile"] / 1024),
    }


def named_variants(preset: str, data_root: Path, work: Path, rows: int) -> Path:
    """identifiers.json of ``rows`` rows naming the preset's variants, tasks shuffled."""
    from arcpipe.arc.augment import Transform
    from arcpipe.data.dataset import Dataset

    drawn = work / "drawn"
    subprocess.run(
        arcpipe(
            "build-data",
            "--preset",
            preset,
            "--data-root",
            str(data_root),
            "--out",
            str(drawn),
            "--quiet",
            "--overwrite",
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    dataset = Dataset.open(drawn)
    variants, colours = np.asarray(dataset.arrays["variants"]), dataset.arrays["colours"]
    by_task: dict[int, list[str]] = {}
    for v, (t, d, _) in enumerate(variants):
        name = Transform(int(d), np.asarray(colours[v])).name(dataset.tasks[int(t)].id)
        by_task.setdefault(int(t), []).append(name)
    order = np.random.default_rng(0).permutation(len(by_task))
    names = [name for t in order for name in by_task[int(t)]][: rows - 1]
    for k in range(rows - 1 - len(names)):
        names.append(f"not-in-the-sources|||t{k % 8}|||0123456789")
    path = work / "identifiers.json"
    path.write_text(json.dumps(["<blank>", *names]))
    shutil.rmtree(drawn)
    return path


def synthetic_checkpoint(folder: Path, rows: int) -> Path:
    """The paper network with random weights and a ``rows`` x 512 float32 puzzle table."""
    folder.mkdir(parents=True, exist_ok=True)
    state = reference_state(PAPER, rows=1)
    state["puzzle_emb.weights"] = torch.randn(rows, 512, generator=torch.Generator().manual_seed(0))
    path = folder / "step_518071"
    torch.save({PREFIX + k: v for k, v in state.items()}, path)
    (folder / "all_config.yaml").write_text(all_config_yaml(PAPER))
    return path


def bench(preset: str, data_root: Path, work: Path) -> dict:
    rows = REFERENCE_ROWS[preset]
    ids = named_variants(preset, data_root, work, rows)
    data = work / "named"
    subprocess.run(
        arcpipe(
            "build-data",
            "--preset",
            preset,
            "--data-root",
            str(data_root),
            "--out",
            str(data),
            "--variants-from",
            str(ids),
            "--quiet",
            "--overwrite",
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    checkpoint = synthetic_checkpoint(work / "ref", rows)
    load = "import torch, sys; torch.load(sys.argv[1], weights_only=True)"
    result = {
        "rows": rows,
        "checkpoint_bytes": checkpoint.stat().st_size,
        "torch_load_plain": measure([sys.executable, "-c", load, str(checkpoint)]),
        "import_mean_row": measure(
            arcpipe("import", str(checkpoint), "--out", str(work / "run-mean"), "--overwrite")
        ),
        "import_identifiers": measure(
            arcpipe(
                "import",
                str(checkpoint),
                "--out",
                str(work / "run-rows"),
                "--identifiers",
                str(ids),
                "--data",
                str(data),
                "--overwrite",
            )
        ),
    }
    record = json.loads((work / "run-rows" / "import.json").read_text())["puzzle_table"]
    result["identifiers_coverage"] = record["identifiers"]
    result["rows_kept"] = record["rows_kept"]
    for run in ("run-mean", "run-rows"):
        shutil.rmtree(work / run)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--presets", nargs="+", default=list(REFERENCE_ROWS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/arcpipe-bench-import"))
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    for preset in args.presets:
        work = args.work / preset
        results[preset] = bench(preset, args.data_root.resolve(), work)
        if not args.keep:
            shutil.rmtree(work)
        print(preset, json.dumps(results[preset], indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
