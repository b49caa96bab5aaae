"""MULTIAPPEND and CATENATE in the command grammar (RFC 3502, RFC 4469 §5), IMAP URLs of this
server (RFC 5092), and how a session reads names with "&" (RFC 3501 §5.1.3, RFC 9051 §5.1)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from harness.protocol.imap.command_parser import resolve_names
from harness.protocol.imap.commands import (
    Append,
    AppendMessage,
    CatPart,
    Command,
    InvalidCommand,
    ListArgs,
    MailboxArg,
    Rename,
    Section,
    format_command,
    parse_command,
)
from harness.protocol.imap.imapurl import BadUrl, MessageUrl, parse_message_url
from reference_agents.config import ProviderConfig
from reference_agents.tls import TLSMaterial
from tests.unit.test_imapd import (  # noqa: F401 (fixtures)
    MESSAGE,
    RawClient,
    Running,
    _ask,
    _raw_login,
    base_config,
    serving,
    srv,
)

WHEN = datetime(2020, 2, 1, 10, 0, tzinfo=UTC)

APPENDS = [
    Append("INBOX", ("\\Seen",), WHEN, b"one", None,
           (AppendMessage((), None, b"two"), AppendMessage(("\\Flagged",), WHEN, b"three"))),
    Append("Drafts", ("\\Draft",), None, b"", (CatPart("URL", b"/Drafts;UIDVALIDITY=3/;UID=20"),
                                                CatPart("TEXT", b"\r\n--x--\r\n"))),
    Append("a", (), None, b"lit", None,
           (AppendMessage((), WHEN, b"", (CatPart("TEXT", b"t"),)),)),
]


@pytest.mark.parametrize("args", APPENDS)
def test_append_round_trip(args: Append) -> None:
    command = Command("t1", "APPEND", args)
    wire = b"".join(format_command(command))
    assert parse_command(wire) == command
    assert parse_command(b"".join(format_command(command, literal_plus=True))) == command


def test_multiappend_wire_form() -> None:
    pieces = format_command(Command("A003", "APPEND", APPENDS[0]))
    # RFC 3502 §6.3.11: each further message after the previous literal, one "+" per literal.
    assert pieces == (b'A003 APPEND INBOX (\\Seen) " 1-Feb-2020 10:00:00 +0000" {3}\r\n',
                      b"one {3}\r\n",
                      b'two (\\Flagged) " 1-Feb-2020 10:00:00 +0000" {5}\r\n',
                      b"three\r\n")
    assert format_command(Command("A4", "APPEND", APPENDS[1]), literal_plus=True) == (
        b"A4 APPEND Drafts (\\Draft) CATENATE (URL /Drafts;UIDVALIDITY=3/;UID=20 "
        b"TEXT {9+}\r\n\r\n--x--\r\n)\r\n",)


@pytest.mark.parametrize("line", [
    b"a APPEND INBOX CATENATE ()",  # at least one cat-part
    b"a APPEND INBOX CATENATE (BODY {1}\r\nx)",
    b"a APPEND INBOX CATENATE (TEXT x)",  # TEXT takes a literal
    b"a APPEND INBOX {1}\r\nx (\\Recent) {1}\r\ny",  # \Recent cannot be set
    b"a APPEND INBOX {1}\r\nx \"01-Foo-2020 10:00:00 +0000\" {1}\r\ny",
    b"a APPEND INBOX {1}\r\nx ",  # a second message without its literal
])
def test_bad_appends(line: bytes) -> None:
    assert isinstance(parse_command(line), InvalidCommand)


URLS: list[tuple[str, MessageUrl]] = [
    ("/INBOX;UIDVALIDITY=785799047/;UID=11467", MessageUrl("INBOX", 785799047, 11467)),
    ("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME",
     MessageUrl("Drafts", 385759045, 20, Section((1,), "MIME"))),
    ("/INBOX;UIDVALIDITY=7/;UID=113330/;SECTION=1.5.9",
     MessageUrl("INBOX", 7, 113330, Section((1, 5, 9)))),
    ("/a/b/;UID=3/;Section=HEADER", MessageUrl("a/b", None, 3, Section((), "HEADER"))),
    ("Sent%20Items;uidvalidity=2/;uid=5", MessageUrl("Sent Items", 2, 5)),
    (";UID=9/;SECTION=TEXT/;PARTIAL=0.10", MessageUrl(None, None, 9, Section((), "TEXT"),
                                                      (0, 10))),
    ("/Entw%C3%BCrfe/;UID=1", MessageUrl("Entwürfe", None, 1)),
]


@pytest.mark.parametrize(("url", "expected"), URLS)
def test_message_urls(url: str, expected: MessageUrl) -> None:
    assert parse_message_url(url) == expected


@pytest.mark.parametrize("url", [
    "imap://user@example.net/INBOX/;UID=1",  # RFC 4469 §3: relative URLs only
    "//example.net/INBOX/;UID=1",
    "/INBOX",  # no message
    "/INBOX;UIDVALIDITY=1",
    "/INBOX/;UID=0",
    "/INBOX/;UID=1/;SECTION=1.",
    "/INBOX/;UID=1/;SECTION=BOGUS",
    "/INBOX/;UID=1/;PARTIAL=x",
    "/INBOX/;UID=1/extra",
    "/INBOX?SUBJECT%20x",
    "/;UID=1",
    "/IN BOX/;UID=1",
    "/%FF/;UID=1",
])
def test_bad_message_urls(url: str) -> None:
    with pytest.raises(BadUrl):
        parse_message_url(url)


@pytest.mark.parametrize(("line", "rev1", "rev2"), [
    # RFC 3501 §5.1.3: "&-" is "&"; RFC 9051 §5.1: an IMAP4rev2 name is what was sent.
    (b'a SELECT "a&-b"', MailboxArg("a&b"), MailboxArg("a&-b")),
    (b'a SELECT "&Jjo-"', MailboxArg("\u263a"), MailboxArg("&Jjo-")),
    (b'a SELECT "inbox"', MailboxArg("INBOX"), MailboxArg("INBOX")),
    (b'a RENAME "R&-D" "x&AOk-"', Rename("R&D", "x\u00e9"), Rename("R&-D", "x&AOk-")),
    # Not modified UTF-7: NO in IMAP4rev1 (the name as sent), a plain name in IMAP4rev2.
    (b'a SELECT "a&Jjo"', "a&Jjo", MailboxArg("a&Jjo")),
    (b'a CREATE "&"', "&", MailboxArg("&")),
    (b'a RENAME INBOX "&ZeVnLIqe"', "&ZeVnLIqe", Rename("INBOX", "&ZeVnLIqe")),
    # A LIST pattern that is not modified UTF-7 matches as written.
    (b'a LIST "" "R&D*"', ListArgs("", "R&D*"), ListArgs("", "R&D*")),
    (b'a LIST "" "&Jjo-*"', ListArgs("", "\u263a*"), ListArgs("", "&Jjo-*")),
])
def test_names_as_the_session_reads_them(line: bytes, rev1: object, rev2: object) -> None:
    command = parse_command(line)
    assert isinstance(command, Command)
    assert resolve_names(command.args, utf8=False) == rev1
    assert resolve_names(command.args, utf8=True) == rev2


# -- the reference server ------------------------------------------------------------------------


def _status(c: RawClient, tag: bytes, mailbox: bytes) -> dict[str, int]:
    lines = _ask(c, tag, b"STATUS " + mailbox + b" (MESSAGES UIDVALIDITY)")
    found = re.search(rb"\(MESSAGES (\d+) UIDVALIDITY (\d+)\)", lines[0])
    assert found is not None, lines
    return {"MESSAGES": int(found.group(1)), "UIDVALIDITY": int(found.group(2))}


def _answer(c: RawClient, tag: bytes, command: bytes) -> bytes:
    c.send(tag + b" " + command + b"\r\n")
    return c.until_tagged(tag)[-1]


def test_server_multiappend_all_or_nothing(srv: Running) -> None:  # noqa: F811 (the fixture)
    c = _raw_login(srv)
    try:
        assert b"MULTIAPPEND" in b" ".join(_ask(c, b"a1", b"CAPABILITY"))
        validity = _status(c, b"a2", b"INBOX")["UIDVALIDITY"]
        # RFC 4315 §3: the UID set of the messages appended, in order.
        assert _answer(c, b"a3", b"APPEND INBOX (\\Seen) {3+}\r\none (\\Flagged) {3+}\r\ntwo") \
            == b"a3 OK [APPENDUID %d 2:3] APPEND completed" % validity
        # RFC 3502 §6.3.11: a zero-length literal cancels; "no partial appending is permitted".
        assert _answer(c, b"a4", b"APPEND INBOX {3+}\r\none {0+}\r\n {3+}\r\ntwo").startswith(
            b"a4 NO ")
        assert _answer(c, b"a5", b"APPEND INBOX {3+}\r\none (\\Bad\\Flag) {3+}\r\ntwo") \
            .startswith(b"a5 ")
        assert _status(c, b"a6", b"INBOX")["MESSAGES"] == 3
        assert _answer(c, b"a7", b"APPEND Missing {3+}\r\none {3+}\r\ntwo").startswith(
            b"a7 NO [TRYCREATE]")
        lines = _ask(c, b"a8", b"EXAMINE INBOX")
        assert b"* 3 EXISTS" in lines
        fetched = b"\r\n".join(_ask(c, b"a9", b"UID FETCH 2:3 (FLAGS BODY.PEEK[])"))
        assert b"\\Seen" in fetched and b"\\Flagged" in fetched and b"one" in fetched
    finally:
        c.close()


def test_server_catenate(srv: Running) -> None:  # noqa: F811 (the fixture)
    c = _raw_login(srv)
    try:
        validity = _status(c, b"b1", b"INBOX")["UIDVALIDITY"]
        base = b"/INBOX;UIDVALIDITY=%d/;UID=1" % validity
        # RFC 4469 §3: a URL part is "the literal returned in a FETCH BODY response".
        assert _answer(c, b"b2", b"APPEND INBOX CATENATE (URL " + base + b"/;SECTION=HEADER "
                       b"TEXT {5+}\r\nnew\r\n)").startswith(b"b2 OK [APPENDUID %d 2]" % validity)
        _ask(c, b"b3", b"SELECT INBOX")
        header = MESSAGE.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        body = b"\r\n".join(_ask(c, b"b4", b"UID FETCH 2 (BODY.PEEK[])"))
        assert header + b"new\r\n" in body
        # In the selected state a URL may leave out the mailbox; a part URL is a section.
        assert _answer(c, b"b5", b"APPEND INBOX CATENATE (URL \";UID=1/;SECTION=TEXT\")") \
            .startswith(b"b5 OK")
        # RFC 4469 §4.1: "The BADURL response code contains the first URL ... that has caused
        # the operation to fail", and nothing is appended.
        bad = b"/INBOX;UIDVALIDITY=%d/;UID=99" % validity
        assert _answer(c, b"b6", b"APPEND INBOX {3+}\r\none CATENATE (TEXT {1+}\r\nx URL " + bad
                       + b" URL /INBOX/;UID=98)") == b"b6 NO [BADURL " + bad \
            + b"] CATENATE URL names nothing"
        wrong = b"/INBOX;UIDVALIDITY=%d/;UID=1" % (validity + 1)
        assert _answer(c, b"b7", b"APPEND INBOX CATENATE (URL " + wrong + b")").startswith(
            b"b7 NO [BADURL")
        assert _answer(c, b"b8", b"APPEND INBOX CATENATE (URL imap://x/INBOX/;UID=1)") \
            .startswith(b"b8 NO [BADURL")
        assert _status(c, b"b9", b"INBOX")["MESSAGES"] == 3
        flags = b"".join(_ask(c, b"b10", b"UID FETCH 1 (FLAGS)"))
        assert b"\\Seen" not in flags  # RFC 4469 §3: no \Seen for a catenated part
    finally:
        c.close()


def test_server_catenate_toobig(base_config: tuple[ProviderConfig, TLSMaterial]) -> None:  # noqa: F811 (the fixture)
    with serving(base_config, max_message_size=len(MESSAGE) + 10) as running:
        c = _raw_login(running)
        try:
            # RFC 4469 §4.2: TOOBIG "if the resulting message exceeds a server-specific
            # message size limit".
            assert _answer(c, b"c1", b"APPEND INBOX CATENATE (URL /INBOX/;UID=1 "
                           b"URL /INBOX/;UID=1)").startswith(b"c1 NO [TOOBIG]")
            assert _status(c, b"c2", b"INBOX")["MESSAGES"] == 1
        finally:
            c.close()


def test_server_names_with_ampersand(srv: Running) -> None:  # noqa: F811 (the fixture)
    c = _raw_login(srv)
    try:
        # RFC 3501 §5.1.3: not modified UTF-7 -> NO, and the session goes on.
        for bad in (b'"a&Jjo"', b'"&"', b'"&ZeVnLIqe"'):
            assert _answer(c, b"d1", b"SELECT " + bad).startswith(b"d1 NO [NONEXISTENT]")
            assert _answer(c, b"d2", b"CREATE " + bad).startswith(b"d2 NO [CANNOT]")
            assert _answer(c, b"d3", b"STATUS " + bad + b" (MESSAGES)").startswith(b"d3 NO")
        _ask(c, b"d4", b'CREATE "a&-b"')
        assert _ask(c, b"d5", b'LIST "" "a&-b"') == [b'* LIST (\\HasNoChildren) "/" a&-b']
        # RFC 9051 §5.1: after ENABLE IMAP4rev2 names are UTF-8 and "&" is a character.
        _ask(c, b"d6", b"ENABLE IMAP4rev2")
        _ask(c, b"d7", b'CREATE "R&D"')
        assert b'"/" a&b' in b"\n".join(_ask(c, b"d8", b'LIST "" "*"'))
        assert _ask(c, b"d9", b'LIST "" "R&D"') == [b'* LIST (\\HasNoChildren) "/" R&D']
        assert "R&D" in srv.store.list_mailboxes("alice")
    finally:
        c.close()
