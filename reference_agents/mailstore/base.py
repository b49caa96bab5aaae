"""The mail store's values, its protocol, the name and flag rules, and what both backends share."""

from __future__ import annotations

import hashlib
import logging
import threading
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from harness.protocol.imap.chars import ATOM_SPECIALS, BACKSLASH
from reference_agents.mailstore.errors import InvalidMailboxName, MailboxExists, NoSuchMailbox

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
#: Octets a flag cannot contain: the IMAP atom-specials (RFC 9051 §9 flag-keyword = atom,
#: flag-extension = "\" atom) other than the leading backslash.
_FLAG_FORBIDDEN = ATOM_SPECIALS - {BACKSLASH}



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


Listener = Callable[[str, str], None]


class MailStore(Protocol):
    """The mailboxes of every user of one provider.

    Every method is synchronous and thread-safe. ``user`` is the account's login name
    (``Account.username``); a user's INBOX and Junk are created on first use. Mailbox names use
    ``/`` as hierarchy delimiter; ``INBOX`` is case-insensitive. Storage failures raise
    `StorageError` (an ``OSError``)."""

    def list_mailboxes(self, user: str) -> list[str]: ...

    def create_mailbox(self, user: str, name: str, special_use: Iterable[str] = ()) -> None:
        """Create *name* (and missing parents); *special_use* are the RFC 6154 attributes of
        the new mailbox itself, kept with it (RENAME keeps them, DELETE drops them)."""
        ...

    def special_uses(self, user: str) -> dict[str, frozenset[str]]:
        """The mailboxes created with special-use attributes, and those attributes."""
        ...

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
        *,
        delivery: str | None = None,
    ) -> int:
        """Store the message; its UID. *delivery* names one final delivery (a queue entry and
        a recipient): an append with a delivery already stored stores nothing and returns the
        UID it got then, so a delivery retried after a crash never makes a second copy."""
        ...

    def set_flags(self, user: str, name: str, uid: int, flags: frozenset[str], *,
                  stale_version: int | None = None) -> int:
        """Give the message *flags*; its mod-sequence afterwards (raised if they changed).
        *stale_version* is quirk imap_modseq_race: the new mod-sequence is taken from it (and
        the message's own), not from the mailbox's version under the lock."""
        ...

    def change_flags(self, user: str, name: str, uid: int,
                     change: Callable[[frozenset[str]], frozenset[str]], *,
                     stale_version: int | None = None) -> tuple[frozenset[str], int]:
        """Give the message ``change(flags)``, *flags* read under the store's lock, so that a
        change another session made meanwhile is kept; the new flags and the mod-sequence."""
        ...

    def expunge(self, user: str, name: str, uids: Iterable[int]) -> list[int]: ...

    def vanished(self, user: str, name: str, since: int) -> list[int]:
        """The UIDs expunged from the mailbox with a mod-sequence above *since*, ascending: the
        mailbox version the expunge moved it to (RFC 7162 §3.2.6, VANISHED)."""
        ...

    def version(self, user: str, name: str) -> int: ...

    def usage(self, user: str, name: str | None = None) -> tuple[int, int]:
        """(octets, messages) stored for *user*: in all mailboxes, or in mailbox *name* (the
        usage of RFC 9208 quotas), without reading the messages."""
        ...

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


def check_user(user: str) -> str:
    if not isinstance(user, str) or not user:
        raise ValueError("empty user name")
    try:
        user.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("user name is not valid Unicode") from None
    return user


def check_internaldate(internaldate: datetime | None) -> datetime:
    if internaldate is None:
        return datetime.now(UTC).replace(microsecond=0)
    if internaldate.tzinfo is None or internaldate.utcoffset() is None:
        raise ValueError("internaldate must be timezone-aware")
    return internaldate


def sorted_mailboxes(names: Iterable[str]) -> list[str]:
    return sorted(names, key=lambda n: (n != INBOX, n))


# --------------------------------------------------------------------------- shared base


class StoreBase:
    """Lock and listeners common to both backends."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._publishers: list[Listener] = []
        self._closed = False

    def add_listener(self, callback: Listener) -> None:
        with self._lock:
            self._listeners.append(callback)

    def add_publisher(self, callback: Listener) -> None:
        """*callback* hears of the changes made through this store object only (not of those
        reported by `changed_elsewhere`): it tells the other processes sharing the store."""
        with self._lock:
            self._publishers.append(callback)

    def change_flags(self, user: str, name: str, uid: int,
                     change: Callable[[frozenset[str]], frozenset[str]], *,
                     stale_version: int | None = None) -> tuple[frozenset[str], int]:
        raise NotImplementedError  # each backend's, under its own lock

    def set_flags(self, user: str, name: str, uid: int, flags: frozenset[str], *,
                  stale_version: int | None = None) -> int:
        """Replace the flags: the change that ignores the flags there were."""
        return self.change_flags(user, name, uid, lambda _: flags,
                                 stale_version=stale_version)[1]

    def changed_elsewhere(self, user: str, name: str) -> None:
        """Another process sharing the store changed *user*'s mailbox *name*: tell the
        listeners, as for a change of our own (not the publishers: it is not ours to tell)."""
        self._notify(user, [name], publish=False)

    def _notify(self, user: str, names: Iterable[str], *, publish: bool = True) -> None:
        """Call the listeners (and with *publish* the publishers), outside the lock, after a
        change has been committed. A failing listener is logged: the change already happened
        and must not be reported as failed."""
        with self._lock:
            listeners = self._listeners + (self._publishers if publish else [])
        for name in names:
            for callback in listeners:
                try:
                    callback(user, name)
                except Exception:
                    _log.exception("mail store listener %r failed", callback)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("mail store is closed")


def strip_declaration(name: str) -> str:
    # RFC 9051 §6.3.4: "If the mailbox name is suffixed with the server's hierarchy separator
    # character ..., this is a declaration that the client intends to create mailbox names
    # under this name in the hierarchy.  Server implementations that do not require this
    # declaration MUST ignore the declaration."
    if isinstance(name, str) and len(name) > 1 and name.endswith(DELIMITER):
        return name[:-1]
    return name


def missing_with_parents(name: str, existing: Iterable[str]) -> list[str]:
    # RFC 9051 §6.3.4: "If the server's hierarchy separator character appears elsewhere in the
    # name, the server SHOULD create any superior hierarchical names that are needed for the
    # CREATE command to be successfully completed."
    have = set(existing)
    segments = name.split(DELIMITER)
    wanted = [DELIMITER.join(segments[: i + 1]) for i in range(len(segments))]
    return [n for n in wanted if n not in have]


def rename_plan(old: str, new: str, existing: Iterable[str]) -> list[tuple[str, str]]:
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


def delivery_tag(delivery: str) -> str:
    """The fixed-length name a delivery id is stored under (and, in Maildir, carried in the
    message's file name, so recovery can tell a delivery that was written but not indexed)."""
    return hashlib.sha256(delivery.encode("utf-8")).hexdigest()[:32]
