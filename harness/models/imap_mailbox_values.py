"""The values of the IMAP mailbox model (``harness.models.imap_mailbox``): the requirements it
checks, its violation, the messages and search keys on the model's side, one session's view,
helpers that read a command's result, and the hypothesis strategies its rules draw from."""

from __future__ import annotations

import email.utils
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hypothesis import strategies as st

from harness.checks import CheckFailed, Mark
from harness.clients.imap import CommandResult, IMAPClient
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.imap.responses import (
    ESearch,
    Response,
    ResponseCode,
    Search,
)
from harness.protocol.imap.seqset import SequenceSet
from harness.requirements import REGISTRY

SEQ_UID = "IMAP-SEQ-UID-STABLE"
NO_EXPUNGE = "IMAP-NO-EXPUNGE-DURING-FETCH"
STATIC = "IMAP-STATIC-DATA"
SEARCH = "IMAP-SEARCH-CORRECT"
AGREE = "IMAP-SESSIONS-AGREE"
RECENT_ONCE = "IMAP-RECENT"
UID_MONOTONIC = "IMAP-UID-MONOTONIC"
UIDVALIDITY = "IMAP-UIDVALIDITY-STABLE"
APPENDUID = "IMAP-APPENDUID"
COPYUID = "IMAP-COPYUID"
SYNTAX = "IMAP-RESPONSE-SYNTAX"
SEARCH_ADDRESS = "IMAP-SEARCH-ADDRESS"
NEW_KEYWORD = "IMAP-FLAGS-NEW-KEYWORD"
#: Every requirement the model can red (for the suite test's marker).
REQUIREMENTS = (SEQ_UID, NO_EXPUNGE, STATIC, SEARCH, SEARCH_ADDRESS, AGREE, NEW_KEYWORD,
                RECENT_ONCE, UID_MONOTONIC, UIDVALIDITY, APPENDUID, COPYUID, SYNTAX)
#: Why a requirement the model never got to check is not applicable to the target.
UNCHECKED = {
    RECENT_ONCE: "no IMAP4rev1 session was told of a \\Recent message",
    UIDVALIDITY: "no session selected the mailbox again with a UIDVALIDITY",
    APPENDUID: "no APPEND was answered with APPENDUID (UIDPLUS)",
    NEW_KEYWORD: "no FETCH reported a keyword",
    COPYUID: "no COPY or MOVE was answered with COPYUID (UIDPLUS)",
}


SYSTEM_FLAGS = ("\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "\\Draft")
KEYWORDS = ("$Label1", "mh_red", "mh_blue")
#: The From and To fields of the model's messages, each with the addr-spec a SEARCH FROM / TO
#: looks for. RFC 5322 §3.4.1 allows comments and folding white space around the local part and
#: the domain (dot-atom = [CFWS] dot-atom-text [CFWS]); they are not part of the address, so
#: the address SEARCH of RFC 9051 §6.4.4 ("the envelope structure's FROM field") finds it
#: whatever the header's spelling. No addr-spec is a substring of another's field.
SENDERS = (
    ("Model Sender <model@example.com>", "model@example.com"),
    ("Ann Desk <ann (front desk)@ (office) example.com>", "ann@example.com"),
    ("chris@example.org (Chris)", "chris@example.org"),
)
RECIPIENTS = (
    ("bob@example.net", "bob@example.net"),
    ("<dora (reader) @example.net>", "dora@example.net"),
    ("Team: erin@example.net, Finn <finn@example.net>;", "erin@example.net"),
)
ADDRESS_KEYS = ("FROM", "TO")
RECENT = "\\Recent"
#: FETCH items whose value never changes for a UID (RFC 9051 §2.3.1.1 / §2.3.2).
STATIC_ITEMS = ("RFC822.SIZE", "INTERNALDATE", "ENVELOPE", "BODYSTRUCTURE", "BODY[]")
FETCH_ITEMS = ("FLAGS", "RFC822.SIZE", "INTERNALDATE", "ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[]")
#: Commands during which RFC 9051 §7.5.1 forbids an untagged EXPUNGE.
NO_EXPUNGE_COMMANDS = frozenset({"FETCH", "STORE", "SEARCH"})


class ModelViolation(CheckFailed):
    """An invariant of the mailbox model failed: the check of *requirement* (and only it) fails,
    in *session* at *step* (*command*)."""

    def __init__(self, requirement: str, session: str, step: int, command: str, detail: str,
                 marks: Sequence[Mark] = ()) -> None:
        if requirement not in REGISTRY:
            raise KeyError(f"model check of unknown requirement id {requirement!r}")
        super().__init__(requirement, f"session {session}, step {step} ({command}): {detail}",
                         marks)
        self.session = session
        self.step = step


# --- the model's side: messages, flags, search keys -------------------------------------------


def flag_set(flags: Iterable[str]) -> frozenset[str]:
    """Flags compared as the RFC does: system flags case-insensitively, \\Recent left out."""
    out: set[str] = set()
    for flag in flags:
        if flag.startswith("\\"):
            known = next((f for f in (*SYSTEM_FLAGS, RECENT) if f.lower() == flag.lower()), flag)
            if known != RECENT:
                out.add(known)
        else:
            out.add(flag)
    return frozenset(out)


@dataclass
class TrueMessage:
    """A message of the mailbox as the model knows it."""

    uid: int
    body: bytes
    flags: frozenset[str]
    arrived_step: int
    sender: str = SENDERS[0][1]
    recipient: str = RECIPIENTS[0][1]


@dataclass(frozen=True, slots=True)
class SearchKey:
    """One SEARCH key of a small grammar; ``repr`` is valid Python for the reproducer.

    kind: a flag key (``SEEN``, ``UNSEEN``...), ``ALL``, ``KEYWORD``/``UNKEYWORD`` (``arg`` the
    keyword), ``FROM``/``TO`` (``arg`` an addr-spec; never under NOT or OR, so that a wrong
    answer is the address search's), ``UID`` (``lo``/``hi`` index the model's UIDs at run time),
    ``NOT`` or ``OR``."""

    kind: str
    arg: str = ""
    lo: int = 0
    hi: int = 0
    sub: tuple[SearchKey, ...] = ()

    def text(self, uids: Sequence[int]) -> str:
        if self.kind in ("KEYWORD", "UNKEYWORD"):
            return f"{self.kind} {self.arg}"
        if self.kind in ADDRESS_KEYS:
            return f'{self.kind} "{self.arg}"'
        if self.kind == "UID":
            return f"UID {self._uid_range(uids)}"
        if self.kind == "NOT":
            return f"NOT {self.sub[0].text(uids)}"
        if self.kind == "OR":
            return f"OR ({self.sub[0].text(uids)}) ({self.sub[1].text(uids)})"
        return self.kind

    def _uid_range(self, uids: Sequence[int]) -> str:
        if not uids:
            return "1:4294967295" if self.lo % 2 else "4294967295"
        a, b = uids[self.lo % len(uids)], uids[self.hi % len(uids)]
        return f"{a}:{b}"

    def matches(self, message: TrueMessage, uids: Sequence[int]) -> bool:
        flags = message.flags
        kind = self.kind
        if kind == "ALL":
            return True
        if kind in _FLAG_KEYS:
            flag, wanted = _FLAG_KEYS[kind]
            return (flag in flags) == wanted
        if kind == "KEYWORD":
            return self.arg in flags
        if kind == "UNKEYWORD":
            return self.arg not in flags
        if kind in ADDRESS_KEYS:
            # RFC 9051 §6.4.4: "Messages that contain the specified string in the envelope
            # structure's FROM field" (TO: "TO field"); string matching is case-insensitive.
            field = message.sender if kind == "FROM" else message.recipient
            return self.arg.lower() in field.lower()
        if kind == "UID":
            text = self._uid_range(uids)
            return SequenceSet.parse(text).contains(message.uid, max(uids, default=1))
        if kind == "NOT":
            return not self.sub[0].matches(message, uids)
        if kind == "OR":
            return self.sub[0].matches(message, uids) or self.sub[1].matches(message, uids)
        raise ValueError(f"unknown search key kind {kind!r}")


_FLAG_KEYS: dict[str, tuple[str, bool]] = {
    "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
}

#: The simple keys, \Deleted ones twice: the keys most often got wrong (a server forgetting
#: that a message marked \Deleted is still there until EXPUNGE). A finite list, so that
#: hypothesis does not favour the keys with more possible values (UID ranges).
SIMPLE_KEYS: tuple[SearchKey, ...] = (
    *(SearchKey(k) for k in ("DELETED", "UNDELETED", *_FLAG_KEYS, "ALL")),
    *(SearchKey(kind, kw) for kind in ("KEYWORD", "UNKEYWORD") for kw in KEYWORDS),
    *(SearchKey("UID", lo=lo, hi=hi) for lo in range(3) for hi in range(3)),
)
#: The keys that test one flag (DELETED, UNDELETED, SEEN, UNSEEN...).
FLAG_KEYS = SIMPLE_KEYS[: 2 + len(_FLAG_KEYS)]
#: SEARCH FROM / TO each address the messages may carry.
ADDRESS_SEARCH_KEYS: tuple[SearchKey, ...] = (
    *(SearchKey("FROM", addr) for _, addr in SENDERS),
    *(SearchKey("TO", addr) for _, addr in RECIPIENTS),
)
_simple_keys = st.sampled_from(SIMPLE_KEYS)
search_keys = st.one_of(
    _simple_keys,
    st.sampled_from(ADDRESS_SEARCH_KEYS),
    _simple_keys.map(lambda k: SearchKey("NOT", sub=(k,))),
    st.tuples(_simple_keys, _simple_keys).map(lambda ks: SearchKey("OR", sub=ks)),
)
#: Flags to APPEND or STORE; \Deleted twice as likely, so that EXPUNGE and SEARCH DELETED
#: often have something to act on.
flag_lists = st.lists(
    st.sampled_from(["\\Deleted", *SYSTEM_FLAGS, *KEYWORDS]), min_size=0, max_size=3, unique=True
)
#: Which of SENDERS and RECIPIENTS a message carries.
correspondents = st.tuples(st.integers(0, len(SENDERS) - 1), st.integers(0, len(RECIPIENTS) - 1))
#: A message appended before the sessions select the mailbox: (kind, lines, flags, who).
Seed = tuple[str, int, list[str], tuple[int, int]]
seed_messages = st.lists(
    st.tuples(st.sampled_from(["plain", "multipart"]), st.integers(0, 4), flag_lists,
              correspondents), max_size=3
)
#: Picks: indexes into the candidate messages, taken modulo their number at run time.
picks = st.lists(st.integers(0, 1000), min_size=1, max_size=3)


def make_body(kind: str, lines: int, mark: str, who: tuple[int, int] = (0, 0)) -> bytes:
    """A small well-formed message: text/plain or multipart/mixed, *lines* body lines, From
    and To the fields of SENDERS and RECIPIENTS that *who* picks."""
    head = (
        f"From: {SENDERS[who[0]][0]}\r\nTo: {RECIPIENTS[who[1]][0]}\r\n"
        f"Subject: model {kind} {mark}\r\nDate: {email.utils.formatdate(localtime=False)}\r\n"
        f"Message-ID: <{mark}@model.mailharness.invalid>\r\nMIME-Version: 1.0\r\n"
    )
    text = "".join(f"line {i} of {mark}\r\n" for i in range(lines))
    if kind == "multipart":
        boundary = f"b-{mark}"
        return (
            head + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\nbWFpbGhhcm5lc3M=\r\n--{boundary}--\r\n"
        ).encode("ascii")
    return (head + "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text).encode("ascii")


# --- one session's view -----------------------------------------------------------------------


@dataclass
class View:
    """What the server told one session about its selected mailbox."""

    name: str
    client: IMAPClient
    rev2: bool = False
    selection: int = 0  # counts SELECTs of this session
    selected_step: int = 0
    seq: list[int | None] = field(default_factory=list)  # UID of each sequence number
    flags: dict[int, frozenset[str]] = field(default_factory=dict)
    recent: set[int] = field(default_factory=set)  # UIDs seen with \Recent in this selection
    keywords: set[str] = field(default_factory=set)  # from FLAGS
    permanent: set[str] = field(default_factory=set)  # from PERMANENTFLAGS
    permanent_star: bool = False
    modseq: dict[int, int] = field(default_factory=dict)
    highest_modseq: int = 0
    uidvalidity: int | None = None

    def known(self) -> list[int]:
        return [u for u in self.seq if u is not None]

    def may_create_keyword(self, keyword: str) -> bool:
        return self.permanent_star or keyword in self.permanent


def status_of(result: CommandResult) -> str:
    return result.status + (f" [{result.code.name}]" if result.code else "")


def code_of(response: Response | CommandResult) -> ResponseCode | None:
    code = getattr(response, "code", None)
    return code if isinstance(code, ResponseCode) else None


def uid_list(text: object) -> list[int]:
    if isinstance(text, int):
        return [text]
    out: list[int] = []
    for start, end in SequenceSet.parse(str(text)).ranges:
        if start is None or end is None:
            raise RemoteProtocolError(f"'*' in a uid-set of a response: {text}")
        out.extend(range(min(start, end), max(start, end) + 1))
    return out


def search_hits(result: CommandResult) -> list[int]:
    """The numbers of every SEARCH or ESEARCH (ALL) response of *result*."""
    hits: list[int] = []
    for response in result.untagged:
        if isinstance(response, Search):
            hits.extend(response.numbers)
        elif isinstance(response, ESearch) and "ALL" in response.data:
            hits.extend(uid_list(response.data["ALL"]))
    return hits
