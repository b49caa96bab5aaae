"""The server role of the SMTP core (harness/protocol/smtp/server.py, codes.py, state.py): tables
of (state, input bytes, expected events or replies), each input fed whole, byte by byte and with
trailing data (h11's ``tr()``)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from harness.protocol.smtp import MAX_COMMAND_LINE, SessionState, codes, in_sequence, parse_replies
from harness.protocol.smtp.replies import Reply
from harness.protocol.smtp.server import (
    MAX_BUFFERED_LINE,
    ArgumentError,
    BadCommandLine,
    Command,
    DataCollector,
    LineTooLong,
    PathArgument,
    ServerParser,
    parse_mailbox_argument,
    parse_path_argument,
    unclosed_path,
)

Take = Callable[[ServerParser], object]


def _limit(verb: str) -> int:
    return MAX_COMMAND_LINE + 26 if verb == "MAIL" else MAX_COMMAND_LINE


def _command(parser: ServerParser) -> object:
    return parser.next_command(_limit)


def _line(parser: ServerParser) -> object:
    return parser.next_line()


def _drain(parser: ServerParser, take: Take) -> list[object]:
    out = []
    while (event := take(parser)) is not None:
        out.append(event)
    return out


def tr(take: Take, data: bytes, expected: list[object], *, utf8: bool = True) -> None:
    """*data* gives *expected*, fed whole, one byte at a time, and followed by more input."""
    whole = ServerParser(utf8=utf8)
    whole.receive_data(data)
    assert _drain(whole, take) == expected

    bytewise = ServerParser(utf8=utf8)
    events: list[object] = []
    for i in range(len(data)):
        bytewise.receive_data(data[i : i + 1])
        events += _drain(bytewise, take)
    assert events == expected

    trailing = ServerParser(utf8=utf8)
    trailing.receive_data(data + b"NOOP")  # a command not yet ended: no event, still buffered
    assert _drain(trailing, take) == expected
    assert trailing.buffered == 4


COMMAND_CASES: list[tuple[bytes, list[object]]] = [
    (b"NOOP\r\n", [Command("NOOP", None, 4)]),
    (b"noop  with spaces \r\n", [Command("NOOP", "with spaces", 18)]),
    (b"MAIL FROM:<a@example.org>\r\n", [Command("MAIL", "FROM:<a@example.org>", 25)]),
    # a bare LF ends a command line too, and the CRs before it are not part of it
    (b"RSET\n", [Command("RSET", None, 4)]),
    (b"RSET\r\r\n", [Command("RSET", None, 4)]),
    (b"EHLO a\r\nMAIL FROM:<>\r\n", [Command("EHLO", "a", 6), Command("MAIL", "FROM:<>", 12)]),
    (b"RCPT TO:<j\xc3\xb6rg@example.org>\r\n", [Command("RCPT", "TO:<jörg@example.org>", 27)]),
    (b"\r\n", [BadCommandLine(codes.R500_UNPARSABLE)]),
    (b"N\xffOP\r\n", [BadCommandLine(codes.R500_UNPARSABLE)]),
    # RFC 5321 §4.5.3.1.4: 512 octets with the CRLF; MAIL 26 more after SIZE (RFC 1870 §4)
    (b"NOOP " + b"x" * (MAX_COMMAND_LINE - 5) + b"\r\n", [Command("NOOP", "x" * 507, 512)]),
    (b"NOOP " + b"x" * (MAX_COMMAND_LINE - 4) + b"\r\n", [LineTooLong()]),
    (b"MAIL " + b"x" * (MAX_COMMAND_LINE + 21) + b"\r\n", [Command("MAIL", "x" * 533, 538)]),
    (b"MAIL " + b"x" * (MAX_COMMAND_LINE + 22) + b"\r\n", [LineTooLong()]),
    (b"NOOP " + b"x" * 5000 + b"\r\nNOOP\r\n", [LineTooLong(), Command("NOOP", None, 4)]),
]


@pytest.mark.parametrize(("data", "expected"), COMMAND_CASES)
def test_command_lines(data: bytes, expected: list[object]) -> None:
    tr(_command, data, expected)


def test_non_ascii_argument_without_smtputf8() -> None:
    tr(_command, b"MAIL FROM:<j\xc3\xb6rg@example.org>\r\n", [BadCommandLine(codes.R500_NOT_ASCII)], utf8=False)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"AGFsaWNlAHNlY3JldA==\r\n", [b"AGFsaWNlAHNlY3JldA=="]),
        (b"*\r\n", [b"*"]),
        (b"x" * (MAX_BUFFERED_LINE + 1) + b"\r\n", [LineTooLong()]),
    ],
)
def test_auth_response_lines(data: bytes, expected: list[object]) -> None:
    tr(_line, data, expected)


def test_an_endless_line_keeps_memory_flat() -> None:
    parser = ServerParser()
    for _ in range(1000):
        parser.receive_data(b"x" * 1000)
        assert _command(parser) is None
        assert parser.buffered <= MAX_BUFFERED_LINE
    parser.receive_data(b"\r\nQUIT\r\n")
    assert _drain(parser, _command) == [LineTooLong(), Command("QUIT", None, 4)]


def test_discard_and_unread() -> None:
    parser = ServerParser()
    parser.receive_data(b"STARTTLS\r\nMAIL FROM:<a@b>\r\n")
    assert _command(parser) == Command("STARTTLS", None, 8)
    # RFC 3207 §4.2: what was pipelined in clear text after STARTTLS is dropped
    assert parser.discard() == b"MAIL FROM:<a@b>\r\n"
    assert _command(parser) is None
    parser.unread(b"RSET\r\n")
    assert _command(parser) == Command("RSET", None, 4)


# --- mail data --------------------------------------------------------------------------------

DATA_CASES: list[tuple[bytes, bytes | None, dict[str, bool]]] = [
    (b"Subject: x\r\n\r\nhi\r\n.\r\n", b"Subject: x\r\n\r\nhi\r\n", {}),
    (b"..dot\r\n.\r\n", b".dot\r\n", {}),
    (b"a\nb\r\n.\r\n", b"a\nb\r\n", {"bare_line_ending": True}),
    (b"y" * 999 + b"\r\n.\r\n", b"y" * 999 + b"\r\n", {"line_too_long": True}),
    (b"." + b"y" * 998 + b"\r\n.\r\n", b"y" * 998 + b"\r\n", {}),  # the stuffed dot is not counted
    (b"z" * 3000 + b"\r\n.\r\n", None, {"overflow": True, "line_too_long": True}),
    ((b"z" * 98 + b"\r\n") * 30 + b".\r\n", None, {"overflow": True}),
]


@pytest.mark.parametrize(("data", "message", "flags"), DATA_CASES)
def test_mail_data(data: bytes, message: bytes | None, flags: dict[str, bool]) -> None:
    for step in (len(data), 1, 7):
        parser = ServerParser()
        collector = DataCollector(2000)
        done = False
        for i in range(0, len(data), step):
            parser.receive_data(data[i : i + step])
            while not done and (piece := parser.next_data_piece()) is not None:
                assert not piece.endswith(b"\r") or piece.endswith(b"\r\n") or len(piece) >= 1000
                done = collector.feed(piece)
        assert done
        assert collector.message == (b"" if message is None else message)
        for flag in ("bare_line_ending", "line_too_long", "overflow"):
            assert getattr(collector, flag) is flags.get(flag, False), (flag, step)


# --- MAIL and RCPT arguments --------------------------------------------------------------------

PATH_CASES: list[tuple[str | None, str, PathArgument | Reply]] = [
    ("FROM:<a@example.org>", "FROM:", PathArgument("a@example.org", ())),
    ("from: <a@example.org> size=10 body=8bitmime", "FROM:", PathArgument("a@example.org", ("SIZE=10", "BODY=8BITMIME"))),
    ("FROM:<>", "FROM:", PathArgument("<>", ())),
    ("TO:<Postmaster>", "TO:", PathArgument("Postmaster", ())),
    ("TO:alice", "TO:", PathArgument("alice", ())),
    ("TO:<@relay.example:u@example.org>", "TO:", PathArgument("u@example.org", ())),  # RFC 5321 §3.6.1
    ("TO:<u@[192.0.2.1]>", "TO:", PathArgument("u@[192.0.2.1]", ())),
    ("TO:<u@example.org.>", "TO:", codes.R553_MALFORMED_ADDRESS),
    ("TO:<a@b@c>", "TO:", codes.R553_MALFORMED_ADDRESS),
    ("TO:<alice@example.org", "TO:", codes.R501_BAD_PATH),
    ("TO:<a@example.org> BOGUS=", "TO:", codes.R501_RCPT_ARGUMENTS),
    ("TO:<a@example.org>>", "TO:", codes.R501_RCPT_ARGUMENTS),
    ("FROM:", "FROM:", codes.R501_RCPT_ARGUMENTS),
    ("TO:<a@example.org>", "FROM:", codes.R501_RCPT_ARGUMENTS),
    (None, "TO:", codes.R501_RCPT_ARGUMENTS),
]


@pytest.mark.parametrize(("argument", "keyword", "expected"), PATH_CASES)
def test_path_arguments(argument: str | None, keyword: str, expected: PathArgument | Reply) -> None:
    if isinstance(expected, PathArgument):
        assert parse_path_argument(argument, keyword, codes.R501_RCPT_ARGUMENTS) == expected
    else:
        with pytest.raises(ArgumentError) as info:
            parse_path_argument(argument, keyword, codes.R501_RCPT_ARGUMENTS)
        assert info.value.reply == expected


def test_unclosed_paths_and_vrfy_arguments() -> None:
    assert unclosed_path("FROM:<a@b", "FROM:") and unclosed_path("to: <a@b", "TO:")
    assert not unclosed_path("FROM:<a@b>", "FROM:") and not unclosed_path("TO:<a@b", "FROM:")
    assert parse_mailbox_argument("postmaster") == "postmaster"
    assert parse_mailbox_argument("<u@example.org>") == "u@example.org"
    with pytest.raises(ArgumentError):
        parse_mailbox_argument("u@@example.org")


# --- command order: the one transition table --------------------------------------------------

_IN_ORDER = {
    "MAIL": {SessionState.READY},
    "RCPT": {SessionState.MAIL, SessionState.RCPT},
    "DATA": {SessionState.RCPT},
    "AUTH": {SessionState.READY},
    "STARTTLS": {SessionState.GREETED, SessionState.READY, SessionState.MAIL, SessionState.RCPT},
    "NOOP": set(SessionState),
}


@pytest.mark.parametrize("state", list(SessionState))
@pytest.mark.parametrize("verb", sorted(_IN_ORDER))
def test_every_state_and_verb(state: SessionState, verb: str) -> None:
    assert in_sequence(state, verb) is (state in _IN_ORDER[verb])


# --- the reply catalogue ------------------------------------------------------------------------

CATALOGUE = {name: value for name, value in vars(codes).items() if re.fullmatch(r"[RH]\d{3}_\w+", name)}
#: RFC 2034 §3: the greeting and the replies to EHLO and HELO (H...) carry no enhanced status
#: code; nor does a 3yz reply.
WITHOUT_ENHANCED = {"H220_GREETING", "H250_HELLO", "R354_START_DATA", "H501_EHLO_DOMAIN", "H501_HELO_DOMAIN"}


def test_catalogue_entries_are_what_a_client_parses() -> None:
    assert len(CATALOGUE) >= 70
    for name, reply in CATALOGUE.items():
        assert isinstance(reply, Reply), name
        assert reply.code == int(name[1:4]), name
        assert parse_replies(reply.raw) == [reply], name
        if name in WITHOUT_ENHANCED:
            assert reply.enhanced is None, name
        else:
            assert reply.enhanced is not None and reply.enhanced.klass == reply.klass, name


def test_with_text_keeps_code_and_enhanced_status() -> None:
    queued = codes.with_text(codes.R250_QUEUED, "Ok: queued as Q1")
    assert (queued.code, str(queued.enhanced), queued.raw) == (250, "2.0.0", b"250 2.0.0 Ok: queued as Q1\r\n")
    greeting = codes.with_text(codes.H220_GREETING, "mail.example.org ESMTP")
    assert greeting.raw == b"220 mail.example.org ESMTP\r\n"


def test_an_argument_error_carries_its_reply_as_the_wire_hint() -> None:
    from harness.protocol.smtp.server import ArgumentError

    error = ArgumentError(codes.R501_BAD_PATH)
    assert error.wire_hint == codes.R501_BAD_PATH.raw and error.reply is codes.R501_BAD_PATH
