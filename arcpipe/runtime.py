"""Process-wide settings that make the CPU path faster without changing any result.

glibc serves every allocation above a threshold (at most 32 MB) with a fresh ``mmap`` and unmaps
it on free, so each large activation tensor costs page faults and zeroing by the kernel on every
use: on a 2-core machine that was a third of a rotary-embedding call. Keeping large blocks on the
heap and never trimming it lets them be reused. Set ``ARCPIPE_MALLOC=default`` to keep glibc's
behaviour.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def tune_allocator() -> bool:
    """Keep large blocks on the heap (glibc only); True when the setting took effect."""
    if os.environ.get("ARCPIPE_MALLOC") == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl)
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
