"""The asyncio IMAP client and wait_for_message, against a scripted IMAP peer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

import pytest

from harness.clients.imap import (
    IdleSession,
    IMAPClient,
    IMAPClientError,
    IMAPConnectionClosed,
    IMAPTimeout,
)
from harness.clients.transcript import Transcript
from harness.clients.wait import wait_for_message
from harness.protocol.errors import LocalProtocolError, RemoteProtocolError
from harness.protocol.imap.responses import (
    Capability,
    Exists,
    Fetch,
    List,
    ResponseCode,
    Tagged,
    UntaggedStatus,
)
from harness.protocol.imap.state import State
from reference_agents.tls import TLSMaterial

HOST = "127.0.0.1"
_LITERAL = re.compile(rb"\{(\d+)\}\r\n\Z")


class Conn:
    """One server-side connection of the scripted peer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_line(self) -> bytes:
        return await self.reader.readline()

    async def read_command(self) -> bytes:
        """One command line, literals included (answering each "{n}" with "+")."""
        line = await self.reader.readline()
        while (m := _LITERAL.search(line)) is not None:
            await self.send(b"+ go ahead\r\n")
            line += await self.reader.readexactly(int(m.group(1)))
            line += await self.reader.readline()
        return line

    async def start_tls(self, context: ssl.SSLContext) -> None:
        await self.writer.start_tls(context)


Handler = Callable[[Conn, bytes, bytes], Awaitable[None]]


def reply(*lines: bytes) -> Handler:
    """A handler sending *lines*; ``{tag}`` in a line becomes the command's tag."""

    async def handler(conn: Conn, tag: bytes, line: bytes) -> None:
        await conn.send(b"".join(x.replace(b"{tag}", tag) for x in lines))

    return handler


async def logout_handler(conn: Conn, tag: bytes, line: bytes) -> None:
    await conn.send(b"* BYE bye\r\n" + tag + b" OK LOGOUT done\r\n")


class ScriptedServer:
    """Answers each command by its first word(s) from *handlers*; records every command."""

    def __init__(
        self,
        handlers: dict[str, Handler],
        greeting: bytes = b"* OK [CAPABILITY IMAP4rev1 IDLE STARTTLS] ready\r\n",
        *,
        refuse_literals: bool = False,
    ) -> None:
        self.refuse_literals = refuse_literals
        self.handlers = {"LOGOUT": logout_handler, **handlers}
        self.greeting = greeting
        self.commands: list[bytes] = []
        self.errors: list[BaseException] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in self._writers:
            writer.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        for task in list(self._tasks):
            task.cancel()
        if self.errors and exc is None:
            raise self.errors[0]  # an assertion in a handler fails the test

    async def connect(self, **kwargs: object) -> IMAPClient:
        return await IMAPClient.connect(HOST, self.port, timeout=5.0, **kwargs)  # type: ignore[arg-type]

    def names(self) -> list[str]:
        return [c.split()[1].decode().upper() for c in self.commands if b" " in c]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        conn = Conn(reader, writer)
        try:
            await conn.send(self.greeting)
            while True:
                if self.refuse_literals:
                    line = await conn.read_line()
                    if _LITERAL.search(line):
                        self.commands.append(line)
                        await conn.send(line.split(b" ")[0] + b" NO no literals\r\n")
                        continue
                else:
                    line = await conn.read_command()
                if not line:
                    break
                self.commands.append(line)
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                words = rest.split(b" ")
                name = words[0].upper().decode()
                if name == "UID" and len(words) > 1:
                    name += " " + words[1].upper().decode()
                handler = self.handlers.get(name, reply(b"{tag} BAD unknown command\r\n"))
                await handler(conn, tag, line)
                if name == "LOGOUT":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except Exception as exc:  # reported by __aexit__
            self.errors.append(exc)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError):
                pass
            self._tasks.discard(task)


def run(coro: Awaitable[None]) -> None:
    async def main() -> None:
        async with asyncio.timeout(10):
            await coro

    asyncio.run(main())


SELECT_LINES = (
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
    b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
    b"* 172 EXISTS\r\n",
    b"* 1 RECENT\r\n",
    b"* OK [UNSEEN 12] Message 12 is first unseen\r\n",
    b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
    b"* OK [UIDNEXT 4392] Predicted next UID\r\n",
    b'* LIST () "/" INBOX\r\n',
    b"{tag} OK [READ-WRITE] SELECT completed\r\n",
)


# -- connection, login, capabilities ---------------------------------------------------------


def test_connect_refuses_host_names() -> None:
    with pytest.raises(ValueError, match="IP address"):
        asyncio.run(IMAPClient.connect("localhost", 143))


def test_greeting_login_and_capabilities() -> None:
    async def main() -> None:
        handlers = {
            "LOGIN": reply(b"{tag} OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in\r\n"),
            "CAPABILITY": reply(b"* CAPABILITY IMAP4rev1 IDLE STARTTLS\r\n{tag} OK done\r\n"),
        }
        transcript = Transcript("t")
        async with ScriptedServer(handlers) as server:
            async with await server.connect(transcript=transcript) as client:
                assert client.greeting == UntaggedStatus(
                    "OK", ResponseCode("CAPABILITY", ("IMAP4rev1", "IDLE", "STARTTLS")), "ready"
                )
                assert client.capabilities == {"IMAP4REV1", "IDLE", "STARTTLS"}
                assert client.state is State.NOT_AUTHENTICATED
                result = await client.login("joe", "secret word")
                assert result.ok and result.tag == "A0001"
                assert client.state is State.AUTHENTICATED
                assert client.capabilities == {"IMAP4REV1", "IDLE", "MOVE"}
                result = await client.login('jo"e', "pässword")
                caps = await client.capability()
                assert caps.untagged == (Capability(("IMAP4rev1", "IDLE", "STARTTLS")),)
                assert "STARTTLS" in client.capabilities
        assert client.state is State.LOGOUT
        assert server.commands[:2] == [
            b'A0001 LOGIN joe "secret word"\r\n',
            b'A0002 LOGIN "jo\\"e" {9}\r\np\xc3\xa4ssword\r\n',
        ]
        assert server.commands[-1] == b"A0004 LOGOUT\r\n"
        sent = transcript.sent()
        assert b"A0001 LOGIN" in sent and b"A0004 LOGOUT\r\n" in sent
        assert transcript.received().startswith(b"* OK [CAPABILITY")

    run(main())


def test_literal_refused_by_the_server() -> None:
    async def main() -> None:
        async with ScriptedServer({}, refuse_literals=True) as server:
            client = await server.connect()
            result = await client.login("joe", "pässword")
            assert result.status == "NO" and result.tag == "A0001"
            await client.send_raw(b"X1 NOOP\r\n")
            assert await client.read_response() == Tagged("X1", "BAD", None, "unknown command")
            await client.close()
            await client.close()  # idempotent
            with pytest.raises(IMAPConnectionClosed):
                await client.noop()
        assert server.commands[0] == b"A0001 LOGIN joe {9}\r\n"

    run(main())


def test_authenticate_plain_with_and_without_initial_response() -> None:
    async def main() -> None:
        async def authenticate(conn: Conn, tag: bytes, line: bytes) -> None:
            if line.rstrip().upper().endswith(b"PLAIN"):
                await conn.send(b"+ \r\n")
                response = await conn.read_line()
                assert response == b"AGpvZQBzZWNyZXQ=\r\n"
            else:
                assert line.endswith(b" AGpvZQBzZWNyZXQ=\r\n")
            await conn.send(tag + b" OK authenticated\r\n")

        async with ScriptedServer({"AUTHENTICATE": authenticate}) as server:
            async with await server.connect() as client:
                assert (await client.authenticate_plain("joe", "secret")).ok
                assert (await client.authenticate_plain("joe", "secret", initial_response=False)).ok

    run(main())


def test_extra_sasl_challenge_is_cancelled() -> None:
    async def main() -> None:
        async def authenticate(conn: Conn, tag: bytes, line: bytes) -> None:
            await conn.send(b"+ more?\r\n")
            assert await conn.read_line() == b"*\r\n"
            await conn.send(tag + b" BAD cancelled\r\n")

        async with ScriptedServer({"AUTHENTICATE": authenticate}) as server:
            async with await server.connect() as client:
                result = await client.authenticate_plain("joe", "secret")
                assert result.status == "BAD"

    run(main())


# -- mailbox commands --------------------------------------------------------------------------


def test_select_parsing() -> None:
    async def main() -> None:
        handlers = {
            "SELECT": reply(*SELECT_LINES),
            "EXAMINE": reply(b"* 0 EXISTS\r\n{tag} OK [READ-ONLY] done\r\n"),
        }
        async with ScriptedServer(handlers) as server:
            async with await server.connect() as client:
                selected = await client.select("INBOX")
                assert selected.result.ok
                assert selected.exists == 172
                assert selected.recent == 1
                assert selected.flags == (
                    "\\Answered",
                    "\\Flagged",
                    "\\Deleted",
                    "\\Seen",
                    "\\Draft",
                )
                assert selected.permanent_flags == ("\\Deleted", "\\Seen", "\\*")
                assert selected.uidvalidity == 3857529045
                assert selected.uidnext == 4392
                assert selected.read_only is False
                assert List((), "/", "INBOX") in selected.result.untagged
                examined = await client.select("Entwürfe", readonly=True)
                assert examined.exists == 0 and examined.read_only is True
                assert examined.uidvalidity is None
                # Selected without logging in: an OK the state table has no transition for
                # leaves the client's state where it was.
                assert client.state is State.NOT_AUTHENTICATED
        assert server.commands[1] == b"A0002 EXAMINE Entw&APw-rfe\r\n"

    run(main())


def test_select_ok_without_exists_is_a_finding() -> None:
    async def main() -> None:
        async with ScriptedServer({"SELECT": reply(b"{tag} OK done\r\n")}) as server:
            async with await server.connect() as client:
                with pytest.raises(RemoteProtocolError, match="EXISTS"):
                    await client.select()

    run(main())


def test_fetch_with_literal_merges_responses() -> None:
    body = b"Subject: hi\r\n\r\nbody {3}\r\n"

    async def main() -> None:
        handlers = {
            "FETCH": reply(
                b"* 1 FETCH (UID 7 BODY[] {%d}\r\n" % len(body) + body + b")\r\n",
                b"* 1 FETCH (FLAGS (\\Seen))\r\n",
                b"* 2 FETCH (UID 9 BODY[] NIL)\r\n",
                b"{tag} OK done\r\n",
            ),
            "UID FETCH": reply(b"{tag} OK nothing\r\n"),
        }
        async with ScriptedServer(handlers) as server:
            async with await server.connect() as client:
                result, items = await client.fetch("1:2", "(UID BODY[])")
                assert result.ok
                assert items == {
                    1: {"UID": 7, "BODY[]": body, "FLAGS": ("\\Seen",)},
                    2: {"UID": 9, "BODY[]": None},
                }
                result, items = await client.fetch("5:*", "(UID)", uid=True)
                assert result.ok and items == {}
        assert server.commands[:2] == [
            b"A0001 FETCH 1:2 (UID BODY[])\r\n",
            b"A0002 UID FETCH 5:* (UID)\r\n",
        ]

    run(main())


def test_store_search_append_expunge_close() -> None:
    async def main() -> None:
        handlers = {
            "STORE": reply(b"* 1 FETCH (FLAGS (\\Seen \\Deleted))\r\n{tag} OK stored\r\n"),
            "UID STORE": reply(b"{tag} OK stored\r\n"),
            "SEARCH": reply(b"* SEARCH 2 3\r\n* SEARCH 9\r\n{tag} OK found\r\n"),
            "APPEND": reply(b"{tag} OK [APPENDUID 38505 3955] APPEND completed\r\n"),
            "EXPUNGE": reply(b"* 3 EXPUNGE\r\n{tag} OK expunged\r\n"),
            "CLOSE": reply(b"{tag} OK closed\r\n"),
            "NOOP": reply(b"{tag} OK noop\r\n"),
        }
        async with ScriptedServer(handlers) as server:
            async with await server.connect() as client:
                result = await client.store("1", "+", ["\\Seen", "\\Deleted"])
                assert result.ok and isinstance(result.untagged[0], Fetch)
                assert (await client.store("4:5", "-", ["$Junk"], uid=True, silent=True)).ok
                result, numbers = await client.search("UNSEEN")
                assert result.ok and numbers == (2, 3, 9)
                result = await client.append(
                    "Sent",
                    b"Subject: x\r\n\r\nbody\r\n",
                    ["\\Seen"],
                    internaldate="17-Jul-1996 02:44:25 -0700",
                )
                assert result.ok
                assert result.code == ResponseCode("APPENDUID", (38505, 3955))
                assert (await client.expunge()).ok
                assert (await client.close_mailbox()).ok
                assert (await client.command("NOOP")).ok
                with pytest.raises(ValueError):
                    await client.store("1", "*", ["\\Seen"])
                with pytest.raises(LocalProtocolError):
                    await client.store("1", "+", ["bad flag"])
                with pytest.raises(LocalProtocolError):
                    await client.command("NOOP\r\nA9 LOGOUT")
        assert server.commands[:4] == [
            b"A0001 STORE 1 +FLAGS (\\Seen \\Deleted)\r\n",
            b"A0002 UID STORE 4:5 -FLAGS.SILENT ($Junk)\r\n",
            b"A0003 SEARCH UNSEEN\r\n",
            b'A0004 APPEND Sent (\\Seen) "17-Jul-1996 02:44:25 -0700" {20}\r\n'
            b"Subject: x\r\n\r\nbody\r\n\r\n",
        ]

    run(main())


def test_untagged_between_commands_go_with_the_next_result() -> None:
    async def main() -> None:
        async def noop(conn: Conn, tag: bytes, line: bytes) -> None:
            await conn.send(tag + b" OK noop\r\n* 5 EXISTS\r\n")

        async with ScriptedServer({"NOOP": noop}) as server:
            async with await server.connect() as client:
                first = await client.noop()
                assert first.untagged == ()
                second = await client.noop()
                assert second.untagged == (Exists(5),)

    run(main())


# -- IDLE --------------------------------------------------------------------------------------


async def idle_pushing_exists(conn: Conn, tag: bytes, line: bytes) -> None:
    await conn.send(b"+ idling\r\n* 4 EXISTS\r\n")
    done = await conn.read_line()
    assert done == b"DONE\r\n"
    await conn.send(b"* 1 RECENT\r\n" + tag + b" OK IDLE terminated\r\n")


def test_idle_receives_exists_then_done() -> None:
    async def main() -> None:
        async with ScriptedServer({"IDLE": idle_pushing_exists}) as server:
            async with await server.connect() as client:
                async with client.idle() as idle:
                    assert isinstance(idle, IdleSession)
                    assert await idle.wait(5) == Exists(4)
                    assert await idle.wait(0.05) is None
                assert idle.result is not None and idle.result.ok
                assert Exists(4) in idle.result.untagged

    run(main())


def test_idle_refused() -> None:
    async def main() -> None:
        async with ScriptedServer({"IDLE": reply(b"{tag} BAD no IDLE here\r\n")}) as server:
            async with await server.connect() as client:
                session = client.idle()
                with pytest.raises(IMAPClientError, match="IDLE refused"):
                    async with session:
                        raise AssertionError("not entered")
                assert session.result is not None and session.result.status == "BAD"
                assert (await client.command("XNOTHING")).status == "BAD"

    run(main())


# -- malformed responses, timeouts, closes -----------------------------------------------------


def test_malformed_response_raises_and_the_session_recovers() -> None:
    async def main() -> None:
        handlers = {
            "FETCH": reply(b"* 1 FETCH (UID 0)\r\n{tag} OK done\r\n"),
            "NOOP": reply(b"{tag} OK noop\r\n"),
        }
        async with ScriptedServer(handlers) as server:
            async with await server.connect() as client:
                with pytest.raises(RemoteProtocolError) as info:
                    await client.fetch("1", "UID")
                assert info.value.data == b"* 1 FETCH (UID 0)\r\n"
                # The late "A0001 OK" of the abandoned command is dropped.
                assert (await client.noop()).ok
                assert "A0001" in "".join(
                    e.data.decode() for e in client.transcript.entries if e.direction == "*"
                )

    run(main())


def test_malformed_greeting() -> None:
    async def main() -> None:
        async with ScriptedServer({}, greeting=b"* OK\r\n") as server:
            with pytest.raises(RemoteProtocolError):
                await server.connect()
        async with ScriptedServer({}, greeting=b"A1 OK hello\r\n") as server:
            with pytest.raises(RemoteProtocolError, match="greeting"):
                await server.connect()

    run(main())


def test_wrong_tag_is_a_finding() -> None:
    async def main() -> None:
        async with ScriptedServer({"NOOP": reply(b"B7 OK noop\r\n")}) as server:
            async with await server.connect() as client:
                with pytest.raises(RemoteProtocolError, match="B7"):
                    await client.noop()

    run(main())


def test_timeout_and_connection_closed() -> None:
    async def main() -> None:
        async def silent(conn: Conn, tag: bytes, line: bytes) -> None:
            return

        async def hang_up(conn: Conn, tag: bytes, line: bytes) -> None:
            await conn.send(b"* BYE going away\r\n")
            conn.writer.close()

        async with ScriptedServer({"NOOP": silent, "CHECK": hang_up}) as server:
            client = await IMAPClient.connect(HOST, server.port, timeout=0.2)
            with pytest.raises(IMAPTimeout):
                await client.noop()
            with pytest.raises(IMAPTimeout):
                await client.read_response(timeout=0.05)
            with pytest.raises(IMAPConnectionClosed, match="going away"):
                await client.command("CHECK")
            await client.close()

    run(main())


# -- STARTTLS and implicit TLS -----------------------------------------------------------------


def test_starttls_with_trustme(tmp_path: Path) -> None:
    tls = TLSMaterial.create(tmp_path)
    server_context = tls.server_context(["127.0.0.1"])

    async def main() -> None:
        state = {"tls": False}

        async def starttls(conn: Conn, tag: bytes, line: bytes) -> None:
            await conn.send(tag + b" OK begin TLS\r\n")
            await conn.start_tls(server_context)
            state["tls"] = True

        async def capability(conn: Conn, tag: bytes, line: bytes) -> None:
            caps = (
                b"IMAP4rev1 AUTH=PLAIN IDLE"
                if state["tls"]
                else b"IMAP4rev1 STARTTLS LOGINDISABLED"
            )
            await conn.send(b"* CAPABILITY " + caps + b"\r\n" + tag + b" OK done\r\n")

        handlers = {
            "STARTTLS": starttls,
            "CAPABILITY": capability,
            "LOGIN": reply(b"{tag} OK logged in\r\n"),
        }
        async with ScriptedServer(handlers) as server:
            async with await server.connect() as client:
                assert not client.is_tls
                result = await client.starttls(tls.client_context())
                assert result.ok
                assert client.is_tls
                assert client.capabilities == {"IMAP4REV1", "AUTH=PLAIN", "IDLE"}
                assert (await client.login("joe", "pw")).ok
                notes = [e.data for e in client.transcript.entries if e.direction == "*"]
                assert any(n.startswith(b"TLS started") for n in notes)
        assert server.names()[:3] == ["STARTTLS", "CAPABILITY", "LOGIN"]

    run(main())


def test_starttls_plaintext_injection_is_a_finding() -> None:
    async def main() -> None:
        handlers = {"STARTTLS": reply(b"{tag} OK begin TLS\r\n* OK [ALERT] injected\r\n")}
        async with ScriptedServer(handlers) as server:
            client = await server.connect()
            with pytest.raises(RemoteProtocolError, match="before the TLS handshake") as info:
                await client.starttls(ssl.create_default_context())
            assert info.value.data == b"* OK [ALERT] injected\r\n"
            await client.close()

    run(main())


def test_list_decodes_mailbox_names() -> None:
    async def main() -> None:
        lines = (
            b'* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"\r\n',
            b'* LIST (\\Noselect \\HasChildren) "/" {5}\r\nA (b)\r\n',
            b"{tag} OK listed\r\n",
        )
        async with ScriptedServer({"LIST": reply(*lines)}) as server:
            async with await server.connect() as client:
                result = await client.list("", "%")
                assert result.untagged == (
                    List(("\\HasNoChildren",), "/", "Entwürfe"),
                    List(("\\Noselect", "\\HasChildren"), "/", "A (b)"),
                )
        assert server.commands[0] == b'A0001 LIST "" %\r\n'

    run(main())


def test_starttls_rejects_a_certificate_for_another_name(tmp_path: Path) -> None:
    tls = TLSMaterial.create(tmp_path)
    server_context = tls.server_context(["127.0.0.9"])

    async def main() -> None:
        async def starttls(conn: Conn, tag: bytes, line: bytes) -> None:
            await conn.send(tag + b" OK begin TLS\r\n")
            await conn.start_tls(server_context)

        async with ScriptedServer({"STARTTLS": starttls}) as server:
            client = await server.connect()
            with pytest.raises(IMAPClientError, match="TLS"):
                await client.starttls(tls.client_context())
            await client.close()

    run(main())


def test_implicit_tls(tmp_path: Path) -> None:
    tls = TLSMaterial.create(tmp_path)
    server_context = tls.server_context(["127.0.0.1"])

    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _greet_and_logout(r, w), HOST, 0, ssl=server_context
        )
        port = server.sockets[0].getsockname()[1]
        try:
            async with await IMAPClient.connect(
                HOST, port, implicit_tls=True, ssl_context=tls.client_context(), timeout=5
            ) as client:
                assert client.is_tls
                assert isinstance(client.greeting, UntaggedStatus)
        finally:
            server.close()
            await server.wait_closed()

    run(main())


async def _greet_and_logout(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        writer.write(b"* OK ready\r\n")
        line = await reader.readline()
        tag = line.split(b" ", 1)[0]
        writer.write(b"* BYE bye\r\n" + tag + b" OK done\r\n")
        await writer.drain()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


# -- wait_for_message --------------------------------------------------------------------------


class Mailbox:
    """Messages of the scripted peer's INBOX, by UID."""

    def __init__(self, messages: list[bytes]) -> None:
        self.messages = dict(enumerate(messages, start=1))

    def add(self, message: bytes) -> None:
        self.messages[max(self.messages, default=0) + 1] = message

    def select(self) -> Handler:
        async def handler(conn: Conn, tag: bytes, line: bytes) -> None:
            await conn.send(
                b"* FLAGS (\\Seen)\r\n* %d EXISTS\r\n* OK [UIDVALIDITY 1] v\r\n"
                % len(self.messages)
                + tag
                + b" OK [READ-WRITE] selected\r\n"
            )

        return handler

    def uid_fetch(self) -> Handler:
        async def handler(conn: Conn, tag: bytes, line: bytes) -> None:
            first = int(line.split(b" ")[3].split(b":")[0])
            out = b""
            for seq, (uid, body) in enumerate(sorted(self.messages.items()), start=1):
                if uid >= first:
                    out += b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (
                        seq,
                        uid,
                        len(body),
                        body,
                    )
            await conn.send(out + tag + b" OK fetched\r\n")

        return handler


def test_wait_for_message_finds_an_existing_message() -> None:
    async def main() -> None:
        box = Mailbox([b"Subject: one\r\n\r\n1\r\n", b"Subject: two\r\n\r\n2\r\n"])
        handlers = {
            "LOGIN": reply(b"{tag} OK in\r\n"),
            "SELECT": box.select(),
            "UID FETCH": box.uid_fetch(),
        }
        async with ScriptedServer(handlers) as server:
            uid, body = await wait_for_message(
                server.connect, "joe", "pw", lambda m: b"two" in m, timeout=5
            )
        assert (uid, body) == (2, b"Subject: two\r\n\r\n2\r\n")
        assert server.names() == ["LOGIN", "SELECT", "UID", "LOGOUT"]
        assert b"UID FETCH 1:* (UID BODY.PEEK[])" in server.commands[2]

    run(main())


def test_wait_for_message_with_idle() -> None:
    async def main() -> None:
        box = Mailbox([b"Subject: old\r\n\r\n"])

        async def idle(conn: Conn, tag: bytes, line: bytes) -> None:
            await conn.send(b"+ idling\r\n")
            box.add(b"Subject: new\r\n\r\nhello\r\n")
            await conn.send(b"* %d EXISTS\r\n" % len(box.messages))
            assert await conn.read_line() == b"DONE\r\n"
            await conn.send(tag + b" OK done\r\n")

        handlers = {
            "LOGIN": reply(b"{tag} OK in\r\n"),
            "SELECT": box.select(),
            "UID FETCH": box.uid_fetch(),
            "IDLE": idle,
        }
        async with ScriptedServer(handlers) as server:
            uid, body = await wait_for_message(
                server.connect, "joe", "pw", lambda m: b"new" in m, timeout=5
            )
        assert uid == 2 and body.endswith(b"hello\r\n")
        assert server.names() == ["LOGIN", "SELECT", "UID", "IDLE", "UID", "LOGOUT"]
        assert b"UID FETCH 2:* " in server.commands[4]

    run(main())


def test_wait_for_message_polls_without_idle() -> None:
    async def main() -> None:
        box = Mailbox([])
        polls = {"n": 0}

        async def noop(conn: Conn, tag: bytes, line: bytes) -> None:
            polls["n"] += 1
            if polls["n"] == 2:
                box.add(b"Subject: polled\r\n\r\n")
                await conn.send(b"* 1 EXISTS\r\n")
            await conn.send(tag + b" OK noop\r\n")

        handlers = {
            "LOGIN": reply(b"{tag} OK [CAPABILITY IMAP4rev1] in\r\n"),
            "SELECT": box.select(),
            "UID FETCH": box.uid_fetch(),
            "NOOP": noop,
        }
        greeting = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"
        async with ScriptedServer(handlers, greeting=greeting) as server:
            uid, body = await wait_for_message(
                server.connect, "joe", "pw", lambda m: b"polled" in m, timeout=5
            )
        assert uid == 1
        assert server.names() == ["LOGIN", "SELECT", "NOOP", "NOOP", "UID", "LOGOUT"]

    run(main())


def test_wait_for_message_times_out_and_logs_out() -> None:
    async def main() -> None:
        box = Mailbox([b"Subject: other\r\n\r\n"])

        async def idle(conn: Conn, tag: bytes, line: bytes) -> None:
            await conn.send(b"+ idling\r\n")
            assert await conn.read_line() == b"DONE\r\n"
            await conn.send(tag + b" OK done\r\n")

        handlers = {
            "LOGIN": reply(b"{tag} OK in\r\n"),
            "SELECT": box.select(),
            "UID FETCH": box.uid_fetch(),
            "IDLE": idle,
        }
        async with ScriptedServer(handlers) as server:
            with pytest.raises(TimeoutError, match="'INBOX' within 0.3 s") as info:
                await wait_for_message(
                    server.connect, "joe", "pw", lambda m: b"never" in m, timeout=0.3
                )
            assert not isinstance(info.value, IMAPTimeout)
        assert server.names()[-2:] == ["IDLE", "LOGOUT"]

    run(main())


def test_wait_for_message_starttls_and_login_failure(tmp_path: Path) -> None:
    tls = TLSMaterial.create(tmp_path)
    server_context = tls.server_context(["127.0.0.1"])

    async def main() -> None:
        async def starttls(conn: Conn, tag: bytes, line: bytes) -> None:
            await conn.send(tag + b" OK begin TLS\r\n")
            await conn.start_tls(server_context)

        handlers = {
            "STARTTLS": starttls,
            "CAPABILITY": reply(b"* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n"),
            "LOGIN": reply(b"{tag} NO [AUTHENTICATIONFAILED] bad\r\n"),
        }
        async with ScriptedServer(handlers) as server:
            with pytest.raises(IMAPClientError, match="LOGIN"):
                await wait_for_message(
                    server.connect,
                    "joe",
                    "bad",
                    lambda m: True,
                    timeout=5,
                    starttls_context=tls.client_context(),
                )
        assert server.names() == ["STARTTLS", "CAPABILITY", "LOGIN", "LOGOUT"]

    run(main())
