"""Pair and task fingerprints: invariant under the augmentation group, and nothing else.

The classes are checked against a plain-Python canonical form written here independently of the
numba code: relabel colours by first appearance under each transform, keep the smallest encoding.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REPO

from arcpipe.arc.augment import NUM_DIHEDRAL, Transform, dihedral, random_colours
from arcpipe.arc.fingerprint import as_keys, matching, pair_fingerprints, task_keys
from arcpipe.arc.tasks import Pair, Task, load_source
from arcpipe.data.sources import pack_grids


def fingerprints(pairs: list[Pair], **kw) -> np.ndarray:
    cells, grids, packed, _ = pack_grids([Task("t", tuple(pairs), (), "x")])
    return pair_fingerprints(cells, grids, packed, **kw)


def random_pair(rng: np.random.Generator, h: int = 4, w: int = 5) -> Pair:
    grid = rng.integers(0, 5, size=(h, w)).astype(np.uint8)
    return Pair(grid, np.ascontiguousarray(np.rot90(grid)))


def python_canonical(pair: Pair) -> str:
    best = None
    for d in range(NUM_DIHEDRAL):
        numbering = {0: 0}
        parts = []
        for grid in (pair.input, pair.output):
            if grid is None:
                parts.append("none")
                continue
            view = dihedral(grid, d)
            codes = [numbering.setdefault(int(v), len(numbering)) for v in view.reshape(-1)]
            parts.append(f"{view.shape}:{codes}")
        text = "|".join(parts)
        best = text if best is None or text < best else best
    return best


@pytest.mark.parametrize("seed", range(4))
def test_every_transform_with_a_colour_map_gives_the_same_fingerprint(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pair = random_pair(rng)
    views = [Transform(d, random_colours(rng)) for d in range(NUM_DIHEDRAL)]
    moved = [Pair(t.view(pair.input), t.view(pair.output)) for t in views]
    canonical = fingerprints([pair, *moved])
    assert (canonical == canonical[0]).all()
    exact = fingerprints([pair, *moved], canonical=False)
    assert len(np.unique(as_keys(exact))) == 1 + NUM_DIHEDRAL  # as stored, all differ


def test_one_cell_changed_or_input_and_output_moved_apart_is_another_fingerprint() -> None:
    rng = np.random.default_rng(7)
    pair = random_pair(rng)
    near = pair.output.copy()
    near[0, 0] = (near[0, 0] + 1) % 10
    turned_apart = Pair(pair.input, np.ascontiguousarray(np.rot90(pair.output)))  # not joint
    unknown = Pair(pair.input, None)
    found = fingerprints([pair, Pair(pair.input, near), turned_apart, unknown])
    assert len(np.unique(as_keys(found))) == 4
    alone = fingerprints([pair, unknown], with_output=False)
    assert (alone[0] == alone[1]).all() and (alone[1] == found[3]).all()


def test_classes_agree_with_an_independent_canonical_form() -> None:
    tasks = load_source(REPO / "data" / "sample" / "training")
    tasks += load_source(REPO / "data" / "sample" / "evaluation")
    rng = np.random.default_rng(3)
    pairs = [p for t in tasks for p in t.train + t.test]
    pairs += [Pair(p.input, Transform(int(rng.integers(8)), random_colours(rng)).view(p.output))
              for p in pairs[:20]]  # fmt: skip
    pairs += [Pair(Transform(d, random_colours(rng)).view(p.input), None) for d, p in
              enumerate(pairs[:8])]  # fmt: skip
    pairs += [Pair(t.view(p.input), t.view(p.output)) for p in pairs[:30] if p.output is not None
              for t in [Transform(int(rng.integers(8)), random_colours(rng))]]  # fmt: skip
    ours = as_keys(fingerprints(pairs)).tolist()
    theirs = [python_canonical(p) for p in pairs]
    for i in range(len(pairs)):
        for j in range(len(pairs)):
            assert (ours[i] == ours[j]) == (theirs[i] == theirs[j]), (i, j)
    assert len(set(theirs)) < len(pairs) < 2 * len(set(theirs))  # both kinds of case occur


def test_task_keys_ignore_order_split_and_transform_but_not_a_pair() -> None:
    rng = np.random.default_rng(5)
    pairs = [random_pair(rng, 3, 3 + i) for i in range(4)]
    t = Transform(6, random_colours(rng))
    moved = [Pair(t.view(p.input), t.view(p.output)) for p in pairs]
    tasks = [
        Task("a", tuple(pairs[:3]), (pairs[3],), "x"),
        Task("b", (moved[3], moved[0]), (moved[2], moved[1]), "x"),  # re-ordered, re-split
        Task("c", tuple(pairs[:3]), (pairs[3], pairs[3]), "x"),  # one pair twice
        Task("d", tuple(pairs[:2]), (pairs[3],), "x"),  # one pair fewer
    ]
    cells, grids, packed, first_pair = pack_grids(tasks)
    keys = as_keys(task_keys(pair_fingerprints(cells, grids, packed), first_pair)).tolist()
    assert keys[0] == keys[1] and len({keys[0], keys[2], keys[3]}) == 3


def test_matching_lists_every_equal_pair() -> None:
    keys = np.array([[1, 2], [3, 4], [1, 2], [5, 6]], dtype=np.uint64)
    queries = np.array([[1, 2], [9, 9], [5, 6]], dtype=np.uint64)
    q, k = matching(queries, keys)
    assert list(zip(q.tolist(), k.tolist())) == [(0, 0), (0, 2), (2, 3)]
