"""The provider's SMTP servers (reference_agents/smtpd/), driven by smtplib and raw sockets."""

from __future__ import annotations

import asyncio
import re
import smtplib
import socket
import ssl
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from reference_agents import smtpd
from reference_agents.accounts import Account, AccountStore, hash_password
from reference_agents.config import ProviderConfig, ProviderPorts
from reference_agents.smtpd import MAX_RECIPIENTS, SMTPServers, add_missing_fields
from reference_agents.tls import TLSMaterial

T = TypeVar("T")
CLIENT = "client.test.invalid"
HOST = "127.0.0.1"
PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret"}


@dataclass
class FakeQueue:
    """Records what the servers queue; raises while ``fail`` is set."""

    items: list[tuple[str, tuple[str, ...], bytes]] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, mail_from: str, recipients: Iterable[str], data: bytes) -> str:
        if self.fail:
            raise OSError("disk full")
        self.items.append((mail_from, tuple(recipients), data))
        return f"Q{len(self.items)}"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    return TLSMaterial.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server_tls(tls: TLSMaterial) -> ssl.SSLContext:
    return tls.server_context(["mail.example.org", HOST])


@pytest.fixture(scope="module")
def client_tls(tls: TLSMaterial) -> ssl.SSLContext:
    return tls.client_context()


@pytest.fixture(scope="module")
def accounts() -> AccountStore:
    return AccountStore(
        [
            Account(name, f"{name}@example.org", hash_password(pw))
            for name, pw in PASSWORDS.items()
        ]
        + [Account("postmaster", "postmaster@example.org", hash_password("pm"))],
        ["example.org"],
    )


@pytest.fixture
def make_config(
    tmp_path: Path, accounts: AccountStore, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> Callable[..., ProviderConfig]:
    def make(*quirks: str, max_message_size: int = 64 * 1024) -> ProviderConfig:
        return ProviderConfig(
            domain="example.org",
            address=HOST,
            hostname="mail.example.org",
            data_dir=tmp_path,
            accounts=accounts,
            server_tls=server_tls,
            client_tls=client_tls,
            dns_server=(HOST, 53),
            ports=ProviderPorts(submission=0, submissions=0, smtp=0, imap=0, imaps=0),
            quirks=frozenset(quirks),
            max_message_size=max_message_size,
        )

    return make


def serve(config: ProviderConfig, client: Callable[[dict[str, int]], T], queue: FakeQueue) -> T:
    """Start the servers, run the blocking *client* in a thread, stop the servers."""

    async def main() -> T:
        servers = SMTPServers(config, queue)
        await servers.start()
        try:
            return await asyncio.to_thread(client, dict(servers.ports))
        finally:
            await servers.stop()

    return asyncio.run(main())


class Raw:
    """A line-level SMTP client for input smtplib will not send."""

    def __init__(self, port: int, context: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection((HOST, port), timeout=10)
        self.sock: socket.socket = context.wrap_socket(sock, server_hostname=HOST) if context else sock
        self.buf = b""
        self.greeting = self.reply()

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def reply(self) -> tuple[int, list[str]]:
        lines = []
        while True:
            line = self.line().decode()
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), lines

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: str | bytes) -> tuple[int, list[str]]:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def starttls(self, context: ssl.SSLContext) -> None:
        assert self.cmd("STARTTLS")[0] == 220
        self.sock = context.wrap_socket(self.sock, server_hostname=HOST)

    def close(self) -> None:
        self.sock.close()


def enhanced(reply: tuple[int, list[str] | bytes | str]) -> str:
    """The enhanced status code of a reply from Raw (lines) or smtplib (bytes)."""
    detail = reply[1]
    text = detail if isinstance(detail, bytes) else (detail if isinstance(detail, str) else detail[-1]).encode()
    m = re.match(rb"([245]\.\d{1,3}\.\d{1,3})(?: |$)", text)
    assert m is not None, reply
    return m[1].decode()


def smtp(port: int) -> smtplib.SMTP:
    return smtplib.SMTP(HOST, port, local_hostname=CLIENT, timeout=10)


def submit_session(ports: dict[str, int], client_tls: ssl.SSLContext, user: str = "alice") -> smtplib.SMTP:
    s = smtp(ports["submission"])
    s.starttls(context=client_tls)
    s.login(user, PASSWORDS[user])
    return s


def header_names(data: bytes) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0].decode() for line in head.split(b"\r\n") if line[:1] not in (b" ", b"\t")]


PLAIN_MESSAGE = b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"


def test_reply_constants_are_valid_reply_lines() -> None:
    from harness.protocol.smtp import codes, parse_replies

    for name in dir(codes):
        if re.fullmatch(r"R\d{3}_\w+", name):
            [reply] = parse_replies(getattr(codes, name).raw)
            assert str(reply.code) == name[1:4]
            assert reply.code // 100 == 3 or reply.enhanced is not None, name


# --- MSA ----------------------------------------------------------------------------------------


def test_submission_starttls_auth_and_send(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with smtp(ports["submission"]) as s:
            code, _ = s.ehlo()
            assert code == 250
            assert {"starttls", "size", "8bitmime", "enhancedstatuscodes"} <= set(s.esmtp_features)
            assert "auth" not in s.esmtp_features  # no plaintext AUTH before TLS
            assert s.esmtp_features["size"] == str(64 * 1024)
            s.starttls(context=client_tls)
            s.ehlo()
            assert "starttls" not in s.esmtp_features  # RFC 3207 §4.2
            assert set(s.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
            code, text = s.login("alice", PASSWORDS["alice"])
            assert (code, enhanced((code, text))) == (235, "2.7.0")
            refused = s.sendmail("alice@example.org", ["bob@example.org", "carol@example.com"], PLAIN_MESSAGE)
            assert refused == {}

    serve(make_config(), client, queue)
    [(sender, rcpts, data)] = queue.items
    assert sender == "alice@example.org"
    assert rcpts == ("bob@example.org", "carol@example.com")
    assert header_names(data) == ["Received", "From", "To", "Subject", "Date", "Message-ID"]
    received = data.split(b"\r\n\t")[:3]
    assert received[0] == b"Received: from client.test.invalid ([127.0.0.1])"
    assert re.fullmatch(rb"by mail\.example\.org \(mailharness\) with ESMTPSA id [0-9A-F]+; .*\d{4}\r\nFrom: .*", received[1], re.S)
    assert re.search(rb"\r\nMessage-ID: <[0-9a-f]+@example\.org>\r\n\r\nHello\.\r\n\Z", data)
    assert data.endswith(b"\r\n\r\nHello.\r\n")


def test_submission_reply_is_sent_after_enqueue_with_queue_id(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> tuple[int, bytes]:
        with submit_session(ports, client_tls) as s:
            s.mail("alice@example.org")
            s.rcpt("bob@example.org")
            return s.data(PLAIN_MESSAGE)

    code, text = serve(make_config(), client, queue)
    assert (code, enhanced((code, text))) == (250, "2.0.0")
    assert b"Q1" in text and len(queue.items) == 1
    assert b"\tfor <bob@example.org>; " in queue.items[0][2]


def test_submissions_implicit_tls(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with smtplib.SMTP_SSL(HOST, ports["submissions"], local_hostname=CLIENT, context=client_tls, timeout=10) as s:
            s.ehlo()
            assert "starttls" not in s.esmtp_features
            assert "auth" in s.esmtp_features
            assert s.docmd("STARTTLS")[0] == 503
            assert s.docmd("MAIL", "FROM:<alice@example.org>")[0] == 530
            s.login("alice", PASSWORDS["alice"])
            s.sendmail("alice@example.org", ["bob@example.org"], PLAIN_MESSAGE)

    serve(make_config(), client, queue)
    assert b" with ESMTPSA id " in queue.items[0][2]


def test_auth_required_and_refused_before_tls(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    def client(ports: dict[str, int]) -> None:
        raw = Raw(ports["submission"])
        raw.cmd("EHLO client.test.invalid")
        reply = raw.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlLXNlY3JldA==")
        assert (reply[0], enhanced(reply)) == (538, "5.7.11")
        reply = raw.cmd("MAIL FROM:<alice@example.org>")
        assert (reply[0], enhanced(reply)) == (530, "5.7.0")
        raw.starttls(client_tls)
        raw.cmd("EHLO client.test.invalid")
        reply = raw.cmd("MAIL FROM:<alice@example.org>")
        assert (reply[0], enhanced(reply)) == (530, "5.7.0")
        assert raw.cmd("RCPT TO:<bob@example.org>")[0] == 503
        raw.close()

    serve(make_config(), client, FakeQueue())


def test_bad_credentials_then_good(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    def client(ports: dict[str, int]) -> None:
        with smtp(ports["submission"]) as s:
            s.starttls(context=client_tls)
            s.ehlo()
            # smtplib tries PLAIN then LOGIN: two failures per login(), four in all (the limit is 5)
            for user, password in [("alice", "wrong"), ("nobody", "x")]:
                with pytest.raises(smtplib.SMTPAuthenticationError) as info:
                    s.login(user, password)
                assert (info.value.smtp_code, enhanced((535, info.value.smtp_error))) == (535, "5.7.8")
            s.login("alice", PASSWORDS["alice"])
            assert s.docmd("AUTH", "PLAIN")[0] == 503  # RFC 4954 §4: only one AUTH

    serve(make_config(), client, FakeQueue())


def test_auth_mechanisms_and_malformed_responses(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    import base64

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    def client(ports: dict[str, int]) -> None:
        raw = Raw(ports["submissions"], client_tls)
        raw.cmd("EHLO client.test.invalid")
        assert raw.cmd("AUTH CRAM-MD5")[0] == 504
        assert raw.cmd("AUTH PLAIN not*base64")[0] == 501
        assert raw.cmd("AUTH PLAIN " + b64("no-nul-separators"))[0] == 501
        assert raw.cmd("AUTH PLAIN")[0] == 334
        assert raw.cmd("*")[0] == 501  # RFC 4954 §4: the client cancelled
        # authzid must be the user itself
        assert raw.cmd("AUTH PLAIN " + b64("bob@example.org\0alice\0" + PASSWORDS["alice"]))[0] == 535
        # LOGIN without an initial response: two 334 challenges
        assert raw.cmd("AUTH login")[0] == 334
        assert raw.cmd(b64("alice"))[0] == 334
        reply = raw.cmd(b64(PASSWORDS["alice"]))
        assert (reply[0], enhanced(reply)) == (235, "2.7.0")
        assert raw.cmd("MAIL FROM:<alice@example.org>")[0] == 250
        raw.close()

        raw = Raw(ports["submissions"], client_tls)
        raw.cmd("EHLO client.test.invalid")
        assert raw.cmd("AUTH PLAIN")[0] == 334
        assert raw.cmd(b64("\0bob\0" + PASSWORDS["bob"]))[0] == 235
        raw.close()

    serve(make_config(), client, FakeQueue())


def test_sender_must_be_the_authenticated_account(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    def client(ports: dict[str, int]) -> None:
        with submit_session(ports, client_tls) as s:
            for sender in ["bob@example.org", "alice@example.com", "<>"]:
                reply = s.docmd("MAIL", f"FROM:<{sender.strip('<>')}>")
                assert (reply[0], enhanced(reply)) == (550, "5.7.1"), sender
            reply = s.docmd("MAIL", "FROM:<Alice@Example.ORG>")
            assert (reply[0], enhanced(reply)) == (250, "2.1.0")

    serve(make_config(), client, FakeQueue())


def test_submission_recipients(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    def client(ports: dict[str, int]) -> None:
        with submit_session(ports, client_tls) as s:
            s.mail("alice@example.org")
            assert s.rcpt("anyone@example.net")[0] == 250
            reply = s.rcpt("ghost@example.org")
            assert (reply[0], enhanced(reply)) == (550, "5.1.1")
            assert s.docmd("RCPT", "TO:<nodomain>")[0] == 501
            assert s.docmd("RCPT", "TO:<Postmaster>")[0] == 250

    serve(make_config(), client, FakeQueue())


def test_auth_not_allowed_during_a_transaction(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    def client(ports: dict[str, int]) -> None:
        with smtp(ports["submission"]) as s:
            s.starttls(context=client_tls)
            s.ehlo()
            s.mail("alice@example.org")
            assert s.docmd("AUTH", "PLAIN")[0] == 503

    serve(make_config("msa_no_auth_required"), client, FakeQueue())


def test_existing_date_and_message_id_are_kept(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    queue = FakeQueue()
    message = (
        b"Message-Id: <given@example.org>\r\nDATE: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"Subject: x\r\n\r\nDate: in the body\r\n"
    )

    def client(ports: dict[str, int]) -> None:
        with submit_session(ports, client_tls) as s:
            s.sendmail("alice@example.org", ["bob@example.org"], message)

    serve(make_config(), client, queue)
    data = queue.items[0][2]
    assert data.split(b"\r\n", 3)[-1] == message


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"Subject: x\r\n\r\nbody\r\n", b"Subject: x\r\nD: 1\r\n\r\nbody\r\n"),
        (b"Subject: x\r\n folded\r\n\r\nbody\r\n", b"Subject: x\r\n folded\r\nD: 1\r\n\r\nbody\r\n"),
        (b"Subject: x\r\n", b"Subject: x\r\nD: 1\r\n"),
        (b"", b"D: 1\r\n"),
        (b"\r\nbody only\r\n", b"D: 1\r\n\r\nbody only\r\n"),
        (b"no header here\r\nD: 2\r\n", b"D: 1\r\n\r\nno header here\r\nD: 2\r\n"),
        (b" leading space\r\n", b"D: 1\r\n\r\n leading space\r\n"),
        (b"d : obs\r\n\r\nx\r\n", b"d : obs\r\n\r\nx\r\n"),
        (b"X: 1\r\n\r\nD: 3\r\n", b"X: 1\r\nD: 1\r\n\r\nD: 3\r\n"),
    ],
)
def test_add_missing_fields(message: bytes, expected: bytes) -> None:
    assert add_missing_fields(message, [(b"D", b"1")]) == expected


def test_eight_bit_body_and_dots_preserved(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    queue = FakeQueue()
    body = bytes(range(0x80, 0x100)) + b"\r\n.leading dot\r\n..two dots\r\n.\xff\r\n\x00\t\r\n"
    message = b"Subject: 8bit\r\n\r\n" + body

    def client(ports: dict[str, int]) -> None:
        with submit_session(ports, client_tls) as s:
            s.sendmail("alice@example.org", ["bob@example.org"], message, mail_options=["BODY=8BITMIME"])

    serve(make_config(), client, queue)
    assert queue.items[0][2].endswith(b"\r\n\r\n" + body)


# --- inbound MTA ----------------------------------------------------------------------------------


def test_inbound_routing(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with smtp(ports["smtp"]) as s:
            s.ehlo()
            assert "starttls" in s.esmtp_features and "auth" not in s.esmtp_features
            assert s.docmd("AUTH", "PLAIN")[0] == 502
            assert s.mail("")[0] == 250  # the null reverse-path of bounces
            assert s.rcpt("alice@example.org")[0] == 250
            assert s.rcpt("BOB@EXAMPLE.ORG")[0] == 250
            reply = s.rcpt("ghost@example.org")
            assert (reply[0], enhanced(reply)) == (550, "5.1.1")
            reply = s.rcpt("victim@example.com")
            assert (reply[0], enhanced(reply)) == (550, "5.7.1")
            assert s.docmd("RCPT", "TO:<postmaster>")[0] == 250
            code, text = s.data(PLAIN_MESSAGE)
            assert (code, enhanced((code, text))) == (250, "2.0.0")

    serve(make_config(), client, queue)
    [(sender, rcpts, data)] = queue.items
    assert sender == ""
    assert rcpts == ("alice@example.org", "BOB@EXAMPLE.ORG", "postmaster@example.org")
    assert data.startswith(b"Received: from client.test.invalid ([127.0.0.1])\r\n\tby mail.example.org (mailharness) with ESMTP id ")
    assert b"\tfor " not in data  # several recipients: no FOR clause
    # the inbound MTA adds trace information only
    assert data.split(b"\r\n", 2)[2] == PLAIN_MESSAGE


def test_inbound_starttls_and_helo_trace(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with smtp(ports["smtp"]) as s:
            s.starttls(context=client_tls)
            s.ehlo()
            assert "auth" not in s.esmtp_features
            assert s.docmd("STARTTLS")[0] == 503
            s.sendmail("x@example.net", ["alice@example.org"], PLAIN_MESSAGE)
        with smtp(ports["smtp"]) as s:
            s.helo()
            s.sendmail("x@example.net", ["alice@example.org"], PLAIN_MESSAGE)
        raw = Raw(ports["smtp"])
        raw.cmd("HELO not a domain!")
        raw.cmd("MAIL FROM:<x@example.net>")
        raw.cmd("RCPT TO:<alice@example.org>")
        raw.cmd("DATA")
        assert raw.cmd(PLAIN_MESSAGE + b".")[0] == 250
        raw.close()

    serve(make_config(), client, queue)
    assert b" with ESMTPS id " in queue.items[0][2]
    assert b" with SMTP id " in queue.items[1][2]
    assert queue.items[2][2].startswith(b"Received: from [127.0.0.1] ([127.0.0.1])\r\n")


# --- limits and malformed input -----------------------------------------------------------------


def test_malformed_commands_get_errors_and_the_session_goes_on(make_config: Callable[..., ProviderConfig]) -> None:
    def client(ports: dict[str, int]) -> None:
        raw = Raw(ports["smtp"])
        assert raw.greeting[0] == 220
        for line, code in [
            ("MAIL FROM:<x@example.net>", 503),  # before EHLO
            ("EHLO", 501),
            ("EHLO client.test.invalid", 250),
            ("", 500),
            ("BOGUS command", 500),
            ("MAIL TO:<x@example.net>", 501),
            ("MAIL FROM:<x@example.net> NOPE=1", 555),
            ("RCPT TO:<alice@example.org>", 503),  # before MAIL
            ("DATA", 503),
            ("MAIL FROM:<x@example.net>", 250),
            ("MAIL FROM:<x@example.net>", 503),  # nested
            ("RCPT TO:alice", 501),
            ("RCPT TO:<alice@example.org> BOGUS", 555),
            ("DATA now", 503),
            ("RCPT TO:<alice@example.org>", 250),
            ("DATA now", 501),
            ("RSET x", 501),
            ("RSET", 250),
            ("NOOP", 250),
        ]:
            reply = raw.cmd(line)
            assert reply[0] == code, (line, reply)
            if line.startswith("EHLO"):
                continue
            assert enhanced(reply)[0] == str(code)[0], (line, reply)  # RFC 2034 §4
        assert raw.cmd("QUIT")[0] == 221
        raw.close()

    serve(make_config(), client, FakeQueue())


def test_command_line_limit(make_config: Callable[..., ProviderConfig]) -> None:
    def client(ports: dict[str, int]) -> None:
        raw = Raw(ports["smtp"])
        raw.cmd("EHLO client.test.invalid")
        assert raw.cmd("NOOP " + "x" * 400)[0] == 250
        for length in (600, 5000, 200_000):
            reply = raw.cmd("NOOP " + "x" * length)
            assert (reply[0], enhanced(reply)) == (500, "5.5.2"), length
            assert raw.cmd("NOOP")[0] == 250
        # RFC 1870 §3: MAIL may be 26 octets longer with SIZE; many EHLOs do not stretch it
        for _ in range(10):
            raw.cmd("EHLO client.test.invalid")
        sender = "<" + "a" * 480 + "@example.net>"
        assert raw.cmd(f"MAIL FROM:{sender}")[0] == 250
        raw.cmd("RSET")
        assert raw.cmd(f"MAIL FROM:{'<' + 'a' * 600 + '@example.net>'}")[0] == 500
        raw.close()

    serve(make_config(), client, FakeQueue())


def test_too_many_recipients(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with submit_session(ports, client_tls) as s:
            s.mail("alice@example.org")
            for i in range(MAX_RECIPIENTS):
                assert s.rcpt(f"r{i}@example.com")[0] == 250
            reply = s.rcpt("one-more@example.com")
            assert (reply[0], enhanced(reply)) == (452, "4.5.3")
            assert s.data(PLAIN_MESSAGE)[0] == 250

    serve(make_config(), client, queue)
    assert len(queue.items[0][1]) == MAX_RECIPIENTS


def test_a_repeated_recipient_is_delivered_once(make_config: Callable[..., ProviderConfig]) -> None:
    """A hundred RCPTs of one mailbox, in any case, are each answered 250 (and count against
    the limit on RCPT commands) and queue the message for that mailbox once."""
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with smtp(ports["smtp"]) as s:
            s.ehlo()
            s.mail("x@example.net")
            for i in range(MAX_RECIPIENTS - 2):
                address = "alice@example.org" if i % 2 else "Alice@EXAMPLE.org"
                assert s.rcpt(address)[0] == 250
            assert s.rcpt("bob@example.org")[0] == 250
            assert s.rcpt("BOB@example.org")[0] == 250
            assert s.rcpt("bob@example.org")[0] == 452
            assert s.data(PLAIN_MESSAGE)[0] == 250

    serve(make_config(), client, queue)
    [(_, rcpts, _)] = queue.items
    assert rcpts == ("Alice@EXAMPLE.org", "bob@example.org")


def test_oversize_message_refused_and_session_continues(make_config: Callable[..., ProviderConfig]) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with smtp(ports["smtp"]) as s:
            s.ehlo()
            reply = s.docmd("MAIL", "FROM:<x@example.net> SIZE=70000")
            assert (reply[0], enhanced(reply)) == (552, "5.3.4")
            s.mail("x@example.net")
            s.rcpt("alice@example.org")
            big = PLAIN_MESSAGE + b"y" * 900 + b"\r\n" + (b"z" * 100 + b"\r\n") * 700
            code, text = s.data(big)
            assert (code, enhanced((code, text))) == (552, "5.3.4")
            assert s.noop()[0] == 250
            assert s.sendmail("x@example.net", ["alice@example.org"], PLAIN_MESSAGE) == {}

    serve(make_config(), client, queue)
    assert len(queue.items) == 1


def test_long_data_line_refused(make_config: Callable[..., ProviderConfig]) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with smtp(ports["smtp"]) as s:
            s.ehlo()
            s.mail("x@example.net")
            s.rcpt("alice@example.org")
            code, text = s.data(b"Subject: x\r\n\r\n" + b"." + b"a" * 997 + b"\r\n")  # 1000 with CRLF
            assert code == 250
            s.mail("x@example.net")
            s.rcpt("alice@example.org")
            code, text = s.data(b"Subject: x\r\n\r\n" + b"a" * 999 + b"\r\n")
            assert (code, enhanced((code, text))) == (500, "5.5.2")
            assert s.noop()[0] == 250

    serve(make_config(), client, queue)
    assert len(queue.items) == 1


@pytest.mark.parametrize("shape", ["one endless line", "many lines"])
def test_oversize_data_memory_is_bounded(make_config: Callable[..., ProviderConfig], shape: str) -> None:
    queue = FakeQueue()
    total = 4 * 1024 * 1024  # with max_message_size 64 KiB; aiosmtpd's own DATA loop peaks at ~total
    chunk = b"x" * 65536 if shape == "one endless line" else (b"y" * 98 + b"\r\n") * 655

    def client(ports: dict[str, int]) -> tuple[int, int]:
        raw = Raw(ports["smtp"])
        raw.cmd("EHLO client.test.invalid")
        raw.cmd("MAIL FROM:<x@example.net>")
        raw.cmd("RCPT TO:<alice@example.org>")
        assert raw.cmd("DATA")[0] == 354
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        sent = 0
        while sent < total:
            raw.send(chunk)
            sent += len(chunk)
        reply = raw.cmd(b"\r\n.")
        peak = tracemalloc.get_traced_memory()[1] - before
        assert raw.cmd("NOOP")[0] == 250
        raw.close()
        return reply[0], peak

    tracemalloc.start()
    try:
        code, peak = serve(make_config(), client, queue)
    finally:
        tracemalloc.stop()
    assert code == 552
    assert peak < 1536 * 1024, peak
    assert queue.items == []


def test_dropped_connection_mid_data_queues_nothing(make_config: Callable[..., ProviderConfig]) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        for ending in (b"", b"\r\n", b"\r\n."):
            raw = Raw(ports["smtp"])
            raw.cmd("EHLO client.test.invalid")
            raw.cmd("MAIL FROM:<x@example.net>")
            raw.cmd("RCPT TO:<alice@example.org>")
            assert raw.cmd("DATA")[0] == 354
            raw.send(PLAIN_MESSAGE + b"partial" + ending)
            raw.close()
        with smtp(ports["smtp"]) as s:
            s.sendmail("y@example.net", ["alice@example.org"], PLAIN_MESSAGE)

    serve(make_config(), client, queue)
    assert [item[0] for item in queue.items] == ["y@example.net"]


def test_enqueue_failure_answers_451(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    queue = FakeQueue(fail=True)

    def client(ports: dict[str, int]) -> None:
        for port, session in [(ports["smtp"], smtp), (ports["submission"], None)]:
            s = session(port) if session else submit_session(ports, client_tls)
            with s:
                s.ehlo_or_helo_if_needed()
                s.mail("alice@example.org")
                s.rcpt("alice@example.org")
                code, text = s.data(PLAIN_MESSAGE)
                assert (code, enhanced((code, text))) == (451, "4.3.0")
                assert s.noop()[0] == 250

    serve(make_config(), client, queue)
    assert queue.items == []


def test_only_crlf_dot_crlf_ends_data(make_config: Callable[..., ProviderConfig]) -> None:
    queue = FakeQueue()
    smuggled = b"\n.\nMAIL FROM:<evil@example.net>\r\n\r\n.\n\r\nRCPT TO:<x@example.com>\r\n"

    def client(ports: dict[str, int]) -> None:
        raw = Raw(ports["smtp"])
        raw.cmd("EHLO client.test.invalid")
        raw.cmd("MAIL FROM:<x@example.net>")
        raw.cmd("RCPT TO:<alice@example.org>")
        assert raw.cmd("DATA")[0] == 354
        reply = raw.cmd(b"Subject: smuggle\r\n\r\nhi" + smuggled + b".")
        # one reply for the whole data: the bare-LF "ends" were content, refused as such
        assert (reply[0], enhanced(reply)) == (554, "5.6.0")
        assert raw.cmd("NOOP")[0] == 250
        assert raw.cmd("DATA")[0] == 503  # the transaction is over; no smuggled MAIL ran
        raw.close()

    serve(make_config(), client, queue)
    assert queue.items == []


def test_stop_closes_open_sessions_with_421(make_config: Callable[..., ProviderConfig]) -> None:
    def client(ports: dict[str, int]) -> Raw:
        raw = Raw(ports["smtp"])
        raw.cmd("EHLO client.test.invalid")
        return raw

    raw = serve(make_config(), client, FakeQueue())
    reply = raw.reply()
    assert (reply[0], enhanced(reply)) == (421, "4.3.2")
    assert raw.sock.recv(10) == b""
    raw.close()


def test_refuses_non_loopback_and_names(make_config: Callable[..., ProviderConfig]) -> None:
    from dataclasses import replace

    for address in ("192.0.2.1", "localhost"):
        config = replace(make_config(), address=address)

        async def main(config: ProviderConfig = config) -> None:
            await SMTPServers(config, FakeQueue()).start()

        with pytest.raises(ValueError):
            asyncio.run(main())


# --- quirks ---------------------------------------------------------------------------------------


def test_quirk_msa_greeting_554(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    def client(ports: dict[str, int]) -> None:
        for raw in (Raw(ports["submission"]), Raw(ports["submissions"], client_tls)):
            assert raw.greeting[0] == 554
            # RFC 5321 §3.1: then 503 to everything but QUIT
            assert raw.cmd("EHLO client.test.invalid")[0] == 503
            assert raw.cmd("MAIL FROM:<alice@example.org>")[0] == 503
            assert raw.cmd("QUIT")[0] == 221
            raw.close()
        inbound = Raw(ports["smtp"])
        assert inbound.greeting[0] == 220
        inbound.close()

    serve(make_config("msa_greeting_554"), client, FakeQueue())


def test_quirk_msa_ehlo_bad_continuation(make_config: Callable[..., ProviderConfig]) -> None:
    def client(ports: dict[str, int]) -> None:
        raw = Raw(ports["submission"])
        raw.send(b"EHLO client.test.invalid\r\n")
        assert raw.line() == b"250-mail.example.org"
        assert raw.line().startswith(b"250 ")  # a middle line claiming to be the last
        raw.close()
        good = Raw(ports["smtp"])
        code, lines = good.cmd("EHLO client.test.invalid")
        assert code == 250 and len(lines) > 3
        good.close()

    serve(make_config("msa_ehlo_bad_continuation"), client, FakeQueue())


def test_quirk_msa_no_starttls(make_config: Callable[..., ProviderConfig]) -> None:
    def client(ports: dict[str, int]) -> None:
        with smtp(ports["submission"]) as s:
            s.ehlo()
            assert "starttls" not in s.esmtp_features
            assert s.docmd("STARTTLS")[0] == 454

    serve(make_config("msa_no_starttls"), client, FakeQueue())


def test_quirk_msa_implicit_tls_plaintext(make_config: Callable[..., ProviderConfig]) -> None:
    def client(ports: dict[str, int]) -> None:
        with smtp(ports["submissions"]) as s:
            assert s.ehlo()[0] == 250

    serve(make_config("msa_implicit_tls_plaintext"), client, FakeQueue())


def test_quirk_msa_no_auth_required(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with smtp(ports["submission"]) as s:
            s.starttls(context=client_tls)
            s.sendmail("anyone@example.net", ["bob@example.org"], PLAIN_MESSAGE)

    serve(make_config("msa_no_auth_required"), client, queue)
    assert b" with ESMTPS id " in queue.items[0][2]


def test_quirk_msa_accept_any_password(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    def client(ports: dict[str, int]) -> None:
        with smtp(ports["submission"]) as s:
            s.starttls(context=client_tls)
            assert s.login("alice", "not her password")[0] == 235
        with smtp(ports["submission"]) as s:
            s.starttls(context=client_tls)
            with pytest.raises(smtplib.SMTPAuthenticationError):
                s.login("nobody", "x")

    serve(make_config("msa_accept_any_password"), client, FakeQueue())


def test_quirk_msa_auth_before_tls(make_config: Callable[..., ProviderConfig]) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with smtp(ports["submission"]) as s:
            s.ehlo()
            assert "auth" in s.esmtp_features
            s.login("alice", PASSWORDS["alice"])
            s.sendmail("alice@example.org", ["bob@example.org"], PLAIN_MESSAGE)

    serve(make_config("msa_auth_before_tls"), client, queue)
    assert b" with ESMTPA id " in queue.items[0][2]


def test_quirk_msa_any_sender(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    def client(ports: dict[str, int]) -> None:
        with submit_session(ports, client_tls) as s:
            assert s.docmd("MAIL", "FROM:<bob@example.org>")[0] == 250

    serve(make_config("msa_any_sender"), client, FakeQueue())


@pytest.mark.parametrize(("quirk", "missing"), [("msa_no_date", "Date"), ("msa_no_message_id", "Message-ID")])
def test_quirk_msa_no_date_or_message_id(
    make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext, quirk: str, missing: str
) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with submit_session(ports, client_tls) as s:
            s.sendmail("alice@example.org", ["bob@example.org"], PLAIN_MESSAGE)

    serve(make_config(quirk), client, queue)
    names = header_names(queue.items[0][2])
    assert missing not in names
    assert ({"Date", "Message-ID"} - {missing}) <= set(names)


def test_quirk_mta_lose_after_accept(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with smtp(ports["smtp"]) as s:
            assert s.sendmail("x@example.net", ["alice@example.org"], PLAIN_MESSAGE) == {}
        with submit_session(ports, client_tls) as s:
            assert s.sendmail("alice@example.org", ["bob@example.org"], PLAIN_MESSAGE) == {}

    serve(make_config("mta_lose_after_accept"), client, queue)
    assert queue.items == []


@pytest.mark.parametrize(
    ("quirk", "recipient", "normal", "quirked"),
    [
        ("mta_reject_local", "alice@example.org", (250, "2.1.5"), (451, "4.3.0")),
        ("mta_open_relay", "victim@example.com", (550, "5.7.1"), (250, "2.1.5")),
        ("mta_accept_unknown_user", "ghost@example.org", (550, "5.1.1"), (250, "2.1.5")),
    ],
)
def test_quirks_of_inbound_routing(
    make_config: Callable[..., ProviderConfig], quirk: str, recipient: str,
    normal: tuple[int, str], quirked: tuple[int, str],
) -> None:
    def client(ports: dict[str, int]) -> tuple[int, str]:
        with smtp(ports["smtp"]) as s:
            s.ehlo()
            s.mail("x@example.net")
            reply = s.rcpt(recipient)
            return reply[0], enhanced(reply)

    assert serve(make_config(), client, FakeQueue()) == normal
    assert serve(make_config(quirk), client, FakeQueue()) == quirked


def test_quirk_mta_no_received(make_config: Callable[..., ProviderConfig]) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        with smtp(ports["smtp"]) as s:
            s.sendmail("x@example.net", ["alice@example.org"], PLAIN_MESSAGE)

    serve(make_config("mta_no_received"), client, queue)
    assert queue.items[0][2] == PLAIN_MESSAGE


# --- SMTP in depth: behaviour the suites under suites/smtp and suites/security rely on -------------


def test_help_pipelining_postmaster_and_unclosed_paths(make_config: Callable[..., ProviderConfig]) -> None:
    def client(ports: dict[str, int]) -> None:
        raw = Raw(ports["smtp"])
        code, lines = raw.cmd("EHLO client.test.invalid")
        assert code == 250 and "PIPELINING" in lines
        assert raw.cmd("HELP")[0] == 214  # RFC 5321 §4.3.2: 211/214, not aiosmtpd's 250
        assert raw.cmd("MAIL FROM:<x@example.net")[0] == 501
        assert raw.cmd("MAIL FROM:<x@example.net>")[0] == 250
        assert raw.cmd("RCPT TO:<alice@example.org")[0] == 501
        assert raw.cmd("RCPT TO:<postmaster>")[0] == 250  # aliased to the domain's first account
        assert raw.cmd("RCPT TO:<PostMaster@example.org>")[0] == 250
        # a pipelined group is answered in order
        raw.send(b"RSET\r\nMAIL FROM:<x@example.net>\r\nRCPT TO:<nobody@example.org>\r\nNOOP\r\n")
        assert [raw.reply()[0] for _ in range(4)] == [250, 250, 550, 250]
        raw.close()

    serve(make_config(), client, FakeQueue())


def test_error_limit_and_unknown_commands_end_with_421(make_config: Callable[..., ProviderConfig]) -> None:
    def client(ports: dict[str, int]) -> None:
        raw = Raw(ports["smtp"])
        raw.cmd("EHLO client.test.invalid")
        codes = [raw.cmd("DATA")[0] for _ in range(smtpd.ERROR_LIMIT - 1)]
        assert set(codes) == {503}
        assert raw.cmd("DATA")[0] == 503
        assert raw.reply()[0] == 421  # RFC 5321 §3.8: close only after 421
        assert raw.sock.recv(10) == b""
        raw.close()
        raw = Raw(ports["smtp"])
        raw.cmd("EHLO client.test.invalid")
        for _ in range(4):
            assert raw.cmd("XBOGUS")[0] == 500
        assert raw.cmd("XBOGUS")[0] == 421  # aiosmtpd's 502-and-close, made a 421
        raw.close()

    serve(make_config(), client, FakeQueue())


def test_auth_failures_slow_down_then_421(make_config: Callable[..., ProviderConfig], client_tls: ssl.SSLContext) -> None:
    import base64
    import time

    def client(ports: dict[str, int]) -> list[tuple[int, float]]:
        raw = Raw(ports["submissions"], client_tls)
        raw.cmd("EHLO client.test.invalid")
        seen = []
        bad = base64.b64encode(b"\0alice\0wrong").decode()
        for _ in range(smtpd.AUTH_FAILURE_LIMIT):
            started = time.monotonic()
            seen.append((raw.cmd(f"AUTH PLAIN {bad}")[0], time.monotonic() - started))
        assert raw.sock.recv(10) == b""
        raw.close()
        return seen

    seen = serve(make_config(), client, FakeQueue())
    assert [c for c, _ in seen] == [535, 535, 535, 535, 421]
    assert seen[3][1] >= 2 * smtpd.AUTH_FAILURE_DELAY * 0.9


def test_bare_lf_quirk_smuggles_a_second_transaction(make_config: Callable[..., ProviderConfig]) -> None:
    queue = FakeQueue()

    def client(ports: dict[str, int]) -> None:
        raw = Raw(ports["smtp"])
        raw.cmd("EHLO client.test.invalid")
        raw.cmd("MAIL FROM:<x@example.net>")
        raw.cmd("RCPT TO:<alice@example.org>")
        assert raw.cmd("DATA")[0] == 354
        raw.send(b"Subject: a\r\n\r\nhi\n.\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<bob@example.org>\r\n"
                 b"DATA\r\nSubject: b\r\n\r\nsmuggled\r\n.\r\n")
        assert [raw.reply()[0] for _ in range(5)] == [250, 250, 250, 354, 250]
        raw.close()

    serve(make_config("mta_accept_bare_lf_end_of_data"), client, queue)
    assert [item[0] for item in queue.items] == ["x@example.net", "evil@example.net"]
