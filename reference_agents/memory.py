"""Giving freed memory back to the system after a burst of connections.

glibc's allocator keeps the memory of freed objects in its heap for reuse, so a process that
held thousands of connections at once stays that large after they closed. ``malloc_trim(0)``
returns the free pages at the top and in the middle of the heap. It costs about a millisecond,
so it runs once per TRIM_EVERY closed connections, not for each one. Where there is no glibc
(another C library, another system) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

#: Closed connections between two trims.
TRIM_EVERY = 64


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()
_closed = 0


def connection_closed() -> None:
    """Count one closed connection; every TRIM_EVERY, hand free heap memory back."""
    global _closed
    _closed += 1
    if _closed >= TRIM_EVERY:
        _closed = 0
        if _TRIM is not None:
            _TRIM(0)
