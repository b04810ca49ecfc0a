"""The submission flow: one guarded method per phase (see :mod:`arcpipe.kaggle`)."""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from arcpipe.kaggle.files import (
    CompetitionFiles,
    describe_export,
    export_family,
    find_competition,
    find_export,
    find_wheelhouse,
    known_solutions,
    write_fallback,
)
from arcpipe.kaggle.plan import Settings, TimePlan, hms
from arcpipe.kaggle.process import CommandResult, arcpipe_command, run_command, visible_gpus

RERUN_ENV = "KAGGLE_IS_COMPETITION_RERUN"
FAULT_OPTION = "--injected-fault"
# The post-training recipe for each model family an export can hold (posttrain_config = "auto").
POSTTRAIN_RECIPES = {"trm": "kaggle_posttrain", "urm": "kaggle_posttrain_urm"}


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
        self.candidates = self.scratch / "submission.candidates.npz"
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
        print(f"[arcpipe-kaggle {hms(self.elapsed())}] {message}", flush=True)

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
        self.log(f"{name}: {status} in {hms(result.seconds)}" + (f" ({note})" if note else ""))
        return result

    def _budget(self, phase: str) -> float:
        seconds = self.plan.max_time(phase, self.elapsed())
        if seconds < 1:
            raise _Skip("no time left in the plan")
        return seconds

    def _run(
        self, phase: str, args: list[str], seconds: float, gpus: int = 0, retry: bool = False
    ) -> CommandResult:
        cmd = arcpipe_command(gpus) + args
        if phase in self.settings.faults():
            cmd.append(FAULT_OPTION)
        log = self.logs / f"{phase}{'-retry' if retry else ''}.log"
        return run_command(cmd, log, seconds)

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
            export, wheels = describe_export(self.export_dir()), find_wheelhouse(self.input_dir)
            self.log(f"export: {export}; wheelhouse: {wheels}")
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
            # A submission has nothing to score: public data that holds a hidden test pair is
            # trained on (and recorded), never a refused build and a fallback submission.
            args += ["--leakage", "allow"]
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
            batch = self._posttrain_batch(max(1, gpus))
            result = self._train(export, gpus, batch)
            if result.out_of_memory and self.checkpoint() is None and batch > max(1, gpus):
                batch = self._posttrain_batch(max(1, gpus), batch // 2)
                self.log(f"train: out of memory, retrying at global batch {batch}")
                result = self._train(export, gpus, batch, retry=True)
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
                result = self._predict(gpus, batch=16, retry=True)
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

    def posttrain_config(self) -> str:
        """``settings.posttrain_config``; for "auto" the recipe sized for the export's model."""
        if self.settings.posttrain_config != "auto":
            return self.settings.posttrain_config
        return POSTTRAIN_RECIPES.get(export_family(self.export_dir()), "kaggle_posttrain")

    def _export_canvas(self) -> int:
        export = self.export_dir()
        if export is None:
            return 30
        record = json.loads((export / "export.json").read_text())
        return int(record.get("dataset", {}).get("canvas", 30))

    def _posttrain_batch(self, world: int, batch: int = 0) -> int:
        """The recipe's global batch (its ``posttrain_set`` included) or ``batch``, rounded down
        to a multiple of the ranks."""
        from arcpipe.config import load_config

        recipe = load_config(self.posttrain_config(), self.settings.posttrain_set.split())
        batch = batch or recipe.train.global_batch_size
        return max(world, batch - batch % world)

    def _train(self, export: Path, gpus: int, batch: int, retry: bool = False) -> CommandResult:
        seconds = self._budget("train")
        args = self._train_args(export, seconds, gpus, batch)
        return self._run("train", args, seconds, gpus, retry)

    def _predict(self, gpus: int, batch: int, retry: bool = False) -> CommandResult:
        seconds = self._budget("predict")
        return self._run("predict", self._predict_args(seconds, gpus, batch), seconds, gpus, retry)

    def _train_args(self, export: Path, seconds: float, gpus: int, batch: int) -> list[str]:
        """The recipe's [train] settings; the architecture comes from the export (--init-from).

        In-training evaluation is off (``eval_split = "val"``, and no validation split is built):
        the predict phase does that work once, inside its own time allowance.
        """
        args = ["train", "--data", str(self.data), "--config", self.posttrain_config()]
        for item in self.settings.posttrain_set.split():
            args += ["--set", item]
        # Last, so that the batch the flow chose (an out-of-memory retry halves it) wins.
        args += ["--set", f"train.global_batch_size={batch}", "--set", "train.eval_split=val"]
        args += ["--out", str(self.run), "--init-from", str(export), "--resume", "auto"]
        args += ["--max-time", f"{_inner(seconds):.0f}s", "--device", _device(gpus)]
        if self.settings.posttrain_steps > 0:
            args += ["--max-steps", str(self.settings.posttrain_steps)]
        return args

    def _predict_args(self, seconds: float, gpus: int, batch: int) -> list[str]:
        # A checkpoint path, not --run: torchrun's parser takes --run for its own --run-path.
        args = ["predict", "--checkpoint", str(self.checkpoint())]
        args += ["--data", str(self.data), "--out", str(self.submission)]
        args += ["--candidates", str(self.candidates)]
        args += ["--attempts", str(self.settings.attempts), "--views", str(self.settings.views)]
        args += ["--max-time", f"{_inner(seconds):.0f}s", "--device", _device(gpus)]
        if batch:
            args += ["--batch-size", str(batch)]
        # Cross-view scores only when the rule needs them: without them the views go strictly
        # variant by variant, the best order for a prediction the time plan may cut short.
        rule = self.settings.vote_rule
        args += ["--vote-rule", rule, "--cross-view-k", "8" if rule.startswith("poe") else "0"]
        args += ["--programs"] if self.settings.programs else []
        return args + (["--halt-early"] if self.settings.halt_early else [])

    def _ensure_valid(self) -> None:
        """Repair an invalid submission.json: the vote of the predict phase's candidates when
        they load and belong to this flow's dataset, else the fallback."""
        from arcpipe.arc.submission import load_submission, validate_submission
        from arcpipe.errors import ArcpipeError

        if self.expected is None:
            raise _Skip("no competition files")
        try:
            submission = load_submission(self.submission)
            validate_submission(submission, self.expected, self.submission, self.settings.attempts)
        except ArcpipeError as err:
            self.log(f"finish: {err}")
            try:
                self._vote_again()
                self.log("finish: wrote the vote of the predict phase's candidates again")
            except Exception as vote_err:  # no usable candidates: the fallback is always valid
                self.log(f"finish: no candidates to vote ({vote_err}); writing the fallback again")
                write_fallback(self.competition.test, self.submission, self.settings.attempts)

    def _vote_again(self) -> None:
        from arcpipe.arc.candidates import Candidates
        from arcpipe.arc.submission import submission_from_votes, write_submission
        from arcpipe.arc.vote import vote
        from arcpipe.data.dataset import Dataset
        from arcpipe.predict import target_program_answers, target_test_inputs

        if not self.dataset_ready:
            raise FileNotFoundError("no dataset")
        dataset = Dataset.open(self.data)
        votes = vote(Candidates.load(self.candidates), self.settings.vote_rule)
        attempts = self.settings.attempts
        programmed = target_program_answers(dataset) if self.settings.programs else None
        submission = submission_from_votes(votes, target_test_inputs(dataset), attempts, programmed)
        write_submission(self.submission, submission, self.expected, attempts)

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
            self.log(f"  {r.name:<10} {r.status:<8} {hms(r.seconds)}  {r.note}")


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
