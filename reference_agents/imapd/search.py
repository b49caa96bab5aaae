"""SEARCH evaluation (RFC 9051 §6.4.4) over one message of the selected mailbox."""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Iterator
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32

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
from reference_agents.mailstore import MessageInfo


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
                 raw_address_search: bool = False,
                 object_id: Callable[[str, bytes], str] | None = None) -> None:
        self.seq = seq
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
        return [str(v) for v in msg.get_all(field) or []]


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
        if key.uid:
            return key.seqset.contains(ctx.info.uid, ctx.largest_uid)
        return key.seqset.contains(ctx.seq, ctx.exists)
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
