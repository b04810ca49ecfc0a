"""The Kaggle submission flow as library code; the notebook in ``kaggle/`` only calls it.

Phases, in order (one :class:`Flow` method each), every one guarded so that a failure (an
exception, a nonzero exit, a CUDA error, out of memory, a timeout) is logged and the flow goes on
with what it has, leaving the last valid ``submission.json`` in place:

1. ``fallback``: write a valid submission (every attempt is the test input itself) from the test
   challenges, with the standard library only, before torch is imported.
2. ``build``: ``arcpipe build-data`` with the test challenges as the target set, on the export's
   canvas. By default the hidden tasks are the only source: post-training is on their
   demonstrations, as in the reference recipe (Trelis 2025), and a bigger dataset would only
   dilute the fixed number of steps. ``extra_sources`` adds the public ``training`` /
   ``evaluation`` challenges (with solutions) or any SOURCE path.
3. ``posttrain``: ``arcpipe train --init-from EXPORT`` on all visible GPUs (``torchrun``), one
   process on one GPU, or one CPU process, with ``--max-time`` from the :class:`TimePlan`. Out of
   memory with no checkpoint yet: one retry at half the batch.
4. ``predict``: ``arcpipe predict`` straight into the working ``submission.json`` (which it only
   ever replaces atomically with a complete, validated submission), from whatever checkpoint
   post-training left, even when it failed later. Out of memory: one retry at a smaller batch.
5. ``finish``: validate ``submission.json`` (writing the fallback again should it not be valid)
   and, unless ``KAGGLE_IS_COMPETITION_RERUN`` is set, score it on the test tasks whose solutions
   are public (the placeholder's tasks are all in the training challenges).

Every :class:`Settings` field can be overridden by an environment variable
``ARCPIPE_KAGGLE_<FIELD>`` (``ARCPIPE_KAGGLE_ROOT`` points the flow at a simulated root holding
``input/`` and ``working/``), so tests run the unchanged notebook. ``ARCPIPE_KAGGLE_FAULT`` names
phases (``build,train,predict``) whose command gets the unknown option ``--injected-fault``, so
arcpipe exits with status 2 before doing any work, as a crashed phase would: an explicit,
documented fault injection, not a mock.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "ARCPIPE_KAGGLE_"
RERUN_ENV = "KAGGLE_IS_COMPETITION_RERUN"
TEST_CHALLENGES = "arc-agi_test_challenges.json"
FAULT_OPTION = "--injected-fault"
PHASES = ("build", "train", "predict")
KILL_GRACE_S = 60.0  # after SIGTERM at a phase's deadline, SIGKILL this much later


# ----------------------------------------------------------------------------- locating files


@dataclass(frozen=True)
class CompetitionFiles:
    """The competition's JSON files in one input folder (only the test challenges must exist)."""

    folder: Path

    @property
    def test(self) -> Path:
        return self.folder / TEST_CHALLENGES

    def challenges(self, name: str) -> Path | None:
        """``arc-agi_{name}_challenges.json`` when present (e.g. ``training``, ``evaluation``)."""
        path = self.folder / f"arc-agi_{name}_challenges.json"
        return path if path.is_file() else None

    def solved_sources(self) -> list[Path]:
        """The public challenges files that have a ``*_solutions.json`` sibling."""
        found = [self.challenges(name) for name in ("training", "evaluation")]
        return [p for p in found if p and _solutions_of(p).is_file()]


def _solutions_of(challenges: Path) -> Path:
    return challenges.with_name(challenges.name.replace("_challenges.json", "_solutions.json"))


def find_competition(input_dir: Path) -> CompetitionFiles:
    """Find the competition files under ``input_dir`` by globbing.

    Both ``input/arc-prize-2025/`` and ``input/competitions/<slug>/`` layouts are found; among
    several matches a folder named like the competition (or under ``competitions/``) wins.

    Raises:
        FileNotFoundError: no ``arc-agi_test_challenges.json`` anywhere under ``input_dir``.
    """
    hits = [
        *input_dir.glob(f"*/{TEST_CHALLENGES}"),
        *input_dir.glob(f"competitions/*/{TEST_CHALLENGES}"),
    ] or list(input_dir.glob(f"**/{TEST_CHALLENGES}"))
    if not hits:
        raise FileNotFoundError(f"no {TEST_CHALLENGES} under {input_dir}")
    return CompetitionFiles(min(hits, key=_competition_rank).parent)


def _competition_rank(path: Path) -> tuple[bool, int, str]:
    named = path.parent.name.startswith("arc-prize") or "competitions" in path.parts
    return (not named, len(path.parts), str(path))


def find_wheelhouse(input_dir: Path) -> Path | None:
    """The folder holding the newest ``arcpipe-*.whl`` under ``input_dir``, if any."""
    wheels = sorted(input_dir.glob("**/arcpipe-*.whl"), key=lambda p: p.name)
    return wheels[-1].parent if wheels else None


def find_export(input_dir: Path) -> Path | None:
    """The first folder (by path) under ``input_dir`` holding an arcpipe ``export.json``."""
    for record in sorted(input_dir.glob("**/export.json")):
        try:
            if json.loads(record.read_text()).get("format") == "arcpipe-export":
                return record.parent
        except (OSError, ValueError, AttributeError):
            continue
    return None


# ----------------------------------------------------------------------------- the time plan


@dataclass(frozen=True)
class TimePlan:
    """How the budget is shared between the phases, re-planned from the time actually left.

    Each phase's allowance is computed when it starts, from the elapsed time, so a slow phase
    shortens the next ones instead of overrunning: ``build`` gets at most ``build_share`` of the
    budget (capped at ``build_cap_s``); ``train`` gets what is left minus the ``predict_share``
    reservation; ``predict`` gets what is left; a final margin is always kept back.
    """

    total_s: float = 11 * 3600.0
    build_share: float = 0.05
    build_cap_s: float = 20 * 60.0
    predict_share: float = 0.2
    margin_share: float = 0.025
    margin_cap_s: float = 15 * 60.0

    @property
    def margin_s(self) -> float:
        """Time kept back at the end for the final check and score."""
        return min(self.margin_share * self.total_s, self.margin_cap_s)

    def max_time(self, phase: str, elapsed_s: float) -> float:
        """Seconds ``phase`` may run when it starts ``elapsed_s`` into the budget (never < 0).

        Args:
            phase: one of ``build``, ``train``, ``predict``.
            elapsed_s: seconds since the flow started.
        """
        left = self.total_s - self.margin_s - max(0.0, elapsed_s)
        if phase == "build":
            allowed = min(self.build_share * self.total_s, self.build_cap_s, left)
        elif phase == "train":
            allowed = left - self.predict_share * self.total_s
        elif phase == "predict":
            allowed = left
        else:
            raise ValueError(f"unknown phase {phase!r}; expected one of {', '.join(PHASES)}")
        return max(0.0, allowed)

    def describe(self) -> str:
        """One line for the log."""
        build = min(self.build_share * self.total_s, self.build_cap_s)
        return (
            f"budget {_hms(self.total_s)}: build <= {_hms(build)}, post-train until "
            f"{_hms(self.predict_share * self.total_s)} are left for predict, "
            f"final margin {_hms(self.margin_s)}"
        )


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """What the notebook's configuration cell sets; ``ARCPIPE_KAGGLE_<FIELD>`` overrides each."""

    root: Path = Path("/kaggle")  # holds input/ (read-only), working/ (output), temp/ (scratch)
    budget_hours: float = 11.0  # all phases together; Kaggle stops the notebook at 12 h
    posttrain_config: str = "kaggle_posttrain"  # a shipped recipe name or a TOML file
    posttrain_steps: int = 12_500  # --max-steps; 0: the recipe's own length; time caps either
    posttrain_set: str = ""  # extra config overrides, "train.lr=5e-5 train.ema_rate=0.99"
    views: int = 256  # augmented views per test input; 0: all
    halt_early: bool = False  # stop a view when its halting head says so
    num_aug: int = 1000  # augmented variants per task in the built dataset
    attempts: int = 2
    extra_sources: str = ""  # comma-separated: training, evaluation, or SOURCE paths
    export: str = ""  # the export folder; empty: found by globbing input/ for export.json
    canvas: int = 0  # board side; 0: the export's canvas (30 when there is no export)
    gpus: int = -1  # GPUs (processes) to use; 0: CPU; -1: every visible GPU, else CPU
    fault: str = ""  # comma-separated phases whose command is made to fail (tests)

    def with_env(self, environ: Mapping[str, str] | None = None) -> Settings:
        """A copy with every field that has an ``ARCPIPE_KAGGLE_<FIELD>`` variable overridden."""
        environ = os.environ if environ is None else environ
        changes = {}
        for f in dataclasses.fields(self):
            text = environ.get(ENV_PREFIX + f.name.upper())
            if text is not None:
                changes[f.name] = _coerce(text, getattr(self, f.name))
        return dataclasses.replace(self, **changes)

    def time_plan(self) -> TimePlan:
        """The default :class:`TimePlan` for ``budget_hours``."""
        return TimePlan(total_s=self.budget_hours * 3600.0)

    def faults(self) -> set[str]:
        """The phases named in ``fault``."""
        return {p.strip() for p in self.fault.split(",") if p.strip()}


def _coerce(text: str, default: object) -> object:
    if isinstance(default, bool):
        return text.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, Path):
        return Path(text)
    return type(default)(text)


# ----------------------------------------------------------------------------- subprocesses


@dataclass
class CommandResult:
    """How a phase's command ended."""

    returncode: int
    timed_out: bool
    tail: str  # the last lines of its output

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def out_of_memory(self) -> bool:
        return "out of memory" in self.tail.lower()


def run_command(cmd: list[str], log_path: Path, timeout_s: float) -> CommandResult:
    """Run ``cmd`` in its own process group, echoing and logging its output.

    At ``timeout_s`` the group gets SIGTERM (arcpipe stops cleanly with a checkpoint), and
    SIGKILL :data:`KILL_GRACE_S` later.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: collections.deque[str] = collections.deque(maxlen=200)
    with open(log_path, "w") as log:
        log.write(" ".join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        fired = threading.Event()
        timer = threading.Timer(timeout_s, _stop_group, (proc, fired))
        timer.start()
        try:
            for line in proc.stdout:
                sys.stdout.write(line)
                log.write(line)
                tail.append(line)
            returncode = proc.wait()
        finally:
            timer.cancel()
    return CommandResult(returncode, fired.is_set(), "".join(tail))


def _stop_group(proc: subprocess.Popen, fired: threading.Event) -> None:
    fired.set()
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def visible_gpus() -> int:
    """CUDA devices torch can see, counted in a subprocess (the kernel never touches CUDA)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    code = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
        )
        return int(out.stdout.split()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError):
        return 0


def arcpipe_command(gpus: int) -> list[str]:
    """How to start ``arcpipe``: torchrun over ``gpus`` processes, else one process."""
    if gpus > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={gpus}",
            "-m",
            "arcpipe",
        ]
    return [sys.executable, "-m", "arcpipe"]


# ----------------------------------------------------------------------------- the fallback


def read_test_inputs(test_challenges: Path) -> dict[str, list[list[list[int]]]]:
    """Every test input grid by task id, in file and test order (standard library only)."""
    tasks = json.loads(test_challenges.read_text())
    return {task_id: [pair["input"] for pair in task["test"]] for task_id, task in tasks.items()}


def write_fallback(test_challenges: Path, out: Path, attempts: int = 2) -> dict[str, int]:
    """Write the fallback submission atomically; return task id -> number of test inputs.

    Every attempt of every test input is the test input itself (``fallback_submission``'s rule).
    """
    inputs = read_test_inputs(test_challenges)
    submission = {
        task_id: [{f"attempt_{k}": grid for k in range(1, attempts + 1)} for grid in grids]
        for task_id, grids in inputs.items()
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(submission, separators=(",", ":")))
    os.replace(tmp, out)
    return {task_id: len(grids) for task_id, grids in inputs.items()}


# ----------------------------------------------------------------------------- the flow


@dataclass
class PhaseResult:
    """One phase's outcome, for the closing summary."""

    name: str
    status: str  # "ok", "failed" or "skipped"
    seconds: float
    note: str = ""


@dataclass
class Flow:
    """The submission flow on one root; call the phase methods in order (see the module doc)."""

    settings: Settings = field(default_factory=Settings)
    plan: TimePlan | None = None
    started: float = field(default_factory=time.monotonic)
    results: list[PhaseResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.plan = self.plan or self.settings.time_plan()
        root = self.settings.root
        self.input_dir, self.working = root / "input", root / "working"
        self.scratch = root / "temp" / "arcpipe"
        self.submission = self.working / "submission.json"
        self.data, self.run = self.scratch / "data", self.scratch / "run"
        self.logs = self.working / "arcpipe-logs"
        self.expected: dict[str, int] | None = None
        self.competition: CompetitionFiles | None = None
        self.dataset_ready = False
        self._gpus: int | None = None
        self.log(self.plan.describe())

    # ------------------------------------------------------------------------- helpers

    def elapsed(self) -> float:
        """Seconds since the flow started."""
        return time.monotonic() - self.started

    def log(self, message: str) -> None:
        """Print one line stamped with the elapsed time."""
        print(f"[arcpipe-kaggle {_hms(self.elapsed())}] {message}", flush=True)

    def export_dir(self) -> Path | None:
        """The export to post-train from: ``settings.export`` or the one found under input/."""
        if self.settings.export:
            return Path(self.settings.export)
        return find_export(self.input_dir)

    def checkpoint(self) -> Path | None:
        """The run's best checkpoint, else its last, if one was written (even by a failed run)."""
        found = [self.run / name for name in ("best", "last") if (self.run / name).exists()]
        return found[0] if found else None

    def gpus(self) -> int:
        """Processes to launch: ``settings.gpus``, or every visible GPU (0: CPU)."""
        if self._gpus is None:
            self._gpus = self.settings.gpus if self.settings.gpus >= 0 else visible_gpus()
            self.log(f"{self._gpus} GPU(s): " + ("torchrun" if self._gpus > 1 else "one process"))
        return self._gpus

    def _guarded(self, name: str, body: Callable[[], str]) -> PhaseResult:
        """Run a phase body; it returns a note, or raises _Skip / _Failed / anything else."""
        start = time.monotonic()
        self.log(f"{name}: start")
        try:
            status, note = "ok", body()
        except _Skip as skip:
            status, note = "skipped", str(skip)
        except _Failed as err:
            status, note = "failed", str(err)
        except Exception as err:  # a phase must never stop the flow
            status, note = "failed", f"{type(err).__name__}: {err}"
            traceback.print_exc()
        result = PhaseResult(name, status, time.monotonic() - start, note)
        self.results.append(result)
        self.log(f"{name}: {status} in {_hms(result.seconds)}" + (f" ({note})" if note else ""))
        return result

    def _budget(self, phase: str) -> float:
        seconds = self.plan.max_time(phase, self.elapsed())
        if seconds < 1:
            raise _Skip("no time left in the plan")
        return seconds

    def _run(self, phase: str, args: list[str], seconds: float, gpus: int = 0) -> CommandResult:
        cmd = arcpipe_command(gpus) + args
        if phase in self.settings.faults():
            cmd.append(FAULT_OPTION)
        return run_command(cmd, self.logs / f"{phase}.log", seconds)

    # ------------------------------------------------------------------------- phases

    def fallback(self) -> PhaseResult:
        """Write the fallback submission (standard library only; seconds)."""

        def body() -> str:
            self.competition = find_competition(self.input_dir)
            self.expected = write_fallback(
                self.competition.test, self.submission, self.settings.attempts
            )
            tests = sum(self.expected.values())
            self.log(f"competition files: {self.competition.folder}")
            self.log(f"export: {self.export_dir()}; wheelhouse: {find_wheelhouse(self.input_dir)}")
            return f"{len(self.expected)} tasks, {tests} test inputs -> {self.submission}"

        return self._guarded("fallback", body)

    def build(self) -> PhaseResult:
        """Build the dataset: the test challenges as the target set (plus extra sources)."""

        def body() -> str:
            if self.competition is None:
                raise _Skip("no competition files")
            seconds = self._budget("build")
            args = ["build-data", "--eval", str(self.competition.test)]
            for source in self._extra_sources():
                args += ["--train", str(source)]
            canvas = self.settings.canvas or self._export_canvas()
            args += ["--out", str(self.data), "--num-aug", str(self.settings.num_aug)]
            args += ["--canvas", str(canvas), "--overwrite", "--quiet"]
            _check(self._run("build", args, seconds), "build-data")
            self.dataset_ready = True
            return f"canvas {canvas}, {self.settings.num_aug} augmentations -> {self.data}"

        return self._guarded("build", body)

    def posttrain(self) -> PhaseResult:
        """Post-train from the export on the built dataset, within the plan's time."""

        def body() -> str:
            export = self.export_dir()
            if not self.dataset_ready:
                raise _Skip("no dataset")
            if export is None:
                raise _Skip("no export found (attach the export dataset)")
            gpus = self.gpus()
            batch = self._write_posttrain_config(export, max(1, gpus))
            result = self._train(export, gpus)
            if result.out_of_memory and self.checkpoint() is None and batch > max(1, gpus):
                batch = self._write_posttrain_config(export, max(1, gpus), batch // 2)
                self.log(f"train: out of memory, retrying at global batch {batch}")
                result = self._train(export, gpus)
            _check(result, "train", self.checkpoint())
            return f"global batch {batch}, checkpoint {self.checkpoint()}"

        return self._guarded("posttrain", body)

    def predict(self) -> PhaseResult:
        """Predict from the last checkpoint into the working submission.json."""

        def body() -> str:
            if not self.dataset_ready:
                raise _Skip("no dataset (the fallback stays)")
            if self.checkpoint() is None:
                raise _Skip("no checkpoint (the fallback stays)")
            gpus = self.gpus()
            result = self._predict(gpus, batch=0)
            if result.out_of_memory:
                self.log("predict: out of memory, retrying at batch 16")
                result = self._predict(gpus, batch=16)
            _check(result, "predict")
            return f"{self.settings.views or 'all'} views per test input"

        return self._guarded("predict", body)

    def finish(self) -> dict | None:
        """Validate submission.json (rewrite the fallback if needed), score it when possible.

        Returns:
            the score (``Score.to_dict()`` without the per-task detail) or None.

        Raises:
            RuntimeError: there is no valid submission (the competition files were not found).
        """
        scored: dict = {}

        def body() -> str:
            self._ensure_valid()
            if os.environ.get(RERUN_ENV):
                return "valid; competition rerun: not scored"
            scored.update(self._self_score())
            return "valid" + (f"; score {scored['task_score']:.4f}" if scored else "")

        self._guarded("finish", body)
        self._summary()
        if self.expected is None or not self.submission.exists():
            raise RuntimeError("no valid submission.json was written; see the log above")
        return scored or None

    # ------------------------------------------------------------------------- details

    def _extra_sources(self) -> list[Path]:
        sources = []
        for name in (s.strip() for s in self.settings.extra_sources.split(",")):
            if name in ("training", "evaluation"):
                path = self.competition.challenges(name)
                if path is None:
                    raise FileNotFoundError(f"no {name} challenges in {self.competition.folder}")
                sources.append(path)
            elif name:
                path = Path(name)
                sources.append(path if path.is_absolute() else self.input_dir / path)
        return sources

    def _export_canvas(self) -> int:
        export = self.export_dir()
        if export is None:
            return 30
        record = json.loads((export / "export.json").read_text())
        return int(record.get("dataset", {}).get("canvas", 30))

    def _write_posttrain_config(self, export: Path, world: int, batch: int = 0) -> int:
        """The recipe's training settings on the export's architecture; returns the batch.

        In-training evaluation is switched off (``eval_split = "val"`` and no validation split
        is built): the predict phase does that work once, inside its own time allowance.
        """
        from arcpipe.config import Config, load_config, save_config

        recipe = load_config(self.settings.posttrain_config, self.settings.posttrain_set.split())
        model = load_config(export / "config.toml").model
        batch = batch or recipe.train.global_batch_size
        batch = max(world, batch - batch % world)
        train = dataclasses.replace(recipe.train, global_batch_size=batch, eval_split="val")
        self.scratch.mkdir(parents=True, exist_ok=True)
        save_config(Config(recipe.description, model, train), self.scratch / "posttrain.toml")
        return batch

    def _train(self, export: Path, gpus: int) -> CommandResult:
        seconds = self._budget("train")
        return self._run("train", self._train_args(export, seconds, gpus), seconds, gpus)

    def _predict(self, gpus: int, batch: int) -> CommandResult:
        seconds = self._budget("predict")
        return self._run("predict", self._predict_args(seconds, gpus, batch), seconds, gpus)

    def _train_args(self, export: Path, seconds: float, gpus: int) -> list[str]:
        args = ["train", "--data", str(self.data), "--config", str(self.scratch / "posttrain.toml")]
        args += ["--out", str(self.run), "--init-from", str(export), "--resume", "auto"]
        args += ["--max-time", f"{_inner(seconds):.0f}s", "--device", _device(gpus)]
        if self.settings.posttrain_steps > 0:
            args += ["--max-steps", str(self.settings.posttrain_steps)]
        return args

    def _predict_args(self, seconds: float, gpus: int, batch: int) -> list[str]:
        # A checkpoint path, not --run: torchrun's parser takes --run for its own --run-path.
        args = ["predict", "--checkpoint", str(self.checkpoint())]
        args += ["--data", str(self.data), "--out", str(self.submission)]
        args += ["--candidates", str(self.scratch / "submission.candidates.npz")]
        args += ["--attempts", str(self.settings.attempts), "--views", str(self.settings.views)]
        args += ["--max-time", f"{_inner(seconds):.0f}s", "--device", _device(gpus)]
        if batch:
            args += ["--batch-size", str(batch)]
        return args + (["--halt-early"] if self.settings.halt_early else [])

    def _ensure_valid(self) -> None:
        from arcpipe.arc.submission import load_submission, validate_submission
        from arcpipe.errors import ArcpipeError

        if self.expected is None:
            raise _Skip("no competition files")
        try:
            submission = load_submission(self.submission)
            validate_submission(submission, self.expected, self.submission, self.settings.attempts)
        except ArcpipeError as err:
            self.log(f"finish: {err}; writing the fallback again")
            write_fallback(self.competition.test, self.submission, self.settings.attempts)

    def _self_score(self) -> dict:
        from arcpipe.arc.score import score_submission
        from arcpipe.arc.submission import load_submission

        solutions = known_solutions(self.competition)
        if not solutions:
            return {}
        result = score_submission(load_submission(self.submission), solutions).to_dict()
        result.pop("per_task")
        self.log(
            f"self-score on the {len(solutions)} of {len(self.expected)} test tasks with public "
            f"solutions: {result['task_score']:.4f} per task (ARC Prize), "
            f"{result['output_score']:.4f} over test outputs"
        )
        return result

    def _summary(self) -> None:
        for r in self.results:
            self.log(f"  {r.name:<10} {r.status:<8} {_hms(r.seconds)}  {r.note}")


def known_solutions(files: CompetitionFiles) -> dict:
    """Solutions of the test tasks found, with identical content, in the public solved files."""
    from arcpipe.arc.tasks import load_source

    known = {t.id: t for source in files.solved_sources() for t in load_source(source)}
    solutions = {}
    for task in load_source(files.test):
        merged = task.merged_with(known[task.id]) if task.id in known else None
        if merged is not None and all(p.output is not None for p in merged.test):
            solutions[task.id] = [p.output for p in merged.test]
    return solutions


class _Skip(Exception):
    """A phase has nothing to do (its inputs are missing); not a failure."""


class _Failed(Exception):
    """A phase's command failed; its output is already in the log."""


def _check(result: CommandResult, what: str, checkpoint: Path | None = None) -> None:
    if result.ok:
        return
    why = "timed out" if result.timed_out else f"exit status {result.returncode}"
    kept = f"; keeping checkpoint {checkpoint}" if checkpoint else ""
    raise _Failed(f"{what} {why}{kept}")


def _inner(seconds: float) -> float:
    """A phase's own ``--max-time``: its allowance less start-up and shut-down time."""
    return max(1.0, seconds - min(120.0, 0.1 * seconds))


def _device(gpus: int) -> str:
    return "cuda" if gpus > 0 else "cpu"


def _hms(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
