"""IMAP server responses as typed values (RFC 9051 §7), as the response parser returns them."""

from __future__ import annotations

from dataclasses import dataclass

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
class ContextUpdate:
    """One pair of an ADDTO or REMOVEFROM return data item (RFC 5267 §4.3.3, §4.3.4): the
    results *numbers* to insert at (remove from) context *position*, 0 meaning "in mailbox
    order" (wherever they occur)."""

    kind: str  # "ADDTO" or "REMOVEFROM"
    position: int
    numbers: SequenceSet


@dataclass(frozen=True, slots=True)
class PartialResult:
    """RFC 5267 §5 ``ret-data-partial``: the requested range (as written) and the results in
    it, None for NIL ("no results correspond to the requested range")."""

    first: int
    last: int
    numbers: SequenceSet | None


@dataclass(frozen=True, slots=True)
class ESearch:
    """RFC 9051 ``esearch-response``: MIN/MAX/COUNT -> int, ALL -> sequence-set text, PARTIAL
    -> :class:`PartialResult`. ADDTO and REMOVEFROM may repeat and are to be processed "in the
    order they appear" (RFC 5267 §4.3.2): they are in *updates*, one entry per pair."""

    tag: str | None
    uid: bool
    data: dict[str, object]
    updates: tuple[ContextUpdate, ...] = ()

    @property
    def kind(self) -> str:
        return "ESEARCH"


@dataclass(frozen=True, slots=True)
class Sort:
    """RFC 5256 §4 ``* SORT n n n``: the numbers in the order the server sorted them."""

    numbers: tuple[int, ...]
    #: RFC 7162 §3.1.9 search-sort-mod-seq, after a SORT with a MODSEQ criterion.
    modseq: int | None = None

    @property
    def kind(self) -> str:
        return "SORT"


@dataclass(frozen=True, slots=True)
class ThreadNode:
    """One member of a thread (RFC 5256 §4): a message number, or None for a parent that is not
    among the messages found (``((3)(5))``: 3 and 5 are siblings under it), and its children in
    order. ``(3 6 (4 23)(44 7 96))`` is 3 -> 6 -> {4 -> 23, 44 -> 7 -> 96}."""

    number: int | None
    children: tuple[ThreadNode, ...] = ()


@dataclass(frozen=True, slots=True)
class Thread:
    """RFC 5256 §4 ``* THREAD (...)(...)``: the threads, each a tree of :class:`ThreadNode`."""

    threads: tuple[ThreadNode, ...]

    @property
    def kind(self) -> str:
        return "THREAD"


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
    | Sort
    | Thread
    | Fetch
    | Namespace
    | Id
    | Untagged
)
Response = Continuation | Tagged | UntaggedResponse
