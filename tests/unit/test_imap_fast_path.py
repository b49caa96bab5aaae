"""The response parser's fast path against the full grammar: for the shapes it reads (FETCH of
UID, FLAGS and MODSEQ; EXISTS, RECENT, EXPUNGE; tagged OK/NO/BAD with no code or a bare one) it
gives the grammar's very values; for near misses it declines and the grammar's verdict stands;
for anything at all it never accepts what the grammar refuses. Also the framing of
`ResponseParser` (lines that end in "}" or not) and the blocking client's ring, split with a
limit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.clients.blocking import _RING_LINES_PER_CHUNK, Ring
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.imap.chars import ATOM_CHAR, TAG_CHAR, TEXT_CHAR
from harness.protocol.imap.response_tokens import STRICT_CODES
from harness.protocol.imap.responses import (
    MAX_NUMBER,
    MAX_NUMBER64,
    Exists,
    Expunge,
    Fetch,
    Recent,
    Response,
    ResponseCode,
    ResponseParser,
    Tagged,
    _parse,
    _parse_fast,
    _parse_grammar,
)


def _verdict(parse: object, raw: bytes) -> tuple[str, object]:
    """A parser's value, or its error (type and message): what a caller sees."""
    assert callable(parse)
    try:
        return "value", parse(raw)
    except RemoteProtocolError as exc:
        return type(exc).__name__, (str(exc), exc.data)


def _same_as_grammar(raw: bytes) -> Response:
    """*raw* is read by the fast path, to the grammar's value (items in the grammar's order)."""
    fast = _parse_fast(raw)
    full = _parse_grammar(raw)
    assert fast is not None, raw
    assert fast == full, raw
    assert type(fast) is type(full)
    if isinstance(fast, Fetch):
        assert isinstance(full, Fetch)
        assert list(fast.items.items()) == list(full.items.items())
        for key, value in fast.items.items():
            assert type(value) is type(full.items[key])
    return fast


# -- strategies of valid responses ---------------------------------------------------------------

_ATOM_CHARS = "".join(sorted(chr(c) for c in ATOM_CHAR))
_TAG_CHARS = "".join(sorted(chr(c) for c in TAG_CHAR))
_TEXT_CHARS = "".join(sorted(chr(c) for c in TEXT_CHAR))
_SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")

atoms = st.text(_ATOM_CHARS, min_size=1, max_size=12)
flags = st.one_of(st.sampled_from(_SYSTEM_FLAGS), atoms, atoms.map(lambda a: "\\" + a))
numbers = st.one_of(st.sampled_from([0, 1, 9, 10, 99, MAX_NUMBER - 1, MAX_NUMBER]),
                    st.integers(0, MAX_NUMBER))
nz_numbers = numbers.filter(lambda n: n > 0)
modseqs = st.one_of(st.sampled_from([0, 1, 2**32, MAX_NUMBER64 - 1, MAX_NUMBER64]),
                    st.integers(0, MAX_NUMBER64))


@st.composite
def fetch_items(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(("UID", "FLAGS", "MODSEQ")))
    if kind == "UID":
        return b"UID %d" % draw(nz_numbers)
    if kind == "MODSEQ":
        return b"MODSEQ (%d)" % draw(modseqs)
    return b"FLAGS (" + " ".join(draw(st.lists(flags, max_size=6))).encode("ascii") + b")"


fetches = st.builds(
    lambda seq, items: b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n",
    nz_numbers, st.lists(fetch_items(), min_size=1, max_size=6))
numbered = st.one_of(
    st.builds(lambda n: b"* %d EXISTS\r\n" % n, numbers),
    st.builds(lambda n: b"* %d RECENT\r\n" % n, numbers),
    st.builds(lambda n: b"* %d EXPUNGE\r\n" % n, nz_numbers))
code_names = st.from_regex(r"\A[A-Z][A-Z0-9-]{0,15}\Z").filter(lambda n: n not in STRICT_CODES)
texts = st.text(_TEXT_CHARS, max_size=40)


@st.composite
def taggeds(draw: st.DrawFn) -> bytes:
    head = draw(st.text(_TAG_CHARS, min_size=1, max_size=8)) + " " + draw(
        st.sampled_from(("OK", "NO", "BAD"))) + " "
    if draw(st.booleans()):
        code = "[" + draw(code_names) + "]"
        rest = draw(st.one_of(st.just(""), texts.map(lambda t: " " + t)))
        return (head + code + rest).encode("ascii") + b"\r\n"
    return (head + draw(texts.filter(lambda t: not t.startswith("[")))).encode("ascii") + b"\r\n"


common = st.one_of(fetches, numbered, taggeds())


@settings(max_examples=600, deadline=None)
@given(common)
def test_the_fast_path_gives_the_grammars_values(raw: bytes) -> None:
    _same_as_grammar(raw)


@settings(max_examples=200, deadline=None)
@given(st.lists(common, min_size=1, max_size=8))
def test_the_parser_returns_the_grammars_values(responses: list[bytes]) -> None:
    parser = ResponseParser()
    parser.feed(b"".join(responses))
    for raw in responses:
        assert parser.next_response() == _parse_grammar(raw)
        assert parser.last_raw == raw
    assert parser.next_response() is None and parser.buffered == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"* 1 FETCH (UID 1 FLAGS ())\r\n", Fetch(1, {"UID": 1, "FLAGS": ()})),
        (b"* 7 FETCH (FLAGS (\\Seen $Load0 \\Recent) UID 12 MODSEQ (90))\r\n",
         Fetch(7, {"FLAGS": ("\\Seen", "$Load0", "\\Recent"), "UID": 12, "MODSEQ": 90})),
        (b"* 4294967295 FETCH (UID 4294967295 MODSEQ (9223372036854775807))\r\n",
         Fetch(MAX_NUMBER, {"UID": MAX_NUMBER, "MODSEQ": MAX_NUMBER64})),
        (b"* 1 FETCH (MODSEQ (0))\r\n", Fetch(1, {"MODSEQ": 0})),
        # A duplicated item: the grammar keeps the last value, in the first one's place.
        (b"* 2 FETCH (UID 3 FLAGS (a) UID 4)\r\n", Fetch(2, {"UID": 4, "FLAGS": ("a",)})),
        (b"* 2 FETCH (FLAGS (a[b x.y))\r\n", Fetch(2, {"FLAGS": ("a[b", "x.y")})),
        (b"* 0 EXISTS\r\n", Exists(0)),
        (b"* 4294967295 RECENT\r\n", Recent(MAX_NUMBER)),
        (b"* 5 EXPUNGE\r\n", Expunge(5)),
        (b"L4 OK UID FETCH completed\r\n", Tagged("L4", "OK", None, "UID FETCH completed")),
        (b"A1 NO \r\n", Tagged("A1", "NO", None, "")),
        (b"a] BAD x [y]\r\n", Tagged("a]", "BAD", None, "x [y]")),
        (b"L3 OK [READ-WRITE] SELECT completed\r\n",
         Tagged("L3", "OK", ResponseCode("READ-WRITE"), "SELECT completed")),
        (b"L3 NO [TRYCREATE]\r\n", Tagged("L3", "NO", ResponseCode("TRYCREATE"), "")),
        (b"L3 NO [TRYCREATE] \r\n", Tagged("L3", "NO", ResponseCode("TRYCREATE"), "")),
        # text = 1*TEXT-CHAR, and SP is one: the text may begin with it.
        (b"L3 NO [TRYCREATE]  x\r\n", Tagged("L3", "NO", ResponseCode("TRYCREATE"), " x")),
        (b"L3 NO  x\r\n", Tagged("L3", "NO", None, " x")),
    ],
)
def test_the_common_shapes_take_the_fast_path(raw: bytes, expected: Response) -> None:
    assert _same_as_grammar(raw) == expected


# -- near misses ---------------------------------------------------------------------------------

NEAR_MISSES = [
    # case and spacing: the grammar reads keywords in any case; the fast path declines.
    b"* 1 fetch (UID 1)\r\n",
    b"* 1 FETCH (uid 1)\r\n",
    b"* 1 FETCH (Flags ())\r\n",
    b"* 3 exists\r\n",
    b"A1 ok done\r\n",
    b"A1 OK [read-write] done\r\n",
    b"*  1 EXISTS\r\n",
    b"* 1  EXISTS\r\n",
    b"* 1 EXISTS \r\n",
    b"* 1 FETCH  (UID 1)\r\n",
    b"* 1 FETCH (UID  1)\r\n",
    b"* 1 FETCH (UID 1 )\r\n",
    b"* 1 FETCH ( UID 1)\r\n",
    b"* 1 FETCH (FLAGS ( \\Seen))\r\n",
    b"* 1 FETCH (FLAGS (\\Seen ))\r\n",
    b"* 1 FETCH (FLAGS (\\Seen  a))\r\n",
    b"A1  OK done\r\n",
    b"A1 OK\r\n",
    b"A1\tOK done\r\n",
    # bad atoms and flags
    b"* 1 FETCH (FLAGS (\\))\r\n",
    b"* 1 FETCH (FLAGS (\\\\Seen))\r\n",
    b"* 1 FETCH (FLAGS (\\*))\r\n",
    b"* 1 FETCH (FLAGS (a%b))\r\n",
    b"* 1 FETCH (FLAGS (a*))\r\n",
    b"* 1 FETCH (FLAGS (a]b))\r\n",
    b"* 1 FETCH (FLAGS (\"a\"))\r\n",
    b"* 1 FETCH (FLAGS (a{b))\r\n",
    b"* 1 FETCH (FLAGS (a\x01b))\r\n",
    b"* 1 FETCH (FLAGS (a\x7fb))\r\n",
    b"* 1 FETCH (FLAGS (caf\xc3\xa9))\r\n",
    b"* 1 FETCH (FLAGS ((a)))\r\n",
    b"* 1 FETCH (FLAGS (a) (b))\r\n",
    # zero, leading zeros and numbers out of range
    b"* 0 FETCH (UID 1)\r\n",
    b"* 0 EXPUNGE\r\n",
    b"* 00 EXPUNGE\r\n",
    b"* 01 EXPUNGE\r\n",
    b"* 01 FETCH (UID 1)\r\n",
    b"* 007 EXISTS\r\n",
    b"* 1 FETCH (UID 0)\r\n",
    b"* 1 FETCH (UID 01)\r\n",
    b"* 1 FETCH (MODSEQ (01))\r\n",
    b"* 4294967296 EXISTS\r\n",
    b"* 4294967296 FETCH (UID 1)\r\n",
    b"* 1 FETCH (UID 4294967296)\r\n",
    b"* 1 FETCH (UID 99999999999)\r\n",
    b"* 1 FETCH (MODSEQ (9223372036854775808))\r\n",
    b"* 1 FETCH (MODSEQ (99999999999999999999))\r\n",
    b"* 99999999999999999999 EXISTS\r\n",
    b"* -1 EXISTS\r\n",
    b"* 1 FETCH (MODSEQ 5)\r\n",
    b"* 1 FETCH (MODSEQ (5 6))\r\n",
    b"* 1 FETCH (MODSEQ ())\r\n",
    # missing or extra parentheses, empty msg-att, other items
    b"* 1 FETCH UID 1\r\n",
    b"* 1 FETCH (UID 1\r\n",
    b"* 1 FETCH UID 1)\r\n",
    b"* 1 FETCH ((UID 1))\r\n",
    b"* 1 FETCH ()\r\n",
    b"* 1 FETCH (FLAGS \\Seen)\r\n",
    b"* 1 FETCH (FLAGS (\\Seen)\r\n",
    b"* 1 FETCH (UID (1))\r\n",
    b"* 1 FETCH (UID 1 RFC822.SIZE 5)\r\n",
    b"* 1 FETCH (UID 1 BODY[] {3}\r\nabc)\r\n",
    b"* 1 FETCH (UIDX 1)\r\n",
    b"* 1 FETCH (FLAGS() UID 1)\r\n",
    # trailing junk, bare endings
    b"* 1 FETCH (UID 1) \r\n",
    b"* 1 FETCH (UID 1)x\r\n",
    b"* 1 FETCH (UID 1)\r\r\n",
    b"* 1 EXISTSX\r\n",
    b"* 1 EXISTS\n",
    b"* 1 EXISTS",
    b"* 1 EXISTS\r\n\r\n",
    b"* 1 EXISTS\r\nA1 OK done\r\n",
    b"A1 OK done\r\r\n",
    b"A1 OK done\r\nx\r\n",
    b"A1 OK done\x00\r\n",
    b"A1 OK caf\xc3\xa9\r\n",
    b"A1 OK caf\xe9\r\n",
    # tags and statuses
    b"+ OK done\r\n",
    b"+A1 OK done\r\n",
    b"*A1 OK done\r\n",
    b"A+1 OK done\r\n",
    b"A(1 OK done\r\n",
    b"A1 BYE done\r\n",
    b"A1 PREAUTH done\r\n",
    b"A1 OKAY done\r\n",
    b" OK done\r\n",
    # response codes: text that begins with "[", codes with a syntax of their own, codes
    # followed by no SP, codes with arguments
    b"A1 OK [done\r\n",
    b"A1 OK []\r\n",
    b"A1 OK [READ-WRITE]x\r\n",
    b"A1 OK [READ.WRITE] done\r\n",
    b"A1 OK [1A] done\r\n",
    b"A1 OK [ALERT x] done\r\n",
    b"A1 OK [UIDNEXT 5] done\r\n",
    b"A1 OK [UIDNEXT] done\r\n",
    b"A1 OK [CAPABILITY] done\r\n",
    b"A1 OK [BADCHARSET] done\r\n",
    b"A1 OK [HIGHESTMODSEQ] done\r\n",
    b"A1 OK [PERMANENTFLAGS] done\r\n",
    b"A1 OK [APPENDUID] done\r\n",
    b"A1 OK [COPYUID] done\r\n",
    b"A1 OK [UNSEEN] done\r\n",
    b"A1 OK [UIDVALIDITY] done\r\n",
    # other responses entirely
    b"* OK [ALERT] hello\r\n",
    b"* FLAGS (\\Seen)\r\n",
    b"* 3 FETCHED (UID 1)\r\n",
    b"* SEARCH 1 2\r\n",
    b"+ \r\n",
]


@pytest.mark.parametrize("raw", NEAR_MISSES)
def test_near_misses_go_to_the_grammar(raw: bytes) -> None:
    assert _parse_fast(raw) is None
    assert _verdict(_parse, raw) == _verdict(_parse_grammar, raw)


@pytest.mark.parametrize("name", sorted(STRICT_CODES))
def test_codes_with_a_syntax_of_their_own_go_to_the_grammar(name: str) -> None:
    for raw in (b"A1 OK [%s]\r\n" % name.encode(), b"A1 NO [%s] text\r\n" % name.encode()):
        assert _parse_fast(raw) is None
        assert _verdict(_parse, raw) == _verdict(_parse_grammar, raw)


def _mutations(raw: bytes) -> st.SearchStrategy[bytes]:
    at = st.integers(0, max(len(raw) - 1, 0))
    octet = st.one_of(st.sampled_from(b" ()[]{}\\\"*%019aA\r\n\x00\x7f\xff"), st.integers(0, 255))
    return st.one_of(
        st.builds(lambda i, b: raw[:i] + bytes([b]) + raw[i + 1:], at, octet),  # replace
        st.builds(lambda i, b: raw[:i] + bytes([b]) + raw[i:], at, octet),  # insert
        st.builds(lambda i: raw[:i] + raw[i + 1:], at),  # delete
        st.builds(lambda i: raw[:i] + raw[i:i + 1].swapcase() + raw[i + 1:], at),  # case
        st.builds(lambda i: raw[:i] + raw[i:i + 1] * 2 + raw[i + 1:], at),  # double
        st.builds(lambda junk: raw[:-2] + junk + b"\r\n", st.binary(min_size=1, max_size=4)),
    )


@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_the_fast_path_never_accepts_what_the_grammar_refuses(data: st.DataObject) -> None:
    raw = data.draw(common.flatmap(_mutations))
    fast = _parse_fast(raw)
    full = _verdict(_parse_grammar, raw)
    if fast is not None:
        assert full == ("value", fast), raw
    assert _verdict(_parse, raw) == full


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80).map(lambda b: b + b"\r\n"))
def test_the_fast_path_on_any_octets(raw: bytes) -> None:
    fast = _parse_fast(raw)
    if fast is not None:
        assert _verdict(_parse_grammar, raw) == ("value", fast)


# -- framing -------------------------------------------------------------------------------------


def _responses(parser: ResponseParser) -> list[Response]:
    found: list[Response] = []
    while (response := parser.next_response()) is not None:
        found.append(response)
    return found


@pytest.mark.parametrize(
    ("stream", "count"),
    [
        (b"* 1 FETCH (UID 1 BODY[] {3}\r\nabc)\r\nA1 OK done {3}\r\n", 2),
        (b"* 1 FETCH (BODY[] {5}\r\n{5}\r\n UID 2)\r\n* 2 EXISTS\r\n", 2),
        (b"* OK text {5}\r\n* LIST () \"/\" {3}\r\nabc\r\nA1 NO quota {12}\r\n", 3),
        (b"* 1 FETCH (BINARY[] ~{3}\r\nab} UID 3)\r\n* 1 FETCH (UID 1 FLAGS (a))\r\n", 2),
    ],
)
def test_framing_byte_by_byte_gives_what_the_whole_gives(stream: bytes, count: int) -> None:
    whole, single = ResponseParser(), ResponseParser()
    whole.feed(stream)
    expected = _responses(whole)
    got: list[Response] = []
    for i in range(len(stream)):
        single.feed(stream[i:i + 1])
        got.extend(_responses(single))
    assert got == expected and len(expected) == count
    assert whole.buffered == single.buffered == 0


def test_a_line_after_a_literal_ending_in_a_brace_announces_nothing() -> None:
    # The literal's last octet is "}" and the line after it is empty: the response ends there
    # (and the grammar refuses it), as before the framing looked at the line's last octet.
    parser = ResponseParser()
    parser.feed(b"* 1 FETCH (BODY[] {3}\r\n{1}\r\n* 2 EXISTS\r\n")
    with pytest.raises(RemoteProtocolError):
        parser.next_response()
    assert parser.last_raw == b"* 1 FETCH (BODY[] {3}\r\n{1}\r\n"
    assert parser.pending == b"* 2 EXISTS\r\n"


# -- the blocking client's ring ------------------------------------------------------------------


def _ring_lines_split_whole(data: bytes) -> tuple[list[bytes], int]:
    """What the ring kept before it split with a limit: every line split, the first kept."""
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    more = max(len(lines) - _RING_LINES_PER_CHUNK, 0)
    return lines[:_RING_LINES_PER_CHUNK], more


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"", b"a", b"\r", b"* 1 EXISTS\r", b"\xff"]), max_size=20),
       st.booleans())
def test_the_ring_splits_no_more_than_it_keeps(pieces: list[bytes], final_lf: bool) -> None:
    data = b"\n".join(pieces) + (b"\n" if final_lf else b"")
    ring = Ring("r", size=100)
    ring.record("S:", data)
    kept, more = _ring_lines_split_whole(data)
    texts = [line.split(" S: ", 1)[1] for line in ring.lines]
    expected = [line.rstrip(b"\r").decode("utf-8", "replace") for line in kept]
    if more:
        expected.append(f"... {more} more lines ({len(data)} octets in this chunk)")
    assert texts == expected
