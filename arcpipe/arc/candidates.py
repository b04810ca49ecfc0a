"""Candidates: each view's answer mapped back to its task's frame, saved to vote without a model.

One candidate per predicted view: the task and test index it answers, the example row (view)
it came from, the halting probability sigmoid(q_halt), the mean log-probability of the predicted
cells, and the grid itself (cropped at EOS, dihedral and colours undone). Grids are stored back
to back like the dataset's. The file is a ``.npz`` of plain arrays (no pickle).
"""

from __future__ import annotations

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

FORMAT_VERSION = 1


@dataclass
class Candidates:
    """All candidates of one prediction run; see the module docstring."""

    task_ids: list[str]  # the target tasks, in dataset order
    num_tests: np.ndarray  # int32 [T] test inputs per task
    task: np.ndarray  # int32 [C] index into task_ids
    test: np.ndarray  # int32 [C] test index within the task
    view: np.ndarray  # int32 [C] example row of the split
    q_halt: np.ndarray  # float32 [C] sigmoid(q_halt) of the view
    logprob: np.ndarray  # float32 [C] mean log-probability of the predicted cells
    shapes: np.ndarray  # int32 [C, 2] grid height, width
    starts: np.ndarray  # int64 [C] first cell of each grid in ``cells``
    cells: np.ndarray  # uint8 [total]
    meta: dict = field(default_factory=dict)  # dataset fingerprint, split, malformed count ...

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
    ) -> Candidates:
        """Pack a list of grids (one per candidate) with their records."""
        shapes = np.array([g.shape for g in grids], dtype=np.int32).reshape(-1, 2)
        sizes = shapes[:, 0].astype(np.int64) * shapes[:, 1]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        cells = np.concatenate([g.reshape(-1) for g in grids]) if grids else np.zeros(0, np.uint8)
        return Candidates(
            list(task_ids),
            np.asarray(num_tests, dtype=np.int32),
            np.asarray(task, dtype=np.int32),
            np.asarray(test, dtype=np.int32),
            np.asarray(view, dtype=np.int32),
            np.asarray(q_halt, dtype=np.float32),
            np.asarray(logprob, dtype=np.float32),
            shapes,
            starts,
            cells.astype(np.uint8),
            dict(meta or {}),
        )

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
        )

    def save(self, path: str | Path) -> None:
        """Write atomically as ``.npz``."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            format_version=np.array(FORMAT_VERSION),
            task_ids=np.array(self.task_ids, dtype=np.str_),
            meta=np.array(_json(self.meta), dtype=np.str_),
            **{k: getattr(self, k) for k in _ARRAYS},
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
                if "format_version" not in data or int(data["format_version"]) != FORMAT_VERSION:
                    raise ArcpipeError("not a candidates file of this arcpipe version", file=path)
                return Candidates(
                    data["task_ids"].tolist(),
                    *(data[k] for k in _ARRAYS),
                    orjson.loads(str(data["meta"])),
                )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            raise ArcpipeError(
                f"cannot read candidates: {reason or type(err).__name__}", file=path
            ) from None

    def check_dataset(self, fingerprint: str, file: str | Path) -> None:
        """Refuse candidates predicted on another dataset than the one ``fingerprint`` names."""
        theirs = self.meta.get("dataset")
        if theirs and theirs != fingerprint:
            raise ArcpipeError(
                "candidates were predicted on another dataset (fingerprint "
                f"{theirs[:12]}, this one {fingerprint[:12]}); their view rows do not match it",
                file=file,
            )


_ARRAYS = ("num_tests", "task", "test", "view", "q_halt", "logprob", "shapes", "starts", "cells")


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
