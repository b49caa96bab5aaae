"""SORT and THREAD (RFC 5256), sans-IO: the base subject (§2.1), the sent date (§2.2), the sort
keys (§3) and the ORDEREDSUBJECT and REFERENCES threading algorithms (§3), over values the
server extracts from its messages. The suites never use this module for their expectations."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.utils import parsedate_tz
from typing import Any

from harness.protocol.imap.headers import Field, parse_addresses
from harness.protocol.imap.response_values import ThreadNode

#: RFC 5256 §3 thread-alg: the two algorithms defined there.
THREAD_ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")

_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


# -- collation (RFC 5256 §7, RFC 5051) ------------------------------------------------------------


def casemap(text: str) -> str:
    """The i;unicode-casemap key of *text* (RFC 5256 §7: "the SORT and THREAD extensions MUST
    collate strings according to the i;unicode-casemap collation"): each character to its
    titlecase, then decomposed (RFC 5051 §2); keys compare as code points, which is the order
    of their UTF-8 octets."""
    return unicodedata.normalize("NFKD", "".join(c.title() for c in text))


# -- base subject (RFC 5256 §2.1) -----------------------------------------------------------------

_WSP = " \t"
#: subj-blob = "[" *BLOBCHAR "]" *WSP
_BLOB = r"\[[^\[\]]*\][ \t]*"
#: subj-leader = (*subj-blob subj-refwd) / WSP; subj-refwd = ("re" / ("fw" ["d"])) *WSP
#: [subj-blob] ":"
_LEADER = re.compile(rf"(?:{_BLOB})*(?:re|fwd?)[ \t]*(?:{_BLOB})?:|[ \t]", re.IGNORECASE)
_BLOB_PREFIX = re.compile(_BLOB)
_SPACES = re.compile(r"[ \t\r\n]+")


def decode_words(raw: str) -> str:
    """RFC 2047 encoded words decoded (RFC 5256 §2.1 (1): "Convert any RFC 2047 encoded-words
    in the subject to [UTF-8]"); text that does not decode is kept as it is."""
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError, TypeError):
        return raw


@dataclass(frozen=True, slots=True)
class BaseSubject:
    text: str
    #: RFC 5256 §3 REFERENCES: "A message is considered to be a reply or forward if the base
    #: subject extraction rules, applied to the original subject, remove any of the following:
    #: a subj-refwd, a "(fwd)" subj-trailer, or a subj-fwd-hdr and subj-fwd-trl."
    reply: bool


def base_subject(raw: str) -> BaseSubject:
    """RFC 5256 §2.1: "All servers ... MUST use exactly this algorithm to determine the "base
    subject"" — steps (1) to (7)."""
    # (1) encoded words decoded; tabs and continuations to space, runs of spaces to one.
    text = _SPACES.sub(" ", decode_words(raw))
    reply = False
    while True:
        # (2) "Remove all trailing text of the subject that matches the subj-trailer ABNF;
        # repeat until no more matches are possible." subj-trailer = "(fwd)" / WSP
        while True:
            if text[-1:] and text[-1] in _WSP:
                text = text[:-1]
            elif text[-5:].lower() == "(fwd)":
                text, reply = text[:-5], True
            else:
                break
        # (5) "Repeat (3) and (4) until no matches remain."
        while True:
            before = text
            # (3) "Remove all prefix text of the subject that matches the subj-leader ABNF."
            while (m := _LEADER.match(text)) is not None:
                reply = reply or m.group().strip(_WSP) != ""
                text = text[m.end():]
            # (4) "If there is prefix text of the subject that matches the subj-blob ABNF, and
            # removing that prefix leaves a non-empty subj-base, then remove the prefix text."
            m = _BLOB_PREFIX.match(text)
            if m is not None and text[m.end():].strip(_WSP):
                text = text[m.end():]
            if text == before:
                break
        # (6) "If the resulting text begins with the subj-fwd-hdr ABNF and ends with the
        # subj-fwd-trl ABNF, remove the subj-fwd-hdr and subj-fwd-trl and repeat from step (2)."
        if text[:5].lower() == "[fwd:" and text.endswith("]"):
            text, reply = text[5:-1], True
            continue
        # (7) "The resulting text is the "base subject""
        return BaseSubject(text, reply)


# -- sent date (RFC 5256 §2.2) --------------------------------------------------------------------


def sent_date(date_header: str | None, internaldate: datetime) -> datetime:
    """RFC 5256 §2.2: "the date and time from the Date: header, adjusted by time zone to
    normalize to UTC"; "If the time zone is invalid, the date and time SHOULD be treated as
    UTC"; "If the sent date cannot be determined (a Date: header is missing or cannot be
    parsed), the INTERNALDATE for that message is used as the sent date." """
    parsed = parsedate_tz(date_header) if date_header else None
    if parsed is None:
        return internaldate.astimezone(UTC)
    year, month, day, hour, minute, second = parsed[:6]
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (ValueError, OverflowError):
        return internaldate.astimezone(UTC)
    try:
        return local - timedelta(seconds=parsed[9] or 0)
    except OverflowError:
        return _EPOCH


# -- the message as SORT and THREAD see it ----------------------------------------------------------

_MSG_ID = re.compile(r"<([^<>]*)>")


def normalise_msg_id(inner: str, *, unquote: bool = True) -> str | None:
    """A msg-id's text between "<" and ">", its quoting removed (RFC 5256 §3: "Implementations
    of the REFERENCES threading algorithm MUST normalize any msg-id in order to avoid false
    non-matches due to differences in quoting"); None if it is not a valid id-left "@"
    id-right."""
    text = re.sub(r"\s+", "", inner)
    left, at, right = text.rpartition("@")
    if not at or not left or not right:
        return None
    if unquote and len(left) >= 2 and left[0] == left[-1] == '"':
        left = re.sub(r"\\(.)", r"\1", left[1:-1])
    return f"{left}@{right}"


def msg_ids(value: str | None, *, unquote: bool = True) -> list[str]:
    """The valid message ids of a header field's value, in order (normalised unless told
    not to *unquote*)."""
    found = (normalise_msg_id(m, unquote=unquote) for m in _MSG_ID.findall(value or ""))
    return [m for m in found if m is not None]


def first_mailbox(values: Sequence[bytes]) -> str:
    """RFC 5256 §3 FROM/TO/CC: "[IMAP] addr-mailbox of the first ... address" ("If the
    associated RFC-822 header ... is absent, it is treated as the empty string")."""
    for value in values:
        for address in parse_addresses(value):
            return decode_words((address.mailbox or b"").decode("utf-8", "replace"))
    return ""


@dataclass(frozen=True, slots=True)
class SortMessage:
    """What SORT and THREAD need of one searched message."""

    seq: int
    #: What the response names it by: its sequence number, or its UID for UID SORT / THREAD.
    number: int
    internaldate: datetime
    size: int
    sent: datetime
    subject: BaseSubject
    addresses: dict[str, str]  # "FROM", "TO", "CC" -> addr-mailbox of the first address
    message_id: str | None
    references: tuple[str, ...]
    #: The Subject and Date fields as they came (None: absent).
    raw_subject: str = ""
    date_header: str | None = None

    def renumbered(self, number: int) -> SortMessage:
        return dataclasses.replace(self, number=number)

    @classmethod
    def from_fields(cls, seq: int, number: int, internaldate: datetime, size: int,
                    fields: Sequence[Field], *, unquote_ids: bool = True) -> SortMessage:
        def values(name: str) -> list[bytes]:
            return [f.value for f in fields if f.name == name]

        def first(name: str) -> str | None:
            found = values(name)
            return found[0].decode("utf-8", "replace") if found else None

        def ids_of(name: str) -> list[str]:
            return msg_ids(first(name), unquote=unquote_ids)

        ids = ids_of("message-id")
        # RFC 5256 §3: "If a message contains a References header line, then use the Message
        # IDs in the References header line as the references. If a message does not contain a
        # References header line, or the References header line does not contain any valid
        # Message IDs, then use the first (if any) valid Message ID found in the In-Reply-To
        # header line as the only reference (parent) for this message."
        references = ids_of("references") or ids_of("in-reply-to")[:1]
        return cls(seq, number, internaldate, size, sent_date(first("date"), internaldate),
                   base_subject(first("subject") or ""),
                   {k: first_mailbox(values(k.lower())) for k in ("FROM", "TO", "CC")},
                   ids[0] if ids else None, tuple(references), first("subject") or "",
                   first("date"))


# -- SORT (RFC 5256 §3) ---------------------------------------------------------------------------


def sort_key(message: SortMessage, key: str) -> object:
    """The value *message* sorts by for sort-key *key* (RFC 5256 §3)."""
    if key == "ARRIVAL":
        return message.internaldate.astimezone(UTC)
    if key == "DATE":
        return message.sent
    if key == "SIZE":
        return message.size
    if key == "SUBJECT":
        return casemap(message.subject.text)
    return casemap(message.addresses[key])


def sort_messages(messages: Sequence[SortMessage], criteria: Sequence[tuple[str, bool]],
                  *, key_of: Callable[[SortMessage, str], object] = sort_key) -> list[SortMessage]:
    """*messages* in the order of *criteria* ((sort-key, reversed) pairs). "REVERSE only
    reverses a single criterion, and does not affect the implicit "sequence number" sort
    criterion": each criterion is applied as a stable sort, the last first, over the messages in
    mailbox order ("If two or more messages exactly match according to the sorting criteria,
    these messages are sorted according to the order in which they appear in the mailbox")."""
    ordered = sorted(messages, key=lambda m: m.seq)
    for key, reverse in reversed(criteria):
        ordered.sort(key=_by(key_of, key), reverse=reverse)
    return ordered


def _by(key_of: Callable[[SortMessage, str], object], key: str) -> Callable[[SortMessage], Any]:
    return lambda message: key_of(message, key)


# -- THREAD=ORDEREDSUBJECT (RFC 5256 §3) ----------------------------------------------------------


def _date_order(message: SortMessage) -> tuple[datetime, int]:
    # RFC 5256 §2.2: "When comparing two sent dates that match exactly, the order in which the
    # two messages appear in the mailbox (that is, by sequence number) is used as a
    # tie-breaker".
    return message.sent, message.seq


def thread_orderedsubject(messages: Sequence[SortMessage]) -> tuple[ThreadNode, ...]:
    """"The searched messages are sorted by base subject and then by the sent date. The messages
    are then split into separate threads, with each thread containing messages with the same
    base subject text. Finally, the threads are sorted by the sent date of the first message in
    the thread." The second message is the child of the first, the later ones its siblings."""
    groups: dict[str, list[SortMessage]] = {}
    for message in sorted(messages, key=_date_order):
        groups.setdefault(casemap(message.subject.text), []).append(message)
    threads = sorted(groups.values(), key=lambda g: _date_order(g[0]))
    return tuple(ThreadNode(g[0].number, tuple(ThreadNode(m.number) for m in g[1:]))
                 for g in threads)


# -- THREAD=REFERENCES (RFC 5256 §3) --------------------------------------------------------------


@dataclass(eq=False)
class _Node:
    message: SortMessage | None  # None: a dummy
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)

    def is_ancestor_of(self, other: _Node) -> bool:
        node: _Node | None = other
        while node is not None:
            if node is self:
                return True
            node = node.parent
        return False

    def unlink(self) -> None:
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None

    def adopt(self, child: _Node) -> None:
        child.unlink()
        child.parent = self
        self.children.append(child)

    def first(self) -> SortMessage:
        """The message itself, or for a dummy its first child's (RFC 5256 §3 step 4: "In the
        case of a dummy message, sort its children by sent date and then use the first
        child")."""
        if self.message is not None:
            return self.message
        return self.children[0].first()


def _link(parent: _Node, child: _Node) -> None:
    # "Do not create a parent/child link if creating that link would introduce a loop. For
    # example, before making message A the parent of B, make sure that A is not a descendent of
    # B."
    if not child.is_ancestor_of(parent):
        parent.adopt(child)


def _prune(parent: _Node, root: _Node) -> None:
    """Step (3): "If it is a dummy message with NO children, delete it. If it is a dummy
    message with children, delete it, but promote its children to the current level ... Do not
    promote the children if doing so would make them children of the root, unless there is
    only one child." """
    result: list[_Node] = []
    for node in list(parent.children):
        _prune(node, root)
        if node.message is None and (parent is not root or len(node.children) == 1):
            for child in node.children:
                child.parent = parent
            result += node.children
            node.children = []
        elif node.message is not None or node.children:
            result.append(node)
    parent.children = result


def _sort_siblings(node: _Node) -> None:
    """Step (6): every set of siblings by sent date, the youngest sets first."""
    for child in node.children:
        _sort_siblings(child)
    node.children.sort(key=lambda n: _date_order(n.first()))


def _thread_subject(node: _Node) -> str:
    return casemap(node.first().subject.text)


def _merge_subjects(root: _Node) -> None:
    """Step (5): "Gather together messages under the root that have the same base subject
    text." """
    table: dict[str, _Node] = {}
    for node in root.children:  # (B)
        subject = _thread_subject(node)
        if not subject:
            continue
        held = table.get(subject)
        if held is None:
            table[subject] = node
        elif held.message is not None and (
                node.message is None or (held.message.subject.reply
                                         and not node.first().subject.reply)):
            table[subject] = node
    for node in list(root.children):  # (C)
        if node.parent is not root:
            continue
        subject = _thread_subject(node)
        if not subject or table[subject] is node:
            continue
        held = table[subject]
        if held.message is None and node.message is None:
            for child in list(node.children):
                held.adopt(child)
            node.unlink()
        elif held.message is None:
            held.adopt(node)
        elif node.message is not None and node.message.subject.reply and \
                not held.message.subject.reply:
            held.adopt(node)
        else:
            dummy = _Node(None)
            root.adopt(dummy)
            dummy.adopt(node)
            dummy.adopt(held)
            table[subject] = dummy


def thread_references(messages: Sequence[SortMessage], *,
                      merge_subjects: bool = True) -> tuple[ThreadNode, ...]:
    """The REFERENCES algorithm of RFC 5256 §3, steps (1) to (6)."""
    ids: dict[str, _Node] = {}
    unique = 0

    def node_for(message_id: str) -> _Node:
        # "If no message can be found with a given Message ID, create a dummy message with this
        # ID. Use this dummy message for all subsequent references to this ID."
        return ids.setdefault(message_id, _Node(None))

    for message in sorted(messages, key=lambda m: m.seq):
        # (1)(A) "If a message does not contain a Message-ID header line, or the Message-ID
        # header line does not contain a valid Message ID, then assign a unique Message ID";
        # "If two or more messages have the same Message ID, then only use that Message ID in
        # the first (lowest sequence number) message".
        mid = message.message_id
        if mid is None or (mid in ids and ids[mid].message is not None):
            unique += 1
            mid = f"\x00unique-{unique}"
        current = node_for(mid)
        current.message = message
        refs = [node_for(r) for r in message.references]
        for parent, child in zip(refs, refs[1:], strict=False):
            # "If a message already has a parent, don't change the existing link."
            if child.parent is None and parent is not child:
                _link(parent, child)
        # (1)(B) "Create a parent/child link between the last reference (or NIL if there are no
        # references) and the current message. If the current message already has a parent ...
        # break the current parent/child link before creating the new correct one."
        current.unlink()
        if refs and refs[-1] is not current:
            _link(refs[-1], current)
    # (2) "Gather together all of the messages that have no parents and make them all children
    # (siblings of one another) of a dummy parent (the "root")."
    root = _Node(None)
    for node in ids.values():
        if node.parent is None:
            node.parent = root
            root.children.append(node)
    _prune(root, root)  # (3)
    # (4) "Sort the messages under the root (top-level siblings only) by sent date"
    for node in root.children:
        if node.message is None:
            node.children.sort(key=lambda n: _date_order(n.first()))
    root.children.sort(key=lambda n: _date_order(n.first()))
    if merge_subjects:
        _merge_subjects(root)  # (5)
    _sort_siblings(root)  # (6)
    return tuple(_tree(node) for node in root.children)


def _tree(node: _Node) -> ThreadNode:
    return ThreadNode(node.message.number if node.message is not None else None,
                      tuple(_tree(child) for child in node.children))
