"""Task corpora beyond ARC's own files: re-ARC folders and JSONL files, read one task at a time.

A build SOURCE (``--train`` / ``--eval``) is one of:

- a folder, searched recursively for ``*.json``: each file an ARC task (``{"train", "test"}``,
  task id = file stem) or a re-ARC task (a list of ``{"input", "output"}`` pairs);
- a ``*.jsonl`` file, one task per line: ``{"train": [...], "test": [...]}`` or
  ``{"examples": [...]}``, with an optional ``"id"`` (a string or an integer); without one the
  task id is ``STEM:LINE`` (the file's stem, the 1-based line number); blank lines are skipped;
- any other file: an ARC task file or a Kaggle ``*_challenges.json`` (:mod:`arcpipe.arc.tasks`).

A plain list of pairs (a re-ARC file, a JSONL ``examples`` list) is cut into demonstration groups:
its M pairs, in order, into ``k = ceil(M / N)`` consecutive groups of sizes as equal as possible
(N = ``pairs_per_task``), each group one task whose last pair is the test pair and the others its
demonstrations. A group never has fewer than 2 pairs (so with N = 2 and M odd, one group has 3).
Groups are numbered ``ID#0``, ``ID#1``, ... (zero-padded to the same width); a list that makes one
group keeps the bare id. A list of fewer than 2 pairs is an error.

Every reader yields :class:`~arcpipe.arc.tasks.Task` objects one at a time, so a corpus of any
size is never held as Python objects; mistakes raise :class:`~arcpipe.errors.ArcpipeError`
naming the file (``FILE:LINE`` for JSONL), the task, the pair and the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from arcpipe.arc.tasks import (
    MAX_GRID_SIZE,
    Pair,
    Task,
    describe,
    load_source,
    parse_grid,
    parse_task,
    read_json,
)
from arcpipe.errors import ArcpipeError

DEFAULT_PAIRS_PER_TASK = 10


@dataclass(frozen=True)
class SourceSpec:
    """A build source and its own variant count (``PATH:N``; None: the build's ``--num-aug``)."""

    path: Path
    num_aug: int | None = None

    def __str__(self) -> str:
        return str(self.path) if self.num_aug is None else f"{self.path}:{self.num_aug}"


def parse_source_spec(text: str | Path | SourceSpec) -> SourceSpec:
    """``PATH`` or ``PATH:N`` (N augmented variants per task of this source) as a SourceSpec.

    A path that exists as written is taken whole, so a file name with a colon still works.

    Raises:
        ArcpipeError: N is negative.
    """
    if isinstance(text, SourceSpec):
        return text
    path, _, count = str(text).rpartition(":")
    if not path or not count.isdigit() or Path(text).exists():
        return SourceSpec(Path(text))
    return SourceSpec(Path(path), int(count))


def source_format(path: Path) -> str:
    """``folder``, ``jsonl``, ``kaggle`` or ``task file``, as the readers will take ``path``."""
    if path.is_dir():
        return "folder"
    if path.suffix == ".jsonl":
        return "jsonl"
    return "kaggle" if path.name.endswith("_challenges.json") else "task file"


def iter_source(
    path: str | Path, max_size: int = MAX_GRID_SIZE, pairs_per_task: int = DEFAULT_PAIRS_PER_TASK
) -> Iterator[Task]:
    """Every task of one SOURCE (module docstring), in the source's own order.

    Raises:
        ArcpipeError: the source is missing or holds an invalid task.
    """
    path = Path(path)
    if not path.exists():
        raise ArcpipeError("no such file or directory", file=path)
    kind = source_format(path)
    if kind == "folder":
        yield from _iter_folder(path, max_size, pairs_per_task)
    elif kind == "jsonl":
        yield from _iter_jsonl(path, max_size, pairs_per_task)
    else:
        yield from load_source(path, max_size)


def _iter_folder(folder: Path, max_size: int, pairs_per_task: int) -> Iterator[Task]:
    files = sorted(p for p in folder.rglob("*.json") if p.is_file() or p.is_symlink())
    if not files:
        raise ArcpipeError("no task files (*.json) in this folder", file=folder)
    for file in files:
        raw = read_json(file)
        if isinstance(raw, list) and raw and isinstance(raw[0], dict):  # a re-ARC task
            pairs = parse_pair_list(raw, file.stem, str(file), max_size, "examples")
            yield from group_pairs(pairs, file.stem, str(file), pairs_per_task)
        else:
            yield parse_task(raw, file.stem, str(file), max_size)


def _iter_jsonl(path: Path, max_size: int, pairs_per_task: int) -> Iterator[Task]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below; a generator holds it)
    except OSError as err:
        raise ArcpipeError(f"cannot read: {err.strerror or err}", file=path) from None
    with handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                where = f"{path}:{number}"
                yield from _jsonl_tasks(line, where, path.stem, max_size, pairs_per_task)


def _jsonl_tasks(
    line: bytes, where: str, stem: str, max_size: int, pairs_per_task: int
) -> Iterator[Task]:
    """The task (or the groups of an ``examples`` list) on one JSONL line."""
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError as err:
        raise ArcpipeError(f"not valid JSON: {err}", file=where) from None
    if not isinstance(raw, dict):
        raise ArcpipeError(
            f"is {describe(raw)}, expected a task object ({{train, test}} or {{examples}})",
            file=where,
        )
    task_id = _line_id(raw, where, stem)
    if "examples" in raw:
        if "train" in raw or "test" in raw:
            raise ArcpipeError("has both 'examples' and 'train'/'test'", file=where, task=task_id)
        pairs = parse_pair_list(raw["examples"], task_id, where, max_size, "examples")
        yield from group_pairs(pairs, task_id, where, pairs_per_task)
    else:
        yield parse_task(raw, task_id, where, max_size)


def _line_id(raw: dict, where: str, stem: str) -> str:
    if "id" not in raw:
        return f"{stem}:{where.rsplit(':', 1)[1]}"
    value = raw["id"]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise ArcpipeError(
            f"'id' is {describe(value)}, expected a string or an integer", file=where
        )
    return str(value)


def parse_pair_list(
    items: object, task_id: str, file: str, max_size: int, field: str
) -> list[Pair]:
    """Validate a plain list of ``{"input", "output"}`` pairs (both grids required)."""
    if not isinstance(items, list):
        raise ArcpipeError(
            f"'{field}' is {describe(items)}, expected a list of pairs", file=file, task=task_id
        )
    pairs = []
    for index, item in enumerate(items):
        where = {"file": file, "task": task_id, "split": field, "index": index}
        if not isinstance(item, dict):
            raise ArcpipeError(f"is {describe(item)}, expected an object with 'input'", **where)
        grids = []
        for name in ("input", "output"):
            if name not in item:
                raise ArcpipeError(f"missing '{name}'", **where)
            try:
                grids.append(parse_grid(item[name], max_size))
            except ArcpipeError as err:
                raise err.located(field=name, **where) from None
        pairs.append(Pair(grids[0], grids[1]))
    return pairs


def group_sizes(count: int, pairs_per_task: int) -> list[int]:
    """Sizes of the consecutive groups that ``count`` pairs are cut into (module docstring)."""
    groups = max(1, min(math.ceil(count / pairs_per_task), count // 2))
    return [count // groups + (g < count % groups) for g in range(groups)]


def group_pairs(
    pairs: Sequence[Pair], task_id: str, file: str, pairs_per_task: int
) -> Iterator[Task]:
    """Cut a list of pairs into demonstration groups, one task each (module docstring).

    Raises:
        ArcpipeError: fewer than 2 pairs.
    """
    if len(pairs) < 2:
        raise ArcpipeError(
            f"has {len(pairs)} pair(s); a task needs at least 2 (demonstrations and a test)",
            file=file,
            task=task_id,
        )
    sizes = group_sizes(len(pairs), pairs_per_task)
    width = len(str(len(sizes) - 1))
    start = 0
    for g, size in enumerate(sizes):
        group = tuple(pairs[start : start + size])
        name = task_id if len(sizes) == 1 else f"{task_id}#{g:0{width}d}"
        yield Task(name, group[:-1], group[-1:], file)
        start += size
