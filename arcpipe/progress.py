"""Progress reporting: a rich bar on a terminal, plain periodic lines otherwise (Kaggle logs)."""

from __future__ import annotations

import sys
import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

console = Console(stderr=True, highlight=False)


def is_terminal() -> bool:
    """True when progress should be drawn as a live bar."""
    return console.is_terminal and not console.is_dumb_terminal


class Progress:
    """Count work done; draw a bar on a terminal, print a line every ``every`` seconds otherwise.

    Use as a context manager; ``advance(n, text)`` adds ``n`` units and sets the status text.
    ``completed`` units were done before (a resumed run): they count towards the total but not
    towards the rate, so the time left is not underestimated.
    """

    def __init__(
        self,
        description: str,
        total: int,
        every: float = 30.0,
        quiet: bool = False,
        completed: int = 0,
    ):
        self.description = description
        self.total = total
        self.every = every
        self.quiet = quiet
        self.done = self._completed = completed
        self.text = ""
        self._start = time.monotonic()
        self._last_line = self._start
        self._bar: RichProgress | None = None
        self._task = None

    def __enter__(self) -> Progress:
        if not self.quiet and is_terminal():
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[text]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                self.description, total=self.total, completed=self.done, text=""
            )
        return self

    def advance(self, n: int = 1, text: str | None = None) -> None:
        """Record ``n`` more units of work and optionally a status text."""
        self.done += n
        if text is not None:
            self.text = text
        if self._bar is not None:
            self._bar.update(self._task, advance=n, text=self.text)
            return
        now = time.monotonic()
        if not self.quiet and (now - self._last_line >= self.every or self.done >= self.total):
            self._last_line = now
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = now - self._start
        rate = (self.done - self._completed) / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        print(
            f"{self.description}: {self.done}/{self.total} {self.text} "
            f"[{elapsed:.0f}s elapsed, {left:.0f}s left]",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
