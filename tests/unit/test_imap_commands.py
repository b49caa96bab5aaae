"""IMAP command grammar (server side) and response formatting."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.protocol.imap.commands import (
    Append,
    Authenticate,
    Command,
    CommandReader,
    Copy,
    Enable,
    Event,
    Fetch,
    FetchItem,
    Id,
    InvalidCommand,
    ListArgs,
    LiteralTooLarge,
    Login,
    MailboxArg,
    NeedContinuation,
    QResync,
    Rename,
    Search,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchText,
    Section,
    Status,
    Store,
    UidExpunge,
    parse_command,
)
from harness.protocol.imap.formatting import (
    Raw,
    astring,
    binary_value,
    format_fetch_response,
    format_flags,
    format_internaldate,
    format_list_response,
    format_tagged,
    format_untagged,
    quote,
)
from harness.protocol.imap.lexer import Lexer
from harness.protocol.imap.mime import (
    UnknownTransferEncoding,
    apply_partial,
    binary_section,
    bodystructure,
    envelope,
    header_fields,
    section_bytes,
    split_message,
)
from harness.protocol.imap.seqset import SequenceSet


def S(text: str) -> SequenceSet:
    return SequenceSet.parse(text)


VALID: list[tuple[bytes, Command]] = [
    (b"a1 CAPABILITY", Command("a1", "CAPABILITY")),
    (b"a1 noop", Command("a1", "NOOP")),
    (b"x.y LOGOUT", Command("x.y", "LOGOUT")),
    (b"a STARTTLS", Command("a", "STARTTLS")),
    (b"a LOGIN fred secret", Command("a", "LOGIN", Login("fred", "secret"))),
    (b'a LOGIN "fred" "p a\\"s\\\\s"', Command("a", "LOGIN", Login("fred", 'p a"s\\s'))),
    (b"a LOGIN {4}\r\nfred {6+}\r\nsec et", Command("a", "LOGIN", Login("fred", "sec et"))),
    (b'a LOGIN "fr\xc3\xa9d" x', Command("a", "LOGIN", Login("fréd", "x"))),
    (b"a AUTHENTICATE plain", Command("a", "AUTHENTICATE", Authenticate("PLAIN", None))),
    (b"a AUTHENTICATE PLAIN AGEAYg==",
     Command("a", "AUTHENTICATE", Authenticate("PLAIN", "AGEAYg=="))),
    (b"a AUTHENTICATE PLAIN =", Command("a", "AUTHENTICATE", Authenticate("PLAIN", "="))),
    (b"a SELECT inbox", Command("a", "SELECT", MailboxArg("INBOX"))),
    (b'a EXAMINE "InBoX"', Command("a", "EXAMINE", MailboxArg("INBOX"))),
    (b"a SELECT inbox/sub", Command("a", "SELECT", MailboxArg("INBOX/sub"))),
    (b"a CREATE Entw&APw-rfe", Command("a", "CREATE", MailboxArg("Entwürfe"))),
    (b'a DELETE "a b"', Command("a", "DELETE", MailboxArg("a b"))),
    (b"a SUBSCRIBE x", Command("a", "SUBSCRIBE", MailboxArg("x"))),
    (b"a UNSUBSCRIBE x", Command("a", "UNSUBSCRIBE", MailboxArg("x"))),
    (b"a RENAME a/b INBOX/c", Command("a", "RENAME", Rename("a/b", "INBOX/c"))),
    (b"a RENAME inbox &AOk-t&AOk-", Command("a", "RENAME", Rename("INBOX", "été"))),
    (b'a LIST "" *', Command("a", "LIST", ListArgs("", "*"))),
    (b'a LIST "" ""', Command("a", "LIST", ListArgs("", ""))),
    (b"a LIST foo/ %/x", Command("a", "LIST", ListArgs("foo/", "%/x"))),
    (b'a LSUB "" "*"', Command("a", "LSUB", ListArgs("", "*"))),
    # Extended LIST (RFC 9051 §6.3.9): selection options, several patterns, return options.
    (b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" (INBOX "Work/%") RETURN (CHILDREN STATUS '
     b"(MESSAGES UIDNEXT))",
     Command("a", "LIST", ListArgs("", "INBOX", ("SUBSCRIBED", "RECURSIVEMATCH"), ("Work/%",),
                                   ("CHILDREN", "STATUS"), ("MESSAGES", "UIDNEXT")))),
    (b'a LIST () "" * RETURN ()', Command("a", "LIST", ListArgs("", "*"))),
    (b"a STATUS INBOX (MESSAGES uidnext)",
     Command("a", "STATUS", Status("INBOX", ("MESSAGES", "UIDNEXT")))),
    (b"a FETCH 1:* FLAGS", Command("a", "FETCH", Fetch(S("1:*"), (FetchItem("FLAGS"),)))),
    (b"a FETCH 1 FAST", Command("a", "FETCH", Fetch(S("1"), (
        FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"))))),
    (b"a FETCH 1 all", Command("a", "FETCH", Fetch(S("1"), (
        FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"),
        FetchItem("ENVELOPE"))))),
    (b"a FETCH 1 FULL", Command("a", "FETCH", Fetch(S("1"), (
        FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"),
        FetchItem("ENVELOPE"), FetchItem("BODY"))))),
    (b"a FETCH 2,4 (UID RFC822.SIZE RFC822 RFC822.HEADER RFC822.TEXT BODY BODYSTRUCTURE)",
     Command("a", "FETCH", Fetch(S("2,4"), tuple(FetchItem(n) for n in (
         "UID", "RFC822.SIZE", "RFC822", "RFC822.HEADER", "RFC822.TEXT", "BODY",
         "BODYSTRUCTURE"))))),
    (b"a FETCH 1 BODY[]", Command("a", "FETCH", Fetch(S("1"), (
        FetchItem("BODY", Section()),)))),
    (b"a FETCH 1 body.peek[]<0.10>", Command("a", "FETCH", Fetch(S("1"), (
        FetchItem("BODY", Section(), (0, 10), peek=True),)))),
    (b"a FETCH 1 (BODY[HEADER] BODY[TEXT] BODY[1.2.MIME] BODY[3] BODY[2.HEADER])",
     Command("a", "FETCH", Fetch(S("1"), (
         FetchItem("BODY", Section(text="HEADER")), FetchItem("BODY", Section(text="TEXT")),
         FetchItem("BODY", Section((1, 2), "MIME")), FetchItem("BODY", Section((3,))),
         FetchItem("BODY", Section((2,), "HEADER")))))),
    (b'a FETCH 1 BODY.PEEK[HEADER.FIELDS (From "To" x-y)]',
     Command("a", "FETCH", Fetch(S("1"), (
         FetchItem("BODY", Section(text="HEADER.FIELDS", fields=("From", "To", "x-y")),
                   peek=True),)))),
    (b"a FETCH 1 BODY[HEADER.FIELDS.NOT (Received)]", Command("a", "FETCH", Fetch(S("1"), (
        FetchItem("BODY", Section(text="HEADER.FIELDS.NOT", fields=("Received",))),)))),
    (b"a UID FETCH 1:* (FLAGS)",
     Command("a", "UID FETCH", Fetch(S("1:*"), (FetchItem("FLAGS"),)))),
    (b"a STORE 1 FLAGS (\\Seen)", Command("a", "STORE", Store(S("1"), "", False, ("\\Seen",)))),
    (b"a STORE 1:2 +FLAGS.SILENT \\Deleted $Junk",
     Command("a", "STORE", Store(S("1:2"), "+", True, ("\\Deleted", "$Junk")))),
    (b"a uid store 5 -flags ()", Command("a", "UID STORE", Store(S("5"), "-", False, ()))),
    (b"a COPY 1:3 Junk", Command("a", "COPY", Copy(S("1:3"), "Junk"))),
    (b"a UID COPY 1 inbox", Command("a", "UID COPY", Copy(S("1"), "INBOX"))),
    (b"a MOVE 1 Junk", Command("a", "MOVE", Copy(S("1"), "Junk"))),
    (b"a UID MOVE 1 Junk", Command("a", "UID MOVE", Copy(S("1"), "Junk"))),
    (b"a UID EXPUNGE 3:4", Command("a", "UID EXPUNGE", UidExpunge(S("3:4")))),
    (b"a CHECK", Command("a", "CHECK")),
    (b"a CLOSE", Command("a", "CLOSE")),
    (b"a UNSELECT", Command("a", "UNSELECT")),
    (b"a EXPUNGE", Command("a", "EXPUNGE")),
    (b"a IDLE", Command("a", "IDLE")),
    (b"a NAMESPACE", Command("a", "NAMESPACE")),
    (b"a ENABLE IMAP4rev2 foo", Command("a", "ENABLE", Enable(("IMAP4REV2", "FOO")))),
    (b"a ID NIL", Command("a", "ID", Id(None))),
    (b'a ID ("name" "x" "version" NIL)',
     Command("a", "ID", Id((("name", "x"), ("version", None))))),
    (b"a APPEND INBOX {3}\r\nabc",
     Command("a", "APPEND", Append("INBOX", (), None, b"abc"))),
    (b'a APPEND Junk (\\Seen) " 5-Mar-2021 10:11:12 -0130" {3+}\r\nabc',
     Command("a", "APPEND", Append("Junk", ("\\Seen",), datetime(
         2021, 3, 5, 10, 11, 12, tzinfo=timezone(-timedelta(hours=1, minutes=30))), b"abc"))),
    (b"a SEARCH ALL", Command("a", "SEARCH", Search(None, SearchAll()))),
    (b"a SEARCH CHARSET UTF-8 SEEN UNSEEN",
     Command("a", "SEARCH", Search("UTF-8", SearchAnd((
         SearchFlag("\\Seen", True), SearchFlag("\\Seen", False)))))),
    (b"a UID SEARCH DELETED UNDELETED FLAGGED",
     Command("a", "UID SEARCH", Search(None, SearchAnd((
         SearchFlag("\\Deleted", True), SearchFlag("\\Deleted", False),
         SearchFlag("\\Flagged", True)))))),
    (b'a SEARCH UID 1:5 2,4 SUBJECT "hi there" FROM bob TO {3}\r\nx y',
     Command("a", "SEARCH", Search(None, SearchAnd((
         SearchSet(S("1:5"), True), SearchSet(S("2,4"), False),
         SearchHeader("Subject", "hi there", "SUBJECT"), SearchHeader("From", "bob", "FROM"),
         SearchHeader("To", "x y", "TO")))))),
    (b"a SEARCH HEADER X-Spam yes BODY word TEXT w2 LARGER 10 SMALLER 20",
     Command("a", "SEARCH", Search(None, SearchAnd((
         SearchHeader("X-Spam", "yes"), SearchText("word", False), SearchText("w2", True),
         SearchSize(True, 10), SearchSize(False, 20)))))),
    (b"a SEARCH NOT SEEN", Command("a", "SEARCH", Search(None, SearchNot(
        SearchFlag("\\Seen", True))))),
    (b"a SEARCH OR SEEN (FLAGGED DELETED)", Command("a", "SEARCH", Search(None, SearchOr(
        SearchFlag("\\Seen", True),
        SearchAnd((SearchFlag("\\Flagged", True), SearchFlag("\\Deleted", True))))))),
    (b'a SEARCH SINCE 1-Feb-2020 SENTBEFORE "15-mar-2021"',
     Command("a", "SEARCH", Search(None, SearchAnd((
         SearchDate("SINCE", date(2020, 2, 1), False),
         SearchDate("BEFORE", date(2021, 3, 15), True)))))),
    (b"a SEARCH RETURN (MIN COUNT) ALL",
     Command("a", "SEARCH", Search(None, SearchAll(), ("MIN", "COUNT")))),
    # CONDSTORE (RFC 7162 §3.1): select-param, fetch and store modifiers, MODSEQ, HIGHESTMODSEQ.
    (b"a SELECT INBOX (CONDSTORE)",
     Command("a", "SELECT", MailboxArg("INBOX", "INBOX", condstore=True))),
    (b"a examine Work (condstore)",
     Command("a", "EXAMINE", MailboxArg("Work", "Work", condstore=True))),
    (b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)",
     Command("a", "UID FETCH", Fetch(S("1:*"), (FetchItem("FLAGS"),), 12345))),
    (b"a FETCH 1:3 (MODSEQ)", Command("a", "FETCH", Fetch(S("1:3"), (FetchItem("MODSEQ"),)))),
    # QRESYNC (RFC 7162 §3.2): select-param with known UIDs and seq-match-data; VANISHED.
    (b"a SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))",
     Command("a", "SELECT", MailboxArg("INBOX", "INBOX", qresync=QResync(
         67890007, 90060115194045000, S("41:211,214:541"))))),
    (b"a EXAMINE x (CONDSTORE QRESYNC (1 2 (1,3 2,6)))",
     Command("a", "EXAMINE", MailboxArg("x", "x", condstore=True, qresync=QResync(
         1, 2, None, (S("1,3"), S("2,6")))))),
    (b"a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
     Command("a", "UID FETCH", Fetch(S("300:500"), (FetchItem("FLAGS"),), 12345, True))),
    # Syntax only: the server answers BAD to VANISHED without UID FETCH and CHANGEDSINCE.
    (b"a FETCH 1 FLAGS (VANISHED)",
     Command("a", "FETCH", Fetch(S("1"), (FetchItem("FLAGS"),), None, True))),
    (b"a STORE 7,5 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Deleted)",
     Command("a", "STORE", Store(S("7,5"), "+", True, ("\\Deleted",), 0))),
    (b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338',
     Command("a", "SEARCH", Search(None, SearchModseq(620162338)))),
    (b"a SEARCH OR NOT MODSEQ 7 LARGER 50000",
     Command("a", "SEARCH", Search(None, SearchOr(SearchNot(SearchModseq(7)),
                                                  SearchSize(True, 50000))))),
    # BINARY (RFC 9051 §6.4.5; RFC 3516): section-binary is part numbers only.
    (b"a FETCH 1 (BINARY[1.2] BINARY.PEEK[]<0.10> BINARY.SIZE[3])",
     Command("a", "FETCH", Fetch(S("1"), (FetchItem("BINARY", Section((1, 2))),
                                          FetchItem("BINARY", Section(), (0, 10), True),
                                          FetchItem("BINARY.SIZE", Section((3,))))))),
    (b"a APPEND INBOX ~{3}\r\na\x00b",
     Command("a", "APPEND", Append("INBOX", (), None, b"a\x00b"))),
    (b"a STATUS INBOX (MESSAGES HIGHESTMODSEQ)",
     Command("a", "STATUS", Status("INBOX", ("MESSAGES", "HIGHESTMODSEQ")))),
]

INVALID: list[tuple[bytes, str | None]] = [
    (b"", None),
    (b" NOOP", None),
    (b"a+ NOOP", None),
    (b"* NOOP", None),
    (b"a", "a"),
    (b"a  NOOP", "a"),
    (b"a NOOP ", "a"),
    (b"a NOOP extra", "a"),
    (b"a FROB", "a"),
    (b"a UID NOOP", "a"),
    (b"a LOGIN fred", "a"),
    (b'a LOGIN "fred secret', "a"),
    (b'a LOGIN "fr\\ed" x', "a"),
    (b"a LOGIN fr\xffed x", "a"),
    (b"a LOGIN {3}\r\nab\x00 x", "a"),
    (b"a SELECT", "a"),
    (b"a STATUS INBOX (BOGUS)", "a"),
    (b"a STATUS INBOX ()", "a"),
    (b"a FETCH 0 FLAGS", "a"),
    (b"a FETCH 1 BOGUS", "a"),
    (b"a FETCH 1 (FLAGS", "a"),
    (b"a FETCH 1 BODY[0]", "a"),
    (b"a FETCH 1 BODY[MIME]", "a"),
    (b"a FETCH 1 BODY[1.]", "a"),
    (b"a FETCH 1 BODY[]<1.0>", "a"),
    (b"a FETCH 1 BODY.PEEK", "a"),
    (b"a FETCH 1 BODY[HEADER.FIELDS ()]", "a"),
    (b"a FETCH 1 BODY[HEADER.FIELDS (a:b)]", "a"),
    (b"a FETCH 1:x FLAGS", "a"),
    (b"a STORE 1 FLAGS (\\Recent)", "a"),
    (b"a STORE 1 BOGUS (\\Seen)", "a"),
    (b"a SEARCH", "a"),
    (b"a SEARCH BOGUS", "a"),
    (b"a SEARCH OR SEEN", "a"),
    (b"a SEARCH SINCE 1-Foo-2020", "a"),
    (b"a SEARCH SINCE 31-Feb-2020", "a"),
    (b"a SEARCH (SEEN", "a"),
    (b"a SEARCH " + b"NOT " * 100 + b"SEEN", "a"),
    (b"a SEARCH " + b"(" * 100 + b"SEEN" + b")" * 100, "a"),
    (b"a APPEND INBOX", "a"),
    (b'a APPEND INBOX "bad date" {1}\r\nx', "a"),
    (b"a AUTHENTICATE PLAIN ***", "a"),
    (b"a ENABLE", "a"),
    (b"a ID (\"k\")", "a"),
    (b"a COPY 1", "a"),
    (b"a FETCH 1 BINARY[1.HEADER]", "a"),
    (b"a FETCH 1 BINARY.SIZE[1]<0.5>", "a"),
    (b"a FETCH 1 BINARY", "a"),
    (b"a APPEND INBOX {3}\r\na\x00b", "a"),
    (b'a LIST (RECURSIVEMATCH) "" *', "a"),
    (b'a LIST (BOGUS) "" *', "a"),
    (b'a LIST "" * RETURN (BOGUS)', "a"),
    (b'a LIST "" * RETURN (STATUS (BOGUS))', "a"),
    (b'a LIST "" * EXTRA', "a"),
    (b'a LSUB (SUBSCRIBED) "" *', "a"),
    (b"a SELECT INBOX (QRESYNC)", "a"),
    (b"a SELECT INBOX ()", "a"),
    (b"a FETCH 1 FLAGS (CHANGEDSINCE 0)", "a"),
    (b"a FETCH 1 FLAGS (VANISHED VANISHED)", "a"),
    (b"a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)", "a"),
    (b"a FETCH 1 FLAGS ()", "a"),
    (b"a SELECT x (QRESYNC (1 2 1:*))", "a"),
    (b"a SELECT x (QRESYNC (0 2))", "a"),
    (b"a SELECT x (QRESYNC (1 0))", "a"),
    (b"a SELECT x (QRESYNC (1))", "a"),
    (b"a SELECT x (QRESYNC (1 2 1:3 (1 2) x))", "a"),
    (b"a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)", "a"),
    (b"a STORE 1 (UNCHANGEDSINCE x) FLAGS (\\Seen)", "a"),
    (b"a SEARCH MODSEQ", "a"),
    (b'a SEARCH MODSEQ "/flags/\\\\seen" mine 5', "a"),
]


def _events(reader: CommandReader) -> list[Event]:
    out: list[Event] = []
    while (event := reader.next_event()) is not None:
        out.append(event)
    return out


def _commands(chunks: list[bytes], **limits: int) -> list[Event]:
    reader = CommandReader(**limits)
    events: list[Event] = []
    for chunk in chunks:
        reader.feed(chunk)
        events += _events(reader)
    return [e for e in events if not isinstance(e, NeedContinuation)]


@pytest.mark.parametrize(("line", "expected"), VALID, ids=[repr(v[0][:40]) for v in VALID])
def test_valid_commands(line: bytes, expected: Command) -> None:
    assert parse_command(line) == expected
    wire = line + b"\r\n"
    assert _commands([wire]) == [expected]
    assert _commands([wire[i:i + 1] for i in range(len(wire))]) == [expected]
    assert _commands([wire + b"z NOOP\r\n" + b"y CAPA"]) == [expected, Command("z", "NOOP")]


@pytest.mark.parametrize(("line", "tag"), INVALID, ids=[repr(v[0][:40]) for v in INVALID])
def test_invalid_commands(line: bytes, tag: str | None) -> None:
    result = parse_command(line)
    assert isinstance(result, InvalidCommand)
    assert result.tag == tag
    assert "\n" not in result.reason
    wire = line + b"\r\n"
    events = _commands([wire[i:i + 1] for i in range(len(wire))] + [b"z NOOP\r\n"])
    # The session goes on after a bad command.
    assert events[-1] == Command("z", "NOOP")
    assert all(isinstance(e, InvalidCommand) for e in events[:-1])


def test_synchronising_literal_asks_for_continuation() -> None:
    reader = CommandReader()
    reader.feed(b"a LOGIN {4}\r\n")
    assert reader.next_event() == NeedContinuation(4)
    assert reader.next_event() is None
    reader.feed(b"fred {3}\r\n")
    assert reader.next_event() == NeedContinuation(3)
    reader.feed(b"abc\r\n")
    assert reader.next_event() == Command("a", "LOGIN", Login("fred", "abc"))


def test_non_synchronising_literal_needs_no_continuation() -> None:
    reader = CommandReader()
    reader.feed(b"a LOGIN {4+}\r\nfred x\r\n")
    assert reader.next_event() == Command("a", "LOGIN", Login("fred", "x"))


def test_literal_containing_crlf_and_braces() -> None:
    reader = CommandReader()
    message = b"x {5}\r\n\r\nyz\r\n"
    reader.feed(b"a APPEND INBOX {%d+}\r\n%s\r\nb NOOP\r\n" % (len(message), message))
    assert _events(reader) == [
        Command("a", "APPEND", Append("INBOX", (), None, message)),
        Command("b", "NOOP"),
    ]


def test_oversize_synchronising_literal_refused_before_its_octets() -> None:
    reader = CommandReader(max_literal=100)
    reader.feed(b"a APPEND INBOX {101}\r\n")
    assert reader.next_event() == LiteralTooLarge("a", 101, False)
    # The client never got "+": its next line is a new command.
    reader.feed(b"b NOOP\r\n")
    assert reader.next_event() == Command("b", "NOOP")


def test_oversize_non_synchronising_literal_is_discarded_exactly() -> None:
    reader = CommandReader(max_literal=100)
    payload = b"b NOOP\r\n" * 30  # looks like commands: must not be read as such
    reader.feed(b"a APPEND INBOX {%d+}\r\n" % len(payload))
    assert reader.next_event() == LiteralTooLarge("a", len(payload), True)
    for i in range(0, len(payload), 7):
        reader.feed(payload[i:i + 7])
        assert reader.next_event() is None
    reader.feed(b" trailing {3+}\r\nabc rest\r\nc NOOP\r\n")
    assert _events(reader) == [Command("c", "NOOP")]


def test_endless_line_is_cut_without_buffering() -> None:
    reader = CommandReader(max_line=1000)
    reader.feed(b"a LOGIN ")
    assert reader.next_event() is None
    events: list[Event] = []
    for _ in range(1000):
        reader.feed(b"x" * 1000)
        events += _events(reader)
        assert reader.buffered <= 2000
    assert events == [InvalidCommand("a", "line too long")]
    reader.feed(b"xxx\r\nb NOOP\r\n")
    assert _events(reader) == [Command("b", "NOOP")]


def test_bare_lf_is_rejected() -> None:
    assert _commands([b"a NOOP\nb NOOP\r\n"]) == [
        InvalidCommand("a", "line must end with CRLF"), Command("b", "NOOP")]


def test_discard_pending_drops_pipelined_input() -> None:
    reader = CommandReader()
    reader.feed(b"a STARTTLS\r\nb LOGIN x y\r\n")
    assert reader.next_event() == Command("a", "STARTTLS")
    reader.discard_pending()
    assert reader.next_event() is None


def test_next_line_for_idle_and_authenticate() -> None:
    reader = CommandReader(max_line=10)
    reader.feed(b"DONE\r\nAGE")
    assert reader.next_line() == b"DONE"
    assert reader.next_line() is None
    reader.feed(b"=\r\n" + b"z" * 20)
    assert reader.next_line() == b"AGE="
    assert reader.next_line() == b"z" * 10
    reader.feed(b"zz\r\nok\r\n")
    assert reader.next_line() == b"ok"


@given(st.text(alphabet=st.characters(min_codepoint=1, codec="utf-8"), max_size=30),
       st.text(alphabet=st.characters(min_codepoint=1, codec="utf-8"), max_size=30))
def test_login_round_trip_through_quote(user: str, password: str) -> None:
    def wire(value: str) -> bytes:
        data = value.encode("utf-8")
        if b"\r" in data or b"\n" in data or not data.isascii() or len(data) == 0:
            return b"{%d+}\r\n" % len(data) + data
        return quote(data)

    line = b"t LOGIN " + wire(user) + b" " + wire(password)
    assert parse_command(line) == Command("t", "LOGIN", Login(user, password))


@given(st.binary(max_size=200))
def test_reader_never_crashes(data: bytes) -> None:
    reader = CommandReader(max_line=64, max_literal=64)
    reader.feed(data)
    for _ in range(1000):
        if reader.next_event() is None:
            break


# -- formatting ---------------------------------------------------------------------------------


def test_quote_chooses_quoted_or_literal() -> None:
    assert quote("abc") == b'"abc"'
    assert quote('a"b\\c') == b'"a\\"b\\\\c"'
    assert quote("a\r\nb") == b"{4}\r\na\r\nb"
    assert quote("é") == b"{2}\r\n\xc3\xa9"
    assert astring("INBOX") == b"INBOX"
    assert astring("a b") == b'"a b"'
    assert astring("NIL") == b'"NIL"'
    assert astring("") == b'""'


@given(st.binary(max_size=100).filter(lambda b: b"\x00" not in b))
def test_quote_round_trip(data: bytes) -> None:
    assert Lexer(quote(data)).string() == data


def test_status_lines() -> None:
    assert format_tagged("a1", "OK", "done") == b"a1 OK done\r\n"
    assert format_tagged("a1", "NO", "x\r\ny", "TRYCREATE") == b"a1 NO [TRYCREATE] x  y\r\n"
    assert format_untagged("3 EXISTS") == b"* 3 EXISTS\r\n"
    assert format_untagged("OK", code="UIDNEXT 5") == b"* OK [UIDNEXT 5] ok\r\n"
    with pytest.raises(ValueError):
        format_tagged("a", "MAYBE", "x")


def test_fetch_and_list_responses() -> None:
    when = datetime(2021, 3, 5, 9, 8, 7, tzinfo=timezone(timedelta(hours=-5)))
    assert format_internaldate(when) == b'" 5-Mar-2021 09:08:07 -0500"'
    assert format_flags({"$Junk", "\\Seen", "\\Answered"}) == b"(\\Answered \\Seen $Junk)"
    assert format_fetch_response(3, [
        ("UID", 7), ("FLAGS", Raw(b"()")), ("BODY[]", b"a\r\n"), ("BODY[1]", None),
    ]) == b"* 3 FETCH (UID 7 FLAGS () BODY[] {3}\r\na\r\n BODY[1] NIL)\r\n"
    assert format_list_response("LIST", ["\\HasNoChildren"], "/", "Entwürfe") == (
        b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe\r\n')
    assert format_list_response("LIST", [], "/", "a b") == b'* LIST () "/" "a b"\r\n'


SIMPLE = (b"From: Bob <bob@example.org>\r\nTo: a@example.net,\r\n  \"C D\" <c@example.net>\r\n"
          b"Subject: hi\r\nX-Spam: no\r\n\r\nline1\r\nline2\r\n")
MULTI = (
    b"From: x@example.org\r\nSubject: m\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n'
    b"preamble\r\n"
    b"--BB\r\nContent-Type: text/plain; charset=utf-8\r\n\r\npart one\r\n"
    b"--BB\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\nFrom: y@example.org\r\n\r\ninner body\r\n"
    b"--BB\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Disposition: attachment; filename=\"a.bin\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n"
    b"--BB--\r\nepilogue\r\n"
)


def test_split_and_header_fields() -> None:
    header, body = split_message(SIMPLE)
    assert body == b"line1\r\nline2\r\n"
    assert header.endswith(b"X-Spam: no\r\n\r\n")
    assert header_fields(header, ["to", "SUBJECT"]) == (
        b"To: a@example.net,\r\n  \"C D\" <c@example.net>\r\nSubject: hi\r\n\r\n")
    assert header_fields(header, ["From", "To", "Subject"], exclude=True) == (
        b"X-Spam: no\r\n\r\n")
    assert split_message(b"no body") == (b"no body", b"")
    assert split_message(b"\r\nbody") == (b"\r\n", b"body")


def test_binary_sections_remove_the_transfer_encoding() -> None:
    message = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n"
        b"caf=C3=A9 =\r\nsoft\nbare LF\r\n"
        b"--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"AAEC\r\nDQo=\r\n"
        b"--b\r\nContent-Transfer-Encoding: 8bit\r\n\r\nas is\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nx\r\n"
        b"--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--b--\r\n"
    )
    # Text comes out with CRLF line ends; other types octet for octet (CR LF kept as decoded).
    assert binary_section(message, (1,)) == "café soft\r\nbare LF".encode()
    assert binary_section(message, (2,)) == b"\x00\x01\x02\r\n"
    assert binary_section(message, (3,)) == b"as is"
    assert binary_section(message, (4,)) is None  # not a leaf
    assert binary_section(message, (9,)) is None
    assert binary_section(message, ()) == message
    with pytest.raises(UnknownTransferEncoding):
        binary_section(message, (5,))
    assert binary_value(b"a\x00b") == b"~{3}\r\na\x00b"
    assert binary_value(b"ab") == b"{2}\r\nab"


def test_sections() -> None:
    assert section_bytes(SIMPLE, Section()) == SIMPLE
    assert section_bytes(SIMPLE, Section(text="TEXT")) == b"line1\r\nline2\r\n"
    assert section_bytes(SIMPLE, Section((1,))) == b"line1\r\nline2\r\n"
    assert section_bytes(SIMPLE, Section((2,))) is None
    assert section_bytes(MULTI, Section((1,))) == b"part one"
    assert section_bytes(MULTI, Section((1,), "MIME")) == (
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n")
    assert section_bytes(MULTI, Section((2,))) == (
        b"Subject: inner\r\nFrom: y@example.org\r\n\r\ninner body")
    assert section_bytes(MULTI, Section((2,), "HEADER")) == (
        b"Subject: inner\r\nFrom: y@example.org\r\n\r\n")
    assert section_bytes(MULTI, Section((2,), "TEXT")) == b"inner body"
    assert section_bytes(MULTI, Section((2, 1))) == b"inner body"
    assert section_bytes(MULTI, Section((2,), "HEADER.FIELDS", ("subject",))) == (
        b"Subject: inner\r\n\r\n")
    assert section_bytes(MULTI, Section((3,))) == b"AAEC"
    assert section_bytes(MULTI, Section((1,), "HEADER")) is None
    assert section_bytes(MULTI, Section((4,))) is None
    assert apply_partial(b"0123456789", (2, 3)) == b"234"
    assert apply_partial(b"0123456789", (8, 5)) == b"89"
    assert apply_partial(b"0123456789", (20, 5)) == b""


def test_envelope() -> None:
    header, _ = split_message(SIMPLE)
    assert envelope(header) == (
        b'(NIL "hi" (("Bob" NIL "bob" "example.org")) (("Bob" NIL "bob" "example.org")) '
        b'(("Bob" NIL "bob" "example.org")) ((NIL NIL "a" "example.net")'
        b'("C D" NIL "c" "example.net")) NIL NIL NIL NIL)')


def test_bodystructure() -> None:
    assert bodystructure(SIMPLE, extensible=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 14 2)')
    structure = bodystructure(MULTI)
    assert structure.startswith(
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 8 1 NIL NIL NIL NIL)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 49 (NIL "inner" ')
    assert b'("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 4 NIL ' \
           b'("ATTACHMENT" ("FILENAME" "a.bin")) NIL NIL)' in structure
    assert structure.endswith(b' "MIXED" ("BOUNDARY" "BB") NIL NIL NIL)')


@given(st.binary(max_size=300))
def test_mime_parsing_never_crashes(data: bytes) -> None:
    bodystructure(data)
    section_bytes(data, Section((1, 2), "MIME"))
    envelope(split_message(data)[0])
