"""``arcpipe build-data`` for ARC: tasks -> screening -> variants -> splits -> dataset directory.

The sources are read into one packed task table (:mod:`arcpipe.data.sources`) and screened
(:mod:`arcpipe.data.leakage`: eval test pairs in the training data are refused, dropped or
allowed; a training task that repeats an earlier one is dropped or kept). Each task then gets up
to N + 1 variants, N its source's count (``PATH:N``, else ``num_aug``; target tasks take the eval
source's).

The split rule (reference §1.2): every demonstration pair of every task is a training example,
the target tasks' included; the test pairs of the other tasks are training examples too; the
target tasks' test inputs form the test split. ``val_tasks`` moves the test pairs of that many
non-target tasks into a validation split. One puzzle id per task variant (reference §1.5), shared
by its train and test examples. Training examples get a random translation fixed at build time,
one example per variant left at the origin (reference §1.4); test and validation examples never.

``variants_from`` replaces the drawn variants by those a reference ``identifiers.json`` names
(:mod:`arcpipe.arc.identifiers`), in its row order (a task's original first): the dataset of a
public checkpoint's own puzzle table. Tasks the names lack are left out and names of tasks the
sources lack are unused; both are counted in the manifest and the summary, never guessed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from arcpipe import __version__
from arcpipe.arc.corpora import DEFAULT_PAIRS_PER_TASK, SourceSpec, parse_source_spec
from arcpipe.arc.encode import COLOUR_OFFSET, DEFAULT_CANVAS, EOS, PAD, VOCAB_SIZE
from arcpipe.arc.identifiers import VariantNames, read_identifiers
from arcpipe.arc.tasks import source_digest
from arcpipe.arc.variants import draw_variants, task_seed
from arcpipe.data.dataset import Dataset, TaskInfo, task_table, write_dataset
from arcpipe.data.layout import task_box, view_boxes
from arcpipe.data.leakage import DUPLICATE_MODES, LEAKAGE_MODES, Screening, screen
from arcpipe.data.reference_layout import write_reference_layout
from arcpipe.data.sources import TARGET, SourceInfo, TaskTable, read_tasks
from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import atomic_directory, file_digest
from arcpipe.progress import Progress

_VARIANT_STREAM, _TRANSLATION_STREAM, _VALIDATION_STREAM = 0, 1, 2


@dataclass(frozen=True)
class BuildOptions:
    """Options of an ARC build; all of them are recorded in the manifest."""

    num_aug: int = 1000  # augmented variants per task besides the original (reference: 1000)
    seed: int = 42  # the reference builder's seed
    canvas: int = DEFAULT_CANVAS  # board side; grids larger than this are rejected
    val_tasks: int = 0  # non-target tasks whose test pairs form a validation split
    tasks: tuple[str, ...] | None = None  # restrict the build to these task ids
    translate: bool = True  # random translation of training examples (reference: on)
    materialize: bool = False  # also write the reference's layout (inputs/labels per split)
    leakage: str = "refuse"  # eval test pairs in the training data: refuse, drop or allow
    duplicates: str = "drop"  # the same training task twice: drop (keep the first) or keep
    pairs_per_task: int = DEFAULT_PAIRS_PER_TASK  # demonstration-group size of pair lists
    variants_from: str | None = None  # a reference identifiers.json: exactly its named variants

    def __post_init__(self) -> None:
        if self.num_aug < 0:
            raise ArcpipeError(f"--num-aug must be >= 0, got {self.num_aug}")
        if not 1 <= self.canvas <= 30:
            raise ArcpipeError(f"--canvas must be 1-30, got {self.canvas}")
        if self.val_tasks < 0:
            raise ArcpipeError(f"--val-tasks must be >= 0, got {self.val_tasks}")
        if self.leakage not in LEAKAGE_MODES:
            raise ArcpipeError(f"--leakage must be one of {', '.join(LEAKAGE_MODES)}")
        if self.duplicates not in DUPLICATE_MODES:
            raise ArcpipeError(f"--duplicates must be one of {', '.join(DUPLICATE_MODES)}")
        if self.pairs_per_task < 2:
            raise ArcpipeError(f"--pairs-per-task must be >= 2, got {self.pairs_per_task}")


@dataclass
class BuildSummary:
    """What a build produced, for the closing table."""

    path: Path
    counts: dict[str, int]
    short_tasks: dict[str, int] = field(default_factory=dict)  # task id -> variants, below N + 1
    skipped_test_pairs: int = 0  # test pairs of training tasks without a known output
    bytes_on_disk: int = 0
    seconds: float = 0.0
    leakage: dict = field(default_factory=dict)  # the manifest's leakage record
    duplicates: dict = field(default_factory=dict)  # the manifest's duplicates record
    num_aug: tuple[int, ...] = ()  # variants per task besides the original, per source
    coverage: dict | None = None  # with variants_from: what the names and the sources share


@dataclass
class _Tasks:
    """The build's tasks in build order: the packed table, each task's role and variant count."""

    table: TaskTable
    roles: list[str]  # "train", "target" or "val"
    num_aug: np.ndarray  # int64 [T]
    screening: Screening


# ----------------------------------------------------------------------------- tasks and roles


def gather_tasks(
    train_sources: Sequence[str | Path | SourceSpec],
    eval_source: str | Path | SourceSpec,
    options: BuildOptions,
) -> _Tasks:
    """Load and validate all sources, screen them (leakage, duplicates), give each task its role.

    Raises:
        ArcpipeError: a source is invalid, a leak is refused, or ids conflict.
    """
    train = [parse_source_spec(s) for s in train_sources]
    target = parse_source_spec(eval_source)
    table = read_tasks(train, target, options.canvas, options.pairs_per_task, options.tasks)
    screening = screen(table, options.leakage, options.duplicates)
    kept = np.flatnonzero(screening.keep)
    ids = [screening.renamed.get(int(r), table.ids[r]) for r in kept]
    table = table.select(kept, ids)
    roles = ["target" if r == TARGET else "train" for r in table.role.tolist()]
    per_source = np.array([_source_aug(s, options) for s in table.sources], dtype=np.int64)
    num_aug = np.where(table.role == TARGET, per_source[-1], per_source[table.source])
    return _Tasks(table, _assign_validation(table, roles, options), num_aug, screening)


def _source_aug(info: SourceInfo, options: BuildOptions) -> int:
    return options.num_aug if info.spec.num_aug is None else info.spec.num_aug


def _assign_validation(table: TaskTable, roles: list[str], options: BuildOptions) -> list[str]:
    if options.val_tasks == 0:
        return roles
    outputs_known = table.pairs[:, 1] >= 0
    eligible = [
        i
        for i, role in enumerate(roles)
        if role == "train"
        and outputs_known[table.first_pair[i] + table.num_train[i] : table.first_pair[i + 1]].all()
    ]
    if options.val_tasks > len(eligible):
        raise ArcpipeError(
            f"--val-tasks {options.val_tasks} but only {len(eligible)} training tasks have "
            "known test outputs"
        )
    rng = np.random.default_rng([options.seed, _VALIDATION_STREAM])
    chosen = set(rng.choice(eligible, size=options.val_tasks, replace=False).tolist())
    return ["val" if i in chosen else role for i, role in enumerate(roles)]


# ----------------------------------------------------------------------------- examples


def _split_pairs(table: TaskTable, index: int, role: str) -> dict[str, list[int]]:
    """Which of task ``index``'s pairs go to which split (global pair ids)."""
    first, end = int(table.first_pair[index]), int(table.first_pair[index + 1])
    demos = list(range(first, first + int(table.num_train[index])))
    tests = list(range(first + len(demos), end))
    if role == "target":
        return {"train": demos, "test": tests}
    if role == "val":
        return {"train": demos, "val": tests}
    known = [p for p in tests if table.pairs[p, 1] >= 0]
    return {"train": demos + known}


def translation_offsets(
    grids: np.ndarray,
    pairs: np.ndarray,
    pair_ids: np.ndarray,
    dihedrals: np.ndarray,
    canvas: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Random offsets for each (variant, pair), one pair per variant left at the origin.

    Input and output share the offset; its range keeps the larger of the two on the canvas.

    Returns:
        uint8 [V, P, 2] (row, column) offsets.
    """
    extents = np.maximum(grids[pairs[pair_ids, 0], 1:3], _output_dims(grids, pairs[pair_ids, 1]))
    n_var, n_pair = len(dihedrals), len(pair_ids)
    seen = view_boxes(np.tile(extents, (n_var, 1)), np.repeat(dihedrals, n_pair))
    rows, cols = seen.reshape(n_var, n_pair, 2).transpose(2, 0, 1)  # [V, P] after the transform
    offsets = np.stack(
        [rng.integers(0, canvas - rows + 1), rng.integers(0, canvas - cols + 1)], axis=-1
    )
    keep = rng.integers(0, len(pair_ids), size=len(dihedrals))
    offsets[np.arange(len(dihedrals)), keep] = 0
    return offsets.astype(np.uint8)


def _output_dims(grids: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """(height, width) of each output grid, (0, 0) where the output is unknown, [P, 2]."""
    return np.where(outputs[:, None] >= 0, grids[np.maximum(outputs, 0), 1:3], 0)


def _box(grids: np.ndarray, pairs: np.ndarray, splits: dict[str, list[int]], canvas: int):
    """The task's box (:func:`arcpipe.data.layout.task_box`): its trained-on pairs are the
    demonstrations, the inputs of its test (or validation) pairs the queries."""

    def shape(grid: int) -> tuple[int, int]:
        return int(grids[grid, 1]), int(grids[grid, 2])

    demos = [(shape(pairs[p, 0]), shape(pairs[p, 1])) for p in splits["train"]]
    queries = [shape(pairs[p, 0]) for s in ("val", "test") for p in splits.get(s, [])]
    return task_box(demos, queries, canvas)


def _split_records(variant_ids: np.ndarray, pair_ids: list[int], offsets=None) -> np.ndarray:
    """int32 [V * P, 4] records (variant, pair, row offset, col offset), variant-major."""
    n_var, n_pair = len(variant_ids), len(pair_ids)
    records = np.zeros((n_var, n_pair, 4), dtype=np.int32)
    records[..., 0] = variant_ids[:, None]
    records[..., 1] = np.asarray(pair_ids, dtype=np.int32)[None]
    if offsets is not None:
        records[..., 2:] = offsets
    return records.reshape(-1, 4)


# ----------------------------------------------------------------------------- the build


def build_arc_dataset(
    train_sources: Sequence[str | Path | SourceSpec],
    eval_source: str | Path | SourceSpec,
    out: str | Path,
    options: BuildOptions = BuildOptions(),
    overwrite: bool = False,
    quiet: bool = False,
) -> BuildSummary:
    """Validate the sources and write a dataset directory at ``out`` atomically.

    A source is a path, or ``PATH:N`` (a string or :class:`SourceSpec`) for N augmented variants
    per task of that source instead of ``options.num_aug``.

    Raises:
        ArcpipeError: a source is invalid, a leak is refused (``options.leakage``), or ``out``
            exists and ``overwrite`` is not set.
    """
    start = time.monotonic()
    out = Path(out)
    if out.exists() and not overwrite:
        raise ArcpipeError("already exists (pass --overwrite to replace it)", file=out)
    gathered = gather_tasks(train_sources, eval_source, options)
    names = coverage = None
    if options.variants_from is not None:
        names = read_identifiers(options.variants_from)
        gathered, coverage = named_tasks(gathered, names)
    table = gathered.table
    cells, grids, pairs, first_pair = table.cells, table.grids, table.pairs, table.first_pair

    variant_rows, colour_rows, boxes, short = [], [], [], {}
    records: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    num_variants = 0
    with Progress("variants", len(table), quiet=quiet) as progress:
        for index, (task_id, role) in enumerate(zip(table.ids, gathered.roles)):
            wanted = int(gathered.num_aug[index])
            if names is None:
                task_pairs = pairs[first_pair[index] : first_pair[index + 1]].astype(np.int64)
                rng = task_seed(options.seed, task_id, _VARIANT_STREAM)
                dihedrals, colours = draw_variants(cells, grids, task_pairs, wanted, rng)
            else:
                dihedrals, colours = names.transforms(coverage["rows"][task_id])
            ids = np.arange(num_variants, num_variants + len(dihedrals), dtype=np.int32)
            num_variants += len(ids)
            variant_rows.append(np.column_stack([np.full(len(ids), index), dihedrals, ids + 1]))
            colour_rows.append(colours)
            if names is None and len(ids) < wanted + 1:
                short[task_id] = len(ids)
            splits_of_task = _split_pairs(table, index, role)
            boxes.append(_box(grids, pairs, splits_of_task, options.canvas))
            for split, pair_ids in splits_of_task.items():
                offsets = None
                if split == "train" and options.translate:
                    trng = task_seed(options.seed, task_id, _TRANSLATION_STREAM)
                    offsets = translation_offsets(
                        grids, pairs, np.asarray(pair_ids), dihedrals, options.canvas, trng
                    )
                records[split].append(_split_records(ids, pair_ids, offsets))
            progress.advance(1, task_id)

    task_ids, tasks = task_table(_task_infos(gathered, variant_rows))
    arrays = {
        "tasks": tasks,
        "cells": cells,
        "grids": grids,
        "pairs": pairs,
        "variants": np.concatenate(variant_rows).astype(np.int32),
        "colours": np.concatenate(colour_rows),
        "boxes": np.array(boxes, dtype=np.int32).reshape(-1, 2),
    }
    splits = {s: np.concatenate(r) for s, r in records.items() if r}
    counts = {
        "tasks": len(table),
        "variants": num_variants,
        "puzzle_identifiers": num_variants + 1,
        **{f"{s}_examples": len(a) for s, a in splits.items()},
    }
    with atomic_directory(out, overwrite=overwrite) as tmp:
        head = _manifest_head(gathered, options, counts, coverage)
        if options.materialize:
            dataset = Dataset(
                tmp,
                {**head, "splits": {s: len(a) for s, a in splits.items()}},
                task_ids,
                arrays,
                splits,
            )
            write_reference_layout(dataset, tmp, quiet=quiet)
        write_dataset(tmp, task_ids, arrays, splits, head)
    roles = np.array(gathered.roles)
    test_pairs = table.test_pair_mask() & (roles[table.task_of_pair()] == "train")
    return BuildSummary(
        path=out,
        counts=counts,
        short_tasks=short,
        skipped_test_pairs=int((test_pairs & (pairs[:, 1] < 0)).sum()),
        bytes_on_disk=sum(f.stat().st_size for f in out.rglob("*") if f.is_file()),
        seconds=time.monotonic() - start,
        leakage=head["leakage"],
        duplicates=head["duplicates"],
        num_aug=tuple(s["num_aug"] for s in head["sources"]),
        coverage=None if coverage is None else _coverage_record(coverage),
    )


def _task_infos(gathered: _Tasks, variant_rows: list[np.ndarray]) -> list[TaskInfo]:
    table = gathered.table
    starts = np.concatenate([[0], np.cumsum([len(v) for v in variant_rows])])
    num_test = table.num_test
    return [
        TaskInfo(
            task_id,
            role,
            int(table.source[i]),
            int(table.first_pair[i]),
            int(table.num_train[i]),
            int(num_test[i]),
            int(starts[i]),
            len(variant_rows[i]),
        )
        for i, (task_id, role) in enumerate(zip(table.ids, gathered.roles))
    ]


def _manifest_head(
    gathered: _Tasks, options: BuildOptions, counts: dict[str, int], coverage: dict | None = None
) -> dict:
    sources = [
        {
            "path": str(info.spec.path),
            "role": info.role,
            "format": info.format,
            "num_aug": _source_aug(info, options),
            "tasks_read": info.tasks,
            "sha256": source_digest(info.spec.path),
        }
        for info in gathered.table.sources
    ]
    opts = asdict(options)
    opts["tasks"] = None if options.tasks is None else list(options.tasks)
    if options.variants_from is None:
        opts.pop("variants_from")  # the manifests of drawn builds stay as they were
    extra = {} if coverage is None else {"variants_from": _coverage_record(coverage)}
    return {
        "arcpipe_version": __version__,
        "kind": "arc",
        "seed": options.seed,
        "options": opts,
        "sources": sources,
        "vocab": {"size": VOCAB_SIZE, "pad": PAD, "eos": EOS, "colour_offset": COLOUR_OFFSET},
        "canvas": options.canvas,
        "seq_len": options.canvas * options.canvas,
        "counts": counts,
        "leakage": gathered.screening.leakage,
        "duplicates": gathered.screening.duplicates,
        **extra,
    }


# ----------------------------------------------------------------------------- named variants


def named_tasks(gathered: _Tasks, names: VariantNames) -> tuple[_Tasks, dict]:
    """The tasks ``names`` names (the others are left out), and what the two share.

    Returns:
        (tasks, coverage): ``coverage["rows"]`` maps each kept task to its rows in ``names``;
        the other entries count what is left out on either side.

    Raises:
        ArcpipeError: no task of the sources is named.
    """
    rows_of = {t: _original_first(names, rows) for t, rows in names.task_rows().items()}
    ids = gathered.table.ids
    kept = [i for i, task_id in enumerate(ids) if task_id in rows_of]
    if not kept:
        raise ArcpipeError(
            "names no task of the sources (the identifiers of another preset?)", file=names.path
        )
    ours = set(ids)
    unknown = [t for t in names.task_ids if t not in ours]
    coverage = {
        "path": str(names.path),
        "sha256": file_digest(names.path),
        "rows": {ids[i]: rows_of[ids[i]] for i in kept},
        "table_rows": names.rows,
        "names_used": int(sum(len(rows_of[ids[i]]) for i in kept)),
        "names_of_unknown_tasks": int(sum(len(rows_of[t]) for t in unknown)),
        "unknown_tasks": unknown,
        "unnamed_tasks": [t for t in ids if t not in rows_of],
    }
    named = _Tasks(
        gathered.table.select(kept),
        [gathered.roles[i] for i in kept],
        gathered.num_aug[kept],
        gathered.screening,
    )
    return named, coverage


def _original_first(names: VariantNames, rows: np.ndarray) -> np.ndarray:
    """A task's rows with its original (if named) first, the rest in row order; the reference
    names the original first too, and ``predict --views`` counts variants from it."""
    identity = (names.dihedrals[rows] == 0) & (names.colours[rows] == np.arange(10)).all(axis=1)
    return np.concatenate([rows[identity], rows[~identity]])


def _coverage_record(coverage: dict) -> dict:
    """What the manifest and the summary record of a named build (no row arrays)."""
    return {k: v for k, v in coverage.items() if k != "rows"}
