"""Tests of the asyncio SMTP client against a scripted loopback server and against aiosmtpd."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from harness.clients.smtp import (
    SendResult,
    SMTPClient,
    SMTPClientError,
    SMTPConnectError,
    SMTPConnectionClosed,
    SMTPTimeout,
)
from harness.clients.transcript import Transcript, TranscriptEntry
from harness.protocol import sasl
from harness.protocol.errors import LocalProtocolError, RemoteProtocolError
from harness.protocol.smtp import DataReader, SessionState, parse_path
from reference_agents.tls import TLSMaterial

WAIT = 5.0
USER, PASSWORD = "alice", "s3cret"

# --- a small scripted SMTP server -------------------------------------------------------------

#: A reply value that makes the server drop the connection instead of answering.
CLOSE = b"<close>"


@dataclass
class FakeServer:
    """An SMTP server good enough to drive the client: EHLO, STARTTLS, AUTH PLAIN/LOGIN, a
    transaction with a DataReader. ``script`` overrides the reply to a verb with raw bytes
    (or CLOSE)."""

    starttls_context: ssl.SSLContext | None = None
    implicit_context: ssl.SSLContext | None = None
    greeting: bytes = b"220 fake.test ESMTP ready\r\n"
    script: dict[str, bytes] = field(default_factory=dict)
    commands: list[bytes] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    auth_lines: list[bytes] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> FakeServer:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", 0, ssl=self.implicit_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=WAIT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def wait_done(self) -> None:
        """Wait until a session handler has finished."""
        await asyncio.wait_for(self._done.wait(), WAIT)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._session(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            self._done.set()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        await send(self.greeting)
        tls = self.implicit_context is not None
        while True:
            line = await reader.readline()
            if not line:
                return
            self.commands.append(line)
            verb = line.split(b" ", 1)[0].strip().upper().decode()
            if verb in self.script:
                reply = self.script[verb]
                if reply == CLOSE:
                    return
                await send(reply)
                if verb == "QUIT":
                    return
                continue
            if verb == "EHLO":
                ext = [b"250-fake.test", b"250-8BITMIME", b"250-SIZE 1000000"]
                if self.starttls_context is not None and not tls:
                    ext.append(b"250-STARTTLS")
                ext.append(b"250 AUTH PLAIN LOGIN")
                await send(b"\r\n".join(ext) + b"\r\n")
            elif verb == "HELO":
                await send(b"250 fake.test\r\n")
            elif verb == "STARTTLS" and self.starttls_context is not None and not tls:
                await send(b"220 2.0.0 go ahead\r\n")
                await writer.start_tls(self.starttls_context)
                tls = True
            elif verb == "AUTH":
                await self._auth(line, reader, send)
            elif verb in ("MAIL", "RCPT"):
                path = line.split(b":", 1)[1].strip().split(b" ")[0].decode()
                parse_path(path)
                code = b"550 5.1.1 no such user" if b"nobody@" in line else b"250 2.1.0 ok"
                await send(code + b"\r\n")
            elif verb == "DATA":
                await send(b"354 go ahead\r\n")
                data_reader = DataReader(max_size=100_000)
                while (done := data_reader.feed(await reader.read(4096))) is None:
                    pass
                self.messages.append(done.message)
                await send(b"250 2.0.0 queued\r\n")
            elif verb in ("RSET", "NOOP"):
                await send(b"250 2.0.0 ok\r\n")
            elif verb == "VRFY":
                await send(b"252 2.1.5 cannot verify\r\n")
            elif verb == "QUIT":
                await send(b"221 2.0.0 bye\r\n")
                return
            else:
                await send(b"500 5.5.2 unknown command\r\n")

    async def _auth(
        self,
        line: bytes,
        reader: asyncio.StreamReader,
        send: Callable[[bytes], Awaitable[None]],
    ) -> None:
        parts = line.decode().split()
        mech = parts[1].upper()
        if mech == "PLAIN":
            if len(parts) > 2:
                response = parts[2]
            else:
                await send(b"334 \r\n")
                response = (await reader.readline()).decode().strip()
            self.auth_lines.append(response.encode())
            try:
                _, user, password = sasl.parse_plain(response)
            except ValueError:
                await send(b"501 5.5.2 bad base64\r\n")
                return
        elif mech == "LOGIN":
            await send(f"334 {sasl.LOGIN_USERNAME_CHALLENGE}\r\n".encode())
            user = sasl.parse_login_response((await reader.readline()).decode().strip())
            await send(f"334 {sasl.LOGIN_PASSWORD_CHALLENGE}\r\n".encode())
            password = sasl.parse_login_response((await reader.readline()).decode().strip())
        else:
            await send(b"504 5.5.4 unknown mechanism\r\n")
            return
        if (user, password) == (USER, PASSWORD):
            await send(b"235 2.7.0 ok\r\n")
        else:
            await send(b"535 5.7.8 bad credentials\r\n")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    return TLSMaterial.create(tmp_path_factory.mktemp("tls"))


def run(coro: Awaitable[None]) -> None:
    async def with_timeout() -> None:
        async with asyncio.timeout(10):
            await coro

    asyncio.run(with_timeout())


@contextlib.asynccontextmanager
async def session(server: FakeServer, **kwargs: Any) -> AsyncIterator[SMTPClient]:
    client = await SMTPClient.connect("127.0.0.1", server.port, timeout=WAIT, **kwargs)
    try:
        yield client
    finally:
        await client.close()


def state_of(client: SMTPClient) -> SessionState:
    return client.state  # a call, so that mypy does not narrow the attribute between commands


# --- tests --------------------------------------------------------------------------------------


def test_plain_session_and_transcript() -> None:
    async def main() -> None:
        async with FakeServer() as server:
            async with await SMTPClient.connect("127.0.0.1", server.port, timeout=WAIT) as client:
                assert client.greeting.code == 220
                assert state_of(client) is SessionState.GREETED
                assert not client.is_tls
                reply = await client.ehlo()
                assert reply.code == 250
                assert client.extensions == {"8BITMIME": "", "SIZE": "1000000", "AUTH": "PLAIN LOGIN"}
                assert state_of(client) is SessionState.READY
                assert (await client.noop()).code == 250
                vrfy = await client.vrfy("alice")
                assert vrfy.code == 252 and str(vrfy.enhanced) == "2.1.5"
                assert (await client.mail("")).code == 250
                assert state_of(client) is SessionState.MAIL
                assert (await client.rcpt("bob@example.net")).code == 250
                assert state_of(client) is SessionState.RCPT
                assert (await client.rset()).code == 250
                assert state_of(client) is SessionState.READY
                assert (await client.helo()).code == 250 and client.extensions == {}
                transcript = client.transcript
            assert client.closed and state_of(client) is SessionState.CLOSED
            await client.close()  # idempotent
            await server.wait_done()
        assert server.commands[0] == b"EHLO client.mailharness.invalid\r\n"
        assert server.commands[-1] == b"QUIT\r\n"
        assert b"MAIL FROM:<>\r\n" in server.commands
        assert transcript.sent() == b"".join(server.commands)
        assert transcript.received().startswith(b"220 fake.test")
        text = transcript.render()
        assert "C: EHLO client.mailharness.invalid" in text
        assert "S: 250-fake.test" in text and "S: 221 2.0.0 bye" in text
        assert text.startswith("* connecting to 127.0.0.1:")
        assert len(transcript) == len(transcript.entries) > 10

    run(main())


def test_send_message_with_leading_dots() -> None:
    message = b"Subject: dots\n\n.leading dot\n..two dots\n.\nend"
    async def main() -> None:
        async with FakeServer() as server:
            async with session(server) as client:
                await client.ehlo()
                result = await client.send_message(
                    "alice@example.org", ["bob@example.net", "nobody@example.net"], message
                )
                assert isinstance(result, SendResult)
                assert result.mail.code == 250
                assert result.accepted == ("bob@example.net",)
                assert [r.code for _, r in result.rejected] == [550]
                assert result.data is not None and result.data.code == 250 and result.delivered
                assert state_of(client) is SessionState.READY
                none = await client.send_message("alice@example.org", ["nobody@example.net"], b"x")
                assert none.data is None and none.accepted == () and not none.delivered
                assert state_of(client) is SessionState.READY  # reset after no recipient
                await client.quit()
        assert server.messages == [message.replace(b"\n", b"\r\n") + b"\r\n"]
        assert server.commands[-2:] == [b"RSET\r\n", b"QUIT\r\n"]

    run(main())


def test_data_without_stuffing_sends_undoubled_dots() -> None:
    async def main() -> None:
        async with FakeServer() as server:
            async with session(server) as client:
                await client.ehlo()
                await client.mail("alice@example.org")
                await client.rcpt("bob@example.net")
                reply = await client.data(b"a\r\n.hidden\r\nb\r\n", stuff=False)
                assert reply.code == 250
                sent = client.transcript.sent()
                assert b"\r\n.hidden\r\nb\r\n.\r\n" in sent and b"..hidden" not in sent
                await client.quit()
        # the receiver unstuffs the undoubled dot away: exactly the finding stuffing prevents
        assert server.messages == [b"a\r\nhidden\r\nb\r\n"]

    run(main())


def test_data_refused_returns_the_reply() -> None:
    async def main() -> None:
        script = {"DATA": b"503 5.5.1 no recipients\r\n"}
        async with FakeServer(script=script) as server:
            async with session(server) as client:
                await client.ehlo()
                reply = await client.data(b"never sent")
                assert reply.code == 503 and state_of(client) is SessionState.READY
                assert b"never sent" not in client.transcript.sent()

    run(main())


def test_starttls(tls: TLSMaterial) -> None:
    async def main() -> None:
        server_ctx = tls.server_context(["127.0.0.1"])
        async with FakeServer(starttls_context=server_ctx) as server:
            async with session(server) as client:
                await client.ehlo()
                assert "STARTTLS" in client.extensions
                reply = await client.starttls(tls.client_context())
                assert reply.code == 220
                assert client.is_tls and client.extensions == {}
                assert state_of(client) is SessionState.GREETED
                await client.ehlo()
                assert "STARTTLS" not in client.extensions and state_of(client) is SessionState.READY
                assert (await client.auth_plain(USER, PASSWORD)).code == 235
                await client.quit()
                notes = [e.data for e in client.transcript.entries if e.direction == "*"]
                assert any(n.startswith(b"TLS started: TLSv1.") for n in notes)

    run(main())


def test_starttls_with_wrong_name_fails_verification(tls: TLSMaterial) -> None:
    async def main() -> None:
        server_ctx = tls.server_context(["127.0.0.1"])
        async with FakeServer(starttls_context=server_ctx) as server:
            async with session(server) as client:
                await client.ehlo()
                with pytest.raises(SMTPClientError) as info:
                    await client.starttls(tls.client_context(), server_hostname="other.invalid")
                assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)

    run(main())


def test_starttls_refuses_plaintext_injected_after_220(tls: TLSMaterial) -> None:
    async def main() -> None:
        script = {"STARTTLS": b"220 go ahead\r\n250 injected\r\n"}
        async with FakeServer(script=script) as server:
            async with session(server) as client:
                await client.ehlo()
                with pytest.raises(RemoteProtocolError) as info:
                    await client.starttls(tls.client_context())
                assert info.value.data == b"250 injected\r\n"
                assert not client.is_tls

    run(main())


def test_implicit_tls_and_auth(tls: TLSMaterial) -> None:
    async def main() -> None:
        server_ctx = tls.server_context(["127.0.0.1"])
        async with FakeServer(implicit_context=server_ctx) as server:
            async with session(
                server, implicit_tls=True, ssl_context=tls.client_context()
            ) as client:
                assert client.is_tls and client.greeting.code == 220
                await client.ehlo()
                assert "STARTTLS" not in client.extensions
                bad = await client.auth_login(USER, "wrong")
                assert bad.code == 535 and str(bad.enhanced) == "5.7.8"
                ok = await client.auth_login(USER, PASSWORD)
                assert ok.code == 235
                await client.quit()
        assert server.commands[-1] == b"QUIT\r\n"

    run(main())


def test_auth_plain_both_ways_and_masking() -> None:
    async def main() -> None:
        async with FakeServer() as server:
            async with session(server) as client:
                await client.ehlo()
                assert (await client.auth_plain(USER, "nope")).code == 535
                assert (await client.auth_plain(USER, PASSWORD, initial_response=False)).code == 235
                transcript = client.transcript
                await client.quit()
        expected = sasl.plain_initial_response(USER, PASSWORD).encode()
        assert server.auth_lines[-1] == expected
        assert server.commands[-2:] == [b"AUTH PLAIN\r\n", b"QUIT\r\n"]
        assert transcript.sent().endswith(b"AUTH PLAIN\r\n" + expected + b"\r\nQUIT\r\n")
        # exact bytes are kept; render hides them only on request
        assert expected in transcript.sent()
        assert expected.decode() in transcript.render()
        masked = transcript.render(mask_auth=True)
        assert expected.decode() not in masked
        assert sasl.plain_initial_response(USER, "nope") not in masked
        assert "C: AUTH PLAIN ****" in masked and "C: ****" in masked
        assert "C: QUIT" in masked

    run(main())


def test_unexpected_second_challenge_is_cancelled() -> None:
    async def main() -> None:
        async with FakeServer(script={"AUTH": b"334 \r\n", "*": b"501 5.7.0 cancelled\r\n"}) as server:
            async with session(server) as client:
                await client.ehlo()
                reply = await client.auth_plain(USER, PASSWORD)
                assert reply.code == 501
        assert server.commands[-1] == b"*\r\n"

    run(main())


def test_malformed_reply_raises_remote_protocol_error() -> None:
    async def main() -> None:
        for bad in (b"250 ok\n", b"25O ok\r\n", b"250-a\r\n251 b\r\n", b"250 " + b"x" * 700):
            async with FakeServer(script={"NOOP": bad}) as server:
                async with session(server) as client:
                    with pytest.raises(RemoteProtocolError) as info:
                        await client.noop()
                    assert info.value.data
                    assert bad[:5] in client.transcript.received()

    run(main())


def test_peer_closing_raises_connection_closed() -> None:
    async def main() -> None:
        async with FakeServer(script={"MAIL": CLOSE}) as server:
            async with session(server) as client:
                await client.ehlo()
                with pytest.raises(SMTPConnectionClosed):
                    await client.mail("a@b.example")
                assert state_of(client) is SessionState.CLOSED
                notes = [e.data for e in client.transcript.entries if e.direction == "*"]
                assert b"connection closed by peer" in notes
                with pytest.raises(ConnectionError):  # also an OSError for generic handlers
                    await client.read_reply()

    run(main())


def test_context_exit_survives_a_peer_that_drops_quit() -> None:
    async def main() -> None:
        async with FakeServer(script={"QUIT": CLOSE}) as server:
            async with await SMTPClient.connect("127.0.0.1", server.port, timeout=WAIT) as client:
                await client.ehlo()
            assert client.closed
        assert server.commands[-1] == b"QUIT\r\n"

    run(main())


def test_greeting_554_and_421() -> None:
    async def main() -> None:
        async with FakeServer(greeting=b"554 5.7.1 go away\r\n") as server:
            async with session(server) as client:
                assert state_of(client) is SessionState.REFUSED
                assert (await client.ehlo()).code == 250  # the fake server misbehaves: noted
                assert state_of(client) is SessionState.REFUSED
                assert any(b"no transition" in e.data for e in client.transcript.entries)
        async with FakeServer(greeting=b"421 4.3.2 busy\r\n") as server:
            async with session(server) as client:
                assert client.greeting.code == 421 and state_of(client) is SessionState.CLOSED

    run(main())


def test_timeout() -> None:
    async def main() -> None:
        async with FakeServer(greeting=b"220-slow\r\n") as server:
            with pytest.raises(SMTPTimeout):
                await SMTPClient.connect("127.0.0.1", server.port, timeout=0.2)
            with pytest.raises(TimeoutError):
                await SMTPClient.connect("127.0.0.1", server.port, timeout=0.2)

    run(main())


def test_read_reply_timeout_leaves_connection_usable() -> None:
    async def main() -> None:
        async with FakeServer() as server:
            async with session(server) as client:
                with pytest.raises(SMTPTimeout):
                    await client.read_reply(timeout=0.05)
                assert (await client.noop()).code == 250

    run(main())


def test_raw_and_command_checks() -> None:
    async def main() -> None:
        async with FakeServer() as server:
            async with session(server) as client:
                with pytest.raises(LocalProtocolError):
                    await client.command("NOOP\r\nQUIT")
                with pytest.raises(LocalProtocolError):
                    await client.mail("a>b@example")
                await client.send_raw(b"BOGUS\r\n")
                reply = await client.read_reply()
                assert reply.code == 500 and reply.is_permanent
                assert (await client.command("XFOO bar")).code == 500
                assert state_of(client) is SessionState.GREETED
        assert server.commands[:2] == [b"BOGUS\r\n", b"XFOO bar\r\n"]

    run(main())


def test_connect_refuses_names_and_reports_refused_port() -> None:
    async def main() -> None:
        with pytest.raises(ValueError):
            await SMTPClient.connect("localhost", 25)
        with pytest.raises(ValueError):
            await SMTPClient.connect("mx.example.com", 25)
        # a port nobody listens on: bind one, note it, close it
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        transcript = Transcript("refused")
        with pytest.raises(SMTPConnectError):
            await SMTPClient.connect("127.0.0.1", port, timeout=WAIT, transcript=transcript)
        assert transcript.entries[-1].direction == "*"

    run(main())


# --- transcript -------------------------------------------------------------------------------


def test_transcript_render_and_dict() -> None:
    t = Transcript("t")
    t.note("connected")
    t.client(b"EHLO x\r\n")
    t.server(b"250-a\r\n250 b\r\n")
    t.server(b"bare\nstray\rcr\x00\r\n")
    t.client(b"x" * 5000)
    t.server(b"\xff\xfe\r\n")
    assert len(t) == 6
    assert isinstance(t.entries[0], TranscriptEntry) and t.entries[0].direction == "*"
    lines = t.render().splitlines()
    assert lines[:4] == ["* connected", "C: EHLO x", "S: 250-a", "S: 250 b"]
    assert lines[4] == "S: bare [LF]"
    assert lines[5] == "S: stray\\rcr\\x00"
    assert lines[6] == "C: " + "x" * 4096
    assert lines[7] == "C: ... [904 more octets]"
    assert lines[8] == "S: \\xff\\xfe"
    full = t.render(max_bytes=None)
    assert "more octets" not in full
    assert t.render(timestamps=True).startswith("[   0.000] * connected")
    d = t.to_dict()
    assert d["name"] == "t"
    assert d["entries"][1] == {"dir": "C", "t": t.entries[1].timestamp, "data": "EHLO x\r\n"}
    assert d["entries"][4]["omitted"] == 904
    assert d["entries"][4]["data"].endswith("... [904 more octets]")
    assert d["entries"][5]["data"] == "\\xff\\xfe\r\n"
    assert "omitted" not in t.to_dict(max_bytes=None)["entries"][4]
    assert Transcript("empty").render() == ""


# --- interop with an independent implementation: aiosmtpd -----------------------------------


class _Handler:
    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Message accepted"


def test_interop_with_aiosmtpd(tls: TLSMaterial) -> None:
    from aiosmtpd.smtp import SMTP

    message = b"Subject: interop\r\n\r\n.dot line\r\n..\r\nlast line"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = _Handler()
        server_ctx = tls.server_context(["127.0.0.1"])
        server = await loop.create_server(
            lambda: SMTP(
                handler,
                hostname="mx.test.invalid",
                tls_context=server_ctx,
                decode_data=False,
                loop=loop,
            ),
            "127.0.0.1",
            0,
        )
        port = server.sockets[0].getsockname()[1]
        try:
            client = await SMTPClient.connect("127.0.0.1", port, timeout=WAIT)
            async with client:
                assert client.greeting.code == 220
                assert client.greeting.lines[0].startswith("mx.test.invalid")
                await client.ehlo("client.test.invalid")
                assert "STARTTLS" in client.extensions
                assert (await client.starttls(tls.client_context())).code == 220
                assert (await client.ehlo("client.test.invalid")).code == 250
                result = await client.send_message("alice@example.org", ["bob@example.net"], message)
                assert result.delivered and result.accepted == ("bob@example.net",)
                mail_bad = await client.command("MAIL FROM:<>")
                assert mail_bad.code == 250
                dup = await client.mail("a@example.org")  # nested MAIL: server must refuse
                assert dup.code == 503 and state_of(client) is SessionState.MAIL
                quit_reply = await client.quit()
                assert quit_reply.code == 221
        finally:
            server.close()
            await server.wait_closed()
        assert handler.envelopes == [
            ("alice@example.org", ["bob@example.net"], message + b"\r\n")
        ]

    run(main())
