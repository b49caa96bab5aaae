"""One table of IMAP commands read in both directions (h11's ``tr()``): each typed value formats
to its wire bytes, and those bytes parse back to the value — whole, byte by byte, and followed by
the next command."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.protocol.errors import LocalProtocolError
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
    ListArgs,
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
    SearchKey,
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
    format_command,
    parse_command,
)
from harness.protocol.imap.seqset import SequenceSet

S = SequenceSet.parse
PDT = timezone(timedelta(hours=-7))

CASES: list[tuple[Command, bytes]] = [
    (Command("A1", "NOOP"), b"A1 NOOP\r\n"),
    (Command("A2", "CAPABILITY"), b"A2 CAPABILITY\r\n"),
    (Command("a.3", "IDLE"), b"a.3 IDLE\r\n"),
    # astring: atom, quoted (quoted-specials escaped), literal for 8-bit
    (Command("A0001", "LOGIN", Login("joe", "secret word")), b'A0001 LOGIN joe "secret word"\r\n'),
    (Command("A0002", "LOGIN", Login('jo"e', "pässword")),
     b'A0002 LOGIN "jo\\"e" {9}\r\np\xc3\xa4ssword\r\n'),
    (Command("A3", "LOGIN", Login("a]b", "")), b'A3 LOGIN a]b ""\r\n'),
    (Command("A4", "LOGIN", Login("back\\slash", "tab\there")),
     b'A4 LOGIN "back\\\\slash" "tab\there"\r\n'),
    (Command("A5", "AUTHENTICATE", Authenticate("PLAIN", "AGpvZQBzZWNyZXQ=")),
     b"A5 AUTHENTICATE PLAIN AGpvZQBzZWNyZXQ=\r\n"),
    (Command("A6", "AUTHENTICATE", Authenticate("PLAIN", None)), b"A6 AUTHENTICATE PLAIN\r\n"),
    (Command("A7", "AUTHENTICATE", Authenticate("PLAIN", "=")), b"A7 AUTHENTICATE PLAIN =\r\n"),
    # mailbox names in modified UTF-7 (RFC 3501 §5.1.3)
    (Command("A8", "SELECT", MailboxArg("INBOX")), b"A8 SELECT INBOX\r\n"),
    (Command("A9", "EXAMINE", MailboxArg("Entwürfe")), b"A9 EXAMINE Entw&APw-rfe\r\n"),
    (Command("B1", "SELECT", MailboxArg("My Box", condstore=True)),
     b'B1 SELECT "My Box" (CONDSTORE)\r\n'),
    (Command("B2", "SELECT", MailboxArg("INBOX", qresync=QResync(67890007, 90060115194045000,
                                                                   S("41:211,214:541")))),
     b"B2 SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541))\r\n"),
    (Command("B3", "SELECT", MailboxArg("INBOX", qresync=QResync(1, 2, None, (S("1:3"), S("5:7"))))),
     b"B3 SELECT INBOX (QRESYNC (1 2 (1:3 5:7)))\r\n"),
    (Command("B4", "CREATE", MailboxArg("Work/2024")), b"B4 CREATE Work/2024\r\n"),
    (Command("B5", "DELETE", MailboxArg("~peter/x")), b"B5 DELETE ~peter/x\r\n"),
    (Command("B6", "RENAME", Rename("Old", "New one")), b'B6 RENAME Old "New one"\r\n'),
    # LIST: list-mailbox keeps its wildcards as an atom; the reference is a mailbox
    (Command("C1", "LIST", ListArgs("", "*")), b'C1 LIST "" *\r\n'),
    (Command("C2", "LIST", ListArgs("Work/", "%")), b"C2 LIST Work/ %\r\n"),
    (Command("C3", "LIST", ListArgs("", "a b*")), b'C3 LIST "" "a b*"\r\n'),
    (Command("C4", "LIST", ListArgs("", "*", select=("SUBSCRIBED",), more_patterns=("Work",),
                                    returns=("CHILDREN", "STATUS"), status=("MESSAGES",))),
     b'C4 LIST (SUBSCRIBED) "" (* Work) RETURN (CHILDREN STATUS (MESSAGES))\r\n'),
    (Command("C5", "LSUB", ListArgs("", "%")), b'C5 LSUB "" %\r\n'),
    (Command("C6", "STATUS", Status("INBOX", ("MESSAGES", "UIDNEXT"))),
     b"C6 STATUS INBOX (MESSAGES UIDNEXT)\r\n"),
    # FETCH: sequence sets and fetch items
    (Command("A0001", "FETCH", Fetch(S("1:2"), (FetchItem("UID"), FetchItem("BODY", Section())))),
     b"A0001 FETCH 1:2 (UID BODY[])\r\n"),
    (Command("A0002", "UID FETCH", Fetch(S("5:*"), (FetchItem("UID"),))),
     b"A0002 UID FETCH 5:* (UID)\r\n"),
    (Command("D1", "FETCH", Fetch(S("1,3:4"), (
        FetchItem("BODY", Section((1, 2), "MIME"), peek=True),
        FetchItem("BODY", Section((), "HEADER.FIELDS", ("Subject", "From"))),
        FetchItem("BODY", Section((), "TEXT"), (0, 100)),
        FetchItem("BINARY", Section((2,))),
        FetchItem("BINARY.SIZE", Section((1,))),
        FetchItem("RFC822.SIZE"),
    ))), b"D1 FETCH 1,3:4 (BODY.PEEK[1.2.MIME] BODY[HEADER.FIELDS (Subject From)] "
         b"BODY[TEXT]<0.100> BINARY[2] BINARY.SIZE[1] RFC822.SIZE)\r\n"),
    (Command("D2", "UID FETCH", Fetch(S("1:*"), (FetchItem("FLAGS"),), 12345, vanished=True)),
     b"D2 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n"),
    # STORE
    (Command("A0001", "STORE", Store(S("1"), "+", False, ("\\Seen", "\\Deleted"))),
     b"A0001 STORE 1 +FLAGS (\\Seen \\Deleted)\r\n"),
    (Command("A0002", "UID STORE", Store(S("4:5"), "-", True, ("$Junk",))),
     b"A0002 UID STORE 4:5 -FLAGS.SILENT ($Junk)\r\n"),
    (Command("E1", "STORE", Store(S("2"), "", False, (), unchangedsince=0)),
     b"E1 STORE 2 (UNCHANGEDSINCE 0) FLAGS ()\r\n"),
    (Command("E2", "COPY", Copy(S("2:4"), "Archive")), b"E2 COPY 2:4 Archive\r\n"),
    (Command("E3", "UID MOVE", Copy(S("7"), "Spam & Ham")), b'E3 UID MOVE 7 "Spam &- Ham"\r\n'),
    (Command("E4", "UID EXPUNGE", UidExpunge(S("3,5"))), b"E4 UID EXPUNGE 3,5\r\n"),
    # APPEND with a synchronising literal, flags and date-time; literal8 for NUL
    (Command("A0004", "APPEND", Append(
        "Sent", ("\\Seen",), datetime(1996, 7, 17, 2, 44, 25, tzinfo=PDT), b"Subject: hi\r\n\r\nbody\r\n")),
     b'A0004 APPEND Sent (\\Seen) "17-Jul-1996 02:44:25 -0700" {21}\r\nSubject: hi\r\n\r\nbody\r\n'
     b"\r\n"),
    (Command("F1", "APPEND", Append("INBOX", (), datetime(2020, 2, 1, 12, tzinfo=UTC),
                                    b"x")),
     b'F1 APPEND INBOX " 1-Feb-2020 12:00:00 +0000" {1}\r\nx\r\n'),
    (Command("F2", "APPEND", Append("INBOX", (), None, b"a\x00b")),
     b"F2 APPEND INBOX ~{3}\r\na\x00b\r\n"),
    (Command("F3", "ENABLE", Enable(("CONDSTORE", "UTF8=ACCEPT"))),
     b"F3 ENABLE CONDSTORE UTF8=ACCEPT\r\n"),
    (Command("F4", "ID", Id(None)), b"F4 ID NIL\r\n"),
    (Command("F5", "ID", Id((("name", "mailharness"), ("version", None)))),
     b'F5 ID ("name" "mailharness" "version" NIL)\r\n'),
    # SEARCH keys
    (Command("A0003", "SEARCH", Search(None, SearchFlag("\\Seen", False))),
     b"A0003 SEARCH UNSEEN\r\n"),
    (Command("G1", "UID SEARCH", Search(None, SearchAll())), b"G1 UID SEARCH ALL\r\n"),
    (Command("G2", "SEARCH", Search(None, SearchAnd((
        SearchFlag("\\Recent", False), SearchFlag("$Label", True), SearchFlag("$X", False),
        SearchHeader("Subject", "hello world", "SUBJECT"), SearchHeader("X-Token", "abc"),
        SearchText("body 3", whole_message=False), SearchText("x", whole_message=True),
        SearchSize(True, 100), SearchSize(False, 5),
        SearchDate("SINCE", date(2020, 2, 1), sent=False),
        SearchDate("BEFORE", date(2021, 3, 15), sent=True),
        SearchSet(S("1:3"), uid=False), SearchSet(S("2,4:*"), uid=True), SearchModseq(7),
    )))), b'G2 SEARCH OLD KEYWORD $Label UNKEYWORD $X SUBJECT "hello world" HEADER X-Token abc '
          b'BODY "body 3" TEXT x LARGER 100 SMALLER 5 SINCE 1-Feb-2020 SENTBEFORE 15-Mar-2021 '
          b"1:3 UID 2,4:* MODSEQ 7\r\n"),
    (Command("G3", "SEARCH", Search(None, SearchAnd((
        SearchNot(SearchSet(S("3"), uid=False)),
        SearchOr(SearchHeader("Subject", "n1", "SUBJECT"), SearchHeader("From", "bob", "FROM")),
        SearchNot(SearchAnd((SearchSet(S("2:3"), uid=True), SearchFlag("\\Seen", False)))),
    )))), b"G3 SEARCH NOT 3 OR SUBJECT n1 FROM bob NOT (UID 2:3 UNSEEN)\r\n"),
    (Command("G4", "SEARCH", Search("UTF-8", SearchText("grüße", whole_message=True))),
     b"G4 SEARCH CHARSET UTF-8 TEXT {7}\r\ngr\xc3\xbc\xc3\x9fe\r\n"),
    (Command("G5", "SEARCH", Search(None, SearchAll(), ("MIN", "COUNT"))),
     b"G5 SEARCH RETURN (MIN COUNT) ALL\r\n"),
]


def _id(case: tuple[Command, bytes]) -> str:
    return case[1].split(b"\r\n")[0].decode("ascii", "replace")[:50]


def _events(reader: CommandReader) -> list[Event]:
    events: list[Event] = []
    while (event := reader.next_event()) is not None:
        if not isinstance(event, NeedContinuation):
            events.append(event)
    return events


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_format_and_parse(case: tuple[Command, bytes]) -> None:
    command, wire = case
    assert b"".join(format_command(command)) == wire
    assert parse_command(wire) == command


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_read_whole_byte_by_byte_and_followed(case: tuple[Command, bytes]) -> None:
    command, wire = case
    whole = CommandReader()
    whole.feed(wire + b"Z9 NOOP\r\n")
    assert _events(whole) == [command, Command("Z9", "NOOP")]
    octets = CommandReader()
    seen: list[Event] = []
    for i in range(len(wire)):
        octets.feed(wire[i : i + 1])
        seen += _events(octets)
    assert seen == [command]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_pieces_end_where_a_literal_waits_for_continuation(case: tuple[Command, bytes]) -> None:
    command, wire = case
    pieces = format_command(command)
    assert len(pieces) == wire.count(b"}\r\n") + 1
    for piece in pieces[:-1]:
        assert piece.endswith(b"}\r\n")
    plus = format_command(command, literal_plus=True)
    assert len(plus) == 1
    assert parse_command(plus[0]) == command


@pytest.mark.parametrize(
    "command",
    [
        Command("A 1", "NOOP"),
        Command("A1", "STORE", Store(S("1"), "+", False, ("bad flag",))),
        Command("A1", "STORE", Store(S("1"), "*", False, ())),
        Command("A1", "ENABLE", Enable(("A B",))),
        Command("A1", "APPEND", Append("INBOX", (), datetime(2020, 1, 1), b"x")),
        Command("A1", "SEARCH", Search(None, SearchAnd(()))),
        Command("A1", "LOGIN", Login("nul\x00", "x")),
    ],
)
def test_what_cannot_be_formatted_is_refused(command: Command) -> None:
    with pytest.raises(LocalProtocolError):
        format_command(command)


# -- properties: whatever the formatter writes, the parser reads back --------------------------

_TEXT = st.text(st.characters(min_codepoint=1, codec="utf-8"), max_size=20)
_ATOM = st.text(st.sampled_from("abcXYZ019$-_.!#&'+,/:;<=>?@^`|~"), min_size=1, max_size=8)
_NAME = _TEXT.filter(lambda n: n.upper() != "INBOX" and n[:6].upper() != "INBOX/")
_NUMBER = st.integers(1, 2**32 - 1)
_SEQSET = st.lists(st.tuples(st.one_of(_NUMBER, st.none()), st.one_of(_NUMBER, st.none())),
                   min_size=1, max_size=3).map(lambda r: SequenceSet(tuple(r)))
_FLAG = st.one_of(_ATOM, _ATOM.map(lambda a: "\\" + a))
_DAY = st.dates(date(1000, 1, 1), date(9999, 12, 31))


def _pieces(cmd: Command) -> bytes:
    return b"".join(format_command(cmd))


@given(_TEXT, _TEXT)
def test_login_round_trip(user: str, password: str) -> None:
    command = Command("A1", "LOGIN", Login(user, password))
    assert parse_command(_pieces(command)) == command


@given(_NAME, _NAME, st.booleans())
def test_mailbox_round_trip(old: str, new: str, condstore: bool) -> None:
    for command in (Command("A1", "RENAME", Rename(old, new)),
                    Command("A2", "SELECT", MailboxArg(old, condstore=condstore)),
                    Command("A3", "LIST", ListArgs(old, new + "%*"))):
        assert parse_command(_pieces(command)) == command


@given(_SEQSET, st.sampled_from(["+", "-", ""]), st.booleans(), st.lists(_FLAG, max_size=4),
       st.one_of(st.none(), st.integers(0, 2**63 - 1)))
def test_store_round_trip(seqset: SequenceSet, mode: str, silent: bool, flags: list[str],
                          unchangedsince: int | None) -> None:
    flags = [f for f in flags if f.upper() != "\\RECENT"]
    command = Command("A1", "UID STORE", Store(seqset, mode, silent, tuple(flags), unchangedsince))
    assert parse_command(_pieces(command)) == command


@given(_NAME, st.lists(_FLAG, max_size=3), st.binary(max_size=50))
def test_append_round_trip(mailbox: str, flags: list[str], message: bytes) -> None:
    flags = [f for f in flags if f.upper() != "\\RECENT"]
    command = Command("A1", "APPEND", Append(mailbox, tuple(flags), None, message))
    assert parse_command(_pieces(command)) == command


_LEAF = st.one_of(
    st.just(SearchAll()),
    st.builds(SearchFlag, st.one_of(_ATOM, st.sampled_from(["\\Seen", "\\Recent"])),
              st.booleans()),
    st.builds(SearchHeader, st.one_of(st.sampled_from(["Subject", "From", "Bcc"]), _TEXT),
              _TEXT),
    st.builds(SearchText, _TEXT, st.booleans()),
    st.builds(SearchSize, st.booleans(), st.integers(0, 2**32)),
    st.builds(SearchDate, st.sampled_from(["BEFORE", "ON", "SINCE"]), _DAY, st.booleans()),
    st.builds(SearchSet, _SEQSET, st.booleans()),
    st.builds(SearchModseq, st.integers(0, 2**63 - 1)),
)
_KEY = st.recursive(_LEAF, lambda inner: st.one_of(
    st.builds(SearchNot, inner),
    st.builds(SearchOr, inner, inner),
    st.lists(inner, min_size=2, max_size=3).map(lambda keys: SearchAnd(tuple(keys))),
), max_leaves=8)


@given(_KEY)
def test_search_round_trip(key: SearchKey) -> None:
    command = Command("A1", "SEARCH", Search(None, key))
    assert parse_command(_pieces(command)) == command
