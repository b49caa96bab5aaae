"""Sans-IO SMTP core: replies, enhanced codes, commands, paths, dot-stuffing and command order."""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NoReturn

from harness.protocol.errors import LocalProtocolError, RemoteProtocolError, SMTPSyntaxError

CRLF = b"\r\n"

# ---------------------------------------------------------------------------------------------
# Reply codes (RFC 5321 §4.2.2, §4.2.3; RFC 3207 §4; RFC 4954 §6; RFC 1870 §6)
# ---------------------------------------------------------------------------------------------

C211_SYSTEM_STATUS = 211
C214_HELP = 214
C220_READY = 220
C221_CLOSING = 221
C235_AUTH_OK = 235
C250_OK = 250
C251_USER_NOT_LOCAL = 251
C252_CANNOT_VRFY = 252
C334_AUTH_CONTINUE = 334
C354_START_DATA = 354
C421_SERVICE_UNAVAILABLE = 421
C432_PASSWORD_TRANSITION = 432
C450_MAILBOX_UNAVAILABLE = 450
C451_LOCAL_ERROR = 451
C452_INSUFFICIENT_STORAGE = 452
C454_TEMP_AUTH_FAILURE = 454
C455_PARAMS_UNACCOMMODATED = 455
C500_SYNTAX_ERROR = 500
C501_SYNTAX_PARAMS = 501
C502_NOT_IMPLEMENTED = 502
C503_BAD_SEQUENCE = 503
C504_PARAM_NOT_IMPLEMENTED = 504
C530_AUTH_REQUIRED = 530
C534_AUTH_TOO_WEAK = 534
C535_AUTH_INVALID = 535
C538_ENCRYPTION_REQUIRED = 538
C550_MAILBOX_UNAVAILABLE = 550
C551_USER_NOT_LOCAL = 551
C552_EXCEEDED_STORAGE = 552
C553_MAILBOX_NAME_NOT_ALLOWED = 553
C554_TRANSACTION_FAILED = 554
C555_PARAMS_NOT_RECOGNIZED = 555

#: RFC 5321 §4.5.3.1.5: "The maximum total length of a reply line including the reply code and
#: the <CRLF> is 512 octets."
MAX_REPLY_LINE = 512
#: RFC 5321 §4.5.3.1.4: "The maximum total length of a command line including the command word
#: and the <CRLF> is 512 octets."
MAX_COMMAND_LINE = 512
#: Not an RFC limit: a guard so a peer cannot make us buffer an endless multiline reply.
MAX_REPLY_LINES = 1000

# ---------------------------------------------------------------------------------------------
# Enhanced status codes (RFC 3463 §2)
# ---------------------------------------------------------------------------------------------

# status-code = class "." subject "." detail; class = "2"/"4"/"5"; subject = 1*3digit;
# detail = 1*3digit.  RFC 3463 §2: "Each numeric sub-code within the status-code MUST be
# expressed without leading zero digits."
_SUBCODE = r"(?:0|[1-9][0-9]{0,2})"
_ENHANCED_RE = re.compile(rf"([245])\.({_SUBCODE})\.({_SUBCODE})")
_ENHANCED_PREFIX_RE = re.compile(rf"([245])\.({_SUBCODE})\.({_SUBCODE})(?=[ \t]|$)")


@dataclass(frozen=True, slots=True)
class EnhancedStatus:
    """An RFC 3463 enhanced mail system status code, e.g. 5.7.8."""

    klass: int
    subject: int
    detail: int

    def __post_init__(self) -> None:
        if self.klass not in (2, 4, 5):
            raise ValueError(f"enhanced status class must be 2, 4 or 5, not {self.klass}")
        if not (0 <= self.subject <= 999 and 0 <= self.detail <= 999):
            raise ValueError(f"enhanced status sub-codes must be 0-999: {self}")

    def __str__(self) -> str:
        return f"{self.klass}.{self.subject}.{self.detail}"

    @classmethod
    def parse(cls, text: str) -> EnhancedStatus | None:
        """The code if *text* is exactly one well-formed status code, else None."""
        m = _ENHANCED_RE.fullmatch(text)
        if m is None:
            return None
        return cls(int(m[1]), int(m[2]), int(m[3]))

    @classmethod
    def from_text(cls, text: str) -> EnhancedStatus | None:
        """The code at the start of a reply line's text (followed by a blank or the end)."""
        m = _ENHANCED_PREFIX_RE.match(text)
        if m is None:
            return None
        return cls(int(m[1]), int(m[2]), int(m[3]))


# ---------------------------------------------------------------------------------------------
# Replies
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete (possibly multiline) SMTP reply. ``lines`` hold the text after the code and
    its separator; ``raw`` the exact bytes received."""

    code: int
    lines: tuple[str, ...]
    enhanced: EnhancedStatus | None = None
    raw: bytes = b""

    @property
    def klass(self) -> int:
        return self.code // 100

    @property
    def is_positive(self) -> bool:
        return self.klass == 2

    @property
    def is_intermediate(self) -> bool:
        return self.klass == 3

    @property
    def is_transient(self) -> bool:
        return self.klass == 4

    @property
    def is_permanent(self) -> bool:
        return self.klass == 5

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __str__(self) -> str:
        return " / ".join(f"{self.code} {line}".rstrip() for line in self.lines) or str(self.code)


def _is_text_octet(b: int) -> bool:
    # textstring = 1*(%d09 / %d32-126) (RFC 5321 §4.2).  Octets >= 128 are accepted as well:
    # RFC 6531 §3.7.4 lets an SMTPUTF8 server send UTF-8 text.
    return b == 9 or 32 <= b <= 126 or b >= 128


_TEXT_BAD_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class ReplyParser:
    """Incremental, strict parser of server replies (RFC 5321 §4.2).

    ``feed()`` bytes as they arrive, then call ``next_reply()`` until it returns None (more
    data needed).  Malformed input raises RemoteProtocolError carrying the offending bytes;
    once raised, the parser keeps raising the same error.  At most one partial line of
    ``max_line`` octets is buffered beyond complete lines that were fed."""

    def __init__(self, max_line: int = MAX_REPLY_LINE, max_lines: int = MAX_REPLY_LINES) -> None:
        self._buf = bytearray()
        self._max_line = max_line
        self._max_lines = max_lines
        self._code: int | None = None
        self._lines: list[str] = []
        self._raw = bytearray()
        self._error: RemoteProtocolError | None = None
        self._overflow = False

    @property
    def buffered(self) -> bytes:
        """Bytes received but not yet part of a returned reply (partial or pipelined data)."""
        return bytes(self._raw) + bytes(self._buf)

    @property
    def in_reply(self) -> bool:
        """True while some lines of a multiline reply were seen but not its last line."""
        return self._code is not None

    def feed(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._overflow:
            return  # the line already failed; next_reply() raises once earlier replies are out
        self._buf += data
        tail_start = self._buf.rfind(b"\n") + 1
        # A partial line may hold at most max_line - 1 octets (its CR, but not yet its LF).
        if len(self._buf) - tail_start >= self._max_line:
            del self._buf[tail_start + self._max_line :]
            self._overflow = True

    def next_reply(self) -> Reply | None:
        if self._error is not None:
            raise self._error
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if self._overflow:
                    self._fail(
                        f"reply line longer than {self._max_line} octets without CRLF "
                        "(RFC 5321 §4.5.3.1.5)",
                        bytes(self._buf),
                    )
                return None
            line = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            reply = self._line(line)
            if reply is not None:
                return reply

    def _fail(self, message: str, data: bytes) -> NoReturn:
        self._error = SMTPSyntaxError(message, data)
        raise self._error

    def _line(self, line: bytes) -> Reply | None:
        if len(line) > self._max_line:
            self._fail(
                f"reply line of {len(line)} octets exceeds {self._max_line} "
                "(RFC 5321 §4.5.3.1.5)",
                line,
            )
        if not line.endswith(CRLF):
            # RFC 5321 §2.3.8: lines "MUST be terminated by the two-character sequence CRLF".
            self._fail("reply line ends with a bare LF, not CRLF (RFC 5321 §2.3.8)", line)
        body = line[:-2]
        # Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 §4.2).
        if (
            len(body) < 3
            or body[0] not in b"2345"
            or body[1] not in b"012345"
            or body[2] not in b"0123456789"
        ):
            self._fail("reply does not start with a three-digit code 200-559 (RFC 5321 §4.2)", line)
        code = int(body[:3])
        sep = body[3:4]
        if sep not in (b"", b" ", b"-"):
            self._fail("reply code not followed by SP, '-' or CRLF (RFC 5321 §4.2)", line)
        text_bytes = body[4:]
        if _TEXT_BAD_RE.search(text_bytes):
            self._fail("control character in reply text (RFC 5321 §4.2 textstring)", line)
        if self._code is not None and code != self._code:
            # RFC 5321 §4.2.1: "In a multiline reply, the reply code on each of the lines MUST
            # be the same."
            self._fail(
                f"multiline reply changes code from {self._code} to {code} (RFC 5321 §4.2.1)",
                bytes(self._raw) + line,
            )
        self._code = code
        self._lines.append(text_bytes.decode("utf-8", errors="backslashreplace"))
        self._raw += line
        if sep == b"-":
            if len(self._lines) >= self._max_lines:
                self._fail(f"multiline reply longer than {self._max_lines} lines", line)
            return None
        enhanced = EnhancedStatus.from_text(self._lines[0])
        if enhanced is not None and enhanced.klass != code // 100:
            enhanced = None
        reply = Reply(code, tuple(self._lines), enhanced, bytes(self._raw))
        self._code = None
        self._lines = []
        self._raw = bytearray()
        return reply


def parse_replies(data: bytes) -> list[Reply]:
    """All complete replies in *data*; raises RemoteProtocolError if anything is left over."""
    parser = ReplyParser()
    parser.feed(data)
    replies: list[Reply] = []
    while (reply := parser.next_reply()) is not None:
        replies.append(reply)
    if parser.buffered:
        raise SMTPSyntaxError("incomplete reply", parser.buffered)
    return replies


def format_reply(code: int, lines: Sequence[str], enhanced: EnhancedStatus | None = None) -> bytes:
    """Wire bytes of a reply (for servers and sinks). An enhanced code prefixes every line
    (RFC 2034 §3); no lines gives the bare code line."""
    if not 200 <= code <= 559 or (code // 10) % 10 > 5:
        raise LocalProtocolError(f"reply code {code} outside Reply-code (RFC 5321 §4.2)")
    if enhanced is not None and enhanced.klass != code // 100:
        raise LocalProtocolError(f"enhanced status {enhanced} does not match reply {code}")
    if not lines:
        return f"{code}\r\n".encode()
    out = bytearray()
    last = len(lines) - 1
    for i, text in enumerate(lines):
        if enhanced is not None:
            text = f"{enhanced} {text}" if text else str(enhanced)
        encoded = text.encode("utf-8")
        if _TEXT_BAD_RE.search(encoded):
            raise LocalProtocolError("control character in reply text", encoded)
        line = f"{code}{' ' if i == last else '-'}".encode() + encoded + CRLF
        if len(line) > MAX_REPLY_LINE:
            raise LocalProtocolError("reply line longer than 512 octets (RFC 5321 §4.5.3.1.5)", line)
        out += line
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

_VERB_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def format_command(verb: str, *args: str) -> bytes:
    """``VERB arg arg CRLF``. Refuses CR or LF anywhere (they would smuggle another command)."""
    if not _VERB_RE.fullmatch(verb):
        raise LocalProtocolError(f"not a command verb: {verb!r}")
    for arg in args:
        if "\r" in arg or "\n" in arg:
            raise LocalProtocolError("CR or LF inside a command argument", arg.encode())
    return " ".join((verb, *args)).encode("utf-8") + CRLF


def check_command_line(line: str) -> bytes:
    """*line* (no CRLF) as wire bytes, refusing embedded CR or LF."""
    if "\r" in line or "\n" in line:
        raise LocalProtocolError("CR or LF inside a command line", line.encode())
    return line.encode("utf-8") + CRLF


def command_verb(line: str | bytes) -> str:
    """The upper-cased first word of a command line ("" for an empty line)."""
    if isinstance(line, bytes):
        line = line.decode("ascii", errors="replace")
    word = line.strip().split(" ", 1)[0] if line.strip() else ""
    return word.upper()


def parse_ehlo_keywords(reply: Reply) -> dict[str, str]:
    """Service extensions from an EHLO reply (RFC 5321 §4.1.1.1 ehlo-line): upper-cased
    keyword -> its parameters as one string. The first line (the domain) is skipped."""
    extensions: dict[str, str] = {}
    for line in reply.lines[1:]:
        keyword, _, params = line.strip().partition(" ")
        if keyword:
            extensions[keyword.upper()] = params.strip()
    return extensions


# ---------------------------------------------------------------------------------------------
# Paths (RFC 5321 §4.1.2)
# ---------------------------------------------------------------------------------------------


class PathSyntaxError(RemoteProtocolError, ValueError):
    """A reverse- or forward-path that does not match RFC 5321 §4.1.2."""


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ATEXT_UTF8 = r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]|[^\x00-\x7f])"
_SUBDOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_SUBDOMAIN_UTF8 = r"(?:[A-Za-z0-9]|[^\x00-\x7f])(?:(?:[A-Za-z0-9-]|[^\x00-\x7f])*(?:[A-Za-z0-9]|[^\x00-\x7f]))?"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"'
_QUOTED_UTF8 = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|[^\x00-\x7f]|\\[\x20-\x7e])*"'
_IPV4 = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}"
# IPv6-address-literal = "IPv6:" IPv6-addr; General-address-literal = Standardized-tag ":" 1*dcontent
_ADDR_LITERAL = (
    rf"\[(?:{_IPV4}|IPv6:[0-9A-Fa-f:.]+|[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+)\]"
)


def _path_re(utf8: bool) -> re.Pattern[str]:
    atext = _ATEXT_UTF8 if utf8 else _ATEXT
    sub = _SUBDOMAIN_UTF8 if utf8 else _SUBDOMAIN
    quoted = _QUOTED_UTF8 if utf8 else _QUOTED
    domain = rf"{sub}(?:\.{sub})*"
    local = rf"(?:{atext}+(?:\.{atext}+)*|{quoted})"
    mailbox = rf"{local}@(?:{domain}|{_ADDR_LITERAL})"
    adl = rf"@{domain}(?:,@{domain})*"
    return re.compile(rf"<(?:{adl}:)?({mailbox})>")


_PATH_RE = _path_re(utf8=False)
_PATH_RE_UTF8 = _path_re(utf8=True)


def _check_ipv6_literal(mailbox: str) -> None:
    at = mailbox.rfind("@")
    domain = mailbox[at + 1 :]
    if domain.startswith("[IPv6:"):
        try:
            ipaddress.IPv6Address(domain[6:-1])
        except ValueError as exc:
            raise PathSyntaxError("bad IPv6 address literal", domain.encode()) from exc


def parse_path(text: str, *, utf8: bool = False, allow_null: bool = True) -> str:
    """The mailbox of a ``<...>`` path: "" for the null path ``<>``; a source route
    (A-d-l) is dropped (RFC 5321 §4.1.2 / Appendix C); ``<Postmaster>`` is accepted
    (RFC 5321 §4.1.1.3). *utf8* allows RFC 6531 UTF-8 addresses."""
    if text == "<>":
        if not allow_null:
            raise PathSyntaxError("null path not allowed here", text.encode())
        return ""
    if text.lower() == "<postmaster>":
        return text[1:-1]
    m = (_PATH_RE_UTF8 if utf8 else _PATH_RE).fullmatch(text)
    if m is None:
        raise PathSyntaxError("not a Path (RFC 5321 §4.1.2)", text.encode("utf-8", "replace"))
    mailbox = m[1]
    _check_ipv6_literal(mailbox)
    return mailbox


def format_path(address: str) -> str:
    """``<address>``; the empty string gives the null path ``<>``."""
    if any(c in address for c in "\r\n<>"):
        raise LocalProtocolError("CR, LF or angle bracket inside an address", address.encode())
    return f"<{address}>"


# ---------------------------------------------------------------------------------------------
# Dot-stuffing (RFC 5321 §4.5.2)
# ---------------------------------------------------------------------------------------------

END_OF_DATA = b"\r\n.\r\n"
_BARE_LF_RE = re.compile(rb"(?<!\r)\n")


def normalize_crlf(message: bytes) -> bytes:
    """Every line ends CRLF: bare LF becomes CRLF; a last line without CRLF gets one."""
    out = _BARE_LF_RE.sub(CRLF, message)
    if out and not out.endswith(CRLF):
        out += b"\n" if out.endswith(b"\r") else CRLF
    return out


def data_payload(message: bytes, *, stuff: bool = True) -> bytes:
    """What follows a 354: the CRLF-normalised message, dot-stuffed unless *stuff* is False
    (a deliberate violation for tests), then the final ``.CRLF``."""
    body = normalize_crlf(message)
    if stuff:
        # RFC 5321 §4.5.2: "Before sending a line of mail text, the SMTP client checks the first
        # character of the line.  If it is a period, one additional period is inserted at the
        # beginning of the line."
        if body.startswith(b"."):
            body = b"." + body
        body = body.replace(b"\r\n.", b"\r\n..")
    return body + b".\r\n"


def dot_stuff(message: bytes) -> bytes:
    """The DATA payload for *message*, including the terminating ``.CRLF`` (so the wire
    carries CRLF.CRLF after the last line)."""
    return data_payload(message, stuff=True)


def dot_unstuff(payload: bytes) -> bytes:
    """Inverse of dot_stuff for a payload without its final ``.CRLF``: one leading period is
    removed from every line (lines end CRLF only)."""
    # RFC 5321 §4.5.2: "If the first character is a period and there are other characters on the
    # line, the first character is deleted."
    out = payload[1:] if payload.startswith(b".") else payload
    return out.replace(b"\r\n.", b"\r\n")


@dataclass(frozen=True, slots=True)
class DataComplete:
    """End of mail data reached. ``message`` is empty when ``overflow`` (more than max_size
    octets arrived; the server should answer 552); ``size`` counts every unstuffed octet;
    ``leftover`` holds bytes after the end marker (pipelined commands)."""

    message: bytes
    size: int
    overflow: bool
    leftover: bytes


class DataReader:
    """Incremental receiver of mail data after 354 (server side).

    Only ``CRLF . CRLF`` ends the data; bare-LF variants are message content.  Memory is
    bounded by *max_size* plus one CR: past the limit the content is discarded while the
    reader keeps looking for the end marker, so the session can continue with 552."""

    def __init__(self, max_size: int | None = None) -> None:
        self._max_size = max_size
        self._out = bytearray()
        self._pending = bytearray()
        self._at_line_start = True
        self._size = 0
        self._overflow = False
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def overflow(self) -> bool:
        return self._overflow

    @property
    def done(self) -> bool:
        return self._done

    def _emit(self, chunk: bytes | bytearray) -> None:
        self._size += len(chunk)
        if self._overflow:
            return
        if self._max_size is not None and self._size > self._max_size:
            self._overflow = True
            self._out = bytearray()
            return
        self._out += chunk

    def feed(self, data: bytes) -> DataComplete | None:
        if self._done:
            raise LocalProtocolError("DataReader already saw the end of data", data)
        pending = self._pending
        pending += data
        while pending:
            if self._at_line_start:
                if len(pending) < 3 and b".\r\n".startswith(bytes(pending)):
                    return None
                if pending.startswith(b".\r\n"):
                    self._done = True
                    leftover = bytes(pending[3:])
                    self._pending = bytearray()
                    return DataComplete(
                        b"" if self._overflow else bytes(self._out),
                        self._size,
                        self._overflow,
                        leftover,
                    )
                if pending.startswith(b"."):
                    del pending[:1]
                self._at_line_start = False
                continue
            end = pending.find(CRLF)
            if end >= 0:
                self._emit(pending[: end + 2])
                del pending[: end + 2]
                self._at_line_start = True
                continue
            keep = 1 if pending.endswith(b"\r") else 0
            self._emit(pending[: len(pending) - keep])
            del pending[: len(pending) - keep]
            return None
        return None


# ---------------------------------------------------------------------------------------------
# Command order (RFC 5321 §3.3, §4.1.4; RFC 3207 §4.2)
# ---------------------------------------------------------------------------------------------


class SessionState(enum.Enum):
    CONNECTED = "connected, before the greeting"
    GREETED = "greeted, before EHLO/HELO"
    REFUSED = "greeting was 554: only QUIT"
    READY = "after EHLO/HELO, no transaction"
    MAIL = "MAIL accepted"
    RCPT = "at least one RCPT accepted"
    DATA = "after 354, sending mail data"
    CLOSED = "closed"


class SessionEvent(enum.Enum):
    GREETING_OK = "220 greeting"
    GREETING_REFUSED = "554 greeting"
    HELLO_OK = "EHLO/HELO accepted"
    MAIL_OK = "MAIL accepted"
    RCPT_OK = "RCPT accepted"
    DATA_START = "DATA answered 354"
    DATA_END = "reply to end of data"
    RSET_OK = "RSET accepted"
    STARTTLS_OK = "STARTTLS answered 220"
    QUIT = "QUIT answered 221"
    REJECTED = "command rejected"
    NEUTRAL = "accepted, no state change (NOOP, VRFY, EXPN, HELP, AUTH)"
    CONNECTION_CLOSED = "421 or connection lost"


Event = SessionEvent

_S = SessionState
_E = SessionEvent
_SESSION = (_S.GREETED, _S.READY, _S.MAIL, _S.RCPT)
_ALL_OPEN = (_S.CONNECTED, _S.GREETED, _S.REFUSED, _S.READY, _S.MAIL, _S.RCPT, _S.DATA)


def _build_transitions() -> dict[tuple[SessionState, SessionEvent], SessionState]:
    table: dict[tuple[SessionState, SessionEvent], SessionState] = {
        (_S.CONNECTED, _E.GREETING_OK): _S.GREETED,
        # RFC 5321 §3.1: after a 554 greeting the server "MUST wait for the client to send a QUIT
        # before closing the connection and SHOULD respond to any intervening commands with
        # '503 bad sequence of commands'".
        (_S.CONNECTED, _E.GREETING_REFUSED): _S.REFUSED,
        (_S.REFUSED, _E.REJECTED): _S.REFUSED,
        (_S.REFUSED, _E.QUIT): _S.CLOSED,
        (_S.MAIL, _E.RCPT_OK): _S.RCPT,
        (_S.RCPT, _E.RCPT_OK): _S.RCPT,
        (_S.READY, _E.MAIL_OK): _S.MAIL,
        (_S.RCPT, _E.DATA_START): _S.DATA,
        # RFC 5321 §4.1.1.4: after the end of mail data the transaction is over, whatever the
        # reply.
        (_S.DATA, _E.DATA_END): _S.READY,
        # RFC 3207 §4.2: "the client MUST discard any knowledge obtained from the server ...
        # The client SHOULD send an EHLO command as the first command after a successful TLS
        # negotiation."
        (_S.GREETED, _E.STARTTLS_OK): _S.GREETED,
        (_S.READY, _E.STARTTLS_OK): _S.GREETED,
        # RFC 3207 §4.2: after TLS "the SMTP server MUST discard any knowledge obtained from the
        # client" — a transaction in progress is gone too.
        (_S.MAIL, _E.STARTTLS_OK): _S.GREETED,
        (_S.RCPT, _E.STARTTLS_OK): _S.GREETED,
    }
    for state in _SESSION:
        # RFC 5321 §4.1.4: an accepted EHLO later in the session resets "exactly as if a RSET
        # command had been issued".
        table[(state, _E.HELLO_OK)] = _S.READY
        # RFC 5321 §4.1.1.5: RSET aborts the transaction; before EHLO nothing changes.
        table[(state, _E.RSET_OK)] = _S.GREETED if state is _S.GREETED else _S.READY
        table[(state, _E.QUIT)] = _S.CLOSED
        # RFC 5321 §4.1.4: after a rejected command "the SMTP server MUST stay in the same state".
        table[(state, _E.REJECTED)] = state
        table[(state, _E.NEUTRAL)] = state
    for state in _ALL_OPEN:
        table[(state, _E.CONNECTION_CLOSED)] = _S.CLOSED
    table[(_S.CLOSED, _E.CONNECTION_CLOSED)] = _S.CLOSED
    return table


#: The one transition table: (state, event) -> next state. Missing pairs are protocol errors.
TRANSITIONS: Mapping[tuple[SessionState, SessionEvent], SessionState] = MappingProxyType(
    _build_transitions()
)


def transition(state: SessionState, event: SessionEvent) -> SessionState:
    """The next state; LocalProtocolError when *event* cannot happen in *state*."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(
            f"no SMTP transition from {state.name} on {event.name}"
        ) from None


def event_for_reply(verb: str, code: int) -> SessionEvent:
    """The session event a final reply *code* to command *verb* means ("" = the greeting,
    "." = the end of mail data)."""
    verb = verb.upper()
    klass = code // 100
    if verb == "":
        if code == C220_READY:
            return _E.GREETING_OK
        if code == C554_TRANSACTION_FAILED:
            return _E.GREETING_REFUSED
        return _E.CONNECTION_CLOSED
    if verb == ".":
        return _E.CONNECTION_CLOSED if code == C421_SERVICE_UNAVAILABLE else _E.DATA_END
    if code == C421_SERVICE_UNAVAILABLE:
        # RFC 5321 §3.8: 421 means the server is closing the transmission channel.
        return _E.CONNECTION_CLOSED
    if verb == "QUIT":
        return _E.QUIT if klass == 2 else _E.REJECTED
    if verb == "STARTTLS":
        return _E.STARTTLS_OK if code == C220_READY else _E.REJECTED
    if verb == "DATA":
        return _E.DATA_START if code == C354_START_DATA else _E.REJECTED
    if klass not in (2, 3):
        return _E.REJECTED
    if klass == 3:
        return _E.NEUTRAL
    return {
        "EHLO": _E.HELLO_OK,
        "HELO": _E.HELLO_OK,
        "MAIL": _E.MAIL_OK,
        "RCPT": _E.RCPT_OK,
        "RSET": _E.RSET_OK,
    }.get(verb, _E.NEUTRAL)


def transitions_markdown() -> str:
    """The transition table as a Markdown table (for docs and reports)."""
    rows = ["| state | event | next state |", "|---|---|---|"]
    for (state, event), nxt in sorted(
        TRANSITIONS.items(), key=lambda kv: (list(_S).index(kv[0][0]), list(_E).index(kv[0][1]))
    ):
        rows.append(f"| {state.name} | {event.name} ({event.value}) | {nxt.name} |")
    return "\n".join(rows) + "\n"


def transitions_mermaid() -> str:
    """The transition table as a Mermaid state diagram (self-loops omitted)."""
    lines = ["stateDiagram-v2", f"    [*] --> {_S.CONNECTED.name}"]
    for (state, event), nxt in TRANSITIONS.items():
        if state is not nxt:
            lines.append(f"    {state.name} --> {nxt.name}: {event.name}")
    lines.append(f"    {_S.CLOSED.name} --> [*]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Legal replies per command (RFC 5321 §4.3.2, RFC 3207 §4, RFC 4954 §4 and §6)
# ---------------------------------------------------------------------------------------------

GREETING = ""  # pseudo-verb: the connection greeting
END_DATA = "."  # pseudo-verb: the reply to the end of mail data

# RFC 5321 §4.3.2: "In addition to the codes listed below, any SMTP command can return any of
# the following codes": 500, 501, 421.
_ANY_COMMAND = frozenset({500, 501, 421})

# (success codes, error codes) per command, RFC 5321 §4.3.2 unless noted.
_REPLIES: dict[str, tuple[frozenset[int], frozenset[int]]] = {
    "EHLO": (frozenset({250}), frozenset({504, 550, 502})),
    "HELO": (frozenset({250}), frozenset({504, 550, 502})),
    "MAIL": (frozenset({250}), frozenset({552, 451, 452, 550, 553, 503, 455, 555})),
    "RCPT": (frozenset({250, 251}), frozenset({550, 551, 552, 553, 450, 451, 452, 503, 455, 555})),
    "DATA": (frozenset({354}), frozenset({503, 554})),
    "RSET": (frozenset({250}), frozenset()),
    "VRFY": (frozenset({250, 251, 252}), frozenset({550, 551, 553, 502, 504})),
    "EXPN": (frozenset({250, 252}), frozenset({550, 500, 502, 504})),
    "HELP": (frozenset({211, 214}), frozenset({502, 504})),
    "NOOP": (frozenset({250}), frozenset()),
    "QUIT": (frozenset({221}), frozenset()),
    # RFC 3207 §4: 220 Ready to start TLS, 501 Syntax error, 454 TLS not available.  503 for a
    # repeated STARTTLS is common practice; 502 where the extension is not implemented
    # (RFC 5321 §4.2.4: "Reply code 502 ... for commands that are not implemented").
    "STARTTLS": (frozenset({220}), frozenset({454, 501, 502, 503})),
    # RFC 4954 §4 and §6; 502 where AUTH is not offered (RFC 5321 §4.2.4).
    "AUTH": (
        frozenset({235, 334}),
        frozenset({432, 454, 500, 501, 502, 503, 504, 534, 535, 538}),
    ),
}

#: Where each command is in sequence; elsewhere only its error replies and 503 are legal.
_IN_SEQUENCE: dict[str, frozenset[SessionState]] = {
    "MAIL": frozenset({_S.READY}),
    "RCPT": frozenset({_S.MAIL, _S.RCPT}),
    "DATA": frozenset({_S.RCPT}),
    # RFC 4954 §4: "The AUTH command is not permitted during a mail transaction. An AUTH
    # command issued during a mail transaction MUST be rejected with a 503 reply."
    "AUTH": frozenset({_S.READY}),
    # RFC 3207 does not forbid STARTTLS inside a transaction; it resets the session.
    "STARTTLS": frozenset({_S.GREETED, _S.READY, _S.MAIL, _S.RCPT}),
}

# RFC 4954 §6: 530 "SHOULD be returned by any command other than AUTH, EHLO, HELO, NOOP, RSET,
# or QUIT when server policy requires authentication".
_NO_530 = frozenset({"AUTH", "EHLO", "HELO", "NOOP", "RSET", "QUIT"})


def expected_reply_codes(state: SessionState, verb: str) -> frozenset[int]:
    """Reply codes a server may legally send to *verb* in *state* (RFC 5321 §4.3.2).

    ``verb`` GREETING ("") in CONNECTED gives the greeting codes; END_DATA (".") in DATA the
    codes after the end of mail data.  Out-of-sequence commands may only fail (RFC 5321 §4.1.4:
    "a 503 failure reply MUST be returned"); unknown commands may get 500/502/504."""
    verb = verb.upper()
    if state is _S.CONNECTED:
        if verb != GREETING:
            raise LocalProtocolError("before the greeting only the greeting is expected")
        return frozenset({220, 554, 421})
    if state is _S.DATA:
        if verb != END_DATA:
            raise LocalProtocolError("in DATA only the end-of-data reply is expected")
        return frozenset({250, 552, 554, 451, 452, 450, 550, 421})
    if state is _S.CLOSED or verb in (GREETING, END_DATA):
        raise LocalProtocolError(f"no reply to {verb!r} expected in state {state.name}")
    auth = frozenset() if verb in _NO_530 else frozenset({530})
    if state is _S.REFUSED:
        if verb == "QUIT":
            return frozenset({221}) | _ANY_COMMAND
        return frozenset({503}) | _ANY_COMMAND
    if verb not in _REPLIES:
        return frozenset({500, 502, 504}) | _ANY_COMMAND | auth
    ok, errors = _REPLIES[verb]
    allowed = _IN_SEQUENCE.get(verb)
    if allowed is not None and state not in allowed:
        ok = frozenset()
        errors = errors | {503}
    return ok | errors | _ANY_COMMAND | auth
