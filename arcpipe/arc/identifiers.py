"""The reference's puzzle names: its ``identifiers.json`` and the variant each name describes.

The reference's builder (reference §1.3-1.7) writes one name per puzzle-table row: ``"<blank>"``
at row 0, then ``task`` for a task's original and ``task|||tK|||PERM`` for an augmented variant,
where ``K`` is the dihedral id (0-7, numbered as in :mod:`arcpipe.arc.augment`) and ``PERM`` the
ten digits of its colour map, ``PERM[c]`` being the colour that colour ``c`` becomes (colour 0
fixed). The reference applies the colour map first, then the dihedral transform (the two commute:
one maps values, the other moves cells), exactly as :meth:`Transform.view`; its inverse undoes the
dihedral, then maps colour ``PERM[c]`` back to ``c`` (``argsort(PERM)``), exactly as
:meth:`Transform.invert`. :meth:`Transform.name` writes the same names.

A variant is matched to a row by its key (task, dihedral id, colour map), so ``task`` and
``task|||t0|||0123456789`` are one variant. A table of ARC-AGI-2's size (1.19 M names) is read
into a few arrays, not a million objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from arcpipe.arc.augment import NUM_DIHEDRAL, Transform
from arcpipe.errors import ArcpipeError

BLANK_NAME = "<blank>"
SEPARATOR = "|||"
_IDENTITY_PERM = "0123456789"
_PLACES = 10 ** np.arange(9, -1, -1, dtype=np.int64)  # a colour map read as a 10-digit number
_TASK_SHIFT = np.int64(1 << 37)  # above dihedral x 10^10 + colour number (< 8 x 10^10)


def parse_variant_name(name: str) -> tuple[str, Transform]:
    """``task|||tK|||PERM`` (or a bare ``task``) -> (task id, transform).

    Raises:
        ValueError: the name is not of that form (the message says which part).
    """
    task, dihedral, perm = _split(name)
    colours = np.frombuffer(perm.encode(), dtype=np.uint8) - ord("0")
    if sorted(colours.tolist()) != list(range(10)) or colours[0] != 0:
        raise ValueError(f"colour part {perm!r} is not a permutation of 0-9 fixing 0")
    return task, Transform(dihedral, colours.astype(np.uint8))


def _split(name: str) -> tuple[str, int, str]:
    """(task, dihedral id, colour digits) of a name; the digits are checked by the caller."""
    parts = name.split(SEPARATOR)
    if len(parts) == 1:
        if not name:
            raise ValueError("empty name")
        return name, 0, _IDENTITY_PERM
    if len(parts) != 3 or not parts[0]:
        raise ValueError("expected task|||tK|||PERM")
    task, dihedral, perm = parts
    if len(dihedral) != 2 or dihedral[0] != "t" or not "0" <= dihedral[1] < str(NUM_DIHEDRAL):
        raise ValueError(f"dihedral part {dihedral!r} is not t0-t7")
    if len(perm) != 10 or not perm.isascii():
        raise ValueError(f"colour part {perm!r} is not ten digits")
    return task, int(dihedral[1]), perm


def variant_keys(task_index: np.ndarray, dihedrals: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """int64 [N] keys of variants: (task index, dihedral id, colour map) in one number.

    Args:
        task_index: int [N] index of each variant's task in some task list (>= 0).
        dihedrals: int [N]; colours: uint8 [N, 10].
    """
    number = np.asarray(colours, dtype=np.int64) @ _PLACES
    code = np.asarray(dihedrals, dtype=np.int64) * np.int64(10**10) + number
    return np.asarray(task_index, dtype=np.int64) * _TASK_SHIFT + code


@dataclass
class VariantNames:
    """A read ``identifiers.json``: every row's name and the variant it describes.

    Row 0 (the blank) has task index -1, dihedral 0 and the identity colours.
    """

    path: Path
    names: list[str]  # row -> name
    task_ids: list[str]  # the named tasks, in order of first appearance
    task_of_row: np.ndarray  # int32 [rows] index into task_ids; -1 at the blank
    dihedrals: np.ndarray  # uint8 [rows]
    colours: np.ndarray  # uint8 [rows, 10]

    @property
    def rows(self) -> int:
        """Rows of the puzzle table these names index, the blank included."""
        return len(self.names)

    def task_rows(self) -> dict[str, np.ndarray]:
        """Each named task's rows, in row order."""
        order = np.argsort(self.task_of_row, kind="stable")
        ordered = self.task_of_row[order]
        starts = np.searchsorted(ordered, np.arange(len(self.task_ids) + 1))
        return {t: order[starts[i] : starts[i + 1]] for i, t in enumerate(self.task_ids)}

    def transforms(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The variants of ``rows``: dihedrals uint8 [V], colours uint8 [V, 10]."""
        return self.dihedrals[rows], self.colours[rows]

    def keys(self) -> np.ndarray:
        """int64 [rows] each row's :func:`variant_keys` over :attr:`task_ids` (blank: -1)."""
        keys = variant_keys(np.maximum(self.task_of_row, 0), self.dihedrals, self.colours)
        keys[self.task_of_row < 0] = -1
        return keys

    def find(
        self, task_ids: list[str], task_of: np.ndarray, dihedrals: np.ndarray, colours: np.ndarray
    ) -> np.ndarray:
        """The row naming each of N variants, -1 where none does.

        Args:
            task_ids: the variants' tasks, each once; ``task_of`` int [N] indexes it.
            dihedrals: int [N]; colours: uint8 [N, 10].
        """
        index = {t: i for i, t in enumerate(self.task_ids)}
        ours = np.array([index.get(t, -1) for t in task_ids], dtype=np.int64)[np.asarray(task_of)]
        wanted = variant_keys(np.maximum(ours, 0), dihedrals, colours)
        keys = self.keys()
        order = np.argsort(keys)
        at = np.minimum(np.searchsorted(keys, wanted, sorter=order), len(keys) - 1)
        rows = order[at]
        return np.where((keys[rows] == wanted) & (ours >= 0), rows, -1)


def read_identifiers(path: str | Path) -> VariantNames:
    """Read the reference's ``identifiers.json``: a JSON list of names, ``"<blank>"`` first.

    Raises:
        ArcpipeError: unreadable, not such a list, a malformed name, or two names of one variant.
    """
    path = Path(path)
    try:
        names = orjson.loads(path.read_bytes())
    except OSError as err:
        raise ArcpipeError(f"cannot read: {err.strerror or err}", file=path) from None
    except orjson.JSONDecodeError as err:
        raise ArcpipeError(f"not valid JSON: {err}", file=path) from None
    if not isinstance(names, list) or not names or names[0] != BLANK_NAME:
        raise ArcpipeError(
            f'not an identifiers list: expected a JSON list of names starting with "{BLANK_NAME}"',
            file=path,
        )
    tasks, dihedrals, perms = [-1], [0], [_IDENTITY_PERM]
    index: dict[str, int] = {}
    for row, name in enumerate(names[1:], 1):
        if not isinstance(name, str):
            raise ArcpipeError(f"row {row}: a name must be a string, got {name!r}", file=path)
        try:
            task, dihedral, perm = _split(name)
        except ValueError as err:
            raise ArcpipeError(f"row {row}: {err}: {name!r}", file=path) from None
        tasks.append(index.setdefault(task, len(index)))
        dihedrals.append(dihedral)
        perms.append(perm)
    colours = np.frombuffer("".join(perms).encode(), dtype=np.uint8).reshape(-1, 10) - ord("0")
    table = VariantNames(
        path,
        names,
        list(index),
        np.array(tasks, dtype=np.int32),
        np.array(dihedrals, dtype=np.uint8),
        colours.astype(np.uint8),
    )
    _check_colours(table)
    _check_distinct(table)
    return table


def _check_colours(table: VariantNames) -> None:
    ok = (np.sort(table.colours, axis=1) == np.arange(10)).all(axis=1) & (table.colours[:, 0] == 0)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise ArcpipeError(
            f"row {row}: colour part is not a permutation of 0-9 fixing 0: {table.names[row]!r}",
            file=table.path,
        )


def _check_distinct(table: VariantNames) -> None:
    keys = table.keys()[1:]
    order = np.argsort(keys, kind="stable")
    same = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if len(same):
        first, second = sorted(int(order[i]) + 1 for i in (same[0], same[0] + 1))
        raise ArcpipeError(
            f"rows {first} and {second} name the same variant ({table.names[second]!r})",
            file=table.path,
        )
