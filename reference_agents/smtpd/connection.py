"""The byte stream under one SMTP session: an asyncio protocol that feeds what arrives to the
core's parser, stops reading while much is buffered, waits for the send buffer to drain, and
turns the stream into TLS in place (RFC 3207 STARTTLS)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from harness.protocol.smtp.server import ServerParser
from reference_agents.tls import TLS_HANDSHAKE_SECONDS, TLS_SHUTDOWN_SECONDS

#: Reading stops while this much is buffered and unparsed (pipelined commands, mail data).
HIGH_WATER = 64 * 1024


class Connection(asyncio.Protocol):
    """One client connection; ``started(connection)`` is called once it is made."""

    def __init__(self, parser: ServerParser, started: Callable[[Connection], None]) -> None:
        self.parser = parser
        self.transport: asyncio.Transport | None = None
        self._started = started
        self._input = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost = asyncio.Event()
        self._paused = False
        #: The client closed its side, or the connection is gone.
        self.ended = False
        #: Why the TLS handshake of STARTTLS failed (for the server log).
        self.tls_error: BaseException | None = None
        #: What ended the connection, when the transport said (a reset, a TLS alert).
        self.lost_error: BaseException | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is not None:
            return  # the TLS layer of STARTTLS reports the same connection again
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._started(self)

    def data_received(self, data: bytes) -> None:
        self.parser.receive_data(data)
        self._input.set()
        if self.parser.buffered > HIGH_WATER and self.transport is not None and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.ended = True
        self._input.set()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.lost_error is None:
            self.lost_error = exc
        self.ended = True
        self._input.set()
        self._writable.set()
        self._lost.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # --- what the session uses ----------------------------------------------------------------

    @property
    def peer(self) -> tuple[str, int] | None:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None

    @property
    def tls_active(self) -> bool:
        transport = self.transport
        return transport is not None and transport.get_extra_info("ssl_object") is not None

    @property
    def closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    async def wait_for_input(self, timeout: float) -> bool:
        """Wait until more bytes arrive; False when the client is gone or *timeout* passed."""
        if self.ended:
            return False
        self._input.clear()
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        try:
            async with asyncio.timeout(timeout):
                await self._input.wait()
        except TimeoutError:
            return False
        return not self.ended

    async def write(self, data: bytes) -> None:
        if self.closing:
            return
        assert self.transport is not None
        self.transport.write(data)
        await self._writable.wait()

    async def start_tls(self, context: ssl.SSLContext) -> bool:
        """TLS over this connection as the server; False (and closed) when the handshake fails.
        The caller drops what it has buffered in clear text first (RFC 3207 §4.2): from the
        moment this is called, whatever arrives is read through TLS (``loop.start_tls`` stops
        reading before it returns to the loop)."""
        loop = asyncio.get_running_loop()
        assert self.transport is not None
        self._paused = False
        try:
            transport = await loop.start_tls(self.transport, self, context, server_side=True,
                                             ssl_handshake_timeout=TLS_HANDSHAKE_SECONDS,
                                             ssl_shutdown_timeout=TLS_SHUTDOWN_SECONDS)
        except (OSError, ssl.SSLError, ConnectionError, TimeoutError) as exc:
            self.tls_error = exc
            self.close()
            return False
        if transport is None:
            self.tls_error = ConnectionResetError("the client closed the connection")
            return False
        self.transport = transport
        return True

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def wait_closed(self) -> None:
        await self._lost.wait()
