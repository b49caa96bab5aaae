"""OBJECTID (RFC 8474), PREVIEW (RFC 8970) and CREATE USE (RFC 6154 §3): the grammar on both
sides and the reference server's ids and previews."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from harness.protocol.errors import RemoteProtocolError
from harness.protocol.imap.commands import (
    Command,
    Fetch,
    FetchItem,
    InvalidCommand,
    MailboxArg,
    Search,
    SearchAnd,
    SearchObjectId,
    SearchSet,
    Status,
    format_command,
    parse_command,
)
from harness.protocol.imap.responses import Fetch as FetchResponse
from harness.protocol.imap.responses import Status as StatusResponse
from harness.protocol.imap.responses import parse_response
from harness.protocol.imap.seqset import SequenceSet
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.objects import email_id, mailbox_id, preview, thread_id
from reference_agents.mailstore import MailboxInfo

_ONE = SequenceSet.parse("1")

VALID: list[tuple[bytes, Command]] = [
    (b"a FETCH 1 (EMAILID THREADID)",
     Command("a", "FETCH", Fetch(_ONE, (FetchItem("EMAILID"), FetchItem("THREADID"))))),
    (b"a FETCH 1 PREVIEW", Command("a", "FETCH", Fetch(_ONE, (FetchItem("PREVIEW"),)))),
    (b"a FETCH 1 (UID preview (lazy))",
     Command("a", "FETCH", Fetch(_ONE, (FetchItem("UID"), FetchItem("PREVIEW", lazy=True))))),
    (b"a FETCH 1 (PREVIEW (LAZY) FLAGS)",
     Command("a", "FETCH", Fetch(_ONE, (FetchItem("PREVIEW", lazy=True), FetchItem("FLAGS"))))),
    (b"a STATUS foo (MAILBOXID MESSAGES)",
     Command("a", "STATUS", Status("foo", ("MAILBOXID", "MESSAGES")))),
    (b"a UID SEARCH EMAILID M6d99ac3275bb4e",
     Command("a", "UID SEARCH", Search(None, SearchObjectId("EMAILID", "M6d99ac3275bb4e")))),
    (b"a SEARCH threadid T_1-a 1:2",
     Command("a", "SEARCH", Search(None, SearchAnd((SearchObjectId("THREADID", "T_1-a"),
                                                    SearchSet(SequenceSet.parse("1:2"), False)))))),
    (b"a CREATE MySpecial (USE (\\Drafts \\Sent))",
     Command("a", "CREATE", MailboxArg("MySpecial", "MySpecial", use=("\\Drafts", "\\Sent")))),
    (b"a CREATE x (USE ())", Command("a", "CREATE", MailboxArg("x", "x"))),
]

INVALID = [
    b"a FETCH 1 (PREVIEW (EAGER))",
    b"a FETCH 1 (PREVIEW (LAZY)",
    b"a FETCH 1 EMAILID (LAZY)",
    b"a SEARCH EMAILID M.1",
    b"a SEARCH EMAILID " + b"M" * 256,
    b"a SEARCH THREADID",
    b"a STATUS foo (MAILBOXIDS)",
    b"a CREATE x (USE (Drafts))",
    b"a CREATE x (USE (\\*))",
    b"a CREATE x (SIZE 1)",
    b"a CREATE x (USE \\Drafts)",
]


@pytest.mark.parametrize(("line", "expected"), VALID, ids=[v[0].decode() for v in VALID])
def test_commands_parse(line: bytes, expected: Command) -> None:
    assert parse_command(line) == expected


@pytest.mark.parametrize("line", INVALID, ids=[v.decode()[:40] for v in INVALID])
def test_bad_commands_are_invalid(line: bytes) -> None:
    result = parse_command(line)
    assert isinstance(result, InvalidCommand)
    assert result.tag == "a"


@pytest.mark.parametrize("command", [c for _, c in VALID if c.args != MailboxArg("x", "x")],
                         ids=[v[0].decode() for v in VALID if v[1].args != MailboxArg("x", "x")])
def test_commands_round_trip(command: Command) -> None:
    wire = b"".join(format_command(command))
    assert parse_command(wire) == command


RESPONSES: list[tuple[bytes, dict[str, object]]] = [
    (b"* 1 FETCH (EMAILID (M6d99ac3275bb4e) THREADID (T64b478a75b7ea9))\r\n",
     {"EMAILID": "M6d99ac3275bb4e", "THREADID": "T64b478a75b7ea9"}),
    (b"* 1 FETCH (EMAILID (00000001) THREADID NIL)\r\n",
     {"EMAILID": "00000001", "THREADID": None}),
    (b'* 2 FETCH (PREVIEW "Preview text!")\r\n', {"PREVIEW": "Preview text!"}),
    (b"* 3 FETCH (PREVIEW NIL UID 3)\r\n", {"PREVIEW": None, "UID": 3}),
    (b"* 4 FETCH (PREVIEW {6}\r\ncaf\xc3\xa9!)\r\n", {"PREVIEW": "café!"}),
]


@pytest.mark.parametrize(("raw", "items"), RESPONSES, ids=[r[0][:40].decode("latin-1")
                                                           for r in RESPONSES])
def test_fetch_responses_parse(raw: bytes, items: dict[str, object]) -> None:
    response = parse_response(raw)
    assert isinstance(response, FetchResponse)
    assert response.items == items


def test_status_mailboxid_parses() -> None:
    response = parse_response(b"* STATUS foo (MAILBOXID (F2212ea87-6097) MESSAGES 2)\r\n")
    assert response == StatusResponse("foo", {"MAILBOXID": "F2212ea87-6097", "MESSAGES": 2})


@pytest.mark.parametrize("raw", [
    b"* 1 FETCH (EMAILID NIL)\r\n",
    b"* 1 FETCH (EMAILID M1)\r\n",
    b"* 1 FETCH (THREADID (T.1))\r\n",
    b"* STATUS foo (MAILBOXID F1)\r\n",
])
def test_malformed_objectids_are_refused(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_response(raw)


# -- the reference server's ids and previews ----------------------------------------------------


def _context(*quirks: str) -> HandlerContext:
    config = SimpleNamespace(has_quirk=lambda name: name in quirks)
    return cast(HandlerContext, SimpleNamespace(config=config))


def _msg(header: str, body: bytes) -> bytes:
    return header.replace("\n", "\r\n").encode() + b"\r\n" + body


def test_mailbox_ids_follow_uidvalidity_not_the_name() -> None:
    s = _context()
    assert mailbox_id(s, MailboxInfo("a", 7, 1, 0)) == mailbox_id(s, MailboxInfo("b", 7, 1, 0))
    assert mailbox_id(s, MailboxInfo("a", 7, 1, 0)) != mailbox_id(s, MailboxInfo("a", 8, 1, 0))
    renamed = _context("imap_mailboxid_renamed_new")
    assert (mailbox_id(renamed, MailboxInfo("a", 7, 1, 0))
            != mailbox_id(renamed, MailboxInfo("b", 7, 1, 0)))


def test_email_and_thread_ids() -> None:
    s = _context()
    root = _msg("Message-ID: <root@x>\nSubject: a\n", b"one\r\n")
    reply = _msg("Message-ID: <reply@x>\nReferences: <root@x> <other@x>\n", b"two\r\n")
    assert email_id(s, root, 1, 1) == email_id(s, root, 2, 9)  # a copy keeps it
    assert email_id(s, root, 1, 1) != email_id(s, reply, 1, 2)
    assert thread_id(s, root) == thread_id(s, reply)
    assert thread_id(s, root) != email_id(s, root, 1, 1)
    assert email_id(s, root, 1, 1).startswith("M") and thread_id(s, root).startswith("T")
    per_mailbox = _context("imap_emailid_per_mailbox")
    assert email_id(per_mailbox, root, 1, 1) != email_id(per_mailbox, root, 2, 9)


def test_preview_is_decoded_plain_text_cut_at_200() -> None:
    s = _context()
    qp = _msg("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: "
              "quoted-printable\n", b"Caf=C3=A9 =\r\ncr=C3=A8me\r\n\r\n  second   line\r\n")
    assert preview(s, qp) == "Café crème second line"
    assert preview(_context("imap_preview_encoded"), qp).startswith("Caf=C3=A9")
    long = _msg("Subject: x\n", b"abc " * 100)
    assert len(preview(s, long)) == 200
    assert len(preview(_context("imap_preview_too_long"), long)) == 300


def test_preview_of_html_and_multipart() -> None:
    s = _context()
    html = _msg("Content-Type: text/html\n",
                b"<html><head><style>p {}</style></head><p>Hi &amp; <b>bye</b></p></html>\r\n")
    assert preview(s, html) == "Hi & bye"
    assert "<b>" in preview(_context("imap_preview_markup"), html)
    mixed = _msg('Content-Type: multipart/alternative; boundary="b"\n',
                 b"--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
                 b"--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n")
    assert preview(s, mixed) == "plain"
    image = _msg("Content-Type: image/png\nContent-Transfer-Encoding: base64\n", b"AAEC\r\n")
    assert preview(s, image) == ""
