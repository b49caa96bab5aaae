"""Blocking SMTP and IMAP clients over plain sockets, driving the same sans-IO protocol cores
as the asyncio clients (harness/protocol/smtp, harness/protocol/imap).

They are for code that cannot run an event loop: Locust's users (gevent patches the socket
module, so a blocking socket there is a green one) and threads of a load generator. One core,
served by both kinds of client: a reply or response is parsed by the same `ReplyParser` and
`ResponseParser`, with the same limits. h11's split of protocol and I/O is the model.

The clients do what a load run needs (connect, TLS, authenticate, send mail with PIPELINING
where offered, IMAP commands with literals). Instead of a transcript they keep, when given one, a
`Ring`: the last lines each way, so that a load run can show what a session said around a
violation with memory that stays flat. Connections go to IP addresses only, as everywhere in the
harness."""

from __future__ import annotations

import itertools
import select
import socket
import ssl
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from harness.clients.stream import check_ip
from harness.protocol import sasl
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.imap.formatting import astring
from harness.protocol.imap.response_values import Capability, Continuation, Response, Tagged
from harness.protocol.imap.responses import ResponseParser
from harness.protocol.smtp.commands import parse_ehlo_keywords
from harness.protocol.smtp.replies import Reply, ReplyParser
from harness.protocol.smtp.transaction import Step, TransactionPlan

READ_CHUNK = 65536


class BlockingClientError(Exception):
    """The connection failed, closed or timed out, or the peer broke the protocol."""


class BlockingProtocolError(BlockingClientError):
    """The server sent what its protocol's syntax does not allow (the parser's error)."""


#: Lines of a chunk a ring keeps (a FETCH of a body is mostly body: its first lines tell).
_RING_LINES_PER_CHUNK = 6
_RING_LINE_CHARS = 160


class Ring:
    """The last *size* lines a session sent and received, each with its time since the ring
    began: what a load run shows of a session around a violation. Bounded, however long the
    session; a chunk of many lines (a message body) keeps its first few and a count."""

    def __init__(self, name: str, size: int = 80) -> None:
        self.name = name
        self.started = time.monotonic()
        self.lines: deque[str] = deque(maxlen=size)

    def record(self, direction: str, data: bytes) -> None:
        at = time.monotonic() - self.started
        # Only the first lines are kept: the rest of a chunk (a FETCH of many messages, a body)
        # is counted, not split.
        lines = data.split(b"\n", _RING_LINES_PER_CHUNK)
        more = 0
        if len(lines) > _RING_LINES_PER_CHUNK:
            rest = lines.pop()
            more = rest.count(b"\n") + (1 if rest and not rest.endswith(b"\n") else 0)
        elif lines and not lines[-1]:
            lines.pop()
        for line in lines:
            text = line.rstrip(b"\r").decode("utf-8", "replace")
            words = text.split()
            if direction == "C:" and len(words) > 2 and (
                    words[0].upper() == "AUTH" or words[1].upper() == "LOGIN"):
                text = " ".join(words[:3 if words[0].upper() == "AUTH" else 2]) + " (credentials not kept)"
            if len(text) > _RING_LINE_CHARS:
                text = text[:_RING_LINE_CHARS] + f"... ({len(text)} chars)"
            self.lines.append(f"{at:8.3f} {direction} {text}")
        if more:
            self.lines.append(f"{at:8.3f} {direction} ... {more} "
                              f"more lines ({len(data)} octets in this chunk)")

    def snapshot(self) -> tuple[str, ...]:
        return tuple(self.lines)


def _connect(host: str, port: int, timeout: float, what: str) -> socket.socket:
    check_ip(host, what)
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise BlockingClientError(f"cannot connect to {host}:{port}: {exc}") from exc


def _wrap(sock: socket.socket, context: ssl.SSLContext, server_hostname: str | None) -> ssl.SSLSocket:
    try:
        return context.wrap_socket(sock, server_hostname=server_hostname)
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        raise BlockingClientError(f"TLS handshake failed: {exc}") from exc


class _Connection:
    """A socket, and the reading and writing both clients need."""

    def __init__(self, sock: socket.socket, ring: Ring | None = None) -> None:
        self.sock: socket.socket = sock
        self.closed = False
        self.ring = ring

    def send(self, data: bytes) -> None:
        if self.ring is not None:
            self.ring.record("C:", data)
        try:
            self.sock.sendall(data)
        except OSError as exc:
            self.close()
            raise BlockingClientError(f"send failed: {exc}") from exc

    def receive(self) -> bytes:
        try:
            chunk = self.sock.recv(READ_CHUNK)
        except TimeoutError as exc:
            raise BlockingClientError("timed out waiting for the server") from exc
        except OSError as exc:
            self.close()
            raise BlockingClientError(f"connection lost: {exc}") from exc
        if not chunk:
            self.close()
            raise BlockingClientError("connection closed by the server")
        if self.ring is not None:
            self.ring.record("S:", chunk)
        return chunk

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()

    def protocol_error(self, what: str, exc: RemoteProtocolError) -> BlockingProtocolError:
        """What the parser raised about the server's bytes ends the connection: the error to
        raise from it. (The readers catch it inline, where a context manager would cost a
        generator for every reply and response.)"""
        self.close()
        return BlockingProtocolError(f"bad {what}: {exc}")


class _Client:
    """What both clients share: the connection, and the goodbye that closes it whatever the
    server does."""

    _conn: _Connection

    @property
    def closed(self) -> bool:
        return self._conn.closed

    def close(self) -> None:
        self._conn.close()

    def command(self, line: str) -> object:
        raise NotImplementedError

    def _goodbye(self, line: str) -> None:
        try:
            if not self.closed:
                self.command(line)
        except BlockingClientError:
            pass
        finally:
            self.close()


@dataclass(frozen=True, slots=True)
class Transaction:
    """The replies of one mail transaction: *data* is the reply after the message, or DATA's
    refusal; None when DATA was not sent or met no recipient."""

    mail: Reply
    rcpts: tuple[Reply, ...]
    data: Reply | None

    @property
    def accepted(self) -> bool:
        return self.data is not None and self.data.is_positive


class BlockingSMTP(_Client):
    """An SMTP session: `connect`, then `ehlo`, `starttls`, `auth_plain`, `send`, `quit`."""

    def __init__(self, conn: _Connection, *, local_hostname: str, is_tls: bool) -> None:
        self._conn = conn
        self._parser = ReplyParser()
        self.local_hostname = local_hostname
        self.is_tls = is_tls
        self.extensions: dict[str, str] = {}
        self.greeting = self.read_reply()

    @classmethod
    def connect(cls, host: str, port: int, *, timeout: float = 30.0,
                local_hostname: str = "client.mailharness.invalid", implicit_tls: bool = False,
                ssl_context: ssl.SSLContext | None = None,
                server_hostname: str | None = None, ring: Ring | None = None) -> BlockingSMTP:
        sock = _connect(host, port, timeout, "BlockingSMTP")
        if implicit_tls:
            sock = _wrap(sock, ssl_context or ssl.create_default_context(), server_hostname or host)
        try:
            return cls(_Connection(sock, ring), local_hostname=local_hostname, is_tls=implicit_tls)
        except BaseException:
            sock.close()
            raise

    def supports(self, keyword: str) -> bool:
        return keyword.upper() in self.extensions

    def read_reply(self) -> Reply:
        try:
            while (reply := self._parser.next_reply()) is None:
                self._parser.feed(self._conn.receive())
        except RemoteProtocolError as exc:
            raise self._conn.protocol_error("reply", exc) from exc
        return reply

    def command(self, line: str) -> Reply:
        self._conn.send(line.encode("utf-8") + b"\r\n")
        return self.read_reply()

    def ehlo(self) -> Reply:
        reply = self.command(f"EHLO {self.local_hostname}")
        self.extensions = parse_ehlo_keywords(reply) if reply.is_positive else {}
        return reply

    def starttls(self, context: ssl.SSLContext, server_hostname: str | None = None) -> Reply:
        """STARTTLS; on 220 the handshake, then EHLO again (RFC 3207 §4.2: the client MUST
        discard what it knew of the server)."""
        reply = self.command("STARTTLS")
        if reply.code != 220:
            return reply
        if self._parser.buffered:
            self._conn.close()
            raise BlockingClientError("the server sent data before the TLS handshake")
        self._conn.sock = _wrap(self._conn.sock, context, server_hostname)
        self.is_tls = True
        self.extensions = {}
        self.ehlo()
        return reply

    def auth_plain(self, user: str, password: str) -> Reply:
        return self.command(f"AUTH PLAIN {sasl.plain_initial_response(user, password)}")

    def send(self, mail_from: str, recipients: Sequence[str], message: bytes) -> Transaction:
        """One transaction, as harness/protocol/smtp/transaction.py plans it: with PIPELINING
        (RFC 2920) MAIL, the RCPTs and DATA go in one write and their replies are read
        together; without it, one command at a time. A failed transaction is reset."""
        plan = TransactionPlan(mail_from, recipients, message,
                               pipelining=self.supports("PIPELINING"), reset_on_refusal=True)
        self._send_steps(plan.start())
        while plan.outcome is None:
            try:
                reply = self.read_reply()
            except BlockingClientError:
                if plan.awaiting != "RSET":
                    raise
                plan.abandon()  # the transaction had failed; the server has gone since
                break
            try:
                steps = plan.feed(reply)
            except RemoteProtocolError as exc:
                self._conn.close()
                raise BlockingProtocolError(str(exc)) from exc
            self._send_steps(steps)
        outcome = plan.outcome
        assert outcome is not None
        return Transaction(outcome.mail, outcome.rcpts, outcome.data)

    def _send_steps(self, steps: Sequence[Step]) -> None:
        if steps:
            self._conn.send(b"".join(step.payload if step.payload is not None
                                     else step.line.encode("utf-8") + b"\r\n" for step in steps))

    def quit(self) -> None:
        """QUIT, then close, whatever the server does."""
        self._goodbye("QUIT")


@dataclass(frozen=True, slots=True)
class Completed:
    """One IMAP command's untagged responses and its tagged completion."""

    tagged: Tagged
    untagged: tuple[Response, ...]

    @property
    def ok(self) -> bool:
        return self.tagged.status == "OK"


class BlockingIMAP(_Client):
    """An IMAP session: `connect`, then `login`, `command` (literals sent when the server
    asks, or at once with LITERAL+), `logout`."""

    def __init__(self, conn: _Connection, *, prefix: str = "L") -> None:
        self._conn = conn
        self._parser = ResponseParser(expect_greeting=True)
        self._tags = (f"{prefix}{n}" for n in itertools.count(1))
        self.capabilities: frozenset[str] = frozenset()
        self.greeting = self.read_response()

    @classmethod
    def connect(cls, host: str, port: int, *, timeout: float = 30.0,
                ssl_context: ssl.SSLContext | None = None,
                server_hostname: str | None = None, ring: Ring | None = None) -> BlockingIMAP:
        """Over implicit TLS when *ssl_context* is given, in the clear otherwise."""
        sock = _connect(host, port, timeout, "BlockingIMAP")
        if ssl_context is not None:
            sock = _wrap(sock, ssl_context, server_hostname or host)
        try:
            return cls(_Connection(sock, ring))
        except BaseException:
            sock.close()
            raise

    def read_response(self) -> Response:
        try:
            while (response := self._parser.next_response()) is None:
                self._parser.feed(self._conn.receive())
        except RemoteProtocolError as exc:
            raise self._conn.protocol_error("response", exc) from exc
        return response

    def command(self, text: str, *literals: bytes) -> Completed:
        """Send ``tag SP text`` where each ``{}`` in *text* stands for one of *literals*
        (sent as a synchronising literal, or non-synchronising with LITERAL+, RFC 7888), and
        read until the tagged completion."""
        tag = next(self._tags)
        pieces = text.split("{}")
        if len(pieces) != len(literals) + 1:
            raise ValueError("one literal for each {} in the command")
        plus = "LITERAL+" in self.capabilities
        untagged: list[Response] = []
        line = f"{tag} {pieces[0]}".encode()
        for literal, rest in zip(literals, pieces[1:], strict=True):
            self._conn.send(line + (f"{{{len(literal)}+}}" if plus else f"{{{len(literal)}}}")
                            .encode() + b"\r\n")
            if not plus:
                while not isinstance(response := self.read_response(), Continuation):
                    if isinstance(response, Tagged) and response.tag == tag:
                        return Completed(response, tuple(untagged))  # refused the literal
                    untagged.append(response)
            line = literal + rest.encode()
        self._conn.send(line + b"\r\n")
        while True:
            response = self.read_response()
            if isinstance(response, Tagged) and response.tag == tag:
                return Completed(response, tuple(untagged))
            if not isinstance(response, Continuation):
                untagged.append(response)

    def _poll(self, deadline: float) -> Response | None:
        """The next response if one is complete or arrives before *deadline*, else None."""
        try:
            while (response := self._parser.next_response()) is None:
                sock = self._conn.sock
                pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
                if not pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
                        return None
                self._parser.feed(self._conn.receive())
        except RemoteProtocolError as exc:
            raise self._conn.protocol_error("response", exc) from exc
        return response

    def idle(self, seconds: float) -> Completed:
        """IDLE (RFC 2177) until the server sends an untagged response or *seconds* pass, then
        DONE: the responses that came, and the tagged completion."""
        tag = next(self._tags)
        self._conn.send(f"{tag} IDLE\r\n".encode())
        untagged: list[Response] = []
        while not isinstance(response := self.read_response(), Continuation):
            if isinstance(response, Tagged) and response.tag == tag:
                return Completed(response, tuple(untagged))  # IDLE refused
            untagged.append(response)
        deadline = time.monotonic() + seconds
        while not untagged and (polled := self._poll(deadline)) is not None:
            if isinstance(polled, Tagged) and polled.tag == tag:
                return Completed(polled, tuple(untagged))
            untagged.append(polled)
        self._conn.send(b"DONE\r\n")
        while True:
            response = self.read_response()
            if isinstance(response, Tagged) and response.tag == tag:
                return Completed(response, tuple(untagged))
            if not isinstance(response, Continuation):
                untagged.append(response)

    def login(self, user: str, password: str) -> Completed:
        result = self.command(f"LOGIN {astring(user).decode()} {astring(password).decode()}")
        if result.ok:
            self.refresh_capabilities()
        return result

    def refresh_capabilities(self) -> None:
        result = self.command("CAPABILITY")
        found: set[str] = set()
        for response in result.untagged:
            if isinstance(response, Capability):
                found.update(c.upper() for c in response.caps)
        self.capabilities = frozenset(found)

    def logout(self) -> None:
        """LOGOUT, then close, whatever the server does."""
        self._goodbye("LOGOUT")
