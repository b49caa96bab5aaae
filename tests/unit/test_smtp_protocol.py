"""Tests of the sans-IO SMTP core: replies, enhanced codes, commands, paths, dot-stuffing, states."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.protocol import smtp
from harness.protocol.errors import LocalProtocolError, RemoteProtocolError
from harness.protocol.smtp import (
    DataComplete,
    DataReader,
    EnhancedStatus,
    Reply,
    ReplyParser,
    SessionEvent,
    SessionState,
    data_payload,
    dot_stuff,
    dot_unstuff,
    expected_reply_codes,
    format_command,
    format_path,
    format_reply,
    normalize_crlf,
    parse_path,
    parse_replies,
    transition,
)

# --- feeding helpers (h11's tr(): whole, byte by byte, with trailing data) ---------------------


def _feed_all(data: bytes, *, bytewise: bool) -> list[Reply]:
    parser = ReplyParser()
    replies: list[Reply] = []
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    for chunk in chunks:
        parser.feed(chunk)
        while (reply := parser.next_reply()) is not None:
            replies.append(reply)
    return replies


def tr(data: bytes, expected: list[tuple[int, tuple[str, ...], str | None]]) -> None:
    for bytewise in (False, True):
        replies = _feed_all(data, bytewise=bytewise)
        got = [(r.code, r.lines, str(r.enhanced) if r.enhanced else None) for r in replies]
        assert got == expected, (bytewise, got)
        assert b"".join(r.raw for r in replies) == data
    # trailing data: a partial next reply stays buffered and is not returned
    parser = ReplyParser()
    parser.feed(data + b"250-partial")
    got = []
    while (reply := parser.next_reply()) is not None:
        got.append((reply.code, reply.lines, str(reply.enhanced) if reply.enhanced else None))
    assert got == expected
    assert parser.buffered == b"250-partial"


VALID = [
    (b"250 OK\r\n", [(250, ("OK",), None)]),
    (b"250\r\n", [(250, ("",), None)]),
    (b"250 \r\n", [(250, ("",), None)]),
    (b"220 mx.example ESMTP\r\n", [(220, ("mx.example ESMTP",), None)]),
    (
        b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 STARTTLS\r\n",
        [(250, ("mx.example", "PIPELINING", "SIZE 1000", "STARTTLS"), None)],
    ),
    (b"250-\r\n250 last\r\n", [(250, ("", "last"), None)]),
    (b"250-first\r\n250\r\n", [(250, ("first", ""), None)]),
    (b"535 5.7.8 Authentication credentials invalid\r\n", [(535, ("5.7.8 Authentication credentials invalid",), "5.7.8")]),
    (b"250 2.1.0 Sender ok\r\n", [(250, ("2.1.0 Sender ok",), "2.1.0")]),
    (b"250 2.0.0\r\n", [(250, ("2.0.0",), "2.0.0")]),
    (b"550 2.1.0 class mismatch\r\n", [(550, ("2.1.0 class mismatch",), None)]),
    (b"550 5.1.10 detail two digits\r\n", [(550, ("5.1.10 detail two digits",), "5.1.10")]),
    (b"550 5.01.1 leading zero\r\n", [(550, ("5.01.1 leading zero",), None)]),
    (b"550 5.1.1000 too long\r\n", [(550, ("5.1.1000 too long",), None)]),
    (b"550 5.1.1x glued\r\n", [(550, ("5.1.1x glued",), None)]),
    (b"550-5.1.1 first\r\n550 5.1.1 second\r\n", [(550, ("5.1.1 first", "5.1.1 second"), "5.1.1")]),
    (b"250 tab\there\r\n", [(250, ("tab\there",), None)]),
    (b"250 caf\xc3\xa9\r\n", [(250, ("caf\u00e9",), None)]),
    (b"250 OK\r\n221 bye\r\n", [(250, ("OK",), None), (221, ("bye",), None)]),
    (b"559 highest code\r\n", [(559, ("highest code",), None)]),
    (b"200 lowest code\r\n", [(200, ("lowest code",), None)]),
]


@pytest.mark.parametrize("data,expected", VALID)
def test_valid_replies(data: bytes, expected: list[tuple[int, tuple[str, ...], str | None]]) -> None:
    tr(data, expected)


INVALID = [
    b"250 OK\n",  # bare LF
    b"250-a\n250 b\r\n",
    b"25 OK\r\n",  # two digits
    b"2500 OK\r\n",  # four digits
    b"650 OK\r\n",  # first digit out of range
    b"150 OK\r\n",
    b"260 OK\r\n",  # second digit out of Reply-code
    b"25x OK\r\n",
    b"250OK\r\n",  # no separator
    b"250_OK\r\n",
    b"\r\n",  # empty line
    b"OK\r\n",
    b"250-a\r\n251 b\r\n",  # code changes inside a multiline reply
    b"250 a\x00b\r\n",  # NUL
    b"250 a\rb\r\n",  # stray CR
    b"250 a\x1bb\r\n",
    b"250 " + b"x" * 600 + b"\r\n",  # reply line too long
]


@pytest.mark.parametrize("data", INVALID)
def test_invalid_replies(data: bytes) -> None:
    for bytewise in (False, True):
        with pytest.raises(RemoteProtocolError) as info:
            _feed_all(data, bytewise=bytewise)
        assert info.value.data
    with pytest.raises(RemoteProtocolError):
        _feed_all(data + b"250 OK\r\n", bytewise=False)


def test_line_length_limit_exactly() -> None:
    ok = b"250 " + b"x" * (512 - 6) + b"\r\n"
    assert len(ok) == 512
    tr(ok, [(250, ("x" * 506,), None)])
    with pytest.raises(RemoteProtocolError):
        _feed_all(b"250 " + b"x" * (512 - 5) + b"\r\n", bytewise=False)


def test_unbounded_line_is_refused_without_buffering() -> None:
    parser = ReplyParser()
    parser.feed(b"250 OK\r\n")
    for _ in range(100):
        parser.feed(b"y" * 1000)  # no CRLF ever
    assert len(parser.buffered) <= len(b"250 OK\r\n") + 512
    assert parser.next_reply() == Reply(250, ("OK",), None, b"250 OK\r\n")
    with pytest.raises(RemoteProtocolError) as info:
        parser.next_reply()
    assert info.value.data.startswith(b"yyy")
    with pytest.raises(RemoteProtocolError):  # the parser stays failed
        parser.feed(b"\r\n")


def test_too_many_lines() -> None:
    parser = ReplyParser(max_lines=10)
    parser.feed(b"250-x\r\n" * 10 + b"250 y\r\n")
    with pytest.raises(RemoteProtocolError):
        parser.next_reply()
    parser = ReplyParser(max_lines=10)
    parser.feed(b"250-x\r\n" * 9 + b"250 y\r\n")
    reply = parser.next_reply()
    assert reply is not None and len(reply.lines) == 10


def test_reply_properties() -> None:
    (reply,) = parse_replies(b"452-4.5.3 too many\r\n452 4.5.3 recipients\r\n")
    assert reply.is_transient and not reply.is_positive and not reply.is_permanent
    assert not reply.is_intermediate and reply.klass == 4
    assert reply.text == "4.5.3 too many\n4.5.3 recipients"
    assert reply.enhanced == EnhancedStatus(4, 5, 3)
    assert parse_replies(b"354 go\r\n")[0].is_intermediate
    assert parse_replies(b"550 no\r\n")[0].is_permanent
    assert eval(repr(reply), {"Reply": Reply, "EnhancedStatus": EnhancedStatus}) == reply
    with pytest.raises(RemoteProtocolError):
        parse_replies(b"250-unfinished\r\n")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("5.7.8", EnhancedStatus(5, 7, 8)),
        ("2.0.0", EnhancedStatus(2, 0, 0)),
        ("4.999.999", EnhancedStatus(4, 999, 999)),
        ("5.1.10", EnhancedStatus(5, 1, 10)),
        ("3.0.0", None),
        ("5.01.1", None),
        ("5.1.01", None),
        ("5.1000.1", None),
        ("5.1", None),
        ("5.1.1.", None),
        (" 5.1.1", None),
        ("5.a.1", None),
        ("", None),
    ],
)
def test_enhanced_status_parse(text: str, expected: EnhancedStatus | None) -> None:
    assert EnhancedStatus.parse(text) == expected
    if expected is not None:
        assert str(expected) == text


def test_enhanced_status_validation() -> None:
    with pytest.raises(ValueError):
        EnhancedStatus(3, 0, 0)
    with pytest.raises(ValueError):
        EnhancedStatus(5, 1000, 0)


# --- formatting -----------------------------------------------------------------------------


def test_format_reply() -> None:
    assert format_reply(250, ["OK"]) == b"250 OK\r\n"
    assert format_reply(250, ["a", "b"]) == b"250-a\r\n250 b\r\n"
    assert format_reply(550, ["no"], EnhancedStatus(5, 1, 1)) == b"550 5.1.1 no\r\n"
    assert format_reply(250, []) == b"250\r\n"
    for bad_code in (199, 600, 260, 2500):
        with pytest.raises(LocalProtocolError):
            format_reply(bad_code, ["x"])
    with pytest.raises(LocalProtocolError):
        format_reply(250, ["a\r\nb"])
    with pytest.raises(LocalProtocolError):
        format_reply(250, ["x"], EnhancedStatus(5, 0, 0))
    with pytest.raises(LocalProtocolError):
        format_reply(250, ["x" * 600])


_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x7f")
    .filter(lambda c: c == "\t" or ord(c) >= 32),
    max_size=40,
)


@given(
    code=st.integers(200, 559).filter(lambda c: (c // 10) % 10 <= 5),
    lines=st.lists(_TEXT, min_size=1, max_size=5),
    enhanced=st.booleans(),
)
def test_format_reply_round_trip(code: int, lines: list[str], enhanced: bool) -> None:
    status = EnhancedStatus(code // 100, 1, 2) if enhanced and code // 100 != 3 else None
    wire = format_reply(code, lines, status)
    (reply,) = parse_replies(wire)
    assert reply.code == code
    if status is None:
        assert reply.lines == tuple(lines)
    else:
        assert reply.enhanced == status
        assert reply.lines == tuple(f"{status} {t}" if t else str(status) for t in lines)


def test_format_command() -> None:
    assert format_command("EHLO", "client.example") == b"EHLO client.example\r\n"
    assert format_command("QUIT") == b"QUIT\r\n"
    assert format_command("MAIL", "FROM:<a@b>", "SIZE=10") == b"MAIL FROM:<a@b> SIZE=10\r\n"
    for bad in ("a\r\nRSET", "a\nb", "a\rb"):
        with pytest.raises(LocalProtocolError):
            format_command("VRFY", bad)
    with pytest.raises(LocalProtocolError):
        format_command("BAD VERB")
    with pytest.raises(LocalProtocolError):
        smtp.check_command_line("NOOP\r\nQUIT")
    assert smtp.command_verb("mail FROM:<>") == "MAIL"
    assert smtp.command_verb(b"") == ""


def test_parse_ehlo_keywords() -> None:
    (reply,) = parse_replies(
        b"250-mx.example greets you\r\n250-SIZE 10240000\r\n250-auth PLAIN LOGIN\r\n"
        b"250-8BITMIME\r\n250 STARTTLS\r\n"
    )
    assert smtp.parse_ehlo_keywords(reply) == {
        "SIZE": "10240000",
        "AUTH": "PLAIN LOGIN",
        "8BITMIME": "",
        "STARTTLS": "",
    }


# --- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("<>", ""),
        ("<a@b.example>", "a@b.example"),
        ("<first.last+tag@sub.example.org>", "first.last+tag@sub.example.org"),
        ('<"john doe"@example.com>', '"john doe"@example.com'),
        ('<"quoted\\"quote"@example.com>', '"quoted\\"quote"@example.com'),
        ("<@relay.example,@other.example:user@example.com>", "user@example.com"),
        ("<user@[127.0.0.1]>", "user@[127.0.0.1]"),
        ("<user@[IPv6:::1]>", "user@[IPv6:::1]"),
        ("<Postmaster>", "Postmaster"),
        ("<a-b@x-1.example>", "a-b@x-1.example"),
    ],
)
def test_parse_path_valid(text: str, expected: str) -> None:
    assert parse_path(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a@b.example",
        "<a@b.example",
        "<a@>",
        "<@b.example>",
        "<a b@example.com>",
        "<.a@example.com>",
        "<a..b@example.com>",
        "<a.@example.com>",
        "<a@-example.com>",
        "<a@example-.com>",
        "<a@example..com>",
        "<a@[999.0.0.1]>",
        "<a@[IPv6:zz::1]>",
        '<"unterminated@example.com>',
        "<a@b@example.com>",
        "<user@exämple.com>",
        "<<a@b.example>>",
        "",
    ],
)
def test_parse_path_invalid(text: str) -> None:
    with pytest.raises(smtp.PathSyntaxError):
        parse_path(text)
    with pytest.raises(ValueError):
        parse_path(text)


def test_parse_path_options() -> None:
    with pytest.raises(RemoteProtocolError):
        parse_path("<>", allow_null=False)
    assert parse_path("<用户@例子.example>", utf8=True) == "用户@例子.example"


def test_format_path() -> None:
    assert format_path("") == "<>"
    assert format_path("a@b.example") == "<a@b.example>"
    assert parse_path(format_path("a@b.example")) == "a@b.example"
    for bad in ("a\r\n@b", "<a@b>", "a>b"):
        with pytest.raises(LocalProtocolError):
            format_path(bad)


# --- dot-stuffing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message,payload",
    [
        (b"", b".\r\n"),
        (b"hello", b"hello\r\n.\r\n"),
        (b"hello\r\n", b"hello\r\n.\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n.\r\n"),
        (b".start\r\n", b"..start\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"..two\r\n...three\r\n", b"...two\r\n....three\r\n.\r\n"),
        (b"a\r", b"a\r\n.\r\n"),
        (b"mid.dot\r\n", b"mid.dot\r\n.\r\n"),
    ],
)
def test_dot_stuff(message: bytes, payload: bytes) -> None:
    assert dot_stuff(message) == payload
    assert dot_unstuff(payload[:-3]) == normalize_crlf(message)


@pytest.mark.parametrize(
    "message,normalized",
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),  # CRLF only: returned as it is
        (b"a\r\nb\nc\r\n", b"a\r\nb\r\nc\r\n"),  # one bare LF among CRLFs
        (b"\na\r\n", b"\r\na\r\n"),
        (b"a\r\r\nb\n", b"a\r\r\nb\r\n"),  # CR CR LF holds a CRLF; the last LF is bare
        (b"a\r\n\r\n\n", b"a\r\n\r\n\r\n"),
        (b"a\r\nb", b"a\r\nb\r\n"),
    ],
)
def test_normalize_crlf(message: bytes, normalized: bytes) -> None:
    assert normalize_crlf(message) == normalized


@given(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b"x"]), max_size=30).map(b"".join))
def test_normalize_crlf_line_by_line(message: bytes) -> None:
    # The same rule stated line by line: every LF is preceded by a CR, and a last line without
    # its LF gets one (with a CR unless it ends in one).
    *lines, last = message.split(b"\n")
    expected = b"".join(line + (b"\n" if line.endswith(b"\r") else b"\r\n") for line in lines)
    if last:
        expected += last + (b"\n" if last.endswith(b"\r") else b"\r\n")
    assert normalize_crlf(message) == expected


def test_data_payload_without_stuffing() -> None:
    assert data_payload(b".hidden\n.\nend", stuff=False) == b".hidden\r\n.\r\nend\r\n.\r\n"


@given(st.binary(max_size=300) | st.lists(st.sampled_from([b".", b"\r\n", b"\n", b"\r", b"x", b".."]), max_size=30).map(b"".join))
def test_dot_stuff_round_trip(message: bytes) -> None:
    payload = dot_stuff(message)
    assert payload.endswith(b".\r\n")
    body = payload[:-3]
    assert body == b"" or body.endswith(b"\r\n")
    # the end marker appears only at the very end
    assert (b"\r\n" + payload).find(b"\r\n.\r\n") == len(payload) - 3
    assert dot_unstuff(body) == normalize_crlf(message)
    # a server-side DataReader recovers the same message
    result = DataReader().feed(payload + b"QUIT\r\n")
    assert result == DataComplete(normalize_crlf(message), len(normalize_crlf(message)), False, b"QUIT\r\n")


# --- DataReader -----------------------------------------------------------------------------


def _read_data(data: bytes, *, bytewise: bool, max_size: int | None = None) -> DataComplete | None:
    reader = DataReader(max_size)
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    for i, chunk in enumerate(chunks):
        result = reader.feed(chunk)
        if result is not None:
            rest = b"".join(chunks[i + 1 :])
            return DataComplete(result.message, result.size, result.overflow, result.leftover + rest)
    return None


@pytest.mark.parametrize(
    "wire,message",
    [
        (b".\r\n", b""),
        (b"hello\r\n.\r\n", b"hello\r\n"),
        (b"..dot\r\n.\r\n", b".dot\r\n"),
        (b"a\r\n..\r\n.\r\n", b"a\r\n.\r\n"),
        (b"a\n.\nb\r\n.\r\n", b"a\n.\nb\r\n"),  # bare LF never ends the data
        (b"a\r\n.\nb\r\n.\r\n", b"a\r\n\nb\r\n"),  # ".\n" is a stuffed line, not the end
        (b"a\n.\r\nb\r\n.\r\n", b"a\n.\r\nb\r\n"),
        (b"a\r.\r\n.\r\n", b"a\r.\r\n"),
        (b".x\r\n.\r\n", b"x\r\n"),
    ],
)
def test_data_reader(wire: bytes, message: bytes) -> None:
    for bytewise in (False, True):
        result = _read_data(wire + b"MAIL FROM:<>\r\n", bytewise=bytewise)
        assert result == DataComplete(message, len(message), False, b"MAIL FROM:<>\r\n")


def test_data_reader_incomplete() -> None:
    for wire in (b"", b"abc", b"abc\r\n", b"abc\r\n.", b"abc\r\n.\r", b"abc\n.\n"):
        for bytewise in (False, True):
            assert _read_data(wire, bytewise=bytewise) is None


def test_data_reader_overflow_keeps_reading() -> None:
    line = b"x" * 98 + b"\r\n"
    wire = line * 50 + b".\r\nRSET\r\n"
    for bytewise in (False, True):
        result = _read_data(wire, bytewise=bytewise, max_size=1000)
        assert result == DataComplete(b"", 5000, True, b"RSET\r\n")
    reader = DataReader(max_size=10)
    for _ in range(1000):
        assert reader.feed(b"y" * 1000) is None
        assert reader.overflow
    assert len(reader._pending) <= 1 and not reader._out  # bounded memory
    done = reader.feed(b"\r\n.\r\n")
    assert done is not None and done.overflow and done.size == 1000 * 1000 + 2
    with pytest.raises(LocalProtocolError):
        reader.feed(b"more")
    exact = _read_data(b"123456\r\n.\r\n", bytewise=False, max_size=8)
    assert exact == DataComplete(b"123456\r\n", 8, False, b"")


# --- state machine --------------------------------------------------------------------------

S = SessionState
E = SessionEvent
_SESSION_STATES = (S.GREETED, S.READY, S.MAIL, S.RCPT)


def _expected_next(state: SessionState, event: SessionEvent) -> SessionState | None:
    """An independent restatement of RFC 5321 §3.3/§4.1.4 and RFC 3207 §4.2."""
    if event is E.CONNECTION_CLOSED:
        return S.CLOSED
    if state is S.CONNECTED:
        return {E.GREETING_OK: S.GREETED, E.GREETING_REFUSED: S.REFUSED}.get(event)
    if state is S.REFUSED:
        return {E.REJECTED: S.REFUSED, E.QUIT: S.CLOSED}.get(event)
    if state is S.DATA:
        return S.READY if event is E.DATA_END else None
    if state is S.CLOSED:
        return None
    assert state in _SESSION_STATES
    if event in (E.REJECTED, E.NEUTRAL):
        return state
    if event is E.QUIT:
        return S.CLOSED
    if event is E.HELLO_OK:
        return S.READY
    if event is E.RSET_OK:
        return S.GREETED if state is S.GREETED else S.READY
    if event is E.STARTTLS_OK:
        return S.GREETED
    if event is E.MAIL_OK:
        return S.MAIL if state is S.READY else None
    if event is E.RCPT_OK:
        return S.RCPT if state in (S.MAIL, S.RCPT) else None
    if event is E.DATA_START:
        return S.DATA if state is S.RCPT else None
    return None


@pytest.mark.parametrize("state,event", list(itertools.product(SessionState, SessionEvent)))
def test_every_state_event_pair(state: SessionState, event: SessionEvent) -> None:
    expected = _expected_next(state, event)
    if expected is None:
        with pytest.raises(LocalProtocolError):
            transition(state, event)
    else:
        assert transition(state, event) is expected


def test_event_for_reply() -> None:
    ev = smtp.event_for_reply
    assert ev("", 220) is E.GREETING_OK
    assert ev("", 554) is E.GREETING_REFUSED
    assert ev("", 421) is E.CONNECTION_CLOSED
    assert ev("ehlo", 250) is E.HELLO_OK
    assert ev("HELO", 250) is E.HELLO_OK
    assert ev("EHLO", 550) is E.REJECTED
    assert ev("MAIL", 250) is E.MAIL_OK
    assert ev("MAIL", 530) is E.REJECTED
    assert ev("RCPT", 251) is E.RCPT_OK
    assert ev("RCPT", 450) is E.REJECTED
    assert ev("DATA", 354) is E.DATA_START
    assert ev("DATA", 250) is E.REJECTED  # a 250 to DATA is not a 354
    assert ev(".", 250) is E.DATA_END
    assert ev(".", 554) is E.DATA_END
    assert ev(".", 421) is E.CONNECTION_CLOSED
    assert ev("RSET", 250) is E.RSET_OK
    assert ev("STARTTLS", 220) is E.STARTTLS_OK
    assert ev("STARTTLS", 454) is E.REJECTED
    assert ev("QUIT", 221) is E.QUIT
    assert ev("NOOP", 250) is E.NEUTRAL
    assert ev("AUTH", 235) is E.NEUTRAL
    assert ev("AUTH", 334) is E.NEUTRAL
    assert ev("MAIL", 421) is E.CONNECTION_CLOSED


def test_a_whole_session_walks_the_table() -> None:
    state = S.CONNECTED
    for verb, code in [("", 220), ("EHLO", 250), ("STARTTLS", 220), ("EHLO", 250),
                       ("AUTH", 235), ("MAIL", 250), ("RCPT", 550), ("RCPT", 250),
                       ("DATA", 354), (".", 250), ("MAIL", 250), ("RSET", 250), ("QUIT", 221)]:
        state = transition(state, smtp.event_for_reply(verb, code))
    assert state is S.CLOSED


def test_expected_reply_codes() -> None:
    assert expected_reply_codes(S.READY, "MAIL") == frozenset(
        {250, 552, 451, 452, 550, 553, 503, 455, 555, 500, 501, 421, 530}
    )
    # out of sequence: only failures
    before_ehlo = expected_reply_codes(S.GREETED, "MAIL")
    assert 250 not in before_ehlo and 503 in before_ehlo
    assert expected_reply_codes(S.READY, "DATA") & {354} == frozenset()
    assert {503, 554} <= expected_reply_codes(S.MAIL, "DATA")
    assert 354 in expected_reply_codes(S.RCPT, "DATA")
    assert expected_reply_codes(S.RCPT, "RCPT") >= {250, 251, 550}
    assert 503 in expected_reply_codes(S.MAIL, "AUTH") and 235 not in expected_reply_codes(S.MAIL, "AUTH")
    assert 235 in expected_reply_codes(S.READY, "auth")
    assert expected_reply_codes(S.GREETED, "NOOP") == frozenset({250, 500, 501, 421})
    assert expected_reply_codes(S.MAIL, "QUIT") == frozenset({221, 500, 501, 421})
    assert expected_reply_codes(S.CONNECTED, smtp.GREETING) == frozenset({220, 554, 421})
    assert 250 in expected_reply_codes(S.DATA, smtp.END_DATA)
    assert expected_reply_codes(S.REFUSED, "EHLO") == frozenset({503, 500, 501, 421})
    assert 502 in expected_reply_codes(S.READY, "XFOO")
    for state, verb in [(S.CONNECTED, "EHLO"), (S.DATA, "RSET"), (S.CLOSED, "NOOP"),
                        (S.READY, smtp.GREETING)]:
        with pytest.raises(LocalProtocolError):
            expected_reply_codes(state, verb)


def test_transition_rendering() -> None:
    table = smtp.transitions_markdown()
    assert table.count("\n") == len(smtp.TRANSITIONS) + 2
    assert "| READY | MAIL_OK (MAIL accepted) | MAIL |" in table
    diagram = smtp.transitions_mermaid()
    assert diagram.startswith("stateDiagram-v2")
    assert "RCPT --> DATA: DATA_START" in diagram


def test_reply_code_constants_carry_their_number() -> None:
    names = [n for n in dir(smtp) if n[:1] == "C" and n[1:4].isdigit()]
    assert len(names) >= 30
    for name in names:
        assert getattr(smtp, name) == int(name[1:4])


def test_protocol_core_does_not_import_asyncio() -> None:
    core = Path(smtp.__file__).parent  # the harness/protocol/smtp package
    for path in (*sorted(core.glob("*.py")), core.with_name("sasl.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "asyncio" for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "asyncio"
