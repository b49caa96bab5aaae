"""The MTA's durable mail queue: one data file and one metadata file per message in a directory."""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reference_agents.durable import GroupFsync, remove_stale_files, write_new_file

log = logging.getLogger(__name__)

_DATA_SUFFIX = ".msg"
_META_SUFFIX = ".json"
_TMP_DIR = "tmp"
_CORRUPT_DIR = "corrupt"
_FORMAT_VERSION = 1
#: The first bytes of a data file that carries its own envelope: this, the envelope as one line
#: of JSON (`_entry_to_json`), a line feed, then the message.
_HEADER_MAGIC = b"MHQ1 "
#: The longest envelope line a data file may start with (a RCPT list far past any server's).
_MAX_HEADER = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One queued message: envelope, when it arrived, and its delivery attempts so far.
    ``mail_from`` is "" for the null reverse-path; times are seconds since the epoch."""

    id: str
    mail_from: str
    recipients: tuple[str, ...]
    created: float
    attempts: int
    next_attempt: float
    last_error: str


def _entry_to_json(entry: QueueEntry) -> bytes:
    record: dict[str, Any] = {
        "version": _FORMAT_VERSION,
        "id": entry.id,
        "mail_from": entry.mail_from,
        "recipients": list(entry.recipients),
        "created": entry.created,
        "attempts": entry.attempts,
        "next_attempt": entry.next_attempt,
        "last_error": entry.last_error,
    }
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def _header_length(content: bytes) -> int:
    """How many bytes of a data file are its envelope line (0: a file of the first layout,
    the message alone, whose envelope is in the metadata file)."""
    if not content.startswith(_HEADER_MAGIC):
        return 0
    end = content.find(b"\n", 0, _MAX_HEADER)
    if end < 0:
        raise ValueError("envelope line without an end")
    return end + 1


def _read_header(path: Path) -> bytes | None:
    """The envelope line of data file *path* (without magic and line feed), or None for a file
    of the first layout; only that line is read. ValueError for a truncated or oversized line."""
    with path.open("rb") as f:
        head = f.read(len(_HEADER_MAGIC))
        if head != _HEADER_MAGIC:
            return None
        head += f.readline(_MAX_HEADER)
    return head[len(_HEADER_MAGIC):_header_length(head) - 1]


def _entry_from_json(content: bytes) -> QueueEntry:
    record = json.loads(content.decode("utf-8"))
    if not isinstance(record, dict) or record.get("version") != _FORMAT_VERSION:
        raise ValueError("unknown queue metadata format")
    recipients = record["recipients"]
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise ValueError("recipients must be a list of strings")
    return QueueEntry(
        id=str(record["id"]),
        mail_from=str(record["mail_from"]),
        recipients=tuple(recipients),
        created=float(record["created"]),
        attempts=int(record["attempts"]),
        next_attempt=float(record["next_attempt"]),
        last_error=str(record["last_error"]),
    )


class MailQueue:
    """A directory of queued messages that survives crashes and restarts.

    Each message is ``<id>.msg``: its envelope as one line (`_HEADER_MAGIC`, JSON, line feed),
    then the bytes. It is written in ``tmp/``, fsynced and renamed into place: that rename is
    the commit point, and one fsync of the file and one of the directory (shared by the enqueues
    that wait for it, `GroupFsync`) make it durable. A change of the envelope (the recipients
    left, the schedule) is ``<id>.json``, written beside it the same way, and it takes
    precedence over the data file's own line. Removal unlinks the data file first, so a crash
    in between leaves a metadata file alone, which recovery deletes. On open, ``tmp/`` is
    emptied. Thread-safe.

    The first layout (a data file of the message alone, committed by its ``.json``) is still
    read: a data file without the header is an entry only with a metadata file beside it, and
    is removed otherwise (a crash between that layout's two renames).

    Two processes may share one directory, as the SMTP servers and the delivery process do
    (reference_agents/delivery.py): the one that enqueues opens it first, with *recover*,
    and with *keep_entries* False (it only adds entries, and forgets them at once); the one
    that delivers opens it without *recover* (recovery would empty ``tmp/`` under the other's
    feet) and takes in what the other committed with `refresh`. Only the delivering process
    reschedules, settles and removes."""

    def __init__(self, directory: Path, *, recover: bool = True,
                 keep_entries: bool = True) -> None:
        self.directory = Path(directory)
        self._tmp = self.directory / _TMP_DIR
        self._lock = threading.Lock()
        #: Entries removed by remove_settled whose directory fsync is still to come.
        self._unsynced: set[str] = set()
        self._entries: dict[str, QueueEntry] = {}
        self._listeners: list[Callable[[], None]] = []
        self._keep = keep_entries
        #: Every fsync of the directory (after an enqueue's rename, a settle, a reschedule),
        #: shared by the threads that need one at the same time.
        self._dir_sync = GroupFsync(self.directory)
        #: Committed entries `refresh` could not read (logged once; recovery quarantines them).
        self._unreadable: set[str] = set()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(exist_ok=True)
        if recover:
            self._recover()
        elif keep_entries:
            self.refresh()
        if not keep_entries:
            self._entries.clear()

    # -- recovery -----------------------------------------------------------------------------

    def _recover(self) -> None:
        for leftover in self._tmp.iterdir():
            # Never renamed into place: the message was never acknowledged. Drop it.
            leftover.unlink()
        for data in self.directory.glob(f"*{_DATA_SUFFIX}"):
            entry_id = data.name[: -len(_DATA_SUFFIX)]
            try:
                entry = self._load(entry_id)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # A committed entry we cannot read: keep the files for a human, never delete.
                log.error("queue entry %s is unreadable (%s); moved to %s", entry_id, exc, _CORRUPT_DIR)
                self._quarantine(entry_id)
                continue
            if entry is None:
                # The first layout, crashed after the data rename but before the metadata
                # rename: never committed.
                data.unlink()
                continue
            self._entries[entry_id] = entry
        for meta in self.directory.glob(f"*{_META_SUFFIX}"):
            if not self._data_path(meta.name[: -len(_META_SUFFIX)]).exists():
                # A crash between a removal's two unlinks: the entry is gone already.
                meta.unlink()
        self._dir_sync.sync()

    def _load(self, entry_id: str) -> QueueEntry | None:
        """The committed entry *entry_id*, from its metadata file if there is one, else from its
        data file's envelope line; None when neither holds it (an uncommitted data file of the
        first layout). FileNotFoundError when the data file is gone; ValueError and friends when
        what is there cannot be read."""
        header = _read_header(self._data_path(entry_id))
        try:
            content = self._meta_path(entry_id).read_bytes()
        except FileNotFoundError:
            if header is None:
                return None
            content = header
        entry = _entry_from_json(content)
        if entry.id != entry_id:
            raise ValueError(f"metadata names id {entry.id!r}")
        return entry

    def refresh(self) -> int:
        """Take in the entries committed since by another process sharing the directory; how
        many were new. An entry this process removed never comes back: `remove` unlinks the
        data file under the same lock this takes."""
        try:
            names = os.listdir(self.directory)
        except OSError as exc:
            log.error("cannot list the queue %s: %s", self.directory, exc)
            return 0
        with self._lock:
            known = set(self._entries)
        added = 0
        for name in names:
            if not name.endswith(_DATA_SUFFIX):
                continue
            entry_id = name[: -len(_DATA_SUFFIX)]
            if entry_id in known or entry_id in self._unreadable:
                continue
            try:
                entry = self._load(entry_id)
            except FileNotFoundError:
                continue  # removed in the meantime
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("queue entry %s is unreadable (%s); left for recovery", entry_id, exc)
                self._unreadable.add(entry_id)
                continue
            if entry is None:
                continue  # not committed (the first layout's data file before its metadata)
            with self._lock:
                if entry_id not in self._entries and self._data_path(entry_id).exists():
                    self._entries[entry_id] = entry
                    added += 1
        return added

    def sweep_tmp(self, max_age: float) -> int:
        """Remove files in ``tmp/`` older than *max_age* seconds: what a process sharing the
        directory left when it died (the enqueuing side empties ``tmp/`` at its start; the
        delivering side, restarted alone, cannot, since the other may be writing there)."""
        return remove_stale_files([self._tmp], max_age)

    def _quarantine(self, entry_id: str) -> None:
        corrupt = self.directory / _CORRUPT_DIR
        corrupt.mkdir(exist_ok=True)
        for suffix in (_META_SUFFIX, _DATA_SUFFIX):
            path = self.directory / f"{entry_id}{suffix}"
            if path.exists():
                path.rename(corrupt / path.name)

    # -- paths --------------------------------------------------------------------------------

    def _data_path(self, entry_id: str) -> Path:
        return self.directory / f"{entry_id}{_DATA_SUFFIX}"

    def _meta_path(self, entry_id: str) -> Path:
        return self.directory / f"{entry_id}{_META_SUFFIX}"

    def _tmp_path(self, name: str) -> Path:
        return self._tmp / f"{name}.{secrets.token_hex(4)}"

    @staticmethod
    def _new_id() -> str:
        # Sortable by creation time, unique across processes.
        return f"{time.time_ns():016x}-{secrets.token_hex(6)}"

    def _check_id(self, entry_id: str) -> None:
        if not entry_id or "/" in entry_id or entry_id.startswith("."):
            raise ValueError(f"bad queue id {entry_id!r}")

    # -- operations ---------------------------------------------------------------------------

    def enqueue(self, mail_from: str, recipients: Sequence[str], data: bytes) -> str:
        """Store a message durably and return its id. When this returns, the message is on
        disk (the file and its directory entry fsynced): only then may a server answer 250."""
        if not recipients:
            raise ValueError("a queued message needs at least one recipient")
        now = time.time()
        entry = QueueEntry(
            id=self._new_id(),
            mail_from=mail_from,
            recipients=tuple(recipients),
            created=now,
            attempts=0,
            next_attempt=now,
            last_error="",
        )
        tmp_data = self._tmp_path(entry.id + _DATA_SUFFIX)
        committed = False
        try:
            write_new_file(tmp_data, (_HEADER_MAGIC, _entry_to_json(entry), b"\n", data))
            # The commit point: once the data file is in place the entry exists.
            os.rename(tmp_data, self._data_path(entry.id))
            committed = True
            self._dir_sync.sync()
        except BaseException:
            tmp_data.unlink(missing_ok=True)
            if committed:
                # Never answered 250: an entry that may not be durable must not be delivered.
                self._data_path(entry.id).unlink(missing_ok=True)
            raise
        with self._lock:
            if self._keep:
                self._entries[entry.id] = entry
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not turn a stored message into an error
                log.exception("queue listener failed")
        return entry.id

    def entries(self) -> list[QueueEntry]:
        """All entries, oldest first."""
        with self._lock:
            entries = list(self._entries.values())
        entries.sort(key=lambda e: (e.created, e.id))
        return entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def get(self, id: str) -> QueueEntry | None:
        with self._lock:
            return self._entries.get(id)

    def read_data(self, id: str) -> bytes:
        """The message bytes exactly as enqueued; KeyError for an unknown id."""
        self._check_id(id)
        if self.get(id) is None:
            raise KeyError(id)
        content = self._data_path(id).read_bytes()
        start = _header_length(content)
        return content[start:] if start else content

    def reschedule(
        self,
        id: str,
        *,
        recipients: Sequence[str],
        attempts: int,
        next_attempt: float,
        last_error: str,
    ) -> None:
        """Atomically replace the entry's recipients (those still to deliver) and schedule."""
        self._check_id(id)
        if not recipients:
            raise ValueError("reschedule needs at least one recipient; remove() the entry instead")
        with self._lock:
            current = self._entries.get(id)
        if current is None:
            raise KeyError(id)
        entry = replace(
            current,
            recipients=tuple(recipients),
            attempts=attempts,
            next_attempt=next_attempt,
            last_error=last_error,
        )
        self._replace_entry(entry)

    def _replace_entry(self, entry: QueueEntry, *, sync_dir: bool = True) -> None:
        """Write *entry*'s metadata atomically and durably, then make it the current one
        (*sync_dir* False: the caller fsyncs the directory, for several entries at once)."""
        tmp_meta = self._tmp_path(entry.id + _META_SUFFIX)
        try:
            write_new_file(tmp_meta, _entry_to_json(entry))
            os.replace(tmp_meta, self._meta_path(entry.id))
            if sync_dir:
                self._dir_sync.sync()
        except BaseException:
            tmp_meta.unlink(missing_ok=True)
            raise
        with self._lock:
            if entry.id in self._entries:
                self._entries[entry.id] = entry

    def settle(self, id: str, recipients: Sequence[str]) -> None:
        """Record durably that *recipients* are done with (delivered, or refused for good):
        they leave the entry, and the entry goes when no recipient is left. Called as soon as
        a next hop's 250 arrives, so that a crash afterwards cannot send the message there
        again. An unknown id, or recipients it does not hold, change nothing."""
        self.settle_many([(id, recipients)])

    def remove_settled(self, id: str, recipients: Sequence[str]) -> bool:
        """If *recipients* are all the entry has left, remove it now, without an fsync (two
        unlinks, quick enough for an event loop), and return True; a `settle_many` of the same
        item then makes it durable. Against a process crash the unlink alone already counts,
        so the time in which a crash makes a duplicate ends here, not after a thread hand-off
        and a group commit that waits for the one before it."""
        self._check_id(id)
        with self._lock:
            current = self._entries.get(id)
            if current is None or not set(current.recipients) <= set(recipients):
                return False
            self._unsynced.add(id)
        self.remove(id)
        return True

    def settle_many(self, items: Sequence[tuple[str, Sequence[str]]]) -> None:
        """settle() for several entries, with one fsync of the directory for them all (group
        commit: the settles that wait while one is written share the next fsync)."""
        changed = False
        for id, recipients in items:
            self._check_id(id)
            done = set(recipients)
            with self._lock:
                if id in self._unsynced:  # removed by remove_settled: only the fsync is left
                    self._unsynced.discard(id)
                    changed = True
                    continue
                current = self._entries.get(id)
            if current is None or not done & set(current.recipients):
                continue
            remaining = tuple(r for r in current.recipients if r not in done)
            if remaining:
                self._replace_entry(replace(current, recipients=remaining), sync_dir=False)
            else:
                self.remove(id)
            changed = True
        if changed:
            self._dir_sync.sync()

    def remove(self, id: str) -> None:
        """Forget a message (delivered, or bounced). Removing an unknown id does nothing.

        The directory is not fsynced: if a crash undoes the unlink, the message is delivered
        once more after the restart — a duplicate, never a loss (the trade every MTA makes)."""
        self._check_id(id)
        with self._lock:
            self._entries.pop(id, None)
            # The data file first: it is the entry; a crash in between leaves a metadata file
            # that recovery removes. Under the lock, so that a concurrent refresh cannot take
            # the entry in again.
            self._data_path(id).unlink(missing_ok=True)
        self._meta_path(id).unlink(missing_ok=True)

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call *callback* after every enqueue, in the enqueuing thread."""
        with self._lock:
            self._listeners.append(callback)
