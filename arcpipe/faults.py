"""Fault injection for the reliability suite: kill, starve or stall an arcpipe process on cue.

Off unless the environment variable ``ARCPIPE_FAULTS`` holds a plan (JSON; or a list of plans,
each acting alone); ``python -m arcpipe`` (and so ``torchrun -m arcpipe`` and every phase of the
Kaggle flow) installs it before anything else runs. The plan is carried out by a Python audit
hook (PEP 578), which sees every file the process opens for writing (``write`` and ``append``
events), every ``rename``, ``symlink``, ``rmtree`` and ``remove``, and arcpipe's own events
(``arcpipe.train.step``, ``arcpipe.predict.batch``, ``arcpipe.exchange``), so no code path
changes to make room for it. Counted events are numbered
from 1 in the order they happen, which is deterministic for a deterministic command, so a seeded
choice of ``at`` is a reproducible kill point; ``trace`` lists them.

Plan keys (all optional):

    command   act only in a process running this subcommand ("train", "predict", ...)
    rank      act only in this torchrun rank (the ``RANK`` variable; 0 without torchrun)
    under     count file events only for paths inside this folder
    match     count only events whose description matches this regular expression (re.search)
    at        fire at this counted event (1-based); 0 (default): never, trace only
    action    kill    SIGKILL before the event takes effect
              torn    let the file of a ``write`` event be written, then cut what this write
                      added in half and SIGKILL at the next counted event (or at exit)
              oom     raise an out-of-memory error (torch's, as CUDA raises it) from the event
              enospc  raise OSError ENOSPC ("No space left on device") from the event
              hang    sleep ``seconds`` (default: a day) at the event
              delay   sleep ``seconds`` at this and every later counted event
    seconds   for hang and delay
    trace     append each counted event's number and description to this file, one line each
              ("{command}" in the name becomes the subcommand: one file per phase)
    once      fire only while this file does not exist, and create it when firing (so a retry
              of the same command runs clean)
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

ENV = "ARCPIPE_FAULTS"
ACTIONS = ("kill", "torn", "oom", "enospc", "hang", "delay")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def install_from_environment() -> int:
    """Install the plans in ``$ARCPIPE_FAULTS`` (one plan or a list); the number installed."""
    text = os.environ.get(ENV)
    if not text:
        return 0
    plans = json.loads(text)
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    installed = 0
    for plan in plans if isinstance(plans, list) else [plans]:
        unknown = set(plan) - {
            "command", "rank", "under", "match", "at", "action", "seconds", "trace", "once",
        }  # fmt: skip
        if unknown or plan.get("action", "kill") not in ACTIONS:
            raise SystemExit(f"{ENV}: unknown keys {sorted(unknown)} or action in {text}")
        if plan.get("command") not in (None, command):
            continue
        if "rank" in plan and int(os.environ.get("RANK", "0")) != int(plan["rank"]):
            continue
        sys.addaudithook(_Injector(plan, command))
        installed += 1
    return installed


def describe(event: str, args: tuple, under: str | None) -> str | None:
    """The description of an audit event that counts, or None for one that does not."""
    if event.startswith("arcpipe."):
        return " ".join([event, *map(str, args)])
    if event == "open":
        path, mode, flags = args
        writing = any(c in mode for c in "wax+") if mode else bool((flags or 0) & _WRITE_FLAGS)
        return _file_event(_write_kind(mode, flags), path, under) if writing else None
    if event == "os.rename":
        return _file_event("rename", args[1], under, f" <- {args[0]}")
    if event == "os.symlink":
        return _file_event("symlink", args[1], under, f" -> {args[0]}")
    if event in ("shutil.rmtree", "os.remove"):
        return _file_event(event.split(".")[-1], args[0], under)
    return None


def _write_kind(mode: str | None, flags: int | None) -> str:
    """``append`` for a file opened to add to its end, else ``write``."""
    appending = "a" in mode if mode else bool((flags or 0) & os.O_APPEND)
    return "append" if appending else "write"


def _file_event(kind: str, path: object, under: str | None, extra: str = "") -> str | None:
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None  # an open file descriptor (os.fdopen): its open was counted
    full = os.path.abspath(os.fsdecode(path))
    if under is not None and not full.startswith(under):
        return None
    return f"{kind} {full}{extra}"


class _Injector:
    """The audit hook of one plan."""

    def __init__(self, plan: dict, command: str) -> None:
        self.plan = plan
        self.at = int(plan.get("at", 0))
        self.action = plan.get("action", "kill")
        self.under = os.path.abspath(plan["under"]) + os.sep if "under" in plan else None
        self.match = re.compile(plan.get("match", ""))
        self.count = 0
        self.busy = False  # the hook's own file and signal calls raise audit events too
        self.torn: tuple[Path, int] | None = None  # file to cut at the next event, its old size
        trace = plan.get("trace")
        self.trace = None if trace is None else open(trace.format(command=command), "a")  # noqa: SIM115

    def __call__(self, event: str, args: tuple) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            self._event(event, args)
        finally:
            self.busy = False

    def _event(self, event: str, args: tuple) -> None:
        description = describe(event, args, self.under)
        if description is None or not self.match.search(description):
            return
        if self.torn is not None:
            self._cut_and_kill()
        self.count += 1
        if self.trace is not None:
            self.trace.write(f"{self.count}\t{description}\n")
            self.trace.flush()
        if self.action == "delay" and self.at and self.count >= self.at:
            time.sleep(float(self.plan.get("seconds", 1.0)))
        elif self.count == self.at and self._claim():
            self._fire(description)

    def _claim(self) -> bool:
        """True unless a ``once`` file says an earlier process fired already."""
        once = self.plan.get("once")
        if once is None:
            return True
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def _fire(self, description: str) -> None:
        if self.action == "kill":
            _kill()
        elif self.action == "torn":
            if not description.startswith(("write ", "append ")):
                raise SystemExit(f"{ENV}: action torn needs a write event, got {description}")
            kind, name = description.split(" ", 1)
            path = Path(name)
            self.torn = (path, path.stat().st_size if kind == "append" and path.exists() else 0)
            atexit.register(self._cut_and_kill)
        elif self.action == "oom":
            raise _out_of_memory()
        elif self.action == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), description.split(" ", 1)[1])
        elif self.action == "hang":
            time.sleep(float(self.plan.get("seconds", 86400.0)))

    def _cut_and_kill(self) -> None:
        path, before = self.torn
        if path.exists():
            os.truncate(path, before + (path.stat().st_size - before) // 2)
        _kill()


def _kill() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _out_of_memory() -> BaseException:
    message = "CUDA out of memory. Tried to allocate 2.00 GiB (injected by ARCPIPE_FAULTS)"
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "OutOfMemoryError"):
        return torch.OutOfMemoryError(message)
    return MemoryError(message)
