"""SEARCH evaluation (RFC 9051 §6.4.4) over one message of the selected mailbox."""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.header import Header, decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32

from harness.protocol.imap.command_values import SearchWithin
from harness.protocol.imap.commands import (
    SearchAll,
    SearchAnd,
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
)
from harness.protocol.imap.headers import (
    parse_addresses,
    parse_fields,
)
from harness.protocol.imap.mime import (
    split_message,
)
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.handler_helpers import selected_of
from reference_agents.imapd.objects import object_id
from reference_agents.imapd.selected import SelectedMailbox
from reference_agents.mailstore import MessageInfo, NoSuchMessage


def _keys(key: SearchKey) -> Iterator[SearchKey]:
    """*key* and every key nested in it."""
    yield key
    if isinstance(key, SearchNot):
        yield from _keys(key.key)
    elif isinstance(key, SearchOr):
        yield from _keys(key.left)
        yield from _keys(key.right)
    elif isinstance(key, SearchAnd):
        for k in key.keys:
            yield from _keys(k)


def needs_content(key: SearchKey) -> bool:
    """Whether some key reads the message itself (header or text), not only its metadata."""
    return any(isinstance(k, SearchHeader | SearchText | SearchObjectId)
               or (isinstance(k, SearchDate) and k.sent) for k in _keys(key))


def uses_modseq(key: SearchKey) -> bool:
    """Whether the search program has a MODSEQ key anywhere (RFC 7162 §3.1.5)."""
    return any(isinstance(k, SearchModseq) for k in _keys(key))


#: The search keys that look at the envelope's addresses.
_ADDRESS_KEYS = frozenset({"FROM", "TO", "CC", "BCC"})


def _has_flag(flags: frozenset[str], flag: str) -> bool:
    # RFC 9051 §2.3.2: system flags are case-insensitive; keywords compare as given, and we
    # compare them case-insensitively too (RFC 9051 §2.3.2 "flag ... case-insensitive").
    wanted = flag.lower()
    return any(f.lower() == wanted for f in flags)


def _decoded(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


class MessageContext:
    """One message as SEARCH sees it; the content is read only when a key needs it."""

    def __init__(self, seq: int, info: MessageInfo, exists: int, largest_uid: int,
                 load: Callable[[], bytes | None], *, recent: bool = False,
                 ignore_deleted: bool = False, case_sensitive: bool = False,
                 raw_address_search: bool = False, saved: frozenset[int] = frozenset(),
                 now: datetime | None = None, within_unit: int = 1,
                 object_id: Callable[[str, bytes], str] | None = None) -> None:
        self.seq = seq
        #: RFC 5182: the UIDs of the search result variable "$".
        self.saved = saved
        #: RFC 5032: the server's clock OLDER and YOUNGER count from.
        self.now = now or datetime.now(UTC)
        #: Quirk imap_within_minutes: 60, the interval taken as minutes.
        self.within_unit = within_unit
        #: The message's EMAILID or THREADID from its content (RFC 8474 §6); None: no ids.
        self.object_id = object_id
        #: \Recent is a session flag (RFC 3501 §2.3.2): the session says, not the store.
        self.recent = recent
        #: Quirk imap_search_ignores_deleted_flag: DELETED/UNDELETED act as if nothing had it.
        self.ignore_deleted = ignore_deleted
        #: Quirk imap_search_address_raw: FROM, TO, CC and BCC search the raw header text.
        self.raw_address_search = raw_address_search
        #: Quirk imap_search_case_sensitive: string keys compare case-sensitively.
        self.fold: Callable[[str], str] = (lambda t: t) if case_sensitive else str.casefold
        self.info = info
        self.exists = exists
        self.largest_uid = largest_uid
        self._load = load
        self._data: bytes | None = None
        self._loaded = False

    @property
    def data(self) -> bytes:
        if not self._loaded:
            self._data = self._load()
            self._loaded = True
        return self._data or b""

    def address_texts(self, field: str) -> list[str]:
        """Each address of the *field* header fields as ENVELOPE sees it: "name <mailbox@host>"
        (the name RFC 2047-decoded), a group's name for its start marker."""
        header, _ = split_message(self.data)
        texts = []
        for address in parse_addresses(b", ".join(f.value for f in parse_fields(header)
                                                  if f.name == field.lower())):
            mailbox = (address.mailbox or b"").decode("utf-8", "replace")
            if address.host is None:
                texts.append(mailbox)  # a group marker: its name (or nothing at its end)
                continue
            spec = f"{mailbox}@{address.host.decode('utf-8', 'replace')}"
            name = _decoded(address.name.decode("utf-8", "replace")) if address.name else ""
            texts.append(f"{name} <{spec}>" if name else spec)
        return texts

    def header_values(self, field: str) -> list[str]:
        header, _ = split_message(self.data)
        msg = BytesHeaderParser(policy=compat32).parsebytes(header)
        return [_text(v) for v in msg.get_all(field) or []]


def _text(value: object) -> str:
    """A header value as text: raw UTF-8 octets (RFC 6532), which the parser keeps as
    surrogate escapes, read as UTF-8."""
    if isinstance(value, Header):
        return b"".join(part if isinstance(part, bytes) else part.encode("utf-8")
                        for part, _ in decode_header(value)).decode("utf-8", "replace")
    return str(value)


def matches(key: SearchKey, ctx: MessageContext) -> bool:
    """Whether the message satisfies *key*. String matches are case-insensitive substring
    matches (RFC 9051 §6.4.4: "In all search keys that use strings ... a message matches the
    key if the string is a substring of the associated text")."""
    if isinstance(key, SearchAll):
        return True
    if isinstance(key, SearchFlag):
        if key.flag == "\\Recent":
            return ctx.recent == key.present
        if ctx.ignore_deleted and key.flag == "\\Deleted":
            return not key.present
        return _has_flag(ctx.info.flags, key.flag) == key.present
    if isinstance(key, SearchModseq):
        # RFC 7162 §3.1.5: "modification values that are equal to or greater than" the value.
        return ctx.info.modseq >= key.value
    if isinstance(key, SearchSet):
        if key.seqset.saved:
            return ctx.info.uid in ctx.saved  # RFC 5182 §2.1: "$", whether SEARCH or UID SEARCH
        if key.uid:
            return key.seqset.contains(ctx.info.uid, ctx.largest_uid)
        return key.seqset.contains(ctx.seq, ctx.exists)
    if isinstance(key, SearchWithin):
        # RFC 5032 §2: "the server calculates a target date and time by subtracting the
        # interval, specified in seconds, from the current date and time of the server ... For
        # OLDER, messages match if the INTERNALDATE is less recent than or equal to the target
        # time.  For YOUNGER, messages match if the INTERNALDATE is more recent than or equal
        # to the target time."
        target = ctx.now.timestamp() - key.seconds * ctx.within_unit
        when = int(ctx.info.internaldate.timestamp())
        return when <= target if key.older else when >= int(target)
    if isinstance(key, SearchSize):
        return ctx.info.size > key.size if key.larger else ctx.info.size < key.size
    if isinstance(key, SearchObjectId):
        # RFC 8474 §6: "Messages whose EMAILID [THREADID] is exactly the specified ObjectID."
        return ctx.object_id is not None and ctx.object_id(key.key, ctx.data) == key.value
    if isinstance(key, SearchNot):
        return not matches(key.key, ctx)
    if isinstance(key, SearchOr):
        return matches(key.left, ctx) or matches(key.right, ctx)
    if isinstance(key, SearchAnd):
        return all(matches(k, ctx) for k in key.keys)
    if isinstance(key, SearchHeader):
        values = ctx.header_values(key.field)
        if not key.value:
            return bool(values)
        needle = ctx.fold(key.value)
        if key.key in _ADDRESS_KEYS and not ctx.raw_address_search:
            # RFC 9051 §6.4.4: FROM "Messages that contain the specified string in the envelope
            # structure's FROM field" (TO, CC, BCC likewise): the addresses as the ENVELOPE has
            # them, name and mailbox@host, without the comments and folding of the header.
            return any(needle in ctx.fold(text) for text in ctx.address_texts(key.field))
        return any(needle in ctx.fold(v) or needle in ctx.fold(_decoded(v)) for v in values)
    if isinstance(key, SearchText):
        haystack = ctx.data if key.whole_message else split_message(ctx.data)[1]
        return ctx.fold(key.value) in ctx.fold(haystack.decode("utf-8", "replace"))
    if isinstance(key, SearchDate):
        if key.sent:
            values = ctx.header_values("Date")
            if not values:
                return False
            try:
                day = email.utils.parsedate_to_datetime(values[0]).date()
            except (TypeError, ValueError, IndexError):
                return False
        else:
            # RFC 9051 §6.4.4: dates "disregarding time and timezone".
            day = ctx.info.internaldate.date()
        if key.op == "BEFORE":
            return day < key.day
        if key.op == "ON":
            return day == key.day
        return day >= key.day
    raise AssertionError(f"unhandled search key {key!r}")


def matching_messages(s: HandlerContext, key: SearchKey, sel: SelectedMailbox | None = None,
                      infos: dict[int, MessageInfo] | None = None) -> list[MessageContext]:
    """The messages of the selected mailbox (*sel*, with *infos* when the caller has them
    already) that satisfy *key*, in mailbox order, with the quirks of the SEARCH matcher
    applied: what SEARCH, SORT, THREAD and the updating searches of CONTEXT=SEARCH all use."""
    user, current = selected_of(s)
    sel = sel or current
    if infos is None:
        infos = {m.uid: m for m in s.store.messages(user, sel.name)}
    largest_uid = sel.uids[-1] if sel.uids else 0
    saved = frozenset(uid for _, uid in sel.saved_pairs())
    now = datetime.now(UTC)
    # quirk imap_search_objectid_none: EMAILID and THREADID match no message
    ids = not s.config.has_quirk("imap_search_objectid_none")
    found: list[MessageContext] = []
    for seq, uid in enumerate(sel.uids, 1):
        info = infos.get(uid)
        if info is None:
            continue

        def load(uid: int = uid) -> bytes | None:
            try:
                return s.store.read(user, sel.name, uid)
            except NoSuchMessage:
                return None

        def ids_of(key: str, data: bytes, uid: int = uid) -> str:
            return object_id(s, key, data, sel.uidvalidity, uid)

        ctx = MessageContext(seq, info, sel.exists, largest_uid, load, recent=sel.is_recent(uid),
                             ignore_deleted=s.config.has_quirk("imap_search_ignores_deleted_flag"),
                             case_sensitive=s.config.has_quirk("imap_search_case_sensitive"),
                             raw_address_search=s.config.has_quirk("imap_search_address_raw"),
                             saved=saved, now=now,
                             # quirk imap_within_minutes: OLDER/YOUNGER count minutes
                             within_unit=60 if s.config.has_quirk("imap_within_minutes") else 1,
                             object_id=ids_of if ids else None)
        if matches(key, ctx):
            found.append(ctx)
    return found
