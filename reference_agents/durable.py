"""Durable file primitives shared by the queue and the mail store: write-and-fsync, fsync a directory."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Force the directory entry changes (creates, renames) under *path* to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new_file(path: Path, data: bytes) -> None:
    """Create *path* (which must not exist, and is not followed if a link), write *data*, fsync,
    close; on failure nothing is left at *path*."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def replace_file(path: Path, data: bytes) -> None:
    """Atomically give *path* the content *data*: readers see the old file or the whole new one,
    never a partial write (write aside, fsync, rename over, fsync the directory)."""
    aside = path.with_name(path.name + ".new")
    aside.unlink(missing_ok=True)
    write_new_file(aside, data)
    try:
        os.replace(aside, path)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
