"""The asyncio SMTP client: a thin shell over harness.protocol.smtp that records every byte."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from harness.clients.stream import (
    CLOSE_TIMEOUT,
    READ_CHUNK,
    ErrorKinds,
    check_ip,
    close_stream,
    open_stream,
    send_recorded,
    upgrade_tls,
)
from harness.clients.transcript import Transcript
from harness.protocol import sasl
from harness.protocol.errors import LocalProtocolError, RemoteProtocolError, SMTPSyntaxError
from harness.protocol.smtp import (
    C220_READY,
    C334_AUTH_CONTINUE,
    C354_START_DATA,
    END_DATA,
    GREETING,
    MAX_COMMAND_LINE,
    MAX_REPLY_LINE,
    Reply,
    ReplyParser,
    SessionEvent,
    SessionState,
    check_command_line,
    command_verb,
    data_payload,
    event_for_reply,
    format_path,
    parse_ehlo_keywords,
    transition,
)
from harness.protocol.smtp.transaction import TransactionPlan

#: How long the client listens for stray reply lines after an EHLO reply (see _catch_stray_lines).
STRAY_WAIT = 0.01


class SMTPClientError(Exception):
    """Base of the client's own errors (a malformed reply raises RemoteProtocolError instead)."""


class SMTPConnectError(SMTPClientError, ConnectionError):
    """The TCP connection could not be made."""


class SMTPConnectionClosed(SMTPClientError, ConnectionError):
    """The peer closed (or reset) the connection while we expected a reply or sent data."""


class SMTPTimeout(SMTPClientError, TimeoutError):
    """No complete reply (or no progress sending) within the timeout."""


class SMTPTLSError(SMTPClientError, ConnectionError):
    """The TLS handshake (implicit or after STARTTLS) failed; the ssl error is the cause."""


_ERRORS = ErrorKinds(
    connect=SMTPConnectError, closed=SMTPConnectionClosed, timeout=SMTPTimeout, tls=SMTPTLSError
)


@dataclass(frozen=True, slots=True)
class SendResult:
    """The replies of one mail transaction sent by send_message()."""

    mail: Reply
    rcpts: tuple[tuple[str, Reply], ...]
    data: Reply | None

    @property
    def accepted(self) -> tuple[str, ...]:
        return tuple(rcpt for rcpt, reply in self.rcpts if reply.is_positive)

    @property
    def rejected(self) -> tuple[tuple[str, Reply], ...]:
        return tuple((rcpt, reply) for rcpt, reply in self.rcpts if not reply.is_positive)

    @property
    def delivered(self) -> bool:
        """True when the server took responsibility for the message (250 after the data)."""
        return self.data is not None and self.data.is_positive


class SMTPClient:
    """One SMTP connection. Commands are sent whatever the session state (a conformance
    tester must be able to send them out of order); ``state`` tracks RFC 5321 §4.1.4."""

    greeting: Reply
    transcript: Transcript
    extensions: dict[str, str]
    is_tls: bool
    state: SessionState

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        transcript: Transcript,
        timeout: float,
        local_hostname: str,
        is_tls: bool,
        max_line_length: int = MAX_REPLY_LINE,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = ReplyParser(max_line=max_line_length)
        self._closed = False
        peer = writer.get_extra_info("peername")
        #: The peer's address: the default TLS server name for STARTTLS, as for implicit TLS.
        self.host: str = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self.transcript = transcript
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.is_tls = is_tls
        self.extensions = {}
        self.ehlo_reply: Reply | None = None
        self.state = SessionState.CONNECTED
        self.last_reply: Reply | None = None

    # -- connection ----------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        implicit_tls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 - the documented API; used with asyncio.timeout
        transcript: Transcript | None = None,
        local_hostname: str = "client.mailharness.invalid",
        max_line_length: int = MAX_REPLY_LINE,
        local_address: str | None = None,
    ) -> SMTPClient:
        """Connect to *host* (an IP address literal), from *local_address* (an IP address
        literal) when given, and read the greeting."""
        check_ip(host, "SMTPClient")
        if local_address is not None:
            check_ip(local_address, "SMTPClient")
        if transcript is None:
            transcript = Transcript(f"smtp {host}:{port}")
        reader, writer = await open_stream(
            host, port, implicit_tls=implicit_tls, ssl_context=ssl_context,
            server_hostname=server_hostname, timeout=timeout, transcript=transcript, errors=_ERRORS,
            local_address=local_address,
        )
        client = cls(
            reader,
            writer,
            transcript=transcript,
            timeout=timeout,
            local_hostname=local_hostname,
            is_tls=implicit_tls,
            max_line_length=max_line_length,
        )
        try:
            client.greeting = await client.read_reply()
        except BaseException:
            await client.close()
            raise
        client._advance(GREETING, client.greeting)
        return client

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close the connection (idempotent) and wait until the transport is gone."""
        if self._closed:
            return
        self._closed = True
        self.state = SessionState.CLOSED
        await close_stream(self._writer, self.transcript)

    async def __aenter__(self) -> SMTPClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._closed and self.state not in (SessionState.CLOSED, SessionState.DATA):
            try:
                async with asyncio.timeout(min(self.timeout, CLOSE_TIMEOUT)):
                    await self.quit()
            except (SMTPClientError, RemoteProtocolError, OSError):
                pass  # OSError includes TimeoutError
        await self.close()

    # -- raw I/O -------------------------------------------------------------------------------

    async def send_raw(self, data: bytes) -> None:
        """Send exactly *data* (for deliberately malformed input); recorded in the transcript."""
        if self._closed:
            raise SMTPConnectionClosed("connection already closed")
        try:
            await send_recorded(
                self._writer, data, timeout=self.timeout, transcript=self.transcript, errors=_ERRORS
            )
        except SMTPConnectionClosed:
            self.state = SessionState.CLOSED
            raise

    async def read_reply(self, timeout: float | None = None) -> Reply:  # noqa: ASYNC109
        """The next complete reply. Raises SMTPTimeout, SMTPConnectionClosed, or
        RemoteProtocolError for a malformed reply (a finding, bytes in the transcript)."""
        if (reply := self._parser.next_reply()) is not None:
            self.last_reply = reply
            return reply
        if self._closed:
            raise SMTPConnectionClosed("connection already closed")
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                while True:
                    try:
                        chunk = await self._reader.read(READ_CHUNK)
                    except OSError as exc:
                        self.transcript.note(f"connection lost: {exc}")
                        self.state = SessionState.CLOSED
                        raise SMTPConnectionClosed(f"connection lost: {exc}") from exc
                    if not chunk:
                        pending = self._parser.buffered
                        self.transcript.note("connection closed by peer")
                        self.state = SessionState.CLOSED
                        raise SMTPConnectionClosed(
                            "connection closed by peer"
                            + (f" after partial reply {pending[:80]!r}" if pending else "")
                        )
                    self.transcript.server(chunk)
                    self._parser.feed(chunk)
                    if (reply := self._parser.next_reply()) is not None:
                        self.last_reply = reply
                        return reply
        except TimeoutError:
            self.transcript.note(f"timeout after {limit}s waiting for a reply")
            raise SMTPTimeout(f"no reply within {limit}s") from None

    def _advance(self, verb: str, reply: Reply) -> None:
        """Follow the state machine; a server that breaks the order is recorded, not fatal."""
        event = event_for_reply(verb, reply.code)
        try:
            self.state = transition(self.state, event)
        except LocalProtocolError:
            self.transcript.note(f"state: no transition from {self.state.name} on {event.name}")
            if event is SessionEvent.CONNECTION_CLOSED:
                self.state = SessionState.CLOSED

    # -- commands ------------------------------------------------------------------------------

    async def command(self, line: str) -> Reply:
        """Send one command line (without CRLF; CR and LF are refused) and read its reply."""
        data = check_command_line(line)
        self._refuse_unasked_lines()
        await self.send_raw(data)
        reply = await self.read_reply()
        self._advance(command_verb(line), reply)
        return reply

    async def _catch_stray_lines(self, wait: float = STRAY_WAIT) -> None:
        """After a reply that often comes in many writes (EHLO), take what else arrives within
        *wait* seconds, so that the lines of a multiline reply that ended early are caught as
        unasked lines, not read as the reply to the next command."""
        if self._closed or self._parser.buffered:
            return
        try:
            chunk = await asyncio.wait_for(self._reader.read(READ_CHUNK), wait)
        except (TimeoutError, OSError):
            return
        if chunk:  # b"" is the end of the stream, which the next read sees again
            self.transcript.server(chunk)
            self._parser.feed(chunk)

    def _refuse_unasked_lines(self) -> None:
        """Reply lines that came after the end of the last reply, before we sent anything, are
        a broken reply (RFC 5321 §4.2: "an SMTP client ... waits for a reply"; one reply per
        command): a multiline reply that ended too early, most often. Left alone, they would be
        read as the reply to the next command. A 421 is the exception: a server may send it
        at any time before it closes (RFC 5321 §3.8)."""
        pending = self._parser.buffered
        if pending and not pending.startswith(b"421"):
            raise SMTPSyntaxError(
                "reply lines after the end of the last reply, before the next command "
                "(a multiline reply ended early? RFC 5321 §4.2.1)", pending,
            )

    async def ehlo(self, name: str | None = None) -> Reply:
        reply = await self.command(f"EHLO {name or self.local_hostname}")
        await self._catch_stray_lines()
        if reply.is_positive:
            self.ehlo_reply = reply
            self.extensions = parse_ehlo_keywords(reply)
        return reply

    async def helo(self, name: str | None = None) -> Reply:
        reply = await self.command(f"HELO {name or self.local_hostname}")
        if reply.is_positive:
            self.ehlo_reply = None
            self.extensions = {}
        return reply

    def supports(self, keyword: str) -> bool:
        """True if the last EHLO advertised *keyword*."""
        return keyword.upper() in self.extensions

    async def starttls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None
    ) -> Reply:
        """STARTTLS; on 220 negotiate TLS (the certificate is checked against *server_hostname*,
        by default the peer's IP address). Extensions are forgotten (RFC 3207 §4.2: "the client
        MUST discard any knowledge obtained from the server"); send EHLO again."""
        reply = await self.command("STARTTLS")
        if reply.code != C220_READY:
            return reply
        if self._parser.buffered:
            # Plaintext that arrived before the handshake would be read as if it came over TLS
            # (the STARTTLS injection flaw, CVE-2011-0411 and kin).
            raise SMTPSyntaxError(
                "server sent data after 220 to STARTTLS, before the TLS handshake",
                self._parser.buffered,
            )
        await self.negotiate_tls(ssl_context, server_hostname)
        return reply

    async def negotiate_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None
    ) -> None:
        """The second half of STARTTLS: the handshake after a 220, and forgetting what EHLO
        said. starttls() calls it; call it directly after a STARTTLS sent with send_raw (to
        pipeline other commands behind it) and its 220 read with read_reply."""
        await upgrade_tls(
            self._writer, ssl_context, server_hostname=server_hostname or self.host or None,
            timeout=self.timeout, transcript=self.transcript, errors=_ERRORS,
        )
        self.is_tls = True
        self.extensions = {}
        self.ehlo_reply = None

    async def _sasl_line(self, line: str) -> Reply:
        self._refuse_unasked_lines()
        await self.send_raw(check_command_line(line))
        return await self.read_reply()

    async def _finish_auth(self, reply: Reply) -> Reply:
        if reply.code == C334_AUTH_CONTINUE:
            # An unexpected further challenge: cancel (RFC 4954 §4), the server MUST answer 501.
            reply = await self._sasl_line(sasl.CANCEL)
        self._advance("AUTH", reply)
        return reply

    async def auth_plain(
        self, username: str, password: str, *, initial_response: bool = True, authzid: str = ""
    ) -> Reply:
        """AUTH PLAIN (RFC 4616), with the credentials on the AUTH line or after 334."""
        response = sasl.plain_initial_response(username, password, authzid)
        line = f"AUTH PLAIN {response}"
        # RFC 4954 §4: "If use of the initial response argument would cause the AUTH command to
        # exceed this length, the client MUST NOT use the initial response parameter".
        if initial_response and len(line) + 2 <= MAX_COMMAND_LINE:
            return await self._finish_auth(await self._sasl_line(line))
        reply = await self._sasl_line("AUTH PLAIN")
        if reply.code != C334_AUTH_CONTINUE:
            self._advance("AUTH", reply)
            return reply
        return await self._finish_auth(await self._sasl_line(response))

    async def auth_login(self, username: str, password: str) -> Reply:
        """AUTH LOGIN: user name and password each answer one 334 challenge."""
        reply = await self._sasl_line("AUTH LOGIN")
        for value in (username, password):
            if reply.code != C334_AUTH_CONTINUE:
                self._advance("AUTH", reply)
                return reply
            reply = await self._sasl_line(sasl.login_response(value))
        return await self._finish_auth(reply)

    async def mail(self, address: str, params: Sequence[str] = ()) -> Reply:
        """MAIL FROM:<address> [params]; "" is the null reverse-path."""
        return await self.command(" ".join((f"MAIL FROM:{format_path(address)}", *params)))

    async def rcpt(self, address: str, params: Sequence[str] = ()) -> Reply:
        return await self.command(" ".join((f"RCPT TO:{format_path(address)}", *params)))

    async def data(
        self, message: bytes, *, stuff: bool = True, timeout: float | None = None  # noqa: ASYNC109
    ) -> Reply:
        """DATA; after 354 the CRLF-normalised message and CRLF.CRLF. With ``stuff=False`` lines
        starting with "." are sent undoubled (a deliberate violation). Returns the 354's
        replacement if DATA is refused, else the reply to the end of data."""
        reply = await self.command("DATA")
        if reply.code != C354_START_DATA:
            return reply
        await self.send_raw(data_payload(message, stuff=stuff))
        # RFC 5321 §4.5.3.2.6 allows the server 10 minutes here; callers may pass that.
        final = await self.read_reply(timeout)
        self._advance(END_DATA, final)
        return final

    async def rset(self) -> Reply:
        return await self.command("RSET")

    async def noop(self) -> Reply:
        return await self.command("NOOP")

    async def vrfy(self, arg: str) -> Reply:
        return await self.command(f"VRFY {arg}")

    async def quit(self) -> Reply:
        """QUIT, then close the connection whatever happens."""
        try:
            return await self.command("QUIT")
        finally:
            await self.close()

    async def send_message(
        self, mail_from: str, recipients: Sequence[str], message: bytes
    ) -> SendResult:
        """One transaction, as harness/protocol/smtp/transaction.py plans it, one command at a
        time: MAIL, RCPT for each recipient, DATA if any was accepted. When no recipient was
        accepted the transaction is reset so the session can go on."""
        plan = TransactionPlan(mail_from, recipients, message)
        steps = plan.start()
        while plan.outcome is None:
            (step,) = steps  # one command at a time: each reply decides the next
            if step.payload is not None:
                await self.send_raw(step.payload)
                reply = await self.read_reply()
                self._advance(END_DATA, reply)
            elif plan.awaiting == "RSET":
                try:
                    reply = await self.command(step.line)
                except SMTPClientError:
                    plan.abandon()  # the transaction had failed; the session may go on or not
                    break
            else:
                reply = await self.command(step.line)
            steps = plan.feed(reply)
        outcome = plan.outcome
        assert outcome is not None
        return SendResult(outcome.mail, tuple(zip(recipients, outcome.rcpts, strict=False)),
                          outcome.data)
