"""Variant drawing: the reference's duplicate rule (sha256 of sorted pair hashes) and caps."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from arcpipe.arc.augment import Transform
from arcpipe.arc.tasks import Task, load_source
from arcpipe.arc.variants import (
    _COLOUR_KEYS,
    _POSITION_KEYS,
    _SHAPE_KEYS,
    _content_hash,
    draw_variants,
    grid_features,
)
from arcpipe.data.sources import pack_grids


def reference_content(task: Task, transform: Transform) -> str:
    """The reference's puzzle hash: sha256 over the sorted 'hash(in)|hash(out)' strings."""

    def grid_hash(grid: np.ndarray) -> str:
        view = transform.view(grid)
        return hashlib.sha256(np.array(view.shape, np.int64).tobytes() + view.tobytes()).hexdigest()

    keys = sorted(
        f"{grid_hash(p.input)}|{grid_hash(p.output) if p.output is not None else '-'}"
        for p in task.train + task.test
    )
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def all_transforms(task: Task):
    """Every (dihedral, colour map) that differs on the task's colours."""
    used = task.colours().tolist()
    for d in range(8):
        for image in itertools.permutations(range(1, 10), len(used)):
            colours = np.arange(10, dtype=np.uint8)
            free = [c for c in range(1, 10) if c not in image]
            rest = [c for c in range(1, 10) if c not in used]
            colours[used] = image
            colours[rest] = free
            yield Transform(d, colours)


def our_content(task: Task, transform: Transform) -> tuple[int, int]:
    cells, grids, pairs, _ = pack_grids([task])
    ids = np.arange(len(grids))
    sums, shapes = grid_features(cells, grids, ids, _POSITION_KEYS, _SHAPE_KEYS)
    return tuple(
        int(
            _content_hash(
                sums,
                shapes,
                pairs.astype(np.int64),
                transform.dihedral,
                transform.colours,
                _COLOUR_KEYS,
                lane,
            )
        )
        for lane in (0, 1)
    )


@pytest.mark.parametrize(("task_id", "distinct"), [("0b17323b", 288), ("1990f7a8", 72)])
def test_hash_partitions_transforms_exactly_like_sha256(shared_data, task_id, distinct) -> None:
    (task,) = load_source(shared_data / "arc-agi-1" / "evaluation" / f"{task_id}.json")
    ours, theirs = {}, {}
    for t in all_transforms(task):
        key = (t.dihedral, t.colours.tobytes())
        ours[key], theirs[key] = our_content(task, t), reference_content(task, t)
    groups_ours = {frozenset(k for k in ours if ours[k] == v) for v in ours.values()}
    groups_theirs = {frozenset(k for k in theirs if theirs[k] == v) for v in theirs.values()}
    assert groups_ours == groups_theirs
    assert len(groups_ours) == distinct


def draw(task: Task, num_aug: int, seed: int = 0):
    cells, grids, pairs, _ = pack_grids([task])
    return draw_variants(cells, grids, pairs.astype(np.int64), num_aug, np.random.default_rng(seed))


def test_kept_variants_are_distinct_and_original_first(shared_data) -> None:
    (task,) = load_source(shared_data / "arc-agi-1" / "training" / "007bbfb7.json")
    dihedrals, colours = draw(task, 200)
    assert len(dihedrals) == 201
    assert dihedrals[0] == 0 and colours[0].tolist() == list(range(10))
    contents = {reference_content(task, Transform(int(d), c)) for d, c in zip(dihedrals, colours)}
    assert len(contents) == 201
    assert (colours[:, 0] == 0).all()


def test_saturated_task_reaches_its_cap_and_no_more(shared_data) -> None:
    (task,) = load_source(shared_data / "arc-agi-1" / "evaluation" / "0b17323b.json")
    dihedrals, _ = draw(task, 1000)
    assert len(dihedrals) == 288  # the reference's count: a symmetric two-colour task
    (one_colour,) = load_source(shared_data / "arc-agi-1" / "evaluation" / "1990f7a8.json")
    assert len(draw(one_colour, 1000)[0]) == 72
    assert len(draw(one_colour, 10)[0]) == 11


def test_same_seed_same_variants(shared_data) -> None:
    (task,) = load_source(shared_data / "arc-agi-1" / "training" / "007bbfb7.json")
    a, b, c = draw(task, 50, 3), draw(task, 50, 3), draw(task, 50, 4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])
