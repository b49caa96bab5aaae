"""ESEARCH, SEARCHRES, WITHIN and CONTEXT=SEARCH in the sans-IO core: the command grammar
(RETURN options, PARTIAL, OLDER/YOUNGER, "$", CANCELUPDATE) both ways, and the typed ESEARCH
return data ADDTO, REMOVEFROM and PARTIAL, fed whole, byte by byte and followed by more."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.protocol.errors import RemoteProtocolError
from harness.protocol.imap.command_values import CancelUpdate, SearchWithin
from harness.protocol.imap.commands import (
    Command,
    Copy,
    Fetch,
    FetchItem,
    InvalidCommand,
    Search,
    SearchAll,
    SearchAnd,
    SearchFlag,
    SearchOr,
    SearchSet,
    UidExpunge,
    format_command,
    parse_command,
)
from harness.protocol.imap.responses import (
    ContextUpdate,
    ESearch,
    PartialResult,
    Response,
    ResponseParser,
    parse_response,
)
from harness.protocol.imap.seqset import SequenceSet

S = SequenceSet.parse
SAVED = SequenceSet((), saved=True)

COMMANDS: list[tuple[bytes, Command]] = [
    # RFC 4731 §3.1 / RFC 5182 §3 / RFC 5267 §5: the search return options.
    (b"a SEARCH RETURN (MIN MAX ALL COUNT) FLAGGED",
     Command("a", "SEARCH", Search(None, SearchFlag("\\Flagged", True),
                                   ("MIN", "MAX", "ALL", "COUNT")))),
    (b"a SEARCH RETURN () ALL", Command("a", "SEARCH", Search(None, SearchAll(), ()))),
    (b"a UID SEARCH RETURN (SAVE MIN) ALL",
     Command("a", "UID SEARCH", Search(None, SearchAll(), ("SAVE", "MIN")))),
    (b"a UID SEARCH RETURN (UPDATE CONTEXT COUNT) ALL",
     Command("a", "UID SEARCH", Search(None, SearchAll(), ("UPDATE", "CONTEXT", "COUNT")))),
    (b"a SEARCH RETURN (PARTIAL 500:400 UPDATE) ALL",
     Command("a", "SEARCH", Search(None, SearchAll(), ("PARTIAL", "UPDATE"), (500, 400)))),
    # RFC 5032 §3: search-key =/ ( "OLDER" / "YOUNGER" ) SP nz-number
    (b"a SEARCH OLDER 3600 YOUNGER 259200",
     Command("a", "SEARCH", Search(None, SearchAnd((SearchWithin(True, 3600),
                                                    SearchWithin(False, 259200)))))),
    # RFC 5182 §3: sequence-set =/ "$", in every command that takes one.
    (b"a SEARCH $", Command("a", "SEARCH", Search(None, SearchSet(SAVED, uid=False)))),
    (b"a UID SEARCH UID $ OR $ 1:3",
     Command("a", "UID SEARCH", Search(None, SearchAnd((
         SearchSet(SAVED, uid=True),
         SearchOr(SearchSet(SAVED, uid=False), SearchSet(S("1:3"), uid=False))))))),
    (b"a FETCH $ (UID)", Command("a", "FETCH", Fetch(SAVED, (FetchItem("UID"),)))),
    (b"a UID COPY $ Junk", Command("a", "UID COPY", Copy(SAVED, "Junk"))),
    (b"a UID EXPUNGE $", Command("a", "UID EXPUNGE", UidExpunge(SAVED))),
    # RFC 5267 §5: command-select =/ "CANCELUPDATE" 1*(SP quoted)
    (b'a CANCELUPDATE "B01" "B02"', Command("a", "CANCELUPDATE", CancelUpdate(("B01", "B02")))),
]


@pytest.mark.parametrize(("line", "expected"), COMMANDS, ids=[c[0].decode() for c in COMMANDS])
def test_commands_parse_and_format(line: bytes, expected: Command) -> None:
    assert parse_command(line) == expected
    assert b"".join(format_command(expected)) == line + b"\r\n"


INVALID_COMMANDS = [
    b"a SEARCH RETURN (PARTIAL 1:*) ALL",  # partial-range "cannot contain "*""
    b"a SEARCH RETURN (PARTIAL 0:5) ALL",  # nz-number
    b"a SEARCH RETURN (PARTIAL 5) ALL",
    b"a SEARCH RETURN (ALL PARTIAL 1:5) ALL",  # RFC 5267 §4.4: one PARTIAL or one ALL
    b"a SEARCH RETURN (PARTIAL 1:5 PARTIAL 6:9) ALL",
    b"a SEARCH RETURN (BOGUS) ALL",
    b"a SEARCH YOUNGER 0",  # nz-number
    b"a SEARCH OLDER",
    b"a FETCH $,1 (UID)",  # "$" stands alone
    b"a CANCELUPDATE",
    b"a CANCELUPDATE B01",  # quoted, not an atom
]


@pytest.mark.parametrize("line", INVALID_COMMANDS, ids=[c.decode() for c in INVALID_COMMANDS])
def test_invalid_commands(line: bytes) -> None:
    parsed = parse_command(line)
    assert isinstance(parsed, InvalidCommand) and parsed.tag == "a"


_OPTION_LISTS = st.lists(st.sampled_from(["MIN", "MAX", "COUNT", "SAVE", "CONTEXT", "UPDATE"]),
                         unique=True, max_size=4)
_RANGES = st.tuples(st.integers(1, 2**32 - 1), st.integers(1, 2**32 - 1))
_KEYS = st.one_of(st.builds(SearchWithin, st.booleans(), st.integers(1, 2**32 - 1)),
                  st.builds(SearchSet, st.just(SAVED), st.booleans()))


@given(_OPTION_LISTS, st.one_of(st.none(), st.just("ALL"), _RANGES), st.lists(_KEYS, min_size=1,
                                                                                 max_size=3))
def test_search_return_round_trip(options: list[str], extra: str | tuple[int, int] | None,
                                  keys: list[SearchWithin | SearchSet]) -> None:
    opts = [*options, "ALL"] if extra == "ALL" else [*options, "PARTIAL"] if extra else options
    partial = extra if isinstance(extra, tuple) else None
    key = keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))
    command = Command("A1", "UID SEARCH", Search(None, key, tuple(opts), partial))
    assert parse_command(b"".join(format_command(command))) == command


def test_saved_sequence_set() -> None:
    assert S("$") == SAVED and SAVED.format() == "$"
    assert list(SAVED.iter(10)) == [] and not SAVED.contains(1, 10)


RESPONSES: list[tuple[bytes, ESearch]] = [
    # RFC 5267 §4.3.3 examples: "the following three responses are equivalent"
    (b'* ESEARCH (TAG "C01") UID ADDTO (1 2733 1 2732 1 2731)\r\n',
     ESearch("C01", True, {}, (ContextUpdate("ADDTO", 1, S("2733")),
                               ContextUpdate("ADDTO", 1, S("2732")),
                               ContextUpdate("ADDTO", 1, S("2731"))))),
    (b'* ESEARCH (TAG "C01") UID ADDTO (1 2733) ADDTO (1 2731:2732)\r\n',
     ESearch("C01", True, {}, (ContextUpdate("ADDTO", 1, S("2733")),
                               ContextUpdate("ADDTO", 1, S("2731:2732"))))),
    (b'* ESEARCH (TAG "B01") UID ADDTO (0 32768:32769)\r\n',
     ESearch("B01", True, {}, (ContextUpdate("ADDTO", 0, S("32768:32769")),))),
    # §4.3.4
    (b'* ESEARCH (TAG "B01") UID REMOVEFROM (0 32768)\r\n',
     ESearch("B01", True, {}, (ContextUpdate("REMOVEFROM", 0, S("32768")),))),
    (b'* ESEARCH (TAG "B01") REMOVEFROM (0 2,4) ADDTO (0 5)\r\n',
     ESearch("B01", False, {}, (ContextUpdate("REMOVEFROM", 0, S("2,4")),
                                ContextUpdate("ADDTO", 0, S("5"))))),
    # §4.4
    (b'* ESEARCH (TAG "A04") UID PARTIAL (24000:24500 NIL)\r\n',
     ESearch("A04", True, {"PARTIAL": PartialResult(24000, 24500, None)})),
    (b'* ESEARCH (TAG "A02") UID PARTIAL (23500:24000 23500:23764) COUNT 264\r\n',
     ESearch("A02", True, {"PARTIAL": PartialResult(23500, 24000, S("23500:23764")),
                           "COUNT": 264})),
]

TRAILER = b"* OK trailing\r\n"


def _parse_all(chunks: list[bytes]) -> list[Response]:
    parser = ResponseParser(1_000_000, 1_000_000)
    out: list[Response] = []
    for chunk in chunks:
        parser.feed(chunk)
        while (response := parser.next_response()) is not None:
            out.append(response)
    return out


@pytest.mark.parametrize(("raw", "expected"), RESPONSES, ids=[r[0][:50].decode() for r in RESPONSES])
def test_esearch_return_data(raw: bytes, expected: ESearch) -> None:
    assert parse_response(raw) == expected
    assert _parse_all([raw[i:i + 1] for i in range(len(raw))]) == [expected]
    assert _parse_all([raw + TRAILER])[0] == expected


INVALID_RESPONSES = [
    b'* ESEARCH (TAG "B01") UID ADDTO ()\r\n',
    b'* ESEARCH (TAG "B01") UID ADDTO (1)\r\n',
    b'* ESEARCH (TAG "B01") UID ADDTO (1 2\r\n',
    b'* ESEARCH (TAG "B01") UID REMOVEFROM (x 2)\r\n',
    b'* ESEARCH (TAG "B01") UID REMOVEFROM 0 2\r\n',
    b'* ESEARCH (TAG "A04") PARTIAL (0:5 NIL)\r\n',
    b'* ESEARCH (TAG "A04") PARTIAL (1:* 1)\r\n',
    b'* ESEARCH (TAG "A04") PARTIAL (1:5)\r\n',
    b'* ESEARCH (TAG "A04") PARTIAL (1:5 0)\r\n',
]


@pytest.mark.parametrize("raw", INVALID_RESPONSES, ids=[r[:50].decode() for r in INVALID_RESPONSES])
def test_invalid_esearch_return_data(raw: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_response(raw)
