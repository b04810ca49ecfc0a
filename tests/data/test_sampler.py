"""The training sampler: the reference's epoch rule, determinism, resumable position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import simple_task, write_task

from arcpipe.arc.encode import IGNORE
from arcpipe.data.build import BuildOptions, build_arc_dataset
from arcpipe.data.dataset import Dataset
from arcpipe.data.layout import Bucket, Layout
from arcpipe.data.sampler import BucketedSampler, TrainSampler, encode_batch


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    train, target = tmp_path / "train", tmp_path / "eval"
    for i in range(5):
        write_task(train, f"t{i}", simple_task(i, n_train=2 + i % 3, n_test=1))
    write_task(target, "goal", simple_task(9, n_train=3))
    options = BuildOptions(num_aug=7, canvas=8)
    build_arc_dataset([train], target, tmp_path / "ds", options, quiet=True)
    return Dataset.open(tmp_path / "ds")


def batches(sampler: TrainSampler, n: int) -> list[np.ndarray]:
    return [sampler.next_rows() for _ in range(n)]


def test_each_epoch_visits_every_group_once_with_one_variant_and_all_its_examples(dataset) -> None:
    records = np.asarray(dataset.examples("train"))
    sampler = TrainSampler(dataset, "train", global_batch=1000, seed=0)  # a batch spans epochs
    rows = sampler.next_rows()
    assert len(rows) == 1000
    variants = records[rows, 0]
    picks, i = [], 0
    while i < len(variants):  # each pick brings all examples of one variant (the last is cut)
        v = variants[i]
        n = int((records[:, 0] == v).sum())
        assert (variants[i : i + n] == v).all()
        picks.append(v)
        i += n
    tasks = np.asarray(dataset.arrays["variants"])[picks, 0]
    for epoch in range(3):
        assert sorted(tasks[6 * epoch : 6 * epoch + 6].tolist()) == list(range(6))


def test_overflowing_variant_is_cut_and_next_batch_starts_with_next_group(dataset) -> None:
    records = np.asarray(dataset.examples("train"))
    sampler = TrainSampler(dataset, "train", global_batch=4, seed=0)
    first, second = batches(sampler, 2)
    assert len(first) == len(second) == 4
    # The epoch plan written out: groups in order, one variant each, all of its examples.
    plan = sampler._epoch_plan(0)
    stream = []
    for g in plan.order:
        v = plan.variant[g]
        count = sampler.variant_count[v]
        order = np.argsort(plan.shuffle_keys[g, :count], kind="stable")
        stream.append(sampler.variant_start[v] + order)
    cut = next(k for k in range(len(stream)) if sum(map(len, stream[: k + 1])) >= 4)
    assert sum(map(len, stream[: cut + 1])) > 4, "the fixture must overflow the first batch"
    assert np.array_equal(first, np.concatenate(stream[: cut + 1])[:4])
    assert np.array_equal(second, np.concatenate(stream[cut + 1 :])[:4])  # the rest is dropped
    dropped = set(stream[cut][4 - sum(map(len, stream[:cut])) :].tolist())
    assert dropped and not dropped & set(second.tolist())
    assert records[second[0], 0] != records[first[-1], 0]


def test_same_seed_same_batches_and_resume_continues_identically(dataset) -> None:
    a = TrainSampler(dataset, "train", 8, seed=3)
    b = TrainSampler(dataset, "train", 8, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(batches(a, 10), batches(b, 10)))
    state = a.state_dict()
    expected = batches(a, 5)
    c = TrainSampler(dataset, "train", 8, seed=3)
    c.load_state_dict(state)
    assert all(np.array_equal(x, y) for x, y in zip(expected, batches(c, 5)))
    seed3 = batches(TrainSampler(dataset, "train", 8, seed=3), 5)
    seed4 = batches(TrainSampler(dataset, "train", 8, seed=4), 5)
    assert not all(np.array_equal(x, y) for x, y in zip(seed3, seed4))


def variant_ranks(dataset: Dataset, rows: np.ndarray) -> np.ndarray:
    """Each row's variant index within its task (0: the original)."""
    return dataset.variant_index(np.asarray(dataset.examples("train"))[rows, 0])


@pytest.mark.parametrize("board", ["full", "boxed"])
def test_num_variants_trains_on_the_first_k_variants_of_each_task(dataset, board: str) -> None:
    """train.num_variants = 3 on a dataset built with 8 variants a task: every batch draws from
    the original and the next two only, all three of them, every task still once per epoch."""
    sampler = BucketedSampler(Layout(dataset, board), "train", 8, 0, 6, num_variants=3)
    rows = np.concatenate([sampler.next_rows()[1] for _ in range(60)])
    ranks = variant_ranks(dataset, rows)
    assert set(ranks.tolist()) == {0, 1, 2}
    tasks = np.asarray(dataset.arrays["variants"])[
        np.asarray(dataset.examples("train"))[rows, 0], 0
    ]
    assert set(tasks.tolist()) == set(range(6))
    every = BucketedSampler(Layout(dataset, board), "train", 8, 0, 6)
    assert (
        variant_ranks(dataset, np.concatenate([every.next_rows()[1] for _ in range(60)])).max() > 2
    )
    for k in (0, 8, 100):  # every variant: the sampler of before, batch for batch
        a, b = (
            TrainSampler(dataset, "train", 8, 1, num_variants=k),
            TrainSampler(dataset, "train", 8, 1),
        )
        assert all(np.array_equal(x, y) for x, y in zip(batches(a, 12), batches(b, 12)))


def test_encode_batch_marks_pad_labels_ignored(dataset) -> None:
    batch = encode_batch(dataset, "train", np.arange(6))
    assert batch.inputs.shape == (6, 64) and batch.labels.shape == (6, 64)
    assert (batch.labels == IGNORE).any() and (batch.labels != 0).all()
    assert (batch.puzzle_ids > 0).all()


def test_examples_per_epoch_is_groups_times_mean_examples(dataset) -> None:
    sampler = TrainSampler(dataset, "train", 8, 0)
    records = np.asarray(dataset.examples("train"))
    mean = len(records) / len(np.unique(records[:, 0]))
    assert sampler.examples_per_epoch() == pytest.approx(6 * mean)


# ----------------------------------------------------------------------------- boxed boards


@pytest.fixture
def sized(tmp_path: Path) -> Dataset:
    """Tasks of four grid sizes (boxes of 9, 16, 25 and 36 cells) on a 10-cell canvas."""
    train, target = tmp_path / "train", tmp_path / "eval"
    for i, size in enumerate((2, 3, 4, 5, 2, 3)):
        write_task(train, f"t{i}", simple_task(i, n_train=2 + i % 2, n_test=1, size=size))
    write_task(target, "goal", simple_task(9, n_train=2, size=3))
    build_arc_dataset([train], target, tmp_path / "ds", BuildOptions(num_aug=3, canvas=10), True)
    return Dataset.open(tmp_path / "ds")


def test_buckets_keep_the_epoch_rule_and_one_board_length_per_batch(sized) -> None:
    layout = Layout(sized, "boxed")
    sampler = BucketedSampler(layout, "train", global_batch=4, seed=0, max_buckets=3)
    assert len(sampler.buckets) == 3
    records = np.asarray(sized.examples("train"))
    variants = np.asarray(sized.arrays["variants"])
    cells = layout.task_cells()
    seen = {b: [] for b in range(3)}
    for _ in range(200):
        bucket, rows = sampler.next_rows()
        tasks = variants[records[rows, 0], 0]
        assert (cells[tasks] <= sampler.buckets[bucket].length).all()  # one length per batch
        assert len(set(np.searchsorted([b.length for b in sampler.buckets], cells[tasks]))) == 1
        seen[bucket].append(rows)
    for b, inner in enumerate(sampler.samplers):  # each bucket: the plain epoch rule over its tasks
        replay = TrainSampler(sized, "train", 4, 0, inner.tasks, b + 1)
        assert all(np.array_equal(r, replay.next_rows()) for r in seen[b])
    # Buckets are drawn in proportion to their examples per epoch.
    share = np.array([s.examples_per_epoch() for s in sampler.samplers])
    drawn = np.array([len(seen[b]) for b in range(3)])
    assert np.abs(drawn / 200 - share / share.sum()).max() < 0.1


def test_bucketed_sampler_resumes_where_it_stopped(sized) -> None:
    layout = Layout(sized, "boxed")
    a = BucketedSampler(layout, "train", 4, seed=5, max_buckets=3)
    for _ in range(17):
        a.next_rows()
    state = a.state_dict()
    b = BucketedSampler(layout, "train", 4, seed=5, max_buckets=3)
    b.load_state_dict(state)
    assert b.step == 17 and [s.state_dict() for s in b.samplers] == state["buckets"]
    for _ in range(30):
        (ba, ra), (bb, rb) = a.next_rows(), b.next_rows()
        assert ba == bb and np.array_equal(ra, rb)


def test_full_boards_are_one_bucket_and_the_plain_sampler(sized) -> None:
    full = BucketedSampler(Layout(sized, "full"), "train", 4, seed=2, max_buckets=6)
    plain = TrainSampler(sized, "train", 4, seed=2)
    assert full.buckets == [Bucket(sized.seq_len, False)]
    for _ in range(10):
        bucket, rows = full.next_rows()
        assert bucket == 0 and np.array_equal(rows, plain.next_rows())
    assert full.state_dict() == plain.state_dict()


@pytest.mark.parametrize("board", ["full", "boxed"])
def test_task_table_rows_and_augmentations_come_from_each_example_variant(dataset, board) -> None:
    """Every variant of a task reads the task's row (tasks in dataset order, no blank row), with
    its own dihedral id and colour map; other tasks read other rows."""
    layout = Layout(dataset, board)
    for split in ("train", "test"):
        rows = np.arange(len(dataset.examples(split)))
        bucket = Bucket(int(layout.row_cells(split, rows).max()), True)
        batch = encode_batch(dataset, split, rows, layout, bucket, puzzle_table="task")
        reference = encode_batch(dataset, split, rows, layout, bucket)
        assert torch.equal(batch.inputs, reference.inputs) and reference.augmentation is None
        views = [dataset.view(split, int(r)) for r in rows]
        tasks = [dataset.task_ids.index(v.task_id) for v in views]
        assert batch.puzzle_ids.tolist() == tasks
        assert batch.augmentation[:, 0].tolist() == [v.transform.dihedral for v in views]
        assert batch.augmentation[:, 1:].tolist() == [v.transform.colours.tolist() for v in views]
        for task in set(tasks):  # a task's variants: one row, as many codes as variants
            mine = batch.puzzle_ids == task
            variants = {v.puzzle_id for v, t in zip(views, tasks) if t == task}
            assert len({tuple(a) for a in batch.augmentation[mine].tolist()}) == len(variants)
    assert dataset.puzzle_table_rows("task") == len(dataset.tasks) == 6
    assert dataset.puzzle_table_rows("variant") == dataset.num_puzzle_identifiers
