"""The ``arcpipe`` command line: parse options, call one library function, print the result.

A user mistake (:class:`~arcpipe.errors.ArcpipeError`) is printed as one ``error:`` line and
exits with status 2; nothing else is printed for it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from arcpipe import __version__
from arcpipe.errors import ArcpipeError

stdout = Console(highlight=False)


class _Group(click.Group):
    """A click group that turns ArcpipeError into one line and exit status 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ArcpipeError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


# predict, vote, score and report rank candidates by the same rules (arcpipe.arc.vote.RULES,
# spelled out here so that --help needs no numpy import).
VOTE_RULES = ("count", "q_weighted", "consistency", "poe", "poe_cells", "poe_count")
submission_out_option = click.option(
    "--out",
    default=Path("submission.json"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where to write submission.json.",
)
attempts_option = click.option(
    "--attempts", default=2, show_default=True, help="Attempts per test input."
)
vote_rule_option = click.option(
    "--vote-rule",
    type=click.Choice(VOTE_RULES),
    default="count",
    show_default=True,
    help="How identical candidates are ranked: count (the reference), q_weighted, consistency, "
    "poe (cross-view product of experts), poe_cells (poe per cell), poe_count (poe + log "
    "count); see arcpipe.arc.vote.",
)
programs_option = click.option(
    "--programs",
    is_flag=True,
    help="Search each target task for a whole-grid program (dihedral tilings, upscaling, a "
    "colour map; arcpipe.arc.programs) that reproduces every demonstration exactly, and put its "
    "answer first; the network's votes fill the other attempts.",
)
candidates_files_option = click.option(
    "--candidates",
    "candidates_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Candidates file written by predict; repeat it to merge runs (an ensemble).",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="arcpipe")
def main() -> None:
    """TRM for ARC-AGI: build datasets, train, predict, score."""


# ----------------------------------------------------------------------------- build-data


@main.command("build-data")
@click.option(
    "--task",
    "kind",
    type=click.Choice(["arc", "sudoku", "maze"]),
    default="arc",
    show_default=True,
    help="arc: task JSON sources; sudoku/maze: --train and --eval are CSV files.",
)
@click.option(
    "--train",
    "train_sources",
    multiple=True,
    help="Training SOURCE: a folder of task JSON (ARC or re-ARC) files, a Kaggle "
    "*_challenges.json or a *.jsonl corpus; SOURCE:N gives its tasks N variants (repeatable).",
)
@click.option(
    "--eval",
    "eval_source",
    help="Target SOURCE: the tasks whose test inputs are to be answered (SOURCE:N as --train).",
)
@click.option(
    "--preset",
    type=click.Choice(["arc-agi-1", "arc-agi-2"]),
    help="The reference's source set (needs --data-root).",
)
@click.option(
    "--data-root",
    type=click.Path(path_type=Path),
    help="Folder holding arc-agi-1/, arc-agi-2/, conceptarc/ (for --preset).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Dataset directory.")
@click.option(
    "--num-aug",
    default=1000,
    show_default=True,
    help="Augmented variants per task besides the original.",
)
@click.option("--seed", default=42, show_default=True)
@click.option("--canvas", default=30, show_default=True, help="Board side (max grid size).")
@click.option(
    "--val-tasks",
    default=0,
    show_default=True,
    help="Hold out the test pairs of K training tasks as a validation split.",
)
@click.option("--tasks", "task_ids", help="Comma-separated task ids to restrict the build to.")
@click.option("--no-translate", is_flag=True, help="Keep training examples at the origin.")
@click.option("--materialize", is_flag=True, help="Also write the reference's array layout.")
@click.option(
    "--leakage",
    type=click.Choice(["refuse", "drop", "allow"]),
    help="Eval test pairs found in the training data (up to a transform and colours): refuse "
    "(default), drop the training tasks that hold them, or allow (recorded). Presets: allow.",
)
@click.option(
    "--duplicates",
    type=click.Choice(["drop", "keep"]),
    default="drop",
    show_default=True,
    help="The same training task twice (up to a transform and colours): keep the first copy "
    "only, or keep every copy (the reference).",
)
@click.option(
    "--pairs-per-task",
    default=10,
    show_default=True,
    help="re-ARC files and JSONL 'examples' lists: pairs per task (demonstration group).",
)
@click.option(
    "--variants-from",
    type=click.Path(path_type=Path),
    help="The reference's identifiers.json: build exactly the variants it names, in its order "
    "(the dataset of a public checkpoint's puzzle table; --num-aug is not used).",
)
@click.option("--subsample", type=int, help="sudoku/maze: keep N random training puzzles.")
@click.option("--min-rating", type=int, help="sudoku: keep puzzles rated at least this.")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset at --out.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def build_data(
    kind: str,
    train_sources: tuple[str, ...],
    eval_source: str | None,
    preset: str | None,
    data_root: Path | None,
    out: Path,
    num_aug: int,
    seed: int,
    canvas: int,
    val_tasks: int,
    task_ids: str | None,
    no_translate: bool,
    materialize: bool,
    leakage: str | None,
    duplicates: str,
    pairs_per_task: int,
    variants_from: Path | None,
    subsample: int | None,
    min_rating: int | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Validate tasks (or puzzles) and write an augmented dataset directory."""
    from arcpipe.arc.presets import PRESET_LEAKAGE, resolve_preset
    from arcpipe.data.build import BuildOptions, build_arc_dataset

    if kind != "arc":
        from arcpipe.puzzles.cli import build_puzzle_data

        summary = build_puzzle_data(
            kind,
            tuple(Path(s) for s in train_sources),
            None if eval_source is None else Path(eval_source),
            out,
            num_aug,
            seed,
            subsample,
            min_rating,
            overwrite,
            quiet,
        )
        print_build_summary(summary, num_aug)
        return
    if subsample is not None or min_rating is not None:
        raise ArcpipeError("--subsample and --min-rating are for --task sudoku|maze")
    if preset is not None:
        if data_root is None:
            raise ArcpipeError("--preset needs --data-root")
        if train_sources or eval_source:
            raise ArcpipeError("--preset replaces --train/--eval; give one or the other")
        sources = resolve_preset(preset, data_root)
        train_sources, eval_source = sources.train, sources.eval
        leakage = leakage or PRESET_LEAKAGE
    if eval_source is None:
        raise ArcpipeError("--eval SOURCE is required (or --preset with --data-root)")
    options = BuildOptions(
        num_aug=num_aug,
        seed=seed,
        canvas=canvas,
        val_tasks=val_tasks,
        tasks=None if task_ids is None else tuple(t.strip() for t in task_ids.split(",") if t),
        translate=not no_translate,
        materialize=materialize,
        leakage=leakage or "refuse",
        duplicates=duplicates,
        pairs_per_task=pairs_per_task,
        variants_from=None if variants_from is None else str(variants_from),
    )
    summary = build_arc_dataset(
        train_sources, eval_source, out, options, overwrite=overwrite, quiet=quiet
    )
    print_build_summary(summary, options.num_aug)


def print_build_summary(summary, num_aug: int) -> None:
    """The closing table of a build."""
    table = Table(title=f"dataset {summary.path}", show_header=False)
    counts = summary.counts
    for key in (
        "tasks",
        "variants",
        "puzzle_identifiers",
        "train_examples",
        "val_examples",
        "test_examples",
    ):
        if key in counts:
            table.add_row(key.replace("_", " "), f"{counts[key]:,}")
    if getattr(summary, "coverage", None):
        _add_coverage_rows(table, summary.coverage)
    else:
        short = summary.short_tasks
        listed = ", ".join(f"{t} ({n})" for t, n in sorted(short.items())[:8])
        more = f", ... {len(short) - 8} more" if len(short) > 8 else ""
        uniform = len(set(summary.num_aug)) <= 1
        table.add_row(
            f"tasks below {num_aug + 1} variants"
            if uniform
            else "tasks below their source's count",
            f"{len(short)}" + (f": {listed}{more}" if short else ""),
        )
    if summary.skipped_test_pairs:
        table.add_row("test pairs without output (not trained on)", str(summary.skipped_test_pairs))
    table.add_row("bytes on disk", f"{summary.bytes_on_disk:,}")
    table.add_row("seconds", f"{summary.seconds:.1f}")
    stdout.print(table)
    for name, text in screening_rows(summary.leakage, summary.duplicates):
        stdout.print(f"{name}: {text}")


def screening_rows(leakage: dict, duplicates: dict) -> list[tuple[str, str]]:
    """Closing-table rows for what the leakage guard and the duplicate rule found."""
    if not leakage:
        return []
    found = leakage["test_pairs_hit"]
    text = f"none of {leakage['eval_test_pairs']:,} test pairs"
    if found:
        action = "kept and recorded"
        if leakage["mode"] == "drop":
            action = f"{len(leakage['dropped_tasks']):,} training tasks dropped"
            if leakage["contained"]:
                action += f", {len(leakage['contained']):,} left (eval demonstrations)"
        text = (
            f"{found:,} of {leakage['eval_test_pairs']:,} test outputs ({leakage['tasks_hit']:,} "
            f"eval tasks): {action} (--leakage {leakage['mode']})"
        )
    rows = [("eval test outputs in training data", text)]
    if duplicates["count"]:
        what = "first copy kept" if duplicates["mode"] == "drop" else "all kept"
        rows.append(("duplicate training tasks", f"{duplicates['count']:,} ({what})"))
    return rows


def _add_coverage_rows(table: Table, coverage: dict) -> None:
    """What a ``--variants-from`` build took from the names, and what either side lacks."""

    def listed(ids: list[str]) -> str:
        more = f", ... {len(ids) - 8} more" if len(ids) > 8 else ""
        return f"{len(ids)}" + (f": {', '.join(ids[:8])}{more}" if ids else "")

    table.add_row("names used", f"{coverage['names_used']:,} of {coverage['table_rows'] - 1:,}")
    table.add_row(
        "names of tasks the sources lack (unused)",
        f"{coverage['names_of_unknown_tasks']:,} names of {listed(coverage['unknown_tasks'])}",
    )
    table.add_row("tasks the names lack (left out)", listed(coverage["unnamed_tasks"]))


# ----------------------------------------------------------------------------- train


def parse_duration(text: str | None) -> float | None:
    """'90s', '10m', '1.5h', '2d' or plain seconds -> seconds."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1] in units else (text, "s")
    try:
        return float(number) * units[unit]
    except ValueError:
        raise ArcpipeError(f"not a duration: {text!r} (e.g. 90s, 10m, 1.5h)") from None


@main.command()
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Dataset directory.")
@click.option(
    "--config",
    "config_name",
    default="tiny",
    show_default=True,
    help="A shipped recipe name or a TOML file.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value, e.g. --set train.lr=3e-4 (repeatable).",
)
@click.option(
    "--resume",
    type=click.Choice(["auto", "never"]),
    default="never",
    show_default=True,
    help="auto: continue the run in --out from its last checkpoint if there is one (with its "
    "own config; --set may change only train.epochs, compile, and the logging, evaluation and "
    "checkpoint settings).",
)
@click.option(
    "--init-from",
    type=click.Path(path_type=Path),
    help="Post-train from a checkpoint or export: weights loaded, fresh puzzle table.",
)
@click.option("--max-time", help="Stop cleanly (with a checkpoint) after this long, e.g. 10m.")
@click.option(
    "--max-cpu-time",
    help="Stop cleanly after this much CPU time of the process (all its threads), e.g. 15m: a "
    "budget that other jobs on a shared machine do not shrink.",
)
@click.option("--max-steps", type=int, help="Stop cleanly at this optimizer step.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")
@click.option("--quiet", is_flag=True)
def train(
    data: Path,
    config_name: str,
    out: Path,
    overrides: tuple[str, ...],
    resume: str,
    init_from: Path | None,
    max_time: str | None,
    max_cpu_time: str | None,
    max_steps: int | None,
    device: str,
    quiet: bool,
) -> None:
    """Train TRM on a dataset directory (torchrun for many GPUs)."""
    from arcpipe.config import load_config
    from arcpipe.train.loop import RunOptions
    from arcpipe.train.loop import train as run_training

    options = RunOptions(
        data=data,
        config=load_config(config_name, overrides),
        out=out,
        resume=resume == "auto",
        overrides=overrides,
        init_from=init_from,
        max_time=parse_duration(max_time),
        max_cpu_time=parse_duration(max_cpu_time),
        max_steps=max_steps,
        device=device,
        quiet=quiet,
    )
    result = run_training(options)
    stdout.print(
        f"stopped at step {result.step} ({result.reason}); this sitting ran steps "
        f"{result.start_step + 1}-{result.step}; checkpoint {result.checkpoint}"
    )
    if result.last_eval:
        shown = {k: v for k, v in result.last_eval.items() if k.startswith(("pass@", "exact"))}
        stdout.print("evaluation: " + ", ".join(f"{k} {v:.3f}" for k, v in shown.items()))
        if result.last_eval.get("split") == "test":
            _print_training_note(data)


def _print_training_note(data: Path) -> None:
    """Say so when a dataset's training examples hold its own test outputs."""
    import orjson

    from arcpipe.data.leakage import training_note

    note = training_note(orjson.loads((data / "manifest.json").read_bytes()))
    if note:
        stdout.print(f"warning: {note}")


# ----------------------------------------------------------------------------- predict


@main.command()
@click.option(
    "--run",
    "--run-dir",
    "run_dir",
    type=click.Path(path_type=Path),
    help="Run directory (spell it --run-dir under torchrun, which claims --run).",
)
@click.option(
    "--checkpoint", default="best", show_default=True, help="best, last, or a checkpoint directory."
)
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Dataset directory.")
@submission_out_option
@attempts_option
@click.option(
    "--views",
    default=0,
    show_default=True,
    help="Views (augmented variants) per test input; 0: all (a run trained with "
    "train.num_variants = K and a per-variant puzzle table: its first K).",
)
@click.option("--max-time", help="Stop inference after this long and keep the best so far.")
@click.option("--max-cpu-time", help="Stop inference after this much CPU time of the process.")
@click.option(
    "--sync-every",
    default="60s",
    show_default=True,
    help="How often the submission is replaced by the current vote during inference (0s: after "
    "every batch).",
)
@click.option("--halt-early", is_flag=True, help="Stop a view once its q_halt says halt.")
@click.option(
    "--supervision-steps",
    default=0,
    show_default=True,
    help="Supervision steps (N_sup) each view runs; 0: the run's own. More than the run trained "
    "with recurses further at test time.",
)
@click.option("--batch-size", default=0, help="Views per batch (default 64 on GPU, 8 on CPU).")
@click.option(
    "--candidates",
    type=click.Path(path_type=Path),
    help="Candidates file (default: next to the submission).",
)
@vote_rule_option
@click.option(
    "--cross-view-k",
    default=8,
    show_default=True,
    help="Score each test input's top K grids (by count) under all its views, for the poe "
    "rules; 0: no cross-view scores (views then go strictly variant by variant).",
)
@click.option(
    "--adapt-steps",
    type=int,
    help="Test-time training first: continue the run this many steps on the target tasks' "
    "demonstrations (the run's own recipe), then predict with the adapted network. Counts "
    "toward --max-time / --max-cpu-time.",
)
@click.option("--adapt-time", help="Test-time training for at most this long (wall).")
@click.option("--adapt-cpu-time", help="Test-time training for at most this much CPU time.")
@click.option(
    "--adapt-lr-scale",
    default=1.0,
    show_default=True,
    help="Test-time training steps with the run's learning rates (dense and puzzle table) "
    "times this.",
)
@click.option(
    "--adapt-fresh-views",
    is_flag=True,
    help="Test-time training on fresh random augmentations of the demonstrations (as "
    "train.fresh_augmentations) rather than the built variants; needs a task-table run.",
)
@click.option(
    "--adapt-ensemble",
    is_flag=True,
    help="Predict every view with the trained network first, then with the adapted one, and "
    "vote both passes together (as arcpipe vote merges two runs).",
)
@programs_option
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True)
def predict(
    run_dir,
    checkpoint,
    data,
    out,
    attempts,
    views,
    max_time,
    max_cpu_time,
    sync_every,
    halt_early,
    supervision_steps,
    batch_size,
    candidates,
    vote_rule,
    cross_view_k,
    adapt_steps,
    adapt_time,
    adapt_cpu_time,
    adapt_lr_scale,
    adapt_fresh_views,
    adapt_ensemble,
    programs,
    device,
    quiet,
) -> None:
    """Predict every view of every test input, vote, and write submission.json."""
    from arcpipe.predict import PredictOptions
    from arcpipe.predict import predict as run_prediction

    result = run_prediction(
        PredictOptions(
            data=data,
            out=out,
            run=run_dir,
            checkpoint=checkpoint,
            attempts=attempts,
            views=views,
            max_time=parse_duration(max_time),
            max_cpu_time=parse_duration(max_cpu_time),
            sync_seconds=parse_duration(sync_every),
            halt_early=halt_early,
            supervision_steps=supervision_steps,
            batch_size=batch_size,
            candidates=candidates,
            vote_rule=vote_rule,
            cross_view_k=cross_view_k,
            adapt_steps=adapt_steps,
            adapt_time=parse_duration(adapt_time),
            adapt_cpu_time=parse_duration(adapt_cpu_time),
            adapt_lr_scale=adapt_lr_scale,
            adapt_fresh_views=adapt_fresh_views,
            adapt_ensemble=adapt_ensemble,
            programs=programs,
            device=device,
            quiet=quiet,
        )
    )
    note = {
        None: "",
        "max-time": " (stopped by --max-time)",
        "max-cpu-time": " (stopped by --max-cpu-time)",
        "signal": " (stopped by a signal)",
    }[result.stopped]
    scoring = f" ({result.scoring_seconds:.1f}s cross-view scoring)" if cross_view_k else ""
    stdout.print(
        _adaptation_note(result.adaptation)
        + f"{result.views_done:,}/{result.views_total:,} views in {result.seconds:.1f}s{scoring}"
        f"{note}, {result.malformed} malformed; {_programs_note(programs, result.programmed)}"
        f"submission {result.submission}; candidates {result.candidates}"
    )


def _programs_note(asked: bool, programmed: int) -> str:
    """How many target tasks a whole-grid program answered first ("" without --programs)."""
    return f"{programmed} task(s) answered first by a program; " if asked else ""


def _adaptation_note(adaptation) -> str:
    """What test-time training did, as the start of predict's summary line ("" without it)."""
    if adaptation is None:
        return ""
    a = adaptation
    why = "a signal" if a.stopped == "signal" else f"its {a.stopped} limit"
    return (
        f"test-time training: {a.steps:,} steps on the target tasks from step {a.start_step:,} "
        f"in {a.seconds:.1f}s (lm loss {a.lm_loss:.3f}, exact {a.exact_accuracy:.2f}; stopped "
        f"by {why}); "
    )


# ----------------------------------------------------------------------------- vote


@main.command("vote")
@click.argument("candidates", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="The dataset the runs predicted (its target tasks and test inputs).",
)
@submission_out_option
@attempts_option
@vote_rule_option
@click.option(
    "--merged", type=click.Path(path_type=Path), help="Also write the merged candidates file."
)
@programs_option
def vote_command(
    candidates: tuple[Path, ...],
    data: Path,
    out: Path,
    attempts: int,
    vote_rule: str,
    merged: Path | None,
    programs: bool,
) -> None:
    """Vote CANDIDATES files (one run, or several merged: an ensemble) into submission.json."""
    from arcpipe.ensemble import vote_files

    result = vote_files(list(candidates), data, out, vote_rule, attempts, merged, programs)
    stdout.print(
        f"{len(candidates)} candidates file(s), {result.candidates:,} candidates, "
        f"{result.test_inputs} test inputs voted by {vote_rule}; "
        f"{_programs_note(programs, result.programmed)}submission {out}"
        + (f"; merged candidates {merged}" if merged else "")
    )


# ----------------------------------------------------------------------------- score


@main.command()
@click.argument("submission", type=click.Path(path_type=Path))
@click.argument("solutions", type=click.Path(path_type=Path))
@candidates_files_option
@vote_rule_option
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="The dataset the run trained on: also say how many of these test outputs its training "
    "examples hold (up to a transform and colours).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def score(
    submission: Path,
    solutions: Path,
    candidates_files: tuple[Path, ...],
    vote_rule: str,
    data: Path | None,
    as_json: bool,
) -> None:
    """Score SUBMISSION against SOLUTIONS (a *_solutions.json or any task SOURCE).

    With --candidates, also pass@k of the candidates ranked by --vote-rule.
    """
    import orjson

    from arcpipe.arc.score import load_solutions, score_submission
    from arcpipe.arc.submission import load_submission

    truths = load_solutions(solutions)
    result = score_submission(load_submission(submission), truths, file=submission)
    summary = result.to_dict()
    if candidates_files:
        from arcpipe.arc.candidates import merge_runs
        from arcpipe.arc.vote import pass_at_k, vote

        ks = (1, 2, 5, 10, 100, 1000)
        votes = vote(merge_runs(list(candidates_files)), vote_rule)
        summary["candidates"] = {"vote_rule": vote_rule, **pass_at_k(votes, truths, ks)}
    note = None
    if data is not None:
        from arcpipe.data.dataset import Dataset
        from arcpipe.data.leakage import contained_note, count_contained

        dataset = Dataset.open(data)
        contained, checked = count_contained(dataset, truths)
        summary["contained_test_outputs"] = contained
        summary["checked_test_outputs"] = checked
        mode = dataset.manifest.get("leakage", {}).get("mode", "allow (no guard)")
        note = contained_note(contained, summary["test_outputs"], mode) if contained else None
    if as_json:
        click.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"{submission} vs {solutions}")
    table.add_column("task")
    table.add_column("score", justify="right")
    table.add_column("test inputs (attempt that matched)")
    for task in result.tasks:
        table.add_row(
            task.task_id,
            f"{task.score:.2f}",
            " ".join(str(a) if a else "-" for a in task.attempts_used),
        )
    stdout.print(table)
    stdout.print(
        f"score per task (ARC Prize): {result.task_score:.4f}   "
        f"over test outputs (Kaggle text): {result.output_score:.4f}   "
        f"solved {summary['solved_tasks']}/{summary['tasks']} tasks"
    )
    if note:
        stdout.print(f"warning: {note}")
    if "candidates" in summary:
        shown = {k: v for k, v in summary["candidates"].items() if not k.endswith("_outputs")}
        stdout.print(
            f"candidates ({vote_rule} vote): "
            + ", ".join(f"{k} {v:.4f}" for k, v in shown.items() if k.startswith("pass@"))
        )


# ----------------------------------------------------------------------------- report


@main.command()
@candidates_files_option
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Dataset directory.")
@click.option(
    "--submission",
    type=click.Path(path_type=Path),
    help="Show this submission's attempts (default: the top-2 votes).",
)
@click.option(
    "--run",
    "runs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Also plot this run directory's curves (metrics.jsonl); repeatable.",
)
@click.option(
    "--out", default=Path("report.html"), show_default=True, type=click.Path(path_type=Path)
)
@vote_rule_option
def report(
    candidates_files: tuple[Path, ...],
    data: Path,
    submission: Path | None,
    runs: tuple[Path, ...],
    out: Path,
    vote_rule: str,
) -> None:
    """Write an HTML page of every task: pairs, test inputs, attempts, truth, votes by rule."""
    from arcpipe.arc.candidates import merge_runs
    from arcpipe.arc.submission import load_submission
    from arcpipe.data.dataset import Dataset
    from arcpipe.report import write_report

    if not candidates_files:
        raise ArcpipeError("--candidates is required (a candidates file written by predict)")
    summary = write_report(
        merge_runs(list(candidates_files)),
        Dataset.open(data),
        out,
        submission=None if submission is None else load_submission(submission),
        rule=vote_rule,
        runs=list(runs),
    )
    stdout.print(f"{summary.tasks} tasks, {summary.solved} solved; report {out}")


# ----------------------------------------------------------------------------- export


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--checkpoint", default="best", show_default=True, help="best, last, or a checkpoint directory."
)
@click.option("--overwrite", is_flag=True)
def export(run: Path, out: Path, checkpoint: str, overwrite: bool) -> None:
    """Write a slim model of RUN to OUT: EMA weights, config, mean puzzle embedding."""
    from arcpipe.export import export_checkpoint, export_record, export_size
    from arcpipe.predict import resolve_checkpoint

    export_checkpoint(resolve_checkpoint(run, checkpoint), out, overwrite=overwrite)
    model = export_record(out)["model"]
    stdout.print(
        f"export {out}: {model['family'].upper()} ({model['state']} state, {model['mlp']}, "
        f"{model['parameters']:,} parameters), {export_size(out):,} bytes"
    )


# ----------------------------------------------------------------------------- import


@main.command("import")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Run directory.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="The run's all_config.yaml (default: the one beside CHECKPOINT).",
)
@click.option(
    "--identifiers",
    type=click.Path(path_type=Path),
    help="The reference dataset's identifiers.json: map every puzzle row to --data's variants "
    "(without it only the table's mean row is kept, for post-training).",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="The dataset built with build-data --variants-from the same identifiers.json.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing run at --out.")
def import_command(
    checkpoint: Path,
    out: Path,
    config_file: Path | None,
    identifiers: Path | None,
    data: Path | None,
    overwrite: bool,
) -> None:
    """Turn a reference checkpoint (TRM's or URM's step_N file) into an arcpipe run directory."""
    from arcpipe.importer import ImportOptions, import_checkpoint

    result = import_checkpoint(
        ImportOptions(checkpoint, out, config_file, identifiers, data, overwrite)
    )
    record, model = result.record, result.config.model
    table = record["puzzle_table"]
    halting = "loops" if model.state == "single" else "halt_max_steps"
    loops = (
        f"T={model.cycles} (H_cycles) x n={model.latent_steps} (L_cycles), "
        f"N_sup={model.supervision_steps} ({halting})"
    )
    kept = (
        f"{table['rows_kept']:,} rows mapped onto {table['dataset']}"
        if table["kept"] == "per-variant"
        else "the mean row only (no --identifiers): for export and train --init-from; "
        "predict refuses it"
    )
    stdout.print(
        f"imported {record['architecture']['family'].upper()} ({record['architecture']['name']}), "
        f"step {record['step']}, {len(record['tensors'])} tensors\n"
        f"loop counts {loops}: predict and post-training run these\n"
        f"puzzle table {table['source_rows']:,} x {table['dim']}: {kept}\n"
        f"run {result.run} (record: {result.run / 'import.json'})",
        soft_wrap=True,
    )


# ----------------------------------------------------------------------------- demo


@main.command()
@click.option(
    "--out",
    default=Path("arcpipe-demo"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder for everything the demo writes.",
)
@click.option("--steps", default=400, show_default=True, help="Training steps (~0.45 s each).")
@click.option(
    "--model",
    type=click.Choice(["trm", "urm"]),
    default="trm",
    show_default=True,
    help="trm: the tiny recipe; urm: urm_tiny, the Universal Reasoning Model at the same size.",
)
@click.option("--quiet", is_flag=True)
def demo(out: Path, steps: int, model: str, quiet: bool) -> None:
    """Run the whole flow on the project's sample tasks: build, train, predict, score, report."""
    from arcpipe.demo import DEMO_BUILD, run_demo

    result = run_demo(out, steps=steps, quiet=quiet, model=model)
    print_build_summary(result.data, DEMO_BUILD.num_aug)
    solved = ", ".join(result.solved) or "none"
    stdout.print(
        f"score {result.task_score:.3f} per task, {result.output_score:.3f} over test outputs "
        f"(solved: {solved})\n"
        f"run        {result.run}\n"
        f"submission {result.submission}\n"
        f"report     {result.report}"
    )


def _register_puzzle_commands() -> None:
    from arcpipe.puzzles.cli import evaluate, generate

    main.add_command(generate)
    main.add_command(evaluate)


_register_puzzle_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
