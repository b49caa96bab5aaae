"""IMAP command formatting, client side (RFC 9051 §6, §9): a typed command value to the exact
bytes the command parser reads back, cut where a synchronising literal waits for "+"."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from harness.protocol.errors import LocalProtocolError
from harness.protocol.imap import mutf7
from harness.protocol.imap.chars import (
    ASTRING_CHAR,
    ATOM_CHAR,
    DATE_MONTHS,
    LIST_CHAR,
    TEXT_CHAR,
    is_run_of,
)
from harness.protocol.imap.command_values import (
    Append,
    AppendMessage,
    Authenticate,
    CancelUpdate,
    Command,
    CommandArgs,
    Compress,
    Copy,
    Enable,
    Fetch,
    FetchItem,
    Id,
    ListArgs,
    Login,
    MailboxArg,
    Notify,
    QResync,
    QuotaRoot,
    Rename,
    Search,
    SearchAll,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchObjectId,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchText,
    SearchWithin,
    SetQuota,
    Sort,
    Status,
    Store,
    Thread,
    UidExpunge,
)
from harness.protocol.imap.formatting import format_internaldate, quote
from harness.protocol.imap.lexer import is_tag
from harness.protocol.imap.search_grammar import DATE_KEYS, FLAG_KEYS, HEADER_KEYS
from harness.protocol.imap.seqset import SequenceSet

CRLF = b"\r\n"
#: RFC 2177 §3: "The IDLE command is terminated by the receipt of a "DONE" continuation from
#: the client".
IDLE_DONE = b"DONE\r\n"
#: RFC 9051 §6.2.2: "If the client wishes to cancel an authentication exchange, it issues a
#: line consisting of a single "*"."
AUTHENTICATE_CANCEL = b"*\r\n"


@dataclass(frozen=True, slots=True)
class _Literal:
    """``{N}`` CRLF and the octets (``~{N}`` for a literal8, RFC 3516 §4.4)."""

    data: bytes
    binary: bool = False


_Part = bytes | _Literal


# ---------------------------------------------------------------------------------------------
# Strings and atoms (RFC 9051 §4.3, §9)


def string(value: str | bytes) -> _Part:
    """A string: quoted when every octet is a TEXT-CHAR (quoted-specials escaped), else a
    literal (8-bit, CR, LF)."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    if b"\x00" in data:
        # RFC 9051 §9: "The ASCII NUL character, %x00, MUST NOT be used anywhere, with the
        # exception of the OCTET production."
        raise LocalProtocolError("a string cannot contain NUL")
    if all(b in TEXT_CHAR for b in data):
        return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return _Literal(data)


def astring(value: str) -> _Part:
    """astring = 1*ASTRING-CHAR / string: an atom when it can be one."""
    if is_run_of(value, ASTRING_CHAR):
        return value.encode("ascii")
    return string(value)


def mailbox(name: str) -> _Part:
    """RFC 9051 §5.1: mailbox names are sent in modified UTF-7 unless UTF8=ACCEPT is enabled."""
    return astring(mutf7.encode(name))


def list_mailbox(pattern: str) -> _Part:
    """list-mailbox = 1*list-char / string, the pattern in modified UTF-7."""
    encoded = mutf7.encode(pattern)
    if is_run_of(encoded, LIST_CHAR):
        return encoded.encode("ascii")
    return string(encoded)


def flag(value: str) -> bytes:
    """flag = "\\" atom (system and extension flags) / atom (flag-keyword)."""
    if not is_run_of(value[1:] if value.startswith("\\") else value, ATOM_CHAR):
        raise LocalProtocolError(f"not a flag: {value!r}")
    return value.encode("ascii")


def flag_list(flags: Iterable[str]) -> bytes:
    """flag-list = "(" [flag *(SP flag)] ")"."""
    return b"(" + b" ".join(flag(f) for f in flags) + b")"


def atom(value: str) -> bytes:
    if not is_run_of(value, ATOM_CHAR):
        raise LocalProtocolError(f"not an atom: {value!r}")
    return value.encode("ascii")


def _atoms(values: Iterable[str]) -> bytes:
    return b"(" + b" ".join(atom(v) for v in values) + b")"


def _seqset(value: SequenceSet) -> bytes:
    return value.format().encode("ascii")


# ---------------------------------------------------------------------------------------------
# Arguments, each list starting with its SP


def _login(args: Login) -> list[_Part]:
    return [b" ", astring(args.user), b" ", astring(args.password)]


def _authenticate(args: Authenticate) -> list[_Part]:
    parts: list[_Part] = [b" ", atom(args.mechanism)]
    if args.initial_response is not None:
        parts += [b" ", args.initial_response.encode("ascii")]
    return parts


def _qresync(q: QResync) -> bytes:
    # qresync-param = "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
    # [SP seq-match-data] ")" (RFC 7162 §7)
    out = b"QRESYNC (%d %d" % (q.uidvalidity, q.modseq)
    if q.known_uids is not None:
        out += b" " + _seqset(q.known_uids)
    if q.seq_match is not None:
        out += b" (" + _seqset(q.seq_match[0]) + b" " + _seqset(q.seq_match[1]) + b")"
    return out + b")"


def _mailbox_arg(args: MailboxArg) -> list[_Part]:
    parts: list[_Part] = [b" ", mailbox(args.mailbox)]
    if args.use:
        # RFC 6154 §6: create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"
        parts.append(b" (USE " + flag_list(args.use) + b")")
    params = ([b"CONDSTORE"] if args.condstore else []) + (
        [_qresync(args.qresync)] if args.qresync is not None else [])
    if params:
        # select-params = "(" select-param *(SP select-param) ")" (RFC 4466 §2.1)
        parts.append(b" (" + b" ".join(params) + b")")
    return parts


def _rename(args: Rename) -> list[_Part]:
    return [b" ", mailbox(args.old), b" ", mailbox(args.new)]


def _list(args: ListArgs) -> list[_Part]:
    parts: list[_Part] = [b" "]
    if args.select:
        parts.append(_atoms(args.select) + b" ")
    parts += [mailbox(args.reference), b" "]
    if args.more_patterns:
        parts.append(b"(")
        for i, pattern in enumerate(args.patterns):
            parts += [b" "] if i else []
            parts.append(list_mailbox(pattern))
        parts.append(b")")
    else:
        parts.append(list_mailbox(args.pattern))
    if args.returns:
        options = [b"STATUS " + _atoms(args.status) if r == "STATUS" else atom(r)
                   for r in args.returns]
        parts.append(b" RETURN (" + b" ".join(options) + b")")
    return parts


def _lsub(args: ListArgs) -> list[_Part]:
    return [b" ", mailbox(args.reference), b" ", list_mailbox(args.pattern)]


def _status(args: Status) -> list[_Part]:
    return [b" ", mailbox(args.mailbox), b" ", _atoms(args.items)]


def fetch_item(item: FetchItem) -> bytes:
    """fetch-att: BODY[.PEEK][section]<origin.length>, BINARY[.PEEK][part], BINARY.SIZE[part]
    or a plain attribute name."""
    if item.section is None:
        return atom(item.name) + (b" (LAZY)" if item.lazy else b"")
    name = item.name + (".PEEK" if item.peek else "")
    out = f"{name}[{item.section.format()}]"
    if item.partial is not None:
        out += f"<{item.partial[0]}.{item.partial[1]}>"
    return out.encode("ascii")


def fetch_items(items: Sequence[FetchItem]) -> bytes:
    return b"(" + b" ".join(fetch_item(i) for i in items) + b")"


def _fetch(args: Fetch) -> list[_Part]:
    out = b" " + _seqset(args.seqset) + b" " + fetch_items(args.items)
    modifiers = ([b"CHANGEDSINCE %d" % args.changedsince] if args.changedsince is not None
                 else []) + ([b"VANISHED"] if args.vanished else [])
    if modifiers:
        out += b" (" + b" ".join(modifiers) + b")"
    return [out]


def _store(args: Store) -> list[_Part]:
    if args.mode not in ("+", "-", ""):
        raise LocalProtocolError(f"STORE mode is '+', '-' or '', not {args.mode!r}")
    out = b" " + _seqset(args.seqset) + b" "
    if args.unchangedsince is not None:
        out += b"(UNCHANGEDSINCE %d) " % args.unchangedsince
    item = f"{args.mode}FLAGS{'.SILENT' if args.silent else ''} ".encode("ascii")
    return [out + item + flag_list(args.flags)]


def _copy(args: Copy) -> list[_Part]:
    return [b" " + _seqset(args.seqset) + b" ", mailbox(args.mailbox)]


def _uid_expunge(args: UidExpunge) -> list[_Part]:
    return [b" " + _seqset(args.seqset)]


def _append(args: Append) -> list[_Part]:
    parts: list[_Part] = [b" ", mailbox(args.mailbox)]
    # RFC 3502 §6.3.11: append = "APPEND" SP mailbox 1*append-message
    for one in args.messages:
        parts += _append_message(one)
    return parts


def _append_message(one: AppendMessage) -> list[_Part]:
    """append-message = [SP flag-list] [SP date-time] SP (literal / CATENATE parts)."""
    parts: list[_Part] = []
    if one.flags:
        parts.append(b" " + flag_list(one.flags))
    if one.date is not None:
        parts.append(b" " + date_time(one.date))
    if one.utf8:
        # RFC 6855 §4: utf8-literal = "UTF8" SP "(" literal8 ")"
        return [*parts, b" UTF8 (", _Literal(one.message, binary=True), b")"]
    if one.catenate is None:
        # append-data = literal / literal8 (RFC 3516 §4.4: octets with NUL need literal8)
        return [*parts, b" ", _Literal(one.message, binary=b"\x00" in one.message)]
    if not one.catenate:
        raise LocalProtocolError("CATENATE needs at least one part")
    # RFC 4469 §5: "CATENATE" SP "(" cat-part *(SP cat-part) ")"
    parts.append(b" CATENATE (")
    for i, part in enumerate(one.catenate):
        parts.append(b"" if i == 0 else b" ")
        if part.kind == "TEXT":
            parts += [b"TEXT ", _Literal(part.data)]
        elif part.kind == "URL":
            parts += [b"URL ", astring(part.data.decode("utf-8"))]
        else:
            raise LocalProtocolError(f"not a CATENATE part: {part.kind!r}")
    parts.append(b")")
    return parts


def date_time(when: datetime) -> bytes:
    """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE."""
    try:
        return format_internaldate(when)
    except ValueError as exc:
        raise LocalProtocolError(str(exc)) from None


def _notify(args: Notify) -> list[_Part]:
    if args.groups is None:
        return [b" NONE"]
    parts: list[_Part] = [b" SET STATUS" if args.status else b" SET"]
    for group in args.groups:
        parts.append(b" (" + atom(group.filter))
        if group.filter in ("SUBTREE", "MAILBOXES"):
            parts.append(b" (")
            for i, name in enumerate(group.mailboxes):
                parts += [b" " if i else b"", mailbox(name)]
            parts.append(b")")
        if not group.events:
            parts.append(b" NONE)")
            continue
        words = []
        for event in group.events:
            word = atom(event)
            if event == "MessageNew" and group.fetch:
                word += b" " + fetch_items(group.fetch)
            words.append(word)
        parts.append(b" (" + b" ".join(words) + b"))")
    return parts


def _compress(args: Compress) -> list[_Part]:
    return [b" " + atom(args.algorithm)]


def _enable(args: Enable) -> list[_Part]:
    return [b" " + atom(c) for c in args.capabilities]


def _id(args: Id) -> list[_Part]:
    if args.params is None:
        return [b" NIL"]
    parts: list[_Part] = [b" ("]
    for i, (key, value) in enumerate(args.params):
        parts += [b" "] if i else []
        parts += [string(key), b" ", b"NIL" if value is None else string(value)]
    return [*parts, b")"]


# -- SEARCH (RFC 9051 §6.4.4) ------------------------------------------------------------------

_FLAG_WORDS = {value: word for word, value in FLAG_KEYS.items()}
_DATE_WORDS = {value: word for word, value in DATE_KEYS.items()}


def search_date(day: date) -> bytes:
    # date = date-text / DQUOTE date-text DQUOTE; date-text = date-day "-" date-month "-" date-year
    return f"{day.day}-{DATE_MONTHS[day.month - 1]}-{day.year:04d}".encode("ascii")


def _search_key(key: SearchKey, *, nested: bool) -> list[_Part]:
    if isinstance(key, SearchAll):
        return [b"ALL"]
    if isinstance(key, SearchFlag):
        word = _FLAG_WORDS.get((key.flag, key.present))
        if word is not None:
            return [word.encode("ascii")]
        return [b"KEYWORD " if key.present else b"UNKEYWORD ", atom(key.flag)]
    if isinstance(key, SearchHeader):
        if key.key in HEADER_KEYS:
            return [key.key.encode("ascii") + b" ", astring(key.value)]
        return [b"HEADER ", astring(key.field), b" ", astring(key.value)]
    if isinstance(key, SearchText):
        return [b"TEXT " if key.whole_message else b"BODY ", astring(key.value)]
    if isinstance(key, SearchSize):
        return [b"%s %d" % (b"LARGER" if key.larger else b"SMALLER", key.size)]
    if isinstance(key, SearchDate):
        word = _DATE_WORDS[(key.op, key.sent)]
        return [word.encode("ascii") + b" " + search_date(key.day)]
    if isinstance(key, SearchSet):
        return [(b"UID " if key.uid else b"") + _seqset(key.seqset)]
    if isinstance(key, SearchModseq):
        return [b"MODSEQ %d" % key.value]
    if isinstance(key, SearchWithin):
        return [b"%s %d" % (b"OLDER" if key.older else b"YOUNGER", key.seconds)]
    if isinstance(key, SearchObjectId):
        return [key.key.encode("ascii") + b" ", atom(key.value)]
    if isinstance(key, SearchNot):
        return [b"NOT ", *_search_key(key.key, nested=True)]
    if isinstance(key, SearchOr):
        return [b"OR ", *_search_key(key.left, nested=True), b" ",
                *_search_key(key.right, nested=True)]
    if not key.keys:
        raise LocalProtocolError("an empty search program")
    parts: list[_Part] = [b"("] if nested else []
    for i, sub in enumerate(key.keys):
        parts += [b" "] if i else []
        parts += _search_key(sub, nested=True)
    return [*parts, b")"] if nested else parts


def search_program(key: SearchKey) -> list[_Part]:
    """search-key *(SP search-key): a top-level AND is written without parentheses."""
    return _search_key(key, nested=False)


def _returning(return_opts: tuple[str, ...], partial: tuple[int, int] | None) -> bytes:
    """``RETURN (...)`` and a space, PARTIAL with its range (RFC 5267 §5 modifier-partial)."""
    opts = [f"PARTIAL {partial[0]}:{partial[1]}" if o == "PARTIAL" and partial is not None
            else o for o in return_opts]
    return b"RETURN (" + " ".join(opts).encode("ascii") + b") "


def _search(args: Search) -> list[_Part]:
    parts: list[_Part] = [b" "]
    if args.return_opts is not None:
        parts.append(_returning(args.return_opts, args.partial))
    if args.charset is not None:
        parts += [b"CHARSET ", astring(args.charset), b" "]
    return parts + search_program(args.key)


def _sort(args: Sort) -> list[_Part]:
    # RFC 5256 §5 sort, with RFC 5267 §3's RETURN before the sort criteria.
    parts: list[_Part] = [b" "]
    if args.return_opts is not None:
        parts.append(_returning(args.return_opts, args.partial))
    criteria = b" ".join((b"REVERSE " if reverse else b"") + atom(key)
                         for key, reverse in args.criteria)
    parts += [b"(" + criteria + b") ", astring(args.charset), b" "]
    return parts + search_program(args.key)


def _thread(args: Thread) -> list[_Part]:
    return [b" ", atom(args.algorithm), b" ", astring(args.charset), b" ",
            *search_program(args.key)]


def _getquota(args: QuotaRoot) -> list[_Part]:
    return [b" ", astring(args.root)]


def _setquota(args: SetQuota) -> list[_Part]:
    limits = b" ".join(atom(name) + b" %d" % limit for name, limit in args.limits)
    return [b" ", astring(args.root), b" (" + limits + b")"]


# ---------------------------------------------------------------------------------------------
# Commands


def _no_args(args: None) -> list[_Part]:
    return []


def _cancelupdate(args: CancelUpdate) -> list[_Part]:
    return [part for tag in args.tags for part in (b" ", quote(tag))]


_FORMATTERS: dict[type, Callable[..., list[_Part]]] = {
    type(None): _no_args, Login: _login, Authenticate: _authenticate, MailboxArg: _mailbox_arg,
    Rename: _rename, ListArgs: _list, Status: _status, Fetch: _fetch, Store: _store,
    Copy: _copy, UidExpunge: _uid_expunge, Append: _append, Enable: _enable, Id: _id,
    Search: _search, Sort: _sort, Thread: _thread,
    CancelUpdate: _cancelupdate, Compress: _compress, Notify: _notify,
    QuotaRoot: _getquota, SetQuota: _setquota,
}


def command_parts(command: Command) -> list[_Part]:
    if not is_tag(command.tag.encode("ascii", "replace")):
        raise LocalProtocolError(f"not a tag: {command.tag!r}")
    args: CommandArgs = command.args
    if command.name == "LSUB" and isinstance(args, ListArgs):
        formatted = _lsub(args)
    else:
        formatted = _FORMATTERS[type(args)](args)
    return [command.tag.encode("ascii") + b" " + command.name.encode("ascii"), *formatted, CRLF]


def join_parts(parts: Sequence[_Part], *, literal_plus: bool = False) -> tuple[bytes, ...]:
    """The command's bytes, cut after each synchronising literal's ``{N}`` CRLF: the sender
    waits for the server's "+" before each later piece (RFC 9051 §4.3, §7.5). With
    *literal_plus* (LITERAL+, RFC 7888) literals are ``{N+}`` and there is one piece."""
    chunks: list[bytes] = []
    current = bytearray()
    for part in parts:
        if isinstance(part, bytes):
            current += part
            continue
        current += b"~" if part.binary else b""
        current += b"{%d+}\r\n" % len(part.data) if literal_plus else b"{%d}\r\n" % len(part.data)
        if not literal_plus:
            chunks.append(bytes(current))
            current = bytearray()
        current += part.data
    chunks.append(bytes(current))
    return tuple(chunks)


def format_command(command: Command, *, literal_plus: bool = False) -> tuple[bytes, ...]:
    """*command* on the wire, CRLF included, as the pieces to send (see :func:`join_parts`);
    ``b"".join(...)`` is what :func:`parse_command` reads back as *command*."""
    return join_parts(command_parts(command), literal_plus=literal_plus)
