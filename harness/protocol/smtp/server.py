"""The server role of the SMTP core: received bytes become events (command lines, AUTH response
lines, pieces of mail data), and the arguments of MAIL and RCPT are taken apart, all without I/O.

Memory stays flat whatever a client sends: an over-long line is dropped as it arrives and
reported once its end is seen (RFC 5321 §4.5.3.1: the limits are the minimum a server must take,
and a longer line is "reported by using the reply codes")."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from harness.protocol.errors import RemoteProtocolError
from harness.protocol.smtp import codes
from harness.protocol.smtp.commands import DataReader, PathSyntaxError, parse_path
from harness.protocol.smtp.replies import Reply

#: The longest line kept while looking for its end; past it the line is dropped as it arrives.
#: RFC 5321 §4.5.3.1.4 asks for 512 octets per command line and §4.5.3.1.6 for 1000 per text
#: line (AUTH responses are taken up to that too).
MAX_BUFFERED_LINE = 1001

#: RFC 5321 §4.5.3.1.6: "The maximum total length of a text line including the <CRLF> is 1000
#: octets (not counting the leading dot duplicated for transparency)."
MAX_TEXT_LINE = 1000


@dataclass(frozen=True, slots=True)
class Command:
    """One command line: the upper-cased verb and the stripped argument (None when absent);
    ``length`` is the line's length without its line ending."""

    verb: str
    argument: str | None
    length: int


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line longer than the parser keeps ended; it was discarded."""


@dataclass(frozen=True, slots=True)
class BadCommandLine:
    """A command line that cannot be a command: the reply it gets."""

    reply: Reply


ReceivedLine = Command | LineTooLong | BadCommandLine


class ServerParser:
    """Incremental reader of what a client sends: ``receive_data()`` the bytes as they arrive,
    then take command lines (``next_command``), AUTH response lines (``next_line``) or mail data
    (``next_data_piece``) until None (more data needed)."""

    def __init__(self, *, utf8: bool = True) -> None:
        self._buf = bytearray()
        self._skipping = False
        #: Arguments are UTF-8 (RFC 6531); without it non-ASCII arguments are refused.
        self.utf8 = utf8

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def receive_data(self, data: bytes) -> None:
        """Take bytes as they arrive (the caller stops reading while much is buffered)."""
        self._buf += data

    def discard(self) -> bytes:
        """Everything buffered, removed (RFC 3207 §4.2: what arrived before TLS is dropped)."""
        pending = bytes(self._buf)
        self._buf.clear()
        self._skipping = False
        return pending

    def unread(self, data: bytes) -> None:
        """Put *data* back in front of what is buffered."""
        self._buf[:0] = data

    def next_line(self) -> bytes | LineTooLong | None:
        """The next line without its line ending (LF, with any CRs before it)."""
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if self._skipping or len(self._buf) > MAX_BUFFERED_LINE:
                    # No end of line in sight: drop what is there, and the rest of the line as
                    # it comes.
                    self._buf.clear()
                    self._skipping = True
                return None
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            if self._skipping:
                self._skipping = False
                return LineTooLong()
            line = line.rstrip(b"\r\n")
            if len(line) > MAX_BUFFERED_LINE:
                return LineTooLong()
            return line

    def next_command(self, limit: Callable[[str], int]) -> ReceivedLine | None:
        """The next command line; *limit(verb)* is the longest line taken for that verb,
        without its CRLF (RFC 5321 §4.5.3.1.4, RFC 1870 §4)."""
        line = self.next_line()
        if line is None or isinstance(line, LineTooLong):
            return line
        if not line:
            return BadCommandLine(codes.R500_UNPARSABLE)
        verb_bytes, _, arg_bytes = line.partition(b" ")
        try:
            verb = verb_bytes.upper().decode("ascii")
        except UnicodeDecodeError:
            return BadCommandLine(codes.R500_UNPARSABLE)
        argument: str | None = None
        arg_bytes = arg_bytes.strip()
        if arg_bytes:
            if self.utf8:
                argument = arg_bytes.decode("utf-8", errors="surrogateescape")
            else:
                try:
                    argument = arg_bytes.decode("ascii")
                except UnicodeDecodeError:
                    return BadCommandLine(codes.R500_NOT_ASCII)
        if len(line) > limit(verb):
            return LineTooLong()
        return Command(verb, argument, len(line))

    def next_data_piece(self) -> bytes | None:
        """The next line of mail data up to and including its CRLF, or, while a line is longer
        than MAX_BUFFERED_LINE, the part of it received so far (a CRLF is never split)."""
        end = self._buf.find(b"\r\n")
        if end >= 0:
            piece = bytes(self._buf[: end + 2])
            del self._buf[: end + 2]
            return piece
        if len(self._buf) < MAX_BUFFERED_LINE:
            return None
        keep = 1 if self._buf.endswith(b"\r") else 0
        piece = bytes(self._buf[: len(self._buf) - keep])
        del self._buf[: len(self._buf) - keep]
        return piece


class DataCollector:
    """Mail data after 354, fed one CRLF-terminated line or line fragment at a time; memory
    stays bounded by the size limit whatever the client sends."""

    def __init__(self, size_limit: int | None) -> None:
        self._reader = DataReader(size_limit)
        self._line_length = 0
        self._at_line_start = True
        self.line_too_long = False
        self.bare_line_ending = False
        self.message: bytes | None = None
        self.overflow = False

    def feed(self, piece: bytes) -> bool:
        """Take one piece; True once the end of mail data was seen."""
        complete = piece.endswith(b"\r\n")
        text = piece[:-2] if complete else piece
        if b"\r" in text or b"\n" in text:
            # RFC 5321 §2.3.8: "SMTP client implementations MUST NOT transmit these characters
            # except when they are intended as line terminators and then MUST, as indicated
            # above, transmit them only as a <CRLF> sequence."  Refusing them keeps a bare-LF
            # "end of data" from being smuggled to a less careful next hop.
            self.bare_line_ending = True
        # The transparency dot is not counted (RFC 5321 §4.5.3.1.6).
        stuffed = self._at_line_start and piece.startswith(b".")
        self._line_length += len(piece) - stuffed
        if self._line_length > MAX_TEXT_LINE:
            self.line_too_long = True
        if complete:
            self._line_length = 0
        self._at_line_start = complete
        done = self._reader.feed(piece)
        if done is None:
            return False
        self.overflow = done.overflow
        self.message = done.message
        return True


# ---------------------------------------------------------------------------------------------
# MAIL and RCPT arguments (RFC 5321 §4.1.1.2, §4.1.1.3, §4.1.2; RFC 1869 §6)
# ---------------------------------------------------------------------------------------------


class ArgumentError(RemoteProtocolError):
    """A MAIL or RCPT argument the server refuses, with the reply it gets."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply), wire_hint=reply.raw)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class PathArgument:
    """``FROM:<path> params`` or ``TO:<path> params`` taken apart: the mailbox ("<>" for the
    null reverse-path; source routes dropped), and the upper-cased parameters as given."""

    address: str
    options: tuple[str, ...]


_PARAM_KEYWORD_RE = re.compile(r"[A-Za-z0-9]+")


def unclosed_path(argument: str, keyword: str) -> bool:
    """True when the path after *keyword* opens with "<" and never closes (``MAIL FROM:<a@b``).
    RFC 5321 §4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">"."""
    if argument[: len(keyword)].upper() != keyword:
        return False
    path = argument[len(keyword):].lstrip()
    return path.startswith("<") and ">" not in path


def parse_mailbox_argument(text: str) -> str:
    """The mailbox named by a VRFY argument or a path, with or without its angle brackets;
    ArgumentError (553) when it is no mailbox."""
    text = text.strip()
    return _mailbox(text if text.startswith("<") and text.endswith(">") else f"<{text}>")


def parse_path_argument(argument: str | None, keyword: str, syntax: Reply) -> PathArgument:
    """*argument* after MAIL (keyword ``FROM:``) or RCPT (``TO:``); ArgumentError with *syntax*
    or the reply fitting the fault. A path without a domain is passed on for the caller to
    judge (``<Postmaster>``, RFC 5321 §4.1.1.3)."""
    if argument is None or argument[: len(keyword)].upper() != keyword:
        raise ArgumentError(syntax)
    rest = argument[len(keyword):].strip()
    if rest.startswith("<"):
        close = rest.find(">")
        if close < 0:
            # RFC 5321 §4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">".
            raise ArgumentError(codes.R501_BAD_PATH)
        path, params = rest[: close + 1], rest[close + 1:]
    else:
        path, _, params = rest.partition(" ")
        path = f"<{path}>" if path else ""
    if not path:
        raise ArgumentError(syntax)
    address = _mailbox(path)
    options = tuple(params.upper().split())
    for option in options:
        name, eq, value = option.partition("=")
        # RFC 5321 §4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); esmtp-value
        # = 1*(%d33-60 / %d62-126).
        if not _PARAM_KEYWORD_RE.fullmatch(name) or (eq and not value):
            raise ArgumentError(syntax)
    return PathArgument(address, options)


def _mailbox(path: str) -> str:
    if path == "<>":
        return "<>"
    try:
        return parse_path(path, utf8=True, allow_null=False)
    except PathSyntaxError:
        inner = path[1:-1]
        if "@" not in inner and inner and not any(c in inner for c in " <>\\\""):
            return inner  # no domain: the caller answers (RFC 5321 §4.1.1.3 Postmaster)
        raise ArgumentError(codes.R553_MALFORMED_ADDRESS) from None


def mail_parameters(options: tuple[str, ...]) -> dict[str, str | None]:
    """The MAIL parameters as keyword -> value (None for a keyword without one)."""
    out: dict[str, str | None] = {}
    for option in options:
        name, eq, value = option.partition("=")
        out[name] = value if eq else None
    return out
