"""The reference IMAP server: listener, sessions, and mail-store change notifications."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging

from reference_agents.config import ProviderConfig
from reference_agents.imapd.connection import Connection
from reference_agents.imapd.session import AUTOLOGOUT_SECONDS, Session
from reference_agents.mailstore import MailStore
from reference_agents.memory import connection_closed
from reference_agents.tls import TLS_HANDSHAKE_SECONDS, TLS_SHUTDOWN_SECONDS, bound_tls_buffers

_log = logging.getLogger(__name__)


class IMAPServer:
    """An IMAP4rev1/IMAP4rev2 server on one loopback address and port, over a MailStore.

    ``implicit_tls`` makes it an "imaps" listener (RFC 8314 §3.3); otherwise it offers
    STARTTLS. After :meth:`start`, ``port`` is the bound port."""

    def __init__(self, *, config: ProviderConfig, store: MailStore, host: str, port: int,
                 implicit_tls: bool, autologout: float = AUTOLOGOUT_SECONDS,
                 auth_failure_delay: float = 0.2, reuse_port: bool = False) -> None:
        # Bind IP addresses only: a host name would go through the system resolver.
        ipaddress.ip_address(host)
        self.config = config
        self.store = store
        self.host = host
        self.port = port
        self.implicit_tls = implicit_tls
        self.autologout = autologout
        self.auth_failure_delay = auth_failure_delay
        #: Bind with SO_REUSEPORT, beside the other IMAP workers' listeners (workers.py).
        self.reuse_port = reuse_port
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sessions: dict[Session, asyncio.Task[None]] = {}
        self._listening = False
        self._listener_added = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        bound_tls_buffers()
        self._server = await loop.create_server(
            lambda: Connection(self._on_open),
            host=self.host,
            port=self.port,
            reuse_port=self.reuse_port or None,
            ssl=self.config.server_tls if self.implicit_tls else None,
            ssl_handshake_timeout=TLS_HANDSHAKE_SECONDS if self.implicit_tls else None,
            ssl_shutdown_timeout=TLS_SHUTDOWN_SECONDS if self.implicit_tls else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._listening = True
        if not self._listener_added:
            self.store.add_listener(self._store_changed)
            self._listener_added = True

    async def stop(self) -> None:
        self._listening = False
        if self._server is not None:
            self._server.close()
        sessions = list(self._sessions.items())
        for session, _ in sessions:
            session.shutdown()
        for _, task in sessions:
            task.cancel()
        for _, task in sessions:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> IMAPServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _on_open(self, conn: Connection) -> None:
        if not self._listening or self._loop is None:
            conn.close()
            return
        refusal = self._over_limit(conn)
        if refusal:
            # RFC 9051 §7.1.5: BYE as the greeting, "the server is not willing to accept a
            # connection from this client", then the close.
            conn.write(b"* BYE [UNAVAILABLE] " + refusal.encode("ascii") + b"\r\n")
            conn.close()
            return
        session = Session(config=self.config, store=self.store, conn=conn,
                          autologout=self.autologout,
                          auth_failure_delay=self.auth_failure_delay)
        task = self._loop.create_task(session.run())
        self._sessions[session] = task
        task.add_done_callback(lambda _t: self._session_ended(session))

    def _session_ended(self, session: Session) -> None:
        self._sessions.pop(session, None)
        connection_closed()

    def _over_limit(self, conn: Connection) -> str:
        """Why *conn* is one too many for this listener ("" if it is not)."""
        limits = self.config.connection_limits
        if len(self._sessions) >= limits.max_connections:
            return "too many connections, try again later"
        peer = _peer(conn)
        if sum(1 for s in self._sessions if _peer(s.conn) == peer) >= limits.max_connections_per_address:
            return "too many connections from your address, try again later"
        return ""

    def _store_changed(self, user: str, mailbox: str) -> None:
        """Store listener: may run on any thread (RFC 2177 IDLE needs prompt wake-ups)."""
        loop = self._loop
        if loop is None or not self._listening:
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(self._wake_sessions, user, mailbox)

    def _wake_sessions(self, user: str, mailbox: str) -> None:
        for session in list(self._sessions):
            session.store_changed(user, mailbox)


def _peer(conn: Connection) -> str | None:
    transport = conn.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if peer else None
