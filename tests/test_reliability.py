"""The reliability promises under real faults: kills at seeded points, a full disk, deadlines,
stalls, and damaged or hostile inputs (the harness: tests/faultharness.py).

Each kill test traces a clean run's events, kills copies of the same command at seeded points
(``ARCPIPE_FAULT_SEED``, reported in every failure), and checks what is on disk: readable files
only, the previous checkpoint / dataset / submission intact, and a resumed or rerun command that
ends exactly where the uninterrupted one did.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
import torch
from click.testing import CliRunner
from faultharness import (
    arcpipe_env,
    assert_run_readable,
    assert_same_training,
    assert_submission_valid,
    dataset_digests,
    fault_seed,
    kill_points,
    killed,
    report_recovered,
    run_arcpipe,
    temporaries,
    trace_events,
)
from helpers import MID_FLIGHT, REPO, TINY_MODEL, train_args
from reference_format import (
    PAPER_ROPE,
    PREFIX,
    all_config_yaml,
    reference_state,
    write_reference_checkpoint,
)

from arcpipe import kaggle
from arcpipe.arc.candidates import Candidates
from arcpipe.arc.submission import fallback_submission, submission_from_votes
from arcpipe.arc.vote import vote
from arcpipe.cli import main
from arcpipe.data.build import BuildOptions, build_arc_dataset
from arcpipe.data.dataset import Dataset
from arcpipe.export import save_tensors
from arcpipe.fsutil import file_digest, write_json_atomic
from arcpipe.predict import target_test_inputs
from arcpipe.train.checkpoint import load_checkpoint

SAMPLE = REPO / "data" / "sample"
SWEEP = [
    *MID_FLIGHT,
    "train.checkpoint_interval=3",
    "train.eval_interval=6",
    "train.keep_checkpoints=1",
]


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def trained_run(sample_dataset: Path, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("reliability") / "run"
    result = run_cli(*train_args(sample_dataset, run, "--max-steps", "3", sets=TINY_MODEL))
    assert result.exit_code == 0, result.output
    return run


def expected_tests(data: Path) -> dict[str, int]:
    return {t: len(g) for t, g in target_test_inputs(Dataset.open(data)).items()}


def one_line_error(result, *names: str) -> None:
    """Exit status 2, one ``error:`` line naming ``names``, no traceback."""
    err = result.stderr
    code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert code == 2, err
    assert "Traceback" not in err and err.startswith("error: ") and err.count("\n") == 1, err
    for name in names:
        assert name in err, (name, err)


# ----------------------------------------------------------------------------- kills


@pytest.mark.slow
def test_training_killed_at_seeded_points_resumes_to_the_uninterrupted_run(
    sample_dataset: Path, tmp_path: Path
) -> None:
    seed = fault_seed()
    steps = 12

    def args(run: Path) -> list[str]:
        return train_args(sample_dataset, run, "--max-steps", str(steps), sets=SWEEP)

    whole = tmp_path / "whole"
    events = trace_events(args(whole), whole, tmp_path / "trace")
    must = ("arcpipe.train.step", "carry-0.pt", "/checkpoints/step-", "/last <-", "/best <-")
    # The exchange: the final evaluation's checkpoint replaces the loop's of the same step; a
    # kill while the replaced one is removed leaves `last` at the final checkpoint, whose
    # evaluation a resumed run must not repeat.
    must += ("metrics.jsonl", "rmtree", "arcpipe.exchange", r"rmtree .*/\.step-00000012\.tmp-")
    points = kill_points(events, 9, seed, must=must)
    for point in points:
        where = f"{point} (seed {seed})"
        run = tmp_path / f"killed-{point.at}"
        died = run_arcpipe(args(run), point.plan(run))
        assert killed(died), (where, died.stderr[-2000:])
        assert_run_readable(run)
        start = load_checkpoint(run).state["step"] if (run / "last").exists() else 0
        resumed = run_cli(*args(run), "--resume", "auto")
        assert resumed.exit_code == 0, (where, resumed.output)
        assert f"this sitting ran steps {start + 1}-{steps}" in resumed.stdout, where
        assert_same_training(whole, run)
        assert os.readlink(run / "best") == os.readlink(whole / "best"), where
        assert not temporaries(run), (where, temporaries(run))
        report_recovered("train", point, seed, resumed_from=start)


def build_args(out: Path, seed: int = 0) -> list[str]:
    return [
        "build-data",
        "--train",
        str(SAMPLE / "training"),
        "--eval",
        str(SAMPLE / "evaluation"),
        "--out",
        str(out),
        "--num-aug",
        "3",
        "--canvas",
        "10",
        "--seed",
        str(seed),
        "--overwrite",
        "--quiet",
    ]


@pytest.mark.slow
def test_build_killed_at_seeded_points_keeps_the_previous_dataset_and_rebuilds_the_same_bytes(
    tmp_path: Path,
) -> None:
    seed = fault_seed()
    traced = tmp_path / "traced" / "data"
    assert run_cli(*build_args(traced, seed=1)).exit_code == 0  # a previous build to replace
    events = trace_events(build_args(traced), traced.parent, tmp_path / "trace")
    reference = dataset_digests(traced)
    points = kill_points(events, 6, seed, must=("manifest.json", "arcpipe.exchange", "rmtree"))
    for point in points:
        where = f"{point} (seed {seed})"
        out = tmp_path / f"killed-{point.at}" / "data"
        assert run_cli(*build_args(out, seed=1)).exit_code == 0
        previous = dataset_digests(out)
        died = run_arcpipe(build_args(out), point.plan(out.parent))
        assert killed(died), (where, died.stderr[-2000:])
        assert dataset_digests(out) in (previous, reference), where  # opens and verifies
        assert run_cli(*build_args(out)).exit_code == 0, where
        assert dataset_digests(out) == reference, where
        assert not temporaries(out.parent), (where, temporaries(out.parent))
        report_recovered("build-data", point, seed)


def predict_args(run: Path, data: Path, out: Path, *extra: str) -> list[str]:
    args = ["predict", "--run", str(run), "--data", str(data), "--out", str(out), "--quiet"]
    return [*args, "--batch-size", "2", "--sync-every", "0s", *extra]


@pytest.mark.slow
def test_prediction_killed_between_submission_replacements_leaves_a_valid_submission(
    trained_run: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    seed = fault_seed()
    expected = expected_tests(sample_dataset)
    inputs = target_test_inputs(Dataset.open(sample_dataset))
    previous = orjson.dumps(fallback_submission({t: g[::-1] for t, g in inputs.items()}, 2))
    traced = tmp_path / "traced" / "submission.json"
    traced.parent.mkdir()
    traced.write_bytes(previous)  # as in every killed run: a valid submission from earlier
    args = predict_args(trained_run, sample_dataset, traced)
    events = trace_events(args, traced.parent, tmp_path / "trace")
    reference = traced.read_bytes()
    must = ("submission.json <-", "candidates.npz <-", r"arcpipe.predict.batch 0$")
    points = kill_points(events, 6, seed, must=must)
    fallback = orjson.dumps(fallback_submission(inputs, 2))
    for point in points:
        where = f"{point} (seed {seed})"
        out = tmp_path / f"killed-{point.at}" / "submission.json"
        out.parent.mkdir()
        out.write_bytes(previous)  # a valid submission from an earlier run
        died = run_arcpipe(predict_args(trained_run, sample_dataset, out), point.plan(out.parent))
        assert killed(died), (where, died.stderr[-2000:])
        assert_submission_valid(out, expected)
        assert out.read_bytes() != fallback, where  # a valid submission is never set back
        replaced = any("submission.json <-" in e for e in events[: point.at - 1])
        if not replaced:
            assert out.read_bytes() == previous, where  # the earlier submission, untouched
        candidates = out.with_suffix(".candidates.npz")
        if candidates.exists():
            Candidates.load(candidates)
        rerun = run_cli(*predict_args(trained_run, sample_dataset, out))
        assert rerun.exit_code == 0, (where, rerun.output)
        assert out.read_bytes() == reference, where
        assert not temporaries(out.parent), where
        report_recovered("predict", point, seed, previous_kept=not replaced)


# ----------------------------------------------------------------------------- deadlines and stalls


def vote_of(candidates_file: Path, data: Path) -> dict:
    inputs = target_test_inputs(Dataset.open(data))
    return submission_from_votes(vote(Candidates.load(candidates_file)), inputs, 2)


@pytest.mark.slow
def test_predict_deadline_mid_phase_keeps_the_vote_of_the_views_done(
    trained_run: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "submission.json"
    slow = {"match": "arcpipe.predict.batch", "at": 1, "action": "delay", "seconds": 0.5}
    args = predict_args(trained_run, sample_dataset, out, "--max-time", "2s", "--sync-every", "1h")
    done = run_arcpipe([a for a in args if a != "--quiet"], slow)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(stopped by --max-time)" in done.stdout
    views, total = (int(x) for x in done.stdout.split(" views")[0].replace(",", "").split("/"))
    assert 0 < views < total
    candidates = Candidates.load(out.with_suffix(".candidates.npz"))
    assert len(candidates) + candidates.meta["malformed"] == views
    assert orjson.loads(out.read_bytes()) == vote_of(out.with_suffix(".candidates.npz"),
                                                     sample_dataset)  # fmt: skip


@pytest.mark.slow
def test_predict_stops_on_sigterm_with_the_vote_of_the_views_done(
    trained_run: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    out, trace = tmp_path / "submission.json", tmp_path / "trace"
    plan = {"match": "arcpipe.predict.batch", "at": 1, "action": "delay", "seconds": 0.5}
    cmd = [sys.executable, "-m", "arcpipe", *predict_args(trained_run, sample_dataset, out)]
    cmd += ["--sync-every", "1h"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=arcpipe_env({**plan, "trace": str(trace)}),
    )
    deadline = time.monotonic() + 120
    while not trace.exists() or len(trace.read_text().splitlines()) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    candidates = Candidates.load(out.with_suffix(".candidates.npz"))
    assert 0 < len(candidates) < len(Dataset.open(sample_dataset).examples("test"))
    assert orjson.loads(out.read_bytes()) == vote_of(out.with_suffix(".candidates.npz"),
                                                     sample_dataset)  # fmt: skip


@pytest.mark.slow
def test_a_stalled_prediction_is_stopped_at_its_deadline_and_the_last_vote_stays(
    trained_run: Path, sample_dataset: Path, tmp_path: Path, monkeypatch
) -> None:
    """The Kaggle flow's deadline (SIGTERM, then SIGKILL) on a command that hangs mid-batch."""
    out = tmp_path / "submission.json"
    monkeypatch.setattr(kaggle.process, "KILL_GRACE_S", 2.0)
    monkeypatch.setenv("ARCPIPE_FAULTS", orjson.dumps(
        {"match": "arcpipe.predict.batch", "at": 4, "action": "hang"}).decode())  # fmt: skip
    cmd = [sys.executable, "-m", "arcpipe", *predict_args(trained_run, sample_dataset, out)]
    start = time.monotonic()
    result = kaggle.run_command(cmd, tmp_path / "predict.log", timeout_s=25)
    assert result.timed_out and not result.ok
    assert time.monotonic() - start < 60
    synced = Candidates.load(out.with_suffix(".candidates.npz"))
    assert len(synced) + synced.meta["malformed"] == 6  # three batches of two, each synced
    assert_submission_valid(out, expected_tests(sample_dataset))
    assert orjson.loads(out.read_bytes()) == vote_of(out.with_suffix(".candidates.npz"),
                                                     sample_dataset)  # fmt: skip


# ----------------------------------------------------------------------------- a full disk


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_last_checkpoint(
    sample_dataset: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = train_args(sample_dataset, run, "--max-steps", "4", sets=MID_FLIGHT)
    plan = {"under": str(run), "match": r"^write .*state\.json", "at": 3, "action": "enospc"}
    result = run_arcpipe(args, plan)
    assert result.returncode == 2, result.stderr
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    assert load_checkpoint(run).state["step"] == 2
    assert not temporaries(run), temporaries(run)


def test_a_full_disk_while_predicting_keeps_the_previous_submission(
    trained_run: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "submission.json"
    plan = {"under": str(tmp_path), "match": r"^write .*submission\.json", "at": 2}
    plan["action"] = "enospc"  # the first vote's write; the fallback was written
    result = run_arcpipe(predict_args(trained_run, sample_dataset, out), plan)
    assert result.returncode == 2, result.stderr
    assert "cannot write: No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    assert_submission_valid(out, expected_tests(sample_dataset))
    assert not temporaries(tmp_path)


# ----------------------------------------------------------------------------- hostile inputs


class RunsCode:
    """An object whose unpickling runs a shell command (here one that creates a file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, symlinks=True)
    return to


def reseal(checkpoint: Path) -> None:
    """Record the current digests in state.json, as an attacker who rewrote a file would."""
    state = orjson.loads((checkpoint / "state.json").read_bytes())
    state["files"] = {name: file_digest(checkpoint / name) for name in state["files"]}
    write_json_atomic(checkpoint / "state.json", state)


def test_truncated_or_bit_flipped_checkpoints_are_refused_and_nothing_is_overwritten(
    trained_run: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "submission.json"
    assert run_cli(*predict_args(trained_run, sample_dataset, out)).exit_code == 0
    before = out.read_bytes()
    for damage in ("truncate", "flip"):
        run = copy_run(trained_run, tmp_path / damage)
        name = "weights.pt" if damage == "truncate" else "optimizer.pt"
        target = (run / "last").resolve() / name
        data = bytearray(target.read_bytes())
        if damage == "truncate":
            del data[len(data) // 2 :]
        else:
            data[len(data) // 3] ^= 0x10
        target.write_bytes(bytes(data))
        result = run_cli(*predict_args(run, sample_dataset, out))
        one_line_error(result, target.name, "damaged checkpoint")
        assert out.read_bytes() == before  # the earlier submission stays
        resumed = run_cli(*train_args(sample_dataset, run, "--resume", "auto", sets=TINY_MODEL))
        one_line_error(resumed, target.name)
        exported = run_cli("export", str(run), str(tmp_path / f"export-{damage}"))
        one_line_error(exported, target.name)
        assert not (tmp_path / f"export-{damage}").exists()


@pytest.mark.parametrize("sealed", [True, False], ids=["digests-updated", "no-digests"])
def test_a_checkpoint_whose_pickle_would_run_code_is_refused_without_running_it(
    trained_run: Path, sample_dataset: Path, tmp_path: Path, sealed: bool
) -> None:
    run = copy_run(trained_run, tmp_path / "run")
    checkpoint = (run / "last").resolve()
    marker = tmp_path / "code-ran"
    weights = torch.load(checkpoint / "weights.pt", weights_only=True)
    with open(checkpoint / "weights.pt", "wb") as f:
        torch.save({**weights, "payload": RunsCode(marker)}, f)
    if sealed:
        reseal(checkpoint)
    else:
        state = orjson.loads((checkpoint / "state.json").read_bytes())
        state.pop("files")
        write_json_atomic(checkpoint / "state.json", state)
    out = tmp_path / "submission.json"
    result = run_cli(*predict_args(run, sample_dataset, out))
    one_line_error(result, "weights.pt", "refused: holds objects other than tensors")
    assert not marker.exists() and not out.exists()
    pickle.loads(pickle.dumps(RunsCode(marker)))  # the payload does run when unpickled
    assert marker.exists()


def test_candidates_of_another_dataset_or_with_pickled_arrays_are_refused(
    trained_run: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "submission.json"
    assert run_cli(*predict_args(trained_run, sample_dataset, out)).exit_code == 0
    candidates = out.with_suffix(".candidates.npz")
    other = tmp_path / "other"
    build_arc_dataset(
        [SAMPLE / "training"],
        SAMPLE / "evaluation",
        other,
        BuildOptions(num_aug=2, canvas=10, tasks=("flip_ud", "transpose", "flip_lr")),
        quiet=True,
    )
    report = tmp_path / "report.html"
    args = ["report", "--candidates", str(candidates), "--data", str(other), "--out", str(report)]
    one_line_error(run_cli(*args), "is not in the dataset", str(other))
    assert not report.exists()

    marker = tmp_path / "code-ran"
    hostile = tmp_path / "hostile.candidates.npz"
    with np.load(candidates) as data:
        arrays = dict(data)
    arrays["meta"] = np.array([RunsCode(marker)], dtype=object)
    np.savez(hostile, **arrays)
    solutions = tmp_path / "sample_solutions.json"
    solutions.write_text("{}")
    score = run_cli("score", str(out), str(solutions), "--candidates", str(hostile))
    one_line_error(score, "cannot read candidates", hostile.name)
    assert not marker.exists()


def test_datasets_cut_short_damaged_or_pickled_are_refused(
    sample_dataset: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    partial = tmp_path / ".data.tmp-12345-abc"  # what an interrupted build leaves
    shutil.copytree(sample_dataset, partial)
    (partial / "manifest.json").unlink()
    one_line_error(run_cli(*train_args(partial, run)), "not a dataset directory")

    for damage in ("truncate", "pickle"):
        data = shutil.copytree(sample_dataset, tmp_path / damage)
        marker = tmp_path / f"code-ran-{damage}"
        if damage == "truncate":
            array = data / "cells.npy"
            array.write_bytes(array.read_bytes()[:-7])
            reason = "damaged dataset"
        else:
            array = data / "variants.npy"
            np.save(array, np.array([RunsCode(marker)], dtype=object), allow_pickle=True)
            manifest = orjson.loads((data / "manifest.json").read_bytes())
            manifest["files"]["variants.npy"] = file_digest(array)
            write_json_atomic(data / "manifest.json", manifest)
            reason = "cannot read array"
        one_line_error(run_cli(*train_args(data, run)), array.name, reason)
        assert not marker.exists() and not run.exists()


GOOD_LINE = {"id": "ok", "train": [{"input": [[1]], "output": [[2]]}], "test": [
    {"input": [[3]], "output": [[4]]}]}  # fmt: skip
PAIRS = [{"input": [[1, 0]], "output": [[0, 1]]}, {"input": [[2, 0]], "output": [[0, 2]]}]
BAD_CORPORA = {
    # case: (JSONL line 2 (bytes) or a re-ARC file's pairs (a list), what the line must name)
    "jsonl-not-json": (b'{"train": [', ["c.jsonl:2", "not valid JSON"]),
    "jsonl-not-object": (b"[1, 2]", ["c.jsonl:2", "expected a task object"]),
    "jsonl-ragged": (
        orjson.dumps(
            {**GOOD_LINE, "id": "x", "train": [{"input": [[1], [2, 3]], "output": [[1]]}]}
        ),
        ["c.jsonl:2", "task x train[0].input", "ragged"],
    ),
    "jsonl-no-output": (
        orjson.dumps({"id": "x", "examples": [PAIRS[0], {"input": [[1]]}]}),
        ["c.jsonl:2", "task x examples[1]", "missing 'output'"],
    ),
    "jsonl-colour-10": (
        orjson.dumps({"examples": [PAIRS[0], {"input": [[1]], "output": [[10]]}]}),
        ["c.jsonl:2", "task c:2 examples[1].output", "is 10"],
    ),
    "jsonl-one-pair": (orjson.dumps({"examples": PAIRS[:1]}), ["c.jsonl:2", "has 1 pair(s)"]),
    "jsonl-both-kinds": (
        orjson.dumps({**GOOD_LINE, "id": "x", "examples": PAIRS}),
        ["c.jsonl:2", "has both"],
    ),
    "jsonl-bad-id": (orjson.dumps({**GOOD_LINE, "id": [1]}), ["c.jsonl:2", "'id' is a list"]),
    "jsonl-repeated-id": (orjson.dumps(GOOD_LINE), ["c.jsonl:2", "task ok", "also used by"]),
    "rearc-ragged": (
        [PAIRS[0], {"input": [[1, 2], [3]], "output": [[1]]}],
        ["r.json", "task r examples[1].input", "ragged"],
    ),
    "rearc-not-pair": ([PAIRS[0], 5], ["r.json", "task r examples[1]", "expected an object"]),
    "rearc-one-pair": (PAIRS[:1], ["r.json", "task r", "has 1 pair(s)"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CORPORA))
def test_bad_corpus_lines_and_files_are_one_line_naming_file_and_line_and_write_nothing(
    tmp_path: Path, case: str
) -> None:
    bad, names = BAD_CORPORA[case]
    if isinstance(bad, bytes):
        source = tmp_path / "c.jsonl"
        source.write_bytes(orjson.dumps(GOOD_LINE) + b"\n" + bad + b"\n")
    else:
        source = tmp_path / "rearc"
        source.mkdir()
        (source / "r.json").write_bytes(orjson.dumps(bad))
    out = tmp_path / "data"
    args = ["build-data", "--train", f"{source}:2", "--eval", str(SAMPLE / "evaluation")]
    one_line_error(run_cli(*args, "--out", str(out), "--num-aug", "1"), *names)
    assert not out.exists() and not temporaries(tmp_path)


def hostile_checkpoint(case: str, folder: Path, marker: Path) -> tuple[Path, str]:
    """A reference-format checkpoint damaged or replaced as ``case`` says; (file, its name in
    the expected error)."""
    state = reference_state(PAPER_ROPE)
    path = write_reference_checkpoint(folder, PAPER_ROPE, state=state)
    keyed = {PREFIX + k: v for k, v in state.items()}
    if case == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif case == "pickle payload":
        torch.save({**keyed, "payload": RunsCode(marker)}, path)
    elif case == "raw pickle":
        path.write_bytes(pickle.dumps(RunsCode(marker)))
    elif case == "safetensors":
        save_tensors(keyed, path)
    elif case == "optimizer state":
        weight = torch.nn.Parameter(torch.ones(3))
        optimizer = torch.optim.AdamW([weight])
        weight.sum().backward()
        optimizer.step()
        torch.save(optimizer.state_dict(), path)
    elif case == "lightning":
        torch.save({"state_dict": keyed, "pytorch-lightning_version": "2.4.0", "epoch": 3}, path)
    elif case == "unknown key":
        torch.save({**keyed, PREFIX + "extra.weight": torch.zeros(2)}, path)
    elif case == "missing key":
        torch.save({k: v for k, v in keyed.items() if not k.endswith("lm_head.weight")}, path)
    elif case == "shape mismatch":
        name = PREFIX + "L_level.layers.1.self_attn.qkv_proj.weight"
        torch.save({**keyed, name: torch.zeros(96, 16)}, path)
    elif case == "unsupported arch":
        hrm = {**PAPER_ROPE, "name": "recursive_reasoning.hrm@HierarchicalReasoningModel_ACTV1"}
        (folder / "all_config.yaml").write_text(all_config_yaml(hrm))
        return path, "all_config.yaml"
    return path, path.name


HOSTILE_CHECKPOINTS = {
    "truncated": "damaged checkpoint file: not a complete zip archive",
    "pickle payload": "refused: holds objects other than tensors",
    "raw pickle": "a raw pickle stream",
    "safetensors": "a safetensors file",
    "optimizer state": "an optimizer's state",
    "lightning": "a PyTorch Lightning checkpoint",
    "unknown key": "unknown key _orig_mod.model.inner.extra.weight",
    "missing key": "missing key _orig_mod.model.inner.lm_head.weight",
    "shape mismatch": "shape mismatch: _orig_mod.model.inner.L_level.layers.1.self_attn",
    "unsupported arch": "HRM",
}


@pytest.mark.parametrize("case", HOSTILE_CHECKPOINTS)
def test_a_hostile_or_foreign_reference_checkpoint_is_refused_and_nothing_is_written(
    tmp_path: Path, case: str
) -> None:
    marker = tmp_path / "code-ran"
    path, named = hostile_checkpoint(case, tmp_path / "ref", marker)
    run = tmp_path / "run"
    result = run_cli("import", str(path), "--out", str(run))
    one_line_error(result, named, HOSTILE_CHECKPOINTS[case])
    assert not run.exists() and not temporaries(tmp_path) and not marker.exists()


def test_a_fault_plan_acts_only_in_its_command(tmp_path: Path) -> None:
    plan = {"command": "train", "at": 1, "action": "kill"}
    result = run_arcpipe(build_args(tmp_path / "data"), plan)
    assert result.returncode == 0, result.stderr
    assert Dataset.open(tmp_path / "data")
    assert "ARCPIPE_FAULTS" not in os.environ


@pytest.mark.parametrize("seed", range(8))
def test_kill_points_cover_every_required_event_even_when_one_event_matches_two(seed: int) -> None:
    """Seed 1 once drew the only exchange event for "/checkpoints/step-" and then found nothing
    left for "arcpipe.exchange"."""
    events = ["write a/step-1/x", "arcpipe.exchange a/.tmp a/step-1", "rename a/last", "write b"]
    points = kill_points(events, 3, seed, must=("step-1", "arcpipe.exchange", "last"))
    drawn = [p.event for p in points]
    assert len(set(drawn)) == len(drawn) == 3
    for text in ("step-1", "arcpipe.exchange", "last"):
        assert any(text in e for e in drawn), (text, drawn)
