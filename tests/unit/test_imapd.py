"""The reference IMAP server over real sockets, checked with imaplib and imapclient."""

from __future__ import annotations

import asyncio
import imaplib
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from imapclient import IMAPClient

from harness.protocol import sasl
from reference_agents.accounts import Account, AccountStore, hash_password
from reference_agents.config import ProviderConfig
from reference_agents.imapd import IMAPServer
from reference_agents.imapd.state import TRANSITIONS, State, Transition, next_state
from reference_agents.mailstore import MemoryStore
from reference_agents.tls import TLSMaterial

HOST = "127.0.0.1"
PASSWORD = "correct horse"
MESSAGE = (b"From: Bob <bob@example.org>\r\nTo: alice@example.net\r\nSubject: hello\r\n"
           b"Message-ID: <1@example.org>\r\n\r\nfirst line\r\nsecond line\r\n")
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def base_config(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProviderConfig, TLSMaterial]:
    tmp = tmp_path_factory.mktemp("imapd")
    tls = TLSMaterial.create(tmp / "tls")
    accounts = AccountStore(
        [Account("alice", "alice@example.net", hash_password(PASSWORD)),
         Account("bob", "bob@example.net", hash_password(PASSWORD))],
        ["example.net"],
    )
    config = ProviderConfig(
        domain="example.net", address=HOST, hostname="imap.example.net", data_dir=tmp,
        accounts=accounts, server_tls=tls.server_context([HOST]),
        client_tls=tls.client_context(), dns_server=(HOST, 53), idle_poll_interval=0.05,
    )
    return config, tls


@dataclass
class Running:
    port: int
    store: MemoryStore
    tls: TLSMaterial
    server: IMAPServer

    def plain(self) -> imaplib.IMAP4:
        return imaplib.IMAP4(HOST, self.port, timeout=TIMEOUT)

    def login(self) -> imaplib.IMAP4:
        m = self.plain()
        m.starttls(self.tls.client_context())
        m.login("alice", PASSWORD)
        return m

    def raw(self) -> RawClient:
        return RawClient(socket.create_connection((HOST, self.port), timeout=TIMEOUT))


class RawClient:
    """A line-oriented socket client for the cases imaplib will not produce."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | ssl.SSLSocket = sock
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until_tagged(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def closed(self) -> bool:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionError, ssl.SSLError):
            return True

    def starttls(self, context: ssl.SSLContext) -> None:
        self.sock = context.wrap_socket(self.sock, server_hostname=HOST)

    def close(self) -> None:
        self.sock.close()


@contextmanager
def serving(base: tuple[ProviderConfig, TLSMaterial], *, implicit_tls: bool = False,
            autologout: float = 60.0, **changes: object) -> Iterator[Running]:
    config, tls = base
    config = replace(config, **changes)  # type: ignore[arg-type]
    store = MemoryStore()
    store.append("alice", "INBOX", MESSAGE)
    loop = asyncio.new_event_loop()
    server = IMAPServer(config=config, store=store, host=HOST, port=0,
                        implicit_tls=implicit_tls, autologout=autologout,
                        auth_failure_delay=0.01)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(TIMEOUT)
        yield Running(server.port, store, tls, server)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()
        store.close()


@pytest.fixture
def srv(base_config: tuple[ProviderConfig, TLSMaterial]) -> Iterator[Running]:
    with serving(base_config) as running:
        yield running


def _code(response: list[bytes] | list[bytes | None]) -> bytes:
    text = response[0] or b""
    assert isinstance(text, bytes)
    m = re.match(rb"\[([^\]]*)\]", text)
    return m.group(1) if m else b""


# -- connection, TLS, authentication ------------------------------------------------------------


def test_greeting_capabilities_and_logindisabled(srv: Running) -> None:
    m = srv.plain()
    try:
        caps = set(m.capabilities)
        assert {"IMAP4REV1", "IMAP4REV2", "STARTTLS", "LOGINDISABLED", "IDLE"} <= caps
        assert "AUTH=PLAIN" not in caps
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            m.login("alice", PASSWORD)
        m.starttls(srv.tls.client_context())
        caps = set(m.capabilities)
        assert "AUTH=PLAIN" in caps and "STARTTLS" not in caps and "LOGINDISABLED" not in caps
        typ, _ = m.login("alice", PASSWORD)
        assert typ == "OK"
    finally:
        m.logout()


def test_implicit_tls(base_config: tuple[ProviderConfig, TLSMaterial]) -> None:
    with serving(base_config, implicit_tls=True) as running:
        m = imaplib.IMAP4_SSL(HOST, running.port, ssl_context=running.tls.client_context(),
                              timeout=TIMEOUT)
        try:
            assert "STARTTLS" not in m.capabilities
            assert m.login("alice", PASSWORD)[0] == "OK"
        finally:
            m.logout()


def test_starttls_discards_pipelined_plaintext(srv: Running) -> None:
    c = srv.raw()
    try:
        assert c.line().startswith(b"* OK")
        # RFC 9051 §6.2.1: commands sent after STARTTLS in the clear must be discarded.
        c.send(b"a STARTTLS\r\nb LOGIN alice {13+}\r\ncorrect horse\r\n")
        assert c.until_tagged(b"a")[-1].startswith(b"a OK")
        assert c.buf == b""
        c.starttls(srv.tls.client_context())
        c.send(b"c CAPABILITY\r\n")
        lines = c.until_tagged(b"c")
        assert lines[-1].startswith(b"c OK")
        assert not any(line.startswith(b"b ") for line in lines)
        c.send(b"d SELECT INBOX\r\n")
        assert c.until_tagged(b"d")[-1].startswith(b"d BAD")  # not authenticated
    finally:
        c.close()


def test_authenticate_plain_with_continuation_and_sasl_ir(srv: Running) -> None:
    m = srv.plain()
    try:
        m.starttls(srv.tls.client_context())
        typ, _ = m.authenticate("PLAIN", lambda _: sasl.plain_message("alice", PASSWORD))
        assert typ == "OK"
    finally:
        m.logout()
    c = srv.raw()
    try:
        c.line()
        c.send(b"a STARTTLS\r\n")
        c.until_tagged(b"a")
        c.starttls(srv.tls.client_context())
        ir = sasl.plain_initial_response("alice", PASSWORD).encode()
        c.send(b"b AUTHENTICATE PLAIN " + ir + b"\r\n")
        assert c.until_tagged(b"b")[-1].startswith(b"b OK")
    finally:
        c.close()


def test_authenticate_cancel_and_garbage(srv: Running) -> None:
    c = srv.raw()
    try:
        c.line()
        c.send(b"a STARTTLS\r\n")
        c.until_tagged(b"a")
        c.starttls(srv.tls.client_context())
        c.send(b"b AUTHENTICATE PLAIN\r\n")
        assert c.line().startswith(b"+")
        c.send(b"*\r\n")
        assert c.until_tagged(b"b")[-1].startswith(b"b BAD")
        c.send(b"c AUTHENTICATE PLAIN !!!\r\n")
        assert c.until_tagged(b"c")[-1].startswith(b"c BAD")
        c.send(b"d AUTHENTICATE CRAM-MD5\r\n")
        assert c.until_tagged(b"d")[-1].startswith(b"d NO")
    finally:
        c.close()


def test_bad_password_refused_then_disconnected(srv: Running) -> None:
    m = srv.plain()
    m.starttls(srv.tls.client_context())
    for _ in range(5):  # the fifth failure is answered NO too, then BYE and close
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            m.login("alice", "wrong")
    with pytest.raises((imaplib.IMAP4.abort, OSError)):  # the BYE that follows the NO
        m.noop()
    m.shutdown()


def test_malformed_and_out_of_state_commands_get_bad(srv: Running) -> None:
    c = srv.raw()
    try:
        c.line()
        c.send(b"a FROBNICATE\r\n")
        assert c.line().startswith(b"a BAD")
        c.send(b"\r\n")
        assert c.line().startswith(b"* BAD")
        c.send(b"b FETCH 1 FLAGS\r\n")
        assert c.line().startswith(b"b BAD")
        c.send(b"c LOGIN \"unterminated\r\n")
        assert c.line().startswith(b"c BAD")
        c.send(b"d APPEND INBOX {99999999999}\r\n")
        assert c.line() == b"d NO [TOOBIG] literal too large"
        c.send(b"e LOGIN a {99999999999+}\r\n")
        assert c.line().startswith(b"e BAD [TOOBIG]")
        c.close()
        c = srv.raw()
        c.line()
        c.send(b"f NOOP\r\n")
        assert c.line().startswith(b"f OK")
        c.send(b"g LOGOUT\r\n")
        assert c.line().startswith(b"* BYE")
        assert c.line().startswith(b"g OK")
        assert c.closed()
    finally:
        c.close()


def test_large_literal_refused_before_authentication(srv: Running) -> None:
    c = srv.raw()
    try:
        c.line()
        c.send(b"a LOGIN {20000}\r\n")
        assert c.line().startswith(b"a NO [TOOBIG]")
        c.send(b"b LOGIN {5}\r\n")
        assert c.line().startswith(b"+ ")
        c.send(b"alice x\r\n")
        assert c.line().startswith(b"b NO [PRIVACYREQUIRED]")
    finally:
        c.close()


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("transition", list(Transition))
def test_state_transitions(state: State, transition: Transition) -> None:
    if (state, transition) in TRANSITIONS:
        assert next_state(state, transition) is TRANSITIONS[(state, transition)]
    else:
        with pytest.raises(RuntimeError):
            next_state(state, transition)
    # Only LOGOUT reaches LOGOUT, and nothing leaves it.
    assert (TRANSITIONS.get((state, transition)) is State.LOGOUT) == (
        transition is Transition.LOGOUT)


def test_autologout(base_config: tuple[ProviderConfig, TLSMaterial]) -> None:
    with serving(base_config, autologout=0.2) as running:
        c = running.raw()
        try:
            c.line()
            assert c.line().startswith(b"* BYE")
            assert c.closed()
        finally:
            c.close()


def test_stop_says_bye(base_config: tuple[ProviderConfig, TLSMaterial]) -> None:
    with serving(base_config) as running:
        c = running.raw()
        c.line()
        c.send(b"a NOOP\r\n")
        c.line()
    try:
        assert c.line().startswith(b"* BYE")
        assert c.closed()
    finally:
        c.close()


# -- mailbox access -----------------------------------------------------------------------------


def test_select_fetch_store_expunge(srv: Running) -> None:
    m = srv.login()
    try:
        typ, data = m.select("INBOX")
        assert (typ, data) == ("OK", [b"1"])
        uidnext = m.response("UIDNEXT")[1][0]
        assert uidnext == b"2"
        assert m.response("UIDVALIDITY")[1][0]
        typ, data = m.fetch("1", "(FLAGS UID RFC822.SIZE ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        head = data[0]
        assert isinstance(head, tuple)
        # A new message is \\Recent to the first session told of it (RFC 3501 §2.3.2).
        assert b"UID 1" in head[0] and b"FLAGS (\\Recent)" in head[0]
        assert f"RFC822.SIZE {len(MESSAGE)}".encode() in head[0]
        assert b'"hello"' in head[0]  # ENVELOPE subject
        assert head[1] == b"Subject: hello\r\n\r\n"
        # BODY.PEEK did not set \Seen; BODY[] does, and says so in the same FETCH.
        typ, data = m.fetch("1", "(FLAGS)")
        assert data == [b"1 (FLAGS (\\Recent))"]
        typ, data = m.fetch("1", "(BODY[]<0.4> BODY[TEXT])")
        assert isinstance(data[0], tuple) and data[0][1] == b"From"
        assert isinstance(data[1], tuple) and data[1][1] == b"first line\r\nsecond line\r\n"
        assert b"\\Seen" in b"".join(p for p in data if isinstance(p, bytes))
        typ, data = m.store("1", "+FLAGS", "(\\Deleted $Custom)")
        assert typ == "OK" and data == [b"1 (FLAGS (\\Deleted \\Seen \\Recent $Custom))"]
        typ, data = m.store("1", "-FLAGS.SILENT", "($Custom)")
        assert typ == "OK" and data == [None]
        typ, data = m.expunge()
        assert (typ, data) == ("OK", [b"1"])
        assert srv.store.messages("alice", "INBOX") == []
        # Sequence numbers beyond the mailbox are a BAD command.
        with pytest.raises(imaplib.IMAP4.error):
            m.fetch("1", "FLAGS")
    finally:
        m.logout()


def test_uid_commands_search_copy_move(srv: Running) -> None:
    for i in range(4):
        srv.store.append("alice", "INBOX", b"Subject: n%d\r\n\r\nbody %d\r\n" % (i, i),
                         flags=["\\Seen"] if i % 2 else [])
    m = srv.login()
    try:
        m.select("INBOX")
        assert m.search(None, "ALL")[1] == [b"1 2 3 4 5"]
        assert m.search(None, "UNSEEN")[1] == [b"1 2 4"]
        assert m.search(None, "SEEN NOT 3")[1] == [b"5"]
        assert m.search(None, "OR", "SUBJECT", "n1", "FROM", "bob")[1] == [b"1 3"]
        assert m.search(None, "BODY", '"body 3"')[1] == [b"5"]
        assert m.search(None, "LARGER", "100")[1] == [b"1"]
        assert m.search(None, "(UID 2:3)", "UNSEEN")[1] == [b"2"]
        assert m.uid("SEARCH", "2:*")[1] == [b"2 3 4 5"]
        typ, data = m.uid("FETCH", "3", "(FLAGS)")
        assert data == [b"3 (UID 3 FLAGS (\\Seen \\Recent))"]
        typ, data = m.uid("STORE", "3", "+FLAGS", "(\\Flagged)")
        assert data == [b"3 (UID 3 FLAGS (\\Flagged \\Seen \\Recent))"]
        assert m.uid("COPY", "2:3", "Junk")[0] == "OK"
        typ, data = m.copy("1", "Nowhere")
        assert typ == "NO" and _code(data) == b"TRYCREATE"
        typ, data = m.uid("MOVE", "4", "Junk")
        assert typ == "OK"
        assert m.search(None, "ALL")[1] == [b"1 2 3 4"]
        assert [i.uid for i in srv.store.messages("alice", "Junk")] == [1, 2, 3]
        typ, data = m.status("Junk", "(MESSAGES UNSEEN UIDNEXT)")
        assert data == [b"Junk (MESSAGES 3 UNSEEN 2 UIDNEXT 4)"]
    finally:
        m.logout()


def test_list_create_delete_append_examine(srv: Running) -> None:
    m = srv.login()
    try:
        typ, data = m.list()
        assert b'(\\HasNoChildren) "/" INBOX' in data
        assert b'(\\HasNoChildren \\Junk) "/" Junk' in data
        assert m.create("Entw&APw-rfe")[0] == "OK"  # modified UTF-7 (RFC 3501 §5.1.3)
        assert "Entwürfe" in srv.store.list_mailboxes("alice")
        assert b'(\\HasNoChildren) "/" Entw&APw-rfe' in m.list()[1]
        assert m.create("Archive/2024")[0] == "OK"
        typ, data = m.list('""', "%")
        assert b'(\\HasChildren) "/" Archive' in data
        assert not any(b"2024" in (d or b"") for d in data)
        typ, data = m.create("Archive")
        assert typ == "NO" and _code(data) == b"ALREADYEXISTS"
        typ, data = m.append("Missing", None, None, b"Subject: x\r\n\r\ny\r\n")
        assert typ == "NO" and _code(data) == b"TRYCREATE"
        typ, data = m.append("Archive/2024", "(\\Flagged)", '"01-Feb-2020 10:00:00 +0000"',
                             b"Subject: x\r\n\r\ny\r\n")
        assert typ == "OK" and _code(data).startswith(b"APPENDUID ")
        typ, data = m.select("Archive/2024", readonly=True)
        assert data == [b"1"]
        assert m.response("READ-ONLY")[1] == [b""]
        typ, data = m.fetch("1", "(INTERNALDATE BODY[])")
        assert isinstance(data[0], tuple)
        assert b'INTERNALDATE " 1-Feb-2020 10:00:00 +0000"' in data[0][0]
        assert srv.store.messages("alice", "Archive/2024")[0].flags == frozenset({"\\Flagged"})
        assert m.store("1", "+FLAGS", "(\\Seen)")[0] == "NO"
        m.close()
        assert m.delete("Archive/2024")[0] == "OK"
        typ, data = m.delete("Archive/2024")
        assert typ == "NO" and _code(data) == b"NONEXISTENT"
        assert m.delete("INBOX")[0] == "NO"
    finally:
        m.logout()


def _raw_login(srv: Running) -> RawClient:
    c = srv.raw()
    c.line()
    c.send(b"a STARTTLS\r\n")
    c.until_tagged(b"a")
    c.starttls(srv.tls.client_context())
    c.send(b"b LOGIN alice \"correct horse\"\r\n")
    c.until_tagged(b"b")
    return c


def _raw_selected(srv: Running) -> RawClient:
    c = _raw_login(srv)
    c.send(b"c SELECT INBOX\r\n")
    c.until_tagged(b"c")
    return c


def _ask(c: RawClient, tag: bytes, command: bytes) -> list[bytes]:
    c.send(tag + b" " + command + b"\r\n")
    lines = c.until_tagged(tag)
    assert lines[-1].startswith(tag + b" OK"), lines
    return lines[:-1]


def test_append_literal8_and_fetch_binary(srv: Running) -> None:
    c = _raw_selected(srv)
    try:
        message = b"Subject: nul\r\nContent-Transfer-Encoding: binary\r\n\r\na\x00b\r\n"
        c.send(b"d APPEND INBOX ~{%d}\r\n" % len(message))
        assert c.line().startswith(b"+")
        c.send(message + b"\r\n")
        assert c.until_tagged(b"d")[-1].startswith(b"d OK [APPENDUID")
        # RFC 9051 §7.5.2: a NUL in the decoded part needs a literal8; without one, a string.
        # (The literal's five octets end in CRLF, so they read as the line "a\0b".)
        assert _ask(c, b"e", b"FETCH 2 (BINARY.PEEK[1])") == [
            b"* 2 FETCH (BINARY[1] ~{5}", b"a\x00b", b")"]
        assert _ask(c, b"f", b"FETCH 2 (BINARY.SIZE[1])") == [b"* 2 FETCH (BINARY.SIZE[1] 5)"]
        assert _ask(c, b"g", b"FETCH 1 (BINARY.SIZE[1])")[0].startswith(b"* 1 FETCH (BINARY.SIZE[1] ")
    finally:
        c.close()


def test_recent_is_a_session_flag_of_imap4rev1(srv: Running) -> None:
    rev2, first, second = _raw_login(srv), _raw_login(srv), _raw_login(srv)
    try:
        # IMAP4rev2 has no \Recent: no RECENT response, no flag, and the message stays new.
        _ask(rev2, b"e", b"ENABLE IMAP4rev2")
        assert not any(b"RECENT" in line for line in _ask(rev2, b"f", b"SELECT INBOX"))
        assert _ask(rev2, b"g", b"FETCH 1 (FLAGS)") == [b"* 1 FETCH (FLAGS ())"]
        assert _ask(first, b"e", b"STATUS INBOX (RECENT)") == [b"* STATUS INBOX (RECENT 1)"]
        # The first IMAP4rev1 session to select takes it (RFC 3501 §2.3.2).
        assert b"* 1 RECENT" in _ask(first, b"f", b"SELECT INBOX")
        assert _ask(first, b"g", b"SEARCH RECENT") == [b"* SEARCH 1"]
        assert _ask(first, b"h", b"STATUS INBOX (RECENT)") == [b"* STATUS INBOX (RECENT 1)"]
        assert b"* 0 RECENT" in _ask(second, b"e", b"SELECT INBOX")
        assert _ask(second, b"f", b"SEARCH RECENT") == [b"* SEARCH"]
        # A delivery while both have it selected: recent in whichever is told first.
        srv.store.append("alice", "INBOX", b"Subject: 2\r\n\r\n2\r\n")
        assert _ask(second, b"g", b"NOOP") == [b"* 2 EXISTS", b"* 1 RECENT"]
        assert _ask(first, b"i", b"NOOP") == [b"* 2 EXISTS", b"* 1 RECENT"]
        assert _ask(second, b"h", b"FETCH 1:2 (FLAGS)") == [
            b"* 1 FETCH (FLAGS ())", b"* 2 FETCH (FLAGS (\\Recent))"]
        assert _ask(first, b"j", b"FETCH 1:2 (FLAGS)") == [
            b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS ())"]
        # STORE cannot touch it (RFC 3501 §2.3.2: "This flag can not be altered by the client").
        assert _ask(first, b"k", b"STORE 1 FLAGS (\\Seen)") == [
            b"* 1 FETCH (FLAGS (\\Seen \\Recent))"]
        assert _ask(first, b"l", b"SEARCH NEW") == [b"* SEARCH"]
        assert _ask(first, b"m", b"SEARCH OLD") == [b"* SEARCH 2"]
    finally:
        for c in (rev2, first, second):
            c.close()


def test_uidplus_response_codes(srv: Running) -> None:
    srv.store.append("alice", "INBOX", b"Subject: 2\r\n\r\n2\r\n")
    c = _raw_selected(srv)
    try:
        junk = srv.store.mailbox_info("alice", "Junk").uidvalidity
        c.send(b"d UID COPY 1:2 Junk\r\n")
        assert c.until_tagged(b"d")[-1].startswith(b"d OK [COPYUID %d 1:2 1:2]" % junk)
        c.send(b"e UID MOVE 2 Junk\r\n")
        lines = c.until_tagged(b"e")
        assert lines[0].startswith(b"* OK [COPYUID %d 2 3]" % junk)
        assert lines[1:] == [b"* 2 EXPUNGE", b"e OK UID MOVE completed"]
        c.send(b"f APPEND Junk {3+}\r\nx\r\n\r\n")
        assert c.until_tagged(b"f")[-1].startswith(b"f OK [APPENDUID %d 4]" % junk)
        c.send(b"g FETCH 1 (BODY[1] BODY[2] BODY[HEADER.FIELDS.NOT (To From)])\r\n")
        lines = c.until_tagged(b"g")
        assert lines[0] == b"* 1 FETCH (BODY[1] {25}"
        assert b" BODY[2] NIL BODY[HEADER.FIELDS.NOT (To From)] {47}" in lines
    finally:
        c.close()


def test_expunge_from_other_session_is_held_back_during_fetch(srv: Running) -> None:
    srv.store.append("alice", "INBOX", b"Subject: 2\r\n\r\n2\r\n")
    c = _raw_selected(srv)
    try:
        srv.store.expunge("alice", "INBOX", [1])
        c.send(b"d FETCH 2 (UID)\r\n")
        lines = c.until_tagged(b"d")
        # RFC 9051 §7.5.1: no EXPUNGE while responding to FETCH.
        assert not any(line.endswith(b"EXPUNGE") for line in lines)
        assert b"* 2 FETCH (UID 2)" in lines
        c.send(b"e NOOP\r\n")
        lines = c.until_tagged(b"e")
        assert b"* 1 EXPUNGE" in lines
        c.send(b"f FETCH 1 (UID)\r\n")
        assert b"* 1 FETCH (UID 2)" in c.until_tagged(b"f")
    finally:
        c.close()


def _idle_until(client: IMAPClient, wanted: Callable[[tuple[object, ...]], bool]) -> None:
    """Read IDLE responses until one is *wanted* (a server may send the lines of one change in
    several segments, or a change in a later poll than the next)."""
    deadline = time.monotonic() + TIMEOUT
    seen: list[tuple[object, ...]] = []
    while time.monotonic() < deadline:
        responses = client.idle_check(timeout=max(0.1, deadline - time.monotonic()))
        seen += responses
        if any(wanted(r) for r in responses):
            return
    raise AssertionError(f"not seen in IDLE: {seen}")


def test_idle_with_imapclient(srv: Running) -> None:
    with IMAPClient(HOST, port=srv.port, ssl=False, timeout=TIMEOUT) as client:
        client.starttls(srv.tls.client_context())
        client.login("alice", PASSWORD)
        client.select_folder("INBOX")
        client.idle()
        srv.store.append("bob", "INBOX", b"Subject: not alice\r\n\r\nx\r\n")
        srv.store.append("alice", "INBOX", b"Subject: new\r\n\r\nnew\r\n")
        _idle_until(client, lambda r: r[:2] == (2, b"EXISTS"))
        srv.store.set_flags("alice", "INBOX", 1, frozenset({"\\Flagged"}))
        _idle_until(client, lambda r: r[:2] == (1, b"FETCH"))
        srv.store.expunge("alice", "INBOX", [1])
        _idle_until(client, lambda r: r[:2] == (1, b"EXPUNGE"))
        client.idle_done()
        assert client.search("ALL") == [2]  # imapclient searches by UID
        assert client.fetch([2], ["FLAGS"]) == {2: {b"FLAGS": (b"\\Recent",), b"SEQ": 1}}


# -- quirks -------------------------------------------------------------------------------------


@contextmanager
def _client(r: Running, *, login: bool = False) -> Iterator[imaplib.IMAP4]:
    m = r.login() if login else r.plain()
    try:
        yield m
    finally:
        m.shutdown()


# Each check returns True when it observes the quirk's faulty behaviour.


def _sees_no_starttls(r: Running) -> bool:
    with _client(r) as m:
        if "STARTTLS" in m.capabilities:
            return False
        try:
            m.starttls(r.tls.client_context())
        except imaplib.IMAP4.error:
            return True
        return False


def _sees_login_in_clear(r: Running) -> bool:
    with _client(r) as m:
        try:
            return "LOGINDISABLED" not in m.capabilities and m.login("alice", PASSWORD)[0] == "OK"
        except imaplib.IMAP4.error:
            return False


def _sees_login_broken(r: Running) -> bool:
    with _client(r) as m:
        m.starttls(r.tls.client_context())
        try:
            m.login("alice", PASSWORD)
        except imaplib.IMAP4.error:
            return True
        return False


def _sees_any_password(r: Running) -> bool:
    with _client(r) as m:
        m.starttls(r.tls.client_context())
        try:
            return m.login("alice", "not the password")[0] == "OK"
        except imaplib.IMAP4.error:
            return False


def _sees_uidnext_off_by_one(r: Running) -> bool:
    with _client(r, login=True) as m:
        m.select("INBOX")
        return m.response("UIDNEXT")[1] == [b"1"]


def _sees_wrong_size(r: Running) -> bool:
    with _client(r, login=True) as m:
        m.select("INBOX")
        return m.fetch("1", "RFC822.SIZE")[1] == [f"1 (RFC822.SIZE {len(MESSAGE) - 1})".encode()]


def _sees_peek_sets_seen(r: Running) -> bool:
    with _client(r, login=True) as m:
        m.select("INBOX")
        m.fetch("1", "BODY.PEEK[]")
        return "\\Seen" in r.store.messages("alice", "INBOX")[0].flags


def _sees_store_silent(r: Running) -> bool:
    with _client(r, login=True) as m:
        m.select("INBOX")
        return m.store("1", "+FLAGS", "(\\Flagged)") == ("OK", [None])


def _sees_expunge_ignored(r: Running) -> bool:
    with _client(r, login=True) as m:
        m.select("INBOX")
        m.store("1", "+FLAGS.SILENT", "(\\Deleted)")
        assert m.expunge()[0] == "OK"
        return len(r.store.messages("alice", "INBOX")) == 1


def _sees_idle_no_notify(r: Running) -> bool:
    with IMAPClient(HOST, port=r.port, ssl=False, timeout=TIMEOUT) as client:
        client.starttls(r.tls.client_context())
        client.login("alice", PASSWORD)
        client.select_folder("INBOX")
        client.idle()
        r.store.append("alice", "INBOX", b"Subject: new\r\n\r\nnew\r\n")
        # Proving an absence takes a wait: several poll intervals (0.05 s) pass in it.
        seen = client.idle_check(timeout=0.4)
        client.idle_done()
        return len(seen) == 0


QUIRK_CHECKS: dict[str, Callable[[Running], bool]] = {
    "imap_no_starttls": _sees_no_starttls,
    "imap_login_in_clear": _sees_login_in_clear,
    "imap_login_broken": _sees_login_broken,
    "imap_accept_any_password": _sees_any_password,
    "imap_uidnext_off_by_one": _sees_uidnext_off_by_one,
    "imap_wrong_size": _sees_wrong_size,
    "imap_peek_sets_seen": _sees_peek_sets_seen,
    "imap_store_silent": _sees_store_silent,
    "imap_expunge_ignored": _sees_expunge_ignored,
    "imap_idle_no_notify": _sees_idle_no_notify,
}


@pytest.mark.parametrize("quirk", sorted(QUIRK_CHECKS))
def test_quirk_changes_behaviour(base_config: tuple[ProviderConfig, TLSMaterial],
                                 quirk: str) -> None:
    check = QUIRK_CHECKS[quirk]
    with serving(base_config, quirks=frozenset({quirk})) as running:
        assert check(running)
    if quirk == "imap_idle_no_notify":
        return  # the compliant behaviour is test_idle_with_imapclient (no waiting for absence)
    with serving(base_config) as running:
        assert not check(running)


def test_every_flow_imap_quirk_is_covered() -> None:
    """The flow's IMAP quirks are checked here; those of IMAP in depth (quirks/imap.py) by
    tests/quirks through the suites, and those only load finds (quirks/load.py) by
    tests/integration/test_load_quirks.py."""
    from reference_agents.quirks import QUIRKS
    from reference_agents.quirks.imap import IMAP_QUIRKS
    from reference_agents.quirks.load import LOAD_QUIRKS

    depth = {q.name for q in (*IMAP_QUIRKS, *LOAD_QUIRKS)}
    flow = {q.name for q in QUIRKS.values() if q.agent == "imap" and q.name not in depth}
    assert flow == set(QUIRK_CHECKS)


def test_host_names_are_refused(base_config: tuple[ProviderConfig, TLSMaterial]) -> None:
    with pytest.raises(ValueError):
        IMAPServer(config=base_config[0], store=MemoryStore(), host="localhost", port=0,
                   implicit_tls=False)


def test_rename_subscribe_lsub_and_special_use(srv: Running) -> None:
    m = srv.login()
    try:
        data = b"\n".join(d for d in m.list()[1] if isinstance(d, bytes))
        for attr, name in ((b"\\Sent", b"Sent"), (b"\\Trash", b"Trash"), (b"\\Drafts", b"Drafts"),
                           (b"\\Junk", b"Junk")):
            assert attr in data and name in data  # created at login (RFC 6154 §2)
        assert m.create("Proj/a")[0] == "OK"
        assert m.append("Proj", None, None, b"Subject: p\r\n\r\np\r\n")[0] == "OK"
        validity = srv.store.mailbox_info("alice", "Proj").uidvalidity
        assert m.rename("Proj", "Done")[0] == "OK"
        names = srv.store.list_mailboxes("alice")
        assert "Proj" not in names and "Proj/a" not in names and "Done/a" in names
        assert srv.store.mailbox_info("alice", "Done").uidvalidity == validity
        assert srv.store.mailbox_info("alice", "Done").exists == 1
        typ, resp = m.rename("Nope", "Other")
        assert typ == "NO" and _code(resp) == b"NONEXISTENT"
        typ, resp = m.rename("Done", "INBOX")
        assert typ == "NO" and _code(resp) == b"ALREADYEXISTS"
        assert m.subscribe("Done")[0] == "OK"
        assert m.lsub('""', "*")[1] == [b'() "/" Done']
        assert b"\\Subscribed" in b"".join(d for d in m.list('""', "Done")[1]
                                          if isinstance(d, bytes))
        assert m.unsubscribe("Done")[0] == "OK"
        assert m.lsub('""', "*")[1] == [None]
        assert m.unsubscribe("Done")[0] == "NO"
        srv.store.append("alice", "INBOX", MESSAGE)
        assert m.rename("INBOX", "Old")[0] == "OK"  # RFC 9051 §6.3.6: INBOX is emptied
        assert srv.store.mailbox_info("alice", "INBOX").exists == 0
        assert srv.store.read("alice", "Old", srv.store.messages("alice", "Old")[0].uid) == MESSAGE
    finally:
        m.logout()


@pytest.mark.parametrize("backend", ["memory", "maildir"])
def test_store_rename_subscriptions_uidnext(backend: str, tmp_path: Path) -> None:
    from reference_agents.mailstore import MailboxExists, MaildirStore, MailStore, NoSuchMailbox

    store: MailStore = MemoryStore() if backend == "memory" else MaildirStore(tmp_path)
    store.create_mailbox("u", "a/b")
    uid = store.append("u", "a", b"Subject: a\r\n\r\na\r\n", ["\\Seen"])
    inbox_uid = store.append("u", "INBOX", MESSAGE)
    store.rename_mailbox("u", "a", "x/y")
    assert store.list_mailboxes("u") == ["INBOX", "Junk", "x", "x/y", "x/y/b"]
    assert store.messages("u", "x/y")[0].uid == uid
    with pytest.raises(NoSuchMailbox):
        store.rename_mailbox("u", "a", "z")
    with pytest.raises(MailboxExists):
        store.rename_mailbox("u", "x", "x/y")
    store.rename_mailbox("u", "INBOX", "Saved")
    assert store.messages("u", "INBOX") == []
    assert store.read("u", "Saved", inbox_uid) == MESSAGE
    assert store.append("u", "INBOX", MESSAGE) > inbox_uid  # INBOX's UIDs are not reused
    store.set_subscribed("u", "Saved", True)
    store.set_subscribed("u", "Gone", True)
    store.set_subscribed("u", "Gone", False)
    second = store.append("u", "x/y", MESSAGE)
    store.expunge("u", "x/y", [second])
    store.force_uidnext("u", "x/y", second)
    assert store.append("u", "x/y", MESSAGE) == second  # what quirk imap_uid_reuse relies on
    if isinstance(store, MaildirStore):
        store.close()
        store = MaildirStore(tmp_path)
        assert store.read("u", "Saved", inbox_uid) == MESSAGE  # recovery keeps the moved files
        assert store.messages("u", "x/y")[0].flags == frozenset({"\\Seen"})
        assert store.mailbox_info("u", "x/y").uidnext == second + 1
    assert store.subscriptions("u") == ["Saved"]
    store.close()


def test_qresync_modifiers_are_bad_where_the_rfc_says(srv: Running) -> None:
    """RFC 7162 §3.2.5 and §3.2.6: QRESYNC select-param and the VANISHED modifier need ENABLE
    QRESYNC; VANISHED needs UID FETCH and CHANGEDSINCE. Each gets BAD, the session goes on."""
    c = _raw_login(srv)
    try:
        c.send(b"c SELECT INBOX (QRESYNC (1 1))\r\n")
        assert c.until_tagged(b"c")[-1].startswith(b"c BAD")
        c.send(b"d SELECT INBOX\r\n")
        assert c.until_tagged(b"d")[-1].startswith(b"d OK")
        c.send(b"e UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n")
        assert c.until_tagged(b"e")[-1].startswith(b"e BAD")
        c.send(b"f UNSELECT\r\nf2 ENABLE QRESYNC\r\n")
        assert b"* ENABLED QRESYNC" in c.until_tagged(b"f2")
        c.send(b"g SELECT INBOX (QRESYNC (1 1))\r\n")
        assert c.until_tagged(b"g")[-1].startswith(b"g OK")
        for tag, line in ((b"h", b"FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)"),
                          (b"i", b"UID FETCH 1:* (FLAGS) (VANISHED)")):
            c.send(tag + b" " + line + b"\r\n")
            assert c.until_tagged(tag)[-1].startswith(tag + b" BAD"), line
        c.send(b"j UID STORE 1 +FLAGS (\\Deleted)\r\n")
        stored = c.until_tagged(b"j")
        # RFC 7162 §3.2.4: untagged FETCH responses carry UID and MODSEQ once enabled.
        assert any(b"UID 1" in line and b"MODSEQ" in line for line in stored), stored
        c.send(b"k EXPUNGE\r\n")
        expunged = c.until_tagged(b"k")
        assert b"* VANISHED 1" in expunged and not any(b"EXPUNGE" in line for line in expunged[:-1])
        c.send(b"l UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n")
        assert c.until_tagged(b"l")[0] == b"* VANISHED (EARLIER) 1"
    finally:
        c.close()


def test_allowance_bye_after_five_bad(base_config: tuple[ProviderConfig, TLSMaterial]) -> None:
    """Allowance imap_bye_after_five_bad: four BAD commands leave the session going; the fifth
    BAD is followed by an untagged BYE and the close (RFC 9051 §3.4). Without the allowance, the
    session survives any number."""
    for allowed in (True, False):
        with serving(base_config, quirks=frozenset({"imap_bye_after_five_bad"} if allowed else set())) as running:
            c = running.raw()
            try:
                c.line()
                for n in range(4):
                    c.send(b"b%d FROBNICATE\r\n" % n)
                    assert c.line().startswith(b"b%d BAD" % n)
                c.send(b"n NOOP\r\n")
                assert c.line().startswith(b"n OK")
                for n in range(4, 7 if not allowed else 5):
                    c.send(b"b%d FROBNICATE\r\n" % n)
                    assert c.line().startswith(b"b%d BAD" % n)
                if allowed:
                    assert c.line().startswith(b"* BYE")
                    assert c.closed()
                else:
                    c.send(b"m NOOP\r\n")
                    assert c.line().startswith(b"m OK")
            finally:
                c.close()


def test_store_errors_become_their_response_code_in_one_place(srv: Running) -> None:
    """The dispatcher turns a mail store error into NO with the error's RFC 5530 code."""
    from reference_agents.mailstore import (
        InvalidMailboxName,
        MailboxExists,
        MailStoreError,
        NoSuchMailbox,
        NoSuchMessage,
        StorageError,
        StoreLocked,
    )

    codes = {cls: cls.response_code for cls in (NoSuchMailbox, MailboxExists, NoSuchMessage,
                                                 InvalidMailboxName, StorageError, StoreLocked)}
    assert codes == {NoSuchMailbox: "NONEXISTENT", MailboxExists: "ALREADYEXISTS",
                     NoSuchMessage: "EXPUNGEISSUED", InvalidMailboxName: "CANNOT",
                     StorageError: "UNAVAILABLE", StoreLocked: "INUSE"}
    assert all(issubclass(cls, MailStoreError) for cls in codes)
    assert InvalidMailboxName("name too long").reason() == "name too long"
    c = _raw_login(srv)

    def tagged(tag: bytes, command: bytes) -> bytes:
        c.send(tag + b" " + command + b"\r\n")
        return c.until_tagged(tag)[-1]

    try:
        assert tagged(b"d1", b'DELETE "no-such"').startswith(b"d1 NO [NONEXISTENT]")
        assert tagged(b"c1", b"CREATE box").startswith(b"c1 OK")
        assert tagged(b"c2", b"CREATE other").startswith(b"c2 OK")
        assert tagged(b"r1", b"RENAME box other").startswith(b"r1 NO [ALREADYEXISTS]")
        assert tagged(b"r2", b"RENAME nothing else").startswith(b"r2 NO [NONEXISTENT]")
    finally:
        c.close()
