"""The provider's SMTP ports: the MSA (587 STARTTLS, 465 implicit TLS) and the inbound MTA (25),
each an asyncio server on a loopback socket whose connections become sessions."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import replace

from reference_agents.config import ProviderConfig
from reference_agents.smtpd.connection import Connection
from reference_agents.smtpd.handlers import Enqueue, Handler, InboundHandler, SubmissionHandler
from reference_agents.smtpd.session import Listener, Session, SessionTracker
from reference_agents.tls import TLS_HANDSHAKE_SECONDS, TLS_SHUTDOWN_SECONDS, bound_tls_buffers

#: How long stop() lets sessions close gracefully (421, TLS close_notify answered by the
#: client) before it aborts them.
SHUTDOWN_GRACE = 1.0


def loopback_socket(address: str, port: int, *,
                    option: int = socket.SO_REUSEADDR) -> socket.socket:
    """A TCP socket bound to (*address*, *port*) with socket *option* set. *address* must be a
    loopback IP literal: nothing here ever resolves a name."""
    ip = ipaddress.ip_address(address)
    if not ip.is_loopback:
        raise ValueError(f"refusing to listen on {address}: reference agents bind loopback only")
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when it can see
    # they are TCP, and without it every multiline reply waits ~40 ms for a delayed ACK.
    sock = socket.socket(
        socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, 1)
        sock.bind((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


class SMTPServers:
    """The MSA on ``config.ports.submission`` (STARTTLS) and ``.submissions`` (implicit TLS),
    and the inbound MTA on ``.smtp``; port 0 picks a free port, see ``ports`` after start()."""

    def __init__(self, config: ProviderConfig, enqueue: Enqueue) -> None:
        if not config.hostname:
            raise ValueError("ProviderConfig.hostname is required (no FQDN lookups)")
        self.config = config
        self._enqueue = enqueue
        self.ports: dict[str, int] = {}
        self._servers: list[asyncio.Server] = []
        self._tracker = SessionTracker()

    def _listeners(self) -> list[tuple[Listener, int, Handler]]:
        config = self.config
        quirk = config.has_quirk
        msa = SubmissionHandler(config, self._enqueue)
        mta = InboundHandler(config, self._enqueue)
        return [
            (
                Listener(
                    name="submission",
                    # Quirk msa_no_starttls breaks RFC 3207 §4: a server offering STARTTLS
                    # answers it 220 and negotiates TLS (SUBMIT-STARTTLS).
                    starttls=None if quirk("msa_no_starttls") else config.server_tls,
                    implicit_tls=None,
                    offer_auth=True,
                    # RFC 4954 §4 and RFC 8314 §3: no plaintext AUTH mechanisms without TLS.
                    # The quirk breaks it.
                    auth_require_tls=not quirk("msa_auth_before_tls"),
                    greeting_554=quirk("msa_greeting_554"),
                ),
                config.ports.submission,
                msa,
            ),
            (
                Listener(
                    name="submissions",
                    starttls=None,
                    # RFC 8314 §3.3: "When a TCP connection is established for the
                    # "submissions" service (default port 465), a TLS handshake begins
                    # immediately."  The quirk breaks it.
                    implicit_tls=None if quirk("msa_implicit_tls_plaintext") else config.server_tls,
                    offer_auth=True,
                    auth_require_tls=False,  # the whole connection is TLS
                    greeting_554=quirk("msa_greeting_554"),
                ),
                config.ports.submissions,
                msa,
            ),
            (
                Listener(
                    name="smtp",
                    # Allowance mx_no_starttls: the MX does not offer STARTTLS at all.
                    starttls=None if config.allows("mx_no_starttls") else config.server_tls,
                    implicit_tls=None,
                    offer_auth=False,
                    auth_require_tls=True,
                    greeting_554=False,
                ),
                config.ports.smtp,
                mta,
            ),
        ]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        bound_tls_buffers()
        self._tracker.stopping = False
        try:
            for listener, port, handler in self._plaintext(self._listeners()):
                sock = loopback_socket(self.config.address, port)
                try:
                    server = await loop.create_server(
                        lambda handler=handler, listener=listener: self._connection(handler, listener),
                        sock=sock,
                        ssl=listener.implicit_tls,
                        ssl_handshake_timeout=(TLS_HANDSHAKE_SECONDS if listener.implicit_tls
                                               else None),
                        ssl_shutdown_timeout=(TLS_SHUTDOWN_SECONDS if listener.implicit_tls
                                              else None),
                    )
                except BaseException:
                    sock.close()
                    raise
                self._servers.append(server)
                self.ports[listener.name] = sock.getsockname()[1]
        except BaseException:
            await self.stop()
            raise

    def _plaintext(
        self, listeners: list[tuple[Listener, int, Handler]]
    ) -> list[tuple[Listener, int, Handler]]:
        """Without TLS (``config.tls`` false): no implicit-TLS listener, no STARTTLS, and AUTH
        allowed in plain text."""
        if self.config.tls:
            return listeners
        return [
            (replace(listener, starttls=None, auth_require_tls=False), port, handler)
            for listener, port, handler in listeners if listener.name != "submissions"
        ]

    def _connection(self, handler: Handler, listener: Listener) -> Connection:
        return Session(handler, listener=listener, config=self.config, tracker=self._tracker).connection

    async def stop(self) -> None:
        self._tracker.stopping = True
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            await server.wait_closed()
        sessions = list(self._tracker.sessions)
        for session in sessions:
            session.shutdown()
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE):
                for session in sessions:
                    await session.wait_closed()
        except TimeoutError:
            for session in sessions:
                session.abort()
            for session in sessions:
                await session.wait_closed()
