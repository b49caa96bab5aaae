"""The Maildir backend: messages in Maildir directories, UIDs and flags in a SQLite index per user."""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from reference_agents.durable import fsync_dir, remove_stale_files, replace_file, write_new_file
from reference_agents.mailstore.base import (
    INBOX,
    JUNK,
    MAX_UID,
    MailboxInfo,
    MessageInfo,
    StoreBase,
    check_internaldate,
    check_user,
    delivery_tag,
    missing_with_parents,
    normalize_flags,
    normalize_mailbox_name,
    rename_plan,
    sorted_mailboxes,
    strip_declaration,
)
from reference_agents.mailstore.errors import (
    InvalidMailboxName,
    MailboxExists,
    NoSuchMailbox,
    NoSuchMessage,
    StorageError,
    StoreLocked,
)
from reference_agents.mailstore.files import (
    INDEX_FILE,
    LOCK_FILE,
    NAME_FILE,
    TRASH_PREFIX,
    USER_LOCK_FILE,
    VALIDITY_FILE,
    encode_path_component,
    file_location,
    flags_from_filename,
)
from reference_agents.mailstore.index import (
    SCHEMA,
    MailboxRow,
    UserIndex,
    add_column,
    decode_flags,
    encode_flags,
    record_expunged,
    snapshot,
    transaction,
)

_log = logging.getLogger(__name__)
#: The delivery tag in a message file's base name (see _unique_name).
_DELIVERY_TAG = re.compile(r"D([0-9a-f]{32})\.mailharness$")
#: Seconds a delivery id is kept: far beyond any queue lifetime, after which no retry comes.
DELIVERY_MEMORY = 30 * 24 * 3600.0

# --------------------------------------------------------------------------- Maildir backend


class MaildirStore(StoreBase):
    """A `MailStore` on disk: one Maildir (tmp/new/cur) per mailbox under
    ``root/<user-dir>/<mailbox-dir>``, and one SQLite index per user
    (``root/<user-dir>/index.sqlite3``, WAL) holding UIDs, flags and UIDVALIDITY.

    Delivery is atomic: the message is written to tmp/ and fsynced, renamed into new/ (or cur/
    when it has flags), the directory fsynced, and only then is the index row committed, with
    its UID taken from ``uidnext`` in the same transaction. On first use of a user a recovery
    pass indexes files the index does not know (a crash between rename and commit), drops rows
    whose file is gone, and removes stale tmp/ files. Only one store may have a root open:
    the *primary*, which holds the root's lock.

    Processes of the same agents (the IMAP workers) may share it: once the primary has called
    `share`, which recovers every user at once, each of them opens the root with `attach`.
    From then on every change takes the user's write lock (an ``flock`` on a file beside the
    index), so the read-modify-write of UIDNEXT and the mod-sequence is serialised across
    processes as the store's own lock serialises it across threads; readers need no lock (a
    SQLite WAL snapshot). Recovery runs in the primary only, before any other process writes."""

    def __init__(self, root: Path, *, primary: bool = True) -> None:
        super().__init__()
        self._root = Path(root)
        self._root.mkdir(parents=True, exist_ok=True)
        self._users: dict[str, UserIndex] = {}
        self._deliveries = itertools.count(1)
        #: Whether other processes write to this root too (see `share`).
        self._shared = not primary
        #: Whether a user opened for the first time is recovered (the primary, until shared).
        self._recovering = primary
        self._lock_fd = -1
        if not primary:
            return
        self._lock_fd = os.open(self._root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise StoreLocked(f"{self._root} is already open in another MaildirStore") from None

    @classmethod
    def attach(cls, root: Path) -> MaildirStore:
        """A store over the root a primary in another process holds and has `share`d."""
        if not (Path(root) / LOCK_FILE).exists():
            raise StorageError(f"{root} is not a mail store")
        return cls(root, primary=False)

    def sweep_tmp(self, max_age: float) -> int:
        """Remove the files in every mailbox's tmp/ not modified for *max_age* seconds (the
        Maildir convention is 36 hours): deliveries a process sharing the store left behind
        when it died alone, which only a full recovery would otherwise remove."""
        return remove_stale_files(self._root.glob("*/*/tmp"), max_age)

    def share(self, users: Iterable[str]) -> None:
        """Let other processes `attach` to this root: recover *users* (every user the agents
        serve) now, since recovery later would take another process's half-written delivery for
        a crash's; from then on take the write lock for every change."""
        with self._lock:
            for user in users:
                self._user(user)
            self._recovering = False
            self._shared = True

    @contextmanager
    def _writing(self, user: str) -> Iterator[UserIndex]:
        """The store's lock, *user*'s index and, when shared, *user*'s write lock."""
        with self._lock:
            index = self._user(user)
            if not self._shared:
                yield index
                return
            fcntl.flock(index.lock_fd, fcntl.LOCK_EX)
            try:
                yield index
            finally:
                fcntl.flock(index.lock_fd, fcntl.LOCK_UN)

    def __enter__(self) -> MaildirStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def root(self) -> Path:
        return self._root

    def user_path(self, user: str) -> Path:
        """The directory of *user* (it holds the index and one directory per mailbox)."""
        return self._root / encode_path_component(check_user(user))

    def mailbox_path(self, user: str, name: str) -> Path:
        """The Maildir directory (containing tmp/, new/, cur/) of an existing mailbox."""
        with self._lock:
            index = self._user(user)
            return index.directory / self._row(index, normalize_mailbox_name(name)).dirname

    # ---- public API

    def list_mailboxes(self, user: str) -> list[str]:
        with self._lock:
            rows = self._user(user).conn.execute("SELECT name FROM mailboxes").fetchall()
            return sorted_mailboxes(str(r[0]) for r in rows)

    def create_mailbox(self, user: str, name: str, special_use: Iterable[str] = ()) -> None:
        with self._writing(user) as index:
            name = normalize_mailbox_name(strip_declaration(name))
            existing = [str(r[0]) for r in index.conn.execute("SELECT name FROM mailboxes")]
            if name in existing:
                raise MailboxExists(name)
            created = missing_with_parents(name, existing)
            with transaction(index.conn):
                for new in created:
                    self._create_mailbox(index, new)
                index.conn.execute("UPDATE mailboxes SET special_use = ? WHERE name = ?",
                                   (encode_flags(frozenset(special_use)), name))
        self._notify(user, created)

    def special_uses(self, user: str) -> dict[str, frozenset[str]]:
        with self._lock:
            rows = self._user(user).conn.execute(
                "SELECT name, special_use FROM mailboxes WHERE special_use != ''").fetchall()
            return {str(r[0]): decode_flags(str(r[1])) for r in rows}

    def delete_mailbox(self, user: str, name: str) -> None:
        with self._writing(user) as index:
            name = normalize_mailbox_name(name)
            if name == INBOX:
                # RFC 9051 §6.3.5: "It is an error to attempt to delete INBOX or a mailbox name
                # that does not exist."
                raise InvalidMailboxName("INBOX cannot be deleted")
            row = self._row(index, name)
            # Move the directory aside first: if we die before the commit, recovery sees the
            # row and moves it back; after the commit, recovery finishes removing it.
            live = index.directory / row.dirname
            trash = index.directory / (
                f"{TRASH_PREFIX}{row.uidvalidity}{TRASH_PREFIX}{row.dirname}"
            )
            try:
                if live.exists():
                    os.rename(live, trash)
                    fsync_dir(index.directory)
            except OSError as exc:
                raise StorageError(f"cannot delete mailbox {name!r}: {exc}") from exc
            try:
                with transaction(index.conn):
                    index.conn.execute("DELETE FROM messages WHERE mailbox = ?", (name,))
                    index.conn.execute("DELETE FROM expunged WHERE mailbox = ?", (name,))
                    index.conn.execute("DELETE FROM mailboxes WHERE name = ?", (name,))
            except BaseException:
                if trash.exists() and not live.exists():
                    os.rename(trash, live)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        self._notify(user, [name])

    def mailbox_info(self, user: str, name: str) -> MailboxInfo:
        with self._lock:
            index = self._user(user)
            with snapshot(index.conn):  # UIDNEXT and EXISTS from one state, whoever writes
                row = self._row(index, normalize_mailbox_name(name))
                (exists,) = index.conn.execute(
                    "SELECT COUNT(*) FROM messages WHERE mailbox = ?", (row.name,)
                ).fetchone()
            return MailboxInfo(row.name, row.uidvalidity, row.uidnext, int(exists), row.version)

    def messages(self, user: str, name: str) -> list[MessageInfo]:
        with self._lock:
            index = self._user(user)
            row = self._row(index, normalize_mailbox_name(name))
            cursor = index.conn.execute(
                "SELECT uid, flags, internaldate, size, modseq FROM messages WHERE mailbox = ?"
                " ORDER BY uid",
                (row.name,),
            )
            return [
                MessageInfo(
                    int(uid), decode_flags(flags), datetime.fromisoformat(date), int(size),
                    int(modseq),
                )
                for uid, flags, date, size, modseq in cursor
            ]

    def read(self, user: str, name: str, uid: int) -> bytes:
        with self._lock:
            index = self._user(user)
            row = self._row(index, normalize_mailbox_name(name))
            base, location, _ = self._message(index, row.name, uid)
            data = self._read_file(index.directory / row.dirname, base, location)
            if data is not None:
                return data
            # The file is gone. An expunge in another process removes the files first and then
            # the rows, under the user's write lock: once that lock is ours the index tells
            # whether the message was expunged (NoSuchMessage, RFC 5530 EXPUNGEISSUED) or its
            # file is lost (a storage failure).
            with self._writing(user) as index:
                row = self._row(index, normalize_mailbox_name(name))
                base, location, _ = self._message(index, row.name, uid)
                data = self._read_file(index.directory / row.dirname, base, location)
                if data is None:
                    raise StorageError(f"cannot read message {uid}: its file {base} is missing")
                return data

    def _read_file(self, mailbox_dir: Path, base: str, location: str) -> bytes | None:
        """The message file's content; None when it is not there."""
        for _ in range(3):
            path = self._find(mailbox_dir, base, location)
            if path is None:
                return None
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                continue  # renamed (a flag change in another process) since the look: again
            except OSError as exc:
                raise StorageError(f"cannot read message file {base}: {exc}") from exc
            with open(fd, "rb") as f:
                return f.read()
        return None

    def append(
        self,
        user: str,
        name: str,
        data: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
        *,
        delivery: str | None = None,
    ) -> int:
        flagset = normalize_flags(flags)
        date = check_internaldate(internaldate)
        data = bytes(data)
        tag = delivery_tag(delivery) if delivery is not None else None
        with self._writing(user) as index:
            row = self._row(index, normalize_mailbox_name(name))
            if tag is not None:
                done = index.conn.execute("SELECT uid FROM deliveries WHERE tag = ?",
                                          (tag,)).fetchone()
                if done is not None:
                    return int(done[0])
            mailbox_dir = index.directory / row.dirname
            base = self._unique_name(tag)
            tmp = mailbox_dir / "tmp" / base
            location = file_location(base, flagset, in_new=True)
            final = mailbox_dir / location
            try:
                write_new_file(tmp, data)
                os.rename(tmp, final)
                fsync_dir(final.parent)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                final.unlink(missing_ok=True)
                raise StorageError(f"cannot store message: {exc}") from exc
            try:
                with transaction(index.conn):
                    (uid,) = index.conn.execute(
                        "SELECT uidnext FROM mailboxes WHERE name = ?", (row.name,)
                    ).fetchone()
                    if uid > MAX_UID:
                        raise StorageError("UID space of the mailbox is exhausted")
                    index.conn.execute(
                        "INSERT INTO messages (mailbox, uid, filename, location, flags,"
                        " internaldate, size, modseq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            row.name,
                            uid,
                            base,
                            location,
                            encode_flags(flagset),
                            date.isoformat(),
                            len(data),
                            row.version + 1,  # the version this change moves the mailbox to
                        ),
                    )
                    index.conn.execute(
                        "UPDATE mailboxes SET uidnext = uidnext + 1, version = version + 1"
                        " WHERE name = ?",
                        (row.name,),
                    )
                    if tag is not None:
                        # In the transaction that indexes the message: a crash leaves both or
                        # neither (and a file written but not indexed carries the tag in its
                        # name, for _reconcile).
                        index.conn.execute(
                            "INSERT INTO deliveries (tag, mailbox, uid, created)"
                            " VALUES (?, ?, ?, ?)", (tag, row.name, uid, time.time()))
            except BaseException:
                # Not committed: take the file back out, or recovery would deliver it later.
                final.unlink(missing_ok=True)
                raise
        self._notify(user, [row.name])
        return int(uid)

    def change_flags(self, user: str, name: str, uid: int,
                     change: Callable[[frozenset[str]], frozenset[str]], *,
                     stale_version: int | None = None) -> tuple[frozenset[str], int]:
        with self._writing(user) as index:
            row = self._row(index, normalize_mailbox_name(name))
            base, location, old = self._message(index, row.name, uid)
            # Under the writer's lock, from the flags as they are now: a change another session
            # made a moment ago is kept (a STORE +FLAGS adds to it, never writes over it).
            new = normalize_flags(change(old))
            if old == new:
                (modseq,) = index.conn.execute(
                    "SELECT modseq FROM messages WHERE mailbox = ? AND uid = ?", (row.name, uid)
                ).fetchone()
                return old, int(modseq)
            mailbox_dir = index.directory / row.dirname
            new_location = file_location(base, new, in_new=False)
            if new_location != location:
                # The file name only mirrors the system flags; the index is authoritative.
                # Renaming first is safe: a stale location is found again by its base name.
                current = self._locate(mailbox_dir, base, location)
                target = mailbox_dir / new_location
                try:
                    os.rename(current, target)
                    fsync_dir(target.parent)
                    if current.parent != target.parent:
                        fsync_dir(current.parent)
                except OSError as exc:
                    raise StorageError(f"cannot update flags of {uid}: {exc}") from exc
            modseq = row.version + 1  # the version this change moves the mailbox to
            if stale_version is not None:  # quirk imap_modseq_race
                (own,) = index.conn.execute(
                    "SELECT modseq FROM messages WHERE mailbox = ? AND uid = ?", (row.name, uid)
                ).fetchone()
                modseq = max(stale_version + 1, int(own) + 1)
            with transaction(index.conn):
                index.conn.execute(
                    "UPDATE messages SET flags = ?, location = ?, modseq = ?"
                    " WHERE mailbox = ? AND uid = ?",
                    (encode_flags(new), new_location, modseq, row.name, uid),
                )
                index.conn.execute(
                    "UPDATE mailboxes SET version = version + 1 WHERE name = ?", (row.name,)
                )
        self._notify(user, [row.name])
        return new, modseq

    def expunge(self, user: str, name: str, uids: Iterable[int]) -> list[int]:
        wanted = set(uids)
        with self._writing(user) as index:
            row = self._row(index, normalize_mailbox_name(name))
            mailbox_dir = index.directory / row.dirname
            found = [
                (int(uid), str(base), str(location))
                for uid, base, location in index.conn.execute(
                    "SELECT uid, filename, location FROM messages WHERE mailbox = ? ORDER BY uid",
                    (row.name,),
                )
                if uid in wanted
            ]
            if not found:
                return []
            # Files go first, then the rows: a crash in between leaves rows without files,
            # which recovery drops — never an expunged message that comes back.
            try:
                for _, base, location in found:
                    path = self._find(mailbox_dir, base, location)
                    if path is not None:
                        path.unlink(missing_ok=True)
                fsync_dir(mailbox_dir / "new")
                fsync_dir(mailbox_dir / "cur")
            except OSError as exc:
                raise StorageError(f"cannot expunge: {exc}") from exc
            removed = [uid for uid, _, _ in found]
            with transaction(index.conn):
                index.conn.executemany(
                    "DELETE FROM messages WHERE mailbox = ? AND uid = ?",
                    [(row.name, uid) for uid in removed],
                )
                index.conn.execute(
                    "UPDATE mailboxes SET version = version + 1 WHERE name = ?", (row.name,)
                )
                record_expunged(index.conn, row.name, removed)
        self._notify(user, [row.name])
        return removed

    def vanished(self, user: str, name: str, since: int) -> list[int]:
        with self._lock:
            index = self._user(user)
            row = self._row(index, normalize_mailbox_name(name))
            return [int(uid) for (uid,) in index.conn.execute(
                "SELECT uid FROM expunged WHERE mailbox = ? AND modseq > ? ORDER BY uid",
                (row.name, since))]

    def version(self, user: str, name: str) -> int:
        with self._lock:
            index = self._user(user)
            return self._row(index, normalize_mailbox_name(name)).version

    def usage(self, user: str, name: str | None = None) -> tuple[int, int]:
        with self._lock:
            index = self._user(user)
            if name is None:
                row = index.conn.execute(
                    "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages").fetchone()
            else:
                mailbox = self._row(index, normalize_mailbox_name(name)).name
                row = index.conn.execute(
                    "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM messages WHERE mailbox = ?",
                    (mailbox,)).fetchone()
            return int(row[0]), int(row[1])

    def rename_mailbox(self, user: str, old: str, new: str) -> None:
        with self._writing(user) as index:
            old = normalize_mailbox_name(old)
            new = normalize_mailbox_name(strip_declaration(new))
            existing = [str(r[0]) for r in index.conn.execute("SELECT name FROM mailboxes")]
            plan = rename_plan(old, new, existing)
            parents = missing_with_parents(new, existing)[:-1]
            if old == INBOX:
                self._rename_inbox(index, new, parents)
            else:
                with transaction(index.conn):
                    for parent in parents:
                        self._create_mailbox(index, parent)
                    for src, dst in plan:
                        row = self._row(index, src)
                        index.conn.execute(
                            "UPDATE mailboxes SET name = ?, version = version + 1"
                            " WHERE name = ?", (dst, src))
                        index.conn.execute(
                            "UPDATE messages SET mailbox = ? WHERE mailbox = ?", (dst, src))
                        index.conn.execute(
                            "UPDATE expunged SET mailbox = ? WHERE mailbox = ?", (dst, src))
                        try:
                            replace_file(index.directory / row.dirname / NAME_FILE,
                                          dst.encode("utf-8"))
                        except OSError as exc:
                            raise StorageError(f"cannot rename mailbox: {exc}") from exc
        self._notify(user, [old, new, *parents, *(n for pair in plan for n in pair)])

    def _rename_inbox(self, index: UserIndex, new: str, parents: list[str]) -> None:
        """RFC 9051 §6.3.6: renaming INBOX moves all its messages to a new mailbox with the
        given name, leaving INBOX empty. Files move first, then the rows: a crash in between
        leaves files that recovery adopts into the new mailbox, never a lost message."""
        with transaction(index.conn):
            for parent in parents:
                self._create_mailbox(index, parent)
            self._create_mailbox(index, new)
        src = self._row(index, INBOX)
        dst = self._row(index, new)
        rows = index.conn.execute(
            "SELECT uid, filename, location FROM messages WHERE mailbox = ?", (INBOX,)
        ).fetchall()
        src_dir = index.directory / src.dirname
        dst_dir = index.directory / dst.dirname
        moved: list[tuple[int, str]] = []
        try:
            for uid, base, location in rows:
                path = self._find(src_dir, str(base), str(location))
                if path is None:
                    continue
                target = dst_dir / path.parent.name / path.name
                os.rename(path, target)
                moved.append((int(uid), f"{path.parent.name}/{path.name}"))
            for sub in ("new", "cur"):
                fsync_dir(src_dir / sub)
                fsync_dir(dst_dir / sub)
        except OSError as exc:
            raise StorageError(f"cannot rename INBOX: {exc}") from exc
        with transaction(index.conn):
            for uid, location in moved:
                index.conn.execute(
                    "UPDATE messages SET mailbox = ?, location = ? WHERE mailbox = ? AND uid = ?",
                    (new, location, INBOX, uid))
            index.conn.execute("DELETE FROM messages WHERE mailbox = ?", (INBOX,))
            # The version (HIGHESTMODSEQ) goes above every moved message's mod-sequence.
            index.conn.execute(
                "UPDATE mailboxes SET uidnext = ?, version = MAX(version, ?) + 1 WHERE name = ?",
                (src.uidnext, src.version, new))
            index.conn.execute(
                "UPDATE mailboxes SET version = version + 1 WHERE name = ?", (INBOX,))
            record_expunged(index.conn, INBOX, [int(uid) for uid, _, _ in rows])

    def subscriptions(self, user: str) -> list[str]:
        with self._lock:
            rows = self._user(user).conn.execute("SELECT name FROM subscriptions").fetchall()
            return sorted_mailboxes(str(r[0]) for r in rows)

    def set_subscribed(self, user: str, name: str, subscribed: bool) -> None:
        with self._writing(user) as index:
            name = normalize_mailbox_name(name)
            with transaction(index.conn):
                if subscribed:
                    index.conn.execute(
                        "INSERT OR IGNORE INTO subscriptions (name) VALUES (?)", (name,))
                else:
                    index.conn.execute("DELETE FROM subscriptions WHERE name = ?", (name,))

    def take_recent(self, user: str, name: str, *, upto: int | None) -> int:
        with self._writing(user) as index:
            row = self._row(index, normalize_mailbox_name(name))
            (before,) = index.conn.execute(
                "SELECT recent FROM mailboxes WHERE name = ?", (row.name,)).fetchone()
            if upto is not None and upto > before:
                with transaction(index.conn):
                    index.conn.execute("UPDATE mailboxes SET recent = ? WHERE name = ?",
                                       (upto, row.name))
            return int(before)

    def force_uidnext(self, user: str, name: str, uidnext: int) -> None:
        with self._writing(user) as index:
            row = self._row(index, normalize_mailbox_name(name))
            with transaction(index.conn):
                index.conn.execute("UPDATE mailboxes SET uidnext = ? WHERE name = ?",
                                   (max(1, uidnext), row.name))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for index in self._users.values():
                index.conn.close()
                os.close(index.lock_fd)
            self._users.clear()
            if self._lock_fd >= 0:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)

    # ---- internals (called with the lock held)

    def _unique_name(self, tag: str | None = None) -> str:
        # Maildir unique name: time, then M<usec>P<pid>Q<delivery> and random bits (and D<tag>
        # for a final delivery), then a fixed host part (we never ask the system for its
        # hostname).
        now = time.time()
        return (
            f"{int(now)}.M{int(now % 1 * 1_000_000)}P{os.getpid()}Q{next(self._deliveries)}"
            f"R{secrets.token_hex(4)}{'D' + tag if tag else ''}.mailharness"
        )

    def _user(self, user: str) -> UserIndex:
        self._check_open()
        check_user(user)
        index = self._users.get(user)
        if index is None:
            index = self._open_user(user)
            self._users[user] = index
        return index

    def _open_user(self, user: str) -> UserIndex:
        directory = self.user_path(user)
        try:
            if not directory.exists():
                directory.mkdir(exist_ok=True)
                fsync_dir(self._root)
            lock_fd = os.open(directory / USER_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open the mail index of {user!r}: {exc}") from exc
        try:
            conn = sqlite3.connect(
                directory / INDEX_FILE, check_same_thread=False, isolation_level=None,
                timeout=30.0,
            )
        except sqlite3.Error as exc:
            os.close(lock_fd)
            raise StorageError(f"cannot open the mail index of {user!r}: {exc}") from exc
        try:
            if self._shared:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(SCHEMA)
            # An index written before \Recent and mod-sequences were kept gains their columns.
            add_column(conn, "mailboxes", "recent", "INTEGER NOT NULL DEFAULT 0")
            add_column(conn, "messages", "modseq", "INTEGER NOT NULL DEFAULT 1")
            add_column(conn, "mailboxes", "special_use", "TEXT NOT NULL DEFAULT ''")
            index = UserIndex(directory, conn, lock_fd)
            with transaction(conn):
                if self._recovering:
                    self._recover(index)
                    conn.execute("DELETE FROM deliveries WHERE created < ?",
                                 (time.time() - DELIVERY_MEMORY,))
                names = {str(r[0]) for r in conn.execute("SELECT name FROM mailboxes")}
                for name in (INBOX, JUNK):
                    if name not in names:
                        self._create_mailbox(index, name)
        except BaseException as exc:
            conn.close()
            os.close(lock_fd)
            if isinstance(exc, sqlite3.Error | OSError) and not isinstance(exc, StorageError):
                raise StorageError(f"cannot open the mail index of {user!r}: {exc}") from exc
            raise
        if self._shared:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
        return index

    def _row(self, index: UserIndex, name: str) -> MailboxRow:
        found = index.conn.execute(
            "SELECT name, dirname, uidvalidity, uidnext, version FROM mailboxes WHERE name = ?",
            (name,),
        ).fetchone()
        if found is None:
            raise NoSuchMailbox(name)
        return MailboxRow(str(found[0]), str(found[1]), *(int(v) for v in found[2:]))

    def _message(self, index: UserIndex, name: str, uid: int) -> tuple[str, str, frozenset[str]]:
        found = index.conn.execute(
            "SELECT filename, location, flags FROM messages WHERE mailbox = ? AND uid = ?",
            (name, uid),
        ).fetchone()
        if found is None:
            raise NoSuchMessage(uid)
        return str(found[0]), str(found[1]), decode_flags(str(found[2]))

    @staticmethod
    def _find(mailbox_dir: Path, base: str, location: str) -> Path | None:
        """The file of message *base*: at its recorded location, or wherever its base name is
        found in new/ or cur/ (the index may lag behind a rename)."""
        path = mailbox_dir / location
        if path.is_file():
            return path
        for sub in ("cur", "new"):
            for entry in os.scandir(mailbox_dir / sub):
                if entry.name == base or entry.name.startswith(base + ":"):
                    return Path(entry.path)
        return None

    def _locate(self, mailbox_dir: Path, base: str, location: str) -> Path:
        path = self._find(mailbox_dir, base, location)
        if path is None:
            raise StorageError(f"message file {base} is missing")
        return path

    def _new_uidvalidity(self, conn: sqlite3.Connection, floor: int = 1) -> int:
        found = conn.execute("SELECT value FROM meta WHERE key = 'last_uidvalidity'").fetchone()
        last = int(found[0]) if found else 0
        # RFC 9051 §2.3.1.1: "If unique identifiers from an earlier session fail to persist in
        # this session, the unique identifier validity value MUST be greater than the one used
        # in the earlier session." Each new mailbox (also a re-created one) takes a fresh,
        # strictly larger value.
        value = max(int(time.time()), last + 1, floor)
        if value > MAX_UID:
            raise StorageError("UIDVALIDITY space exhausted")
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_uidvalidity', ?)", (value,)
        )
        return value

    def _create_mailbox(
        self, index: UserIndex, name: str, dirname: str | None = None, floor: int = 1
    ) -> None:
        """Insert the row and make the directories (inside the caller's transaction). A crash
        before the commit leaves a directory naming its mailbox, which recovery adopts. The
        UIDVALIDITY is also recorded in the directory, so that a mailbox re-indexed after the
        index was lost gets a strictly larger one."""
        validity = self._new_uidvalidity(index.conn, floor)
        if dirname is None:
            dirname = encode_path_component(name)
            if (index.directory / dirname).exists():
                dirname = f"{dirname}+{secrets.token_hex(8)}"
            self._make_maildir(index.directory / dirname, name)
        try:
            replace_file(index.directory / dirname / VALIDITY_FILE, str(validity).encode())
        except OSError as exc:
            raise StorageError(f"cannot create mailbox directory: {exc}") from exc
        index.conn.execute(
            "INSERT INTO mailboxes (name, dirname, uidvalidity, uidnext, version)"
            " VALUES (?, ?, ?, 1, 1)",
            (name, dirname, validity),
        )

    @staticmethod
    def _make_maildir(path: Path, name: str) -> None:
        try:
            path.mkdir(exist_ok=True)
            for sub in ("tmp", "new", "cur"):
                (path / sub).mkdir(exist_ok=True)
            name_file = path / NAME_FILE
            if not name_file.exists():
                write_new_file(name_file, name.encode("utf-8"))
            fsync_dir(path)
            fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot create mailbox directory: {exc}") from exc

    def _recover(self, index: UserIndex) -> None:
        """Bring the index and the directories back in step (inside a transaction)."""
        conn = index.conn
        rows = {
            str(r[0]): str(r[1]) for r in conn.execute("SELECT name, dirname FROM mailboxes")
        }
        uidvalidities = {
            str(r[0]): int(r[1])
            for r in conn.execute("SELECT dirname, uidvalidity FROM mailboxes")
        }
        dirnames = set(rows.values())
        known = set(rows)
        for entry in sorted(os.scandir(index.directory), key=lambda e: e.name):
            if not entry.is_dir(follow_symlinks=False):
                continue
            if entry.name.startswith(TRASH_PREFIX):
                # An interrupted delete_mailbox: undo it if the row survived, else finish it.
                _, _, rest = entry.name.partition(TRASH_PREFIX)
                validity, _, dirname = rest.partition(TRASH_PREFIX)
                live = index.directory / dirname
                if uidvalidities.get(dirname) == _int_or_none(validity) and not live.exists():
                    os.rename(entry.path, live)
                    fsync_dir(index.directory)
                else:
                    shutil.rmtree(entry.path)
            elif entry.name not in dirnames:
                self._adopt(index, Path(entry.path), known)
        for name, dirname in conn.execute("SELECT name, dirname FROM mailboxes").fetchall():
            mailbox_dir = index.directory / str(dirname)
            self._make_maildir(mailbox_dir, str(name))
            self._reconcile(index, str(name), mailbox_dir)

    def _adopt(self, index: UserIndex, path: Path, known: set[str]) -> None:
        """A mailbox directory the index does not know (a CREATE cut short, or a lost index):
        index it under the name it records, so none of its messages is lost."""
        try:
            name = normalize_mailbox_name((path / NAME_FILE).read_text("utf-8"))
        except (OSError, UnicodeDecodeError, InvalidMailboxName):
            _log.warning("ignoring unknown directory %s in the mail store", path)
            return
        if name in known:
            _log.warning("ignoring %s: mailbox %r is already indexed", path, name)
            return
        try:
            previous = int((path / VALIDITY_FILE).read_text("ascii").strip())
        except (OSError, ValueError):
            previous = int(time.time())
        # Its messages get new UIDs, so the UIDVALIDITY must move past the old one.
        self._create_mailbox(index, name, dirname=path.name, floor=previous + 1)
        known.add(name)

    def _reconcile(self, index: UserIndex, name: str, mailbox_dir: Path) -> None:
        conn = index.conn
        for entry in os.scandir(mailbox_dir / "tmp"):
            # Maildir: a file still in tmp/ was never delivered.
            if entry.is_file(follow_symlinks=False) or entry.is_symlink():
                os.unlink(entry.path)
        files: dict[str, str] = {}
        for sub in ("new", "cur"):  # cur/ wins over new/ if both hold the same base
            for entry in os.scandir(mailbox_dir / sub):
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                files[entry.name.partition(":")[0]] = f"{sub}/{entry.name}"
        changed = False
        vanished: list[int] = []
        for uid, base, location in conn.execute(
            "SELECT uid, filename, location FROM messages WHERE mailbox = ?", (name,)
        ).fetchall():
            actual = files.pop(str(base), None)
            if actual is None:
                conn.execute("DELETE FROM messages WHERE mailbox = ? AND uid = ?", (name, uid))
                vanished.append(int(uid))
                changed = True
            elif actual != location:
                conn.execute(
                    "UPDATE messages SET location = ? WHERE mailbox = ? AND uid = ?",
                    (actual, name, uid),
                )
        orphans = []
        for base, location in files.items():
            stat = os.stat(mailbox_dir / location)
            orphans.append((stat.st_mtime, base, location, stat.st_size))
        for mtime, base, location, size in sorted(orphans):
            (uid,) = conn.execute(
                "SELECT uidnext FROM mailboxes WHERE name = ?", (name,)
            ).fetchone()
            flags = flags_from_filename(location) if location.startswith("cur/") else frozenset()
            date = datetime.fromtimestamp(int(mtime), UTC)
            conn.execute(
                "INSERT INTO messages (mailbox, uid, filename, location, flags, internaldate,"
                " size, modseq) VALUES (?, ?, ?, ?, ?, ?, ?,"
                " (SELECT version + 1 FROM mailboxes WHERE name = ?))",
                (name, uid, base, location, encode_flags(flags), date.isoformat(), size, name),
            )
            conn.execute("UPDATE mailboxes SET uidnext = uidnext + 1 WHERE name = ?", (name,))
            tagged = _DELIVERY_TAG.search(base)
            if tagged is not None:
                # A final delivery written before a crash and indexed only now: it is done, so
                # the retry that follows must not store it again.
                conn.execute("INSERT OR IGNORE INTO deliveries (tag, mailbox, uid, created)"
                             " VALUES (?, ?, ?, ?)", (tagged[1], name, uid, time.time()))
            changed = True
        if changed:
            conn.execute("UPDATE mailboxes SET version = version + 1 WHERE name = ?", (name,))
            record_expunged(conn, name, vanished)
        if files:
            _log.warning("recovered %d unindexed message(s) in %s", len(files), mailbox_dir)


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None

