"""Tokens of IMAP server responses (RFC 9051 §9): strings, numbers, flags, response text and
codes, on the shared cursor."""

from __future__ import annotations

import re
from typing import NoReturn

from harness.protocol.errors import IMAPSyntaxError
from harness.protocol.imap import mutf7
from harness.protocol.imap.chars import (
    ASTRING_CHAR,
    ATOM_CHAR,
    CHAR,
    CTL,
    DIGIT,
    QUOTED_CHAR,
    QUOTED_SPECIALS,
    SP,
    UTF8_NON_ASCII,
    Cursor,
    byte_class,
    run_of,
)
from harness.protocol.imap.response_values import (
    MAX_NUMBER,
    MAX_NUMBER64,
    ResponseCode,
)
from harness.protocol.imap.seqset import SequenceSet

# ---------------------------------------------------------------------------------------------
# Lexical rules (RFC 9051 §9)

_ATOM = run_of(ATOM_CHAR)
_ASTRING_ATOM = run_of(ASTRING_CHAR)
_DIGITS = run_of(DIGIT)
# quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR = <TEXT-CHAR except quoted-specials> /
# "\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4
_QUOTED = re.compile(
    rb'"((?:' + byte_class(QUOTED_CHAR | UTF8_NON_ASCII) + rb"|\\" + byte_class(QUOTED_SPECIALS)
    + rb')*)"'
)
_QUOTED_ESCAPE = re.compile(rb"\\(" + byte_class(QUOTED_SPECIALS) + rb")")
_LITERAL = re.compile(rb"(~?)\{([0-9]+)(\+?)\}\r\n")
# Anything of an unknown extension that is not a string or a list.
_GENERIC_TOKEN = run_of(CHAR - CTL - {SP} - frozenset(b'()"{'))
_UID_SET = re.compile(rb"[0-9:,]+")
#: Codes with their own syntax in RFC 9051 §9 resp-text-code (and RFC 4315, RFC 7162): every
#: name `TokenCursor.resp_text_code` reads by a rule of its own (the response parser's fast path
#: leaves them to it).
STRICT_CODES = frozenset(
    {
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "HIGHESTMODSEQ",
        "PERMANENTFLAGS",
        "CAPABILITY",
        "BADCHARSET",
        "APPENDUID",
        "COPYUID",
    }
)


class TokenCursor(Cursor):
    """Reader over one complete response (ending in CRLF): its tokens, strings, response text
    and codes."""

    __slots__ = ()

    def __init__(self, data: bytes) -> None:
        super().__init__(data, len(data) - 2)  # up to the final CRLF

    def fail(self, what: str) -> NoReturn:
        raise IMAPSyntaxError(f"{what} at offset {self.pos}", data=self.data)

    def sp(self) -> None:
        # RFC 9051 §9: "SP refers to exactly one space.  It is NOT permitted to substitute TAB,
        # insert additional spaces, or otherwise treat SP as being equivalent to LWSP."
        self.expect(b" ", "SP")

    def finish(self) -> None:
        if self.pos != self.stop:
            self.fail("unexpected data before CRLF")

    # -- tokens --------------------------------------------------------------------------------

    def atom(self) -> str:
        return self.match(_ATOM, "atom").decode("ascii")

    def keyword(self) -> str:
        """An atom compared case-insensitively (RFC 9051 §9 note 1), upper-cased."""
        return self.atom().upper()

    def number(self, limit: int = MAX_NUMBER, *, nonzero: bool = False) -> int:
        start = self.pos
        digits = self.match(_DIGITS, "number")
        if len(digits) > 19:
            self.pos = start
            self.fail("number out of range")
        if nonzero and digits[:1] == b"0":
            # nz-number = digit-nz *DIGIT
            self.pos = start
            self.fail("expected nz-number (no zero, no leading zero)")
        value = int(digits)
        if value > limit:
            self.pos = start
            self.fail(f"number {value} out of range")
        return value

    def nz_number(self) -> int:
        return self.number(nonzero=True)

    def number64(self) -> int:
        return self.number(MAX_NUMBER64)

    def quoted(self) -> bytes:
        m = _QUOTED.match(self.data, self.pos, self.stop)
        if m is None:
            self.fail("bad quoted string")
        raw = m.group(1)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            self.fail("quoted string is not UTF-8 (8-bit data needs a literal)")
        self.pos = m.end()
        return _QUOTED_ESCAPE.sub(rb"\1", raw)

    def literal(self, *, allow_literal8: bool = False) -> bytes:
        m = _LITERAL.match(self.data, self.pos, self.stop)
        if m is None:
            self.fail("bad literal")
        if m.group(3):
            # RFC 9051 §9: "Non-synchronizing literals are not allowed when sent from server to
            # the client."
            self.fail("non-synchronizing literal from the server")
        if m.group(1) and not allow_literal8:
            self.fail("literal8 where only a literal is allowed")
        size = int(m.group(2))
        start = m.end()
        stop = start + size
        if stop > self.stop:
            self.fail("literal runs past the end of the response")
        payload = self.data[start:stop]
        if not m.group(1) and b"\x00" in payload:
            # RFC 9051 §9: "The ASCII NUL character, %x00, MUST NOT be used anywhere, with the
            # exception of the OCTET production." (literal = ... *CHAR8; CHAR8 = %x01-ff)
            self.fail("NUL octet in a literal (needs literal8)")
        self.pos = stop
        return payload

    def string(self) -> bytes:
        c = self.peek()
        if c == 0x22:  # DQUOTE
            return self.quoted()
        if c == 0x7B:  # "{"
            return self.literal()
        self.fail("expected string")

    def is_nil(self) -> bool:
        if self.data[self.pos : self.pos + 3].upper() == b"NIL" and self.pos + 3 <= self.stop:
            after = self.data[self.pos + 3 : self.pos + 4]
            if not _ATOM.match(after):
                self.pos += 3
                return True
        return False

    def nstring(self) -> bytes | None:
        if self.is_nil():
            return None
        return self.string()

    def astring(self) -> bytes:
        c = self.peek()
        if c in (0x22, 0x7B):
            return self.string()
        return self.match(_ASTRING_ATOM, "astring")

    def text_str(self, raw: bytes, *, literal: bool) -> str:
        if literal:
            return raw.decode("utf-8", errors="surrogateescape")
        return raw.decode("utf-8")  # quoted strings were validated

    def string_str(self) -> str:
        literal = self.peek() == 0x7B
        return self.text_str(self.string(), literal=literal)

    def nstring_str(self) -> str | None:
        if self.is_nil():
            return None
        return self.string_str()

    def flag(self, *, allow_star: bool = False) -> str:
        # flag = "\Answered" / ... / flag-keyword / flag-extension; flag-extension = "\" atom
        if self.accept(b"\\"):
            if allow_star and self.accept(b"*"):
                return "\\*"
            return "\\" + self.atom()
        return self.atom()

    def flag_list(self, *, allow_star: bool = False) -> tuple[str, ...]:
        # flag-list = "(" [flag *(SP flag)] ")"
        self.expect(b"(")
        flags: list[str] = []
        if not self.accept(b")"):
            flags.append(self.flag(allow_star=allow_star))
            while not self.accept(b")"):
                self.sp()
                flags.append(self.flag(allow_star=allow_star))
        return tuple(flags)

    def text(self) -> str:
        """The rest of the line: text = 1*(TEXT-CHAR / UTF8-2 / UTF8-3 / UTF8-4)."""
        raw = self.data[self.pos : self.stop]
        for bad in (b"\r", b"\n", b"\x00"):
            index = raw.find(bad)
            if index >= 0:
                self.pos += index
                self.fail(f"{bad!r} in text")
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.pos += exc.start
            self.fail("text is not UTF-8")
        self.pos = self.stop
        return value

    def mailbox(self) -> str:
        # mailbox = "INBOX" / astring; "INBOX is case insensitive".
        literal = self.peek() == 0x7B
        start = self.pos
        raw = self.astring()
        if raw.upper() == b"INBOX":
            return "INBOX"
        if raw.isascii():
            try:
                return mutf7.decode(raw.decode("ascii"))
            except ValueError as exc:
                self.pos = start
                self.fail(f"mailbox name is not modified UTF-7: {exc}")
        try:
            # UTF8=ACCEPT (RFC 9051 §5.1): names are UTF-8 when the client enabled it.
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            if literal:
                self.pos = start
            self.fail("mailbox name is neither modified UTF-7 nor UTF-8")

    # -- generic (extension) values --------------------------------------------------------------

    def generic(self, depth: int = 0) -> object:
        if depth > 64:
            self.fail("nesting too deep")
        c = self.peek()
        if c == 0x28:  # "("
            self.pos += 1
            items: list[object] = []
            if not self.accept(b")"):
                items.append(self.generic(depth + 1))
                while not self.accept(b")"):
                    self.sp()
                    items.append(self.generic(depth + 1))
            return tuple(items)
        if c == 0x22:
            return self.quoted().decode("utf-8")
        if c == 0x7B or (c == 0x7E and self.data[self.pos + 1 : self.pos + 2] == b"{"):
            return self.literal(allow_literal8=True)
        if self.is_nil():
            return None
        token = self.match(_GENERIC_TOKEN, "value")
        if token.isdigit() and len(token) <= 19:
            return int(token)
        return token.decode("ascii")

    # -- response text and codes -------------------------------------------------------------

    def resp_text(self) -> tuple[ResponseCode | None, str]:
        # resp-text = ["[" resp-text-code "]" SP] [text]
        code: ResponseCode | None = None
        if self.peek() == 0x5B:  # "["
            start = self.pos
            code = self.resp_text_code()
            if code is not None and not self.at_end() and self.peek() != 0x20:
                if code.name in STRICT_CODES:
                    self.sp()  # resp-text = ["[" resp-text-code "]" SP] [text]
                code = None
            if code is None:
                self.pos = start  # not a code: the whole rest is text, as the ABNF allows
            elif not self.at_end():
                # A code closing the line without SP is read as a code, not as text: both
                # readings match the ABNF and this is the one the server meant.
                self.sp()
        return code, (self.text() if not self.at_end() else "")

    def resp_text_code(self) -> ResponseCode | None:
        """Parse ``[code]``; None when the bracket does not open a code (then it is text).

        RFC 9051 §9: "In the case of alternative or optional rules in which a later rule overlaps
        an earlier rule, the rule that is listed earlier MUST take priority." So a code this
        parser knows (UIDNEXT, PERMANENTFLAGS...) must have its own syntax, and is not read as
        the generic ``atom [SP text]``: ``[UIDNEXT abc]`` is an error."""
        self.expect(b"[")
        m = _ATOM.match(self.data, self.pos, self.stop)
        if m is None:
            return None
        self.pos = m.end()
        name = m.group(0).decode("ascii").upper()
        value: object
        if name in ("UIDNEXT", "UIDVALIDITY", "UNSEEN"):
            self.sp()
            value = self.nz_number()
        elif name == "HIGHESTMODSEQ":
            self.sp()
            value = self.number64()
        elif name == "PERMANENTFLAGS":
            self.sp()
            value = self.flag_list(allow_star=True)
        elif name == "CAPABILITY":
            value = self.capability_data()
        elif name == "BADCHARSET":
            charsets: list[str] = []
            if self.accept(b" "):
                # "BADCHARSET" [SP "(" charset *(SP charset) ")" ]; charset = atom / quoted
                self.expect(b"(")
                charsets.append(self.charset())
                while not self.accept(b")"):
                    self.sp()
                    charsets.append(self.charset())
            value = tuple(charsets)
        elif name == "APPENDUID":
            # resp-code-apnd = "APPENDUID" SP nz-number SP append-uid (RFC 4315: uniqueid /
            # uid-set)
            self.sp()
            validity = self.nz_number()
            self.sp()
            value = (validity, self.uid_set(single_as_int=True))
        elif name == "COPYUID":
            # resp-code-copy = "COPYUID" SP nz-number SP uid-set SP uid-set
            self.sp()
            validity = self.nz_number()
            self.sp()
            source = self.uid_set()
            self.sp()
            value = (validity, source, self.uid_set())
        else:
            # atom [SP 1*<any TEXT-CHAR except "]">]
            if self.peek() == 0x5D:
                self.pos += 1
                return ResponseCode(name, None)
            if self.peek() != 0x20:
                return None
            close = self.data.find(b"]", self.pos + 1, self.stop)
            if close < 0 or close == self.pos + 1:
                return None
            raw = self.data[self.pos + 1 : close]
            if any(b in raw for b in (b"\r", b"\n", b"\x00")) or not raw.isascii():
                return None
            self.pos = close + 1
            return ResponseCode(name, raw.decode("ascii"))
        self.expect(b"]")
        return ResponseCode(name, value)

    def charset(self) -> str:
        if self.peek() == 0x22:
            return self.quoted().decode("utf-8")
        return self.atom()

    def uid_set(self, *, single_as_int: bool = False) -> int | str:
        start = self.pos
        raw = self.match(_UID_SET, "uid-set").decode("ascii")
        try:
            parsed = SequenceSet.parse(raw)
        except ValueError as exc:
            self.pos = start
            self.fail(f"bad uid-set: {exc}")
        if single_as_int and len(parsed.ranges) == 1 and parsed.ranges[0][0] == parsed.ranges[0][1]:
            only = parsed.ranges[0][0]
            assert only is not None  # "*" cannot match the pattern above
            return only
        return raw

    def capability_data(self) -> tuple[str, ...]:
        # capability-data = "CAPABILITY" *(SP capability) SP "IMAP4rev2" *(SP capability)
        # (RFC 3501 §9: ... SP "IMAP4rev1" ...); one of the two must be there.
        caps: list[str] = []
        while self.peek() == 0x20:
            self.pos += 1
            caps.append(self.atom())
        if not any(cap.upper() in ("IMAP4REV1", "IMAP4REV2") for cap in caps):
            self.fail("CAPABILITY lists neither IMAP4rev1 nor IMAP4rev2")
        return tuple(caps)
