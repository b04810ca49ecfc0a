"""The user-facing error type: a mistake in the user's input, reported on one line.

The CLI catches :class:`ArcpipeError`, prints ``str(error)`` and exits with status 2. Internal
bugs raise ordinary exceptions and keep their tracebacks.
"""

from __future__ import annotations

from pathlib import Path


class ArcpipeError(Exception):
    """A problem with the user's input, located as precisely as we can.

    The message reads ``FILE: task ID train[2].output: what is wrong`` with the parts that are
    known; every part is optional.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        task: str | None = None,
        split: str | None = None,
        index: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = None if file is None else str(file)
        self.task = task
        self.split = split
        self.index = index
        self.field = field

    def located(self, **where: object) -> ArcpipeError:
        """Return a copy with the missing location parts filled in from ``where``."""
        parts = {k: getattr(self, k) for k in ("file", "task", "split", "index", "field")}
        for key, value in where.items():
            if parts[key] is None:
                parts[key] = value
        return ArcpipeError(self.message, **parts)  # type: ignore[arg-type]

    def __str__(self) -> str:
        place = []
        if self.task is not None:
            place.append(f"task {self.task}")
        pair = ""
        if self.split is not None:
            pair = self.split + ("" if self.index is None else f"[{self.index}]")
        if self.field is not None:
            pair = f"{pair}.{self.field}" if pair else self.field
        if pair:
            place.append(pair)
        where = " ".join(place)
        prefix = ": ".join(p for p in (self.file, where) if p)
        return f"{prefix}: {self.message}" if prefix else self.message
