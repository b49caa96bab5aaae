"""Durable file primitives shared by the queue and the mail store: write-and-fsync, fsync a directory."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Force the directory entry changes (creates, renames) under *path* to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class GroupFsync:
    """fsync of one directory, shared by the threads that need one at the same time (group
    commit): `sync` returns once an fsync that began after the call has ended, and while one
    runs, every caller that arrives waits for the next, which one of them starts for all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cond = threading.Condition()
        self._started = 0  # fsyncs begun
        self._finished = 0  # the latest begun fsync that succeeded
        self._running = False
        #: fsyncs done, for tests and figures.
        self.count = 0

    def sync(self) -> None:
        with self._cond:
            # Changes made before now are covered by an fsync begun after now.
            needed = self._started + 1
            while self._finished < needed:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                self._started += 1
                mine = self._started
                self._cond.release()
                try:
                    fsync_dir(self.path)
                finally:
                    self._cond.acquire()
                    self._running = False
                    self._cond.notify_all()
                # Not reached when the fsync raised: the others try again.
                self._finished = mine
                self.count += 1


def remove_stale_files(directories: Iterable[Path], max_age: float) -> int:
    """Unlink the regular files directly in *directories* that nobody has modified for
    *max_age* seconds (leftovers of a process that died writing them); how many went. A
    directory that is not there is skipped."""
    horizon = time.time() - max_age
    removed = 0
    for directory in directories:
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat(
                        follow_symlinks=False).st_mtime < horizon:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue  # renamed into place or removed meanwhile
    return removed


def write_new_file(path: Path, data: bytes | Sequence[bytes]) -> None:
    """Create *path* (which must not exist, and is not followed if a link), write *data* (bytes,
    or several pieces one after the other), fsync, close; on failure nothing is left at
    *path*."""
    pieces = (data,) if isinstance(data, bytes | bytearray | memoryview) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        for piece in pieces:
            view = memoryview(piece)
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
