"""``arcpipe demo``: the whole flow on the project's own sample tasks, sized for a laptop CPU.

build-data (data/sample, 10x10 canvas) -> train (the ``tiny`` recipe, or ``urm_tiny`` for the
Universal Reasoning Model) -> predict (two attempts, every view) -> score (against the sample
solutions) -> report (HTML, with the run's curves). Everything lands under one folder; the score
and the paths are printed at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from arcpipe.data.build import BuildOptions, BuildSummary, build_arc_dataset
from arcpipe.errors import ArcpipeError

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"
DEMO_BUILD = BuildOptions(num_aug=2, canvas=10, seed=42)  # 3 views per test input
DEMO_STEPS = 400  # about 3 minutes on 2 CPU cores
DEMO_RECIPES = {"trm": "tiny", "urm": "urm_tiny"}  # --model -> the CPU-sized recipe it trains


@dataclass
class DemoResult:
    """Where the demo put things, and how it scored."""

    data: BuildSummary
    run: Path
    submission: Path
    report: Path
    task_score: float
    output_score: float
    solved: list[str]


def sample_sources(root: Path = SAMPLE_DIR) -> tuple[Path, Path]:
    """The sample tasks' training and evaluation folders."""
    train, evaluation = root / "training", root / "evaluation"
    if not train.is_dir() or not evaluation.is_dir():
        raise ArcpipeError(
            "sample tasks not found; run `python scripts/make_sample_tasks.py` in the repository",
            file=root,
        )
    return train, evaluation


def run_demo(
    out: Path, steps: int = DEMO_STEPS, quiet: bool = False, model: str = "trm"
) -> DemoResult:
    """Run every stage under ``out`` (replacing an earlier demo's results) with ``model``."""
    from arcpipe.arc.candidates import Candidates
    from arcpipe.arc.score import load_solutions, score_submission
    from arcpipe.arc.submission import load_submission
    from arcpipe.config import load_config
    from arcpipe.data.dataset import Dataset
    from arcpipe.predict import PredictOptions, predict
    from arcpipe.report import write_report
    from arcpipe.train.loop import RunOptions, train

    train_dir, evaluation = sample_sources()
    data = build_arc_dataset(
        [train_dir], evaluation, out / "data", DEMO_BUILD, overwrite=True, quiet=quiet
    )
    run = out / "run"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    config = load_config(DEMO_RECIPES[model])
    train(RunOptions(out / "data", config, run, max_steps=steps, quiet=quiet))
    submission = out / "submission.json"
    result = predict(PredictOptions(out / "data", submission, run=run, quiet=quiet))
    score = score_submission(load_submission(submission), load_solutions(evaluation))
    report = out / "report.html"
    write_report(
        Candidates.load(result.candidates),
        Dataset.open(out / "data"),
        report,
        submission=load_submission(submission),
        runs=[run],
    )
    return DemoResult(
        data=data,
        run=run,
        submission=submission,
        report=report,
        task_score=score.task_score,
        output_score=score.output_score,
        solved=[t.task_id for t in score.tasks if t.score == 1.0],
    )
