"""The Kaggle notebook end to end on a simulated ``/kaggle``, plus its time plan and wheelhouse.

The simulation: ``input/arc-prize-2025/`` holds the competition files reduced to a few small
tasks of the stand-in, ``input/arcpipe-export/`` a tiny export trained here, the wheelhouse folder
is empty (arcpipe is importable, so the install cell does nothing), and ``working/`` is empty.
The notebook's code cells run in order in one namespace, configured only through
``ARCPIPE_KAGGLE_*`` environment variables; ``ARCPIPE_KAGGLE_FAULT`` makes a phase fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from faultharness import fault_seed, kill_points, report_recovered
from helpers import REPO, TINY_MODEL, TINY_URM
from reference_format import PAPER_ROPE, write_reference_checkpoint

from arcpipe import kaggle
from arcpipe.arc.candidates import Candidates
from arcpipe.arc.submission import fallback_submission, submission_from_votes, validate_submission
from arcpipe.arc.tasks import load_source
from arcpipe.arc.vote import vote
from arcpipe.config import load_config
from arcpipe.data.build import BuildOptions, build_arc_dataset
from arcpipe.data.dataset import Dataset
from arcpipe.export import MEAN_KEY, export_checkpoint, load_tensors
from arcpipe.importer import ImportOptions, import_checkpoint
from arcpipe.predict import target_test_inputs
from arcpipe.train.checkpoint import load_checkpoint
from arcpipe.train.loop import RunOptions, train

NOTEBOOK = REPO / "kaggle" / "arcpipe-submission.ipynb"
WHEELHOUSE_SCRIPT = REPO / "scripts" / "build_kaggle_wheelhouse.sh"
TEST_TASKS = ("0d3d703e", "25ff71a9", "3618c87e")  # 3x3, 3x3 with two test inputs, 5x5
OTHER_TASKS = ("25d8a9c8", "3c9b0459")  # 3x3, in the training challenges only
CANVAS = 5
NOTEBOOK_ENV = {
    "ARCPIPE_KAGGLE_BUDGET_HOURS": "0.25",
    "ARCPIPE_KAGGLE_POSTTRAIN_STEPS": "2",
    "ARCPIPE_KAGGLE_POSTTRAIN_SET": "train.global_batch_size=4 train.lr_warmup_steps=1",
    "ARCPIPE_KAGGLE_VIEWS": "2",
    "ARCPIPE_KAGGLE_NUM_AUG": "2",
}


# ----------------------------------------------------------------------------- the simulation


def _subset(path: Path, ids: tuple[str, ...]) -> dict:
    full = json.loads(path.read_bytes())
    return {i: full[i] for i in ids}


@pytest.fixture(scope="module")
def competition(shared_data: Path, tmp_path_factory) -> Path:
    """The competition files reduced to a few small tasks (test tasks solved in training)."""
    src = shared_data / "kaggle" / "arc-prize-2025"
    out = tmp_path_factory.mktemp("competition")
    files = {
        "arc-agi_test_challenges.json": (src / "arc-agi_test_challenges.json", TEST_TASKS),
        "arc-agi_training_challenges.json": (
            src / "arc-agi_training_challenges.json",
            TEST_TASKS + OTHER_TASKS,
        ),
        "arc-agi_training_solutions.json": (
            src / "arc-agi_training_solutions.json",
            TEST_TASKS + OTHER_TASKS,
        ),
        "sample_submission.json": (src / "sample_submission.json", TEST_TASKS),
    }
    for name, (path, ids) in files.items():
        (out / name).write_text(json.dumps(_subset(path, ids)))
    return out


def train_and_export(competition: Path, work: Path, model: list[str]) -> Path:
    """A tiny model trained for two steps on the reduced tasks, exported."""
    data = work / "data"
    build_arc_dataset(
        [competition / "arc-agi_training_challenges.json"],
        competition / "arc-agi_test_challenges.json",
        data,
        BuildOptions(num_aug=2, canvas=CANVAS),
        quiet=True,
    )
    config = load_config("tiny", model)
    train(RunOptions(data, config, work / "run", max_steps=2, device="cpu", quiet=True))
    return export_checkpoint(work / "run", work / "arcpipe-export")


@pytest.fixture(scope="module")
def export(competition: Path, tmp_path_factory) -> Path:
    return train_and_export(competition, tmp_path_factory.mktemp("export"), TINY_MODEL)


@pytest.fixture(scope="module")
def urm_export(competition: Path, tmp_path_factory) -> Path:
    return train_and_export(competition, tmp_path_factory.mktemp("urm-export"), TINY_URM)


def make_root(base: Path, competition: Path, export: Path) -> Path:
    """A simulated /kaggle: input/ with the three datasets, an empty working/."""
    root = base / "kaggle"
    shutil.copytree(competition, root / "input" / "arc-prize-2025")
    shutil.copytree(export, root / "input" / "arcpipe-export")
    (root / "input" / "arcpipe-wheelhouse").mkdir()
    (root / "working").mkdir()
    return root


def run_notebook(
    root: Path, monkeypatch: pytest.MonkeyPatch, fault: str = "", faults: object = None
) -> dict:
    """Execute the notebook's code cells in order in one namespace; return the namespace.

    ``fault`` names phases to fail at start-up (``ARCPIPE_KAGGLE_FAULT``); ``faults`` is an
    ``ARCPIPE_FAULTS`` plan (or list) for the phases' commands (kills, out of memory ...).
    """
    for name, value in {**NOTEBOOK_ENV, "ARCPIPE_KAGGLE_ROOT": str(root)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ARCPIPE_KAGGLE_FAULT", fault)
    monkeypatch.delenv("KAGGLE_IS_COMPETITION_RERUN", raising=False)
    if faults is None:
        monkeypatch.delenv("ARCPIPE_FAULTS", raising=False)
    else:
        monkeypatch.setenv("ARCPIPE_FAULTS", json.dumps(faults))
    namespace: dict = {"__name__": "__main__"}
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    return namespace


def statuses(namespace: dict) -> dict[str, str]:
    return {r.name: r.status for r in namespace["flow"].results}


def check_submission(root: Path) -> dict:
    """working/submission.json covers every test task and test input, 2 attempts each."""
    challenges = json.loads(
        (root / "input/arc-prize-2025/arc-agi_test_challenges.json").read_text()
    )
    submission = json.loads((root / "working" / "submission.json").read_text())
    expected = {task_id: len(task["test"]) for task_id, task in challenges.items()}
    validate_submission(submission, expected, k=2)
    assert set(submission) == set(expected)
    return submission


def is_fallback(root: Path, submission: dict) -> bool:
    tasks = load_source(root / "input/arc-prize-2025/arc-agi_test_challenges.json")
    inputs = {t.id: [p.input for p in t.test] for t in tasks}
    return submission == fallback_submission(inputs, 2)


# ----------------------------------------------------------------------------- end to end

ALL_OK = dict.fromkeys(("fallback", "build", "posttrain", "predict", "finish"), "ok")
PHASE_COMMANDS = {"build": "build-data", "posttrain": "train", "predict": "predict"}


@pytest.fixture(scope="module")
def clean_notebook(competition: Path, export: Path, tmp_path_factory) -> dict:
    """One uninterrupted run of the notebook, each phase's events traced (its reference)."""
    base = tmp_path_factory.mktemp("clean")
    root = make_root(base, competition, export)
    trace = str(base / "trace-{command}.txt")
    with pytest.MonkeyPatch.context() as monkeypatch:
        namespace = run_notebook(root, monkeypatch, faults={"under": str(root), "trace": trace})
    traces = {
        phase: [x.split("\t", 1)[1] for x in (base / f"trace-{c}.txt").read_text().splitlines()]
        for phase, c in PHASE_COMMANDS.items()
    }
    submission = (root / "working" / "submission.json").read_bytes()
    return {"root": root, "namespace": namespace, "traces": traces, "submission": submission}


def predicted(root: Path) -> dict:
    """The submission that voting the predict phase's candidates gives."""
    scratch = root / "temp" / "arcpipe"
    inputs = target_test_inputs(Dataset.open(scratch / "data"))
    votes = vote(Candidates.load(scratch / "submission.candidates.npz"))
    return submission_from_votes(votes, inputs, 2)


@pytest.mark.slow
def test_notebook_end_to_end_then_a_train_failure_predicts_from_the_kept_checkpoint(
    clean_notebook: dict, tmp_path: Path, monkeypatch
) -> None:
    root, namespace = clean_notebook["root"], clean_notebook["namespace"]
    assert statuses(namespace) == ALL_OK
    assert check_submission(root) == predicted(root)  # the votes, not the fallback
    assert (root / "temp" / "arcpipe" / "run" / "last").exists()
    assert namespace["flow"].results[-1].note.startswith("valid; score ")

    # Again on the same root (its paths are the run's), post-training made to fail at start-up:
    # the earlier checkpoint is predicted from, to the same submission.
    namespace = run_notebook(root, monkeypatch, fault="train")
    assert statuses(namespace)["posttrain"] == "failed"
    assert statuses(namespace)["predict"] == "ok"
    assert check_submission(root) == predicted(root)
    assert (root / "working" / "submission.json").read_bytes() == clean_notebook["submission"]


@pytest.mark.slow
def test_notebook_post_trains_and_predicts_a_boxed_export_on_boxed_boards(
    competition: Path, tmp_path: Path, monkeypatch
) -> None:
    export = train_and_export(competition, tmp_path / "export", [*TINY_MODEL, "model.board=boxed"])
    root = make_root(tmp_path, competition, export)
    namespace = run_notebook(root, monkeypatch)
    assert statuses(namespace) == ALL_OK
    run = root / "temp" / "arcpipe" / "run"
    assert load_config(run / "config.toml").model.board == "boxed"  # the export's layout
    assert check_submission(root) == predicted(root)


@pytest.mark.slow
def test_notebook_post_trains_and_predicts_an_imported_reference_checkpoint(
    competition: Path, tmp_path: Path, monkeypatch
) -> None:
    """A public checkpoint's route: import (no identifiers: the mean row), export, attach; the
    notebook post-trains it with the checkpoint's own loop counts on its 30x30 canvas."""
    checkpoint = write_reference_checkpoint(tmp_path / "ref", PAPER_ROPE)
    run, export = tmp_path / "imported", tmp_path / "arcpipe-export"
    assert import_checkpoint(ImportOptions(checkpoint, run)).record["puzzle_table"]["kept"] == (
        "mean"
    )
    export_checkpoint(run, export)
    root = make_root(tmp_path, competition, export)
    namespace = run_notebook(root, monkeypatch)
    assert statuses(namespace) == ALL_OK
    model = load_config(root / "temp" / "arcpipe" / "run" / "config.toml").model
    loops = (model.cycles, model.latent_steps, model.supervision_steps)
    assert loops == (PAPER_ROPE["H_cycles"], PAPER_ROPE["L_cycles"], PAPER_ROPE["halt_max_steps"])
    assert Dataset.open(root / "temp" / "arcpipe" / "data").canvas == 30
    assert check_submission(root) == predicted(root)


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["build", "posttrain", "predict"])
def test_a_kill_inside_a_phase_keeps_a_valid_submission_and_a_rerun_ends_as_uninterrupted(
    clean_notebook: dict, competition: Path, export: Path, tmp_path: Path, monkeypatch, phase
) -> None:
    seed = fault_seed()
    events = clean_notebook["traces"][phase]
    point = kill_points(events, 1, seed + list(PHASE_COMMANDS).index(phase))[0]
    where = f"{phase}: {point} (seed {seed})"
    root = make_root(tmp_path, competition, export)
    plan = point.plan(root, command=PHASE_COMMANDS[phase])
    namespace = run_notebook(root, monkeypatch, faults=plan)
    assert statuses(namespace)[phase] == "failed", (where, statuses(namespace))
    assert statuses(namespace)["finish"] == "ok", where
    check_submission(root)
    note = next(r.note for r in namespace["flow"].results if r.name == phase)
    assert "exit status -9" in note, (where, note)  # killed, not a start-up error

    namespace = run_notebook(root, monkeypatch)  # the notebook again, nothing injected
    assert statuses(namespace) == ALL_OK, (where, statuses(namespace))
    assert (root / "working" / "submission.json").read_bytes() == clean_notebook["submission"]
    report_recovered(f"kaggle {phase}", point, seed)


@pytest.mark.slow
def test_out_of_memory_mid_phase_retries_post_training_at_half_batch_and_predict_smaller(
    competition: Path, export: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    root = make_root(tmp_path, competition, export)
    faults = [
        {"command": "train", "match": "arcpipe.train.step 1$", "at": 1, "action": "oom"},
        {"command": "predict", "match": "arcpipe.predict.batch", "at": 1, "action": "oom"},
    ]
    for i, plan in enumerate(faults):
        plan["once"] = str(tmp_path / f"fired-{i}")  # the retry runs clean
    namespace = run_notebook(root, monkeypatch, faults=faults)
    assert statuses(namespace) == ALL_OK
    out = capsys.readouterr().out
    assert "train: out of memory, retrying at global batch 2" in out
    assert "predict: out of memory, retrying at batch 16" in out
    logs = root / "working" / "arcpipe-logs"
    for phase in ("train", "predict"):  # the failed attempt's log is kept beside the retry's
        assert "CUDA out of memory" in (logs / f"{phase}.log").read_text()
        assert "CUDA out of memory" not in (logs / f"{phase}-retry.log").read_text()
    assert all((tmp_path / f"fired-{i}").exists() for i in range(2))
    run = root / "temp" / "arcpipe" / "run"
    assert load_config(run / "config.toml").train.global_batch_size == 2
    assert check_submission(root) == predicted(root)


@pytest.mark.slow
def test_finish_repairs_an_invalid_submission_from_the_candidates_else_the_fallback(
    clean_notebook: dict,
) -> None:
    root, flow = clean_notebook["root"], clean_notebook["namespace"]["flow"]
    submission = root / "working" / "submission.json"
    try:
        submission.write_bytes(clean_notebook["submission"][:50])  # cut short by a full disk
        flow.finish()
        assert check_submission(root) == predicted(root)
        candidates = root / "temp" / "arcpipe" / "submission.candidates.npz"
        kept = candidates.read_bytes()
        candidates.unlink()
        submission.write_text("{}")
        flow.finish()
        assert is_fallback(root, check_submission(root))
        candidates.write_bytes(kept)
    finally:
        submission.write_bytes(clean_notebook["submission"])


def test_a_failed_post_training_without_checkpoint_keeps_the_fallback(
    competition: Path, export: Path, tmp_path: Path, monkeypatch
) -> None:
    root = make_root(tmp_path, competition, export)
    namespace = run_notebook(root, monkeypatch, fault="train")
    assert statuses(namespace) == {
        "fallback": "ok",
        "build": "ok",
        "posttrain": "failed",
        "predict": "skipped",
        "finish": "ok",
    }
    assert is_fallback(root, check_submission(root))
    assert "--injected-fault" in (root / "working/arcpipe-logs/train.log").read_text()


def test_an_extra_source_holding_a_hidden_test_input_is_trained_on_not_refused(
    competition: Path, export: Path, tmp_path: Path, monkeypatch
) -> None:
    root = make_root(tmp_path, competition, export)
    hidden = json.loads((competition / "arc-agi_test_challenges.json").read_bytes())
    test_input = hidden[TEST_TASKS[0]]["test"][0]["input"]
    extra = root / "input" / "extra"
    extra.mkdir()
    holder = {"train": [{"input": test_input, "output": [[1]]}], "test": [{"input": [[1]],
              "output": [[2]]}]}  # fmt: skip
    (extra / "holder.json").write_text(json.dumps(holder))
    monkeypatch.setenv("ARCPIPE_KAGGLE_EXTRA_SOURCES", str(extra))
    namespace = run_notebook(root, monkeypatch, fault="train")
    assert statuses(namespace)["build"] == "ok"
    data = Dataset.open(namespace["flow"].data)
    assert data.manifest["leakage"]["contained"] == [{"task": TEST_TASKS[0], "test_index": 0}]


def test_a_failed_prediction_keeps_a_valid_submission(
    competition: Path, export: Path, tmp_path: Path, monkeypatch
) -> None:
    root = make_root(tmp_path, competition, export)
    namespace = run_notebook(root, monkeypatch, fault="predict")
    assert statuses(namespace)["posttrain"] == "ok"
    assert statuses(namespace)["predict"] == "failed"
    assert is_fallback(root, check_submission(root))


def test_the_notebook_post_trains_a_urm_export_with_the_urm_recipe(
    competition: Path, urm_export: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    root = make_root(tmp_path, competition, urm_export)
    namespace = run_notebook(root, monkeypatch)
    assert set(statuses(namespace).values()) == {"ok"}
    check_submission(root)
    assert "(URM, " in capsys.readouterr().out  # the log says which model it found
    assert "--config kaggle_posttrain_urm" in (root / "working/arcpipe-logs/train.log").read_text()
    run = root / "temp" / "arcpipe" / "run"
    posttrained = load_config(run / "config.toml")
    assert posttrained.model.family == "urm" and posttrained.model.state == "single"


def test_the_notebook_starts_a_task_table_export_new_tasks_at_its_mean_row(
    competition: Path, tmp_path: Path, monkeypatch
) -> None:
    """Post-training from a task-table export (learning rates 0, so nothing moves): a task
    table over the hidden tasks at the export's mean row, the export's augmentation code."""
    model = [*TINY_MODEL, "model.puzzle_table=task"]
    export = train_and_export(competition, tmp_path / "export", model)
    frozen = "train.lr=0 train.puzzle_emb_lr=0 train.ema=false"
    posttrain_set = f"{NOTEBOOK_ENV['ARCPIPE_KAGGLE_POSTTRAIN_SET']} {frozen}"
    monkeypatch.setitem(NOTEBOOK_ENV, "ARCPIPE_KAGGLE_POSTTRAIN_SET", posttrain_set)
    root = make_root(tmp_path, competition, export)
    namespace = run_notebook(root, monkeypatch)
    assert statuses(namespace) == ALL_OK
    check_submission(root)
    scratch = root / "temp" / "arcpipe"
    ckpt = load_checkpoint(scratch / "run")
    assert ckpt.config.model.puzzle_table == "task" and ckpt.state["step"] == 2
    tensors, _ = load_tensors(export / "model.safetensors")
    rows = ckpt.tensors["puzzle_table"]["weights"]
    assert rows.shape[0] == len(Dataset.open(scratch / "data").tasks) == len(TEST_TASKS)
    assert tensors[MEAN_KEY].abs().max() > 0
    assert torch.equal(rows, tensors[MEAN_KEY].expand_as(rows))
    for name in ("augmentation_code.dihedral", "augmentation_code.colour"):
        assert torch.equal(ckpt.tensors["weights"][name], tensors[name]), name


def test_auto_post_training_recipe_follows_the_export(
    export: Path, urm_export: Path, tmp_path: Path
) -> None:
    def chosen(path: Path | None, setting: str = "auto") -> str:
        settings = kaggle.Settings(root=tmp_path, posttrain_config=setting, export=str(path or ""))
        return kaggle.Flow(settings).posttrain_config()

    assert chosen(export) == "kaggle_posttrain" and chosen(urm_export) == "kaggle_posttrain_urm"
    assert chosen(urm_export, "my.toml") == "my.toml"
    old = tmp_path / "old-export"  # an export written before exports named their model
    shutil.copytree(export, old)
    record = json.loads((old / "export.json").read_text())
    del record["model"]
    (old / "export.json").write_text(json.dumps(record))
    assert chosen(old) == "kaggle_posttrain"
    assert kaggle.files.describe_export(old) == str(old)
    assert kaggle.files.describe_export(urm_export).endswith("parameters)")
    assert load_config("kaggle_posttrain_urm").train.global_batch_size * 2 == (
        load_config("kaggle_posttrain").train.global_batch_size
    )


# ----------------------------------------------------------------------------- pieces


def test_notebook_is_valid_nbformat_4() -> None:
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["nbformat"] == 4 and isinstance(notebook["nbformat_minor"], int)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    kinds = [c["cell_type"] for c in notebook["cells"]]
    assert kinds.count("code") == 7 and set(kinds) == {"code", "markdown"}
    for cell in notebook["cells"]:
        assert isinstance(cell["source"], list) and cell["metadata"] == {}
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            compile("".join(cell["source"]), "cell", "exec")


def test_wheelhouse_dry_run_lists_packages_and_never_torch() -> None:
    result = subprocess.run(
        ["bash", str(WHEELHOUSE_SCRIPT), "--dry-run"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("packages:"))
    packages = line.split()[1:]
    assert {"arcpipe", "numba", "llvmlite", "orjson", "safetensors", "rich", "click"} <= set(
        packages
    )
    assert "torch" not in packages and "numpy" not in packages
    assert "pip download --only-binary=:all:" in result.stdout
    refused = subprocess.run(
        ["bash", str(WHEELHOUSE_SCRIPT), "--dry-run", "torch==2.4"], capture_output=True, text=True
    )
    assert refused.returncode == 2


def test_time_plan_shortens_later_phases_and_stays_within_the_budget() -> None:
    plan = kaggle.TimePlan(total_s=11 * 3600)
    assert plan.max_time("build", 0) == 20 * 60
    on_time = plan.max_time("train", 60)
    late = plan.max_time("train", 3600)
    assert late == pytest.approx(on_time - 3540)
    assert plan.max_time("predict", 9 * 3600) > plan.max_time("predict", 10 * 3600)
    for phase in kaggle.PHASES:
        assert plan.max_time(phase, 12 * 3600) == 0  # never negative
    for build_overrun in (0, 600, 3 * 3600, 20 * 3600):
        elapsed = 0.0
        for phase in kaggle.PHASES:  # every phase uses its whole allowance, build overruns
            elapsed += plan.max_time(phase, elapsed) + (build_overrun if phase == "build" else 0)
        if build_overrun < 9 * 3600:
            assert elapsed <= plan.total_s - plan.margin_s + 1e-6
        assert plan.max_time("predict", elapsed) == 0
    with pytest.raises(ValueError):
        plan.max_time("score", 0)


def test_a_phase_past_its_deadline_is_stopped_and_logged(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]
    start = time.monotonic()
    result = kaggle.run_command(cmd, tmp_path / "logs" / "slow.log", timeout_s=2)
    assert time.monotonic() - start < 30
    assert result.timed_out and not result.ok and "started" in result.tail
    assert "started" in (tmp_path / "logs" / "slow.log").read_text()


def test_torchrun_passes_the_phase_commands_through_unchanged(tmp_path: Path) -> None:
    parser = pytest.importorskip("torch.distributed.run").get_args_parser()
    flow = kaggle.Flow(kaggle.Settings(root=tmp_path, halt_early=True))
    (flow.run / "last").mkdir(parents=True)
    for args in (flow._train_args(tmp_path, 3600, 4, 384), flow._predict_args(3600, 4, 16)):
        cmd = kaggle.arcpipe_command(4) + args
        parsed = parser.parse_args(cmd[3:])  # after "python -m torch.distributed.run"
        assert parsed.module and parsed.training_script == "arcpipe"
        assert parsed.training_script_args == args and "--device" in args
    predict = flow._predict_args(3600, 4, 16)
    assert predict[predict.index("--cross-view-k") + 1] == "0"  # count: variant by variant
    poe = kaggle.Flow(kaggle.Settings(root=tmp_path, vote_rule="poe_cells"))._predict_args(60, 0, 8)
    assert poe[poe.index("--vote-rule") + 1] == "poe_cells"
    assert poe[poe.index("--cross-view-k") + 1] == "8"
    assert "--programs" not in predict
    programs = kaggle.Flow(kaggle.Settings(root=tmp_path, programs=True))._predict_args(60, 0, 8)
    assert "--programs" in programs


def test_settings_from_environment() -> None:
    env = {
        "ARCPIPE_KAGGLE_ROOT": "/sim",
        "ARCPIPE_KAGGLE_BUDGET_HOURS": "0.5",
        "ARCPIPE_KAGGLE_VIEWS": "8",
        "ARCPIPE_KAGGLE_HALT_EARLY": "yes",
        "ARCPIPE_KAGGLE_FAULT": "train, predict",
    }
    settings = kaggle.Settings().with_env(env)
    assert settings.root == Path("/sim") and settings.budget_hours == 0.5
    assert settings.views == 8 and settings.halt_early is True
    assert settings.faults() == {"train", "predict"}
    assert settings.time_plan().total_s == 1800
    assert kaggle.Settings().with_env({}) == kaggle.Settings()


def test_finds_competition_wheelhouse_and_export_by_globbing(tmp_path: Path) -> None:
    slug = tmp_path / "input" / "competitions" / "arc-prize-2026"
    slug.mkdir(parents=True)
    (slug / "arc-agi_test_challenges.json").write_text("{}")
    (slug / "arc-agi_training_challenges.json").write_text("{}")
    (slug / "arc-agi_training_solutions.json").write_text("{}")
    other = tmp_path / "input" / "my-data"
    other.mkdir(parents=True)
    (other / "arc-agi_test_challenges.json").write_text("{}")
    found = kaggle.find_competition(tmp_path / "input")
    assert found.folder == slug and found.solved_sources() == [found.challenges("training")]
    assert kaggle.find_wheelhouse(tmp_path / "input") is None
    wheels = tmp_path / "input" / "wheels" / "sub"
    wheels.mkdir(parents=True)
    (wheels / "arcpipe-0.1.0-py3-none-any.whl").write_bytes(b"")
    assert kaggle.find_wheelhouse(tmp_path / "input") == wheels
    (other / "export.json").write_text('{"format": "something else"}')
    assert kaggle.find_export(tmp_path / "input") is None
    (wheels / "export.json").write_text('{"format": "arcpipe-export"}')
    assert kaggle.find_export(tmp_path / "input") == wheels
    with pytest.raises(FileNotFoundError):
        kaggle.find_competition(tmp_path / "nothing")


def test_fallback_matches_the_library_rule(competition: Path, tmp_path: Path) -> None:
    out = tmp_path / "submission.json"
    test = competition / "arc-agi_test_challenges.json"
    expected = kaggle.write_fallback(test, out, attempts=2)
    assert expected == {"0d3d703e": 1, "25ff71a9": 2, "3618c87e": 1}
    inputs = {t.id: [p.input for p in t.test] for t in load_source(test)}
    assert json.loads(out.read_text()) == fallback_submission(inputs, 2)


def run_install_cell(tmp_path: Path, leftover: bool) -> list[str] | None:
    """The notebook's install cell in a fresh interpreter; the pip arguments it used, if any.

    pip is replaced by a stand-in that records its arguments; ``leftover`` puts a directory
    ``arcpipe/`` without the package (numba's cache after an uninstall) first on the path.
    """
    cell = next(c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code")
    work = tmp_path / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    if leftover:
        (work / "arcpipe" / "__pycache__").mkdir(parents=True)
    stand_in = tmp_path / "stand-in" / "pip"
    stand_in.mkdir(parents=True, exist_ok=True)
    (stand_in / "__init__.py").write_text("")
    (stand_in / "__main__.py").write_text(
        "import json, os, sys\n"
        "open(os.environ['PIP_RECORD'], 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    wheels = tmp_path / "kaggle" / "input" / "arcpipe-wheelhouse"
    wheels.mkdir(parents=True, exist_ok=True)
    (wheels / "arcpipe-0.1.0-py3-none-any.whl").write_bytes(b"")
    record = tmp_path / "pip-args.json"
    record.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(stand_in.parent),
        "ARCPIPE_KAGGLE_ROOT": str(tmp_path / "kaggle"),
        "PIP_RECORD": str(record),
    }
    code = "".join(cell["source"])
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(record.read_text()) if record.exists() else None


def test_install_cell_installs_when_only_a_leftover_arcpipe_directory_is_importable(
    tmp_path: Path,
) -> None:
    args = run_install_cell(tmp_path, leftover=True)
    assert args is not None, "the leftover directory was taken for an installed arcpipe"
    assert args[:2] == ["install", "--no-index"] and args[-1].endswith(
        "arcpipe-0.1.0-py3-none-any.whl"
    )
    assert run_install_cell(tmp_path, leftover=False) is None  # installed: nothing to do
