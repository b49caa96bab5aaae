"""The asyncio IMAP client: commands, IDLE and raw mode over the strict response parser, with a transcript."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from harness.clients.stream import (
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
from harness.protocol.errors import (
    IMAPSyntaxError,
    LocalProtocolError,
    ProtocolError,
)
from harness.protocol.imap.command_format import (
    AUTHENTICATE_CANCEL,
    IDLE_DONE,
    fetch_items,
    format_command,
)
from harness.protocol.imap.command_parser import parse_date_time
from harness.protocol.imap.command_values import (
    Append,
    AppendMessage,
    Authenticate,
    Command,
    CommandArgs,
    Compress,
    FetchItem,
    ListArgs,
    Login,
    MailboxArg,
    SearchKey,
    Store,
)
from harness.protocol.imap.command_values import Search as SearchCommand
from harness.protocol.imap.deflate import DEFLATE, DeflateError, Deflater, Inflater
from harness.protocol.imap.lexer import ParseError
from harness.protocol.imap.responses import (
    STATUS_BYE,
    STATUS_OK,
    STATUS_PREAUTH,
    Capability,
    Continuation,
    Exists,
    Fetch,
    Flags,
    Recent,
    Response,
    ResponseCode,
    ResponseParser,
    Search,
    Tagged,
    UntaggedStatus,
)
from harness.protocol.imap.seqset import SequenceSet
from harness.protocol.imap.state import State, Transition, observed_state, transition_for


class IMAPClientError(Exception):
    """The IMAP session failed in a way that is not a grammar violation by the server."""


class IMAPConnectionClosed(IMAPClientError, ConnectionError):
    """The connection is closed (by the peer, or already by us)."""


class IMAPTimeout(IMAPClientError, TimeoutError):
    """The server did not answer in time."""


class IMAPTLSError(IMAPClientError, ConnectionError):
    """The TLS handshake failed."""


_ERRORS = ErrorKinds(
    connect=IMAPConnectionClosed, closed=IMAPConnectionClosed, timeout=IMAPTimeout, tls=IMAPTLSError
)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The tagged completion of one command and the untagged responses that came with it."""

    tag: str
    status: str
    code: ResponseCode | None
    text: str
    untagged: tuple[Response, ...]

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


@dataclass(frozen=True, slots=True)
class SelectResult:
    """SELECT/EXAMINE: the command result and what the server reported about the mailbox."""

    result: CommandResult
    exists: int
    recent: int | None
    flags: tuple[str, ...]
    permanent_flags: tuple[str, ...] | None
    uidvalidity: int | None
    uidnext: int | None
    read_only: bool
    #: RFC 7162 §3.1.2.1 HIGHESTMODSEQ, when the server reported it.
    highestmodseq: int | None = None


def _check_line(text: str) -> bytes:
    if "\r" in text or "\n" in text:
        raise LocalProtocolError("a command line cannot contain CR or LF")
    return text.encode("utf-8")


def _sequence_set(message_set: str | SequenceSet) -> SequenceSet:
    if isinstance(message_set, SequenceSet):
        return message_set
    try:
        return SequenceSet.parse(message_set)
    except ValueError as exc:
        raise LocalProtocolError(f"not a sequence set: {message_set!r}") from exc


#: The pieces of one command for a tag (see ``join_parts``): the core formats them.
_Pieces = Callable[[str], tuple[bytes, ...]]


def _typed(name: str, args: CommandArgs = None) -> _Pieces:
    return lambda tag: format_command(Command(tag, name, args))


def _then(first: _Pieces, line: bytes) -> _Pieces:
    """*first*, then *line* after the server's "+" (a SASL response)."""
    return lambda tag: (*first(tag), line)


def _text(*words: bytes) -> _Pieces:
    """A command the caller wrote as wire text, whole (raw mode) or in its arguments (fetch
    items, search criteria, which may name extensions this core does not know)."""
    return lambda tag: (b" ".join((tag.encode("ascii"), *words)) + b"\r\n",)


class IMAPClient:
    """One IMAP connection. Commands run one at a time; every byte goes to ``transcript``.

    A server that breaks the response grammar raises RemoteProtocolError (a finding, with the
    bytes); a closed connection IMAPConnectionClosed; a silent server IMAPTimeout."""

    greeting: Response
    capabilities: frozenset[str]
    transcript: Transcript
    is_tls: bool

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        transcript: Transcript,
        timeout: float,
        is_tls: bool,
        server_hostname: str | None,
        max_line: int = 1_000_000,
        max_literal: int = 100 * 1024 * 1024,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = ResponseParser(max_line, max_literal, expect_greeting=True)
        self._max_inflated = max_line + max_literal
        self._closed = False
        #: RFC 9051 §3, from the server's answers through the core's transition table.
        self.state = State.NOT_AUTHENTICATED
        self._in_progress: str | None = None  # the tag of the command on the wire
        self._tag_counter = 0
        self._pending: list[Response] = []
        self._abandoned: set[str] = set()
        self._last_bye: UntaggedStatus | None = None
        peer = writer.get_extra_info("peername")
        self.host: str = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self.server_hostname = server_hostname
        self.transcript = transcript
        self.timeout = timeout
        self.is_tls = is_tls
        self.capabilities = frozenset()
        #: COMPRESS=DEFLATE (RFC 4978), once compress() succeeded: the transcript keeps the
        #: protocol text, the socket carries it compressed.
        self._deflater: Deflater | None = None
        self._inflater: Inflater | None = None

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
    ) -> IMAPClient:
        """Connect to *host* (an IP address literal) and read the greeting."""
        check_ip(host, "IMAPClient")
        if transcript is None:
            transcript = Transcript(f"imap {host}:{port}")
        reader, writer = await open_stream(
            host, port, implicit_tls=implicit_tls, ssl_context=ssl_context,
            server_hostname=server_hostname, timeout=timeout, transcript=transcript, errors=_ERRORS,
        )
        client = cls(
            reader,
            writer,
            transcript=transcript,
            timeout=timeout,
            is_tls=implicit_tls,
            server_hostname=server_hostname,
        )
        try:
            client.greeting = await client.read_response()
        except BaseException:
            await client.close()
            raise
        return client

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close the connection (idempotent) and wait until the transport is gone."""
        if self._closed:
            return
        self._closed = True
        self._advance(Transition.LOGOUT)
        await close_stream(self._writer, self.transcript)

    async def __aenter__(self) -> IMAPClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._closed and self.state is not State.LOGOUT and self._in_progress is None:
            try:
                await self.logout()
            except (IMAPClientError, ProtocolError, OSError):
                pass
        await self.close()

    # -- raw I/O -------------------------------------------------------------------------------

    async def send_raw(self, data: bytes) -> None:
        """Send exactly *data* (for deliberately malformed input); recorded in the transcript."""
        if self._closed:
            raise IMAPConnectionClosed("connection already closed")
        wire = self._deflater.compress(data) if self._deflater is not None else None
        await send_recorded(
            self._writer, data, timeout=self.timeout, transcript=self.transcript, errors=_ERRORS,
            wire=wire,
        )

    async def read_response(self, timeout: float | None = None) -> Response:  # noqa: ASYNC109
        """The next response from the wire, whatever it is (raw mode).

        With *timeout*, the whole response must arrive within it; without, ``self.timeout``
        bounds each wait for more bytes (so a large literal may take longer, while it flows).
        Raises IMAPTimeout, IMAPConnectionClosed, or RemoteProtocolError (malformed response)."""
        return await self._next(timeout)

    async def _next(self, within: float | None, *, note_timeout: bool = True) -> Response:
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while (response := self._parser.next_response()) is None:
            if self._closed:
                raise IMAPConnectionClosed("connection already closed")
            limit = self.timeout if deadline is None else max(0.0, deadline - loop.time())
            try:
                async with asyncio.timeout(limit):
                    chunk = await self._reader.read(READ_CHUNK)
            except TimeoutError:
                if note_timeout:
                    self.transcript.note(f"timeout after {limit:g}s waiting for a response")
                raise IMAPTimeout(f"no response within {limit:g}s") from None
            except OSError as exc:
                self._advance(Transition.LOGOUT)
                self.transcript.note(f"connection lost: {exc}")
                raise IMAPConnectionClosed(f"connection lost: {exc}") from exc
            if not chunk:
                self._advance(Transition.LOGOUT)
                pending = self._parser.buffered
                self.transcript.note("connection closed by peer")
                bye = self._last_bye
                reason = f" after BYE {bye.text!r}" if bye is not None else ""
                raise IMAPConnectionClosed(
                    f"connection closed by peer{reason}"
                    + (f" inside a response ({pending} octets pending)" if pending else "")
                )
            if self._inflater is not None:
                chunk = self._inflate(chunk)
            self.transcript.server(chunk)
            self._parser.feed(chunk)
        self._observe(response)
        return response

    def _inflate(self, chunk: bytes) -> bytes:
        """The protocol text of compressed octets, bounded by the parser's own limits (a
        server's decompression bomb ends as an over-long line or literal there)."""
        assert self._inflater is not None
        self._inflater.feed(chunk)
        out = bytearray()
        try:
            while piece := self._inflater.take(READ_CHUNK):
                out += piece
                if len(out) > self._max_inflated:
                    break
        except DeflateError as exc:
            self.transcript.note(f"COMPRESS: {exc.message}")
            raise
        return bytes(out)

    @property
    def compressed(self) -> bool:
        return self._deflater is not None

    def _advance(self, transition: Transition) -> None:
        self.state = observed_state(self.state, transition)

    def _observe(self, response: Response) -> None:
        """Track the state (PREAUTH, BYE) and capabilities (CAPABILITY responses and codes)."""
        if isinstance(response, UntaggedStatus) and response.status == STATUS_BYE:
            self._last_bye = response
            self._advance(Transition.LOGOUT)
        elif isinstance(response, UntaggedStatus) and response.status == STATUS_PREAUTH:
            self._advance(Transition.AUTHENTICATE)
        if isinstance(response, Capability):
            self.capabilities = frozenset(c.upper() for c in response.caps)
        elif isinstance(response, (Tagged, UntaggedStatus, Continuation)):
            code = response.code
            if code is not None and code.name == "CAPABILITY" and isinstance(code.value, tuple):
                self.capabilities = frozenset(str(c).upper() for c in code.value)

    async def _write(self, data: bytes) -> None:
        await self.send_raw(data)

    # -- command machinery ---------------------------------------------------------------------

    def _next_tag(self) -> str:
        self._tag_counter += 1
        return f"A{self._tag_counter:04d}"

    def _peek_tag(self) -> str:
        return f"A{self._tag_counter + 1:04d}"

    def _start(self) -> str:
        """The tag of a new command, now in progress."""
        if self._in_progress is not None:
            raise LocalProtocolError("another IMAP command is in progress on this connection")
        if self._closed:
            raise IMAPConnectionClosed("connection already closed")
        self._in_progress = self._next_tag()
        return self._in_progress

    def _end(self, tag: str, *, abandoned: bool = False) -> None:
        """The command *tag* is no longer in progress; *abandoned*: its completion, if it ever
        comes, is dropped."""
        if abandoned:
            self._abandoned.add(tag)
        if self._in_progress == tag:
            self._in_progress = None

    def _requeue(self, responses: Sequence[Response]) -> None:
        """Responses read early, to be collected with the next completion."""
        self._pending[:0] = responses

    def _send_now(self, data: bytes) -> None:
        """Write without waiting (when the caller is being cancelled)."""
        self.transcript.client(data)
        self._writer.write(self._deflater.compress(data) if self._deflater is not None else data)

    def _complete(self, tagged: Tagged, untagged: Sequence[Response]) -> CommandResult:
        return CommandResult(tagged.tag, tagged.status, tagged.code, tagged.text, tuple(untagged))

    def _take_pending(self) -> list[Response]:
        taken: list[Response] = list(self._pending)
        self._pending.clear()
        return taken

    async def _await_continuation(self, tag: str) -> Continuation | Tagged:
        """Read until the server asks for more ("+") or completes the command *tag*."""
        while True:
            response = await self._next(None)
            if isinstance(response, Continuation):
                return response
            if isinstance(response, Tagged):
                if self._is_ours(response, tag):
                    return response
                continue
            self._pending.append(response)

    def _is_ours(self, response: Tagged, tag: str) -> bool:
        """True for the completion of *tag*; False for a command given up earlier (timeout,
        cancellation), whose late completion is dropped; RemoteProtocolError otherwise."""
        if response.tag == tag:
            return True
        if response.tag in self._abandoned:
            self._abandoned.discard(response.tag)
            self.transcript.note(f"late completion of abandoned command {response.tag} ignored")
            return False
        raise IMAPSyntaxError(
            f"tagged response for {response.tag!r} while {tag!r} is in progress",
            data=self._parser.last_raw,
        )

    async def _collect(self, tag: str, *, cancel_continuations: bool = False) -> CommandResult:
        untagged = self._take_pending()
        while True:
            response = await self._next(None)
            if isinstance(response, Tagged):
                if self._is_ours(response, tag):
                    return self._complete(response, untagged)
                continue
            if isinstance(response, Continuation):
                if not cancel_continuations:
                    raise IMAPSyntaxError(
                        "continuation request where none was expected",
                        data=self._parser.last_raw,
                    )
                # RFC 9051 §6.2.2: "If the client wishes to cancel an authentication exchange,
                # it issues a line consisting of a single "*"."
                await self._write(AUTHENTICATE_CANCEL)
                continue
            untagged.append(response)

    async def _run(
        self, pieces: _Pieces, *, name: str = "", cancel_continuations: bool = False
    ) -> CommandResult:
        """Send one command (each piece after the server's "+") and collect its responses;
        the completion of command *name* moves the state (RFC 9051 §3)."""
        chunks = pieces(self._peek_tag())  # a value that cannot be sent fails before the tag
        tag = self._start()
        try:
            for chunk in chunks[:-1]:
                await self._write(chunk)
                answer = await self._await_continuation(tag)
                if isinstance(answer, Tagged):
                    result = self._complete(answer, self._take_pending())
                    break
            else:
                await self._write(chunks[-1])
                result = await self._collect(tag, cancel_continuations=cancel_continuations)
        except BaseException:
            self._end(tag, abandoned=True)
            raise
        self._end(tag)
        transition = transition_for(name, ok=result.ok)
        if transition is not None:
            self._advance(transition)
        return result

    # -- commands ------------------------------------------------------------------------------

    async def command(self, name_and_args: str) -> CommandResult:
        """Send any command line (the client adds the tag) and collect its responses."""
        return await self._run(_text(_check_line(name_and_args)))

    async def capability(self) -> CommandResult:
        return await self._run(_typed("CAPABILITY"))

    async def noop(self) -> CommandResult:
        return await self._run(_typed("NOOP"))

    async def logout(self) -> CommandResult:
        """LOGOUT; the server answers BYE then OK and closes. The socket stays for close()."""
        return await self._run(_typed("LOGOUT"), name="LOGOUT")

    async def starttls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None
    ) -> CommandResult:
        """STARTTLS; on OK negotiate TLS, forget the capabilities and ask for them again."""
        result = await self._run(_typed("STARTTLS"))
        if not result.ok:
            return result
        if self._parser.buffered:
            # RFC 9051 §6.2.1: "the client MUST discard cached information about server
            # capabilities"; bytes sent in clear after OK would be read as if protected.
            raise IMAPSyntaxError(
                "data after the STARTTLS OK, before the TLS handshake",
                data=self._parser.pending,
            )
        name = server_hostname or self.server_hostname or self.host
        await upgrade_tls(
            self._writer, ssl_context, server_hostname=name, timeout=self.timeout,
            transcript=self.transcript, errors=_ERRORS,
        )
        self.is_tls = True
        self.capabilities = frozenset()
        await self.capability()
        return result

    async def compress(self, algorithm: str = DEFLATE) -> CommandResult:
        """COMPRESS *algorithm* (RFC 4978); on OK everything after the tagged response's CRLF
        is DEFLATE both ways (the transcript still shows the protocol text)."""
        result = await self._run(_typed("COMPRESS", Compress(algorithm.upper())))
        if not result.ok:
            return result
        # RFC 4978 §3: "the server MUST compress starting immediately after the CRLF which ends
        # the tagged OK response": octets that came in the same read are still to be inflated.
        leftover = self._parser.take_pending()
        self._deflater = Deflater()
        self._inflater = Inflater()
        self.transcript.note("COMPRESS DEFLATE active: what follows is shown inflated")
        if leftover:
            self._parser.feed(self._inflate(leftover))
        return result

    async def login(self, user: str, password: str) -> CommandResult:
        """LOGIN user password (each an atom, quoted string or literal, as needed)."""
        return await self._run(_typed("LOGIN", Login(user, password)), name="LOGIN")

    async def authenticate_plain(
        self, user: str, password: str, *, initial_response: bool = True
    ) -> CommandResult:
        """AUTHENTICATE PLAIN (RFC 4616), with the SASL-IR initial response or after "+"."""
        response = sasl.encode_initial_response(sasl.plain_message(user, password))
        if initial_response:
            pieces = _typed("AUTHENTICATE", Authenticate("PLAIN", response))
        else:
            pieces = _then(_typed("AUTHENTICATE", Authenticate("PLAIN", None)),
                           response.encode("ascii") + b"\r\n")
        return await self._run(pieces, name="AUTHENTICATE", cancel_continuations=True)

    async def list(self, reference: str = "", pattern: str = "*") -> CommandResult:
        return await self._run(_typed("LIST", ListArgs(reference, pattern)))

    async def select(self, mailbox: str = "INBOX", *, readonly: bool = False,
                     condstore: bool = False) -> SelectResult:
        """SELECT (or EXAMINE with *readonly*) and gather what the server reported; with
        *condstore*, the select-param CONDSTORE (RFC 7162 §3.1.8)."""
        verb = "EXAMINE" if readonly else "SELECT"
        result = await self._run(_typed(verb, MailboxArg(mailbox, condstore=condstore)), name=verb)
        highestmodseq: int | None = None
        exists: int | None = None
        recent: int | None = None
        flags: tuple[str, ...] = ()
        permanent: tuple[str, ...] | None = None
        uidvalidity: int | None = None
        uidnext: int | None = None
        for response in result.untagged:
            if isinstance(response, UntaggedStatus) and response.code is not None:
                if response.code.name == "CLOSED":
                    # RFC 9051 §6.3.2: what came before [CLOSED] was about the old mailbox.
                    exists = recent = uidvalidity = uidnext = permanent = highestmodseq = None
                    flags = ()
                elif response.code.name == "HIGHESTMODSEQ":
                    highestmodseq = _int(response.code.value)
                elif response.code.name == "PERMANENTFLAGS":
                    permanent = _str_tuple(response.code.value)
                elif response.code.name == "UIDVALIDITY":
                    uidvalidity = _int(response.code.value)
                elif response.code.name == "UIDNEXT":
                    uidnext = _int(response.code.value)
            elif isinstance(response, Exists):
                exists = response.n
            elif isinstance(response, Recent):
                recent = response.n
            elif isinstance(response, Flags):
                flags = response.flags
        read_only = readonly
        if result.code is not None and result.code.name in ("READ-ONLY", "READ-WRITE"):
            read_only = result.code.name == "READ-ONLY"
        if result.ok and exists is None:
            # RFC 9051 §6.3.2: "Before returning an OK to the client, the server MUST send the
            # following untagged data to the client." (FLAGS, <n> EXISTS, ...)
            raise IMAPSyntaxError(
                "SELECT completed OK without an untagged EXISTS", data=self._parser.last_raw
            )
        return SelectResult(
            result,
            exists or 0,
            recent,
            flags,
            permanent,
            uidvalidity,
            uidnext,
            read_only,
            highestmodseq,
        )

    async def fetch(
        self,
        message_set: str | SequenceSet,
        items: str | Sequence[FetchItem],
        *,
        uid: bool = False,
    ) -> tuple[CommandResult, dict[int, dict[str, object]]]:
        """FETCH (or UID FETCH); the items of every FETCH response merged per sequence number.

        *items* is wire text as written (``"(FLAGS BODY.PEEK[])"``, an extension item) or
        typed fetch items; *message_set* text is sent as written."""
        verb = b"UID FETCH" if uid else b"FETCH"
        seqset = (message_set.format() if isinstance(message_set, SequenceSet)
                  else message_set)
        wire = _check_line(items) if isinstance(items, str) else fetch_items(items)
        result = await self._run(_text(verb, _check_line(seqset), wire))
        merged: dict[int, dict[str, object]] = {}
        for response in result.untagged:
            if isinstance(response, Fetch):
                merged.setdefault(response.seq, {}).update(response.items)
        return result, merged

    async def store(
        self,
        message_set: str | SequenceSet,
        mode: str,
        flags: Sequence[str],
        *,
        uid: bool = False,
        silent: bool = False,
    ) -> CommandResult:
        """STORE set [+|-]FLAGS[.SILENT] (flags)."""
        if mode not in ("+", "-", ""):
            raise ValueError(f"STORE mode is '+', '-' or '', not {mode!r}")
        store = Store(_sequence_set(message_set), mode, silent, tuple(flags))
        return await self._run(_typed("UID STORE" if uid else "STORE", store))

    async def search(
        self, criteria: str | SearchKey, *, uid: bool = False
    ) -> tuple[CommandResult, tuple[int, ...]]:
        """SEARCH (or UID SEARCH) *criteria* (wire text as written, or a typed search key);
        the numbers of all SEARCH responses."""
        if isinstance(criteria, str):
            result = await self._run(
                _text(b"UID SEARCH" if uid else b"SEARCH", _check_line(criteria)))
        else:
            result = await self._run(
                _typed("UID SEARCH" if uid else "SEARCH", SearchCommand(None, criteria)))
        numbers: list[int] = []
        for response in result.untagged:
            if isinstance(response, Search):
                numbers.extend(response.numbers)
        return result, tuple(numbers)

    async def append(
        self,
        mailbox: str,
        message: bytes,
        flags: Sequence[str] = (),
        *,
        internaldate: str | datetime | None = None,
        utf8: bool = False,
    ) -> CommandResult:
        """APPEND with a synchronising literal (sent after the server's "+"); *internaldate*
        a date-time (``"17-Jul-1996 02:44:25 -0700"``, without the quotes); *utf8*: as RFC
        6855 §4's ``UTF8 (~{N}...)`` data extension, for a message with UTF-8 header fields."""
        when = internaldate
        if isinstance(internaldate, str):
            try:
                when = parse_date_time(internaldate)
            except ParseError:
                raise LocalProtocolError(f"not a date-time: {internaldate!r}") from None
        assert not isinstance(when, str)
        return await self._run(
            _typed("APPEND", Append(mailbox, tuple(flags), when, message, utf8=utf8)))

    async def append_messages(self, mailbox: str,
                              messages: Sequence[AppendMessage]) -> CommandResult:
        """One APPEND of several messages (MULTIAPPEND, RFC 3502), each a literal or CATENATE
        parts (RFC 4469), with its own flags and date; synchronising literals, each sent after
        the server's "+" (a tagged answer in place of one ends the command there)."""
        if not messages:
            raise LocalProtocolError("APPEND needs at least one message")
        first = messages[0]
        args = Append(mailbox, first.flags, first.date, first.message, first.catenate,
                      tuple(messages[1:]))
        return await self._run(_typed("APPEND", args))

    async def expunge(self) -> CommandResult:
        return await self._run(_typed("EXPUNGE"))

    async def close_mailbox(self) -> CommandResult:
        """CLOSE (expunges and deselects); not the connection: that is close()."""
        return await self._run(_typed("CLOSE"), name="CLOSE")

    def idle(self) -> IdleSession:
        """``async with client.idle() as idle: await idle.wait(5)`` (RFC 2177)."""
        return IdleSession(self)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _str_tuple(value: object) -> tuple[str, ...] | None:
    if isinstance(value, tuple):
        return tuple(str(v) for v in value)
    return None


class IdleSession:
    """One IDLE command: entered on "+", left with DONE; ``result`` is its tagged completion."""

    def __init__(self, client: IMAPClient) -> None:
        self._client = client
        self._tag = ""
        self._untagged: list[Response] = []
        self.result: CommandResult | None = None

    async def __aenter__(self) -> IdleSession:
        client = self._client
        (line,) = format_command(Command(client._peek_tag(), "IDLE"))
        self._tag = client._start()
        try:
            await client._write(line)
            answer = await client._await_continuation(self._tag)
        except BaseException:
            client._end(self._tag, abandoned=True)
            raise
        self._untagged = client._take_pending()
        if isinstance(answer, Tagged):
            client._end(self._tag)
            self.result = client._complete(answer, self._untagged)
            raise IMAPClientError(f"IDLE refused: {answer.status} {answer.text}")
        return self

    async def wait(self, timeout: float) -> Response | None:  # noqa: ASYNC109
        """The next response during IDLE, or None if none came within *timeout* seconds.

        Normally an untagged response (EXISTS, EXPUNGE, FETCH...); if the server ends IDLE by
        itself, its tagged completion (then ``result`` is set and later waits return None)."""
        client = self._client
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.result is None:
            try:
                response = await client._next(max(0.0, deadline - loop.time()), note_timeout=False)
            except IMAPTimeout:
                return None
            if isinstance(response, Tagged):
                if not client._is_ours(response, self._tag):
                    continue
                client._end(self._tag)
                self.result = client._complete(response, self._untagged)
                return response
            if isinstance(response, Continuation):
                raise IMAPSyntaxError(
                    "second continuation request during IDLE", data=client._parser.last_raw
                )
            self._untagged.append(response)
            return response
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.result is not None:
            return
        client = self._client
        try:
            if client.closed:
                return
            # RFC 2177 §3: "The IDLE command is terminated by the receipt of a "DONE"
            # continuation from the client".
            if exc is not None and not isinstance(exc, Exception):
                # Cancelled (a deadline): say DONE without waiting; the late OK is dropped.
                client._send_now(IDLE_DONE)
                client._end(self._tag, abandoned=True)
                return
            await client._write(IDLE_DONE)
            client._requeue(self._untagged)
            self._untagged = []
            self.result = await client._collect(self._tag)
        except (IMAPClientError, ProtocolError, OSError):
            client._end(self._tag, abandoned=True)
            if exc is None:
                raise
            # The body's own exception says more than a failure to leave IDLE after it.
        finally:
            client._end(self._tag)
