"""Change notification between the processes that share one mail store.

Each process of a group (the primary, and every IMAP worker) binds one Unix datagram socket
in Linux's abstract namespace, named after the group and its own index; a change committed
through the process's store is sent as one datagram, ``user NUL mailbox`` in UTF-8, to every
other member. A receiving thread hands each datagram to `StoreBase.changed_elsewhere`, which
wakes the sessions of that user (IDLE, NOTIFY) at once.

A datagram carries no state, only "look again": the sessions read the store itself, so a
notification that is lost (a member restarting, a full queue) costs promptness, never
correctness — IDLE and NOTIFY also look every ``idle_poll_interval`` seconds. Dovecot's
mailbox-change notification works the same way (a wake-up, then a re-read of the index)."""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading

from reference_agents.mailstore.base import StoreBase

_log = logging.getLogger(__name__)
#: Longest datagram taken: a user name and a mailbox name (255 characters, 4 octets each).
_MAX_DATAGRAM = 4096


def new_group() -> str:
    """A fresh group name: the members of one start of the agents, and no one else's."""
    return f"mailharness-{secrets.token_hex(8)}"


def _address(group: str, member: int) -> bytes:
    # A leading NUL puts the name in the abstract namespace: no file, nothing left behind.
    return f"\0{group}.{member}".encode("ascii")


class ChangeBus:
    """Member *member* of *group* (of *size* members, numbered 0 .. size-1) over *store*."""

    def __init__(self, store: StoreBase, group: str, member: int, size: int) -> None:
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
        self._thread.start()
        store.add_publisher(self.publish)

    def publish(self, user: str, mailbox: str) -> None:
        """Store publisher: tell every other member (never blocks; a full peer misses it)."""
        if self._closed:
            return
        datagram = f"{user}\0{mailbox}".encode()
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
            user, sep, mailbox = datagram.decode("utf-8", "replace").partition("\0")
            if sep and user and mailbox:
                self.store.changed_elsewhere(user, mailbox)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Wake the receiving thread: shutdown() makes its recv() return.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._out.close()
        self._thread.join(timeout=2.0)
