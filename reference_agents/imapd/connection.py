"""The I/O shell of one IMAP connection: an asyncio.Protocol with bounded input and STARTTLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from harness.protocol.imap.deflate import DeflateError, Deflater, Inflater
from reference_agents.tls import TLS_HANDSHAKE_SECONDS, TLS_SHUTDOWN_SECONDS

#: Stop reading from the socket while this many received octets wait to be parsed. With
#: COMPRESS (RFC 4978) the bound holds for the inflated octets too: input is inflated at most up
#: to it per read, the rest stays compressed until the session has taken what it was given (a
#: few compressed octets that inflate to gigabytes never occupy more).
_HIGH_WATER = 256 * 1024


class Connection(asyncio.Protocol):
    """Raw bytes in and out. ``wakeup`` is set whenever there is something to look at: data,
    end of input, or (set by the server) a change in the mail store."""

    def __init__(self, on_open: Callable[[Connection], None]) -> None:
        self._on_open = on_open
        self.transport: asyncio.Transport | None = None
        self.wakeup = asyncio.Event()
        self.eof = False
        self.closed = False
        self.tls = False
        self._inbox = bytearray()
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        #: COMPRESS=DEFLATE (RFC 4978), once the session started it.
        self._deflater: Deflater | None = None
        self._inflater: Inflater | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.tls = transport.get_extra_info("sslcontext") is not None
        self._on_open(self)

    def data_received(self, data: bytes) -> None:
        if self._inflater is not None:
            self._inflater.feed(data)
            self._inflate()
        else:
            self._inbox += data
        if self._over_high_water() and not self._reading_paused and self.transport:
            self.transport.pause_reading()
            self._reading_paused = True
        self.wakeup.set()

    def _over_high_water(self) -> bool:
        pending = self._inflater.pending if self._inflater is not None else 0
        return len(self._inbox) > _HIGH_WATER or pending > _HIGH_WATER

    def _inflate(self) -> None:
        """Inflate received octets into the inbox, never past the high-water mark."""
        assert self._inflater is not None
        try:
            while self._inflater.pending and len(self._inbox) <= _HIGH_WATER:
                out = self._inflater.take(_HIGH_WATER + 1 - len(self._inbox))
                if not out:
                    break
                self._inbox += out
        except DeflateError:
            # Not a DEFLATE stream: nothing more from this client can be read as commands.
            self.eof = True
            self.abort()

    def eof_received(self) -> bool:
        self.eof = True
        self.wakeup.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.eof = True
        self.wakeup.set()
        self._wake_drain()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the session ------------------------------------------------------------------

    def take(self) -> bytes:
        """Everything received and not yet taken; resumes reading if it was paused."""
        data = bytes(self._inbox)
        self._inbox.clear()
        if self._inflater is not None and self._inflater.pending:
            self._inflate()  # the next piece, for the next take
            if self._inbox:
                self.wakeup.set()
        if self._over_high_water():
            return data
        if self._reading_paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()
            self._reading_paused = False
        return data

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed and not self.transport.is_closing():
            if self._deflater is not None:
                data = self._deflater.compress(data)
            self.transport.write(data)

    @property
    def compressed(self) -> bool:
        return self._deflater is not None

    def start_compression(self, level: int = 6, *, window: int = -15) -> None:
        """COMPRESS DEFLATE (RFC 4978 §3): from now on every octet written is compressed and
        every octet received inflated. Call it right after writing the tagged OK: "the server
        MUST compress starting immediately after the CRLF which ends the tagged OK response".
        Octets received but not yet taken came after the command, so they are compressed."""
        self._deflater = Deflater(level, window=window)
        self._inflater = Inflater()
        if self._inbox:
            self._inflater.feed(bytes(self._inbox))
            self._inbox.clear()
            self._inflate()

    async def drain(self) -> None:
        while self._writing_paused and not self.closed:
            loop = asyncio.get_running_loop()
            self._drain_waiter = loop.create_future()
            await self._drain_waiter

    async def start_tls(self, context: ssl.SSLContext,
                        handshake_seconds: float = TLS_HANDSHAKE_SECONDS) -> None:
        """Upgrade to TLS as the server. Input buffered before the handshake is discarded
        (RFC 9051 §6.2.1); the caller discards what its parser holds."""
        assert self.transport is not None
        await self.drain()
        self._inbox.clear()
        loop = asyncio.get_running_loop()
        # loop.start_tls pauses reading before its first await, so no plaintext received after
        # this point can reach the inbox.
        transport = await loop.start_tls(
            self.transport, self, context, server_side=True, ssl_handshake_timeout=handshake_seconds,
            ssl_shutdown_timeout=TLS_SHUTDOWN_SECONDS
        )
        if transport is None:
            raise ConnectionError("TLS negotiation failed")
        self.transport = transport
        self.tls = True

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
