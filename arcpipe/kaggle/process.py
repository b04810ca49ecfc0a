"""Running a phase's ``arcpipe`` command: process groups, deadlines, GPUs, torchrun."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

KILL_GRACE_S = 60.0  # after SIGTERM at a phase's deadline, SIGKILL this much later


# ----------------------------------------------------------------------------- subprocesses


@dataclass
class CommandResult:
    """How a phase's command ended."""

    returncode: int
    timed_out: bool
    tail: str  # the last lines of its output

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def out_of_memory(self) -> bool:
        return "out of memory" in self.tail.lower()


def run_command(cmd: list[str], log_path: Path, timeout_s: float) -> CommandResult:
    """Run ``cmd`` in its own process group, echoing and logging its output.

    At ``timeout_s`` the group gets SIGTERM (arcpipe stops cleanly with a checkpoint), and
    SIGKILL :data:`KILL_GRACE_S` later.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: collections.deque[str] = collections.deque(maxlen=200)
    with open(log_path, "w") as log:
        log.write(" ".join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        fired = threading.Event()
        timer = threading.Timer(timeout_s, _stop_group, (proc, fired))
        timer.start()
        try:
            for line in proc.stdout:
                sys.stdout.write(line)
                log.write(line)
                tail.append(line)
            returncode = proc.wait()
        finally:
            timer.cancel()
    return CommandResult(returncode, fired.is_set(), "".join(tail))


def _stop_group(proc: subprocess.Popen, fired: threading.Event) -> None:
    fired.set()
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def visible_gpus() -> int:
    """CUDA devices torch can see, counted in a subprocess (the kernel never touches CUDA)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    code = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
        )
        return int(out.stdout.split()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError):
        return 0


def arcpipe_command(gpus: int) -> list[str]:
    """How to start ``arcpipe``: torchrun over ``gpus`` processes, else one process."""
    if gpus > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={gpus}",
            "-m",
            "arcpipe",
        ]
    return [sys.executable, "-m", "arcpipe"]
