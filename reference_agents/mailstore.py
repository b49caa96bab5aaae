"""Users' mailboxes and messages: `MailStore` protocol, Maildir+SQLite and in-memory backends."""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import logging
import os
import secrets
import shutil
import sqlite3
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from harness.protocol.imap.chars import ATOM_SPECIALS, BACKSLASH
from reference_agents.durable import fsync_dir, replace_file, write_new_file

_log = logging.getLogger(__name__)

INBOX = "INBOX"
JUNK = "Junk"
#: The hierarchy delimiter of mailbox names.
DELIMITER = "/"
#: Longest mailbox name accepted (characters).
MAX_NAME_LENGTH = 255
#: UIDs and UIDVALIDITY values are "unsigned non-zero 32-bit" values (RFC 9051 §2.3.1.1).
MAX_UID = 2**32 - 1

#: IMAP system flags (RFC 9051 §2.3.2), keyed by their lower-case spelling (they compare
#: case-insensitively); a flag given in another case is stored in this canonical one.
SYSTEM_FLAGS: types.MappingProxyType[str, str] = types.MappingProxyType(
    {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}
)
#: System flag -> Maildir info letter (cr.yp.to/proto/maildir.html); letters are written in
#: ASCII order.
_MAILDIR_LETTERS: types.MappingProxyType[str, str] = types.MappingProxyType(
    {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
)
_LETTER_FLAGS: types.MappingProxyType[str, str] = types.MappingProxyType(
    {v: k for k, v in _MAILDIR_LETTERS.items()}
)
#: Octets a flag cannot contain: the IMAP atom-specials (RFC 9051 §9 flag-keyword = atom,
#: flag-extension = "\" atom) other than the leading backslash.
_FLAG_FORBIDDEN = ATOM_SPECIALS - {BACKSLASH}

_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_MAX_DIRNAME = 200
_NAME_FILE = "mailharness-name"
_VALIDITY_FILE = "mailharness-uidvalidity"
_LOCK_FILE = "mailharness.lock"
_INDEX_FILE = "index.sqlite3"
_TRASH_PREFIX = "~"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """One message of a mailbox. ``internaldate`` is timezone-aware; ``size`` in octets."""

    uid: int
    flags: frozenset[str]
    internaldate: datetime
    size: int
    #: The mailbox version at the message's last change (its arrival or a flag change): the
    #: CONDSTORE mod-sequence (RFC 7162 §3).
    modseq: int = 1


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    """The state of one mailbox: what SELECT/STATUS report."""

    name: str
    uidvalidity: int
    uidnext: int
    exists: int
    #: The mailbox version, which every change moves up: HIGHESTMODSEQ (RFC 7162 §3.1.2.1).
    highestmodseq: int = 1


class NoSuchMailbox(KeyError):
    """The mailbox does not exist."""


class MailboxExists(ValueError):
    """CREATE of a name that refers to an extant mailbox."""


class NoSuchMessage(KeyError):
    """No message with that UID in the mailbox."""


class InvalidMailboxName(ValueError):
    """The name is not acceptable (syntax, length) or the operation is refused for it
    (deleting INBOX)."""


class StorageError(OSError):
    """The backing storage failed (I/O or index error); nothing was changed."""


class StoreLocked(RuntimeError):
    """Another MaildirStore (in this or another process) already has this root open."""


Listener = Callable[[str, str], None]


class MailStore(Protocol):
    """The mailboxes of every user of one provider.

    Every method is synchronous and thread-safe. ``user`` is the account's login name
    (``Account.username``); a user's INBOX and Junk are created on first use. Mailbox names use
    ``/`` as hierarchy delimiter; ``INBOX`` is case-insensitive. Storage failures raise
    `StorageError` (an ``OSError``)."""

    def list_mailboxes(self, user: str) -> list[str]: ...

    def create_mailbox(self, user: str, name: str) -> None: ...

    def delete_mailbox(self, user: str, name: str) -> None: ...

    def mailbox_info(self, user: str, name: str) -> MailboxInfo: ...

    def messages(self, user: str, name: str) -> list[MessageInfo]: ...

    def read(self, user: str, name: str, uid: int) -> bytes: ...

    def append(
        self,
        user: str,
        name: str,
        data: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> int: ...

    def set_flags(self, user: str, name: str, uid: int, flags: frozenset[str]) -> int:
        """Give the message *flags*; its mod-sequence afterwards (raised if they changed)."""
        ...

    def expunge(self, user: str, name: str, uids: Iterable[int]) -> list[int]: ...

    def vanished(self, user: str, name: str, since: int) -> list[int]:
        """The UIDs expunged from the mailbox with a mod-sequence above *since*, ascending: the
        mailbox version the expunge moved it to (RFC 7162 §3.2.6, VANISHED)."""
        ...

    def version(self, user: str, name: str) -> int: ...

    def add_listener(self, callback: Listener) -> None: ...

    def close(self) -> None: ...

    def rename_mailbox(self, user: str, old: str, new: str) -> None: ...

    def subscriptions(self, user: str) -> list[str]: ...

    def set_subscribed(self, user: str, name: str, subscribed: bool) -> None: ...

    def force_uidnext(self, user: str, name: str, uidnext: int) -> None: ...

    def take_recent(self, user: str, name: str, *, upto: int | None) -> int:
        """The highest UID some session has already been told of as ``\\Recent`` (RFC 3501
        §2.3.2); messages above it are recent to the caller. With *upto* (a read-write
        selection that has just been told of the messages up to that UID) the mark moves up to
        it, so that no later session sees them as recent; without (EXAMINE, STATUS) it stays."""
        ...


# --------------------------------------------------------------------------- pure helpers


def normalize_mailbox_name(name: str) -> str:
    """Validate *name* and return its canonical spelling (a first segment ``inbox`` in any case
    becomes ``INBOX``). Raise `InvalidMailboxName`."""
    if not isinstance(name, str) or not name:
        raise InvalidMailboxName("empty mailbox name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidMailboxName(f"mailbox name longer than {MAX_NAME_LENGTH} characters")
    if any(c in name for c in "\x00\r\n"):
        raise InvalidMailboxName("mailbox name contains NUL, CR or LF")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMailboxName("mailbox name is not valid Unicode") from None
    segments = name.split(DELIMITER)
    for segment in segments:
        if segment == "":
            raise InvalidMailboxName("mailbox name has an empty hierarchy level")
        if segment in (".", ".."):
            raise InvalidMailboxName("mailbox name has a '.' or '..' hierarchy level")
    if segments[0].upper() == INBOX:
        segments[0] = INBOX
    return DELIMITER.join(segments)


def normalize_flags(flags: Iterable[str]) -> frozenset[str]:
    """Validate flags and spell system flags canonically (``\\seen`` -> ``\\Seen``)."""
    if isinstance(flags, str | bytes):
        raise TypeError("flags must be an iterable of flag names, not a single string")
    result: set[str] = set()
    for flag in flags:
        if not isinstance(flag, str) or not flag:
            raise ValueError(f"invalid flag {flag!r}")
        if flag == "\\" or "\\" in flag[1:] or any(ord(c) in _FLAG_FORBIDDEN for c in flag):
            raise ValueError(f"invalid flag {flag!r}")
        result.add(SYSTEM_FLAGS.get(flag.lower(), flag))
    return frozenset(result)


def _check_user(user: str) -> str:
    if not isinstance(user, str) or not user:
        raise ValueError("empty user name")
    try:
        user.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("user name is not valid Unicode") from None
    return user


def _check_internaldate(internaldate: datetime | None) -> datetime:
    if internaldate is None:
        return datetime.now(UTC).replace(microsecond=0)
    if internaldate.tzinfo is None or internaldate.utcoffset() is None:
        raise ValueError("internaldate must be timezone-aware")
    return internaldate


def encode_path_component(name: str) -> str:
    """A directory name for *name* that cannot escape its parent: bytes outside
    ``[A-Za-z0-9_-]`` become ``%XX`` (so ``.``, ``/`` and NUL are encoded and the result never
    starts with a dot); a long result is cut and suffixed with ``+`` and a hash."""
    raw = name.encode("utf-8")
    encoded = "".join(chr(b) if b in _SAFE_BYTES else f"%{b:02X}" for b in raw)
    if len(encoded) > _MAX_DIRNAME:
        encoded = encoded[:160] + "+" + hashlib.sha256(raw).hexdigest()[:32]
    return encoded


def _maildir_info(flags: frozenset[str]) -> str:
    return "".join(sorted(_MAILDIR_LETTERS[f] for f in flags if f in _MAILDIR_LETTERS))


def _location(base: str, flags: frozenset[str], *, in_new: bool) -> str:
    """Where a message file lives inside its mailbox directory: ``new/<base>`` while it has no
    flags and was never moved, else ``cur/<base>:2,<letters>``."""
    if in_new and not flags:
        return f"new/{base}"
    return f"cur/{base}:2,{_maildir_info(flags)}"


def _flags_from_filename(filename: str) -> frozenset[str]:
    _, sep, info = filename.partition(":2,")
    if not sep:
        return frozenset()
    return frozenset(_LETTER_FLAGS[c] for c in info if c in _LETTER_FLAGS)


def _sorted_mailboxes(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda n: (n != INBOX, n))


# --------------------------------------------------------------------------- shared base


class _StoreBase:
    """Lock and listeners common to both backends."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._closed = False

    def add_listener(self, callback: Listener) -> None:
        with self._lock:
            self._listeners.append(callback)

    def _notify(self, user: str, names: Iterable[str]) -> None:
        """Call the listeners, outside the lock, after a change has been committed. A failing
        listener is logged: the change already happened and must not be reported as failed."""
        with self._lock:
            listeners = list(self._listeners)
        for name in names:
            for callback in listeners:
                try:
                    callback(user, name)
                except Exception:
                    _log.exception("mail store listener %r failed", callback)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("mail store is closed")


# --------------------------------------------------------------------------- memory backend


@dataclass(slots=True)
class _MemMessage:
    data: bytes
    flags: frozenset[str]
    internaldate: datetime
    modseq: int = 1


@dataclass(slots=True)
class _MemMailbox:
    uidvalidity: int
    uidnext: int = 1
    version: int = 1
    messages: dict[int, _MemMessage] = field(default_factory=dict)
    recent: int = 0  # highest UID a session was told of as \Recent
    expunged: dict[int, int] = field(default_factory=dict)  # UID -> mod-sequence of its expunge


class MemoryStore(_StoreBase):
    """A `MailStore` kept in memory, for fast unit tests. Same semantics as `MaildirStore`."""

    def __init__(self) -> None:
        super().__init__()
        self._users: dict[str, dict[str, _MemMailbox]] = {}
        self._subscriptions: dict[str, set[str]] = {}
        self._last_uidvalidity = 0

    def _new_uidvalidity(self) -> int:
        self._last_uidvalidity = max(int(time.time()), self._last_uidvalidity + 1)
        return self._last_uidvalidity

    def _mailboxes(self, user: str) -> dict[str, _MemMailbox]:
        self._check_open()
        _check_user(user)
        boxes = self._users.get(user)
        if boxes is None:
            boxes = {INBOX: _MemMailbox(self._new_uidvalidity())}
            boxes[JUNK] = _MemMailbox(self._new_uidvalidity())
            self._users[user] = boxes
        return boxes

    def _mailbox(self, user: str, name: str) -> _MemMailbox:
        name = normalize_mailbox_name(name)
        box = self._mailboxes(user).get(name)
        if box is None:
            raise NoSuchMailbox(name)
        return box

    def list_mailboxes(self, user: str) -> list[str]:
        with self._lock:
            return _sorted_mailboxes(self._mailboxes(user))

    def create_mailbox(self, user: str, name: str) -> None:
        with self._lock:
            boxes = self._mailboxes(user)
            name = normalize_mailbox_name(_strip_declaration(name))
            if name in boxes:
                raise MailboxExists(name)
            created = _missing_with_parents(name, boxes)
            for new in created:
                boxes[new] = _MemMailbox(self._new_uidvalidity())
        self._notify(user, created)

    def delete_mailbox(self, user: str, name: str) -> None:
        with self._lock:
            name = normalize_mailbox_name(name)
            if name == INBOX:
                raise InvalidMailboxName("INBOX cannot be deleted")
            boxes = self._mailboxes(user)
            if name not in boxes:
                raise NoSuchMailbox(name)
            del boxes[name]
        self._notify(user, [name])

    def mailbox_info(self, user: str, name: str) -> MailboxInfo:
        with self._lock:
            box = self._mailbox(user, name)
            return MailboxInfo(
                normalize_mailbox_name(name), box.uidvalidity, box.uidnext, len(box.messages),
                box.version,
            )

    def messages(self, user: str, name: str) -> list[MessageInfo]:
        with self._lock:
            box = self._mailbox(user, name)
            return [
                MessageInfo(uid, m.flags, m.internaldate, len(m.data), m.modseq)
                for uid, m in sorted(box.messages.items())
            ]

    def read(self, user: str, name: str, uid: int) -> bytes:
        with self._lock:
            box = self._mailbox(user, name)
            message = box.messages.get(uid)
            if message is None:
                raise NoSuchMessage(uid)
            return message.data

    def append(
        self,
        user: str,
        name: str,
        data: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> int:
        flagset = normalize_flags(flags)
        date = _check_internaldate(internaldate)
        with self._lock:
            box = self._mailbox(user, name)
            uid = box.uidnext
            if uid > MAX_UID:
                raise StorageError("UID space of the mailbox is exhausted")
            box.uidnext += 1
            box.version += 1
            box.messages[uid] = _MemMessage(bytes(data), flagset, date, box.version)
        self._notify(user, [normalize_mailbox_name(name)])
        return uid

    def set_flags(self, user: str, name: str, uid: int, flags: frozenset[str]) -> int:
        new = normalize_flags(flags)
        with self._lock:
            box = self._mailbox(user, name)
            message = box.messages.get(uid)
            if message is None:
                raise NoSuchMessage(uid)
            if message.flags == new:
                return message.modseq
            message.flags = new
            box.version += 1
            message.modseq = box.version
        self._notify(user, [normalize_mailbox_name(name)])
        return box.version

    def expunge(self, user: str, name: str, uids: Iterable[int]) -> list[int]:
        wanted = set(uids)
        with self._lock:
            box = self._mailbox(user, name)
            removed = sorted(uid for uid in wanted if uid in box.messages)
            for uid in removed:
                del box.messages[uid]
            if removed:
                box.version += 1
                box.expunged.update((uid, box.version) for uid in removed)
        if removed:
            self._notify(user, [normalize_mailbox_name(name)])
        return removed

    def vanished(self, user: str, name: str, since: int) -> list[int]:
        with self._lock:
            box = self._mailbox(user, name)
            return sorted(uid for uid, modseq in box.expunged.items() if modseq > since)

    def version(self, user: str, name: str) -> int:
        with self._lock:
            return self._mailbox(user, name).version

    def rename_mailbox(self, user: str, old: str, new: str) -> None:
        with self._lock:
            boxes = self._mailboxes(user)
            old = normalize_mailbox_name(old)
            new = normalize_mailbox_name(_strip_declaration(new))
            plan = _rename_plan(old, new, boxes)
            if old == INBOX:
                box = boxes[INBOX]
                # The version (HIGHESTMODSEQ) stays above every moved message's mod-sequence.
                moved = _MemMailbox(self._new_uidvalidity(), box.uidnext, box.version + 1,
                                    dict(box.messages))
                box.messages.clear()
                box.version += 1
                box.expunged.update((uid, box.version) for uid in moved.messages)
                for parent in _missing_with_parents(new, boxes)[:-1]:
                    boxes[parent] = _MemMailbox(self._new_uidvalidity())
                boxes[new] = moved
            else:
                for parent in _missing_with_parents(new, boxes)[:-1]:
                    boxes[parent] = _MemMailbox(self._new_uidvalidity())
                for src, dst in plan:
                    boxes[dst] = boxes.pop(src)
                    boxes[dst].version += 1
        self._notify(user, [old, new, *(n for pair in plan for n in pair)])

    def subscriptions(self, user: str) -> list[str]:
        with self._lock:
            self._mailboxes(user)
            return _sorted_mailboxes(self._subscriptions.get(user, set()))

    def set_subscribed(self, user: str, name: str, subscribed: bool) -> None:
        with self._lock:
            self._mailboxes(user)
            name = normalize_mailbox_name(name)
            names = self._subscriptions.setdefault(user, set())
            if subscribed:
                names.add(name)
            else:
                names.discard(name)

    def take_recent(self, user: str, name: str, *, upto: int | None) -> int:
        with self._lock:
            box = self._mailbox(user, name)
            before = box.recent
            if upto is not None:
                box.recent = max(box.recent, upto)
            return before

    def force_uidnext(self, user: str, name: str, uidnext: int) -> None:
        with self._lock:
            box = self._mailbox(user, name)
            box.uidnext = max(1, uidnext)

    def close(self) -> None:
        with self._lock:
            self._closed = True


def _strip_declaration(name: str) -> str:
    # RFC 9051 §6.3.4: "If the mailbox name is suffixed with the server's hierarchy separator
    # character ..., this is a declaration that the client intends to create mailbox names
    # under this name in the hierarchy.  Server implementations that do not require this
    # declaration MUST ignore the declaration."
    if isinstance(name, str) and len(name) > 1 and name.endswith(DELIMITER):
        return name[:-1]
    return name


def _missing_with_parents(name: str, existing: Iterable[str]) -> list[str]:
    # RFC 9051 §6.3.4: "If the server's hierarchy separator character appears elsewhere in the
    # name, the server SHOULD create any superior hierarchical names that are needed for the
    # CREATE command to be successfully completed."
    have = set(existing)
    segments = name.split(DELIMITER)
    wanted = [DELIMITER.join(segments[: i + 1]) for i in range(len(segments))]
    return [n for n in wanted if n not in have]


def _rename_plan(old: str, new: str, existing: Iterable[str]) -> list[tuple[str, str]]:
    """(from, to) pairs of RENAME *old* *new*: the mailbox and its inferiors (RFC 9051 §6.3.6:
    "If the name has inferior hierarchical names, then the inferior hierarchical names MUST
    also be renamed"); INBOX's inferiors stay. Raise NoSuchMailbox or MailboxExists."""
    names = set(existing)
    if old not in names:
        raise NoSuchMailbox(old)
    if new in names:
        raise MailboxExists(new)
    if old == INBOX:
        return []
    if new.startswith(old + DELIMITER):
        raise InvalidMailboxName("cannot rename a mailbox into its own hierarchy")
    plan = [(old, new)]
    plan += [(n, new + n[len(old):]) for n in sorted(names) if n.startswith(old + DELIMITER)]
    for _, dst in plan:
        if dst in names:
            raise MailboxExists(dst)
        normalize_mailbox_name(dst)
    return plan


# --------------------------------------------------------------------------- Maildir backend


@dataclass(frozen=True, slots=True)
class _MailboxRow:
    name: str
    dirname: str
    uidvalidity: int
    uidnext: int
    version: int


@dataclass(frozen=True, slots=True)
class _UserIndex:
    directory: Path
    conn: sqlite3.Connection


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mailboxes (
    name TEXT PRIMARY KEY,
    dirname TEXT NOT NULL UNIQUE,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    version INTEGER NOT NULL,
    recent INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    mailbox TEXT NOT NULL,
    uid INTEGER NOT NULL,
    filename TEXT NOT NULL,
    location TEXT NOT NULL,
    flags TEXT NOT NULL,
    internaldate TEXT NOT NULL,
    size INTEGER NOT NULL,
    modseq INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (mailbox, uid),
    UNIQUE (mailbox, filename)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS expunged (
    mailbox TEXT NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    PRIMARY KEY (mailbox, uid)
);
"""


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction; rolled back on any exception. SQLite errors become
    `StorageError`."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StorageError(f"mail index: {exc}") from exc


def _add_column(conn: sqlite3.Connection, table: str, column: str, declaration: str) -> None:
    """Add *column* to *table* of an index written before it existed."""
    if column not in {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def _record_expunged(conn: sqlite3.Connection, name: str, uids: Iterable[int]) -> None:
    """Remember *uids* as expunged at the mailbox's current version (which the caller has just
    moved up), for VANISHED (RFC 7162 §3.2.6)."""
    conn.executemany("INSERT OR REPLACE INTO expunged (mailbox, uid, modseq)"
                     " VALUES (?, ?, (SELECT version FROM mailboxes WHERE name = ?))",
                     [(name, uid, name) for uid in uids])


def _encode_flags(flags: frozenset[str]) -> str:
    return " ".join(sorted(flags))


def _decode_flags(text: str) -> frozenset[str]:
    return frozenset(text.split())


class MaildirStore(_StoreBase):
    """A `MailStore` on disk: one Maildir (tmp/new/cur) per mailbox under
    ``root/<user-dir>/<mailbox-dir>``, and one SQLite index per user
    (``root/<user-dir>/index.sqlite3``, WAL) holding UIDs, flags and UIDVALIDITY.

    Delivery is atomic: the message is written to tmp/ and fsynced, renamed into new/ (or cur/
    when it has flags), the directory fsynced, and only then is the index row committed, with
    its UID taken from ``uidnext`` in the same transaction. On first use of a user a recovery
    pass indexes files the index does not know (a crash between rename and commit), drops rows
    whose file is gone, and removes stale tmp/ files. Only one store may have a root open."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self._root = Path(root)
        self._root.mkdir(parents=True, exist_ok=True)
        self._users: dict[str, _UserIndex] = {}
        self._deliveries = itertools.count(1)
        self._lock_fd = os.open(self._root / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise StoreLocked(f"{self._root} is already open in another MaildirStore") from None

    def __enter__(self) -> MaildirStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def root(self) -> Path:
        return self._root

    def user_path(self, user: str) -> Path:
        """The directory of *user* (it holds the index and one directory per mailbox)."""
        return self._root / encode_path_component(_check_user(user))

    def mailbox_path(self, user: str, name: str) -> Path:
        """The Maildir directory (containing tmp/, new/, cur/) of an existing mailbox."""
        with self._lock:
            index = self._user(user)
            return index.directory / self._row(index, normalize_mailbox_name(name)).dirname

    # ---- public API

    def list_mailboxes(self, user: str) -> list[str]:
        with self._lock:
            rows = self._user(user).conn.execute("SELECT name FROM mailboxes").fetchall()
            return _sorted_mailboxes(str(r[0]) for r in rows)

    def create_mailbox(self, user: str, name: str) -> None:
        with self._lock:
            index = self._user(user)
            name = normalize_mailbox_name(_strip_declaration(name))
            existing = [str(r[0]) for r in index.conn.execute("SELECT name FROM mailboxes")]
            if name in existing:
                raise MailboxExists(name)
            created = _missing_with_parents(name, existing)
            with _transaction(index.conn):
                for new in created:
                    self._create_mailbox(index, new)
        self._notify(user, created)

    def delete_mailbox(self, user: str, name: str) -> None:
        with self._lock:
            name = normalize_mailbox_name(name)
            if name == INBOX:
                # RFC 9051 §6.3.5: "It is an error to attempt to delete INBOX or a mailbox name
                # that does not exist."
                raise InvalidMailboxName("INBOX cannot be deleted")
            index = self._user(user)
            row = self._row(index, name)
            # Move the directory aside first: if we die before the commit, recovery sees the
            # row and moves it back; after the commit, recovery finishes removing it.
            live = index.directory / row.dirname
            trash = index.directory / (
                f"{_TRASH_PREFIX}{row.uidvalidity}{_TRASH_PREFIX}{row.dirname}"
            )
            try:
                if live.exists():
                    os.rename(live, trash)
                    fsync_dir(index.directory)
            except OSError as exc:
                raise StorageError(f"cannot delete mailbox {name!r}: {exc}") from exc
            try:
                with _transaction(index.conn):
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
                    int(uid), _decode_flags(flags), datetime.fromisoformat(date), int(size),
                    int(modseq),
                )
                for uid, flags, date, size, modseq in cursor
            ]

    def read(self, user: str, name: str, uid: int) -> bytes:
        with self._lock:
            index = self._user(user)
            row = self._row(index, normalize_mailbox_name(name))
            base, location, _ = self._message(index, row.name, uid)
            path = self._locate(index.directory / row.dirname, base, location)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError as exc:
                raise StorageError(f"cannot read message {uid}: {exc}") from exc
            with open(fd, "rb") as f:
                return f.read()

    def append(
        self,
        user: str,
        name: str,
        data: bytes,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
    ) -> int:
        flagset = normalize_flags(flags)
        date = _check_internaldate(internaldate)
        data = bytes(data)
        with self._lock:
            index = self._user(user)
            row = self._row(index, normalize_mailbox_name(name))
            mailbox_dir = index.directory / row.dirname
            base = self._unique_name()
            tmp = mailbox_dir / "tmp" / base
            location = _location(base, flagset, in_new=True)
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
                with _transaction(index.conn):
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
                            _encode_flags(flagset),
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
            except BaseException:
                # Not committed: take the file back out, or recovery would deliver it later.
                final.unlink(missing_ok=True)
                raise
        self._notify(user, [row.name])
        return int(uid)

    def set_flags(self, user: str, name: str, uid: int, flags: frozenset[str]) -> int:
        new = normalize_flags(flags)
        with self._lock:
            index = self._user(user)
            row = self._row(index, normalize_mailbox_name(name))
            base, location, old = self._message(index, row.name, uid)
            if old == new:
                (modseq,) = index.conn.execute(
                    "SELECT modseq FROM messages WHERE mailbox = ? AND uid = ?", (row.name, uid)
                ).fetchone()
                return int(modseq)
            mailbox_dir = index.directory / row.dirname
            new_location = _location(base, new, in_new=False)
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
            with _transaction(index.conn):
                index.conn.execute(
                    "UPDATE messages SET flags = ?, location = ?, modseq = ?"
                    " WHERE mailbox = ? AND uid = ?",
                    (_encode_flags(new), new_location, modseq, row.name, uid),
                )
                index.conn.execute(
                    "UPDATE mailboxes SET version = version + 1 WHERE name = ?", (row.name,)
                )
        self._notify(user, [row.name])
        return modseq

    def expunge(self, user: str, name: str, uids: Iterable[int]) -> list[int]:
        wanted = set(uids)
        with self._lock:
            index = self._user(user)
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
            with _transaction(index.conn):
                index.conn.executemany(
                    "DELETE FROM messages WHERE mailbox = ? AND uid = ?",
                    [(row.name, uid) for uid in removed],
                )
                index.conn.execute(
                    "UPDATE mailboxes SET version = version + 1 WHERE name = ?", (row.name,)
                )
                _record_expunged(index.conn, row.name, removed)
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

    def rename_mailbox(self, user: str, old: str, new: str) -> None:
        with self._lock:
            index = self._user(user)
            old = normalize_mailbox_name(old)
            new = normalize_mailbox_name(_strip_declaration(new))
            existing = [str(r[0]) for r in index.conn.execute("SELECT name FROM mailboxes")]
            plan = _rename_plan(old, new, existing)
            parents = _missing_with_parents(new, existing)[:-1]
            if old == INBOX:
                self._rename_inbox(index, new, parents)
            else:
                with _transaction(index.conn):
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
                            replace_file(index.directory / row.dirname / _NAME_FILE,
                                          dst.encode("utf-8"))
                        except OSError as exc:
                            raise StorageError(f"cannot rename mailbox: {exc}") from exc
        self._notify(user, [old, new, *parents, *(n for pair in plan for n in pair)])

    def _rename_inbox(self, index: _UserIndex, new: str, parents: list[str]) -> None:
        """RFC 9051 §6.3.6: renaming INBOX moves all its messages to a new mailbox with the
        given name, leaving INBOX empty. Files move first, then the rows: a crash in between
        leaves files that recovery adopts into the new mailbox, never a lost message."""
        with _transaction(index.conn):
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
        with _transaction(index.conn):
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
            _record_expunged(index.conn, INBOX, [int(uid) for uid, _, _ in rows])

    def subscriptions(self, user: str) -> list[str]:
        with self._lock:
            rows = self._user(user).conn.execute("SELECT name FROM subscriptions").fetchall()
            return _sorted_mailboxes(str(r[0]) for r in rows)

    def set_subscribed(self, user: str, name: str, subscribed: bool) -> None:
        with self._lock:
            index = self._user(user)
            name = normalize_mailbox_name(name)
            with _transaction(index.conn):
                if subscribed:
                    index.conn.execute(
                        "INSERT OR IGNORE INTO subscriptions (name) VALUES (?)", (name,))
                else:
                    index.conn.execute("DELETE FROM subscriptions WHERE name = ?", (name,))

    def take_recent(self, user: str, name: str, *, upto: int | None) -> int:
        with self._lock:
            index = self._user(user)
            row = self._row(index, normalize_mailbox_name(name))
            (before,) = index.conn.execute(
                "SELECT recent FROM mailboxes WHERE name = ?", (row.name,)).fetchone()
            if upto is not None and upto > before:
                with _transaction(index.conn):
                    index.conn.execute("UPDATE mailboxes SET recent = ? WHERE name = ?",
                                       (upto, row.name))
            return int(before)

    def force_uidnext(self, user: str, name: str, uidnext: int) -> None:
        with self._lock:
            index = self._user(user)
            row = self._row(index, normalize_mailbox_name(name))
            with _transaction(index.conn):
                index.conn.execute("UPDATE mailboxes SET uidnext = ? WHERE name = ?",
                                   (max(1, uidnext), row.name))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for index in self._users.values():
                index.conn.close()
            self._users.clear()
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)

    # ---- internals (called with the lock held)

    def _unique_name(self) -> str:
        # Maildir unique name: time, then M<usec>P<pid>Q<delivery> and random bits, then a
        # fixed host part (we never ask the system for its hostname).
        now = time.time()
        return (
            f"{int(now)}.M{int(now % 1 * 1_000_000)}P{os.getpid()}Q{next(self._deliveries)}"
            f"R{secrets.token_hex(4)}.mailharness"
        )

    def _user(self, user: str) -> _UserIndex:
        self._check_open()
        _check_user(user)
        index = self._users.get(user)
        if index is None:
            index = self._open_user(user)
            self._users[user] = index
        return index

    def _open_user(self, user: str) -> _UserIndex:
        directory = self.user_path(user)
        try:
            if not directory.exists():
                directory.mkdir()
                fsync_dir(self._root)
            conn = sqlite3.connect(
                directory / _INDEX_FILE, check_same_thread=False, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the mail index of {user!r}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            # An index written before \Recent and mod-sequences were kept gains their columns.
            _add_column(conn, "mailboxes", "recent", "INTEGER NOT NULL DEFAULT 0")
            _add_column(conn, "messages", "modseq", "INTEGER NOT NULL DEFAULT 1")
            index = _UserIndex(directory, conn)
            with _transaction(conn):
                self._recover(index)
                names = {str(r[0]) for r in conn.execute("SELECT name FROM mailboxes")}
                for name in (INBOX, JUNK):
                    if name not in names:
                        self._create_mailbox(index, name)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error | OSError) and not isinstance(exc, StorageError):
                raise StorageError(f"cannot open the mail index of {user!r}: {exc}") from exc
            raise
        return index

    def _row(self, index: _UserIndex, name: str) -> _MailboxRow:
        found = index.conn.execute(
            "SELECT name, dirname, uidvalidity, uidnext, version FROM mailboxes WHERE name = ?",
            (name,),
        ).fetchone()
        if found is None:
            raise NoSuchMailbox(name)
        return _MailboxRow(str(found[0]), str(found[1]), *(int(v) for v in found[2:]))

    def _message(self, index: _UserIndex, name: str, uid: int) -> tuple[str, str, frozenset[str]]:
        found = index.conn.execute(
            "SELECT filename, location, flags FROM messages WHERE mailbox = ? AND uid = ?",
            (name, uid),
        ).fetchone()
        if found is None:
            raise NoSuchMessage(uid)
        return str(found[0]), str(found[1]), _decode_flags(str(found[2]))

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
        self, index: _UserIndex, name: str, dirname: str | None = None, floor: int = 1
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
            replace_file(index.directory / dirname / _VALIDITY_FILE, str(validity).encode())
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
            name_file = path / _NAME_FILE
            if not name_file.exists():
                write_new_file(name_file, name.encode("utf-8"))
            fsync_dir(path)
            fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot create mailbox directory: {exc}") from exc

    def _recover(self, index: _UserIndex) -> None:
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
            if entry.name.startswith(_TRASH_PREFIX):
                # An interrupted delete_mailbox: undo it if the row survived, else finish it.
                _, _, rest = entry.name.partition(_TRASH_PREFIX)
                validity, _, dirname = rest.partition(_TRASH_PREFIX)
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

    def _adopt(self, index: _UserIndex, path: Path, known: set[str]) -> None:
        """A mailbox directory the index does not know (a CREATE cut short, or a lost index):
        index it under the name it records, so none of its messages is lost."""
        try:
            name = normalize_mailbox_name((path / _NAME_FILE).read_text("utf-8"))
        except (OSError, UnicodeDecodeError, InvalidMailboxName):
            _log.warning("ignoring unknown directory %s in the mail store", path)
            return
        if name in known:
            _log.warning("ignoring %s: mailbox %r is already indexed", path, name)
            return
        try:
            previous = int((path / _VALIDITY_FILE).read_text("ascii").strip())
        except (OSError, ValueError):
            previous = int(time.time())
        # Its messages get new UIDs, so the UIDVALIDITY must move past the old one.
        self._create_mailbox(index, name, dirname=path.name, floor=previous + 1)
        known.add(name)

    def _reconcile(self, index: _UserIndex, name: str, mailbox_dir: Path) -> None:
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
            flags = _flags_from_filename(location) if location.startswith("cur/") else frozenset()
            date = datetime.fromtimestamp(int(mtime), UTC)
            conn.execute(
                "INSERT INTO messages (mailbox, uid, filename, location, flags, internaldate,"
                " size, modseq) VALUES (?, ?, ?, ?, ?, ?, ?,"
                " (SELECT version + 1 FROM mailboxes WHERE name = ?))",
                (name, uid, base, location, _encode_flags(flags), date.isoformat(), size, name),
            )
            conn.execute("UPDATE mailboxes SET uidnext = uidnext + 1 WHERE name = ?", (name,))
            changed = True
        if changed:
            conn.execute("UPDATE mailboxes SET version = version + 1 WHERE name = ?", (name,))
            _record_expunged(conn, name, vanished)
        if files:
            _log.warning("recovered %d unindexed message(s) in %s", len(files), mailbox_dir)


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None
