"""The leakage guard and the duplicate rule of ``build-data``, and what a dataset's record says.

**Leakage.** Every test pair of a target (eval) task, input and output when the output is known
and the input alone otherwise, is fingerprinted up to the augmentation group
(:mod:`arcpipe.arc.fingerprint`) and looked up among the pairs the build trains on: every pair of
every training task (its test pairs with known outputs included) and the demonstrations of the
other target tasks. A task's own demonstrations are shown with it at test time and are not a leak
(7 ARC-AGI-1 evaluation tasks have a test pair equal to one of their own demonstrations up to the
group; they are counted apart). What a hit does is the build's ``leakage`` mode:

- ``refuse`` (the default): one line with the count, the first few hits and the options; nothing
  is written.
- ``drop``: the training tasks that hold a hit are left out whole, not just the pairs: in the
  data we know, such a task is a copy of the eval task (375 of ARC-AGI-2's 376 copies of ARC-AGI-1
  evaluation tasks hold the same pairs, re-split; ARC-AGI-1 training 40853293 *is* evaluation
  070dd51e) or a sibling of it, whose other pairs would teach the eval task's rule from examples
  the eval task does not show. A hit in another target task's demonstrations cannot be dropped
  (the eval set is what it is) and stays counted.
- ``allow``: kept and recorded.

The manifest's ``leakage`` record holds the mode, every eval test pair's fingerprint, the hits, the
dropped tasks and ``contained``: the eval test pairs the dataset's training examples hold, which
``train`` reports beside its evaluation (:func:`contained_test_outputs`).

**Duplicates.** Two training tasks are the same task when they hold the same pairs up to the group
(each pair up to the group, in any order and any split between demonstrations and tests:
ARC-AGI-2 training re-orders and re-splits the ARC-AGI-1 tasks it copies). With ``duplicates =
"drop"`` (the default) the first copy in build order is kept; ``keep`` is the reference's
behaviour (every copy trained on, under its own puzzle ids).

**Conflicts.** The same id with content that does not merge (:mod:`arcpipe.data.sources`): when the
later copy (or the training copy, beside a target) is a leak kept by ``allow`` or a duplicate kept
by ``keep``, it is renamed ``ID@S`` (S: its source's index in the manifest); when it was dropped
the conflict is gone; any other disagreement is an error, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arcpipe.arc.fingerprint import (
    as_keys,
    hex_digest,
    matching,
    pair_fingerprints,
    task_keys,
)
from arcpipe.data.dataset import Dataset
from arcpipe.data.sources import TARGET, TRAIN, TaskTable
from arcpipe.errors import ArcpipeError

LEAKAGE_MODES = ("refuse", "drop", "allow")
DUPLICATE_MODES = ("drop", "keep")
SHOWN_IN_ERROR = 3  # hits named in the refusal line
LISTED = 1000  # hits and duplicates listed by name in the manifest (all are counted)


@dataclass
class Fingerprints:
    """Every pair's fingerprints, three ways (uint64 [P, 2] each)."""

    canonical: np.ndarray  # up to the group, input and output (input alone when unknown)
    input_only: np.ndarray  # up to the group, the input alone
    exact: np.ndarray  # as stored, input and output

    @classmethod
    def of(cls, table: TaskTable) -> Fingerprints:
        args = (table.cells, table.grids, table.pairs)
        return cls(
            pair_fingerprints(*args),
            pair_fingerprints(*args, with_output=False),
            pair_fingerprints(*args, canonical=False),
        )


@dataclass
class Hit:
    """An eval test pair found among the pairs trained on."""

    target: int  # task row of the eval task
    test_index: int
    holder: int  # task row holding the pair
    pair_index: int  # its index among the holder's pairs (demonstrations first)
    exact: bool  # equal as stored (else up to a transform and a colour relabelling)


@dataclass
class Screening:
    """What the guard and the duplicate rule decided, and the manifest's records of it."""

    keep: np.ndarray  # bool [T]
    renamed: dict[int, str] = field(default_factory=dict)  # task row -> new id
    leakage: dict = field(default_factory=dict)
    duplicates: dict = field(default_factory=dict)


def screen(table: TaskTable, leakage: str, duplicates: str) -> Screening:
    """Run the guard and the duplicate rule over the build's tasks (module docstring).

    Raises:
        ArcpipeError: a leak under ``refuse``, or an id conflict that is neither a kept leak nor a
            kept duplicate.
    """
    prints = Fingerprints.of(table)
    hits, own = find_hits(table, prints)
    keep = np.ones(len(table), dtype=bool)
    holders = sorted({h.holder for h in hits if table.role[h.holder] == TRAIN})
    if hits and leakage == "refuse":
        raise ArcpipeError(refusal(table, hits, holders))
    if leakage == "drop":
        keep[holders] = False
    copies = find_duplicates(table, prints, keep)
    if duplicates == "drop":
        keep[list(copies)] = False
    kept_leaks = {h.holder for h in hits} if leakage == "allow" else set()
    kept_copies = set(copies) if duplicates == "keep" else set()
    renamed = resolve_conflicts(table, keep, kept_leaks | kept_copies)
    return Screening(
        keep,
        renamed,
        _leakage_record(table, prints, hits, own, leakage, keep),
        _duplicates_record(table, copies, duplicates),
    )


def _trained_pairs(table: TaskTable) -> np.ndarray:
    """bool [P]: the pairs the build trains on (see the module docstring)."""
    task = table.task_of_pair()
    is_test = table.test_pair_mask()
    known = table.pairs[:, 1] >= 0
    return np.where(table.role[task] == TRAIN, known, ~is_test)


def find_hits(table: TaskTable, prints: Fingerprints) -> tuple[list[Hit], int]:
    """The eval test pairs found among the trained-on pairs, one hit per (test pair, holding
    task) (its first exact match, else its first match), sorted; and the count of test pairs
    found only among their own task's demonstrations."""
    task = table.task_of_pair()
    eval_pairs = np.flatnonzero((table.role[task] == TARGET) & table.test_pair_mask())
    trained = np.flatnonzero(_trained_pairs(table))
    known = table.pairs[eval_pairs, 1] >= 0
    found = []
    for mask, keys in ((known, prints.canonical), (~known, prints.input_only)):
        q, k = matching(prints.canonical[eval_pairs[mask]], keys[trained])
        found += list(zip(eval_pairs[mask][q].tolist(), trained[k].tolist()))
    best: dict[tuple[int, int], Hit] = {}
    own_pairs = set()
    for query, pair in sorted(found):
        target, holder = int(task[query]), int(task[pair])
        if target == holder:
            own_pairs.add(query)
            continue
        exact = bool((prints.exact[query] == prints.exact[pair]).all())
        hit = Hit(target, _test_index(table, query), holder, pair - table.first_pair[holder], exact)
        if (query, holder) not in best or (exact and not best[query, holder].exact):
            best[query, holder] = hit
    hits = [best[key] for key in sorted(best)]
    leaked = {q for q, _ in best}
    return hits, len(own_pairs - leaked)


def _test_index(table: TaskTable, pair: int) -> int:
    """The index among its task's test pairs of test pair ``pair``."""
    t = np.searchsorted(table.first_pair, pair, side="right") - 1
    return int(pair - table.first_pair[t] - table.num_train[t])


def describe_pair(table: TaskTable, task: int, pair_index: int) -> str:
    """``train[2]`` or ``test[0]`` for a task's pair."""
    n = int(table.num_train[task])
    return f"train[{pair_index}]" if pair_index < n else f"test[{pair_index - n}]"


def refusal(table: TaskTable, hits: list[Hit], holders: list[int]) -> str:
    """The one line that refuses a build with leaks."""
    shown = []
    for h in hits[:SHOWN_IN_ERROR]:
        source = table.sources[table.source[h.holder]].spec.path
        shown.append(
            f"{table.ids[h.target]} test {h.test_index} in {source} task {table.ids[h.holder]} "
            f"{describe_pair(table, h.holder, h.pair_index)}"
            + ("" if h.exact else " (up to a transform and colours)")
        )
    more = f"; {len(hits) - len(shown)} more" if len(hits) > len(shown) else ""
    allow = "--leakage allow to train on them (recorded in the manifest)"
    options = (
        f"Pass --leakage drop to leave out the {_count(len(holders), 'training task')} that "
        f"hold them, or {allow}"
        if holders
        else f"They are other eval tasks' demonstrations, which --leakage drop keeps: pass {allow}"
    )
    return f"{found_text(hits)} found in the training data: {'; '.join(shown)}{more}. {options}"


def found_text(hits: list[Hit]) -> str:
    """``395 test outputs of 376 eval tasks`` for a list of hits."""
    pairs = len({(h.target, h.test_index) for h in hits})
    return f"{_count(pairs, 'test output')} of {_count(len({h.target for h in hits}), 'eval task')}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def find_duplicates(table: TaskTable, prints: Fingerprints, keep: np.ndarray) -> dict[int, int]:
    """Training tasks (still kept) that repeat an earlier one: {task row: first copy's row}."""
    keys = as_keys(task_keys(prints.canonical, table.first_pair))
    rows = np.flatnonzero((table.role == TRAIN) & keep)
    _, first, inverse = np.unique(keys[rows], return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    repeats = np.flatnonzero(first[inverse] != np.arange(len(rows)))
    return {int(rows[r]): int(rows[first[inverse[r]]]) for r in repeats}


def resolve_conflicts(table: TaskTable, keep: np.ndarray, may_rename: set[int]) -> dict[int, str]:
    """New ids for kept copies that share an id with other content (module docstring).

    Raises:
        ArcpipeError: a conflict that no rule resolves.
    """
    renamed = {}
    for a, b in table.conflicts:
        if not (keep[a] and keep[b]):
            continue
        later = a if table.role[b] == TARGET else b
        first = b if later == a else a
        if later not in may_rename:
            raise ArcpipeError(
                f"task id also in {table.files[first]} with different content",
                file=table.files[later],
                task=table.ids[later],
            )
        renamed[later] = f"{table.ids[later]}@{table.source[later]}"
    return renamed


def _leakage_record(
    table: TaskTable,
    prints: Fingerprints,
    hits: list[Hit],
    own: int,
    mode: str,
    keep: np.ndarray,
) -> dict:
    eval_rows = np.flatnonzero(table.role == TARGET)
    fingerprints = {}
    for t in eval_rows.tolist():
        start = table.first_pair[t] + table.num_train[t]
        fingerprints[table.ids[t]] = [
            hex_digest(prints.canonical[p]) for p in range(start, table.first_pair[t + 1])
        ]
    contained = sorted({(h.target, h.test_index) for h in hits if keep[h.holder]})
    dropped = sorted({h.holder for h in hits if not keep[h.holder]})
    return {
        "mode": mode,
        "eval_test_pairs": sum(len(v) for v in fingerprints.values()),
        "eval_fingerprints": fingerprints,
        "hits": len(hits),
        "hit_list": [_hit_record(table, h) for h in hits[:LISTED]],
        "test_pairs_hit": len({(h.target, h.test_index) for h in hits}),
        "tasks_hit": len({h.target for h in hits}),
        "own_demonstrations": own,
        "dropped_tasks": [_task_record(table, t) for t in dropped],
        "contained": [{"task": table.ids[t], "test_index": i} for t, i in contained],
    }


def _hit_record(table: TaskTable, hit: Hit) -> dict:
    return {
        "eval_task": table.ids[hit.target],
        "test_index": hit.test_index,
        "source": int(table.source[hit.holder]),
        "task": table.ids[hit.holder],
        "pair": describe_pair(table, hit.holder, hit.pair_index),
        "match": "exact" if hit.exact else "transform",
    }


def _task_record(table: TaskTable, row: int) -> dict:
    return {"task": table.ids[row], "source": int(table.source[row])}


def _duplicates_record(table: TaskTable, copies: dict[int, int], mode: str) -> dict:
    across = sum(table.source[r] != table.source[f] for r, f in copies.items())
    return {
        "mode": mode,
        "count": len(copies),
        "across_sources": int(across),
        "list": [
            {**_task_record(table, r), "same_as": _task_record(table, f)}
            for r, f in sorted(copies.items())[:LISTED]
        ],
    }


# ----------------------------------------------------------------------------- a dataset's record


def contained_test_outputs(manifest: dict) -> int:
    """How many of the dataset's target test pairs its training examples hold (0 if unrecorded)."""
    return len(manifest.get("leakage", {}).get("contained", []))


def contained_note(contained: int, total: int, mode: str) -> str:
    """The sentence ``train`` and ``score`` print when a run saw the outputs it is scored on."""
    return (
        f"trained on data that contains {contained:,} of these {total:,} test outputs "
        f"(built with --leakage {mode})"
    )


def training_note(manifest: dict) -> str | None:
    """:func:`contained_note` for a dataset's own target set; None when it holds none."""
    contained = contained_test_outputs(manifest)
    if not contained:
        return None
    record = manifest["leakage"]
    return contained_note(contained, record["eval_test_pairs"], record["mode"])


def count_contained(dataset: Dataset, solutions: dict[str, list[np.ndarray]]) -> tuple[int, int]:
    """How many scored test outputs a dataset's training examples hold, up to the group.

    Each scored output is paired with the dataset's own test input of that target task and test
    index, and looked up among the pairs the dataset's train split trains on (a task's own
    demonstrations excepted, as in the guard).

    Returns:
        (contained, checked): ``checked`` counts the scored outputs of the dataset's target tasks.
    """
    cells = np.asarray(dataset.arrays["cells"])
    grids = np.asarray(dataset.arrays["grids"])
    pairs = np.asarray(dataset.arrays["pairs"]).astype(np.int64)
    trained = np.unique(np.asarray(dataset.examples("train")[:, 1]))
    first_pairs = np.array([t.first_pair for t in dataset.tasks] + [len(pairs)])
    task_of = np.searchsorted(first_pairs, np.arange(len(pairs)), side="right") - 1
    extra_cells, extra_grids, queries, query_task = [], [], [], []
    next_cell, next_grid = len(cells), len(grids)
    for index, task in enumerate(dataset.tasks):
        truths = solutions.get(task.id) if task.role == "target" else None
        for i, truth in enumerate((truths or [])[: task.num_test]):
            extra_cells.append(np.asarray(truth, dtype=np.uint8).reshape(-1))
            extra_grids.append((next_cell, *np.shape(truth)))
            queries.append((pairs[task.first_pair + task.num_train + i, 0], next_grid))
            query_task.append(index)
            next_cell, next_grid = next_cell + extra_cells[-1].size, next_grid + 1
    if not queries:
        return 0, 0
    all_cells = np.concatenate([cells, *extra_cells])
    all_grids = np.concatenate([grids, np.array(extra_grids, dtype=np.int64)])
    found_q, found_k = matching(
        pair_fingerprints(all_cells, all_grids, np.array(queries)),
        pair_fingerprints(cells, grids, pairs[trained]),
    )
    other = np.asarray(query_task)[found_q] != task_of[trained[found_k]]
    return len(np.unique(found_q[other])), len(queries)
