"""Strict incremental parser of IMAP server responses (RFC 9051 §9, RFC 3501 §9), for clients."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from harness.protocol.errors import IMAPSyntaxError, RemoteProtocolError
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
    TAG_CHAR,
    UTF8_NON_ASCII,
    Cursor,
    byte_class,
    run_of,
)
from harness.protocol.imap.seqset import SequenceSet

#: RFC 9051 §9: ``number`` is an "Unsigned 32-bit integer".
MAX_NUMBER = 4_294_967_295
#: RFC 9051 §9: ``number64`` is an "Unsigned 63-bit integer".
MAX_NUMBER64 = 9_223_372_036_854_775_807

STATUS_OK = "OK"
STATUS_NO = "NO"
STATUS_BAD = "BAD"
STATUS_BYE = "BYE"
STATUS_PREAUTH = "PREAUTH"

_TAGGED_STATUSES = frozenset({STATUS_OK, STATUS_NO, STATUS_BAD})
_UNTAGGED_STATUSES = frozenset({STATUS_OK, STATUS_NO, STATUS_BAD, STATUS_BYE, STATUS_PREAUTH})


# ---------------------------------------------------------------------------------------------
# Response values


@dataclass(frozen=True, slots=True)
class ResponseCode:
    """A ``resp-text-code``: ``name`` upper-cased; ``value`` depends on the code.

    UIDVALIDITY/UIDNEXT/UNSEEN/HIGHESTMODSEQ -> int; PERMANENTFLAGS/CAPABILITY/BADCHARSET ->
    tuple[str, ...]; APPENDUID -> (uidvalidity, uid) or (uidvalidity, "uid-set");
    COPYUID -> (uidvalidity, "source-set", "destination-set"); any other atom -> its text or None.
    """

    name: str
    value: object = None


@dataclass(frozen=True, slots=True)
class Continuation:
    """A continuation request: ``+ SP (resp-text / base64)``."""

    text: str
    code: ResponseCode | None = None


@dataclass(frozen=True, slots=True)
class Tagged:
    """A tagged completion: ``tag SP ("OK" / "NO" / "BAD") SP resp-text``."""

    tag: str
    status: str
    code: ResponseCode | None
    text: str

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


@dataclass(frozen=True, slots=True)
class UntaggedStatus:
    """``* OK|NO|BAD|PREAUTH|BYE [code] text``."""

    status: str
    code: ResponseCode | None
    text: str

    @property
    def kind(self) -> str:
        return self.status


@dataclass(frozen=True, slots=True)
class Capability:
    caps: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "CAPABILITY"


@dataclass(frozen=True, slots=True)
class Enabled:
    caps: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "ENABLED"


@dataclass(frozen=True, slots=True)
class Exists:
    n: int

    @property
    def kind(self) -> str:
        return "EXISTS"


@dataclass(frozen=True, slots=True)
class Recent:
    n: int

    @property
    def kind(self) -> str:
        return "RECENT"


@dataclass(frozen=True, slots=True)
class Expunge:
    seq: int

    @property
    def kind(self) -> str:
        return "EXPUNGE"


@dataclass(frozen=True, slots=True)
class Vanished:
    """``* VANISHED [(EARLIER)] known-uids`` (RFC 7162 §3.2.10). The set is kept as sent: a
    server may name huge ranges of UIDs that never existed."""

    earlier: bool
    uids: SequenceSet

    def names(self, uid: int) -> bool:
        return self.uids.contains(uid, uid)

    @property
    def kind(self) -> str:
        return "VANISHED"


@dataclass(frozen=True, slots=True)
class Flags:
    flags: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "FLAGS"


@dataclass(frozen=True, slots=True)
class List:
    """A LIST (or, with ``lsub=True``, LSUB) response; ``mailbox`` decoded from modified UTF-7."""

    attributes: tuple[str, ...]
    delimiter: str | None
    mailbox: str
    extended: tuple[tuple[str, object], ...] = ()
    lsub: bool = False

    @property
    def kind(self) -> str:
        return "LSUB" if self.lsub else "LIST"


@dataclass(frozen=True, slots=True)
class Status:
    """``* STATUS mailbox (att value ...)``; keys upper-cased."""

    mailbox: str
    items: dict[str, object]

    @property
    def kind(self) -> str:
        return "STATUS"


@dataclass(frozen=True, slots=True)
class Search:
    numbers: tuple[int, ...]
    #: RFC 7162 search-sort-mod-seq: the highest mod-sequence of the messages found, sent after
    #: a SEARCH that used MODSEQ.
    modseq: int | None = None

    @property
    def kind(self) -> str:
        return "SEARCH"


@dataclass(frozen=True, slots=True)
class ESearch:
    """RFC 9051 ``esearch-response``: MIN/MAX/COUNT -> int, ALL -> sequence-set text."""

    tag: str | None
    uid: bool
    data: dict[str, object]

    @property
    def kind(self) -> str:
        return "ESEARCH"


@dataclass(frozen=True, slots=True)
class Fetch:
    """``* n FETCH (...)``; keys are upper-cased attribute names (``BODY[1.2]<0>``)."""

    seq: int
    items: dict[str, object]

    @property
    def kind(self) -> str:
        return "FETCH"


NamespaceDescr = tuple[str, str | None, tuple[tuple[str, tuple[str, ...]], ...]]


@dataclass(frozen=True, slots=True)
class Namespace:
    """RFC 2342 / RFC 9051 NAMESPACE: each is None (NIL) or (prefix, delimiter, extensions)..."""

    personal: tuple[NamespaceDescr, ...] | None
    other: tuple[NamespaceDescr, ...] | None
    shared: tuple[NamespaceDescr, ...] | None

    @property
    def kind(self) -> str:
        return "NAMESPACE"


@dataclass(frozen=True, slots=True)
class Id:
    """RFC 2971 ID response; ``params`` None for NIL."""

    params: tuple[tuple[str, str | None], ...] | None

    @property
    def kind(self) -> str:
        return "ID"


@dataclass(frozen=True, slots=True)
class Untagged:
    """An untagged response of an extension this parser does not know, parsed generically."""

    kind: str
    number: int | None
    data: tuple[object, ...]


UntaggedResponse = (
    UntaggedStatus
    | Capability
    | Enabled
    | Exists
    | Recent
    | Expunge
    | Vanished
    | Flags
    | List
    | Status
    | Search
    | ESearch
    | Fetch
    | Namespace
    | Id
    | Untagged
)
Response = Continuation | Tagged | UntaggedResponse


# ---------------------------------------------------------------------------------------------
# Lexical rules (RFC 9051 §9)

_ATOM = run_of(ATOM_CHAR)
_ASTRING_ATOM = run_of(ASTRING_CHAR)
_TAG = run_of(TAG_CHAR)
_DIGITS = run_of(DIGIT)
# quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR = <TEXT-CHAR except quoted-specials> /
# "\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4
_QUOTED = re.compile(
    rb'"((?:' + byte_class(QUOTED_CHAR | UTF8_NON_ASCII) + rb"|\\" + byte_class(QUOTED_SPECIALS)
    + rb')*)"'
)
_QUOTED_ESCAPE = re.compile(rb"\\(" + byte_class(QUOTED_SPECIALS) + rb")")
_LITERAL = re.compile(rb"(~?)\{([0-9]+)(\+?)\}\r\n")
_ATT_NAME = re.compile(rb"[A-Za-z0-9.\-]+")
_SECTION_WORD = re.compile(rb"[A-Za-z.]+")
# Anything of an unknown extension that is not a string or a list.
_GENERIC_TOKEN = run_of(CHAR - CTL - {SP} - frozenset(b'()"{'))
# date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
_DATE_TIME = re.compile(
    rb'"( [0-9]|[0-9]{2})-(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-][0-9]{4})"',
    re.IGNORECASE,
)
# mbx-list-sflag: "Selectability flags; only one per LIST response"
_LIST_SFLAGS = frozenset({"\\NONEXISTENT", "\\NOSELECT", "\\MARKED", "\\UNMARKED"})
_LITERAL_AT_LINE_END = re.compile(rb"~?\{([0-9]{1,19})(\+?)\}\Z")
_UID_SET = re.compile(rb"[0-9:,]+")
# Codes with their own syntax in RFC 9051 §9 resp-text-code (and RFC 4315, RFC 7162).
_STRICT_CODES = frozenset(
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


class _Cursor(Cursor):
    """Recursive-descent reader over one complete response (ending in CRLF)."""

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
                if code.name in _STRICT_CODES:
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

    # -- FETCH -----------------------------------------------------------------------------------

    def msg_att(self) -> dict[str, object]:
        # msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP (...)) ")"
        self.expect(b"(")
        items: dict[str, object] = {}
        while True:
            key, value = self.fetch_item()
            items[key] = value
            if self.accept(b")"):
                return items
            self.sp()

    def fetch_item(self) -> tuple[str, object]:
        name = self.match(_ATT_NAME, "fetch attribute").decode("ascii").upper()
        if name in ("BODY", "BINARY", "BINARY.SIZE") and self.peek() == 0x5B:
            key = name + self.section(binary=name != "BODY")
            if name != "BINARY.SIZE" and self.accept(b"<"):
                # "BODY" section ["<" number ">"] SP nstring; "BINARY" section-binary
                # ["<" number ">"] SP (nstring / literal8)
                key += f"<{self.number()}>"
                self.expect(b">")
            self.sp()
            if name == "BINARY.SIZE":
                return key, self.number()
            if name == "BINARY":
                if self.peek() == 0x7E:
                    return key, self.literal(allow_literal8=True)
                return key, self.nstring()
            return key, self.nstring()
        if name in ("BINARY", "BINARY.SIZE"):
            self.fail(f"{name} without a section")
        self.sp()
        value: object
        if name == "FLAGS":
            value = self.flag_list()
        elif name == "UID":
            value = self.nz_number()
        elif name == "RFC822.SIZE":
            value = self.number64()
        elif name == "INTERNALDATE":
            m = _DATE_TIME.match(self.data, self.pos, self.stop)
            if m is None:
                self.fail("bad INTERNALDATE date-time")
            self.pos = m.end()
            value = m.group(0)[1:-1].decode("ascii")
        elif name == "ENVELOPE":
            value = self.envelope()
        elif name in ("BODY", "BODYSTRUCTURE"):
            value = self.body(0)
        elif name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
            value = self.nstring()
        elif name == "MODSEQ":
            # RFC 7162: "MODSEQ" SP "(" permsg-modsequence ")"
            self.expect(b"(")
            value = self.number64()
            self.expect(b")")
        else:
            value = self.generic()
        return name, value

    def section(self, *, binary: bool) -> str:
        # section = "[" [section-spec] "]"; section-binary = "[" [section-part] "]"
        start = self.pos
        self.expect(b"[")
        if self.peek() != 0x5D:
            if self.peek() in range(0x30, 0x3A):
                self.nz_number()
                while (
                    self.data.startswith(b".", self.pos)
                    and self.data[self.pos + 1 : self.pos + 2].isdigit()
                ):
                    self.pos += 1
                    self.nz_number()
                if not binary and self.accept(b"."):
                    self.section_text(after_part=True)
            elif binary:
                self.fail("expected section-part")
            else:
                self.section_text(after_part=False)
        self.expect(b"]")
        return self.data[start : self.pos].decode("ascii", errors="replace").upper()

    def section_text(self, *, after_part: bool) -> None:
        word = self.match(_SECTION_WORD, "section text").upper()
        if word in (b"HEADER.FIELDS", b"HEADER.FIELDS.NOT"):
            # "HEADER.FIELDS" [".NOT"] SP header-list; header-list = "(" header-fld-name
            # *(SP header-fld-name) ")"
            self.sp()
            self.expect(b"(")
            self.astring()
            while not self.accept(b")"):
                self.sp()
                self.astring()
        elif word in (b"HEADER", b"TEXT") or (word == b"MIME" and after_part):
            return
        else:
            self.fail(f"bad section text {word.decode('ascii', 'replace')!r}")

    def address_list(self) -> tuple[tuple[str | None, ...], ...] | None:
        # env-from = "(" 1*address ")" / nil
        if self.is_nil():
            return None
        self.expect(b"(")
        addresses: list[tuple[str | None, ...]] = []
        while True:
            # address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"
            self.expect(b"(")
            fields = [self.nstring_str()]
            for _ in range(3):
                self.sp()
                fields.append(self.nstring_str())
            self.expect(b")")
            addresses.append(tuple(fields))
            if self.accept(b")"):
                return tuple(addresses)

    def envelope(self) -> tuple[object, ...]:
        # envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
        #            env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"
        self.expect(b"(")
        fields: list[object] = [self.nstring_str()]
        self.sp()
        fields.append(self.nstring_str())
        for _ in range(6):
            self.sp()
            fields.append(self.address_list())
        for _ in range(2):
            self.sp()
            fields.append(self.nstring_str())
        self.expect(b")")
        return tuple(fields)

    def body_fld_param(self) -> tuple[str, ...] | None:
        # body-fld-param = "(" string SP string *(SP string SP string) ")" / nil
        if self.is_nil():
            return None
        self.expect(b"(")
        values = [self.string_str()]
        self.sp()
        values.append(self.string_str())
        while not self.accept(b")"):
            self.sp()
            values.append(self.string_str())
            self.sp()
            values.append(self.string_str())
        return tuple(values)

    def body_extension(self, depth: int) -> object:
        # body-extension = nstring / number / number64 / "(" body-extension *(SP ...) ")"
        if depth > 64:
            self.fail("nesting too deep")
        c = self.peek()
        if c == 0x28:
            self.pos += 1
            items = [self.body_extension(depth + 1)]
            while not self.accept(b")"):
                self.sp()
                items.append(self.body_extension(depth + 1))
            return tuple(items)
        if c in range(0x30, 0x3A):
            return self.number64()
        return self.nstring_str()

    def body(self, depth: int) -> tuple[object, ...]:
        # body = "(" (body-type-1part / body-type-mpart) ")"
        if depth > 64:
            self.fail("body structure nested too deep")
        self.expect(b"(")
        fields: list[object] = []
        if self.peek() == 0x28:
            # body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
            while self.peek() == 0x28:
                fields.append(self.body(depth + 1))
            self.sp()
            fields.append(self.string_str())
        else:
            media_type = self.string_str()
            self.sp()
            subtype = self.string_str()
            fields += [media_type, subtype]
            # body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
            #               body-fld-octets
            self.sp()
            fields.append(self.body_fld_param())
            self.sp()
            fields.append(self.nstring_str())
            self.sp()
            fields.append(self.nstring_str())
            self.sp()
            fields.append(self.string_str())
            self.sp()
            fields.append(self.number())
            if media_type.upper() == "TEXT":
                # body-type-text = media-text SP body-fields SP body-fld-lines
                self.sp()
                fields.append(self.number64())
            elif media_type.upper() == "MESSAGE" and subtype.upper() in ("RFC822", "GLOBAL"):
                # body-type-msg = media-message SP body-fields SP envelope SP body SP
                #                 body-fld-lines
                self.sp()
                fields.append(self.envelope())
                self.sp()
                fields.append(self.body(depth + 1))
                self.sp()
                fields.append(self.number64())
        while self.accept(b" "):
            fields.append(self.body_extension(depth + 1))
        self.expect(b")")
        return tuple(fields)

    # -- mailbox data ----------------------------------------------------------------------------

    def mailbox_list(self, *, lsub: bool) -> List:
        # mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP
        #                mailbox [SP mbox-list-extended]
        self.expect(b"(")
        attributes: list[str] = []
        if not self.accept(b")"):
            while True:
                self.expect(b"\\", "\\ before a mailbox attribute")
                attributes.append("\\" + self.atom())
                if self.accept(b")"):
                    break
                self.sp()
        if sum(1 for a in attributes if a.upper() in _LIST_SFLAGS) > 1:
            self.fail("more than one selectability attribute (mbx-list-sflag)")
        self.sp()
        delimiter: str | None = None
        if not self.is_nil():
            start = self.pos
            raw = self.quoted()
            text = raw.decode("utf-8")
            if len(text) != 1:
                self.pos = start
                self.fail("hierarchy delimiter is not one QUOTED-CHAR")
            delimiter = text
        self.sp()
        mailbox = self.mailbox()
        extended: list[tuple[str, object]] = []
        if self.accept(b" "):
            # mbox-list-extended = "(" [mbox-list-extended-item *(SP ...)] ")"
            self.expect(b"(")
            if not self.accept(b")"):
                while True:
                    tag = self.astring().decode("utf-8", errors="replace").upper()
                    self.sp()
                    extended.append((tag, self.generic()))
                    if self.accept(b")"):
                        break
                    self.sp()
        return List(tuple(attributes), delimiter, mailbox, tuple(extended), lsub)

    def status_data(self) -> Status:
        # "STATUS" SP mailbox SP "(" [status-att-list] ")"
        mailbox = self.mailbox()
        self.sp()
        self.expect(b"(")
        items: dict[str, object] = {}
        if not self.accept(b")"):
            while True:
                name = self.keyword()
                self.sp()
                value: object
                if name in ("MESSAGES", "UNSEEN", "DELETED", "RECENT"):
                    value = self.number()
                elif name in ("UIDNEXT", "UIDVALIDITY"):
                    value = self.nz_number()
                elif name in ("SIZE", "HIGHESTMODSEQ"):
                    value = self.number64()
                else:
                    value = self.generic()
                items[name] = value
                if self.accept(b")"):
                    break
                self.sp()
        return Status(mailbox, items)

    def esearch(self) -> ESearch:
        # esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)
        tag: str | None = None
        uid = False
        if self.data.startswith(b" (", self.pos):
            self.pos += 2
            if self.keyword() != "TAG":
                self.fail("expected TAG in search-correlator")
            self.sp()
            tag = self.astring().decode("utf-8", errors="replace")
            self.expect(b")")
        data: dict[str, object] = {}
        first = True
        while self.accept(b" "):
            name = self.keyword()
            if first and name == "UID" and (self.at_end() or self.peek() == 0x20):
                uid = True
                first = False
                continue
            first = False
            self.sp()
            if name in ("MIN", "MAX"):
                data[name] = self.nz_number()
            elif name == "COUNT":
                data[name] = self.number()
            elif name == "ALL":
                data[name] = self.uid_set()
            else:
                data[name] = self.generic()
        return ESearch(tag, uid, data)

    def namespace(self) -> tuple[NamespaceDescr, ...] | None:
        # namespace = nil / "(" 1*namespace-descr ")"
        if self.is_nil():
            return None
        self.expect(b"(")
        descrs: list[NamespaceDescr] = []
        while True:
            # namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil)
            #                   [namespace-response-extensions] ")"
            self.expect(b"(")
            prefix = self.string_str()
            self.sp()
            delimiter: str | None = None
            if not self.is_nil():
                delimiter = self.quoted().decode("utf-8")
                if len(delimiter) != 1:
                    self.fail("namespace delimiter is not one QUOTED-CHAR")
            extensions: list[tuple[str, tuple[str, ...]]] = []
            while self.accept(b" "):
                # namespace-response-extension = SP string SP "(" string *(SP string) ")"
                name = self.string_str()
                self.sp()
                self.expect(b"(")
                values = [self.string_str()]
                while not self.accept(b")"):
                    self.sp()
                    values.append(self.string_str())
                extensions.append((name, tuple(values)))
            self.expect(b")")
            descrs.append((prefix, delimiter, tuple(extensions)))
            if self.accept(b")"):
                return tuple(descrs)


def _parse(raw: bytes) -> Response:
    cur = _Cursor(raw)
    if cur.accept(b"+"):
        # continue-req = "+" SP (resp-text / base64) CRLF
        cur.sp()
        code, text = cur.resp_text()
        cur.finish()
        return Continuation(text, code)
    if cur.accept(b"*"):
        cur.sp()
        response = _untagged(cur)
        cur.finish()
        return response
    # response-tagged = tag SP resp-cond-state CRLF
    tag = cur.match(_TAG, 'tag, "*" or "+"').decode("ascii")
    cur.sp()
    status = cur.keyword()
    if status not in _TAGGED_STATUSES:
        cur.fail(f"tagged status must be OK, NO or BAD, not {status!r}")
    cur.sp()
    code, text = cur.resp_text()
    cur.finish()
    return Tagged(tag, status, code, text)


_NUMBERED_RESPONSES = frozenset({"EXISTS", "RECENT", "EXPUNGE", "FETCH"})
_KEYWORD_RESPONSES = _UNTAGGED_STATUSES | {
    "CAPABILITY",
    "ENABLED",
    "FLAGS",
    "LIST",
    "LSUB",
    "STATUS",
    "SEARCH",
    "ESEARCH",
    "NAMESPACE",
    "ID",
    "VANISHED",
}


def _untagged(cur: _Cursor) -> UntaggedResponse:
    if cur.peek() in range(0x30, 0x3A):
        start = cur.pos
        number = cur.number()
        cur.sp()
        kind = cur.keyword()
        if kind == "EXISTS":
            return Exists(number)
        if kind == "RECENT":
            return Recent(number)
        if kind in ("EXPUNGE", "FETCH"):
            # message-data = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att))
            if number == 0:
                cur.pos = start
                cur.fail(f"{kind} needs a non-zero message number")
            if kind == "EXPUNGE":
                return Expunge(number)
            cur.sp()
            return Fetch(number, cur.msg_att())
        if kind in _KEYWORD_RESPONSES:
            cur.fail(f"{kind} does not take a leading number")
        return Untagged(kind, number, _generic_rest(cur))
    kind = cur.keyword()
    if kind in _NUMBERED_RESPONSES:
        cur.fail(f"{kind} needs a leading number")
    if kind in _UNTAGGED_STATUSES:
        cur.sp()
        code, text = cur.resp_text()
        return UntaggedStatus(kind, code, text)
    if kind == "CAPABILITY":
        return Capability(cur.capability_data())
    if kind == "ENABLED":
        # enable-data = "ENABLED" *(SP capability)
        caps: list[str] = []
        while cur.accept(b" "):
            caps.append(cur.atom())
        return Enabled(tuple(caps))
    if kind == "FLAGS":
        cur.sp()
        return Flags(cur.flag_list())
    if kind in ("LIST", "LSUB"):
        cur.sp()
        return cur.mailbox_list(lsub=kind == "LSUB")
    if kind == "STATUS":
        cur.sp()
        return cur.status_data()
    if kind == "SEARCH":
        # obsolete-search-response = "SEARCH" *(SP nz-number); RFC 7162 §7 adds
        # "SEARCH" [1*(SP nz-number) SP search-sort-mod-seq].
        numbers: list[int] = []
        while cur.accept(b" "):
            if numbers and cur.accept(b"("):
                if cur.keyword() != "MODSEQ":
                    cur.fail("expected MODSEQ in search-sort-mod-seq")
                cur.sp()
                modseq = cur.number64()
                cur.expect(b")")
                return Search(tuple(numbers), modseq)
            numbers.append(cur.nz_number())
        return Search(tuple(numbers))
    if kind == "ESEARCH":
        return cur.esearch()
    if kind == "VANISHED":
        # expunged-resp = "VANISHED" [SP "(EARLIER)"] SP known-uids (RFC 7162 §7); known-uids
        # is a sequence-set of UIDs in which "*" is not allowed.
        cur.sp()
        earlier = cur.accept(b"(")
        if earlier:
            if cur.keyword() != "EARLIER":
                cur.fail("expected (EARLIER)")
            cur.expect(b")")
            cur.sp()
        return Vanished(earlier, SequenceSet.parse(str(cur.uid_set())))
    if kind == "NAMESPACE":
        # namespace-response = "NAMESPACE" SP namespace SP namespace SP namespace
        cur.sp()
        personal = cur.namespace()
        cur.sp()
        other = cur.namespace()
        cur.sp()
        return Namespace(personal, other, cur.namespace())
    if kind == "ID":
        # RFC 2971 §4: id_params_list ::= "(" #(string SPACE nstring) ")" / nil
        cur.sp()
        if cur.is_nil():
            return Id(None)
        cur.expect(b"(")
        params: list[tuple[str, str | None]] = []
        if not cur.accept(b")"):
            while True:
                key = cur.string_str()
                cur.sp()
                params.append((key, cur.nstring_str()))
                if cur.accept(b")"):
                    break
                cur.sp()
        return Id(tuple(params))
    return Untagged(kind, None, _generic_rest(cur))


def _generic_rest(cur: _Cursor) -> tuple[object, ...]:
    values: list[object] = []
    while cur.accept(b" "):
        values.append(cur.generic())
    return tuple(values)


def parse_response(raw: bytes) -> Response:
    """Parse one complete response (ending in CRLF); raise RemoteProtocolError if invalid."""
    if not raw.endswith(b"\r\n"):
        raise IMAPSyntaxError("response does not end in CRLF", data=raw)
    return _parse(raw)


class ResponseParser:
    """Incremental parser: ``feed()`` bytes, then ``next_response()`` until it returns None.

    Each line (the bytes between literals) is bounded by ``max_line``, and so is the sum of the
    lines of one response; each literal, and the sum of the literals of one response, by
    ``max_literal``. The offending bytes of the last response are kept in ``last_raw``."""

    def __init__(
        self,
        max_line: int = 1_000_000,
        max_literal: int = 100 * 1024 * 1024,
        *,
        expect_greeting: bool = False,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.last_raw = b""
        self._buf = bytearray()
        self._line_start = 0  # where the current line of the current response starts
        self._scan = 0  # where to look for the next LF
        self._literal_end = 0  # when > 0: the literal must be buffered up to here
        self._line_total = 0
        self._literal_total = 0
        self._awaiting_greeting = expect_greeting
        self._greeting_only_once = expect_greeting
        self._broken: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a response."""
        return len(self._buf)

    @property
    def pending(self) -> bytes:
        """The bytes received but not yet returned as a response."""
        return bytes(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def _error(self, message: str, data: bytes) -> NoReturn:
        # The stream cannot be resynchronised after a framing error: stay broken.
        self._broken = IMAPSyntaxError(message, data=data)
        raise self._broken

    def next_response(self) -> Response | None:
        """The next complete response, or None when more bytes are needed."""
        if self._broken is not None:
            raise self._broken
        buf = self._buf
        while True:
            if self._literal_end:
                if len(buf) < self._literal_end:
                    return None
                self._line_start = self._scan = self._literal_end
                self._literal_end = 0
            lf = buf.find(b"\n", self._scan)
            if lf < 0:
                pending = len(buf) - self._line_start
                if pending > self.max_line or self._line_total + pending > self.max_line:
                    self._error(f"line longer than {self.max_line} octets", bytes(buf[:200]))
                self._scan = len(buf)
                return None
            if lf == self._line_start or buf[lf - 1] != 0x0D:
                self._error("line ends in a bare LF, not CRLF", bytes(buf[: lf + 1]))
            line_length = lf + 1 - self._line_start
            self._line_total += line_length
            if line_length > self.max_line or self._line_total > self.max_line:
                self._error(f"response longer than {self.max_line} octets", bytes(buf[:200]))
            line = bytes(buf[self._line_start : lf - 1])
            if self._may_have_literals(bytes(buf[: min(lf, 32)])):
                m = _LITERAL_AT_LINE_END.search(line)
                if m is not None:
                    size = int(m.group(1))
                    self._literal_total += size
                    if size > self.max_literal or self._literal_total > self.max_literal:
                        self._error(
                            f"literal of {size} octets exceeds the limit of {self.max_literal}",
                            bytes(buf[: lf + 1]),
                        )
                    self._literal_end = lf + 1 + size
                    continue
            raw = bytes(buf[: lf + 1])
            del buf[: lf + 1]
            self._line_start = self._scan = 0
            self._line_total = self._literal_total = 0
            self.last_raw = raw
            return self._check_greeting(_parse(raw), raw)

    @staticmethod
    def _may_have_literals(head: bytes) -> bool:
        """Only untagged data responses carry literals: status responses, tagged responses and
        continuation requests end in resp-text, whose text may well end in "{5}"."""
        if not head.startswith(b"* "):
            return False
        word = head[2:].split(b" ", 1)[0].upper()
        return word.rstrip(b"\r\n") not in (b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH")

    def _check_greeting(self, response: Response, raw: bytes) -> Response:
        if self._awaiting_greeting:
            self._awaiting_greeting = False
            # greeting = "*" SP (resp-cond-auth / resp-cond-bye) CRLF
            if not (
                isinstance(response, UntaggedStatus)
                and response.status in (STATUS_OK, STATUS_PREAUTH, STATUS_BYE)
            ):
                raise IMAPSyntaxError("greeting must be * OK, * PREAUTH or * BYE", data=raw)
        elif (
            self._greeting_only_once
            and isinstance(response, UntaggedStatus)
            and response.status == STATUS_PREAUTH
        ):
            # RFC 9051 §9: PREAUTH is only in "greeting"; response-data has resp-cond-state.
            raise IMAPSyntaxError("PREAUTH after the greeting", data=raw)
        return response
