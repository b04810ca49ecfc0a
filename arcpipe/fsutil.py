"""Atomic file and directory writes: build under a temporary name, then rename into place.

Temporary names start with ``.NAME.tmp-PID-`` beside their target, so a process killed while
writing leaves only hidden temporaries, never a partial file under the real name; the next writer
of the same target removes the temporaries of processes that are no longer running.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson

from arcpipe.errors import ArcpipeError

_RENAME_EXCHANGE = 2  # renameat2 flag (Linux 3.15+): swap two paths in one step
_AT_FDCWD = -100
_TEMPORARY_PID = re.compile(r"\.tmp-(\d+)-")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temporary_prefix(target: Path) -> str:
    """The prefix of this process's temporaries for ``target``."""
    return f".{target.name}.tmp-{os.getpid()}-"


def remove_stale_temporaries(target: Path) -> None:
    """Delete temporaries of ``target`` left by processes that are no longer running.

    ``target``'s name may be a glob pattern (``checkpoints/step-*``).
    """
    for path in target.parent.glob(f".{target.name}.tmp-*"):
        pid = _TEMPORARY_PID.search(path.name)
        if pid is None or _running(int(pid.group(1))):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    Raises:
        ArcpipeError: the write failed (a full disk, say); ``path`` is as it was.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(err, OSError):
            raise cannot_write(path, err) from None
        raise


def cannot_write(path: Path, err: OSError) -> ArcpipeError:
    """The one-line error for a write that failed (the previous file or directory is kept)."""
    return ArcpipeError(f"cannot write: {err.strerror or err}; nothing was replaced", file=path)


def write_json_atomic(path: str | Path, obj: object) -> None:
    """Write ``obj`` as indented JSON with sorted keys (stable bytes for the same content)."""
    data = orjson.dumps(
        obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
    )
    write_bytes_atomic(path, data + b"\n")


def make_temporary_directory(target: Path) -> Path:
    """A new empty temporary directory beside ``target`` (usual permissions)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=temporary_prefix(target)))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def replace_directory(tmp: Path, target: Path) -> None:
    """Move the complete directory ``tmp`` to ``target``, replacing any old one.

    Where the kernel can swap two paths in one step (Linux ``renameat2``), readers see the old
    directory or the new one at every instant, whatever kills the process; elsewhere the old one
    is renamed aside first, a window of two renames.
    """
    if not target.exists():
        os.replace(tmp, target)
        return
    if _exchange(tmp, target):
        shutil.rmtree(tmp)  # now holds the old directory
        return
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=temporary_prefix(target)))
    os.replace(target, aside / "old")
    os.replace(tmp, target)
    shutil.rmtree(aside, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    sys.audit("arcpipe.exchange", str(a), str(b))  # a fault-injection point (arcpipe.faults)
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))


@contextlib.contextmanager
def atomic_directory(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to fill; rename it to ``path`` when the block succeeds.

    On any exception the temporary directory is removed and ``path`` is untouched. An existing
    ``path`` is an error unless ``overwrite`` is set, in which case it is replaced only after the
    new directory is complete (:func:`replace_directory`).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ArcpipeError("already exists (pass --overwrite to replace it)", file=path)
    tmp = make_temporary_directory(path)
    try:
        yield tmp
        replace_directory(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise cannot_write(path, err) from None
        raise


def file_digest(path: Path) -> str:
    """sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
