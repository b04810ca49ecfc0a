"""External corpora in build-data: re-ARC folders and JSONL files, streamed and round-tripped."""

from __future__ import annotations

import filecmp
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from helpers import REPO, make_corpus, simple_task, write_task

from arcpipe.arc.corpora import group_sizes, iter_source, parse_source_spec
from arcpipe.data.build import BuildOptions, build_arc_dataset
from arcpipe.data.dataset import Dataset
from arcpipe.errors import ArcpipeError

corpus = make_corpus()


@pytest.fixture
def target(tmp_path: Path) -> Path:
    write_task(tmp_path / "eval", "goal", simple_task(3))
    return tmp_path / "eval"


def stored_pairs(dataset: Dataset, task_id: str) -> list[dict]:
    task = next(t for t in dataset.tasks if t.id == task_id)
    return [{"input": i.tolist(), "output": o.tolist()} for i, o in dataset.task_pairs(task)]


def test_jsonl_round_trip_with_its_own_variant_count(tmp_path: Path, target: Path) -> None:
    path = corpus.write_jsonl(tmp_path / "c.jsonl", 30, seed=4)
    options = BuildOptions(num_aug=5, canvas=10)
    build_arc_dataset([f"{path}:2"], target, tmp_path / "ds", options, quiet=True)
    dataset = Dataset.open(tmp_path / "ds")
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert dataset.task_ids == [*sorted(t["id"] for t in lines), "goal"]
    for line in lines:
        assert stored_pairs(dataset, line["id"]) == line["train"] + line["test"]
    variants = {t.id: t.num_variants for t in dataset.tasks}
    assert max(variants[t["id"]] for t in lines) == 3 and variants["goal"] == 6
    source = dataset.manifest["sources"][0]
    assert (source["format"], source["num_aug"], source["tasks_read"]) == ("jsonl", 2, 30)


def test_jsonl_examples_lines_are_grouped_and_named_by_line(tmp_path: Path, target) -> None:
    path = corpus.write_jsonl(tmp_path / "ex.jsonl", 3, seed=1, pairs=7, examples=True)
    with open(path, "ab") as f:
        f.write(b"\n" + orjson.dumps({"id": 17, "examples": simple_task(5)["train"]}) + b"\n")
    options = BuildOptions(num_aug=1, canvas=10, pairs_per_task=3)
    build_arc_dataset([path], target, tmp_path / "ds", options, quiet=True)
    dataset = Dataset.open(tmp_path / "ds")
    expected = [f"ex:{line}#{g}" for line in (1, 2, 3) for g in range(3)] + ["17"]
    assert sorted(dataset.task_ids[:-1]) == sorted(expected)
    first = orjson.loads(path.read_bytes().splitlines()[0])["examples"]
    groups = [stored_pairs(dataset, f"ex:1#{g}") for g in range(3)]
    assert [len(g) for g in groups] == [3, 2, 2] and list(itertools.chain(*groups)) == first
    task = next(t for t in dataset.tasks if t.id == "ex:1#0")
    assert (task.num_train, task.num_test) == (2, 1)  # the group's last pair is its test


def test_rearc_folder_round_trip(tmp_path: Path, target: Path) -> None:
    folder = corpus.write_rearc(tmp_path / "rearc", 3, seed=2, pairs=25)
    write_task(folder, "plain", simple_task(8))  # ARC task files may sit beside them
    options = BuildOptions(num_aug=1, canvas=10)
    build_arc_dataset([folder], target, tmp_path / "ds", options, quiet=True)
    dataset = Dataset.open(tmp_path / "ds")
    for name in ("r0", "r1", "r2"):
        pairs = orjson.loads((folder / f"{name}.json").read_bytes())
        groups = [stored_pairs(dataset, f"{name}#{g}") for g in range(3)]
        assert [len(g) for g in groups] == [9, 8, 8] and list(itertools.chain(*groups)) == pairs
    assert "plain" in dataset.task_ids and dataset.manifest["sources"][0]["tasks_read"] == 10


def test_corpus_builds_are_byte_identical(tmp_path: Path, target: Path) -> None:
    path = corpus.write_jsonl(tmp_path / "c.jsonl", 40, seed=9)
    for out in ("a", "b"):
        build_arc_dataset([f"{path}:3"], target, tmp_path / out, BuildOptions(num_aug=2),
                          quiet=True)  # fmt: skip
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)
    assert not mismatch and not errors


@pytest.mark.parametrize("per_task", [2, 3, 4, 10])
def test_group_sizes_cover_every_pair_in_groups_of_two_to_n(per_task: int) -> None:
    for count in range(2, 60):
        sizes = group_sizes(count, per_task)
        assert sum(sizes) == count and min(sizes) >= 2 and max(sizes) - min(sizes) <= 1
        limit = per_task + (per_task == 2 and count % 2)  # N = 2, odd M: one group of 3
        assert max(sizes) <= limit, (count, sizes)


def test_a_jsonl_source_is_read_one_task_at_a_time(tmp_path: Path) -> None:
    path = corpus.write_jsonl(tmp_path / "c.jsonl", 4, seed=0)
    lines = path.read_bytes().splitlines()
    lines[2] = b'{"train": [}'
    path.write_bytes(b"\n".join(lines) + b"\n")
    tasks = iter_source(path)
    assert [t.id for t in itertools.islice(tasks, 2)] == ["syn0", "syn1"]
    with pytest.raises(ArcpipeError, match=r"c\.jsonl:3: not valid JSON"):
        next(tasks)


def test_source_specs() -> None:
    spec = parse_source_spec("corpus.jsonl:8")
    assert (spec.path, spec.num_aug) == (Path("corpus.jsonl"), 8)
    assert parse_source_spec("data/training").num_aug is None
    assert parse_source_spec(str(REPO / "README.md")).path == REPO / "README.md"


@pytest.mark.slow
def test_a_100k_line_corpus_builds_within_the_memory_bound(tmp_path: Path, target) -> None:
    path = corpus.write_jsonl(tmp_path / "big.jsonl", 100_000, seed=0)
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "arcpipe", "build-data", "--train", f"{path}:1"]
    cmd += ["--eval", str(target), "--out", str(out), "--num-aug", "1", "--quiet"]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert usage.ru_maxrss < 2 * 1024 * 1024  # KiB: under 2 GB
    counts = Dataset.open(out).manifest["counts"]
    assert counts["tasks"] == 100_001 and counts["variants"] <= 2 * 100_001
    assert np.asarray(Dataset.open(out).arrays["tasks"]).shape == (100_001, 7)
