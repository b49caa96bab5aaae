"""Typed IMAP command values (RFC 9051 §6) and the events of the command reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeAlias

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


class WireName(str):
    """A mailbox name (or LIST pattern) sent in ASCII with an "&": its value is the modified
    UTF-7 reading (RFC 3501 §5.1.3), or the name as sent when that is not valid modified UTF-7
    (``valid`` False). ``wire`` keeps the name as sent: after ENABLE IMAP4rev2 names are UTF-8
    (RFC 9051 §5.1) and "&" is an ordinary character, so the session takes ``wire`` instead."""

    wire: str
    valid: bool
    #: A LIST reference or pattern: one that is not modified UTF-7 matches as written.
    pattern: bool

    def __new__(cls, value: str, wire: str, *, valid: bool, pattern: bool = False) -> WireName:
        obj = super().__new__(cls, value)
        obj.wire = wire
        obj.valid = valid
        obj.pattern = pattern
        return obj

    def __getnewargs_ex__(self) -> tuple[tuple[str, str], dict[str, bool]]:
        return (str(self), self.wire), {"valid": self.valid, "pattern": self.pattern}


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
    #: CREATE with the create-param USE (RFC 6154 §3): the special-use attributes asked for.
    use: tuple[str, ...] = ()


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
    RFC822.HEADER, RFC822.TEXT, BODY, BODYSTRUCTURE, MODSEQ (RFC 7162), EMAILID and THREADID
    (RFC 8474), PREVIEW (RFC 8970), BINARY or BINARY.SIZE
    (RFC 9051 §6.4.5, whose ``section`` has part numbers only); BODY with a ``section`` is BODY[section]
    (``peek`` for BODY.PEEK), with ``partial`` = (origin, length) for ``<origin.length>``."""

    name: str
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False
    #: PREVIEW (LAZY) (RFC 8970 §4.1): the preview only if it comes without undue delay.
    lazy: bool = False

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
class CatPart:
    """One part of APPEND's CATENATE list (RFC 4469 §5): ``kind`` "TEXT" (``data`` the
    literal's octets) or "URL" (``data`` the IMAP URL as sent, UTF-8)."""

    kind: str
    data: bytes


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One append-message (RFC 3502 §6.3.11): flags, date, and a literal or CATENATE parts."""

    flags: tuple[str, ...]
    date: datetime | None
    message: bytes
    #: RFC 4469 §5: append-data =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")"; None for a
    #: plain literal.
    catenate: tuple[CatPart, ...] | None = None
    #: RFC 6855 §4: the message came as ``UTF8 (literal8)``, the UTF8 data extension.
    utf8: bool = False


@dataclass(frozen=True, slots=True)
class Append:
    """APPEND mailbox, its first message inline, and the further messages of a MULTIAPPEND
    (RFC 3502) in ``more``."""

    mailbox: str
    flags: tuple[str, ...]
    date: datetime | None
    message: bytes
    catenate: tuple[CatPart, ...] | None = None
    more: tuple[AppendMessage, ...] = ()
    #: RFC 6855 §4: the (first) message came as ``UTF8 (literal8)``, the UTF8 data extension.
    utf8: bool = False

    @property
    def messages(self) -> tuple[AppendMessage, ...]:
        """Every message of the command, in the order sent."""
        return (AppendMessage(self.flags, self.date, self.message, self.catenate, self.utf8),
                *self.more)


@dataclass(frozen=True, slots=True)
class Enable:
    capabilities: tuple[str, ...]  # upper-cased


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """One event-group of NOTIFY SET (RFC 5465 §8): a mailbox filter (upper-cased: SELECTED,
    SELECTED-DELAYED, INBOXES, PERSONAL, SUBSCRIBED, SUBTREE, MAILBOXES), the mailboxes SUBTREE
    and MAILBOXES name, and the events (their names as the RFC writes them; an unknown one
    upper-cased; empty for NONE), with MessageNew's fetch attributes."""

    filter: str
    mailboxes: tuple[str, ...]
    events: tuple[str, ...]
    fetch: tuple[FetchItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Notify:
    """NOTIFY NONE (``groups`` None) or NOTIFY SET [STATUS] event-groups (RFC 5465 §3.1)."""

    groups: tuple[NotifyGroup, ...] | None
    status: bool = False


@dataclass(frozen=True, slots=True)
class Compress:
    """COMPRESS algorithm (RFC 4978 §5); the algorithm upper-cased."""

    algorithm: str


@dataclass(frozen=True, slots=True)
class Id:
    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class QuotaRoot:
    """GETQUOTA quota-root-name (RFC 9208 §4.1.1)."""

    root: str


@dataclass(frozen=True, slots=True)
class SetQuota:
    """SETQUOTA quota-root-name setquota-list (RFC 9208 §4.1.3): (resource, limit) pairs,
    resource names upper-cased."""

    root: str
    limits: tuple[tuple[str, int], ...]


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
    the field exists). ``key`` is the search key that asked: FROM, TO, CC and BCC search the
    envelope's addresses (RFC 9051 §6.4.4), HEADER the field's text."""

    field: str
    value: str
    key: str = "HEADER"


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
class SearchWithin:
    """OLDER / YOUNGER *seconds* (RFC 5032 §3): the INTERNALDATE against the server's clock."""

    older: bool
    seconds: int


@dataclass(frozen=True, slots=True)
class SearchObjectId:
    """EMAILID or THREADID objectid (RFC 8474 §6): messages whose id is exactly *value*."""

    key: str  # "EMAILID" or "THREADID"
    value: str


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
    | SearchModseq | SearchObjectId | SearchNot | SearchOr | SearchAnd
    | SearchWithin
)


@dataclass(frozen=True, slots=True)
class Search:
    charset: str | None
    key: SearchKey
    #: RFC 9051 §6.4.4 search-return-opts (upper-cased: MIN, MAX, ALL, COUNT, SAVE); None when
    #: no RETURN was given.
    return_opts: tuple[str, ...] | None = None
    #: RFC 5267 §4.4 ``PARTIAL first:last`` (as written; "500:400 is the same as 400:500"),
    #: also listed as "PARTIAL" in *return_opts*.
    partial: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class CancelUpdate:
    """CANCELUPDATE 1*(SP quoted) (RFC 5267 §4.3.5): the tags of the updating searches."""

    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Sort:
    """RFC 5256 §3 SORT (RFC 5267 §3: with ``RETURN (...)``, the answer is an ESEARCH)."""

    #: (sort-key, reversed) pairs, keys upper-cased: ARRIVAL, CC, DATE, FROM, SIZE, SUBJECT, TO
    criteria: tuple[tuple[str, bool], ...]
    charset: str  # upper-cased
    key: SearchKey
    #: RFC 5267 §3 return options (MIN, MAX, ALL, COUNT; §4 CONTEXT, UPDATE, PARTIAL); None
    #: when no RETURN was given.
    return_opts: tuple[str, ...] | None = None
    #: RFC 5267 §4.4 ``PARTIAL first:last`` as written, also listed as "PARTIAL" in
    #: *return_opts*.
    partial: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Thread:
    """RFC 5256 §3 THREAD: the algorithm (upper-cased), the charset and the search program."""

    algorithm: str
    charset: str
    key: SearchKey


CommandArgs: TypeAlias = (
    None | Login | Authenticate | MailboxArg | Rename | ListArgs | Status | Fetch | Store | Copy
    | UidExpunge | Append | Enable | Id | Search | Sort | Thread
    | CancelUpdate | Compress | Notify | QuotaRoot | SetQuota
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
