"""NOTIFY (RFC 5465): the command grammar both ways, and the reference server's notifications
between commands over a real socket."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from harness.protocol.imap.command_format import format_command
from harness.protocol.imap.commands import (
    Command,
    FetchItem,
    InvalidCommand,
    Notify,
    NotifyGroup,
    parse_command,
)
from reference_agents.config import ProviderConfig
from reference_agents.tls import TLSMaterial
from tests.unit.test_imapd import RawClient, Running, _raw_login, serving
from tests.unit.test_imapd import base_config as imapd_config  # noqa: F401 - the fixture

NEW_EXPUNGE = ("MessageNew", "MessageExpunge")


@pytest.mark.parametrize(("wire", "args"), [
    (b"a NOTIFY NONE", Notify(None)),
    (b"a notify set (personal (mailboxname subscriptionchange))",
     Notify((NotifyGroup("PERSONAL", (), ("MailboxName", "SubscriptionChange")),))),
    (b"a NOTIFY SET STATUS (SELECTED (MessageNew (UID FLAGS) MessageExpunge)) "
     b"(SUBTREE (Lists foo) (MessageNew MessageExpunge)) (INBOXES NONE)",
     Notify((NotifyGroup("SELECTED", (), NEW_EXPUNGE, (FetchItem("UID"), FetchItem("FLAGS"))),
             NotifyGroup("SUBTREE", ("Lists", "foo"), NEW_EXPUNGE),
             NotifyGroup("INBOXES", (), ())), status=True)),
    (b"a NOTIFY SET (MAILBOXES INBOX (x-other))",
     Notify((NotifyGroup("MAILBOXES", ("INBOX",), ("X-OTHER",)),))),
])
def test_notify_parses_and_formats_back(wire: bytes, args: Notify) -> None:
    command = Command("a", "NOTIFY", args)
    assert parse_command(wire) == command
    assert parse_command(b"".join(format_command(command))) == command


@pytest.mark.parametrize("wire", [
    b"a NOTIFY",
    b"a NOTIFY SET",
    b"a NOTIFY SET (PERSONAL MessageNew)",       # events are a parenthesised list (§8)
    b"a NOTIFY SET (EVERYWHERE (MessageNew))",   # no such filter
    b"a NOTIFY SET (SUBTREE (MessageNew))",      # SUBTREE needs its mailboxes
    b"a NOTIFY ALL",
])
def test_malformed_notify_is_invalid(wire: bytes) -> None:
    assert isinstance(parse_command(wire), InvalidCommand)


@pytest.fixture
def srv(imapd_config: tuple[ProviderConfig, TLSMaterial]) -> Iterator[Running]:  # noqa: F811
    with serving(imapd_config) as running:
        yield running


def _ask(c: RawClient, tag: bytes, command: bytes) -> list[bytes]:
    c.send(tag + b" " + command + b"\r\n")
    return c.until_tagged(tag)


def _unsolicited(c: RawClient, seconds: float = 3.0) -> bytes:
    """What the server sends with no command in progress, for *seconds*."""
    c.sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    got = c.buf
    c.buf = b""
    while time.monotonic() < deadline:
        try:
            chunk = c.sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        got += chunk
    c.sock.settimeout(5.0)
    return got


def test_refusals(srv: Running) -> None:
    c = _raw_login(srv)
    assert _ask(c, b"e", b"NOTIFY SET (PERSONAL (MessageNew))")[-1].startswith(b"e BAD")
    assert _ask(c, b"f", b"NOTIFY SET (PERSONAL (FlagChange MessageNew))")[-1].startswith(b"f BAD")
    assert _ask(c, b"g", b"NOTIFY SET (SELECTED (MailboxName))")[-1].startswith(b"g BAD")
    assert _ask(c, b"h", b"NOTIFY SET (SELECTED (MessageNew MessageExpunge)) "
                b"(SELECTED-DELAYED (MessageNew MessageExpunge))")[-1].startswith(b"h BAD")
    last = _ask(c, b"i", b"NOTIFY SET (PERSONAL (AnnotationChange MessageNew MessageExpunge))")[-1]
    assert last.startswith(b"i NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName "
                           b"SubscriptionChange)]")
    c.close()


def test_notifications_between_commands(srv: Running) -> None:
    srv.store.create_mailbox("alice", "Lists")
    c = _raw_login(srv)
    lines = _ask(c, b"e", b"NOTIFY SET STATUS (MAILBOXES Lists (MessageNew MessageExpunge "
                 b"FlagChange)) (PERSONAL (MailboxName SubscriptionChange))")
    assert lines[-1].startswith(b"e OK")
    assert b"* STATUS Lists (MESSAGES 0 UIDNEXT 1 UIDVALIDITY " in lines[0]
    assert b"HIGHESTMODSEQ" in lines[0]
    # Changes made by another session (here: straight into the store).
    srv.store.append("alice", "Lists", b"Subject: x\r\n\r\nbody\r\n")
    got = _unsolicited(c, 1.5)
    assert b"* STATUS Lists (UIDNEXT 2 MESSAGES 1)" in got, got
    srv.store.create_mailbox("alice", "Fresh")
    srv.store.set_subscribed("alice", "Fresh", True)
    got = _unsolicited(c, 1.5)
    assert b'* LIST () "/" Fresh' in got and b'* LIST (\\Subscribed) "/" Fresh' in got, got
    srv.store.delete_mailbox("alice", "Fresh")
    got = _unsolicited(c, 1.5)
    assert b'* LIST (\\NonExistent) "/" Fresh' in got, got
    # The client's own changes are not told (RFC 5465 §5: "SHOULD omit").
    lines = _ask(c, b"f", b"CREATE Mine")
    assert not any(b"LIST" in line for line in lines)
    assert b"LIST" not in _unsolicited(c, 0.8)
    # NOTIFY NONE: nothing more.
    assert _ask(c, b"g", b"NOTIFY NONE")[-1].startswith(b"g OK")
    srv.store.append("alice", "Lists", b"Subject: y\r\n\r\nbody\r\n")
    assert b"STATUS" not in _unsolicited(c, 1.0)
    c.close()


def test_selected_mailbox_exists_and_expunge_with_no_command(srv: Running) -> None:
    c = _raw_login(srv)
    _ask(c, b"e", b"SELECT INBOX")
    assert _ask(c, b"f", b"NOTIFY SET (SELECTED (MessageNew MessageExpunge))")[-1].startswith(b"f OK")
    srv.store.append("alice", "INBOX", b"Subject: z\r\n\r\nbody\r\n")
    assert b"* 2 EXISTS" in _unsolicited(c, 1.5)
    uid = srv.store.messages("alice", "INBOX")[0].uid
    srv.store.expunge("alice", "INBOX", [uid])
    assert b"* 1 EXPUNGE" in _unsolicited(c, 1.5)
    c.close()


def test_selected_new_message_fetch_attributes_and_idle(srv: Running) -> None:
    srv.store.create_mailbox("alice", "Lists")
    c = _raw_login(srv)
    _ask(c, b"e", b"SELECT INBOX")
    lines = _ask(c, b"f", b"NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS "
                 b"(SUBJECT)]) MessageExpunge)) (MAILBOXES Lists (MessageNew MessageExpunge))")
    assert lines[-1].startswith(b"f OK")
    srv.store.append("alice", "INBOX", b"Subject: z\r\n\r\nbody\r\n")
    got = _unsolicited(c, 1.5)
    assert b"* 2 EXISTS\r\n" in got, got
    assert b"* 2 FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {14}\r\nSubject: z\r\n\r\n)" in got, got
    # RFC 5465 §4: during IDLE the same events as NOTIFY asked for.
    c.send(b"g IDLE\r\n")
    assert c.line().startswith(b"+")
    srv.store.append("alice", "Lists", b"Subject: w\r\n\r\nbody\r\n")
    got = _unsolicited(c, 1.5)
    assert b"* STATUS Lists (UIDNEXT 2 MESSAGES 1)" in got, got
    c.send(b"DONE\r\n")
    assert c.until_tagged(b"g")[-1].startswith(b"g OK")
    c.close()


def test_selected_flag_change_carries_the_uid(srv: Running) -> None:
    c = _raw_login(srv)
    _ask(c, b"e", b"SELECT INBOX")
    lines = _ask(c, b"f", b"NOTIFY SET (SELECTED (MessageNew MessageExpunge FlagChange))")
    assert lines[-1].startswith(b"f OK")
    uid = srv.store.messages("alice", "INBOX")[0].uid
    srv.store.set_flags("alice", "INBOX", uid, frozenset({"\\Flagged"}))
    got = _unsolicited(c, 1.5)
    assert b"* 1 FETCH (UID %d FLAGS (\\Flagged" % uid in got, got
    c.close()
