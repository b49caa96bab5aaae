"""IMAP command grammar, server side (RFC 9051 §6, §9): incremental reader and typed arguments."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TypeAlias

from harness.protocol.imap import mutf7
from harness.protocol.imap.lexer import Lexer, ParseError, extract_tag
from harness.protocol.imap.seqset import SequenceSet

# ---------------------------------------------------------------------------------------------
# Typed arguments
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Login:
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    mechanism: str  # upper-cased
    initial_response: str | None  # base64 text as sent; "=" means an empty response (RFC 4959)


@dataclass(frozen=True, slots=True)
class QResync:
    """The QRESYNC select-param (RFC 7162 §3.2.5): what the client last knew of the mailbox."""

    uidvalidity: int
    modseq: int
    #: known-uids; None means "1:<UIDNEXT-1>".
    known_uids: SequenceSet | None = None
    #: seq-match-data: (known sequence numbers, their UIDs), both as sent.
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class MailboxArg:
    """SELECT, EXAMINE, CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE: one decoded mailbox name."""

    mailbox: str
    #: The name as the client spelled it (before INBOX was canonicalised); "" if not known.
    raw: str = field(default="", compare=False)
    #: SELECT/EXAMINE with the select-param CONDSTORE (RFC 7162 §3.1.8).
    condstore: bool = False
    #: SELECT/EXAMINE with the select-param QRESYNC (RFC 7162 §3.2.5).
    qresync: QResync | None = None


@dataclass(frozen=True, slots=True)
class Rename:
    """RENAME existing-mailbox new-mailbox (RFC 9051 §6.3.6), both decoded."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ListArgs:
    """LIST and LSUB (RFC 9051 §6.3.9): reference and pattern, decoded from modified UTF-7.
    Extended LIST (RFC 9051 §6.3.9, RFC 5258, RFC 5819) adds selection options, more patterns
    and return options (upper-cased); ``status`` holds the items of RETURN (STATUS (...))."""

    reference: str
    pattern: str
    select: tuple[str, ...] = ()
    more_patterns: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    status: tuple[str, ...] = ()

    @property
    def patterns(self) -> tuple[str, ...]:
        return (self.pattern, *self.more_patterns)


@dataclass(frozen=True, slots=True)
class Status:
    mailbox: str
    items: tuple[str, ...]  # upper-cased: MESSAGES, UIDNEXT, ..., RECENT, HIGHESTMODSEQ


@dataclass(frozen=True, slots=True)
class Section:
    """A BODY[...] section (RFC 9051 §6.4.5): part numbers, then HEADER / HEADER.FIELDS[.NOT] /
    TEXT / MIME or nothing. ``fields`` are the header names for HEADER.FIELDS[.NOT]."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()

    def format(self) -> str:
        out = ".".join(str(p) for p in self.part)
        if self.text is not None:
            out = f"{out}.{self.text}" if out else self.text
        if self.fields:
            out += " (" + " ".join(_format_field_name(f) for f in self.fields) + ")"
        return out


def _format_field_name(name: str) -> str:
    if name and all(c.isascii() and (c.isalnum() or c in "-_.") for c in name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class FetchItem:
    """One fetch attribute. ``name`` is FLAGS, UID, RFC822.SIZE, INTERNALDATE, ENVELOPE, RFC822,
    RFC822.HEADER, RFC822.TEXT, BODY, BODYSTRUCTURE, MODSEQ (RFC 7162), BINARY or BINARY.SIZE
    (RFC 9051 §6.4.5, whose ``section`` has part numbers only); BODY with a ``section`` is BODY[section]
    (``peek`` for BODY.PEEK), with ``partial`` = (origin, length) for ``<origin.length>``."""

    name: str
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False

    def response_name(self) -> str:
        """The name this item carries in the FETCH response: BODY[...] never says .PEEK, and a
        partial shows only its origin (RFC 9051 §7.5.2 BODY[<section>]<<origin octet>>)."""
        if self.section is None:
            return self.name
        out = f"{self.name}[{self.section.format()}]"
        if self.partial is not None:
            out += f"<{self.partial[0]}>"
        return out

    @property
    def sets_seen(self) -> bool:
        """RFC 9051 §6.4.5: "The \\Seen flag is implicitly set" by BODY[...], RFC822, RFC822.TEXT."""
        if self.name == "BINARY.SIZE":
            return False
        if self.section is not None:
            return not self.peek
        return self.name in ("RFC822", "RFC822.TEXT")


@dataclass(frozen=True, slots=True)
class Fetch:
    seqset: SequenceSet
    items: tuple[FetchItem, ...]
    #: The fetch-modifier CHANGEDSINCE (RFC 7162 §3.1.4): only messages whose mod-sequence is
    #: above it.
    changedsince: int | None = None
    #: The fetch-modifier VANISHED (RFC 7162 §3.2.6): also report the expunged UIDs of the set.
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class Store:
    seqset: SequenceSet
    mode: str  # "+", "-" or "" (replace)
    silent: bool
    flags: tuple[str, ...]
    #: The store-modifier UNCHANGEDSINCE (RFC 7162 §3.1.3): store only where the message's
    #: mod-sequence is not above it.
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class Copy:
    """COPY and MOVE (and their UID forms)."""

    seqset: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class UidExpunge:
    seqset: SequenceSet


@dataclass(frozen=True, slots=True)
class Append:
    mailbox: str
    flags: tuple[str, ...]
    date: datetime | None
    message: bytes


@dataclass(frozen=True, slots=True)
class Enable:
    capabilities: tuple[str, ...]  # upper-cased


@dataclass(frozen=True, slots=True)
class Id:
    params: tuple[tuple[str, str | None], ...] | None


# -- SEARCH keys (RFC 9051 §6.4.4) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchAll:
    pass


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """SEEN/UNSEEN, DELETED/UNDELETED, ..., KEYWORD/UNKEYWORD: ``flag`` set (or not)."""

    flag: str
    present: bool


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """FROM, TO, CC, BCC, SUBJECT and HEADER: ``value`` is a substring of the field (empty:
    the field exists)."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """BODY (``whole_message`` False) or TEXT (headers and body)."""

    value: str
    whole_message: bool


@dataclass(frozen=True, slots=True)
class SearchSize:
    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SearchDate:
    """BEFORE/ON/SINCE (internal date) and SENTBEFORE/SENTON/SENTSINCE (Date: header)."""

    op: str  # "BEFORE", "ON" or "SINCE"
    day: date
    sent: bool


@dataclass(frozen=True, slots=True)
class SearchSet:
    seqset: SequenceSet
    uid: bool


@dataclass(frozen=True, slots=True)
class SearchModseq:
    """MODSEQ [entry-name entry-type] value (RFC 7162 §3.1.5): mod-sequence at least *value*."""

    value: int


@dataclass(frozen=True, slots=True)
class SearchNot:
    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    keys: tuple[SearchKey, ...]


SearchKey: TypeAlias = (
    SearchAll | SearchFlag | SearchHeader | SearchText | SearchSize | SearchDate | SearchSet
    | SearchModseq | SearchNot | SearchOr | SearchAnd
)


@dataclass(frozen=True, slots=True)
class Search:
    charset: str | None
    key: SearchKey
    #: RFC 9051 §6.4.4 search-return-opts (upper-cased: MIN, MAX, ALL, COUNT, SAVE); None when
    #: no RETURN was given.
    return_opts: tuple[str, ...] | None = None


CommandArgs: TypeAlias = (
    None | Login | Authenticate | MailboxArg | Rename | ListArgs | Status | Fetch | Store | Copy
    | UidExpunge | Append | Enable | Id | Search
)

# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    tag: str
    name: str  # upper-cased; "UID FETCH" style for UID commands
    args: CommandArgs = None


@dataclass(frozen=True, slots=True)
class InvalidCommand:
    """Answer ``tag BAD reason`` (or ``* BAD`` when ``tag`` is None); the session goes on."""

    tag: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class NeedContinuation:
    """A synchronising literal ``{size}`` was announced: send ``+ ...`` before its octets come."""

    size: int


@dataclass(frozen=True, slots=True)
class LiteralTooLarge:
    """A literal over the limit, refused before its octets were read. For ``{N}`` the client
    waits for a continuation that never comes; for ``{N+}`` the reader discards the N octets and
    the rest of the command. Either way answer ``tag NO [TOOBIG]`` (or BAD)."""

    tag: str | None
    size: int
    non_synchronizing: bool


Event: TypeAlias = Command | InvalidCommand | NeedContinuation | LiteralTooLarge

# ---------------------------------------------------------------------------------------------
# Argument parsers
# ---------------------------------------------------------------------------------------------


def _mailbox(lx: Lexer) -> str:
    raw = lx.astring()
    return normalise_mailbox(raw)


def normalise_mailbox(raw: str) -> str:
    """Decode a wire mailbox name: modified UTF-7 when ASCII (RFC 3501 §5.1.3), UTF-8 as is
    (IMAP4rev2); "INBOX" in any case becomes "INBOX" (RFC 9051 §5.1 "The case-insensitive
    mailbox name INBOX is a special name")."""
    if raw.isascii():
        try:
            name = mutf7.decode(raw)
        except ValueError as exc:
            raise ParseError(f"bad mailbox name: {exc}") from exc
    else:
        name = raw
    if name.upper() == "INBOX":
        return "INBOX"
    if name[:6].upper() == "INBOX/":
        return "INBOX" + name[5:]
    return name


_SEQSET_CHARS = frozenset(b"0123456789:*,")


def _seqset(lx: Lexer) -> SequenceSet:
    text = lx.run(_SEQSET_CHARS).decode("ascii")
    try:
        return SequenceSet.parse(text)
    except ValueError as exc:
        raise ParseError(str(exc)) from exc


def _no_args(lx: Lexer) -> None:
    return None


def _login(lx: Lexer) -> Login:
    lx.sp()
    user = lx.astring()
    lx.sp()
    password = lx.astring()
    return Login(user, password)


_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _authenticate(lx: Lexer) -> Authenticate:
    lx.sp()
    mechanism = lx.atom().upper()
    initial: str | None = None
    if lx.accept(b" "):
        # RFC 9051 §9: initial-resp = (base64 / "=")
        if lx.accept(b"="):
            initial = "="
        else:
            m = _BASE64.match(lx.data, lx.pos)
            if m is None or m.end() == lx.pos:
                raise ParseError("bad initial response")
            initial = m.group().decode("ascii")
            lx.pos = m.end()
    return Authenticate(mechanism, initial)


def _mailbox_arg(lx: Lexer) -> MailboxArg:
    lx.sp()
    raw = lx.astring()
    return MailboxArg(normalise_mailbox(raw), raw)


def _atom_list(lx: Lexer) -> list[str]:
    """``"(" atom *(SP atom) ")"``, upper-cased (STATUS items)."""
    lx.expect(b"(")
    atoms = [lx.atom().upper()]
    while lx.accept(b" "):
        atoms.append(lx.atom().upper())
    lx.expect(b")")
    return atoms


def _select(lx: Lexer) -> MailboxArg:
    """SELECT/EXAMINE mailbox [SP "(" select-param *(SP select-param) ")"] (RFC 4466 §2.1);
    the parameters known are CONDSTORE (RFC 7162 §3.1.8) and QRESYNC (§3.2.5)."""
    arg = _mailbox_arg(lx)
    if not lx.accept(b" "):
        return arg
    condstore, qresync = False, None
    lx.expect(b"(")
    while True:
        if lx.accept_word("CONDSTORE"):
            condstore = True
        elif lx.accept_word("QRESYNC"):
            lx.sp()
            qresync = _qresync(lx)
        else:
            raise ParseError(f"unknown select parameter at octet {lx.pos}")
        if not lx.accept(b" "):
            break
    lx.expect(b")")
    return MailboxArg(arg.mailbox, arg.raw, condstore=condstore, qresync=qresync)


def _known_set(lx: Lexer) -> SequenceSet:
    """A sequence set without "*" (RFC 7162 §7: known-uids, seq-match-data)."""
    found = _seqset(lx)
    if any(n is None for r in found.ranges for n in r):
        raise ParseError("\"*\" is not allowed here")
    return found


def _qresync(lx: Lexer) -> QResync:
    """qresync-param = "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
    [SP seq-match-data] ")"; seq-match-data = "(" known-sequence-set SP known-uid-set ")"."""
    lx.expect(b"(")
    uidvalidity = lx.number()
    if not 0 < uidvalidity < 2**32:
        raise ParseError("bad UIDVALIDITY")
    lx.sp()
    modseq = _mod_sequence(lx, zero=False)
    known: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    if lx.accept(b" "):
        if lx.peek() != ord("("):
            known = _known_set(lx)
            if lx.accept(b" "):
                match = _seq_match(lx)
        else:
            match = _seq_match(lx)
    lx.expect(b")")
    return QResync(uidvalidity, modseq, known, match)


def _seq_match(lx: Lexer) -> tuple[SequenceSet, SequenceSet]:
    lx.expect(b"(")
    seqs = _known_set(lx)
    lx.sp()
    uids = _known_set(lx)
    lx.expect(b")")
    return seqs, uids


def _mod_sequence(lx: Lexer, *, zero: bool) -> int:
    """mod-sequence-value (1*DIGIT, 63 bits) or, with *zero*, mod-sequence-valzer."""
    start = lx.pos
    value = lx.number()
    if value >= 2**63 or (value == 0 and not zero):
        lx.pos = start
        raise ParseError(f"bad mod-sequence at octet {start}")
    return value


def _unchangedsince(lx: Lexer) -> int:
    """``(UNCHANGEDSINCE value)``: the one store-modifier (RFC 7162 §3.1.3); 0 is allowed."""
    lx.expect(b"(")
    if not lx.accept_word("UNCHANGEDSINCE"):
        raise ParseError(f"unknown modifier at octet {lx.pos}; expected UNCHANGEDSINCE")
    lx.sp()
    value = _mod_sequence(lx, zero=True)
    lx.expect(b")")
    return value


def _rename(lx: Lexer) -> Rename:
    lx.sp()
    old = _mailbox(lx)
    lx.sp()
    return Rename(old, _mailbox(lx))


def _decode_pattern(raw: str) -> str:
    if raw.isascii():
        try:
            return mutf7.decode(raw)
        except ValueError:
            return raw
    return raw


def _lsub(lx: Lexer) -> ListArgs:
    lx.sp()
    reference = lx.astring()
    lx.sp()
    pattern = lx.list_mailbox()
    return ListArgs(_decode_pattern(reference), _decode_pattern(pattern))


_LIST_SELECT = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})


_SEARCH_RETURN = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})


def _options(lx: Lexer, known: frozenset[str], what: str) -> list[str]:
    """``"(" [option *(SP option)] ")"``, upper-cased; an unknown option is an error."""
    lx.expect(b"(")
    options: list[str] = []
    if not lx.accept(b")"):
        options.append(lx.atom().upper())
        while lx.accept(b" "):
            options.append(lx.atom().upper())
        lx.expect(b")")
    for option in options:
        if option not in known:
            raise ParseError(f"unknown {what} option {option[:40]}")
    return options


def _list(lx: Lexer) -> ListArgs:
    """RFC 9051 §6.3.9: "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
    [SP list-return-opts]; mbox-or-pat = list-mailbox / "(" list-mailbox *(SP ...) ")"."""
    lx.sp()
    select: list[str] = []
    if lx.peek() == ord("("):
        select = _options(lx, _LIST_SELECT, "LIST selection")
        # RFC 5258 §3: "RECURSIVEMATCH ... MUST NOT occur as the only selection option"
        if "RECURSIVEMATCH" in select and not set(select) - {"RECURSIVEMATCH", "REMOTE"}:
            raise ParseError("RECURSIVEMATCH needs another selection option")
        lx.sp()
    reference = lx.astring()
    lx.sp()
    if lx.accept(b"("):
        patterns = [lx.list_mailbox()]
        while lx.accept(b" "):
            patterns.append(lx.list_mailbox())
        lx.expect(b")")
    else:
        patterns = [lx.list_mailbox()]
    returns: list[str] = []
    status: tuple[str, ...] = ()
    if lx.accept(b" "):
        if not lx.accept_word("RETURN"):
            raise ParseError(f"expected RETURN at octet {lx.pos}")
        lx.sp()
        lx.expect(b"(")
        while not lx.accept(b")"):
            if returns:
                lx.sp()
            option = lx.atom().upper()
            if option not in _LIST_RETURN:
                raise ParseError(f"unknown LIST return option {option[:40]}")
            if option == "STATUS":
                # RFC 5819 §2: "STATUS" SP "(" status-att *(SP status-att) ")"
                lx.sp()
                status = _status_items(lx)
            returns.append(option)
    decoded = [_decode_pattern(p) for p in patterns]
    return ListArgs(_decode_pattern(reference), decoded[0], tuple(select), tuple(decoded[1:]),
                    tuple(returns), status)


_STATUS_ITEMS = frozenset({"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE",
                           "RECENT", "HIGHESTMODSEQ"})


def _status(lx: Lexer) -> Status:
    lx.sp()
    mailbox = _mailbox(lx)
    lx.sp()
    return Status(mailbox, _status_items(lx))


def _status_items(lx: Lexer) -> tuple[str, ...]:
    items = _atom_list(lx)
    for item in items:
        if item not in _STATUS_ITEMS:
            raise ParseError(f"unknown status item {item}")
    return tuple(items)


_SIMPLE_FETCH = ("BODYSTRUCTURE", "BODY", "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.HEADER",
                 "RFC822.SIZE", "RFC822.TEXT", "RFC822", "UID", "MODSEQ")
_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


def _header_list(lx: Lexer) -> tuple[str, ...]:
    lx.expect(b"(")
    names = [lx.astring()]
    while lx.accept(b" "):
        names.append(lx.astring())
    lx.expect(b")")
    for name in names:
        # RFC 5322 §3.6.8: field-name = 1*ftext ; printable US-ASCII except ":"
        if not name or any(not (33 <= ord(c) <= 126) or c == ":" for c in name):
            raise ParseError("bad header field name")
    return tuple(names)


def _section_text(lx: Lexer, allow_mime: bool) -> tuple[str, tuple[str, ...]]:
    for text in ("HEADER.FIELDS.NOT", "HEADER.FIELDS", "HEADER", "TEXT", "MIME"):
        if (text != "MIME" or allow_mime) and lx.accept_word(text):
            fields: tuple[str, ...] = ()
            if text.startswith("HEADER.FIELDS"):
                lx.sp()
                fields = _header_list(lx)
            return text, fields
    raise ParseError(f"bad section at octet {lx.pos}")


def _section(lx: Lexer) -> Section:
    # RFC 9051 §9: section = "[" [section-spec] "]" ; section-spec = section-msgtext /
    # (section-part ["." section-text]) ; section-part = nz-number *("." nz-number)
    lx.expect(b"[")
    part: list[int] = []
    text: str | None = None
    fields: tuple[str, ...] = ()
    if lx.accept(b"]"):
        return Section()
    if lx.peek() in _NZ_DIGITS:
        part.append(lx.nz_number())
        while lx.accept(b"."):
            if lx.peek() in _NZ_DIGITS:
                part.append(lx.nz_number())
            else:
                text, fields = _section_text(lx, allow_mime=True)
                break
    else:
        text, fields = _section_text(lx, allow_mime=False)
    lx.expect(b"]")
    return Section(tuple(part), text, fields)


_NZ_DIGITS = frozenset(b"123456789")


def _partial(lx: Lexer) -> tuple[int, int] | None:
    """``<origin.length>`` after a section, if there."""
    if not lx.accept(b"<"):
        return None
    origin = lx.number()
    lx.expect(b".")
    length = lx.nz_number()
    lx.expect(b">")
    return (origin, length)


def _section_binary(lx: Lexer) -> Section:
    """RFC 9051 §9: section-binary = "[" [section-part] "]"."""
    lx.expect(b"[")
    part: list[int] = []
    if not lx.accept(b"]"):
        part.append(lx.nz_number())
        while lx.accept(b"."):
            part.append(lx.nz_number())
        lx.expect(b"]")
    return Section(tuple(part))


def _fetch_att(lx: Lexer) -> FetchItem:
    if lx.accept_word("BINARY.SIZE"):
        return FetchItem("BINARY.SIZE", _section_binary(lx))
    binary_peek = lx.accept_word("BINARY.PEEK")
    if binary_peek or (lx.peek_bytes(7).upper() == b"BINARY[" and lx.accept_word("BINARY")):
        section = _section_binary(lx)
        return FetchItem("BINARY", section, _partial(lx), binary_peek)
    peek = lx.accept_word("BODY.PEEK")
    if peek or (lx.peek_bytes(5).upper() == b"BODY[" and lx.accept_word("BODY")):
        section = _section(lx)
        return FetchItem("BODY", section, _partial(lx), peek)
    for name in _SIMPLE_FETCH:
        if lx.accept_word(name):
            return FetchItem(name)
    raise ParseError(f"unknown fetch attribute at octet {lx.pos}")


def _fetch_items(lx: Lexer) -> tuple[FetchItem, ...]:
    for macro, names in _MACROS.items():
        if lx.accept_word(macro):
            return tuple(FetchItem(n) for n in names)
    if lx.accept(b"("):
        items = [_fetch_att(lx)]
        while lx.accept(b" "):
            items.append(_fetch_att(lx))
        lx.expect(b")")
        return tuple(items)
    return (_fetch_att(lx),)


def _fetch(lx: Lexer) -> Fetch:
    lx.sp()
    seqset = _seqset(lx)
    lx.sp()
    items = _fetch_items(lx)
    if not lx.accept(b" "):
        return Fetch(seqset, items)
    # fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")" (RFC 4466 §2.4);
    # RFC 7162 §7: fetch-modifier =/ chgsince-fetch-mod / "VANISHED".
    changedsince: int | None = None
    vanished = False
    lx.expect(b"(")
    while True:
        if lx.accept_word("CHANGEDSINCE") and changedsince is None:
            lx.sp()
            changedsince = _mod_sequence(lx, zero=False)
        elif lx.accept_word("VANISHED") and not vanished:
            vanished = True
        else:
            raise ParseError(f"unknown or repeated fetch modifier at octet {lx.pos}")
        if not lx.accept(b" "):
            break
    lx.expect(b")")
    return Fetch(seqset, items, changedsince, vanished)


def _store(lx: Lexer) -> Store:
    lx.sp()
    seqset = _seqset(lx)
    lx.sp()
    unchangedsince: int | None = None
    if lx.peek() == ord("("):
        unchangedsince = _unchangedsince(lx)
        lx.sp()
    mode = ""
    if lx.accept(b"+"):
        mode = "+"
    elif lx.accept(b"-"):
        mode = "-"
    silent = False
    if lx.accept_word("FLAGS.SILENT"):
        silent = True
    elif not lx.accept_word("FLAGS"):
        raise ParseError("expected FLAGS")
    lx.sp()
    if lx.peek() == ord("("):
        flags = lx.flag_list()
    else:
        found = [lx.flag()]
        while lx.accept(b" "):
            found.append(lx.flag())
        flags = tuple(found)
    _check_store_flags(flags)
    return Store(seqset, mode, silent, flags, unchangedsince)


def _check_store_flags(flags: tuple[str, ...]) -> None:
    for flag in flags:
        # RFC 9051 §2.3.2: \Recent is not settable ("flag-perm" excludes it).
        if flag.upper() == "\\RECENT":
            raise ParseError("\\Recent cannot be stored")


def _copy(lx: Lexer) -> Copy:
    lx.sp()
    seqset = _seqset(lx)
    lx.sp()
    return Copy(seqset, _mailbox(lx))


def _uid_expunge(lx: Lexer) -> UidExpunge:
    lx.sp()
    return UidExpunge(_seqset(lx))


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DATE_TIME = re.compile(
    rb'"([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"'
)


def _date_time(lx: Lexer) -> datetime:
    # RFC 9051 §9: date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone
    m = _DATE_TIME.match(lx.data, lx.pos)
    if m is None:
        raise ParseError("bad date-time")
    lx.pos = m.end()
    day, mon, year, hh, mm, ss, sign, zh, zm = (g.decode("ascii") for g in m.groups())
    if mon.upper() not in _MONTHS:
        raise ParseError("bad month")
    offset = timedelta(hours=int(zh), minutes=int(zm)) * (1 if sign == "+" else -1)
    try:
        return datetime(int(year), _MONTHS.index(mon.upper()) + 1, int(day.strip()), int(hh),
                        int(mm), int(ss), tzinfo=timezone(offset))
    except ValueError as exc:
        raise ParseError("bad date-time") from exc


def _append(lx: Lexer) -> Append:
    lx.sp()
    mailbox = _mailbox(lx)
    lx.sp()
    flags: tuple[str, ...] = ()
    when: datetime | None = None
    if lx.peek() == ord("("):
        flags = lx.flag_list()
        _check_store_flags(flags)
        lx.sp()
    if lx.peek() == ord('"'):
        when = _date_time(lx)
        lx.sp()
    if lx.peek() not in (ord("{"), ord("~")):
        raise ParseError("APPEND needs a literal")
    # RFC 9051 §9: append-data = literal / literal8 (RFC 3516 §4.4: binary content)
    message = lx.literal(allow_literal8=True).data
    return Append(mailbox, flags, when, message)


def _enable(lx: Lexer) -> Enable:
    caps: list[str] = []
    while lx.accept(b" "):
        caps.append(lx.atom().upper())
    if not caps:
        raise ParseError("ENABLE needs a capability")
    return Enable(tuple(caps))


def _id(lx: Lexer) -> Id:
    lx.sp()
    if lx.accept_word("NIL"):
        return Id(None)
    lx.expect(b"(")
    params: list[tuple[str, str | None]] = []
    if not lx.accept(b")"):
        while True:
            key = lx.string().decode("utf-8", "replace")
            lx.sp()
            params.append((key, lx.nstring()))
            if lx.accept(b")"):
                break
            lx.sp()
    # RFC 2971 §3.3: "Field strings MUST NOT be longer than 30 octets" and at most 30 pairs.
    if len(params) > 30:
        raise ParseError("too many ID parameters")
    return Id(tuple(params))


# -- SEARCH ------------------------------------------------------------------------------------

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False),
    "RECENT": ("\\Recent", True), "OLD": ("\\Recent", False),
}
_HEADER_KEYS = ("BCC", "CC", "FROM", "SUBJECT", "TO")
_DATE_KEYS = {"BEFORE": ("BEFORE", False), "ON": ("ON", False), "SINCE": ("SINCE", False),
              "SENTBEFORE": ("BEFORE", True), "SENTON": ("ON", True),
              "SENTSINCE": ("SINCE", True)}
_SEARCH_DATE = re.compile(rb'("?)(\d{1,2})-([A-Za-z]{3})-(\d{4})\1')
_MAX_SEARCH_DEPTH = 64


def _search_date(lx: Lexer) -> date:
    m = _SEARCH_DATE.match(lx.data, lx.pos)
    if m is None:
        raise ParseError("bad search date")
    lx.pos = m.end()
    mon = m.group(3).decode("ascii").upper()
    if mon not in _MONTHS:
        raise ParseError("bad month")
    try:
        return date(int(m.group(4)), _MONTHS.index(mon) + 1, int(m.group(2)))
    except ValueError as exc:
        raise ParseError("bad search date") from exc


def _search_key(lx: Lexer, depth: int = 0) -> SearchKey:
    if depth > _MAX_SEARCH_DEPTH:
        raise ParseError("search program nested too deeply")
    c = lx.peek()
    if c == ord("("):
        lx.pos += 1
        keys = _search_keys(lx, depth + 1)
        lx.expect(b")")
        return keys
    if c is not None and (0x30 <= c <= 0x39 or c == ord("*")):
        return SearchSet(_seqset(lx), uid=False)
    word = lx.atom().upper()
    if word == "ALL":
        return SearchAll()
    if word == "NEW":
        return SearchAnd((SearchFlag("\\Recent", True), SearchFlag("\\Seen", False)))
    if word in _FLAG_KEYS:
        flag, present = _FLAG_KEYS[word]
        return SearchFlag(flag, present)
    if word in ("KEYWORD", "UNKEYWORD"):
        lx.sp()
        return SearchFlag(lx.atom(), word == "KEYWORD")
    if word in _HEADER_KEYS:
        lx.sp()
        return SearchHeader(word.capitalize() if word != "BCC" else "Bcc", lx.astring())
    if word == "HEADER":
        lx.sp()
        field = lx.astring()
        lx.sp()
        return SearchHeader(field, lx.astring())
    if word in ("BODY", "TEXT"):
        lx.sp()
        return SearchText(lx.astring(), whole_message=word == "TEXT")
    if word in ("LARGER", "SMALLER"):
        lx.sp()
        return SearchSize(word == "LARGER", lx.number())
    if word in _DATE_KEYS:
        lx.sp()
        op, sent = _DATE_KEYS[word]
        return SearchDate(op, _search_date(lx), sent)
    if word == "UID":
        lx.sp()
        return SearchSet(_seqset(lx), uid=True)
    if word == "MODSEQ":
        # "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer (RFC 7162 §7);
        # entry-name = entry-flag-name, a quoted "/flags/" attr-flag; the entry is not used.
        lx.sp()
        if lx.peek() == ord('"'):
            lx.quoted()
            lx.sp()
            if lx.atom().lower() not in ("priv", "shared", "all"):
                raise ParseError("bad entry-type-req")
            lx.sp()
        return SearchModseq(_mod_sequence(lx, zero=True))
    if word == "NOT":
        lx.sp()
        return SearchNot(_search_key(lx, depth + 1))
    if word == "OR":
        lx.sp()
        left = _search_key(lx, depth + 1)
        lx.sp()
        return SearchOr(left, _search_key(lx, depth + 1))
    raise ParseError(f"unknown search key {word}")


def _search_keys(lx: Lexer, depth: int) -> SearchKey:
    keys = [_search_key(lx, depth)]
    while lx.peek() == ord(" "):
        lx.pos += 1
        keys.append(_search_key(lx, depth))
    return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def _search(lx: Lexer) -> Search:
    lx.sp()
    return_opts: tuple[str, ...] | None = None
    if lx.accept_word("RETURN"):
        lx.sp()
        return_opts = tuple(_options(lx, _SEARCH_RETURN, "SEARCH return"))
        lx.sp()
    charset: str | None = None
    if lx.accept_word("CHARSET"):
        lx.sp()
        charset = lx.astring().upper()
        lx.sp()
    return Search(charset, _search_keys(lx, 0), return_opts)


_PARSERS: dict[str, Callable[[Lexer], CommandArgs]] = {
    "CAPABILITY": _no_args, "NOOP": _no_args, "LOGOUT": _no_args, "STARTTLS": _no_args,
    "CHECK": _no_args, "CLOSE": _no_args, "UNSELECT": _no_args, "EXPUNGE": _no_args,
    "IDLE": _no_args, "NAMESPACE": _no_args,
    "LOGIN": _login, "AUTHENTICATE": _authenticate,
    "SELECT": _select, "EXAMINE": _select, "CREATE": _mailbox_arg,
    "DELETE": _mailbox_arg, "SUBSCRIBE": _mailbox_arg, "UNSUBSCRIBE": _mailbox_arg,
    "RENAME": _rename,
    "LIST": _list, "LSUB": _lsub, "STATUS": _status, "APPEND": _append,
    "FETCH": _fetch, "STORE": _store, "SEARCH": _search, "COPY": _copy, "MOVE": _copy,
    "ENABLE": _enable, "ID": _id,
}
_UID_PARSERS: dict[str, Callable[[Lexer], CommandArgs]] = {
    "FETCH": _fetch, "STORE": _store, "SEARCH": _search, "COPY": _copy, "MOVE": _copy,
    "EXPUNGE": _uid_expunge,
}

#: Every command name :func:`parse_command` can return.
COMMAND_NAMES = frozenset(_PARSERS) | frozenset(f"UID {n}" for n in _UID_PARSERS)


_LITERAL_MARK_AT_END = re.compile(rb"\{\d+\+?\}\Z")


def parse_command(line: bytes) -> Command | InvalidCommand:
    """Parse one complete command (literals inline, with or without the final CRLF)."""
    if line.endswith(b"\r\n") and not _LITERAL_MARK_AT_END.search(line, 0, len(line) - 2):
        line = line[:-2]
    return _parse(line)


def _parse(line: bytes) -> Command | InvalidCommand:
    lx = Lexer(line)
    tag: str | None = None
    try:
        tag = lx.tag()
        if not lx.at_end() and lx.peek() != 0x20:
            return InvalidCommand(None, "invalid tag")
        lx.sp()
        name = lx.atom().upper()
        if name == "UID":
            lx.sp()
            sub = lx.atom().upper()
            uid_parser = _UID_PARSERS.get(sub)
            if uid_parser is None:
                return InvalidCommand(tag, f"unknown UID command {sub[:40]}")
            name = f"UID {sub}"
            args = uid_parser(lx)
        else:
            parser = _PARSERS.get(name)
            if parser is None:
                return InvalidCommand(tag, f"unknown command {name[:40]}")
            args = parser(lx)
        lx.end()
    except ParseError as exc:
        return InvalidCommand(tag, exc.reason)
    return Command(tag, name, args)


# ---------------------------------------------------------------------------------------------
# Incremental reader
# ---------------------------------------------------------------------------------------------

_LITERAL_AT_END = re.compile(rb"\{(\d{1,20})(\+?)\}\r\n\Z")


class CommandReader:
    """Cuts the client's byte stream into commands, bounded in memory.

    A line longer than ``max_line`` is answered with :class:`InvalidCommand` as soon as it
    exceeds the limit and is then discarded up to its CRLF without being buffered. A literal
    over ``max_literal`` (or that would take the command over ``max_line + max_literal``) is
    refused with :class:`LiteralTooLarge` before any of its octets are read."""

    def __init__(self, max_line: int = 65536, max_literal: int = 10 * 1024 * 1024) -> None:
        self.max_line = max_line
        #: May be changed between commands (a server allows larger literals once the client
        #: has authenticated).
        self.max_literal = max_literal
        self._buf = bytearray()
        self._cmd = bytearray()  # the command so far (lines and literals)
        self._literal_left = 0  # octets of an accepted literal still to read into _cmd
        self._discard_left = 0  # octets of a refused literal+ still to drop
        self._skip_line = False  # drop input up to the next LF
        self._skip_command = False  # after a refused literal+: drop the rest of the command
        self._non_sync = False  # the command being read has a non-synchronizing literal
        #: Whether the last command returned by :meth:`next_event` had a non-synchronizing
        #: literal (RFC 7888).
        self.last_had_non_sync_literal = False

    @property
    def _max_command(self) -> int:
        return self.max_line + self.max_literal

    @property
    def buffered(self) -> int:
        """Octets received but not yet consumed."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def discard_buffer(self) -> None:
        """Drop everything received so far (RFC 9051 §6.2.1: after the STARTTLS OK, input
        received before the TLS negotiation must not be treated as a command)."""
        self._buf.clear()
        self._reset()

    def _reset(self) -> None:
        self._cmd.clear()
        self._literal_left = 0
        self._non_sync = False

    def pending_command(self) -> bytes:
        """The octets of a command still being read (lines and literal octets so far)."""
        return bytes(self._cmd)

    def next_line(self) -> bytes | None:
        """One raw line without its CRLF, for IDLE's DONE and AUTHENTICATE responses; None when
        no complete line is buffered. A line over ``max_line`` comes back cut at the limit (the
        rest is discarded)."""
        idx = self._buf.find(b"\n", 0, self.max_line + 2)
        if idx < 0:
            if len(self._buf) > self.max_line:
                line = bytes(self._buf[: self.max_line])
                self._buf.clear()
                self._skip_line = True
                return line
            return None
        line = bytes(self._buf[:idx + 1])
        del self._buf[: idx + 1]
        if self._skip_line:
            self._skip_line = False
            return self.next_line()
        return line.rstrip(b"\r\n")

    def next_event(self) -> Event | None:
        while True:
            if self._discard_left:
                n = min(self._discard_left, len(self._buf))
                del self._buf[:n]
                self._discard_left -= n
                if self._discard_left:
                    return None
                # The rest of the refused command follows the literal: skip it too.
                self._skip_line = True
                self._skip_command = True
                continue
            if self._literal_left:
                n = min(self._literal_left, len(self._buf))
                self._cmd += self._buf[:n]
                del self._buf[:n]
                self._literal_left -= n
                if self._literal_left:
                    return None
                continue
            if self._skip_line:
                idx = self._buf.find(b"\n")
                if idx < 0:
                    self._buf.clear()
                    return None
                line = bytes(self._buf[: idx + 1])
                del self._buf[: idx + 1]
                self._skip_line = False
                if self._skip_command:
                    m = _LITERAL_AT_END.search(line)
                    if m is not None and m.group(2):
                        self._discard_left = int(m.group(1))
                        continue
                    self._skip_command = False
                continue
            idx = self._buf.find(b"\n", 0, self.max_line + 2)
            if idx < 0:
                if len(self._buf) > self.max_line:
                    tag = extract_tag(bytes(self._cmd or self._buf[:256]))
                    self._buf.clear()
                    self._reset()
                    self._skip_line = True
                    return InvalidCommand(tag, "line too long")
                return None
            line = bytes(self._buf[: idx + 1])
            del self._buf[: idx + 1]
            if not line.endswith(b"\r\n"):
                tag = extract_tag(bytes(self._cmd) or line)
                self._reset()
                # RFC 9051 §2.2: "All interactions ... are in the form of lines, that is,
                # strings that end with a CRLF."
                return InvalidCommand(tag, "line must end with CRLF")
            if len(self._cmd) + len(line) > self._max_command:
                tag = extract_tag(bytes(self._cmd))
                self._reset()
                return InvalidCommand(tag, "command too long")
            self._cmd += line
            m = _LITERAL_AT_END.search(line)
            if m is None:
                data = bytes(self._cmd[:-2])
                self.last_had_non_sync_literal = self._non_sync
                self._reset()
                return _parse(data)
            size = int(m.group(1))
            non_sync = bool(m.group(2))
            if size > self.max_literal or len(self._cmd) + size > self._max_command:
                tag = extract_tag(bytes(self._cmd))
                self._reset()
                if non_sync:
                    self._discard_left = size
                    if size == 0:
                        self._skip_line = True
                        self._skip_command = True
                return LiteralTooLarge(tag, size, non_sync)
            self._literal_left = size
            self._non_sync = self._non_sync or non_sync
            if not non_sync:
                return NeedContinuation(size)
