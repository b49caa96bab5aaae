"""The blocking SMTP and IMAP clients (harness/clients/blocking.py) against the reference agents
and against aiosmtpd: submission over STARTTLS with AUTH PLAIN and PIPELINING, a transaction
one command at a time where PIPELINING is not offered, refused recipients, IMAP over implicit
TLS with synchronising and non-synchronising literals, and clear errors."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from harness.clients.blocking import BlockingClientError, BlockingIMAP, BlockingSMTP
from harness.protocol.imap.response_values import Fetch, Search
from harness.sink import SinkServer
from harness.targets import Target
from reference_agents.topology import TopologySettings
from tests.integration.test_imap_workers import running

TIMEOUT = 20.0


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with running(TopologySettings(data_dir=tmp_path_factory.mktemp("blocking"))) as (target, _):
        yield target


def _imap(target: Target) -> BlockingIMAP:
    endpoint = target.receiver.imaps
    assert endpoint is not None
    client = BlockingIMAP.connect(endpoint.host, endpoint.port, timeout=TIMEOUT,
                                  ssl_context=target.client_ssl_context(),
                                  server_hostname="mail.example.net")
    bob = target.receiver.accounts[0]
    assert client.login(bob.user, bob.password).ok
    return client


def test_submission_with_pipelining_reaches_the_mailbox_intact(target: Target) -> None:
    endpoint = target.sender.submission
    alice = target.sender.accounts[0]
    smtp = BlockingSMTP.connect(endpoint.host, endpoint.port, timeout=TIMEOUT,
                                local_hostname="client.example.org")
    try:
        assert smtp.greeting.code == 220
        assert smtp.ehlo().is_positive and smtp.supports("STARTTLS")
        assert smtp.starttls(target.client_ssl_context(), "mail.example.org").code == 220
        assert smtp.is_tls and smtp.supports("AUTH") and smtp.supports("PIPELINING")
        assert smtp.auth_plain(alice.user, alice.password).code == 235
        token = uuid.uuid4().hex
        message = (f"From: {alice.address}\r\nTo: bob@example.net\r\nSubject: {token}\r\n\r\n"
                   ".a line that starts with a dot\r\nbody\r\n").encode()
        sent = smtp.send(alice.address, ["bob@example.net", "nobody@example.net"], message)
        assert sent.mail.code == 250 and sent.rcpts[0].code == 250
        assert sent.accepted and sent.data is not None and sent.data.code == 250
    finally:
        smtp.quit()
    assert smtp.closed
    imap = _imap(target)
    try:
        assert imap.command("SELECT INBOX").ok
        deadline = time.monotonic() + TIMEOUT
        while True:
            found = imap.command(f"UID SEARCH SUBJECT {token}")
            uids = [n for r in found.untagged if isinstance(r, Search) for n in r.numbers]
            if uids or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(uids) == 1
        fetched = imap.command(f"UID FETCH {uids[0]} BODY.PEEK[]")
        bodies = [r for r in fetched.untagged if isinstance(r, Fetch)]
        assert len(bodies) == 1
        body = next(v for k, v in bodies[0].items.items() if k.startswith("BODY"))
        # The MSA adds the Date and Message-ID the message lacks; the rest is as sent.
        assert isinstance(body, bytes)
        assert body.endswith(b"\r\n\r\n.a line that starts with a dot\r\nbody\r\n")
        assert f"\r\nSubject: {token}\r\n".encode() in body
    finally:
        imap.logout()


@pytest.mark.parametrize("literal_plus", [True, False])
def test_append_with_either_kind_of_literal(target: Target, literal_plus: bool) -> None:
    imap = _imap(target)
    try:
        assert ("LITERAL+" in imap.capabilities) is True
        if not literal_plus:
            imap.capabilities = frozenset()  # the synchronising literal: wait for "+"
        message = f"Subject: append {uuid.uuid4().hex}\r\n\r\nx\r\n".encode()
        done = imap.command("APPEND INBOX (\\Seen) {}", message)
        assert done.ok and done.tagged.code is not None and done.tagged.code.name == "APPENDUID"
        with pytest.raises(ValueError):
            imap.command("APPEND INBOX {}")  # a literal missing
    finally:
        imap.logout()


def test_a_transaction_without_pipelining_goes_one_command_at_a_time() -> None:
    """aiosmtpd offers no PIPELINING: MAIL, RCPT and DATA are each sent after the reply."""
    loop = asyncio.new_event_loop()
    sink = SinkServer("127.0.0.1", 0, hostname="sink.example.net")
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(sink.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        sink.script_rcpt(["550 5.1.1 no such user"])
        smtp = BlockingSMTP.connect("127.0.0.1", sink.port, timeout=TIMEOUT)
        try:
            smtp.ehlo()
            assert not smtp.supports("PIPELINING")
            refused = smtp.send("a@example.org", ["gone@example.net"], b"Subject: x\r\n\r\ny\r\n")
            assert refused.rcpts[0].code == 550 and refused.data is None and not refused.accepted
            taken = smtp.send("a@example.org", ["b@example.net"], b"Subject: x\r\n\r\ny\r\n")
            assert taken.accepted
        finally:
            smtp.quit()
        assert [m.recipients for m in sink.messages] == [("b@example.net",)]
    finally:
        asyncio.run_coroutine_threadsafe(sink.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="IP address literals only"):
        BlockingSMTP.connect("mail.example.org", 25)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(BlockingClientError, match="cannot connect"):
        BlockingIMAP.connect("127.0.0.1", port, timeout=2)


def test_idle_returns_when_another_session_adds_a_message(target: Target) -> None:
    watcher, writer = _imap(target), _imap(target)
    try:
        assert watcher.command("SELECT INBOX").ok
        quiet = watcher.idle(0.3)  # nothing happens: DONE after the time is up
        assert quiet.ok and not any(type(r).__name__ == "Exists" for r in quiet.untagged)
        body = b"Subject: idle\r\n\r\nhello\r\n"
        done = threading.Timer(0.3, lambda: writer.command("APPEND INBOX {}", body))
        done.start()
        started = time.monotonic()
        woke = watcher.idle(10.0)
        done.join()
        assert woke.ok and time.monotonic() - started < 8.0
        assert any(type(r).__name__ == "Exists" for r in woke.untagged), woke.untagged
    finally:
        watcher.logout()
        writer.logout()


def test_the_ring_keeps_the_last_lines_without_credentials(target: Target) -> None:
    from harness.clients.blocking import Ring

    ring = Ring("s1", size=12)
    endpoint = target.receiver.imaps
    assert endpoint is not None
    client = BlockingIMAP.connect(endpoint.host, endpoint.port, timeout=TIMEOUT,
                                  ssl_context=target.client_ssl_context(),
                                  server_hostname="mail.example.net", ring=ring)
    bob = target.receiver.accounts[0]
    assert client.login(bob.user, bob.password).ok
    for _ in range(10):
        assert client.command("NOOP").ok
    client.logout()
    lines = ring.snapshot()
    assert len(lines) == 12 and lines[-1].split()[1] == "S:"  # the goodbye, last
    assert all(bob.password not in line for line in ring.snapshot())
    late = Ring("s2")
    late.record("C:", b"A1 LOGIN bob secret\r\n")
    late.record("S:", b"".join(b"* %d EXISTS\r\n" % n for n in range(20)))
    assert "secret" not in late.lines[0] and "credentials not kept" in late.lines[0]
    assert len(late.lines) == 1 + 6 + 1 and "14 more lines" in late.lines[-1]
