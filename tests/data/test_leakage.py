"""The leakage guard and the duplicate rule of build-data, on real data and on hand-made leaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from helpers import TINY_MODEL, simple_task, train_args, write_task

from arcpipe.arc.augment import Transform, random_colours
from arcpipe.arc.fingerprint import hex_digest, pair_fingerprints
from arcpipe.arc.tasks import Pair, Task
from arcpipe.cli import main
from arcpipe.data.build import BuildOptions, build_arc_dataset
from arcpipe.data.dataset import Dataset
from arcpipe.data.sources import pack_grids
from arcpipe.errors import ArcpipeError

FAST = BuildOptions(num_aug=0, canvas=30)


def build(train, target, out: Path, **kw) -> Dataset:
    build_arc_dataset(list(train), target, out, BuildOptions(**{**FAST.__dict__, **kw}), quiet=True)
    return Dataset.open(out)


def one_line_refusal(result, out: Path, *parts: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*"))
    return lines[0]


# ----------------------------------------------------------------------------- real data


def test_arc_agi_2_training_holds_395_test_outputs_of_376_arc_agi_1_evaluation_tasks(
    shared_data: Path, tmp_path: Path
) -> None:
    train, target = shared_data / "arc-agi-2" / "training", shared_data / "arc-agi-1" / "evaluation"
    out = tmp_path / "mix"
    args = ["build-data", "--train", str(train), "--eval", str(target), "--out", str(out)]
    refused = CliRunner().invoke(main, [*args, "--num-aug", "0", "--quiet"])
    line = one_line_refusal(refused, out, "395 test outputs of 376 eval tasks", "--leakage drop")
    assert "377 training tasks" in line and "00576224 test 0 in" in line

    allowed = build([train], target, out, leakage="allow")
    record = allowed.manifest["leakage"]
    assert (record["test_pairs_hit"], record["tasks_hit"], len(record["contained"])) == (
        395,
        376,
        395,
    )
    assert all(h["match"] == "exact" for h in record["hit_list"] if h["task"] == h["eval_task"])
    ids = set(allowed.task_ids)
    assert {"00576224", "00576224@0"} <= ids and len(allowed.task_ids) == 1400  # copy renamed

    dropped = build([train], target, tmp_path / "clean", leakage="drop")
    record = dropped.manifest["leakage"]
    assert len(record["dropped_tasks"]) == 377 and record["contained"] == []
    assert len(dropped.tasks) == 1000 - 377 + 400


def test_arc_agi_1_mix_one_exact_hit_and_one_under_a_transform(
    shared_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "arc1"
    args = ["build-data", "--preset", "arc-agi-1", "--data-root", str(shared_data)]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--num-aug", "0"])
    assert result.exit_code == 0, result.output  # the preset keeps them, recorded
    assert "2 of 419 test outputs (2 eval tasks): kept" in " ".join(result.stdout.split())
    record = Dataset.open(out).manifest["leakage"]
    assert record["mode"] == "allow" and record["own_demonstrations"] == 7
    found = {(h["eval_task"], h["task"], h["pair"], h["match"]) for h in record["hit_list"]}
    assert found == {
        ("070dd51e", "40853293", "test[0]", "exact"),
        ("50a16a69", "caa06a1f", "train[2]", "transform"),
    }
    assert len(record["eval_fingerprints"]) == 400 and record["eval_test_pairs"] == 419

    clean = tmp_path / "clean"
    result = CliRunner().invoke(main, [*args, "--out", str(clean), "--leakage", "drop"])
    assert result.exit_code == 0, result.output
    dataset = Dataset.open(clean)
    assert len(dataset.tasks) == 958 and "40853293" not in dataset.task_ids
    assert dataset.manifest["leakage"]["contained"] == []


def test_arc_agi_2_preset_finds_no_leak(shared_data: Path, tmp_path: Path) -> None:
    args = ["build-data", "--preset", "arc-agi-2", "--data-root", str(shared_data)]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "d"), "--num-aug", "0"])
    assert result.exit_code == 0, result.output
    assert "none of 167 test pairs" in result.stdout
    assert Dataset.open(tmp_path / "d").manifest["leakage"]["hits"] == 0


# ----------------------------------------------------------------------------- hand-made leaks


def leaky_sources(tmp_path: Path, leak: dict) -> tuple[Path, Path]:
    """A training folder whose task 'holder' carries ``leak`` as a pair; eval task 'goal'."""
    train, target = tmp_path / "train", tmp_path / "eval"
    write_task(train, "clean", simple_task(1))
    holder = simple_task(2)
    holder["train"].insert(1, leak)
    write_task(train, "holder", holder)
    write_task(target, "goal", simple_task(3, n_test=2))
    return train, target


def viewed(pair: dict, transform: Transform) -> dict:
    return {k: transform.view(np.array(pair[k], dtype=np.uint8)).tolist() for k in pair}


@pytest.mark.parametrize("d", range(8))
def test_a_leak_under_each_transform_and_a_colour_map_is_refused(tmp_path: Path, d: int) -> None:
    test_pair = simple_task(3, n_test=2)["test"][1]
    leak = viewed(test_pair, Transform(d, random_colours(np.random.default_rng(d))))
    train, target = leaky_sources(tmp_path, leak)
    with pytest.raises(ArcpipeError, match=r"1 test output of 1 eval task found") as err:
        build([train], target, tmp_path / "ds")
    assert "goal test 1 in" in str(err.value) and "task holder train[1]" in str(err.value)
    assert "up to a transform and colours" in str(err.value)  # the colours always moved
    assert not (tmp_path / "ds").exists()


def test_a_one_cell_near_miss_is_not_a_leak(tmp_path: Path) -> None:
    near = simple_task(3, n_test=2)["test"][1]
    near["output"][0][0] = (near["output"][0][0] + 1) % 10
    train, target = leaky_sources(tmp_path, near)
    dataset = build([train], target, tmp_path / "ds")
    assert dataset.manifest["leakage"]["hits"] == 0
    assert "holder" in dataset.task_ids


def test_drop_leaves_the_holding_task_out_and_allow_records_it(tmp_path: Path) -> None:
    test_pair = simple_task(3, n_test=2)["test"][0]
    train, target = leaky_sources(tmp_path, test_pair)
    dropped = build([train], target, tmp_path / "drop", leakage="drop")
    assert dropped.task_ids == ["clean", "goal"]
    record = dropped.manifest["leakage"]
    assert record["dropped_tasks"] == [{"task": "holder", "source": 0}]
    assert record["contained"] == [] and dropped.manifest["options"]["leakage"] == "drop"
    allowed = build([train], target, tmp_path / "allow", leakage="allow")
    assert allowed.task_ids == ["clean", "holder", "goal"]
    assert allowed.manifest["leakage"]["contained"] == [{"task": "goal", "test_index": 0}]
    goal = simple_task(3, n_test=2)["test"]
    pairs = [Pair(np.array(p["input"], np.uint8), np.array(p["output"], np.uint8)) for p in goal]
    cells, grids, packed, _ = pack_grids([Task("goal", tuple(pairs), (), "x")])
    expected = [hex_digest(f) for f in pair_fingerprints(cells, grids, packed)]
    assert allowed.manifest["leakage"]["eval_fingerprints"] == {"goal": expected}


def test_a_hidden_test_input_found_with_its_output_is_a_leak(tmp_path: Path) -> None:
    task = simple_task(3)
    leak = viewed(task["test"][0], Transform(2, random_colours(np.random.default_rng(0))))
    train, target = leaky_sources(tmp_path, leak)
    task["test"] = [{"input": task["test"][0]["input"]}]  # the output is unknown
    write_task(target, "goal", task)
    with pytest.raises(ArcpipeError, match=r"goal test 0 in .* task holder train"):
        build([train], target, tmp_path / "ds")


def test_a_test_pair_equal_to_its_own_demonstration_is_not_a_leak(tmp_path: Path) -> None:
    train, target = tmp_path / "train", tmp_path / "eval"
    write_task(train, "clean", simple_task(1))
    goal = simple_task(3)
    goal["test"] = [viewed(goal["train"][0], Transform(4, random_colours(np.random.default_rng())))]
    write_task(target, "goal", goal)
    record = build([train], target, tmp_path / "ds").manifest["leakage"]
    assert record["hits"] == 0 and record["own_demonstrations"] == 1


def test_another_eval_tasks_demonstration_is_a_leak_that_drop_cannot_remove(tmp_path) -> None:
    train, target = tmp_path / "train", tmp_path / "eval"
    write_task(train, "clean", simple_task(1))
    goal, other = simple_task(3), simple_task(4)
    other["train"].append(goal["test"][0])
    write_task(target, "goal", goal)
    write_task(target, "other", other)
    with pytest.raises(ArcpipeError, match="other eval tasks' demonstrations") as err:
        build([train], target, tmp_path / "ds")
    assert "goal test 0 in" in str(err.value) and "task other train[2]" in str(err.value)
    dropped = build([train], target, tmp_path / "ds", leakage="drop")
    assert dropped.task_ids == ["clean", "goal", "other"]
    assert dropped.manifest["leakage"]["contained"] == [{"task": "goal", "test_index": 0}]


# ----------------------------------------------------------------------------- duplicates


def test_the_same_task_in_two_sources_keeps_one_copy(tmp_path: Path) -> None:
    a, b, target = tmp_path / "a", tmp_path / "b", tmp_path / "eval"
    task = simple_task(1, n_train=3, n_test=1)
    write_task(a, "first", task)
    write_task(a, "other", simple_task(2))
    transform = Transform(5, random_colours(np.random.default_rng(1)))
    pairs = [viewed(p, transform) for p in task["train"] + task["test"]]
    write_task(b, "copy", {"train": [pairs[3], pairs[0]], "test": [pairs[2], pairs[1]]})
    write_task(b, "first", task)  # the same id, the same content: merged, as before
    write_task(target, "goal", simple_task(3))
    kept = build([a, b], target, tmp_path / "one")
    assert kept.task_ids == ["first", "other", "goal"]
    record = kept.manifest["duplicates"]
    assert record["count"] == 1 and record["across_sources"] == 1
    assert record["list"] == [
        {"task": "copy", "source": 1, "same_as": {"task": "first", "source": 0}}
    ]
    both = build([a, b], target, tmp_path / "both", duplicates="keep")
    assert both.task_ids == ["first", "other", "copy", "goal"]


def test_a_reordered_copy_under_the_same_id_is_a_duplicate_not_a_conflict(tmp_path: Path) -> None:
    a, b, target = tmp_path / "a", tmp_path / "b", tmp_path / "eval"
    task = simple_task(1, n_train=3, n_test=1)
    write_task(a, "dup", task)
    write_task(b, "dup", {"train": task["train"][::-1], "test": task["test"]})
    write_task(target, "goal", simple_task(3))
    assert build([a, b], target, tmp_path / "one").task_ids == ["dup", "goal"]
    both = build([a, b], target, tmp_path / "both", duplicates="keep")
    assert both.task_ids == ["dup", "dup@1", "goal"]


# ----------------------------------------------------------------------------- train and score


def test_train_and_score_say_what_the_training_data_contains(tmp_path: Path) -> None:
    goal = simple_task(3, n_test=2)
    train, target = leaky_sources(tmp_path, goal["test"][0])
    # Test pair 1 is a turned demonstration of its own task: shown with it, not counted.
    goal["test"][1] = viewed(
        goal["train"][0], Transform(3, random_colours(np.random.default_rng()))
    )
    write_task(target, "goal", goal)
    data = tmp_path / "data"
    args = ["build-data", "--train", str(train), "--eval", str(target), "--out", str(data)]
    built = CliRunner().invoke(main, [*args, "--num-aug", "1", "--leakage", "allow", "--quiet"])
    assert built.exit_code == 0, built.output
    run = tmp_path / "run"
    trained = CliRunner().invoke(main, train_args(data, run, "--max-steps", "2", sets=TINY_MODEL))
    assert trained.exit_code == 0, trained.output
    note = "trained on data that contains 1 of these 2 test outputs (built with --leakage allow)"
    assert note in " ".join(trained.stdout.split())
    submission = tmp_path / "submission.json"
    predicted = CliRunner().invoke(
        main, ["predict", "--run", str(run), "--data", str(data), "--out", str(submission)]
    )
    assert predicted.exit_code == 0, predicted.output
    scored = CliRunner().invoke(
        main, ["score", str(submission), str(target), "--data", str(data), "--json"]
    )
    assert scored.exit_code == 0, scored.output
    summary = orjson.loads(scored.stdout)
    assert (summary["contained_test_outputs"], summary["checked_test_outputs"]) == (1, 2)
    plain = CliRunner().invoke(main, ["score", str(submission), str(target), "--data", str(data)])
    assert note in " ".join(plain.stdout.split())
