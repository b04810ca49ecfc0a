"""Candidates: each view's answer mapped back to its task's frame, saved to vote without a model.

One candidate per predicted view: the task and test index it answers, the example row (view)
it came from, the halting probability sigmoid(q_halt) (computed in float64, as the reference's
evaluator does), the mean log-probability of the predicted cells, and the grid itself (cropped at
EOS, dihedral and colours undone). Grids are stored back to back like the dataset's.

Cross-view scores (:mod:`arcpipe.crossview`): for each test input's top K grids by count, the
view row of a candidate holding the grid, the number of views it was scored under, the sum over
those views of its log-probability, and the number of cells scored (over those views). With them
every rule of :mod:`arcpipe.arc.vote` can be re-run without the model. The file is a ``.npz`` of
plain arrays (no pickle); version 1 files (no cross-view scores, float32 q_halt) still load.

Several runs' files merge into one (:func:`merge_runs`) to vote an ensemble.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import orjson

from arcpipe.errors import ArcpipeError
from arcpipe.fsutil import write_bytes_atomic

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass
class Candidates:
    """All candidates of one prediction run; see the module docstring."""

    task_ids: list[str]  # the target tasks, in dataset order
    num_tests: np.ndarray  # int32 [T] test inputs per task
    task: np.ndarray  # int32 [C] index into task_ids
    test: np.ndarray  # int32 [C] test index within the task
    view: np.ndarray  # int32 [C] example row of the split
    q_halt: np.ndarray  # float64 [C] sigmoid(q_halt) of the view
    logprob: np.ndarray  # float32 [C] mean log-probability of the predicted cells
    shapes: np.ndarray  # int32 [C, 2] grid height, width
    starts: np.ndarray  # int64 [C] first cell of each grid in ``cells``
    cells: np.ndarray  # uint8 [total]
    meta: dict = field(default_factory=dict)  # dataset fingerprint, split, malformed, cross_view_k
    scored_view: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # int32 [M]
    scored_over: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # int32 [M]
    scored_logprob: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))  # [M]
    scored_cells: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # int64 [M]

    def __len__(self) -> int:
        return len(self.task)

    def grid(self, i: int) -> np.ndarray:
        h, w = self.shapes[i]
        return self.cells[self.starts[i] : self.starts[i] + h * w].reshape(h, w)

    @staticmethod
    def from_grids(
        task_ids: list[str],
        num_tests: np.ndarray,
        task: np.ndarray,
        test: np.ndarray,
        view: np.ndarray,
        q_halt: np.ndarray,
        logprob: np.ndarray,
        grids: list[np.ndarray],
        meta: dict | None = None,
        scores: tuple[np.ndarray, ...] | None = None,
    ) -> Candidates:
        """Pack a list of grids (one per candidate) with their records.

        ``scores`` are cross-view scores ``(scored_view, scored_over, scored_logprob,
        scored_cells)``.
        """
        shapes = np.array([g.shape for g in grids], dtype=np.int32).reshape(-1, 2)
        sizes = shapes[:, 0].astype(np.int64) * shapes[:, 1]
        starts = np.cumsum(sizes) - sizes  # first cell of each grid (none for no grids)
        cells = np.concatenate([g.reshape(-1) for g in grids]) if grids else np.zeros(0, np.uint8)
        return Candidates(
            list(task_ids),
            np.asarray(num_tests, dtype=np.int32),
            np.asarray(task, dtype=np.int32),
            np.asarray(test, dtype=np.int32),
            np.asarray(view, dtype=np.int32),
            np.asarray(q_halt, dtype=np.float64),
            np.asarray(logprob, dtype=np.float32),
            shapes,
            starts,
            cells.astype(np.uint8),
            dict(meta or {}),
            *score_arrays(scores),
        )

    @property
    def cross_view_k(self) -> int:
        """How many grids per test input were scored across views (0: none)."""
        return int(self.meta.get("cross_view_k", 0))

    @staticmethod
    def concat(parts: list[Candidates]) -> Candidates:
        """Join candidates of the same tasks (e.g. from several ranks), in the given order."""
        first = parts[0]
        offsets = np.cumsum([0] + [len(p.cells) for p in parts[:-1]])
        meta = dict(first.meta)
        meta["malformed"] = sum(int(p.meta.get("malformed", 0)) for p in parts)
        return Candidates(
            first.task_ids,
            first.num_tests,
            *(
                np.concatenate([getattr(p, k) for p in parts])
                for k in ("task", "test", "view", "q_halt", "logprob", "shapes")
            ),
            np.concatenate([p.starts + o for p, o in zip(parts, offsets)]),
            np.concatenate([p.cells for p in parts]),
            meta,
            *(np.concatenate([getattr(p, k) for p in parts]) for k in _SCORES),
        )

    @property
    def scores(self) -> tuple[np.ndarray, ...]:
        """The cross-view scores ``(scored_view, scored_over, scored_logprob, scored_cells)``."""
        return tuple(getattr(self, k) for k in _SCORES)

    def with_scores(self, scores: tuple) -> Candidates:
        """A copy carrying these cross-view scores instead of its own."""
        return dataclasses.replace(self, **dict(zip(_SCORES, score_arrays(scores))))

    def view_end(self) -> int:
        """One past the highest view row of its candidates and scores (0 when it has none)."""
        return 1 + int(max(self.view.max(initial=-1), self.scored_view.max(initial=-1)))

    def with_views_offset(self, offset: int) -> Candidates:
        """A copy whose view rows (candidates' and scores') are shifted by ``offset``."""
        return dataclasses.replace(
            self, view=self.view + offset, scored_view=self.scored_view + offset
        )

    def save(self, path: str | Path) -> None:
        """Write atomically as ``.npz``."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            format_version=np.array(FORMAT_VERSION),
            task_ids=np.array(self.task_ids, dtype=np.str_),
            meta=np.array(_json(self.meta), dtype=np.str_),
            **{k: getattr(self, k) for k in _ARRAYS + _SCORES},
        )
        write_bytes_atomic(path, buffer.getvalue())

    @staticmethod
    def load(path: str | Path) -> Candidates:
        """Read a candidates file.

        Raises:
            ArcpipeError: missing or damaged file, not a candidates file, another format version,
                or arrays that would need unpickling (refused, nothing run).
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format_version"]) if "format_version" in data else None
                if version not in READABLE_VERSIONS:
                    raise ArcpipeError("not a candidates file of this arcpipe version", file=path)
                arrays = {k: data[k] for k in _ARRAYS}
                arrays["q_halt"] = arrays["q_halt"].astype(np.float64)  # float32 in version 1
                scores = tuple(data[k] for k in _SCORES) if version >= 2 else None
                return Candidates(
                    data["task_ids"].tolist(),
                    *arrays.values(),
                    orjson.loads(str(data["meta"])),
                    *score_arrays(scores),
                )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            raise ArcpipeError(
                f"cannot read candidates: {reason or type(err).__name__}", file=path
            ) from None


_ARRAYS = ("num_tests", "task", "test", "view", "q_halt", "logprob", "shapes", "starts", "cells")
_SCORES = ("scored_view", "scored_over", "scored_logprob", "scored_cells")
_SCORE_TYPES = (np.int32, np.int32, np.float64, np.int64)


def score_arrays(scores: tuple | None) -> tuple[np.ndarray, ...]:
    """Cross-view score columns (see :class:`Candidates`) as typed arrays; None: no scores."""
    columns = scores if scores is not None else ([],) * len(_SCORES)
    return tuple(np.asarray(c, dtype=t) for c, t in zip(columns, _SCORE_TYPES))


def merge_runs(paths: list[Path]) -> Candidates:
    """One candidates set from several runs' files (checkpoints, seeds) of the same target tasks.

    The files are joined in the given order; each file's view rows are shifted past the previous
    files' so that "first appearance" ties resolve to the earlier file and cross-view scores stay
    attached to their own run's candidates.

    Raises:
        ArcpipeError: a file is unreadable or answers other tasks or numbers of test inputs.
    """
    parts, offset = [], 0
    for path in paths:
        part = Candidates.load(path)
        if parts and (
            part.task_ids != parts[0].task_ids
            or not np.array_equal(part.num_tests, parts[0].num_tests)
        ):
            raise ArcpipeError(
                f"answers other target tasks than {paths[0]} (tasks or test inputs differ)",
                file=path,
            )
        parts.append(part.with_views_offset(offset))
        offset += part.view_end()
    merged = Candidates.concat(parts)
    merged.meta["sources"] = [str(p) for p in paths]
    merged.meta["cross_view_k"] = max(p.cross_view_k for p in parts)
    return merged


def _json(obj: dict) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


@numba.njit(cache=True)
def grid_hashes(shapes: np.ndarray, starts: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Two independent 64-bit FNV-style hashes of each grid (shape included), uint64 [C, 2]."""
    out = np.empty((shapes.shape[0], 2), dtype=np.uint64)
    for i in range(shapes.shape[0]):
        h0 = np.uint64(0xCBF29CE484222325)
        h1 = np.uint64(0x84222325CBF29CE4)
        h, w = shapes[i, 0], shapes[i, 1]
        h0 = (h0 ^ np.uint64(h * 64 + w)) * np.uint64(0x100000001B3)
        h1 = (h1 ^ np.uint64(w * 64 + h + 7)) * np.uint64(0xC6A4A7935BD1E995)
        for k in range(starts[i], starts[i] + h * w):
            c = np.uint64(cells[k] + 1)
            h0 = (h0 ^ c) * np.uint64(0x100000001B3)
            h1 = (h1 ^ c) * np.uint64(0xC6A4A7935BD1E995)
            h1 ^= h1 >> np.uint64(29)
        out[i, 0] = h0
        out[i, 1] = h1
    return out
