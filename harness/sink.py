"""SinkServer: a scriptable SMTP peer (an MX that answers what a test tells it) on aiosmtpd."""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

C250_OK = "250 2.0.0 OK"
C250_QUEUED = "250 2.0.0 OK: message accepted"


@dataclass(frozen=True, slots=True)
class SinkMessage:
    """One message the sink accepted: the envelope (``mail_from`` is "" for the null
    reverse-path), the exact bytes of DATA (dot-stuffing removed, CRLF kept, final dot
    excluded), the client's IP address and the name it gave in EHLO/HELO."""

    mail_from: str
    recipients: tuple[str, ...]
    data: bytes
    peer: str
    helo: str


class _Handler:
    """aiosmtpd hooks: each command takes the next scripted reply, or is accepted."""

    def __init__(self, sink: SinkServer) -> None:
        self._sink = sink

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self._sink.offer_smtputf8:
            return responses
        return [r for r in responses if r[4:].upper() != "SMTPUTF8"]

    def _utf8_refused(self, verb: str, address: str, options: list[str]) -> str | None:
        """Without SMTPUTF8 offered, a UTF-8 address or the SMTPUTF8 parameter is recorded
        as a violation (RFC 6531 §3.2) and refused."""
        if self._sink.offer_smtputf8:
            return None
        if address.isascii() and not any(o.upper() == "SMTPUTF8" for o in options):
            return None
        self._sink.smtputf8_violations.append(f"{verb}:<{address}> {' '.join(options)}".strip())
        self._sink._notify()
        return "553 5.6.7 SMTPUTF8 was not offered"

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        refused = self._utf8_refused("MAIL FROM", address, mail_options)
        if refused is not None:
            return refused
        reply = self._sink._next_reply(self._sink._mail_script)
        if reply is None or reply.startswith("2"):
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
        return reply or C250_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refused = self._utf8_refused("RCPT TO", address, rcpt_options)
        if refused is not None:
            return refused
        reply = self._sink._next_reply(self._sink._rcpt_script)
        if reply is None or reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return reply or C250_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self._sink._next_reply(self._sink._data_script)
        if reply is None or reply.startswith("2"):
            data = envelope.original_content
            assert isinstance(data, bytes)
            peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
            mail_from = envelope.mail_from or ""
            self._sink._record(
                SinkMessage(
                    # aiosmtpd keeps the null reverse-path as "<>"; we spell it "".
                    mail_from="" if mail_from == "<>" else mail_from,
                    recipients=tuple(envelope.rcpt_tos),
                    data=data,
                    peer=str(peer),
                    helo=session.host_name or "",
                )
            )
        return reply or C250_QUEUED


class SinkServer:
    """An SMTP server for tests that records every message and answers MAIL, RCPT and DATA
    from per-command scripts of reply lines, then normally (250) once a script runs out.

    With *tls_context* it offers STARTTLS. With ``offer_smtputf8=False`` it does not announce
    SMTPUTF8, and records (in ``smtputf8_violations``) and refuses any UTF-8 address or SMTPUTF8
    parameter a client sends all the same."""

    def __init__(
        self,
        host: str,
        port: int = 0,
        *,
        hostname: str = "sink.mailharness.invalid",
        tls_context: ssl.SSLContext | None = None,
        offer_smtputf8: bool = True,
    ) -> None:
        self.host = host
        self.offer_smtputf8 = offer_smtputf8
        self.smtputf8_violations: list[str] = []
        self.port = port
        self.hostname = hostname
        self.tls_context = tls_context
        self.messages: list[SinkMessage] = []
        self.connections = 0
        self._mail_script: collections.deque[str] = collections.deque()
        self._rcpt_script: collections.deque[str] = collections.deque()
        self._data_script: collections.deque[str] = collections.deque()
        self._returned = 0
        self._server: asyncio.Server | None = None
        self._protocols: set[SMTP] = set()
        self._changed: asyncio.Event | None = None

    # -- scripting --------------------------------------------------------------------------

    def script_mail(self, replies: Iterable[str]) -> None:
        """Queue reply lines for the next MAIL commands, one per command."""
        self._mail_script.extend(replies)

    def script_rcpt(self, replies: Iterable[str]) -> None:
        """Queue reply lines for the next RCPT commands, one per command."""
        self._rcpt_script.extend(replies)

    def script_data(self, replies: Iterable[str]) -> None:
        """Queue reply lines for the next DATA transfers (the reply after the final dot)."""
        self._data_script.extend(replies)

    def _next_reply(self, script: collections.deque[str]) -> str | None:
        return script.popleft() if script else None

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        handler = _Handler(self)

        def factory() -> SMTP:
            protocol = _TrackedSMTP(
                handler,
                hostname=self.hostname,
                decode_data=False,
                enable_SMTPUTF8=True,
                tls_context=self.tls_context,
                loop=loop,
                on_close=self._protocols.discard,
            )
            self._protocols.add(protocol)
            self.connections += 1
            self._notify()
            return protocol

        self._server = await loop.create_server(factory, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = []
        for protocol in list(self._protocols):
            if protocol.transport is not None:
                protocol.transport.close()
            if protocol._handler_coroutine is not None:
                tasks.append(protocol._handler_coroutine)
        await server.wait_closed()
        for task in tasks:
            task.cancel()
        # Let the per-connection handler tasks finish unwinding before the loop goes away.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> SinkServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- waiting ----------------------------------------------------------------------------

    def _record(self, message: SinkMessage) -> None:
        self.messages.append(message)
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not predicate():
                assert self._changed is not None, "the sink is not started"
                await self._changed.wait()

    async def wait_for_message(self, timeout: float) -> SinkMessage:  # noqa: ASYNC109
        """The next message this method has not returned yet; TimeoutError when none comes."""
        await self._wait_until(lambda: len(self.messages) > self._returned, timeout)
        message = self.messages[self._returned]
        self._returned += 1
        return message

    async def wait_for_connections(self, n: int, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until *n* connections in total have been accepted; TimeoutError otherwise."""
        await self._wait_until(lambda: self.connections >= n, timeout)


class _TrackedSMTP(SMTP):
    """aiosmtpd's SMTP protocol, reporting when its connection goes away."""

    def __init__(self, handler: Any, *, on_close: Callable[[SMTP], None], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._on_close = on_close

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self._on_close(self)
