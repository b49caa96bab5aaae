"""Change notification between the processes that share one mail store.

Each process of a group (the primary, and every IMAP worker) binds one Unix datagram socket
in Linux's abstract namespace, named after the group and its own index; a change committed
through the process's store is sent as one datagram, ``user NUL mailbox`` in UTF-8, to every
other member. A receiving thread hands each datagram to `StoreBase.changed_elsewhere`, which
wakes the sessions of that user (IDLE, NOTIFY) at once.

A datagram carries no state, only "look again": the sessions read the store itself, so a
notification that is lost (a member restarting, a full queue) costs promptness, never
correctness — IDLE and NOTIFY also look every ``idle_poll_interval`` seconds. Dovecot's
mailbox-change notification works the same way (a wake-up, then a re-read of the index).

The same sockets carry the authentication throttle's events (reference_agents/limits.py),
so that every process counts the failures of all: ``\x01 event NUL address NUL user``. A lost
one lets a guesser one attempt more in one process, no more."""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading

from reference_agents.limits import AuthThrottle
from reference_agents.mailstore.base import StoreBase

_log = logging.getLogger(__name__)
#: Longest datagram taken: a user name and a mailbox name (255 characters, 4 octets each).
_MAX_DATAGRAM = 4096
#: The first octet of an authentication throttle event (a user name never starts with it).
_AUTH = b"\x01"


def new_group() -> str:
    """A fresh group name: the members of one start of the agents, and no one else's."""
    return f"mailharness-{secrets.token_hex(8)}"


def _address(group: str, member: int) -> bytes:
    # A leading NUL puts the name in the abstract namespace: no file, nothing left behind.
    return f"\0{group}.{member}".encode("ascii")


class ChangeBus:
    """Member *member* of *group* (of *size* members, numbered 0 .. size-1) over *store*;
    with *throttle*, the member's authentication throttle is shared with the others'."""

    def __init__(self, store: StoreBase, group: str, member: int, size: int,
                 throttle: AuthThrottle | None = None) -> None:
        if not 0 <= member < size:
            raise ValueError(f"member {member} is not in a group of {size}")
        self.store = store
        self._peers = [_address(group, m) for m in range(size) if m != member]
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._sock.bind(_address(group, member))
        except OSError:
            self._sock.close()
            raise
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out.setblocking(False)
        self._closed = False
        self._thread = threading.Thread(target=self._receive, name=f"changes {member}",
                                        daemon=True)
        self._throttle = throttle
        self._thread.start()
        store.add_publisher(self.publish)
        if throttle is not None:
            throttle.share(self.publish_auth)

    def publish(self, user: str, mailbox: str) -> None:
        """Store publisher: tell every other member (never blocks; a full peer misses it)."""
        self._send(f"{user}\0{mailbox}".encode())

    def publish_auth(self, event: str, address: str, user: str | None) -> None:
        """The throttle's publisher: an authentication failure or success, to every member."""
        datagram = _AUTH + f"{event}\0{address}\0{user or ''}".encode()
        if len(datagram) > _MAX_DATAGRAM:  # a user name that long counts for the address only
            datagram = _AUTH + f"{event}\0{address}\0".encode()
        self._send(datagram)

    def _send(self, datagram: bytes) -> None:
        if self._closed:
            return
        for peer in self._peers:
            # ENOENT/ECONNREFUSED: that member is not up (yet, or any more); EAGAIN: its queue
            # is full. It reads the store when it next looks, so nothing is lost.
            with contextlib.suppress(OSError):
                self._out.sendto(datagram, peer)

    def _receive(self) -> None:
        while True:
            try:
                datagram = self._sock.recv(_MAX_DATAGRAM)
            except OSError:
                return  # closed
            if self._closed:
                return
            if datagram.startswith(_AUTH):
                self._auth_event(datagram[1:])
                continue
            user, sep, mailbox = datagram.decode("utf-8", "replace").partition("\0")
            if sep and user and mailbox:
                self.store.changed_elsewhere(user, mailbox)

    def _auth_event(self, body: bytes) -> None:
        if self._throttle is None:
            return
        event, _, rest = body.decode("utf-8", "replace").partition("\0")
        address, _, user = rest.partition("\0")
        if not address:
            return
        if event == "failed":
            self._throttle.failed_elsewhere(address, user or None)
        elif event == "succeeded":
            self._throttle.succeeded_elsewhere(address)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._throttle is not None:
            self._throttle.share(None)
        # Wake the receiving thread: shutdown() makes its recv() return.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._out.close()
        self._thread.join(timeout=2.0)
