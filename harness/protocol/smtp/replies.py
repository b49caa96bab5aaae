"""SMTP replies: reply codes, RFC 3463 enhanced status codes, the strict reply parser and reply formatting."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
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
