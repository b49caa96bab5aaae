"""The MTA's cache of open outbound SMTP sessions, so that the next message for a host that has
just taken one goes over the same connection: no new TCP and TLS handshake, EHLO or QUIT.

RFC 5321 §3.3 lets a client send several transactions in one session ("MAIL ... may be
repeated"), and §4.5.3.2 sets the server's idle time-out at 5 minutes at least. Postfix does
the same (``smtp_connection_cache_on_demand``): a session is kept open for
``smtp_connection_cache_time_limit`` (2 s) after a delivery, reused for at most
``smtp_connection_reuse_time_limit`` (300 s) in all, and probed with RSET before reuse
(``smtp_rset_timeout``) so that a connection the server has closed meanwhile costs a fresh
connection, never a failed delivery. This cache follows those rules.

A session goes back into the cache only after a transaction in which the server took every
recipient (DATA answered 250): a host that refused or deferred anything, answered 421, timed
out or broke the connection gets a fresh connection next time. A session's transcript is emptied on reuse, so that a long-lived
connection holds no more than one message's record."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass

from harness.clients.smtp import SMTPClient, SMTPClientError
from harness.protocol.errors import RemoteProtocolError

log = logging.getLogger(__name__)

#: Seconds an idle session is kept (Postfix: smtp_connection_cache_time_limit).
DEFAULT_IDLE_SECONDS = 2.0
#: Seconds a connection may be reused for in all (Postfix: smtp_connection_reuse_time_limit).
DEFAULT_REUSE_SECONDS = 300.0
#: Idle sessions kept per destination at most.
DEFAULT_PER_DESTINATION = 20
#: Seconds for the RSET probe and for the QUIT of an expired session.
PROBE_SECONDS = 5.0


@dataclass(slots=True)
class _Idle:
    client: SMTPClient
    opened: float
    expiry: asyncio.TimerHandle


class SessionCache:
    """Idle SMTP sessions per destination (any hashable key: address, port, TLS, name).

    `take` hands out the most recently used idle session of a destination, probed with RSET,
    or None; `put` gives a session back after a transaction (or closes it, when the cache is
    off, full, or the connection too old). *idle_seconds* 0 turns the cache off."""

    def __init__(self, *, idle_seconds: float = DEFAULT_IDLE_SECONDS,
                 reuse_seconds: float = DEFAULT_REUSE_SECONDS,
                 per_destination: int = DEFAULT_PER_DESTINATION) -> None:
        self.idle_seconds = idle_seconds
        self.reuse_seconds = reuse_seconds
        self.per_destination = per_destination
        self._idle: dict[Hashable, list[_Idle]] = {}
        self._opened: dict[int, float] = {}
        self._closing: set[asyncio.Task[None]] = set()
        #: Sessions handed out again, and RSET probes that failed (for tests and figures).
        self.reused = 0
        self.stale = 0

    @property
    def enabled(self) -> bool:
        return self.idle_seconds > 0

    def idle_count(self, key: Hashable | None = None) -> int:
        if key is not None:
            return len(self._idle.get(key, ()))
        return sum(len(sessions) for sessions in self._idle.values())

    def opened(self, client: SMTPClient) -> None:
        """Note a new connection's age from now (call after connect)."""
        self._opened[id(client)] = time.monotonic()

    async def take(self, key: Hashable) -> SMTPClient | None:
        """An idle session for *key* that answered RSET with 250, or None."""
        while True:
            sessions = self._idle.get(key)
            if not sessions:
                return None
            idle = sessions.pop()
            if not sessions:
                del self._idle[key]
            idle.expiry.cancel()
            client = idle.client
            if await self._probe(client):
                self.reused += 1
                client.transcript.entries.clear()
                self._opened[id(client)] = idle.opened
                return client
            self.stale += 1
            await self._discard(client)

    @staticmethod
    async def _probe(client: SMTPClient) -> bool:
        if client.closed:
            return False
        try:
            async with asyncio.timeout(PROBE_SECONDS):
                reply = await client.rset()
        except (SMTPClientError, RemoteProtocolError, OSError):  # OSError: TimeoutError too
            return False
        return reply.is_positive

    def put(self, key: Hashable, client: SMTPClient) -> None:
        """Keep *client* (after a transaction the server has answered) for the next message to
        *key*, or close it."""
        opened = self._opened.pop(id(client), time.monotonic())
        if (not self.enabled or client.closed or self.idle_count(key) >= self.per_destination
                or time.monotonic() - opened >= self.reuse_seconds):
            self._close_later(client)
            return
        expiry = asyncio.get_running_loop().call_later(self.idle_seconds, self._expire, key, client)
        self._idle.setdefault(key, []).append(_Idle(client, opened, expiry))

    def forget(self, client: SMTPClient) -> None:
        """*client* is being closed by its user: drop its age record."""
        self._opened.pop(id(client), None)

    def _expire(self, key: Hashable, client: SMTPClient) -> None:
        sessions = self._idle.get(key, [])
        for index, idle in enumerate(sessions):
            if idle.client is client:
                del sessions[index]
                break
        if not sessions:
            self._idle.pop(key, None)
        self._close_later(client)

    def _close_later(self, client: SMTPClient) -> None:
        task = asyncio.get_running_loop().create_task(self._quit(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _quit(client: SMTPClient) -> None:
        try:
            async with asyncio.timeout(PROBE_SECONDS):
                await client.quit()
        except (SMTPClientError, RemoteProtocolError, OSError):
            pass  # an idle session's goodbye decides nothing
        finally:
            await SessionCache._discard(client)

    @staticmethod
    async def _discard(client: SMTPClient) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(PROBE_SECONDS):
                await client.close()

    async def close(self) -> None:
        """Say QUIT on every idle session and close it (when the worker stops)."""
        sessions = [idle for group in self._idle.values() for idle in group]
        self._idle.clear()
        self._opened.clear()
        for idle in sessions:
            idle.expiry.cancel()
        await asyncio.gather(*(self._quit(idle.client) for idle in sessions),
                             *list(self._closing), return_exceptions=True)
