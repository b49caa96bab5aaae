"""The in-memory backend (for fast unit tests): the same semantics as MaildirStore."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

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
)

_log = logging.getLogger(__name__)

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
    special_use: frozenset[str] = frozenset()  # RFC 6154 attributes given at CREATE


class MemoryStore(StoreBase):
    """A `MailStore` kept in memory, for fast unit tests. Same semantics as `MaildirStore`."""

    def __init__(self) -> None:
        super().__init__()
        self._users: dict[str, dict[str, _MemMailbox]] = {}
        self._subscriptions: dict[str, set[str]] = {}
        self._last_uidvalidity = 0
        #: (user, delivery tag) -> the UID the delivery got.
        self._deliveries: dict[tuple[str, str], int] = {}

    def _new_uidvalidity(self) -> int:
        self._last_uidvalidity = max(int(time.time()), self._last_uidvalidity + 1)
        return self._last_uidvalidity

    def _mailboxes(self, user: str) -> dict[str, _MemMailbox]:
        self._check_open()
        check_user(user)
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
            return sorted_mailboxes(self._mailboxes(user))

    def create_mailbox(self, user: str, name: str, special_use: Iterable[str] = ()) -> None:
        with self._lock:
            boxes = self._mailboxes(user)
            name = normalize_mailbox_name(strip_declaration(name))
            if name in boxes:
                raise MailboxExists(name)
            created = missing_with_parents(name, boxes)
            for new in created:
                boxes[new] = _MemMailbox(self._new_uidvalidity())
            boxes[name].special_use = frozenset(special_use)
        self._notify(user, created)

    def special_uses(self, user: str) -> dict[str, frozenset[str]]:
        with self._lock:
            return {n: b.special_use for n, b in self._mailboxes(user).items() if b.special_use}

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
        *,
        delivery: str | None = None,
    ) -> int:
        flagset = normalize_flags(flags)
        date = check_internaldate(internaldate)
        with self._lock:
            box = self._mailbox(user, name)
            key = (user, delivery_tag(delivery)) if delivery is not None else None
            if key is not None and key in self._deliveries:
                return self._deliveries[key]
            uid = box.uidnext
            if uid > MAX_UID:
                raise StorageError("UID space of the mailbox is exhausted")
            box.uidnext += 1
            box.version += 1
            box.messages[uid] = _MemMessage(bytes(data), flagset, date, box.version)
            if key is not None:
                self._deliveries[key] = uid
        self._notify(user, [normalize_mailbox_name(name)])
        return uid

    def change_flags(self, user: str, name: str, uid: int,
                     change: Callable[[frozenset[str]], frozenset[str]], *,
                     stale_version: int | None = None) -> tuple[frozenset[str], int]:
        with self._lock:
            box = self._mailbox(user, name)
            message = box.messages.get(uid)
            if message is None:
                raise NoSuchMessage(uid)
            new = normalize_flags(change(message.flags))
            if message.flags == new:
                return new, message.modseq
            message.flags = new
            box.version += 1
            if stale_version is not None:  # quirk imap_modseq_race
                message.modseq = max(stale_version + 1, message.modseq + 1)
            else:
                message.modseq = box.version
            modseq = message.modseq
        self._notify(user, [normalize_mailbox_name(name)])
        return new, modseq

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

    def usage(self, user: str, name: str | None = None) -> tuple[int, int]:
        with self._lock:
            boxes = ([self._mailbox(user, name)] if name is not None
                     else list(self._mailboxes(user).values()))
            messages = [m for box in boxes for m in box.messages.values()]
            return sum(len(m.data) for m in messages), len(messages)

    def rename_mailbox(self, user: str, old: str, new: str) -> None:
        with self._lock:
            boxes = self._mailboxes(user)
            old = normalize_mailbox_name(old)
            new = normalize_mailbox_name(strip_declaration(new))
            plan = rename_plan(old, new, boxes)
            if old == INBOX:
                box = boxes[INBOX]
                # The version (HIGHESTMODSEQ) stays above every moved message's mod-sequence.
                moved = _MemMailbox(self._new_uidvalidity(), box.uidnext, box.version + 1,
                                    dict(box.messages))
                box.messages.clear()
                box.version += 1
                box.expunged.update((uid, box.version) for uid in moved.messages)
                for parent in missing_with_parents(new, boxes)[:-1]:
                    boxes[parent] = _MemMailbox(self._new_uidvalidity())
                boxes[new] = moved
            else:
                for parent in missing_with_parents(new, boxes)[:-1]:
                    boxes[parent] = _MemMailbox(self._new_uidvalidity())
                for src, dst in plan:
                    boxes[dst] = boxes.pop(src)
                    boxes[dst].version += 1
        self._notify(user, [old, new, *(n for pair in plan for n in pair)])

    def subscriptions(self, user: str) -> list[str]:
        with self._lock:
            self._mailboxes(user)
            return sorted_mailboxes(self._subscriptions.get(user, set()))

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


