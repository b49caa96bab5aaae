"""Tokens of the IMAP command grammar (RFC 9051 §9): a cursor over one complete command's bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from harness.protocol.imap.chars import (
    ASTRING_CHAR,
    ATOM_CHAR,
    BACKSLASH,
    DATE_MONTHS,
    DIGIT,
    DQUOTE,
    LIST_CHAR,
    QUOTED_SPECIALS,
    SEQUENCE_SET_CHAR,
    TAG_CHAR,
    Cursor,
)
from harness.protocol.imap.seqset import SequenceSet

_MAX_LITERAL_DIGITS = 20
#: date-month, upper-cased: month names compare case-insensitively (RFC 9051 §9 note 1).
MONTHS = tuple(m.upper() for m in DATE_MONTHS)


class ParseError(ValueError):
    """The command does not match the grammar; ``reason`` is short and safe to echo in BAD."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal read from the command: its octets, and whether it was sent as ``{N+}``."""

    data: bytes
    non_synchronizing: bool


def is_tag(data: bytes) -> bool:
    return bool(data) and all(b in TAG_CHAR for b in data)


def extract_tag(line: bytes) -> str | None:
    """The tag at the start of a (possibly broken) command line, when it is a valid tag."""
    tag = line.split(b" ", 1)[0].rstrip(b"\r\n")
    return tag.decode("ascii") if is_tag(tag) else None


class Lexer(Cursor):
    """A cursor over one command: the line with its literals inline (``{N}`` CRLF N octets)."""

    __slots__ = ()

    def fail(self, what: str) -> NoReturn:
        raise ParseError(f"{what} at octet {self.pos}")

    def accept_word(self, word: str) -> bool:
        """Accept a case-insensitive keyword that is followed by a delimiter (not more atom)."""
        end = self.pos + len(word)
        if self.data[self.pos : end].upper() != word.encode("ascii"):
            return False
        # "[" is an ATOM-CHAR but ends BODY / BODY.PEEK before a section.
        if end < len(self.data) and self.data[end] in ATOM_CHAR and self.data[end] != 0x5B:
            return False
        self.pos = end
        return True

    def sp(self) -> None:
        # RFC 9051 §9: SP is exactly one space.
        self.expect(b" ")

    def end(self) -> None:
        if not self.at_end():
            raise ParseError(f"unexpected data at octet {self.pos}")

    # -- tokens -------------------------------------------------------------------------------

    def atom(self) -> str:
        value = self.run(ATOM_CHAR)
        if not value:
            raise ParseError(f"expected an atom at octet {self.pos}")
        return value.decode("ascii")

    def tag(self) -> str:
        value = self.run(TAG_CHAR)
        if not value:
            raise ParseError("missing or invalid tag")
        return value.decode("ascii")

    def number(self) -> int:
        """RFC 9051 §9 number64 (we accept up to 2^63-1)."""
        value = self.run(DIGIT)
        if not value or len(value) > 19:
            raise ParseError(f"expected a number at octet {self.pos}")
        return int(value)

    def nz_number(self) -> int:
        start = self.pos
        value = self.number()
        if self.data[start] == ord("0"):
            raise ParseError(f"expected a non-zero number at octet {start}")
        return value

    def mod_sequence(self, *, zero: bool) -> int:
        """mod-sequence-value (1*DIGIT, 63 bits) or, with *zero*, mod-sequence-valzer
        (RFC 7162 §7)."""
        start = self.pos
        value = self.number()
        if value >= 2**63 or (value == 0 and not zero):
            self.pos = start
            raise ParseError(f"bad mod-sequence at octet {start}")
        return value

    def seqset(self) -> SequenceSet:
        if self.accept(b"$"):
            return SequenceSet((), saved=True)  # RFC 5182 §3: sequence-set =/ "$"
        text = self.run(SEQUENCE_SET_CHAR).decode("ascii")
        try:
            return SequenceSet.parse(text)
        except ValueError as exc:
            raise ParseError(str(exc)) from exc

    def options(self, known: frozenset[str], what: str) -> list[str]:
        """``"(" [option *(SP option)] ")"``, upper-cased; an unknown option is an error."""
        self.expect(b"(")
        options: list[str] = []
        if not self.accept(b")"):
            options.append(self.atom().upper())
            while self.accept(b" "):
                options.append(self.atom().upper())
            self.expect(b")")
        for option in options:
            if option not in known:
                raise ParseError(f"unknown {what} option {option[:40]}")
        return options

    def quoted(self) -> bytes:
        self.expect(b'"')
        out = bytearray()
        data = self.data
        while True:
            if self.pos >= len(data):
                raise ParseError("unterminated quoted string")
            c = data[self.pos]
            self.pos += 1
            if c == DQUOTE:
                return bytes(out)
            if c == BACKSLASH:  # RFC 9051 §9 "\" quoted-specials
                if self.pos >= len(data) or data[self.pos] not in QUOTED_SPECIALS:
                    raise ParseError("bad escape in quoted string")
                out.append(data[self.pos])
                self.pos += 1
            elif c in (0x00, 0x0A, 0x0D):
                # QUOTED-CHAR excludes CR, LF and NUL (TEXT-CHAR).
                raise ParseError("CR, LF or NUL in quoted string")
            else:
                # UTF-8 is allowed in quoted strings in IMAP4rev2 (RFC 9051 §9 QUOTED-CHAR).
                out.append(c)

    def literal(self, *, allow_literal8: bool = False) -> Literal:
        """``{N}`` / ``{N+}`` CRLF and N octets; with *allow_literal8*, also RFC 3516's
        ``~{N}``, whose octets may include NUL."""
        literal8 = allow_literal8 and self.accept(b"~")
        self.expect(b"{")
        digits = self.run(DIGIT)
        if not digits or len(digits) > _MAX_LITERAL_DIGITS:
            raise ParseError("bad literal length")
        plus = self.accept(b"+")
        self.expect(b"}")
        self.expect(b"\r\n")
        size = int(digits)
        body = self.data[self.pos : self.pos + size]
        if len(body) != size:
            raise ParseError("literal shorter than announced")
        self.pos += size
        # RFC 9051 §9: literal = "{" number64 ["+"] "}" CRLF *CHAR8 ; CHAR8 = %x01-ff (no NUL);
        # literal8 = "~{" number64 "}" CRLF *OCTET
        if not literal8 and b"\x00" in body:
            raise ParseError("NUL in literal")
        return Literal(body, plus)

    def string(self) -> bytes:
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B:
            return self.literal().data
        raise ParseError(f"expected a string at octet {self.pos}")

    def astring_bytes(self) -> bytes:
        c = self.peek()
        if c in (0x22, 0x7B):
            return self.string()
        value = self.run(ASTRING_CHAR)
        if not value:
            raise ParseError(f"expected an astring at octet {self.pos}")
        return value

    def astring(self) -> str:
        return _utf8(self.astring_bytes())

    def nstring(self) -> str | None:
        if self.accept_word("NIL"):
            return None
        return _utf8(self.string())

    def list_mailbox(self) -> str:
        c = self.peek()
        if c in (0x22, 0x7B):
            return _utf8(self.string())
        value = self.run(LIST_CHAR)
        if not value:
            raise ParseError(f"expected a mailbox pattern at octet {self.pos}")
        return value.decode("ascii")

    def flag(self) -> str:
        """RFC 9051 §9 flag: "\\" atom (system or extension flag) or a keyword atom."""
        if self.accept(b"\\"):
            return "\\" + self.atom()
        return self.atom()

    def flag_list(self) -> tuple[str, ...]:
        self.expect(b"(")
        flags: list[str] = []
        if not self.accept(b")"):
            flags.append(self.flag())
            while self.accept(b" "):
                flags.append(self.flag())
            self.expect(b")")
        return tuple(flags)


#: The reason of a string that is not UTF-8. RFC 6855 §3: "the server MUST reject, with a "BAD"
#: response, any octet sequences with the high bit set that fail to comply with the formal
#: syntax requirements of UTF-8".
INVALID_UTF8 = "string is not valid UTF-8"


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(INVALID_UTF8) from exc
