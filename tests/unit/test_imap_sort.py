"""SORT and THREAD (RFC 5256): the base subject, the sent date, the sort keys and both threading
algorithms of the sans-IO core; the SORT and THREAD responses of the response parser (whole, byte
by byte, with trailing data, and round trips through the server's formatter); the SORT and
THREAD commands parsed and formatted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.protocol.errors import RemoteProtocolError
from harness.protocol.imap.commands import (
    Command,
    InvalidCommand,
    SearchAll,
    SearchAnd,
    SearchHeader,
    SearchKey,
    SearchSet,
    Sort,
    Thread,
    format_command,
    parse_command,
)
from harness.protocol.imap.formatting import format_sort_response, format_thread_response
from harness.protocol.imap.headers import parse_fields
from harness.protocol.imap.responses import Sort as SortResponse
from harness.protocol.imap.responses import Thread as ThreadResponse
from harness.protocol.imap.responses import ThreadNode, parse_response
from harness.protocol.imap.search_grammar import SORT_KEYS
from harness.protocol.imap.seqset import SequenceSet
from harness.protocol.imap.sort import (
    SortMessage,
    base_subject,
    casemap,
    msg_ids,
    sent_date,
    sort_messages,
    thread_orderedsubject,
    thread_references,
)
from tests.unit.test_imap_responses import TRAILER_RESPONSE, feeds, parse_all

INTERNAL = datetime(2023, 1, 5, 10, 0, tzinfo=UTC)

# -- base subject (RFC 5256 §2.1) ---------------------------------------------------------------

BASE_SUBJECTS = [
    # (subject, base subject, reply or forward)
    ("apple", "apple", False),
    ("Re: apple", "apple", True),
    ("RE:apple", "apple", True),
    ("Fwd: apple", "apple", True),
    ("fw: apple", "apple", True),
    ("Re [list]: apple", "apple", True),
    ("[list] Re: apple", "apple", True),
    ("[list] apple", "apple", False),
    ("[list]", "[list]", False),  # (4): the blob stays when nothing would be left
    ("[a][b] c", "c", False),
    ("Re: Re: Fwd: apple", "apple", True),
    ("apple (fwd)", "apple", True),
    ("apple (FWD) (fwd)  ", "apple", True),
    ("[fwd: apple]", "apple", True),
    ("[Fwd: Re: apple (fwd)]", "apple", True),
    ("  apple\t  pie ", "apple pie", False),
    ("Re:\r\n  elder", "elder", True),
    ("=?UTF-8?Q?d=C3=A9j=C3=A0_vu?=", "déjà vu", False),
    ("Re: =?ISO-8859-1?Q?caf=E9?= =?ISO-8859-1?Q?_au_lait?=", "café au lait", True),
    ("recipe", "recipe", False),  # "re" without a colon is no subj-refwd
    ("", "", False),
    ("Re:", "", True),
]


@pytest.mark.parametrize(("subject", "base", "reply"), BASE_SUBJECTS)
def test_base_subject(subject: str, base: str, reply: bool) -> None:
    got = base_subject(subject)
    assert (got.text, got.reply) == (base, reply)


def test_casemap_ignores_case_and_decomposes() -> None:
    assert casemap("apple") == casemap("APPLE") == casemap("Apple")
    assert casemap("café") == casemap("CAFE\u0301")
    assert casemap("apple") < casemap("Banana") < casemap("cherry")


# -- sent date (RFC 5256 §2.2) ------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    # the RFC's example: "31 Dec 2000 16:01:33 -0800" is "1 Jan 2001 00:01:33 +0000"
    ("31 Dec 2000 16:01:33 -0800", datetime(2001, 1, 1, 0, 1, 33, tzinfo=UTC)),
    ("Mon, 02 Jan 2023 12:00:00 +0500", datetime(2023, 1, 2, 7, 0, tzinfo=UTC)),
    ("Mon, 02 Jan 2023 12:00:00 XYZ", datetime(2023, 1, 2, 12, 0, tzinfo=UTC)),  # zone invalid
    (None, INTERNAL),
    ("not a date", INTERNAL),
])
def test_sent_date(header: str | None, expected: datetime) -> None:
    assert sent_date(header, INTERNAL) == expected


# -- SORT (RFC 5256 §3) -------------------------------------------------------------------------


def message(seq: int, header: str, *, size: int = 100,
            internal: datetime = INTERNAL) -> SortMessage:
    fields = parse_fields(header.encode("utf-8").replace(b"\n", b"\r\n") + b"\r\n")
    return SortMessage.from_fields(seq, seq, internal, size, fields)


def test_sort_keys_and_reverse() -> None:
    msgs = [message(1, "From: Zed <bob@x>\nSubject: Re: b", size=30),
            message(2, "From: alice@x\nCc: c@x\nSubject: a", size=10),
            message(3, "From: \"A\" <Carol@x>\nSubject: [l] C", size=20)]

    def order(*criteria: tuple[str, bool]) -> list[int]:
        return [m.seq for m in sort_messages(msgs, criteria)]

    assert order(("SIZE", False)) == [2, 3, 1]
    assert order(("SIZE", True)) == [1, 3, 2]
    assert order(("FROM", False)) == [2, 1, 3]
    assert order(("SUBJECT", False)) == [2, 1, 3]
    assert order(("CC", False)) == [1, 3, 2]  # absent is the empty string, first
    # ties stay in mailbox order, also under REVERSE (RFC 5256 §3 note on REVERSE)
    assert order(("ARRIVAL", False)) == [1, 2, 3]
    assert order(("ARRIVAL", True)) == [1, 2, 3]
    assert order(("CC", True), ("SIZE", True)) == [2, 1, 3]


def test_first_address_and_msg_ids() -> None:
    m = message(1, "To: \"Zack\" <mike@x>, aaron@x\nMessage-ID: <\"q1\"@example.com>\n"
                   "References: <a@x> junk <b@x>\nIn-Reply-To: <c@x>")
    assert m.addresses == {"FROM": "", "TO": "mike", "CC": ""}
    assert m.message_id == "q1@example.com"
    assert m.references == ("a@x", "b@x")
    # "If a message does not contain a References header line ... use the first (if any)
    # valid Message ID found in the In-Reply-To header line"
    assert message(1, "In-Reply-To: <c@x> (Bob's) <d@x>").references == ("c@x",)
    assert msg_ids("<nothing> <a@b>") == ["a@b"]


# -- THREAD (RFC 5256 §3) -----------------------------------------------------------------------


def n(number: int | None, *children: ThreadNode) -> ThreadNode:
    return ThreadNode(number, children)


def threaded(seq: int, subject: str, hour: int, mid: str, *refs: str) -> SortMessage:
    header = f"Subject: {subject}\nDate: Mon, 02 Jan 2023 {hour:02d}:00:00 +0000\nMessage-ID: {mid}"
    if refs:
        header += "\nReferences: " + " ".join(refs)
    return message(seq, header)


def test_orderedsubject() -> None:
    msgs = [threaded(1, "b", 5, "<1@x>"), threaded(2, "Re: a", 3, "<2@x>"),
            threaded(3, "A", 4, "<3@x>"), threaded(4, "a", 6, "<4@x>"),
            threaded(5, "c", 1, "<5@x>")]
    assert thread_orderedsubject(msgs) == (n(5), n(2, n(3), n(4)), n(1))


def test_references_dummies_loops_and_duplicates() -> None:
    msgs = [
        threaded(1, "one", 1, "<1@x>"),
        threaded(2, "Re: one", 2, "<2@x>", "<1@x>", "<gap@x>"),   # 1 -> <gap> -> 2
        threaded(3, "two", 3, "<3@x>", "<4@x>"),                  # loop: 4 -> 3 and 3 -> 4
        threaded(4, "Re: two", 4, "<4@x>", "<3@x>"),
        threaded(5, "three", 5, "<1@x>"),                          # duplicate id: made unique
        threaded(6, "Re: four", 6, "<6@x>", "<lost@x>"),
        threaded(7, "Re: four", 7, "<7@x>", "<lost@x>"),
    ]
    # 3 names 4 as its parent (a dummy until 4 comes); 4 then names 3, and that link is
    # refused: "Do not create a parent/child link if creating that link would introduce a
    # loop". <gap> is pruned (not at the root); <lost> keeps its two children at the root.
    got = thread_references(msgs)
    assert got == (n(1, n(2)), n(4, n(3)), n(5), n(None, n(6), n(7)))


def test_references_subject_merging() -> None:
    msgs = [threaded(1, "Re: party", 1, "<1@x>", "<gone@x>"), threaded(2, "Party", 2, "<2@x>"),
            threaded(3, "meeting", 3, "<3@x>"), threaded(4, "meeting", 4, "<4@x>")]
    # "party": 2 replaces the reply 1 in the subject table and 1 becomes its child; the two
    # non-replies about "meeting" go under a new dummy.
    assert thread_references(msgs) == (n(2, n(1)), n(None, n(3), n(4)))
    assert thread_references(msgs, merge_subjects=False) == (n(1), n(2), n(3), n(4))


# -- responses (RFC 5256 §4) --------------------------------------------------------------------

RFC_EXAMPLE = n(3, n(6, n(4, n(23)), n(44, n(7, n(96)))))
VALID = [
    (b"* SORT 2 3 6\r\n", SortResponse((2, 3, 6))),
    (b"* SORT\r\n", SortResponse(())),
    (b"* SORT 5 2 (MODSEQ 917)\r\n", SortResponse((5, 2), 917)),
    (b"* THREAD\r\n", ThreadResponse(())),
    (b"* THREAD (2)(3 6 (4 23)(44 7 96))\r\n", ThreadResponse((n(2), RFC_EXAMPLE))),
    (b"* THREAD ((3)(5))\r\n", ThreadResponse((n(None, n(3), n(5)),))),
    (b"* THREAD (1 (2)(3 (4)(5 6)))\r\n",
     ThreadResponse((n(1, n(2), n(3, n(4), n(5, n(6)))),))),
]


@pytest.mark.parametrize(("raw", "expected"), VALID)
def test_sort_and_thread_responses(raw: bytes, expected: object) -> None:
    for _, chunks, count in feeds(raw):
        out = parse_all(chunks)
        assert out[0] == expected
        assert len(out) == count
        if count == 2:
            assert out[1] == TRAILER_RESPONSE


@pytest.mark.parametrize("raw", [
    b"* SORT 0\r\n", b"* SORT 1  2\r\n", b"* SORT (MODSEQ 3)\r\n", b"* SORT 1 (MODSEQ x)\r\n",
    b"* SORT x\r\n", b"* 3 SORT\r\n",
    b"* THREAD ()\r\n", b"* THREAD (3 (6))\r\n", b"* THREAD ((3))\r\n", b"* THREAD (3(4)(5))\r\n",
    b"* THREAD (3) (4)\r\n", b"* THREAD (3\r\n", b"* THREAD (0)\r\n",
    b"* THREAD " + b"(" * 300 + b"1" + b")" * 300 + b"\r\n",
])
def test_invalid_sort_and_thread_responses(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_response(raw)


def _trees(depth: int) -> st.SearchStrategy[ThreadNode]:
    numbers = st.integers(1, 10_000)
    if depth == 0:
        return st.builds(ThreadNode, numbers)
    child = _trees(depth - 1)
    return st.one_of(st.builds(ThreadNode, numbers),
                     st.builds(lambda k, c: ThreadNode(k, tuple(c)), numbers,
                               st.lists(child, min_size=1, max_size=3)))


_TOP = st.one_of(_trees(3), st.builds(lambda c: ThreadNode(None, tuple(c)),
                                      st.lists(_trees(2), min_size=2, max_size=3)))


@given(st.lists(_TOP, max_size=4))
def test_thread_round_trip(threads: list[ThreadNode]) -> None:
    assert parse_response(format_thread_response(threads)) == ThreadResponse(tuple(threads))


@given(st.lists(st.integers(1, 2**32 - 1), max_size=20), st.none() | st.integers(1, 2**63 - 1))
def test_sort_round_trip(numbers: list[int], modseq: int | None) -> None:
    sent = modseq if numbers else None  # no search-sort-mod-seq without numbers
    assert parse_response(format_sort_response(numbers, modseq=modseq)) == SortResponse(
        tuple(numbers), sent)


# -- commands (RFC 5256 §5, RFC 5267 §3) --------------------------------------------------------

COMMANDS = [
    (b"a SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
     Command("a", "SORT", Sort((("SUBJECT", False), ("DATE", True)), "UTF-8", SearchAll()))),
    (b"a UID SORT RETURN (MIN COUNT) (ARRIVAL) US-ASCII SUBJECT x 1:3",
     Command("a", "UID SORT", Sort((("ARRIVAL", False),), "US-ASCII", SearchAnd((
         SearchHeader("Subject", "x", "SUBJECT"), SearchSet(SequenceSet.parse("1:3"), uid=False))),
         ("MIN", "COUNT")))),
    (b"a THREAD REFERENCES UTF-8 ALL", Command("a", "THREAD", Thread("REFERENCES", "UTF-8",
                                                                      SearchAll()))),
    (b"a UID THREAD ORDEREDSUBJECT US-ASCII ALL",
     Command("a", "UID THREAD", Thread("ORDEREDSUBJECT", "US-ASCII", SearchAll()))),
]


@pytest.mark.parametrize(("line", "expected"), COMMANDS)
def test_sort_and_thread_commands_parse_and_format(line: bytes, expected: Command) -> None:
    assert parse_command(line) == expected
    assert b"".join(format_command(expected)) == line + b"\r\n"


def test_lower_case_and_quoted_charset() -> None:
    assert parse_command(b'a sort (reverse size) "utf-8" all') == Command(
        "a", "SORT", Sort((("SIZE", True),), "UTF-8", SearchAll()))


@pytest.mark.parametrize("line", [
    b"a SORT () UTF-8 ALL", b"a SORT (FOO) UTF-8 ALL", b"a SORT (DATE) UTF-8",
    b"a SORT DATE UTF-8 ALL", b"a SORT (REVERSE) UTF-8 ALL", b"a SORT RETURN (SAVE) (DATE) UTF-8 ALL",
    b"a THREAD REFERENCES", b"a THREAD REFERENCES UTF-8", b"a SORT (DATE)  UTF-8 ALL",
])
def test_malformed_sort_and_thread_commands(line: bytes) -> None:
    assert isinstance(parse_command(line), InvalidCommand)


def _numbers(nodes: tuple[ThreadNode, ...], depth: int = 0) -> list[int]:
    out: list[int] = []
    for t in nodes:
        if t.number is None:
            # dummies survive only at the root, with at least two children (RFC 5256 §3 (3))
            assert depth == 0 and len(t.children) >= 2, t
        else:
            out.append(t.number)
        out += _numbers(t.children, depth + 1)
    return out


_IDS = st.sampled_from(["<a@x>", "<b@x>", "<c@x>", "<d@x>", "<e@x>"])


@given(st.lists(st.tuples(st.sampled_from(["x", "Re: x", "y", "[l] y (fwd)", ""]),
                          st.integers(0, 23), _IDS, st.lists(_IDS, max_size=4)),
                max_size=8))
def test_threads_hold_every_message_once(spec: list[tuple[str, int, str, list[str]]]) -> None:
    msgs = [threaded(i, subject, hour, mid, *refs)
            for i, (subject, hour, mid, refs) in enumerate(spec, 1)]
    every = list(range(1, len(msgs) + 1))
    for threads in (thread_references(msgs), thread_orderedsubject(msgs)):
        assert sorted(_numbers(threads)) == every
        assert parse_response(format_thread_response(threads)) == ThreadResponse(threads)


_SUBJECT_PIECES = st.sampled_from(["Re:", "re", "fwd", ":", "[", "x]", "(fwd)", " ", "\t", "a",
                                   "[fwd:", "]", "Fw", "b c"])


@given(st.lists(_SUBJECT_PIECES, max_size=10).map("".join))
def test_base_subject_is_a_fixed_point(subject: str) -> None:
    # the algorithm removes every artifact it can: a base subject has none left to remove
    base = base_subject(subject).text
    assert base_subject(base).text == base
    assert base == base.strip(" \t")


_CRITERIA = st.lists(st.tuples(st.sampled_from(sorted(SORT_KEYS)), st.booleans()),
                     min_size=1, max_size=4).map(tuple)
_PROGRAMS = st.sampled_from([SearchAll(), SearchHeader("Subject", "a b", "SUBJECT"),
                             SearchAnd((SearchSet(SequenceSet.parse("1:3"), uid=False),
                                        SearchHeader("From", "x", "FROM")))])


@given(_CRITERIA, st.sampled_from(["US-ASCII", "UTF-8"]), _PROGRAMS,
       st.none() | st.lists(st.sampled_from(["MIN", "MAX", "ALL", "COUNT"]), unique=True,
                            max_size=4).map(tuple), st.booleans())
def test_sort_command_round_trip(criteria: tuple[tuple[str, bool], ...], charset: str,
                                 key: SearchKey, opts: tuple[str, ...] | None, uid: bool) -> None:
    command = Command("t1", "UID SORT" if uid else "SORT", Sort(criteria, charset, key, opts))
    assert parse_command(b"".join(format_command(command))) == command


@given(st.sampled_from(["ORDEREDSUBJECT", "REFERENCES", "X-OTHER"]), _PROGRAMS, st.booleans())
def test_thread_command_round_trip(algorithm: str, key: SearchKey, uid: bool) -> None:
    command = Command("t1", "UID THREAD" if uid else "THREAD", Thread(algorithm, "UTF-8", key))
    assert parse_command(b"".join(format_command(command))) == command
