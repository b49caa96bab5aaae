"""The IMAP character classes (RFC 9051 §9, RFC 3501 §9) as byte sets, and the one byte cursor."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NoReturn

# ---------------------------------------------------------------------------------------------
# Character classes. RFC 9051 §9 (the same rules as RFC 3501 §9 and RFC 5234 Appendix B.1).

#: CHAR = %x01-7F  ; any 7-bit US-ASCII character, excluding NUL
CHAR = frozenset(range(0x01, 0x80))
#: CHAR8 = %x01-ff  ; any OCTET except NUL, %x00
CHAR8 = frozenset(range(0x01, 0x100))
#: CTL = %x00-1F / %x7F  ; controls
CTL = frozenset(range(0x00, 0x20)) | {0x7F}
SP = 0x20
CR = 0x0D
LF = 0x0A
DQUOTE = 0x22
BACKSLASH = 0x5C
#: DIGIT = %x30-39
DIGIT = frozenset(b"0123456789")
#: digit-nz = %x31-39  ; 1-9
DIGIT_NZ = frozenset(b"123456789")
#: list-wildcards = "%" / "*"
LIST_WILDCARDS = frozenset(b"%*")
#: quoted-specials = DQUOTE / "\"
QUOTED_SPECIALS = frozenset(b'"\\')
#: resp-specials = "]"
RESP_SPECIALS = frozenset(b"]")
#: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials /
#: resp-specials
ATOM_SPECIALS = frozenset(b"(){ ") | CTL | LIST_WILDCARDS | QUOTED_SPECIALS | RESP_SPECIALS
#: ATOM-CHAR = <any CHAR except atom-specials>
ATOM_CHAR = CHAR - ATOM_SPECIALS
#: ASTRING-CHAR = ATOM-CHAR / resp-specials
ASTRING_CHAR = ATOM_CHAR | RESP_SPECIALS
#: tag = 1*<any ASTRING-CHAR except "+">
TAG_CHAR = ASTRING_CHAR - {ord("+")}
#: list-char = ATOM-CHAR / list-wildcards / resp-specials
LIST_CHAR = ATOM_CHAR | LIST_WILDCARDS | RESP_SPECIALS
#: TEXT-CHAR = <any CHAR except CR and LF>
TEXT_CHAR = CHAR - {CR, LF}
#: QUOTED-CHAR = <any TEXT-CHAR except quoted-specials> / "\" quoted-specials / UTF8-2 /
#: UTF8-3 / UTF8-4 — the 7-bit octets that stand for themselves inside a quoted string.
QUOTED_CHAR = TEXT_CHAR - QUOTED_SPECIALS
#: sequence-set = (seq-number / seq-range) ["," sequence-set]; seq-number = nz-number / "*";
#: seq-range = seq-number ":" seq-number — the octets it is written with.
SEQUENCE_SET_CHAR = DIGIT | frozenset(b":*,")
#: date-month = "Jan" / "Feb" / "Mar" / "Apr" / "May" / "Jun" / "Jul" / "Aug" / "Sep" /
#: "Oct" / "Nov" / "Dec"
DATE_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: The octets of UTF8-2 / UTF8-3 / UTF8-4 (RFC 3629 §4); a decoder checks the sequences.
UTF8_NON_ASCII = frozenset(range(0x80, 0x100))


def byte_class(chars: Iterable[int]) -> bytes:
    """A regular-expression character class (``[...]``) matching exactly the octets *chars*."""
    ranges: list[tuple[int, int]] = []
    for b in sorted(set(chars)):
        if ranges and ranges[-1][1] == b - 1:
            ranges[-1] = (ranges[-1][0], b)
        else:
            ranges.append((b, b))
    out = bytearray(b"[")
    for low, high in ranges:
        out += b"\\x%02x" % low
        if high != low:
            out += b"-\\x%02x" % high
    return bytes(out + b"]")


def run_of(chars: Iterable[int]) -> re.Pattern[bytes]:
    """A compiled pattern for one or more octets of *chars*."""
    return re.compile(byte_class(chars) + b"+")


def is_run_of(text: str, chars: frozenset[int]) -> bool:
    """True when *text* is non-empty and every character is an octet of *chars*."""
    return bool(text) and all(ord(c) in chars for c in text)


# ---------------------------------------------------------------------------------------------
# The cursor


class Cursor:
    """A position in one complete unit of IMAP grammar (a command or a response), read up to
    ``stop``; both the command lexer and the response parser build on it. ``fail`` raises the
    side's own error."""

    __slots__ = ("data", "pos", "stop")

    def __init__(self, data: bytes, stop: int | None = None) -> None:
        self.data = data
        self.pos = 0
        self.stop = len(data) if stop is None else stop

    def fail(self, what: str) -> NoReturn:
        raise ValueError(f"{what} at octet {self.pos}")

    def at_end(self) -> bool:
        return self.pos >= self.stop

    def peek(self) -> int:
        """The next octet, or -1 at the end."""
        return self.data[self.pos] if self.pos < self.stop else -1

    def peek_bytes(self, n: int) -> bytes:
        return self.data[self.pos : min(self.pos + n, self.stop)]

    def accept(self, token: bytes) -> bool:
        if self.data.startswith(token, self.pos, self.stop):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: bytes, what: str | None = None) -> None:
        if not self.accept(token):
            self.fail(f"expected {what or token.decode('ascii')!r}")

    def run(self, chars: frozenset[int]) -> bytes:
        """The longest run of octets of *chars* at the cursor (possibly empty)."""
        start = pos = self.pos
        data = self.data
        stop = self.stop
        while pos < stop and data[pos] in chars:
            pos += 1
        self.pos = pos
        return data[start:pos]

    def match(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        m = pattern.match(self.data, self.pos, self.stop)
        if m is None:
            self.fail(f"expected {what}")
        self.pos = m.end()
        return m.group(0)
