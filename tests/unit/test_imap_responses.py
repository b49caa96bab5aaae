"""The strict IMAP response parser: tables of valid and invalid responses, fed whole, byte by
byte and followed by more data; limits; hypothesis round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.protocol.errors import RemoteProtocolError
from harness.protocol.imap import mutf7
from harness.protocol.imap.responses import (
    Capability,
    Continuation,
    Enabled,
    ESearch,
    Exists,
    Expunge,
    Fetch,
    Flags,
    Id,
    List,
    Namespace,
    Recent,
    Response,
    ResponseCode,
    ResponseParser,
    Search,
    Status,
    Tagged,
    Untagged,
    UntaggedStatus,
    Vanished,
    parse_response,
)
from harness.protocol.imap.seqset import SequenceSet

TRAILER = b"* OK [ALERT] trailing\r\n"
TRAILER_RESPONSE = UntaggedStatus("OK", ResponseCode("ALERT"), "trailing")


def parse_all(
    chunks: list[bytes], max_line: int = 1_000_000, max_literal: int = 100 * 1024 * 1024
) -> list[Response]:
    parser = ResponseParser(max_line, max_literal)
    out: list[Response] = []
    for chunk in chunks:
        parser.feed(chunk)
        while (response := parser.next_response()) is not None:
            out.append(response)
    assert parser.buffered == 0
    return out


def feeds(raw: bytes) -> list[tuple[str, list[bytes], int]]:
    """(name, chunks, responses expected) for the three ways of feeding one response."""
    return [
        ("whole", [raw], 1),
        ("bytewise", [raw[i : i + 1] for i in range(len(raw))], 1),
        ("trailing", [raw + TRAILER], 2),
    ]


BODYSTRUCTURE = (
    b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 3 1 NIL NIL NIL NIL)'
    b'("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 10 NIL '
    b'("attachment" ("filename" "x.bin")) NIL NIL) "MIXED" ("BOUNDARY" "b") NIL NIL NIL)'
)
ENVELOPE = (
    b'("Mon, 7 Feb 1994 21:52:25 -0800" "Hi" (("Ann" NIL "ann" "example.org")) '
    b'(("Ann" NIL "ann" "example.org")) NIL ((NIL NIL "bob" "example.net")'
    b'(NIL NIL "cy" "example.net")) NIL NIL NIL "<1@example.org>")'
)

VALID: list[tuple[bytes, Response]] = [
    (b"+ idling\r\n", Continuation("idling")),
    (b"+ \r\n", Continuation("")),
    (b"+ [ALERT] send it\r\n", Continuation("send it", ResponseCode("ALERT"))),
    (b"A0001 OK done\r\n", Tagged("A0001", "OK", None, "done")),
    (
        b"a.b-c_1 no [TRYCREATE] no such\r\n",
        Tagged("a.b-c_1", "NO", ResponseCode("TRYCREATE"), "no such"),
    ),
    (b"A] BAD \r\n", Tagged("A]", "BAD", None, "")),
    (
        b"A1 OK [READ-WRITE] SELECT done\r\n",
        Tagged("A1", "OK", ResponseCode("READ-WRITE"), "SELECT done"),
    ),
    (b"A1 OK [READ-ONLY]\r\n", Tagged("A1", "OK", ResponseCode("READ-ONLY"), "")),
    (
        b"A1 OK [APPENDUID 38505 3955] ok\r\n",
        Tagged("A1", "OK", ResponseCode("APPENDUID", (38505, 3955)), "ok"),
    ),
    (
        b"A1 OK [COPYUID 38505 304,319:320 3956:3958] ok\r\n",
        Tagged("A1", "OK", ResponseCode("COPYUID", (38505, "304,319:320", "3956:3958")), "ok"),
    ),
    (
        b"A1 NO [AUTHENTICATIONFAILED] bad\r\n",
        Tagged("A1", "NO", ResponseCode("AUTHENTICATIONFAILED"), "bad"),
    ),
    (b"A1 NO [TOOBIG] big\r\n", Tagged("A1", "NO", ResponseCode("TOOBIG"), "big")),
    (
        b"A1 OK [X-VENDOR some text] x\r\n",
        Tagged("A1", "OK", ResponseCode("X-VENDOR", "some text"), "x"),
    ),
    (b"A1 OK [not a code\r\n", Tagged("A1", "OK", None, "[not a code")),
    (b"A1 OK [] empty\r\n", Tagged("A1", "OK", None, "[] empty")),
    (b"A1 OK caf\xc3\xa9 {5}\r\n", Tagged("A1", "OK", None, "café {5}")),
    (b"A1 OK tab\there\r\n", Tagged("A1", "OK", None, "tab\there")),
    (b"* OK IMAP4rev1 ready\r\n", UntaggedStatus("OK", None, "IMAP4rev1 ready")),
    (b"* ok lower case\r\n", UntaggedStatus("OK", None, "lower case")),
    (b"* BYE logging out\r\n", UntaggedStatus("BYE", None, "logging out")),
    (b"* PREAUTH welcome\r\n", UntaggedStatus("PREAUTH", None, "welcome")),
    (b"* NO [ALERT] disk full\r\n", UntaggedStatus("NO", ResponseCode("ALERT"), "disk full")),
    (
        b"* OK [CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN] hi\r\n",
        UntaggedStatus("OK", ResponseCode("CAPABILITY", ("IMAP4rev1", "IDLE", "AUTH=PLAIN")), "hi"),
    ),
    (
        b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
        UntaggedStatus("OK", ResponseCode("UIDVALIDITY", 3857529045), "UIDs valid"),
    ),
    (b"* OK [UIDNEXT 4392] next\r\n", UntaggedStatus("OK", ResponseCode("UIDNEXT", 4392), "next")),
    (b"* OK [UNSEEN 12] first\r\n", UntaggedStatus("OK", ResponseCode("UNSEEN", 12), "first")),
    (
        b"* OK [HIGHESTMODSEQ 715194045007] x\r\n",
        UntaggedStatus("OK", ResponseCode("HIGHESTMODSEQ", 715194045007), "x"),
    ),
    (
        b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
        UntaggedStatus(
            "OK", ResponseCode("PERMANENTFLAGS", ("\\Deleted", "\\Seen", "\\*")), "Limited"
        ),
    ),
    (
        b"* OK [PERMANENTFLAGS ()] none\r\n",
        UntaggedStatus("OK", ResponseCode("PERMANENTFLAGS", ()), "none"),
    ),
    (
        b'* NO [BADCHARSET (UTF-8 "x y")] no\r\n',
        UntaggedStatus("NO", ResponseCode("BADCHARSET", ("UTF-8", "x y")), "no"),
    ),
    (b"* NO [BADCHARSET] no\r\n", UntaggedStatus("NO", ResponseCode("BADCHARSET", ()), "no")),
    (b"* OK [CLOSED]\r\n", UntaggedStatus("OK", ResponseCode("CLOSED"), "")),
    (
        b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n",
        Capability(("IMAP4rev1", "STARTTLS", "LOGINDISABLED")),
    ),
    (b"* CAPABILITY IMAP4rev2\r\n", Capability(("IMAP4rev2",))),
    (b"* ENABLED\r\n", Enabled(())),
    (b"* ENABLED CONDSTORE UTF8=ACCEPT\r\n", Enabled(("CONDSTORE", "UTF8=ACCEPT"))),
    (b"* 23 EXISTS\r\n", Exists(23)),
    (b"* 0 exists\r\n", Exists(0)),
    (b"* 5 RECENT\r\n", Recent(5)),
    (b"* 44 EXPUNGE\r\n", Expunge(44)),
    (b"* VANISHED 405,407\r\n", Vanished(False, SequenceSet(((405, 405), (407, 407))))),
    (b"* VANISHED (EARLIER) 41,43:116\r\n",
     Vanished(True, SequenceSet(((41, 41), (43, 116))))),
    (b"* vanished (earlier) 1:4294967295\r\n", Vanished(True, SequenceSet(((1, 4294967295),)))),
    (
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Junk)\r\n",
        Flags(("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "$Junk")),
    ),
    (b"* FLAGS ()\r\n", Flags(())),
    (b'* LIST (\\Noselect) "/" ~/Mail/foo\r\n', List(("\\Noselect",), "/", "~/Mail/foo")),
    (b"* LIST () NIL inbox\r\n", List((), None, "INBOX")),
    (b'* LIST (\\HasNoChildren) "." "Sent &AOk-"\r\n', List(("\\HasNoChildren",), ".", "Sent é")),
    (b'* LIST () "\\\\" "a\\"b"\r\n', List((), "\\", 'a"b')),
    (b'* LIST () "/" {3}\r\na b\r\n', List((), "/", "a b")),
    (
        b'* LIST (\\Subscribed) "/" "Foo" ("CHILDINFO" ("SUBSCRIBED"))\r\n',
        List(("\\Subscribed",), "/", "Foo", (("CHILDINFO", ("SUBSCRIBED",)),)),
    ),
    (b'* LSUB () "." #news.comp\r\n', List((), ".", "#news.comp", (), True)),
    (
        b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n",
        Status("blurdybloop", {"MESSAGES": 231, "UIDNEXT": 44292}),
    ),
    (b"* STATUS INBOX ()\r\n", Status("INBOX", {})),
    (b"* SEARCH 2 3 6\r\n", Search((2, 3, 6))),
    (b"* SEARCH\r\n", Search(())),
    # RFC 7162 §3.1.6: the highest mod-sequence of the messages found, after SEARCH MODSEQ.
    (b"* SEARCH 2 5 6 (MODSEQ 917162500)\r\n", Search((2, 5, 6), 917162500)),
    (
        b'* ESEARCH (TAG "A2") UID MIN 2 COUNT 3 ALL 2,10:11\r\n',
        ESearch("A2", True, {"MIN": 2, "COUNT": 3, "ALL": "2,10:11"}),
    ),
    (b"* ESEARCH COUNT 0\r\n", ESearch(None, False, {"COUNT": 0})),
    (
        b"* 12 FETCH (FLAGS (\\Seen) UID 4827313)\r\n",
        Fetch(12, {"FLAGS": ("\\Seen",), "UID": 4827313}),
    ),
    (b"* 1 FETCH (FLAGS ())\r\n", Fetch(1, {"FLAGS": ()})),
    (b"* 1 FETCH (FLAGS (\\Recent $Label1))\r\n", Fetch(1, {"FLAGS": ("\\Recent", "$Label1")})),
    (b"* 1 FETCH (BODY[] {5}\r\nab\r\nc)\r\n", Fetch(1, {"BODY[]": b"ab\r\nc"})),
    (b"* 1 FETCH (BODY[] {0}\r\n)\r\n", Fetch(1, {"BODY[]": b""})),
    (b"* 1 FETCH (BODY[] NIL)\r\n", Fetch(1, {"BODY[]": None})),
    (b'* 1 FETCH (BODY[HEADER] "x")\r\n', Fetch(1, {"BODY[HEADER]": b"x"})),
    (b"* 1 FETCH (body[1.2]<0> {2}\r\nhi)\r\n", Fetch(1, {"BODY[1.2]<0>": b"hi"})),
    (b"* 1 FETCH (BODY[1.MIME] {1}\r\n\xff)\r\n", Fetch(1, {"BODY[1.MIME]": b"\xff"})),
    (
        b"* 1 FETCH (BODY[HEADER.FIELDS (Subject From)] {4}\r\nS\r\n\r UID 9)\r\n",
        Fetch(1, {"BODY[HEADER.FIELDS (SUBJECT FROM)]": b"S\r\n\r", "UID": 9}),
    ),
    (
        b"* 1 FETCH (BODY[TEXT] {2}\r\nab BODY[1] {1}\r\nc)\r\n",
        Fetch(1, {"BODY[TEXT]": b"ab", "BODY[1]": b"c"}),
    ),
    (
        b"* 1 FETCH (BINARY[1] ~{3}\r\na\x00b BINARY.SIZE[1] 3)\r\n",
        Fetch(1, {"BINARY[1]": b"a\x00b", "BINARY.SIZE[1]": 3}),
    ),
    (
        b"* 1 FETCH (RFC822.SIZE 44827 RFC822 {1}\r\nx)\r\n",
        Fetch(1, {"RFC822.SIZE": 44827, "RFC822": b"x"}),
    ),
    (
        b'* 1 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 -0700")\r\n',
        Fetch(1, {"INTERNALDATE": "17-Jul-1996 02:44:25 -0700"}),
    ),
    (
        b'* 1 FETCH (INTERNALDATE " 7-jul-1996 02:44:25 +0000")\r\n',
        Fetch(1, {"INTERNALDATE": " 7-jul-1996 02:44:25 +0000"}),
    ),
    (b"* 1 FETCH (MODSEQ (624140003))\r\n", Fetch(1, {"MODSEQ": 624140003})),
    (b"* 1 FETCH (X-GM-LABELS (\\Inbox foo))\r\n", Fetch(1, {"X-GM-LABELS": ("\\Inbox", "foo")})),
    (
        b"* 1 FETCH (ENVELOPE " + ENVELOPE + b")\r\n",
        Fetch(
            1,
            {
                "ENVELOPE": (
                    "Mon, 7 Feb 1994 21:52:25 -0800",
                    "Hi",
                    (("Ann", None, "ann", "example.org"),),
                    (("Ann", None, "ann", "example.org"),),
                    None,
                    ((None, None, "bob", "example.net"), (None, None, "cy", "example.net")),
                    None,
                    None,
                    None,
                    "<1@example.org>",
                )
            },
        ),
    ),
    (
        b"* 1 FETCH (BODYSTRUCTURE " + BODYSTRUCTURE + b")\r\n",
        Fetch(
            1,
            {
                "BODYSTRUCTURE": (
                    (
                        "TEXT",
                        "PLAIN",
                        ("CHARSET", "us-ascii"),
                        None,
                        None,
                        "7BIT",
                        3,
                        1,
                        None,
                        None,
                        None,
                        None,
                    ),
                    (
                        "APPLICATION",
                        "OCTET-STREAM",
                        None,
                        None,
                        None,
                        "BASE64",
                        10,
                        None,
                        ("attachment", ("filename", "x.bin")),
                        None,
                        None,
                    ),
                    "MIXED",
                    ("BOUNDARY", "b"),
                    None,
                    None,
                    None,
                )
            },
        ),
    ),
    (
        b'* 1 FETCH (BODY ("TEXT" "PLAIN" NIL NIL NIL "7BIT" {2}\r\n12 0))\r\n'.replace(
            b"{2}\r\n12", b"12"
        ),
        Fetch(1, {"BODY": ("TEXT", "PLAIN", None, None, None, "7BIT", 12, 0)}),
    ),
    (
        b'* 1 FETCH (BODY ("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 30 '
        + ENVELOPE
        + b' ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 2 1) 4))\r\n',
        Fetch(
            1,
            {
                "BODY": (
                    "MESSAGE",
                    "RFC822",
                    None,
                    None,
                    None,
                    "7BIT",
                    30,
                    (
                        "Mon, 7 Feb 1994 21:52:25 -0800",
                        "Hi",
                        (("Ann", None, "ann", "example.org"),),
                        (("Ann", None, "ann", "example.org"),),
                        None,
                        ((None, None, "bob", "example.net"), (None, None, "cy", "example.net")),
                        None,
                        None,
                        None,
                        "<1@example.org>",
                    ),
                    ("TEXT", "PLAIN", None, None, None, "7BIT", 2, 1),
                    4,
                )
            },
        ),
    ),
    (
        b'* NAMESPACE (("" "/")) NIL (("Shared/" "/" "X-PARAM" ("a" "b")))\r\n',
        Namespace((("", "/", ()),), None, (("Shared/", "/", (("X-PARAM", ("a", "b")),)),)),
    ),
    (b'* ID ("name" "Cyrus" "os" NIL)\r\n', Id((("name", "Cyrus"), ("os", None)))),
    (b"* ID NIL\r\n", Id(None)),
    (b'* QUOTA "" (STORAGE 10 512)\r\n', Untagged("QUOTA", None, ("", ("STORAGE", 10, 512)))),
    (b"* 3 XFOO bar\r\n", Untagged("XFOO", 3, ("bar",))),
]


@pytest.mark.parametrize(("raw", "expected"), VALID, ids=[repr(r[0][:40]) for r in VALID])
def test_valid_responses(raw: bytes, expected: Response) -> None:
    for name, chunks, count in feeds(raw):
        responses = parse_all(chunks)
        assert len(responses) == count, name
        assert responses[0] == expected, name
        if count == 2:
            assert responses[1] == TRAILER_RESPONSE
    assert parse_response(raw) == expected
    # repr is valid Python that rebuilds the value
    assert eval(repr(expected)) == expected  # noqa: S307 - our own repr


INVALID: list[bytes] = [
    b"\r\n",  # no tag
    b"A1\r\n",
    b"A1 OK\r\n",  # resp-cond-state needs SP even before an empty resp-text
    b"A1 YES fine\r\n",
    b"A1 PREAUTH x\r\n",  # tagged: OK / NO / BAD only
    b"A1  OK x\r\n",  # two spaces
    b"A1\tOK x\r\n",
    b"A+1 OK x\r\n",  # "+" is not a tag char
    b"A(1 OK x\r\n",
    b"* 1x EXISTS\r\n",
    b"* EXISTS 3\r\n",
    b"*  3 EXISTS\r\n",
    b"* 3 EXISTS \r\n",
    b"* 99999999999 EXISTS\r\n",  # above 2^32-1
    b"* 0 EXPUNGE\r\n",
    b"* VANISHED 1:*\r\n",
    b"* VANISHED\r\n",
    b"* VANISHED (LATER) 4\r\n",
    b"* VANISHED (EARLIER)4\r\n",
    b"* VANISHED 0\r\n",
    b"* 3 VANISHED 4\r\n",
    b"* 0 FETCH (UID 1)\r\n",
    b"*OK x\r\n",
    b"* OK\r\n",
    b"* OK [UIDNEXT abc] x\r\n",
    b"* OK [UIDNEXT 0] x\r\n",
    b"* OK [UIDVALIDITY 012] x\r\n",
    b"* OK [UIDNEXT] x\r\n",
    b"* OK [UIDNEXT 5]x\r\n",
    b"* OK [PERMANENTFLAGS (\\Seen] x\r\n",
    b"* OK [PERMANENTFLAGS \\Seen] x\r\n",
    b"* OK [CAPABILITY IDLE] no imap4rev1\r\n",
    b"* OK [APPENDUID 1 0] x\r\n",
    b"* OK bad \xff utf8\r\n",
    b"* OK nul \x00 here\r\n",
    b"* OK cr \r here\r\n",
    b"* CAPABILITY IDLE STARTTLS\r\n",
    b"* CAPABILITY\r\n",
    b"* FLAGS (\\Seen\r\n",
    b"* FLAGS (\\Seen))\r\n",
    b"* FLAGS ( \\Seen)\r\n",
    b"* FLAGS (\\Seen  \\Draft)\r\n",
    b"* FLAGS (\\*)\r\n",
    b'* LIST (\\Noselect \\Marked) "/" foo\r\n',  # two selectability flags
    b'* LIST (Noselect) "/" foo\r\n',
    b'* LIST () "//" foo\r\n',
    b'* LIST () "/" "&Jjo"\r\n',  # bad modified UTF-7
    b'* LIST () "/" "a&AGE-"\r\n',  # non-canonical modified UTF-7
    b'* LIST () "/"\r\n',
    b"* SEARCH 1 0\r\n",
    b"* SEARCH 1  2\r\n",
    b"* SEARCH (MODSEQ 5)\r\n",
    b"* SEARCH 1 (MODSEQ)\r\n",
    b"* SEARCH 1 (MODSEQ 5) 2\r\n",
    b"* SEARCH 1 (MODSEQX 5)\r\n",
    b"* STATUS INBOX (MESSAGES x)\r\n",
    b"* STATUS INBOX (UIDNEXT 0)\r\n",
    b"* 1 FETCH ()\r\n",
    b"* 1 FETCH (UID 0)\r\n",
    b"* 1 FETCH (UID 5\r\n",
    b"* 1 FETCH UID 5\r\n",
    b"* 1 FETCH (UID 5))\r\n",
    b"* 1 FETCH (FLAGS (\\Seen) )\r\n",
    b"* 1 FETCH (BODY[] {5+}\r\nhello)\r\n",  # non-synchronising literal from a server
    b"* 1 FETCH (BODY[] {5}\r\nhel\x00o)\r\n",  # NUL in a literal
    b"* 1 FETCH (BODY[] {3}\r\nhello)\r\n",  # literal shorter than its content
    b'* 1 FETCH (BODY[] "a\x00b")\r\n',
    b'* 1 FETCH (BODY[] "caf\xe9")\r\n',  # 8-bit, not UTF-8, in a quoted string
    b'* 1 FETCH (BODY[] "a\\nb")\r\n',  # bad escape
    b"* 1 FETCH (BODY[FOO] NIL)\r\n",
    b"* 1 FETCH (BODY[0] NIL)\r\n",
    b"* 1 FETCH (BODY[HEADER.FIELDS] NIL)\r\n",
    b"* 1 FETCH (BODY[MIME] NIL)\r\n",  # MIME only after a part number
    b"* 1 FETCH (BINARY[TEXT] NIL)\r\n",
    b"* 1 FETCH (BINARY {1}\r\nx)\r\n",
    b'* 1 FETCH (INTERNALDATE "17-Jul-1996 02:44:25")\r\n',
    b'* 1 FETCH (INTERNALDATE "7-Jul-1996 02:44:25 -0700")\r\n',
    b'* 1 FETCH (INTERNALDATE "17-Jux-1996 02:44:25 -0700")\r\n',
    b"* 1 FETCH (RFC822.SIZE -1)\r\n",
    b"* 1 FETCH (ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL))\r\n",  # 9 fields
    b'* 1 FETCH (ENVELOPE (NIL NIL ((NIL NIL "a" "b") (NIL NIL "c" "d")) NIL NIL NIL NIL NIL NIL NIL))\r\n',
    b"* 1 FETCH (ENVELOPE (NIL NIL () NIL NIL NIL NIL NIL NIL NIL))\r\n",
    b'* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 3))\r\n',  # no lines
    b'* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" () NIL NIL "7BIT" 3 1))\r\n',
    b'* 1 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" NIL NIL NIL "7BIT" 3 1)))\r\n',  # no subtype
    b'* 1 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 3 1 ()))\r\n',
    b"* NAMESPACE NIL NIL\r\n",
    b"* NAMESPACE () NIL NIL\r\n",
    b'* ID ("name")\r\n',
    b"* ESEARCH MIN 0\r\n",
    b'* ESEARCH (TAG "A1" UID\r\n',
    b"+idling\r\n",
    b"+\r\n",
    b'* QUOTA "x\r\n',
    b"* 1 FETCH (X (a b)\r\n",
]


@pytest.mark.parametrize("raw", INVALID, ids=[repr(r[:40]) for r in INVALID])
def test_invalid_responses(raw: bytes) -> None:
    for name, chunks, _ in feeds(raw):
        with pytest.raises(RemoteProtocolError) as info:
            parse_all(chunks)
        assert info.value.data, name
    with pytest.raises(RemoteProtocolError) as info:
        parse_response(raw)
    assert info.value.data == raw


def test_parser_continues_after_a_grammar_error() -> None:
    parser = ResponseParser()
    parser.feed(b"* 1 FETCH (UID 0)\r\n* 2 EXISTS\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        parser.next_response()
    assert info.value.data == b"* 1 FETCH (UID 0)\r\n"
    assert parser.last_raw == b"* 1 FETCH (UID 0)\r\n"
    assert parser.next_response() == Exists(2)


def test_bare_lf_is_rejected_and_the_parser_stays_broken() -> None:
    parser = ResponseParser()
    parser.feed(b"* 2 EXISTS\n* 3 EXISTS\r\n")
    for _ in range(2):
        with pytest.raises(RemoteProtocolError, match="bare LF"):
            parser.next_response()


def test_line_limit_without_crlf() -> None:
    parser = ResponseParser(max_line=100)
    parser.feed(b"* OK " + b"x" * 100)
    with pytest.raises(RemoteProtocolError, match="longer than 100"):
        parser.next_response()


def test_line_limit_counts_all_lines_of_a_response() -> None:
    parser = ResponseParser(max_line=100)
    part = b"* 1 FETCH (BODY[1] {1}\r\nx" + b" BODY[2] {1}\r\nx" * 10 + b")\r\n"
    parser.feed(part)
    with pytest.raises(RemoteProtocolError):
        parser.next_response()


def test_literal_limit_is_checked_before_buffering() -> None:
    parser = ResponseParser(max_literal=10)
    parser.feed(b"* 1 FETCH (BODY[] {11}\r\n")
    with pytest.raises(RemoteProtocolError, match="literal of 11"):
        parser.next_response()
    parser = ResponseParser(max_literal=10)
    parser.feed(b"* 1 FETCH (BODY[1] {6}\r\nxxxxxx BODY[2] {6}\r\n")
    with pytest.raises(RemoteProtocolError):
        parser.next_response()


def test_huge_literal_length_is_refused() -> None:
    parser = ResponseParser()
    parser.feed(b"* 1 FETCH (BODY[] {" + b"9" * 30 + b"}\r\n")
    with pytest.raises(RemoteProtocolError):
        parser.next_response()


def test_literal_exactly_at_the_limits() -> None:
    raw = b"* 1 FETCH (BODY[] {10}\r\n0123456789)\r\n"
    assert parse_all([raw], max_literal=10, max_line=len(raw)) == [
        Fetch(1, {"BODY[]": b"0123456789"})
    ]


def test_status_text_ending_like_a_literal_is_text() -> None:
    assert parse_all([b"A1 OK see {3}\r\n* 1 EXISTS\r\n"]) == [
        Tagged("A1", "OK", None, "see {3}"),
        Exists(1),
    ]


def test_greeting_mode() -> None:
    parser = ResponseParser(expect_greeting=True)
    parser.feed(b"* PREAUTH hi\r\n* PREAUTH again\r\n")
    assert parser.next_response() == UntaggedStatus("PREAUTH", None, "hi")
    with pytest.raises(RemoteProtocolError, match="PREAUTH after"):
        parser.next_response()
    for bad in (b"* NO go away\r\n", b"A1 OK x\r\n", b"* 1 EXISTS\r\n", b"+ x\r\n"):
        parser = ResponseParser(expect_greeting=True)
        parser.feed(bad)
        with pytest.raises(RemoteProtocolError, match="greeting"):
            parser.next_response()


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    raw = b"* 1 FETCH (X " + b"(" * 5000 + b")" * 5000 + b")\r\n"
    with pytest.raises(RemoteProtocolError):
        parse_response(raw)
    raw = b"* 1 FETCH (BODY " + b"(" * 5000 + b")\r\n"
    with pytest.raises(RemoteProtocolError):
        parse_response(raw)


# -- hypothesis round trips ----------------------------------------------------------------------


def _quote_or_literal(data: bytes, *, force_literal: bool) -> bytes:
    if not force_literal and all(0x20 <= b < 0x7F for b in data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(data) + data


flag_atoms = st.from_regex(r"\\?[A-Za-z$][A-Za-z0-9$_.-]{0,10}", fullmatch=True)
octets = st.binary(max_size=200).map(lambda b: b.replace(b"\x00", b"\x01"))


@settings(max_examples=150, deadline=None)
@given(
    seq=st.integers(1, 2**32 - 1),
    uid=st.integers(1, 2**32 - 1),
    flags=st.lists(flag_atoms, max_size=5),
    body=octets,
    force_literal=st.booleans(),
    chunk=st.integers(1, 50),
)
def test_fetch_round_trip(
    seq: int, uid: int, flags: list[str], body: bytes, force_literal: bool, chunk: int
) -> None:
    raw = (
        b"* %d FETCH (UID %d FLAGS (%s) BODY[] " % (seq, uid, " ".join(flags).encode())
        + _quote_or_literal(body, force_literal=force_literal)
        + b")\r\n"
    )
    chunks = [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    expected = Fetch(seq, {"UID": uid, "FLAGS": tuple(flags), "BODY[]": body})
    assert parse_all(chunks) == [expected]


@settings(max_examples=150, deadline=None)
@given(
    name=st.text(min_size=1, max_size=30).filter(lambda s: s.upper() != "INBOX"),
    delimiter=st.sampled_from(["/", ".", "\\", '"', None]),
    force_literal=st.booleans(),
)
def test_list_round_trip(name: str, delimiter: str | None, force_literal: bool) -> None:
    encoded = mutf7.encode(name).encode("ascii")
    if delimiter is None:
        delim = b"NIL"
    else:
        delim = b'"' + delimiter.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    raw = (
        b"* LIST (\\HasNoChildren) "
        + delim
        + b" "
        + _quote_or_literal(encoded, force_literal=force_literal)
        + b"\r\n"
    )
    assert parse_all([raw]) == [List(("\\HasNoChildren",), delimiter, name)]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_responses_give_a_value_or_a_remote_protocol_error(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from([r for r, _ in VALID])))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            raw[index] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del raw[index]
        else:
            raw.insert(index, data.draw(st.sampled_from(b' ()[]{}"\\\r\n0*+~')))
        if not raw:
            return
    parser = ResponseParser(max_line=10_000, max_literal=10_000)
    parser.feed(bytes(raw) + b"\r\n")
    try:
        while parser.next_response() is not None:
            pass
    except RemoteProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    parser = ResponseParser(max_line=1000, max_literal=1000)
    parser.feed(raw + b"\r\n")
    try:
        for _ in range(400):
            if parser.next_response() is None:
                break
    except RemoteProtocolError:
        pass
