"""IMAP command parser (RFC 9051 §6, §9): one complete command's bytes to a typed value."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from harness.protocol.imap import mutf7
from harness.protocol.imap.chars import DIGIT_NZ
from harness.protocol.imap.command_values import (
    Append,
    AppendMessage,
    Authenticate,
    CancelUpdate,
    CatPart,
    Command,
    CommandArgs,
    Compress,
    Copy,
    Enable,
    Fetch,
    FetchItem,
    Id,
    InvalidCommand,
    ListArgs,
    Login,
    MailboxArg,
    Notify,
    NotifyGroup,
    QResync,
    QuotaRoot,
    Rename,
    Section,
    SetQuota,
    Status,
    Store,
    UidExpunge,
    WireName,
)
from harness.protocol.imap.lexer import MONTHS, Lexer, ParseError
from harness.protocol.imap.search_grammar import parse_search, parse_sort, parse_thread
from harness.protocol.imap.seqset import SequenceSet


def _mailbox(lx: Lexer) -> str:
    raw = lx.astring()
    return normalise_mailbox(raw)


def normalise_mailbox(raw: str) -> str:
    """Decode a wire mailbox name: modified UTF-7 when ASCII (RFC 3501 §5.1.3), UTF-8 as is
    (IMAP4rev2); "INBOX" in any case becomes "INBOX" (RFC 9051 §5.1 "The case-insensitive
    mailbox name INBOX is a special name"). An ASCII name with "&" comes back as a
    :class:`WireName`: one that is not valid modified UTF-7 is still a well-formed astring, so
    it is the session's to refuse (NO), not the grammar's (see :func:`resolve_names`)."""
    if raw.isascii() and "&" in raw:
        try:
            return WireName(_inbox(mutf7.decode(raw)), raw, valid=True)
        except ValueError:
            return WireName(raw, raw, valid=False)
    if raw.isascii():
        try:
            name = mutf7.decode(raw)
        except ValueError as exc:
            raise ParseError(f"bad mailbox name: {exc}") from exc
    else:
        name = raw
    return _inbox(name)


def _inbox(name: str) -> str:
    if name.upper() == "INBOX":
        return "INBOX"
    if name[:6].upper() == "INBOX/":
        return "INBOX" + name[5:]
    return name


def resolve_names(args: CommandArgs, *, utf8: bool) -> CommandArgs | str:
    """The command's arguments with each mailbox name read as the session reads names: after
    ENABLE IMAP4rev2 (*utf8*) as sent — RFC 9051 §5.1: "In IMAP4rev2, mailbox names are
    encoded in Net-Unicode", where "&" has no special meaning — else in modified UTF-7. Returns
    the name as sent instead when a mailbox name (not a LIST pattern) is not valid modified
    UTF-7: the command is well formed, and the answer is NO."""
    if args is None or not dataclasses.is_dataclass(args):
        return args
    changes: dict[str, object] = {}
    for f in dataclasses.fields(args):
        value = getattr(args, f.name)
        if isinstance(value, tuple) and any(isinstance(v, WireName) for v in value):
            resolved = tuple(_resolve(v, utf8) for v in value)
            if any(r is None for r in resolved):
                return next(str(v.wire) for v, r in zip(value, resolved, strict=True)
                            if r is None)
            changes[f.name] = resolved
        elif isinstance(value, WireName):
            one = _resolve(value, utf8)
            if one is None:
                return value.wire
            changes[f.name] = one
    if not changes:
        return args
    return cast(CommandArgs, dataclasses.replace(cast(Any, args), **changes))


def _resolve(value: object, utf8: bool) -> object | None:
    if not isinstance(value, WireName):
        return value
    if utf8:
        return value.wire if value.pattern else _inbox(value.wire)
    if not value.valid and not value.pattern:
        return None
    return str(value)


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


def _create(lx: Lexer) -> MailboxArg:
    """CREATE mailbox [create-params] (RFC 4466 §2.2); RFC 6154 §6: create-param =/ "USE" SP
    "(" [use-attr *(SP use-attr)] ")", use-attr = "\\" atom."""
    arg = _mailbox_arg(lx)
    if not lx.accept(b" "):
        return arg
    lx.expect(b"(")
    if not lx.accept_word("USE"):
        raise ParseError(f"unknown create parameter at octet {lx.pos}")
    lx.sp()
    lx.expect(b"(")
    use: list[str] = []
    if not lx.accept(b")"):
        while True:
            attr = lx.flag()
            if not attr.startswith("\\") or attr == "\\*":
                raise ParseError("a use-attr is a backslash and an atom")
            use.append(attr)
            if lx.accept(b")"):
                break
            lx.sp()
    lx.expect(b")")
    return MailboxArg(arg.mailbox, arg.raw, use=tuple(use))


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
    found = lx.seqset()
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
    modseq = lx.mod_sequence(zero=False)
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


def _unchangedsince(lx: Lexer) -> int:
    """``(UNCHANGEDSINCE value)``: the one store-modifier (RFC 7162 §3.1.3); 0 is allowed."""
    lx.expect(b"(")
    if not lx.accept_word("UNCHANGEDSINCE"):
        raise ParseError(f"unknown modifier at octet {lx.pos}; expected UNCHANGEDSINCE")
    lx.sp()
    value = lx.mod_sequence(zero=True)
    lx.expect(b")")
    return value


def _rename(lx: Lexer) -> Rename:
    lx.sp()
    old = _mailbox(lx)
    lx.sp()
    return Rename(old, _mailbox(lx))


def _decode_pattern(raw: str) -> str:
    if raw.isascii() and "&" in raw:
        try:
            return WireName(mutf7.decode(raw), raw, valid=True, pattern=True)
        except ValueError:
            return WireName(raw, raw, valid=False, pattern=True)
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



def _list(lx: Lexer) -> ListArgs:
    """RFC 9051 §6.3.9: "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
    [SP list-return-opts]; mbox-or-pat = list-mailbox / "(" list-mailbox *(SP ...) ")"."""
    lx.sp()
    select: list[str] = []
    if lx.peek() == ord("("):
        select = lx.options(_LIST_SELECT, "LIST selection")
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
                           "RECENT", "HIGHESTMODSEQ",
                           "MAILBOXID",  # RFC 8474 §4.3
                           "DELETED-STORAGE"})  # RFC 9208 §4.1.4


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
                 "RFC822.SIZE", "RFC822.TEXT", "RFC822", "UID", "MODSEQ",
                 "EMAILID", "THREADID")  # RFC 8474 §5.3
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
    if lx.peek() in DIGIT_NZ:
        part.append(lx.nz_number())
        while lx.accept(b"."):
            if lx.peek() in DIGIT_NZ:
                part.append(lx.nz_number())
            else:
                text, fields = _section_text(lx, allow_mime=True)
                break
    else:
        text, fields = _section_text(lx, allow_mime=False)
    lx.expect(b"]")
    return Section(tuple(part), text, fields)




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
    if lx.accept_word("PREVIEW"):
        # RFC 8970 §6: fetch-att =/ "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"];
        # preview-mod = "LAZY"
        if lx.peek_bytes(2) != b" (" or lx.data[lx.pos + 2:lx.pos + 6].upper() != b"LAZY":
            return FetchItem("PREVIEW")
        lx.pos += 2
        while True:
            if not lx.accept_word("LAZY"):
                raise ParseError(f"unknown preview modifier at octet {lx.pos}")
            if not lx.accept(b" "):
                break
        lx.expect(b")")
        return FetchItem("PREVIEW", lazy=True)
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
    seqset = lx.seqset()
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
            changedsince = lx.mod_sequence(zero=False)
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
    seqset = lx.seqset()
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
    seqset = lx.seqset()
    lx.sp()
    return Copy(seqset, _mailbox(lx))


def _uid_expunge(lx: Lexer) -> UidExpunge:
    lx.sp()
    return UidExpunge(lx.seqset())


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
    if mon.upper() not in MONTHS:
        raise ParseError("bad month")
    offset = timedelta(hours=int(zh), minutes=int(zm)) * (1 if sign == "+" else -1)
    try:
        return datetime(int(year), MONTHS.index(mon.upper()) + 1, int(day.strip()), int(hh),
                        int(mm), int(ss), tzinfo=timezone(offset))
    except ValueError as exc:
        raise ParseError("bad date-time") from exc


def parse_date_time(text: str) -> datetime:
    """A date-time written without its DQUOTEs (``"17-Jul-1996 02:44:25 -0700"``)."""
    lx = Lexer(b'"' + text.encode("utf-8") + b'"')
    when = _date_time(lx)
    lx.end()
    return when


def _append(lx: Lexer) -> Append:
    """RFC 3502 §6.3.11: append = "APPEND" SP mailbox 1*append-message; append-message =
    [SP flag-list] [SP date-time] SP literal — the literal or, RFC 4469 §5, CATENATE parts."""
    lx.sp()
    mailbox = _mailbox(lx)
    lx.sp()
    messages = [_append_message(lx)]
    while lx.accept(b" "):
        messages.append(_append_message(lx))
    first = messages[0]
    return Append(mailbox, first.flags, first.date, first.message, first.catenate,
                  tuple(messages[1:]), utf8=first.utf8)


def _append_message(lx: Lexer) -> AppendMessage:
    flags: tuple[str, ...] = ()
    when: datetime | None = None
    if lx.peek() == ord("("):
        flags = lx.flag_list()
        _check_store_flags(flags)
        lx.sp()
    if lx.peek() == ord('"'):
        when = _date_time(lx)
        lx.sp()
    if lx.accept_word("CATENATE"):
        # RFC 4469 §5: "CATENATE" SP "(" cat-part *(SP cat-part) ")"
        lx.sp()
        lx.expect(b"(")
        parts = [_cat_part(lx)]
        while lx.accept(b" "):
            parts.append(_cat_part(lx))
        lx.expect(b")")
        return AppendMessage(flags, when, b"", tuple(parts))
    if lx.accept_word("UTF8"):
        # RFC 6855 §4: utf8-literal = "UTF8" SP "(" literal8 ")"; append-data =/ utf8-literal
        lx.sp()
        lx.expect(b"(")
        if lx.peek() != ord("~"):
            raise ParseError("UTF8 append data needs a literal8")
        message = lx.literal(allow_literal8=True).data
        lx.expect(b")")
        return AppendMessage(flags, when, message, utf8=True)
    if lx.peek() not in (ord("{"), ord("~")):
        raise ParseError("APPEND needs a literal")
    # RFC 9051 §9: append-data = literal / literal8 (RFC 3516 §4.4: binary content)
    return AppendMessage(flags, when, lx.literal(allow_literal8=True).data)


def _cat_part(lx: Lexer) -> CatPart:
    """RFC 4469 §5: cat-part = text-literal / url; text-literal = "TEXT" SP literal;
    url = "URL" SP astring."""
    if lx.accept_word("TEXT"):
        lx.sp()
        return CatPart("TEXT", lx.literal().data)
    if lx.accept_word("URL"):
        lx.sp()
        return CatPart("URL", lx.astring_bytes())
    raise ParseError(f"expected TEXT or URL at octet {lx.pos}")


def parse_section(text: str) -> Section:
    """A section-spec written without its brackets (``1.MIME``, ``HEADER``): the section of
    an IMAP URL (RFC 5092 §3: enc-section, once %-decoded)."""
    lx = Lexer(b"[" + text.encode("utf-8") + b"]")
    section = _section(lx)
    lx.end()
    return section


def _enable(lx: Lexer) -> Enable:
    caps: list[str] = []
    while lx.accept(b" "):
        caps.append(lx.atom().upper())
    if not caps:
        raise ParseError("ENABLE needs a capability")
    return Enable(tuple(caps))


def _cancelupdate(lx: Lexer) -> CancelUpdate:
    # RFC 5267 §5: command-select =/ "CANCELUPDATE" 1*(SP quoted)
    tags: list[str] = []
    while lx.accept(b" "):
        tags.append(lx.quoted().decode("utf-8", "replace"))
    if not tags:
        raise ParseError("CANCELUPDATE needs a tag")
    return CancelUpdate(tuple(tags))


def _compress(lx: Lexer) -> Compress:
    """RFC 4978 §5: compress = "COMPRESS" SP algorithm; any atom is read here, so that an
    unknown algorithm is the server's to refuse (BAD, §3)."""
    lx.sp()
    return Compress(lx.atom().upper())


#: RFC 5465 §8: the events by name as the RFC writes them (matched case-insensitively).
NOTIFY_EVENTS = ("MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange",
                 "MailboxName", "SubscriptionChange", "MailboxMetadataChange",
                 "ServerMetadataChange")
_NOTIFY_FILTERS = ("SELECTED-DELAYED", "SELECTED", "INBOXES", "PERSONAL", "SUBSCRIBED",
                   "SUBTREE", "MAILBOXES")


def _notify_group(lx: Lexer) -> NotifyGroup:
    """event-group = "(" filter-mailboxes SP events ")" (RFC 5465 §8)."""
    lx.expect(b"(")
    name = next((f for f in _NOTIFY_FILTERS if lx.accept_word(f)), None)
    if name is None:
        raise ParseError(f"unknown NOTIFY mailbox filter at octet {lx.pos}")
    mailboxes: list[str] = []
    if name in ("SUBTREE", "MAILBOXES"):
        # one-or-more-mailbox = mailbox / many-mailboxes; "The server MUST NOT do a wildcard
        # expansion" (§6.6): the names are taken as they are.
        lx.sp()
        if lx.accept(b"("):
            mailboxes.append(_mailbox(lx))
            while lx.accept(b" "):
                mailboxes.append(_mailbox(lx))
            lx.expect(b")")
        else:
            mailboxes.append(_mailbox(lx))
    lx.sp()
    events: list[str] = []
    fetch: tuple[FetchItem, ...] = ()
    if not lx.accept_word("NONE"):
        lx.expect(b"(")
        while True:
            word = lx.atom()
            event = next((e for e in NOTIFY_EVENTS if e.upper() == word.upper()), word.upper())
            events.append(event)
            if event == "MessageNew" and lx.peek_bytes(2) == b" (":
                lx.sp()
                fetch = _fetch_items(lx)
            if not lx.accept(b" "):
                break
        lx.expect(b")")
    lx.expect(b")")
    return NotifyGroup(name, tuple(mailboxes), tuple(events), fetch)


def _notify(lx: Lexer) -> Notify:
    """notify = "NOTIFY" SP (notify-set / notify-none); notify-set = "SET" [SP "STATUS"] SP
    event-groups (RFC 5465 §8)."""
    lx.sp()
    if lx.accept_word("NONE"):
        return Notify(None)
    if not lx.accept_word("SET"):
        raise ParseError("NOTIFY needs SET or NONE")
    lx.sp()
    status = lx.accept_word("STATUS")
    if status:
        lx.sp()
    groups = [_notify_group(lx)]
    while lx.accept(b" "):
        groups.append(_notify_group(lx))
    return Notify(tuple(groups), status)


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


def _getquota(lx: Lexer) -> QuotaRoot:
    # RFC 9208 §7: getquota = "GETQUOTA" SP quota-root-name; quota-root-name = astring
    lx.sp()
    return QuotaRoot(lx.astring())


def _setquota(lx: Lexer) -> SetQuota:
    # RFC 9208 §7: setquota = "SETQUOTA" SP quota-root-name SP setquota-list; setquota-list =
    # "(" [setquota-resource *(SP setquota-resource)] ")"; setquota-resource = resource-name SP
    # resource-limit; resource-name = atom; resource-limit = number64
    lx.sp()
    root = lx.astring()
    lx.sp()
    lx.expect(b"(")
    limits: list[tuple[str, int]] = []
    if not lx.accept(b")"):
        while True:
            name = lx.atom().upper()
            lx.sp()
            limits.append((name, lx.mod_sequence(zero=True)))
            if lx.accept(b")"):
                break
            lx.sp()
    return SetQuota(root, tuple(limits))


_PARSERS: dict[str, Callable[[Lexer], CommandArgs]] = {
    "CAPABILITY": _no_args, "NOOP": _no_args, "LOGOUT": _no_args, "STARTTLS": _no_args,
    "CHECK": _no_args, "CLOSE": _no_args, "UNSELECT": _no_args, "EXPUNGE": _no_args,
    "IDLE": _no_args, "NAMESPACE": _no_args,
    "LOGIN": _login, "AUTHENTICATE": _authenticate,
    "SELECT": _select, "EXAMINE": _select, "CREATE": _create,
    "DELETE": _mailbox_arg, "SUBSCRIBE": _mailbox_arg, "UNSUBSCRIBE": _mailbox_arg,
    "RENAME": _rename,
    "LIST": _list, "LSUB": _lsub, "STATUS": _status, "APPEND": _append,
    "FETCH": _fetch, "STORE": _store, "SEARCH": parse_search, "COPY": _copy, "MOVE": _copy,
    "ENABLE": _enable, "ID": _id,
    "CANCELUPDATE": _cancelupdate,
    "SORT": parse_sort, "THREAD": parse_thread,
    "COMPRESS": _compress, "NOTIFY": _notify,
    # RFC 9208 §4.1
    "GETQUOTA": _getquota, "GETQUOTAROOT": _mailbox_arg, "SETQUOTA": _setquota,
}
_UID_PARSERS: dict[str, Callable[[Lexer], CommandArgs]] = {
    "FETCH": _fetch, "STORE": _store, "SEARCH": parse_search, "COPY": _copy, "MOVE": _copy,
    "EXPUNGE": _uid_expunge,
    "SORT": parse_sort, "THREAD": parse_thread,
}

#: Every command name :func:`parse_command` can return.
COMMAND_NAMES = frozenset(_PARSERS) | frozenset(f"UID {n}" for n in _UID_PARSERS)


_LITERAL_MARK_AT_END = re.compile(rb"\{\d+\+?\}\Z")


def parse_command(line: bytes) -> Command | InvalidCommand:
    """Parse one complete command (literals inline, with or without the final CRLF)."""
    if line.endswith(b"\r\n") and not _LITERAL_MARK_AT_END.search(line, 0, len(line) - 2):
        line = line[:-2]
    return parse_command_body(line)


def parse_command_body(line: bytes) -> Command | InvalidCommand:
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
