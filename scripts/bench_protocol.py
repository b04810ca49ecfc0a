"""The CPU learning protocol (issue 20): small real tasks learnt from their demonstrations.

A set of small real tasks (every grid at most 8x8; ``scripts/protocol/set_a.txt``, ``set_b.txt``;
``set_c.txt`` a final check in the pool of the issue's hidden first set, never chosen on)
whose test outputs are held out (the targets are built without them), trained together with a
dozen companion tasks (``companions.txt``, all their pairs), built with ``--num-aug 16 --canvas
30``, trained for 8 minutes of wall time on the machine's 2 cores, then predicted (every view) for
at most 3 minutes with 2 attempts. Each run is ``arcpipe train`` and ``arcpipe predict`` in their
own processes, exactly as a user runs them. Reported per run: held-out test outputs solved at
pass@2 (the submission) and at pass@all (the answer among any view's candidates), training exact
accuracy and cell accuracy and lm loss (halted samples of the last 10% of the logged steps),
steps, and the wall and CPU seconds of training and prediction.

Budgets (``--budget``):

- ``wall``: ``--max-time 8m`` and ``--max-time 3m`` on ``--threads 2``: the protocol itself.
  Wall time measures the other tenants of a shared machine too; run it when ``uptime`` is quiet.
- ``cpu``: ``--max-cpu-time`` (this process's CPU time) on ``--threads 1``, so that two runs may
  share the 2 cores and other load changes little. ``--train-cpu`` and ``--predict-cpu`` default
  to the calibrated equivalents of 8 and 3 wall minutes on 2 idle threads (``calibrate``).

Arms are ``NAME=RECIPE[,key=value...]``: ``build.canvas``, ``build.num_aug`` and
``build.translate`` change the dataset (built once per set and build, cached under ``--work``),
``predict.OPTION=VALUE`` passes ``--OPTION VALUE`` to ``arcpipe predict``, ``--OPTION`` alone
for ``true`` (``predict.vote_rule=poe``; ``predict.adapt_cpu_time=230s``, test-time training,
whose steps are recorded; ``predict.adapt_ensemble=true``), ``from=ARM`` predicts from ARM's
trained run of the same set, seed and budget instead of training (in the same command such arms
run after all the training ones), and every other key is a ``--set`` override.
Results go to ``--results`` (JSON lines); a run already there is not run again, so an
interrupted matrix continues where it stopped.

    python scripts/bench_protocol.py run --set A --budget cpu --seeds 0 --jobs 2 \\
        --arms tiny_boxed=tiny,model.board=boxed urm_tiny_boxed=urm_tiny,model.board=boxed
    python scripts/bench_protocol.py table --results runs/protocol/results.jsonl
    python scripts/bench_protocol.py calibrate --arms tiny_boxed=tiny,model.board=boxed

``views`` gives each run's pass@2 and pass@all from its first V views and the share of views
answered right; ``fit`` the share of the target tasks' own demonstrations (every trained variant)
that each trained run's network answers exactly, for the tasks it solves and those it misses;
``programs`` each run's pass@2 with ``predict --programs`` (a fitted whole-grid program's answer
first), voted from the run's own candidates; ``seeds`` each arm's pass@2 when the candidates of
two or all of its seeds are voted together (``arcpipe vote`` of several runs: an ensemble).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from arcpipe.arc.candidates import Candidates, merge_runs  # noqa: E402
from arcpipe.arc.score import load_solutions, score_submission  # noqa: E402
from arcpipe.arc.vote import CROSS_VIEW_RULES, RULES, pass_at_k, vote  # noqa: E402

SETS = REPO / "scripts" / "protocol"
SOURCES = {"A": "arc-agi-1/evaluation", "B": "arc-agi-2/training", "C": "arc-agi-1/training"}
COMPANIONS = "arc-agi-1/training"
BUILD = {"build.num_aug": 16, "build.canvas": 30, "build.translate": True}  # the protocol's
TRAIN_WALL, PREDICT_WALL = 8 * 60, 3 * 60  # seconds
# CPU seconds on one thread equivalent to 8 and 3 wall minutes on 2 idle threads: the tiny
# recipes' calibration (docs/benchmarks.md, "Learning at CPU scale: the protocol").
TRAIN_CPU, PREDICT_CPU = 720, 270
ALL = 10**6  # pass@ALL: the answer anywhere among the candidates


@dataclass(frozen=True)
class Arm:
    """A named way to train and predict: a recipe, its overrides, the dataset build it expects,
    ``arcpipe predict`` options, and optionally another arm whose trained run it predicts from."""

    name: str
    recipe: str
    overrides: tuple[str, ...]
    build: tuple[tuple[str, object], ...]
    predict: tuple[str, ...] = ()
    trained_by: str | None = None

    @staticmethod
    def parse(spec: str) -> Arm:
        name, _, rest = spec.partition("=")
        recipe, *items = rest.split(",")
        build, overrides, predict, trained_by = dict(BUILD), [], [], None
        for item in items:
            key, _, value = item.partition("=")
            if key.startswith("build."):
                if key not in BUILD:
                    raise SystemExit(f"unknown build option {key} (known: {', '.join(BUILD)})")
                is_flag = isinstance(BUILD[key], bool)
                build[key] = value.lower() in ("1", "true") if is_flag else int(value)
            elif key.startswith("predict."):
                predict += ["--" + key.removeprefix("predict.").replace("_", "-"), value]
            elif key == "from":
                trained_by = value
            else:
                overrides.append(item)
        build_items = tuple(sorted(build.items()))
        return Arm(
            name or recipe, recipe, tuple(overrides), build_items, tuple(predict), trained_by
        )

    @property
    def predict_args(self) -> list[str]:
        """Its ``arcpipe predict`` options; a value of ``true`` is a bare flag."""
        pairs = zip(self.predict[::2], self.predict[1::2])
        return [
            x for option, value in pairs for x in ([option] if value == "true" else [option, value])
        ]

    @property
    def vote_rule(self) -> str:
        """The vote rule its ``arcpipe predict`` submits with."""
        options = dict(zip(self.predict[::2], self.predict[1::2]))
        return options.get("--vote-rule", "count")

    def build_name(self) -> str:
        b = dict(self.build)
        translate = "" if b["build.translate"] else "-notrans"
        return f"aug{b['build.num_aug']}-canvas{b['build.canvas']}{translate}"


@functools.cache
def set_solutions(data_root: Path, set_name: str) -> dict[str, list[np.ndarray]]:
    """The held-out test outputs of a set's tasks, by task id (read once per set)."""
    solutions = load_solutions(data_root / SOURCES[set_name])
    return {t: solutions[t] for t in task_ids(f"set_{set_name.lower()}")}


def task_ids(name: str) -> list[str]:
    """The ids of a committed task list (comments and blank lines skipped)."""
    lines = (SETS / f"{name}.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def prepare(set_name: str, arm: Arm, data_root: Path, work: Path) -> Path:
    """The set's dataset for ``arm``'s build, built once: companions whole, targets without their
    test outputs."""
    data = work / "data" / f"{set_name}-{arm.build_name()}"
    if (data / "manifest.json").exists():
        return data
    from arcpipe.data.build import BuildOptions, build_arc_dataset

    sources = work / "tasks" / set_name
    if not sources.exists():
        _copy_tasks(data_root / COMPANIONS, task_ids("companions"), sources / "train", False)
        targets = task_ids(f"set_{set_name.lower()}")
        _copy_tasks(data_root / SOURCES[set_name], targets, sources / "targets", True)
    b = dict(arm.build)
    check_no_leak(set_name, data_root, sources, b["build.canvas"])
    options = BuildOptions(
        num_aug=b["build.num_aug"],
        canvas=b["build.canvas"],
        translate=b["build.translate"],
        leakage="allow",  # input-only matches; check_no_leak has ruled out real leaks
    )
    build_arc_dataset([sources / "train"], sources / "targets", data, options, quiet=True)
    return data


def check_no_leak(set_name: str, data_root: Path, sources: Path, canvas: int) -> None:
    """build-data's leakage guard on the set with the targets' test outputs known: none of them
    may be among the pairs trained on (a refusal is a bug in the set).

    The build itself holds the outputs out, so its guard can fingerprint the test inputs alone
    and takes an input shared with a demonstration of another task for a leak (set A: two 2x2 or
    3x3 inputs); with the outputs known those are not leaks, and the build allows them.
    """
    from arcpipe.data.build import BuildOptions, gather_tasks
    from arcpipe.errors import ArcpipeError

    known = sources / "targets-with-outputs"  # for this check only
    if not known.exists():
        targets = task_ids(f"set_{set_name.lower()}")
        _copy_tasks(data_root / SOURCES[set_name], targets, known, False)
    try:
        gather_tasks([sources / "train"], known, BuildOptions(num_aug=0, canvas=canvas))
    except ArcpipeError as error:
        raise SystemExit(f"set {set_name} leaks: {error}") from None


def _copy_tasks(folder: Path, ids: list[str], into: Path, hold_out: bool) -> None:
    into.mkdir(parents=True)
    for task_id in ids:
        task = orjson.loads((folder / f"{task_id}.json").read_bytes())
        if hold_out:
            task["test"] = [{"input": pair["input"]} for pair in task["test"]]
        (into / f"{task_id}.json").write_bytes(orjson.dumps(task))


def run_process(args: list[str], threads: int, log: Path) -> tuple[float, float, int]:
    """Run an arcpipe command on ``threads`` threads; its wall and CPU seconds, exit status."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "arcpipe", *args], env=env, stdout=out, stderr=out
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - start, usage.ru_utime + usage.ru_stime, proc.returncode


TRAIN_KEYS = ("train_wall", "train_cpu", "steps", "train_exact", "train_cells", "lm_loss")


def result_key(row: dict) -> tuple:
    return row["set"], row["arm"], row["seed"], row["budget"]


def train_metrics(run: Path) -> dict:
    """Training exact and cell accuracy (count-weighted) and lm loss over the last 10% of the
    logged steps, and the steps reached."""
    lines = (run / "metrics.jsonl").read_bytes().splitlines()
    records = [r for r in map(orjson.loads, lines) if "lm_loss" in r]
    tail = records[-max(1, len(records) // 10) :]
    counts = np.array([r["count"] for r in tail])

    def weighted(key: str) -> float:
        return float((np.array([r[key] for r in tail]) * counts).sum() / max(counts.sum(), 1))

    state = orjson.loads((run / "last" / "state.json").read_bytes())
    return {
        "steps": int(state["step"]),
        "train_exact": weighted("exact_accuracy"),
        "train_cells": weighted("accuracy"),
        "lm_loss": float(np.mean([r["lm_loss"] for r in tail])),
    }


def held_out_scores(candidates: Path, solutions: dict, rule: str) -> dict:
    """Test outputs solved at pass@2 (by the arm's vote ``rule``, as its submission) and at
    pass@all, pass@2 per task, and the outputs every other rule would solve at pass@2 from the
    same candidates (``solved@2_by_rule``; the cross-view rules need cross-view scores)."""
    c = Candidates.load(candidates)
    outputs = sum(len(v) for v in solutions.values())
    rules = [r for r in RULES if c.cross_view_k or r not in CROSS_VIEW_RULES]
    by_rule = {}
    for r in rules:
        scores = pass_at_k(vote(c, r), solutions, ks=(2, ALL))
        by_rule[r] = round(scores["pass@2_outputs"] * outputs)
        if r == rule:
            mine = scores
    return {
        "outputs": outputs,
        "solved@2": by_rule[rule],
        "solved@all": round(mine[f"pass@{ALL}_outputs"] * outputs),
        "pass@2_tasks": mine["pass@2"],
        "solved@2_by_rule": by_rule,
    }


def run_dir(work: Path, set_name: str, arm_name: str, seed: int, budget: str) -> Path:
    """The folder of one protocol run (its training run, submission, candidates and log)."""
    return work / "runs" / f"{set_name}-{arm_name}-seed{seed}-{budget}"


def row_run_dir(args, r: dict) -> Path:
    """The folder of the run that a result row describes."""
    return run_dir(args.work, r["set"], r["arm"], r["seed"], r["budget"])


def run_one(arm: Arm, set_name: str, seed: int, args, data: Path) -> dict:
    """Train and predict one arm from one seed under the chosen budget; its result row."""
    run = run_dir(args.work, set_name, arm.name, seed, args.budget)
    tag = run.name
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    log = run / "log.txt"
    threads = 2 if args.budget == "wall" else 1
    threads = args.threads or threads
    if arm.trained_by:  # predict from another arm's trained run (same set, seed and budget)
        trained = run_dir(args.work, set_name, arm.trained_by, seed, args.budget)
        key = (set_name, arm.trained_by, seed, args.budget)
        rows = [r for r in load_results(args.results) if result_key(r) == key]
        if not rows or not (trained / "run" / "last").exists():
            raise SystemExit(f"{tag}: arm {arm.trained_by} has no trained run for this seed yet")
        train_row = {k: rows[-1][k] for k in TRAIN_KEYS}
    else:
        trained = run
        train_row = train(arm, seed, args, data, run, threads, log)
    predict_limit = (
        ["--max-time", f"{args.predict_wall}s"]
        if args.budget == "wall"
        else ["--max-cpu-time", f"{args.predict_cpu}s"]
    )
    submission = run / "submission.json"
    predict_args = ["predict", "--run", str(trained / "run"), "--checkpoint", "last"]
    predict_args += ["--data", str(data), "--attempts", "2", "--out", str(submission), "--quiet"]
    predict_args += arm.predict_args
    predict_wall, predict_cpu, status = run_process(predict_args + predict_limit, threads, log)
    if status:
        raise SystemExit(f"{tag}: prediction failed, see {log}")
    solutions = set_solutions(args.data_root, set_name)
    text = log.read_text()
    views = re.findall(r"([\d,]+/[\d,]+) views", text)[-1]
    adapted = re.findall(r"test-time training: ([\d,]+) steps", text)
    return {
        "set": set_name,
        "arm": arm.name,
        "spec": arm_spec(arm),
        "seed": seed,
        "budget": args.budget,
        "threads": threads,
        **train_row,
        "predict_wall": predict_wall,
        "predict_cpu": predict_cpu,
        "views": views,
        **({"adapt_steps": int(adapted[-1].replace(",", ""))} if adapted else {}),
        **held_out_scores(submission.with_suffix(".candidates.npz"), solutions, arm.vote_rule),
        "load": os.getloadavg(),
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }


def train(arm: Arm, seed: int, args, data: Path, run: Path, threads: int, log: Path) -> dict:
    """Train ``arm`` from ``seed`` into ``run / "run"``; its training seconds and metrics."""
    sets = [f"train.seed={seed}", *arm.overrides]
    train_limit = (
        ["--max-time", f"{args.train_wall}s"]
        if args.budget == "wall"
        else ["--max-cpu-time", f"{args.train_cpu}s"]
    )
    train_args = ["train", "--data", str(data), "--config", arm.recipe, "--out", str(run / "run")]
    train_args += [a for s in sets for a in ("--set", s)] + train_limit + ["--quiet"]
    train_wall, train_cpu, status = run_process(train_args, threads, log)
    if status:
        raise SystemExit(f"{run.name}: training failed, see {log}")
    return {"train_wall": train_wall, "train_cpu": train_cpu, **train_metrics(run / "run")}


def arm_spec(arm: Arm) -> str:
    predict = [f"predict.{a[2:].replace('-', '_')}={v}" for a, v in zip(*[iter(arm.predict)] * 2)]
    trained_by = [f"from={arm.trained_by}"] if arm.trained_by else []
    build = [f"{k}={v}" for k, v in arm.build]
    return ",".join([arm.recipe, *arm.overrides, *build, *predict, *trained_by])


def load_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def command_run(args) -> None:
    arms = [Arm.parse(spec) for spec in args.arms]
    args.work.mkdir(parents=True, exist_ok=True)
    done = {(r["set"], r["spec"], r["seed"], r["budget"]) for r in load_results(args.results)}
    jobs = []
    for set_name in args.set:
        for seed in args.seeds:
            for arm in arms:
                if (set_name, arm_spec(arm), seed, args.budget) not in done:
                    data = prepare(set_name, arm, args.data_root, args.work)
                    jobs.append((arm, set_name, seed, data))
    print(f"{len(jobs)} runs to do; load {os.getloadavg()}", flush=True)

    def work(job) -> None:
        row = run_one(*job[:3], args, job[3])
        with open(args.results, "ab") as f:
            f.write(orjson.dumps(row) + b"\n")
        print(format_row(row), flush=True)

    # The arms that train first, then those that predict from their runs (``from=ARM``).
    for phase in ([j for j in jobs if not j[0].trained_by], [j for j in jobs if j[0].trained_by]):
        with ThreadPoolExecutor(args.jobs) as pool:
            for future in [pool.submit(work, job) for job in phase]:
                future.result()


HEADER = (
    "| set | arm | seed | budget | steps | train s (wall / CPU) | train exact | train cells | "
    "lm loss | predict s (wall / CPU) | views | pass@2 | pass@all |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def format_row(r: dict) -> str:
    return (
        f"| {r['set']} | {r['arm']} | {r['seed']} | {r['budget']} | {r['steps']:,} | "
        f"{r['train_wall']:.0f} / {r['train_cpu']:.0f} | {r['train_exact']:.3f} | "
        f"{r['train_cells']:.3f} | {r['lm_loss']:.3f} | {r['predict_wall']:.0f} / "
        f"{r['predict_cpu']:.0f} | {r['views']} | {r['solved@2']}/{r['outputs']} | "
        f"{r['solved@all']}/{r['outputs']} |"
    )


def command_table(args) -> None:
    rows = load_results(args.results)
    print(HEADER)
    for r in rows:
        print(format_row(r))
    print("\npass@2 by vote rule, from each run's own candidates:\n")
    print(f"| set | arm | seed | {' | '.join(RULES)} |\n|---|---|---|{'---|' * len(RULES)}")
    for r in rows:
        if "solved@2_by_rule" in r:
            by = r["solved@2_by_rule"]
            cells = " | ".join(str(by.get(rule, "-")) for rule in RULES)
            print(f"| {r['set']} | {r['arm']} | {r['seed']} | {cells} |")
    print("\nmeans over seeds:\n")
    print("| set | arm | budget | seeds | steps | train exact | lm loss | pass@2 | pass@all |")
    print("|---|---|---|---|---|---|---|---|---|")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["set"], r["arm"], r["budget"]), []).append(r)
    for (set_name, arm, budget), mine in groups.items():
        mean = {k: np.mean([r[k] for r in mine]) for k in ("steps", "train_exact", "lm_loss")}
        adapted = [r["adapt_steps"] for r in mine if "adapt_steps" in r]
        steps = f"{mean['steps']:,.0f}"
        if adapted:
            steps += f" + {np.mean(adapted):,.0f} adapting"
        solved = [r["solved@2"] for r in mine]
        anywhere = [r["solved@all"] for r in mine]
        print(
            f"| {set_name} | {arm} | {budget} | {len(mine)} | {steps} | "
            f"{mean['train_exact']:.3f} | {mean['lm_loss']:.3f} | "
            f"{np.mean(solved):.1f} ({'/'.join(map(str, solved))}) of {mine[0]['outputs']} | "
            f"{np.mean(anywhere):.1f} ({'/'.join(map(str, anywhere))}) |"
        )


def command_calibrate(args) -> None:
    """Each arm trains ``--steps`` steps alone on 2 threads, then on 1; the seconds per step
    between step 50 and the last (the loop's own clock, without start-up) give the 1-thread
    seconds per 2-thread second, so the CPU budgets equivalent to the wall ones. On a quiet
    machine only: a 1-thread run's wall time is then its CPU time."""
    args.work.mkdir(parents=True, exist_ok=True)
    for spec in args.arms:
        arm = Arm.parse(spec)
        data = prepare(args.set[0], arm, args.data_root, args.work)
        per_step = {}
        for threads in (2, 1):
            load = os.getloadavg()[0]
            run = args.work / "calibrate" / f"{arm.name}-{threads}"
            shutil.rmtree(run, ignore_errors=True)
            run.parent.mkdir(parents=True, exist_ok=True)
            train_args = ["train", "--data", str(data), "--config", arm.recipe, "--out", str(run)]
            train_args += [a for s in arm.overrides for a in ("--set", s)]
            train_args += ["--set", "train.log_interval=10", "--max-steps", str(args.steps)]
            wall, cpu, status = run_process([*train_args, "--quiet"], threads, run.parent / "log")
            if status:
                raise SystemExit(f"calibration run failed; see {run.parent / 'log'}")
            lines = (run / "metrics.jsonl").read_bytes().splitlines()
            records = [r for r in map(orjson.loads, lines) if "elapsed" in r]
            first = next(r for r in records if r["step"] >= 50)
            per_step[threads] = (records[-1]["elapsed"] - first["elapsed"]) / (
                records[-1]["step"] - first["step"]
            )
            print(
                f"{arm.name}, {threads} threads: {per_step[threads]:.4f} s/step (steps 50-"
                f"{records[-1]['step']}); process {wall:.1f} s, CPU {cpu:.1f} s; load {load:.2f}"
            )
        ratio = per_step[1] / per_step[2]
        print(
            f"{arm.name}: 2 threads are {ratio:.2f}x one: 8 wall minutes = "
            f"{TRAIN_WALL * ratio:.0f} CPU s, 3 wall minutes = {PREDICT_WALL * ratio:.0f} CPU s "
            "on 1 thread",
            flush=True,
        )


def command_views(args) -> None:
    """pass@2 (count vote) and pass@all of each run from the first V views of every test input: how
    the score grows with the views voted (a run's candidates hold every view it predicted; the
    first V of a dataset built with more are those a build with V - 1 augmentations makes)."""
    from arcpipe.data.dataset import Dataset

    rows = load_results(args.results)
    print("| set | arm | seed | views right (first 17) | first V views, V: pass@2 (pass@all) |")
    print("|---|---|---|---|---|")
    for r in rows:
        arm = Arm.parse(f"{r['arm']}={r['spec']}")
        dataset = Dataset.open(prepare(r["set"], arm, args.data_root, args.work))
        c = Candidates.load(row_run_dir(args, r) / "submission.candidates.npz")
        c = c.with_scores(None)  # counting needs none; a subset of views would break them
        examples = np.asarray(dataset.examples("test"))
        if len(c) and c.view.max() >= len(examples):  # --adapt-ensemble: two passes' view rows
            print(f"| {r['set']} | {r['arm']} | {r['seed']} | two passes, not split by view | |")
            continue
        rank = dataset.variant_index(examples[c.view, 0])
        solutions = set_solutions(args.data_root, r["set"])
        total = int(rank.max()) + 1
        curve = []
        for views in sorted({v for v in (1, 2, 4, 8, 17, 33, 65, 129, 257) if v < total} | {total}):
            keep = rank < views
            columns = ("task", "test", "view", "q_halt", "logprob", "shapes", "starts")
            part = dataclasses.replace(c, **{k: getattr(c, k)[keep] for k in columns})
            scores = pass_at_k(vote(part, "count"), solutions, ks=(2, ALL))
            solved = [round(scores[f"pass@{k}_outputs"] * r["outputs"]) for k in (2, ALL)]
            curve.append((views, *solved))
        cells = ", ".join(f"{v}: {n} ({m})" for v, n, m in curve)
        right = view_accuracy(c, solutions, rank < 17)
        print(f"| {r['set']} | {r['arm']} | {r['seed']} | {right:.3f} | {cells} |")


def view_accuracy(c: Candidates, solutions: dict, keep: np.ndarray) -> float:
    """The share of the kept views whose answer is the held-out test output (a view with a
    malformed answer has no candidate and is not counted)."""
    right = [
        np.array_equal(c.grid(i), np.asarray(solutions[c.task_ids[c.task[i]]][c.test[i]]))
        for i in np.flatnonzero(keep)
    ]
    return float(np.mean(right)) if right else 0.0


def command_fit(args) -> None:
    """How well each run's network fits the target tasks' own demonstrations (every trained
    variant, all supervision steps), beside which tasks it solves: whether a task is missed
    because its rule is not learnt at all or because what is learnt does not carry to the test."""
    import torch

    from arcpipe.data.dataset import Dataset
    from arcpipe.data.layout import Bucket, Layout
    from arcpipe.predict import inference_model, resolve_checkpoint, run_views
    from arcpipe.train.checkpoint import load_checkpoint

    names = {a.split("=")[0] for a in args.arms}
    print("| set | arm | seed | demonstrations fitted | tasks solved: fitted | unsolved: fitted |")
    print("|---|---|---|---|---|---|")
    for r in load_results(args.results):
        arm = Arm.parse(f"{r['arm']}={r['spec']}")
        if (names and r["arm"] not in names) or arm.trained_by:  # a predict-only arm's network
            continue  # is adapted or its source arm's: measure that arm instead
        dataset = Dataset.open(prepare(r["set"], arm, args.data_root, args.work))
        ckpt = load_checkpoint(resolve_checkpoint(row_run_dir(args, r) / "run", "last"))
        model = inference_model(ckpt, dataset, torch.device("cpu"))
        layout = Layout(dataset, ckpt.config.model.board)
        variants = np.asarray(dataset.examples("train")[:, 0])
        tasks = np.asarray(dataset.arrays["variants"])[variants, 0]
        keep = dataset.variant_index(variants) < (ckpt.config.train.num_variants or np.inf)
        solved = solved_tasks(args, r)
        fitted, split = [], {True: [], False: []}
        for index, task in enumerate(dataset.tasks):
            if task.role != "target":
                continue
            rows = np.flatnonzero((tasks == index) & keep)
            exact = []
            for chunk in np.array_split(rows, -(-len(rows) // 32)):
                bucket = Bucket(int(layout.row_cells("train", chunk).max()), True)
                out = run_views(
                    model,
                    dataset,
                    "train",
                    chunk,
                    torch.device("cpu"),
                    layout=layout,
                    bucket=bucket,
                    loss_kind=ckpt.config.train.loss,
                )
                exact.extend(out.exact.tolist())
            fitted.append(np.mean(exact))
            split[task.id in solved].append(np.mean(exact))
        cells = [f"{np.mean(v):.2f} ({len(v)})" if v else "-" for v in (split[True], split[False])]
        print(
            f"| {r['set']} | {r['arm']} | {r['seed']} | {np.mean(fitted):.2f} | "
            f"{cells[0]} | {cells[1]} |"
        )


def command_programs(args) -> None:
    """Each run's pass@2 with ``--programs`` (a fitted whole-grid program's answer first), voted
    from the same candidates by the run's own rule: what the option adds to that very run."""
    print("| set | arm | seed | pass@2 | with --programs | tasks programmed |")
    print("|---|---|---|---|---|---|")
    by_arm: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for r in load_results(args.results):
        if r["set"] not in args.set:
            continue
        arm = Arm.parse(f"{r['arm']}={r['spec']}")
        _, programmed = _targets(prepare(r["set"], arm, args.data_root, args.work))
        solved = ensemble_solved(args, r["set"], arm, [row_run_dir(args, r)], with_programs=True)
        by_arm.setdefault((r["set"], r["arm"]), []).append((r["solved@2"], solved))
        cells = [r["set"], r["arm"], r["seed"], r["solved@2"], solved, len(programmed)]
        print("| " + " | ".join(map(str, cells)) + " |")
    print("\n| set | arm | runs | pass@2 mean | with --programs mean |\n|---|---|---|---|---|")
    for (set_name, name), pairs in by_arm.items():
        plain, both = np.mean(pairs, axis=0)
        print(f"| {set_name} | {name} | {len(pairs)} | {plain:.1f} | {both:.1f} |")


def command_seeds(args) -> None:
    """Each arm's pass@2 from one seed's candidates, from every pair of its seeds' candidates
    voted together, and from all of them (also with ``--programs``): what an ensemble of runs adds
    at two or three times the compute."""
    runs: dict[tuple[str, str], list[dict]] = {}
    for r in load_results(args.results):
        if r["set"] in args.set and (not args.arms or r["arm"] in args.arms):
            runs.setdefault((r["set"], r["arm"]), []).append(r)
    print("| set | arm | one seed (mean) | two seeds (mean) | all seeds | all seeds, --programs |")
    print("|---|---|---|---|---|---|")
    for (set_name, name), rows in runs.items():
        if len(rows) < 2:
            continue
        arm = Arm.parse(f"{name}={rows[0]['spec']}")
        files = {r["seed"]: row_run_dir(args, r) for r in rows}
        seeds = sorted(files)
        one = [ensemble_solved(args, set_name, arm, [files[s]]) for s in seeds]
        two = [
            ensemble_solved(args, set_name, arm, [files[a], files[b]])
            for a, b in itertools.combinations(seeds, 2)
        ]
        every = [files[s] for s in seeds]
        print(
            f"| {set_name} | {name} | {np.mean(one):.1f} ({'/'.join(map(str, one))}) | "
            f"{np.mean(two):.1f} ({'/'.join(map(str, two))}) | "
            f"{ensemble_solved(args, set_name, arm, every)} | "
            f"{ensemble_solved(args, set_name, arm, every, with_programs=True)} |"
        )


def ensemble_solved(
    args, set_name: str, arm: Arm, runs: list[Path], with_programs: bool = False
) -> int:
    """Held-out outputs solved at pass@2 when the candidates of ``runs`` are voted together."""
    from arcpipe.arc.submission import submission_from_votes

    test_inputs, programmed = _targets(prepare(set_name, arm, args.data_root, args.work))
    candidates = merge_runs([run / "submission.candidates.npz" for run in runs])
    answers = programmed if with_programs else {}
    submission = submission_from_votes(vote(candidates, arm.vote_rule), test_inputs, 2, answers)
    score = score_submission(submission, set_solutions(args.data_root, set_name))
    return sum(sum(t.correct) for t in score.tasks)


@functools.cache
def _targets(data: Path) -> tuple[dict, dict]:
    """A set dataset's target test inputs and programmed answers (read once per dataset)."""
    from arcpipe.data.dataset import Dataset
    from arcpipe.predict import target_program_answers, target_test_inputs

    dataset = Dataset.open(data)
    return target_test_inputs(dataset), target_program_answers(dataset)


def solved_tasks(args, r: dict) -> set[str]:
    """Tasks whose every test output the run's submission solves (one of its two attempts)."""
    submission = orjson.loads((row_run_dir(args, r) / "submission.json").read_bytes())
    score = score_submission(submission, set_solutions(args.data_root, r["set"]))
    return {t.task_id for t in score.tasks if all(t.correct)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "table", "calibrate", "views", "fit", "programs", "seeds"):
        p = sub.add_parser(name)
        p.add_argument("--results", type=Path, default=REPO / "runs" / "protocol" / "results.jsonl")
        p.add_argument("--work", type=Path, default=REPO / "runs" / "protocol")
        p.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
        p.add_argument("--set", nargs="+", default=["A"], choices=list(SOURCES))
        p.add_argument("--arms", nargs="+", default=[])
        p.add_argument("--seeds", type=int, nargs="+", default=[0])
        p.add_argument("--budget", choices=("wall", "cpu"), default="cpu")
        p.add_argument("--threads", type=int, default=0, help="0: 2 for wall, 1 for cpu")
        p.add_argument("--jobs", type=int, default=1, help="runs at once (at most 2)")
        p.add_argument("--train-wall", type=float, default=TRAIN_WALL)
        p.add_argument("--predict-wall", type=float, default=PREDICT_WALL)
        p.add_argument("--train-cpu", type=float, default=TRAIN_CPU)
        p.add_argument("--predict-cpu", type=float, default=PREDICT_CPU)
        p.add_argument("--steps", type=int, default=200, help="calibrate: steps per run")
    args = parser.parse_args()
    commands = {
        "run": command_run,
        "table": command_table,
        "calibrate": command_calibrate,
        "views": command_views,
        "fit": command_fit,
        "programs": command_programs,
        "seeds": command_seeds,
    }
    commands[args.command](args)


if __name__ == "__main__":
    main()
