"""Read and validate ARC tasks from per-task JSON folders and Kaggle challenges/solutions files.

A SOURCE is either a folder searched recursively for ``*.json`` task files (task id = file stem),
a single task file, or a Kaggle ``*_challenges.json`` mapping (task id = key) whose
``*_solutions.json`` sibling, when present, supplies the test outputs.

Every mistake raises :class:`~arcpipe.errors.ArcpipeError` naming the file, the task, the pair and
the field, so the CLI can report it on one line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from arcpipe.errors import ArcpipeError

MAX_GRID_SIZE = 30  # ARC's largest grid side; also the default canvas
NUM_COLOURS = 10  # cells hold colours 0..9; 0 is the background ("black")


@dataclass(frozen=True)
class Pair:
    """One input/output pair; ``output`` is None for a test input whose answer is unknown."""

    input: np.ndarray  # uint8 [h, w]
    output: np.ndarray | None  # uint8 [h', w'] or None


@dataclass(frozen=True)
class Task:
    """An ARC task: demonstration pairs (``train``) and test pairs, with the file it came from."""

    id: str
    train: tuple[Pair, ...]
    test: tuple[Pair, ...]
    file: str

    def merged_with(self, other: Task) -> Task | None:
        """This task with the test outputs ``other`` knows filled in; None if they disagree.

        Two copies agree when their train pairs and test inputs are equal and every test output
        known to both is equal (a Kaggle test challenge without solutions agrees with the same
        task from a file that has them).
        """
        if _pairs_key(self.train) != _pairs_key(other.train) or len(self.test) != len(other.test):
            return None
        test = []
        for mine, theirs in zip(self.test, other.test):
            if not _same_grid(mine.input, theirs.input):
                return None
            both_known = mine.output is not None and theirs.output is not None
            if both_known and not _same_grid(mine.output, theirs.output):
                return None
            test.append(mine if mine.output is not None else theirs)
        return Task(self.id, self.train, tuple(test), self.file)

    def colours(self) -> np.ndarray:
        """Sorted non-zero colours used anywhere in the task (inputs and known outputs)."""
        used = np.zeros(NUM_COLOURS, dtype=bool)
        for pair in self.train + self.test:
            for grid in (pair.input, pair.output):
                if grid is not None:
                    used[np.unique(grid)] = True
        used[0] = False
        return np.flatnonzero(used).astype(np.uint8)


def _same_grid(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool((a == b).all())


def _pairs_key(pairs: Sequence[Pair]) -> list[tuple]:
    def grid_key(g: np.ndarray | None) -> tuple | None:
        return None if g is None else (g.shape, g.tobytes())

    return [(grid_key(p.input), grid_key(p.output)) for p in pairs]


# ----------------------------------------------------------------------------- grids


def describe(value: object) -> str:
    """A short, user-facing description of a JSON value of the wrong kind."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, float):
        return f"{value!r} (a float)"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def parse_grid(value: object, max_size: int = MAX_GRID_SIZE) -> np.ndarray:
    """Validate a JSON grid (a list of equal-length lists of ints 0-9) and return it as uint8.

    Raises:
        ArcpipeError: without location; the caller adds file, task, pair and field.
    """
    if not isinstance(value, list):
        raise ArcpipeError(f"is {describe(value)}, expected a grid (a list of rows)")
    if not value:
        raise ArcpipeError("is an empty grid")
    width = None
    for r, row in enumerate(value):
        if not isinstance(row, list):
            raise ArcpipeError(f"row {r} is {describe(row)}, expected a list of cells")
        if not row:
            raise ArcpipeError(f"row {r} is empty")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise ArcpipeError(f"ragged grid: row {r} has {len(row)} cells, row 0 has {width}")
        for c, cell in enumerate(row):
            if type(cell) is not int or not 0 <= cell < NUM_COLOURS:
                raise ArcpipeError(
                    f"row {r} column {c} is {describe(cell)}, expected an integer colour 0-9"
                )
    height = len(value)
    if height > max_size or width > max_size:
        raise ArcpipeError(
            f"grid is {height}x{width}, larger than the {max_size}x{max_size} canvas"
        )
    return np.array(value, dtype=np.uint8)


# ----------------------------------------------------------------------------- tasks


def parse_task(raw: object, task_id: str, file: str, max_size: int = MAX_GRID_SIZE) -> Task:
    """Validate one task object ``{"train": [...], "test": [...]}``."""
    if not isinstance(raw, dict):
        raise ArcpipeError(f"is {describe(raw)}, expected a task object", file=file, task=task_id)
    pairs = {}
    for split in ("train", "test"):
        if split not in raw:
            raise ArcpipeError(f"missing '{split}' list", file=file, task=task_id)
        items = raw[split]
        if not isinstance(items, list):
            raise ArcpipeError(
                f"'{split}' is {describe(items)}, expected a list of pairs", file=file, task=task_id
            )
        if not items:
            raise ArcpipeError(f"no {split} pairs", file=file, task=task_id)
        pairs[split] = tuple(
            _parse_pair(item, split, i, task_id, file, max_size) for i, item in enumerate(items)
        )
    return Task(task_id, pairs["train"], pairs["test"], file)


def _parse_pair(
    item: object, split: str, index: int, task_id: str, file: str, max_size: int
) -> Pair:
    where = {"file": file, "task": task_id, "split": split, "index": index}
    if not isinstance(item, dict):
        raise ArcpipeError(f"is {describe(item)}, expected an object with 'input'", **where)
    if "input" not in item:
        raise ArcpipeError("missing 'input'", **where)
    if split == "train" and "output" not in item:
        raise ArcpipeError("missing 'output' (every train pair needs one)", **where)
    grids = {}
    for field in ("input", "output"):
        if field in item:
            try:
                grids[field] = parse_grid(item[field], max_size)
            except ArcpipeError as err:
                raise err.located(field=field, **where) from None
    return Pair(grids["input"], grids.get("output"))


# ----------------------------------------------------------------------------- files


def read_json(path: Path) -> object:
    """Read a JSON file, turning I/O and syntax problems into one-line errors."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ArcpipeError(f"cannot read: {err.strerror or err}", file=path) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise ArcpipeError(f"not valid JSON: {err}", file=path) from None


def load_source(path: str | Path, max_size: int = MAX_GRID_SIZE) -> list[Task]:
    """Load every task of one SOURCE (folder, task file or Kaggle challenges file), sorted by id.

    Raises:
        ArcpipeError: the source is missing or holds an invalid task.
    """
    path = Path(path)
    if not path.exists():
        raise ArcpipeError("no such file or directory", file=path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file() or p.is_symlink())
        if not files:
            raise ArcpipeError("no task files (*.json) in this folder", file=path)
        tasks = [_load_task_file(f, max_size) for f in files]
        _check_unique_ids(tasks)
        return sorted(tasks, key=lambda t: t.id)
    raw = read_json(path)
    if path.name.endswith("_challenges.json") or (
        isinstance(raw, dict) and raw and "train" not in raw and "test" not in raw
    ):
        return _load_kaggle(path, raw, max_size)
    return [parse_task(raw, path.stem, str(path), max_size)]


def _load_task_file(path: Path, max_size: int) -> Task:
    return parse_task(read_json(path), path.stem, str(path), max_size)


def _check_unique_ids(tasks: Sequence[Task]) -> None:
    seen: dict[str, Task] = {}
    for task in tasks:
        first = seen.setdefault(task.id, task)
        if first is not task:
            raise ArcpipeError(f"task id also used by {first.file}", file=task.file, task=task.id)


def solutions_path(challenges: Path) -> Path:
    """The ``*_solutions.json`` sibling of a ``*_challenges.json`` file."""
    name = challenges.name
    stem = (
        name[: -len("_challenges.json")] if name.endswith("_challenges.json") else challenges.stem
    )
    return challenges.with_name(f"{stem}_solutions.json")


def _load_kaggle(path: Path, raw: object, max_size: int) -> list[Task]:
    if not isinstance(raw, dict):
        raise ArcpipeError(
            f"is {describe(raw)}, expected an object mapping task ids to tasks", file=path
        )
    tasks = [parse_task(body, str(task_id), str(path), max_size) for task_id, body in raw.items()]
    solutions = solutions_path(path)
    if solutions.exists() and solutions != path:
        tasks = _attach_solutions(tasks, solutions, max_size)
    return sorted(tasks, key=lambda t: t.id)


def _attach_solutions(tasks: list[Task], path: Path, max_size: int) -> list[Task]:
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise ArcpipeError(
            f"is {describe(raw)}, expected an object mapping task ids to output lists", file=path
        )
    ids = {t.id for t in tasks}
    extra = sorted(set(raw) - ids)
    if extra:
        raise ArcpipeError(
            f"no such task in {path.name.replace('solutions', 'challenges')}",
            file=path,
            task=extra[0],
        )
    solved = []
    for task in tasks:
        if task.id not in raw:
            raise ArcpipeError("missing from the solutions file", file=path, task=task.id)
        outputs = raw[task.id]
        if not isinstance(outputs, list) or len(outputs) != len(task.test):
            count = len(outputs) if isinstance(outputs, list) else describe(outputs)
            raise ArcpipeError(
                f"has {count} solutions for {len(task.test)} test inputs", file=path, task=task.id
            )
        test = []
        for i, (pair, grid) in enumerate(zip(task.test, outputs)):
            try:
                test.append(Pair(pair.input, parse_grid(grid, max_size)))
            except ArcpipeError as err:
                raise err.located(file=path, task=task.id, split="test", index=i) from None
        solved.append(Task(task.id, task.train, tuple(test), task.file))
    return solved


def merge_sources(groups: Iterable[Sequence[Task]]) -> list[Task]:
    """Concatenate task lists in order; repeats of an id merge, conflicting content is an error."""
    merged: dict[str, Task] = {}
    for tasks in groups:
        for task in tasks:
            first = merged.get(task.id)
            if first is None:
                merged[task.id] = task
                continue
            combined = first.merged_with(task)
            if combined is None:
                raise ArcpipeError(
                    f"task id also in {first.file} with different content",
                    file=task.file,
                    task=task.id,
                )
            merged[task.id] = combined
    return list(merged.values())


def source_digest(path: str | Path) -> str:
    """sha256 of a source: the file's bytes, or every task file of a folder with its path."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*.json") if p.is_file()) if path.is_dir() else [path]
    if not path.is_dir():
        sol = solutions_path(path)
        if path.name.endswith("_challenges.json") and sol.exists():
            files.append(sol)
    for f in files:
        digest.update(f.relative_to(path).as_posix().encode() if path.is_dir() else f.name.encode())
        digest.update(b"\0")
        digest.update(f.read_bytes())
    return digest.hexdigest()
