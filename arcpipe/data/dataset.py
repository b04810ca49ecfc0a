"""The dataset directory: a compact, memory-mappable record of every augmented example.

Instead of materialising every view (the reference writes ~7 GB for ARC-AGI-1), a dataset stores
the original grids once plus one small record per puzzle variant and per example; views are
encoded on the fly (:meth:`Dataset.encode`), bit-identically on every call.

Files (all arrays are ``.npy``, opened with ``mmap_mode="r"``)::

    manifest.json        written last; format version, kind, options, sources, vocabulary, canvas,
                         counts, and the sha256 of every other file
    task_ids.json        the task ids, in task order
    tasks.npy            int64 [T, 7]          (role, source, first pair, #train pairs, #test pairs,
                                               first variant, #variants) per task
    cells.npy            uint8 [total_cells]   every original grid, flattened back to back
    grids.npy            int64 [G, 3]          (first cell, height, width) of each grid
    pairs.npy            int32 [P, 2]          (input grid, output grid or -1 when unknown)
    variants.npy         int32 [V, 3]          (task, dihedral id, puzzle id)
    colours.npy          uint8 [V, 10]         each variant's value map (colours[0] == 0)
    row_perms.npy        uint8 [V, canvas]     optional: rows of the transformed grid, permuted
    col_perms.npy        uint8 [V, canvas]     optional: columns likewise (Sudoku's bands/stacks)
    boxes.npy            int32 [T, 2]          ARC: each task's box (rows, columns) in its own
                                               frame, for boxed boards (arcpipe.data.layout)
    <split>.npy          int32 [N, 4]          (variant, pair, row offset, column offset), sorted
                                               by variant; splits: train, test and optionally val

A cell value ``c`` becomes token ``c + vocab.colour_offset`` (ARC: 2, after PAD 0 and EOS 1).
Puzzle id 0 is the blank (padding) id; an ARC variant ``v`` has puzzle id ``v + 1``. A model with
task-shared puzzle embeddings (``model.puzzle_table = "task"``) reads instead each example's task
and its variant's augmentation (:meth:`Dataset.task_augmentations`) from the same records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from arcpipe.arc.augment import Augmentations, Transform
from arcpipe.arc.encode import encode_examples
from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import file_digest, write_json_atomic

FORMAT_NAME = "arcpipe-dataset"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
TASK_IDS = "task_ids.json"
ARRAYS = ("tasks", "cells", "grids", "pairs", "variants", "colours")
PERMUTATIONS = ("row_perms", "col_perms")
OPTIONAL_ARRAYS = (*PERMUTATIONS, "boxes")
SPLITS = ("train", "val", "test")
ROLES = ("train", "target", "val")
BLANK_PUZZLE_ID = 0


@dataclass(frozen=True)
class TaskInfo:
    """What the dataset records about one task."""

    id: str
    role: str  # "train" (trained on, test pairs included), "target" or "val"
    source: int  # index into the manifest's sources
    first_pair: int
    num_train: int
    num_test: int
    first_variant: int
    num_variants: int


@dataclass(frozen=True)
class View:
    """One example of a split as the model sees it, and how to map its answer back."""

    task_id: str
    pair_index: int  # index among the task's test pairs for test/val splits, train pairs otherwise
    puzzle_id: int
    transform: Transform


class Dataset:
    """Read-only access to a dataset: its manifest, task table, grid store and split records.

    Open a directory with :meth:`open`; the builder also wraps arrays it holds in memory.
    """

    def __init__(
        self,
        path: Path,
        manifest: dict,
        task_ids: list[str],
        arrays: dict[str, np.ndarray],
        splits: dict[str, np.ndarray],
        fingerprint: str = "",
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.task_ids = task_ids
        self.arrays = arrays
        self.splits = splits
        self.fingerprint = fingerprint  # sha256 of manifest.json, which holds every file's digest
        self._tasks: list[TaskInfo] | None = None

    @property
    def tasks(self) -> list[TaskInfo]:
        """The task table as records (built on first use)."""
        if self._tasks is None:
            rows = np.asarray(self.arrays["tasks"]).tolist()
            self._tasks = [
                TaskInfo(task_id, ROLES[r[0]], *r[1:]) for task_id, r in zip(self.task_ids, rows)
            ]
        return self._tasks

    @classmethod
    def open(cls, path: str | Path) -> Dataset:
        """Open a dataset directory, memory-mapping its arrays.

        Raises:
            ArcpipeError: the directory is not a complete dataset of this format version.
        """
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise ArcpipeError(
                "not a dataset directory (no manifest.json; an interrupted build leaves none)",
                file=path,
            )
        raw = manifest_path.read_bytes()
        try:
            manifest = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise ArcpipeError(f"damaged manifest: {err}", file=manifest_path) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
            raise ArcpipeError("not an arcpipe dataset manifest", file=manifest_path)
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise ArcpipeError(
                f"dataset format version {version}, this arcpipe reads version {FORMAT_VERSION}; "
                "rebuild it with this arcpipe's build-data",
                file=manifest_path,
            )
        _verify_files(path, manifest)
        task_ids = orjson.loads((path / TASK_IDS).read_bytes())

        def load(name: str) -> np.ndarray:
            try:
                return np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                raise ArcpipeError(f"cannot read array: {err}", file=path / f"{name}.npy") from None

        arrays = {name: load(name) for name in ARRAYS}
        arrays.update({n: load(n) for n in OPTIONAL_ARRAYS if (path / f"{n}.npy").exists()})
        splits = {s: load(s) for s in SPLITS if s in manifest["splits"]}
        return cls(path, manifest, task_ids, arrays, splits, hashlib.sha256(raw).hexdigest())

    @property
    def canvas(self) -> int:
        return int(self.manifest["canvas"])

    @property
    def seq_len(self) -> int:
        return self.canvas * self.canvas

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["vocab"]["size"])

    @property
    def num_puzzle_identifiers(self) -> int:
        """Rows of the puzzle-embedding table, the blank id 0 included."""
        return int(self.manifest["counts"]["puzzle_identifiers"])

    def puzzle_table_rows(self, table: str) -> int:
        """Rows of the puzzle-embedding table under ``model.puzzle_table = table``: one per
        puzzle id (``"variant"``, the blank id 0 included), or one per task (``"task"``).

        Raises:
            ArcpipeError: task rows on a Sudoku or Maze dataset (its variants share one row).
        """
        if table == "variant":
            return self.num_puzzle_identifiers
        if self.manifest.get("kind", "arc") != "arc":
            raise ArcpipeError(
                "model.puzzle_table = task needs an ARC dataset (Sudoku and Maze puzzles share "
                "one puzzle embedding already)",
                file=self.path,
            )
        return len(self.tasks)

    def task_augmentations(
        self, split: str, rows: np.ndarray, fresh: Augmentations | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The task-shared puzzle rows of examples ``rows`` of ``split`` and their augmentations.

        Returns:
            task indices int64 [B] (the rows of a task table), and int64 [B, 11] augmentations:
            each example's dihedral id, then its colour map (colour ``c`` appears as column
            ``1 + c``): its variant's, or ``fresh``'s.
        """
        which = np.asarray(self.examples(split)[np.asarray(rows)])[:, 0]
        variants = np.asarray(self.arrays["variants"][which], dtype=np.int64)
        if fresh is not None:
            codes = np.concatenate([fresh.dihedrals[:, None], fresh.colours], axis=1)
            return variants[:, 0], codes.astype(np.int64)
        colours = np.asarray(self.arrays["colours"][which], dtype=np.int64)
        return variants[:, 0], np.concatenate([variants[:, 1:2], colours], axis=1)

    def variant_index(self, variants: np.ndarray) -> np.ndarray:
        """int64, each variant's index within its task (0: the original; build order)."""
        first = np.array([t.first_variant for t in self.tasks], dtype=np.int64)
        variants = np.asarray(variants, dtype=np.int64)
        return variants - first[np.asarray(self.arrays["variants"])[variants, 0]]

    def examples(self, split: str) -> np.ndarray:
        """int32 [N, 4] example records of ``split``: (variant, pair, row offset, col offset)."""
        if split not in self.splits:
            raise ArcpipeError(f"has no '{split}' split", file=self.path)
        return self.splits[split]

    def records(
        self, split: str, rows: np.ndarray, fresh: Augmentations | None = None
    ) -> np.ndarray:
        """int32 [B, 4] records of examples ``rows`` of ``split``, at ``fresh``'s offsets if
        given."""
        records = np.array(self.examples(split)[np.asarray(rows)])
        if fresh is not None:
            records[:, 2:4] = fresh.offsets
        return records

    def encode(
        self, split: str, rows: np.ndarray, fresh: Augmentations | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encode examples ``rows`` of ``split`` (seen through ``fresh`` if given).

        Returns:
            inputs uint8 [B, seq_len], labels uint8 [B, seq_len] (PAD where unsupervised),
            puzzle_ids int32 [B].
        """
        return self.encode_records(self.records(split, rows, fresh), fresh)

    def encode_records(
        self, records: np.ndarray, fresh: Augmentations | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encode example records (int32 [B, 4]) directly; see :meth:`encode`. ``fresh``: the
        dihedral ids and colour maps to use instead of the variants' (the offsets are the
        records')."""
        which = records[:, 0]
        variants = np.asarray(self.arrays["variants"][which])
        n = len(records)
        identity = np.broadcast_to(np.arange(self.canvas, dtype=np.uint8), (n, self.canvas))
        row_perms, col_perms = (
            np.asarray(self.arrays[name][which]) if name in self.arrays else identity
            for name in PERMUTATIONS
        )
        dihedrals = variants[:, 1] if fresh is None else fresh.dihedrals
        colours = np.asarray(self.arrays["colours"][which]) if fresh is None else fresh.colours
        inputs = np.empty((n, self.seq_len), dtype=np.uint8)
        labels = np.empty((n, self.seq_len), dtype=np.uint8)
        encode_examples(
            self.arrays["cells"],
            self.arrays["grids"],
            self.arrays["pairs"],
            np.ascontiguousarray(dihedrals, dtype=variants.dtype),
            np.ascontiguousarray(colours, dtype=np.uint8),
            np.ascontiguousarray(row_perms),
            np.ascontiguousarray(col_perms),
            records[:, 1],
            records[:, 2:4],
            self.canvas,
            int(self.manifest["vocab"]["colour_offset"]),
            inputs,
            labels,
        )
        return inputs, labels, variants[:, 2].astype(np.int32)

    def view(self, split: str, row: int) -> View:
        """The task, pair index, puzzle id and transform of example ``row`` of ``split``."""
        variant, pair = (int(x) for x in self.examples(split)[row, :2])
        task_index, d, puzzle_id = (int(x) for x in self.arrays["variants"][variant])
        task = self.tasks[task_index]
        index = pair - task.first_pair
        if split != "train":
            index -= task.num_train
        identity = np.arange(self.canvas)
        for name in PERMUTATIONS:
            if name in self.arrays and not np.array_equal(self.arrays[name][variant], identity):
                raise NotImplementedError("a view with permuted rows/columns has no Transform")
        transform = Transform(d, np.array(self.arrays["colours"][variant]))
        return View(task.id, index, puzzle_id, transform)

    def grid(self, index: int) -> np.ndarray:
        """Original grid ``index`` as uint8 [h, w]."""
        start, h, w = (int(x) for x in self.arrays["grids"][index])
        return np.array(self.arrays["cells"][start : start + h * w]).reshape(h, w)

    def task_pairs(self, task: TaskInfo) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """All pairs of a task (train pairs, then test pairs), as original grids."""
        pairs = self.arrays["pairs"][
            task.first_pair : task.first_pair + task.num_train + task.num_test
        ]
        return [(self.grid(i), None if o < 0 else self.grid(o)) for i, o in pairs]


def task_table(tasks: list[TaskInfo]) -> tuple[list[str], np.ndarray]:
    """The ids and the int64 [T, 7] array that store a task list."""
    rows = [
        (
            ROLES.index(t.role),
            t.source,
            t.first_pair,
            t.num_train,
            t.num_test,
            t.first_variant,
            t.num_variants,
        )
        for t in tasks
    ]
    return [t.id for t in tasks], np.array(rows, dtype=np.int64).reshape(-1, 7)


def write_dataset(
    folder: Path,
    task_ids: list[str],
    arrays: dict[str, np.ndarray],
    splits: dict[str, np.ndarray],
    manifest: dict,
) -> dict:
    """Write every file into ``folder`` (normally a temporary directory), the manifest last.

    ``manifest`` holds the kind-specific fields; the format, version, counts, split sizes and
    file digests are added here. Returns the manifest as written.
    """
    digests = {}
    for name, array in {**arrays, **splits}.items():
        path = folder / f"{name}.npy"
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        digests[path.name] = file_digest(path)
    write_json_atomic(folder / TASK_IDS, task_ids)
    digests[TASK_IDS] = file_digest(folder / TASK_IDS)
    written = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        **manifest,
        "splits": {s: len(a) for s, a in splits.items()},
        "files": digests,
    }
    write_json_atomic(folder / MANIFEST, written)
    return written


def _verify_files(path: Path, manifest: dict) -> None:
    """Every file the manifest lists is present with its recorded sha256 (a copy cut short, a
    flipped bit or a file of another build is refused before anything reads it)."""
    for name, digest in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise ArcpipeError(
                "incomplete dataset: file missing (rebuild or copy it again)", file=file
            )
        if file_digest(file) != digest:
            raise ArcpipeError(
                "damaged dataset: contents differ from the manifest's sha256 (rebuild or copy "
                "it again)",
                file=file,
            )
