"""What an IMAP session of a load run has been told about its selected mailbox, and the
invariants every response must keep — checked as the responses arrive, while other sessions
change the same mailbox.

`SessionView` is one session's view: the sequence-number → UID map, the flags and mod-sequences
it was told, its UIDVALIDITY. It applies each untagged response of a command and checks it, the
rules of the stateful mailbox model (harness/models/imap_mailbox_observer.py) that need no
knowledge of the mailbox's true content:

- IMAP-SEQ-UID-STABLE (RFC 9051 §2.3.1.2): the map changes only by an announced EXPUNGE and by
  new messages at the end; EXISTS never shrinks; a FETCH names a number that was announced and
  the UID that number had. A server that drops another session's expunge from this session's
  view without telling it is caught here: the numbers it then uses are not the session's.
- IMAP-NO-EXPUNGE-DURING-FETCH (RFC 9051 §7.5.1): no EXPUNGE while answering FETCH, STORE or
  SEARCH (the UID forms may have them).
- IMAP-UID-MONOTONIC (RFC 9051 §2.3.1.1): a new message's UID is above every UID the session
  has seen in the mailbox; and, across sessions (`MailboxFacts`), one UID never names two
  messages under one UIDVALIDITY, nor is UIDNEXT at or below a UID already seen.
- IMAP-UIDVALIDITY-STABLE (RFC 9051 §2.3.1.1): UIDVALIDITY never goes down, and does not change
  while the UIDs persist (a message seen again under the same UID and a new UIDVALIDITY).
- IMAP-CONDSTORE-STORE-MODSEQ (RFC 7162 §3.1.3): a message's MODSEQ never goes back.

`MailboxFacts` is shared by the sessions of one load process on one mailbox: the UIDs and
tokens seen, the UIDVALIDITY, and what the managers' STOREs did, for the checks that need more
than one session:

- IMAP-SESSIONS-AGREE (RFC 9051 §5.2): after a NOOP, a session reports for each message the
  keyword state that the one session which changes that keyword last set (each manager toggles
  a keyword of its own on messages of its own, so the expected state is known exactly);
- IMAP-CONDSTORE-MODSEQ-UNIQUE (RFC 7162 §3.1): two STOREs never get the same mod-sequence,
  simultaneous STOREs from different sessions included.

Every violation is reported once, with the transcripts of the sessions involved, and raises
`ViewBroken`: the session's view can no longer be trusted, so the user starts a new session
rather than report the same fault again and again."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from harness.clients.blocking import Completed, Ring
from harness.protocol.imap.response_values import (
    Exists,
    Expunge,
    Fetch,
    Response,
    UntaggedStatus,
    Vanished,
)

SEQ_UID = "IMAP-SEQ-UID-STABLE"
NO_EXPUNGE = "IMAP-NO-EXPUNGE-DURING-FETCH"
UID_MONOTONIC = "IMAP-UID-MONOTONIC"
UIDVALIDITY = "IMAP-UIDVALIDITY-STABLE"
STORE_MODSEQ = "IMAP-CONDSTORE-STORE-MODSEQ"
MODSEQ_UNIQUE = "IMAP-CONDSTORE-MODSEQ-UNIQUE"
AGREE = "IMAP-SESSIONS-AGREE"

#: RFC 9051 §7.5.1: "An EXPUNGE response MUST NOT be sent when no command is in progress, nor
#: while responding to a FETCH, STORE, or SEARCH command." The UID forms are other commands.
NO_EXPUNGE_COMMANDS = frozenset({"FETCH", "STORE", "SEARCH"})

#: The mod-sequences of STOREs remembered for the uniqueness check (oldest forgotten first).
MODSEQS_KEPT = 5_000
#: Tokens by UID, and expunged UIDs, remembered per mailbox (oldest forgotten first): memory
#: stays flat, and a reused UID is one of the recent ones.
UIDS_KEPT = 5_000
#: The transcript rings of the last sessions, kept for the other side of a cross-session
#: violation (the long-lived tables name sessions; they do not hold their rings).
RINGS_KEPT = 64

#: Report a violation: requirement, what it is about, detail, the rings of the sessions.
Report = Callable[[str, str, str, Iterable[Ring | None]], None]


class ViewBroken(Exception):
    """A violation was reported; the session's view of the mailbox is no longer the server's."""


@dataclass
class _KeywordChange:
    """The last STORE a manager made of its keyword on one message, and whether one is in
    flight: while it is, another session may be told either state."""

    state: bool
    done_at: float
    in_flight: int = 0
    owner: str | None = None


@dataclass
class MailboxFacts:
    """What the sessions of one process have learnt of one mailbox (thread-safe)."""

    name: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    uidvalidity: int | None = None
    #: A UIDVALIDITY seen before a change (a message seen again under it with the same UID
    #: means the UIDs persisted).
    previous_validity: set[int] = field(default_factory=set)
    #: UID → (UIDVALIDITY, token, the session that saw it).
    tokens: OrderedDict[int, tuple[int, str, str | None]] = field(default_factory=OrderedDict)
    max_uid: int = 0
    #: (message UID, keyword) → the last change by the keyword's owner.
    keywords: dict[tuple[int, str], _KeywordChange] = field(default_factory=dict)
    #: UIDs expunged by a session of this process: a session not yet told may still show them.
    gone: OrderedDict[int, None] = field(default_factory=OrderedDict)
    #: UIDNEXT at the first SELECT of the run: messages from UID this up came during it.
    first_uidnext: int | None = None
    #: Keywords whose STORE by sequence number met a view out of step with the server's: the
    #: server may have changed another message, so their state is no longer known.
    tainted: set[str] = field(default_factory=set)
    #: mod-sequence → (store id, session) of the STORE that got it.
    modseqs: OrderedDict[int, tuple[int, str | None]] = field(default_factory=OrderedDict)
    #: The rings of the last RINGS_KEPT sessions, by name.
    rings: OrderedDict[str, Ring] = field(default_factory=OrderedDict)
    _store_ids: int = 0

    def register(self, ring: Ring | None) -> None:
        """A session begins: its ring can be shown beside another session's violation."""
        if ring is None:
            return
        with self.lock:
            self.rings[ring.name] = ring
            while len(self.rings) > RINGS_KEPT:
                self.rings.popitem(last=False)

    def ring(self, name: str | None) -> Ring | None:
        """The ring of session *name*, if it is one of the last (call with the lock held)."""
        return self.rings.get(name) if name is not None else None

    def validity(self, value: int, report: Report, ring: Ring | None) -> None:
        """A SELECT reported UIDVALIDITY *value*."""
        with self.lock:
            old = self.uidvalidity
            if old is None or old == value:
                self.uidvalidity = value
                return
            if value < old:
                self.uidvalidity = value
                report(UIDVALIDITY, self.name, f"UIDVALIDITY went down from {old} to {value} "
                       "(RFC 9051 §2.3.1.1: it MUST be greater when the UIDs do not persist)",
                       [ring])
                raise ViewBroken
            self.previous_validity.add(old)
            self.uidvalidity = value
            self.max_uid = 0

    def highest(self) -> tuple[int | None, int]:
        """The UIDVALIDITY and the highest UID seen under it, now."""
        with self.lock:
            return self.uidvalidity, self.max_uid

    def uidnext(self, validity: int | None, value: int, before: tuple[int | None, int],
                report: Report, ring: Ring | None) -> None:
        """A SELECT reported UIDNEXT *value*; *before* is `highest()` from before the SELECT
        was sent (a message seen by another session since may be above the SELECT's UIDNEXT)."""
        seen_validity, seen = before
        with self.lock:
            if self.first_uidnext is None:
                self.first_uidnext = value
        if validity != seen_validity or value > seen:
            return
        report(UID_MONOTONIC, self.name, f"UIDNEXT {value} at SELECT, but UID {seen} was "
               "already seen in the mailbox", [ring])
        raise ViewBroken

    def observed(self, validity: int | None, uid: int, token: str, report: Report,
                 ring: Ring | None) -> None:
        """A session read the message *token* as *uid* under UIDVALIDITY *validity*."""
        if validity is None:
            return
        with self.lock:
            self.max_uid = max(self.max_uid, uid) if validity == self.uidvalidity else self.max_uid
            known = self.tokens.get(uid)
            if known is None:
                self.tokens[uid] = (validity, token, ring.name if ring is not None else None)
                while len(self.tokens) > UIDS_KEPT:
                    self.tokens.popitem(last=False)
                return
            old_validity, old_token, old_name = known
            old_ring = self.ring(old_name)
            if old_validity == validity and old_token == token:
                return
            if old_validity == validity:
                report(UID_MONOTONIC, self.name, f"UID {uid} named message {old_token} and now "
                       f"names {token}, under UIDVALIDITY {validity}", [ring, old_ring])
                raise ViewBroken
            if old_token == token:
                report(UIDVALIDITY, self.name, f"UIDVALIDITY changed from {old_validity} to "
                       f"{validity}, but UID {uid} still names message {token}: the UIDs "
                       "persisted", [ring, old_ring])
                raise ViewBroken
            self.tokens[uid] = (validity, token, ring.name if ring is not None else None)

    # -- the managers' keywords and mod-sequences ------------------------------------------------

    def store_begins(self, uids: Iterable[int], keyword: str) -> int:
        with self.lock:
            for uid in uids:
                change = self.keywords.setdefault((uid, keyword), _KeywordChange(False, 0.0))
                change.in_flight += 1
            self._store_ids += 1
            return self._store_ids

    def store_ends(self, uids: Iterable[int], keyword: str, state: bool | None,
                   ring: Ring | None) -> None:
        """The STORE of *keyword* on *uids* completed; *state* None when its outcome is not
        known (a NO, or a session lost before the tagged response)."""
        now = time.monotonic()
        with self.lock:
            for uid in uids:
                change = self.keywords.get((uid, keyword))
                if change is None:
                    continue  # forgotten meanwhile (expunged)
                change.in_flight -= 1
                if state is not None:
                    change.state, change.done_at = state, now
                    change.owner = ring.name if ring is not None else None
                else:
                    change.done_at = float("inf")  # unknown until the owner stores it again

    def expected(self, uid: int, keyword: str, since: float) -> tuple[bool, Ring | None] | None:
        """The state of *keyword* on *uid* that every session must report after a NOOP begun
        at *since*: None when a STORE of it was in flight or ended after *since*."""
        with self.lock:
            if uid in self.gone or keyword in self.tainted:
                return None
            change = self.keywords.get((uid, keyword))
            if change is None:
                # Never stored in this run: clear, for a message that came during it; for one
                # that was there before (a keyword an earlier run left), not known.
                if self.first_uidnext is None or uid < self.first_uidnext:
                    return None
                return False, None
            if change.in_flight or change.done_at >= since:
                return None
            return change.state, self.ring(change.owner)

    def taint(self, keyword: str) -> None:
        """A STORE of *keyword* by sequence number went to a view the server no longer
        shares (a violation was reported): which messages it changed is not known."""
        with self.lock:
            self.tainted.add(keyword)

    def forget(self, uids: Iterable[int]) -> None:
        """*uids* were expunged: their keyword records go."""
        doomed = set(uids)
        with self.lock:
            for uid in doomed:
                self.gone[uid] = None
            while len(self.gone) > UIDS_KEPT:
                self.gone.popitem(last=False)
            for key in [k for k in self.keywords if k[0] in doomed]:
                del self.keywords[key]

    def modseq(self, store: int, value: int, report: Report, ring: Ring | None) -> None:
        """STORE number *store* changed a message and got mod-sequence *value*."""
        with self.lock:
            other = self.modseqs.get(value)
            if other is None:
                self.modseqs[value] = (store, ring.name if ring is not None else None)
                while len(self.modseqs) > MODSEQS_KEPT:
                    self.modseqs.popitem(last=False)
                return
            if other[0] == store:
                return  # one STORE, several messages
            report(MODSEQ_UNIQUE, self.name, f"two STOREs got mod-sequence {value}",
                   [ring, self.ring(other[1])])
        raise ViewBroken


@dataclass
class SessionView:
    """One session's view of its selected mailbox; `absorb` applies and checks a command's
    responses."""

    facts: MailboxFacts
    report: Report
    ring: Ring | None
    uidvalidity: int | None = None
    #: UIDs by sequence number (None: announced by EXISTS, UID not yet told).
    seq: list[int | None] = field(default_factory=list)
    #: For each sequence number: the highest UID seen when it was announced (0 for messages
    #: there at SELECT); its UID must be above (IMAP-UID-MONOTONIC).
    floor: list[int] = field(default_factory=list)
    flags: dict[int, frozenset[str]] = field(default_factory=dict)
    modseq: dict[int, int] = field(default_factory=dict)
    max_uid: int = 0
    #: UIDs the session was told were expunged (by EXPUNGE).
    expunged: list[int] = field(default_factory=list)
    #: PERMANENTFLAGS of the SELECT (RFC 9051 §7.1: the flags "the client can change
    #: permanently"; ``\*``: new keywords too).
    permanent: frozenset[str] = frozenset()

    def keeps(self, keyword: str) -> bool:
        """Whether a STORE of *keyword* is kept for every session (a flag outside
        PERMANENTFLAGS may be kept for this session only)."""
        return keyword in self.permanent or "\\*" in self.permanent

    def __post_init__(self) -> None:
        self.facts.register(self.ring)

    def _fail(self, requirement: str, detail: str) -> ViewBroken:
        self.report(requirement, self.facts.name, detail, [self.ring])
        return ViewBroken()

    def selected(self, result: Completed, before: tuple[int | None, int]) -> None:
        """The responses of SELECT: EXISTS, UIDVALIDITY, UIDNEXT; *before* is the facts'
        `highest()` from before it was sent. What follows the first EXISTS (an EXPUNGE or
        EXISTS for a change since, a flag update) is applied as any command's would be."""
        validity, uidnext = None, None
        self.permanent = frozenset()
        self.seq, self.floor = [], []
        self.flags.clear()
        self.modseq.clear()
        sized = False
        fetched: dict[int, dict[str, object]] = {}
        for response in result.untagged:
            if isinstance(response, Exists) and not sized:
                self.seq = [None] * response.n
                self.floor = [0] * response.n
                sized = True
            elif isinstance(response, UntaggedStatus) and response.code is not None:
                if response.code.name == "UIDVALIDITY" and isinstance(response.code.value, int):
                    validity = response.code.value
                elif response.code.name == "UIDNEXT" and isinstance(response.code.value, int):
                    uidnext = response.code.value
                elif response.code.name == "PERMANENTFLAGS" and isinstance(
                        response.code.value, tuple):
                    self.permanent = frozenset(str(f) for f in response.code.value)
            elif isinstance(response, Exists | Expunge | Fetch | Vanished):
                self.apply("SELECT", response, fetched)
        self.uidvalidity = validity
        if validity is not None:
            self.facts.validity(validity, self.report, self.ring)
        if uidnext is not None:
            self.facts.uidnext(validity, uidnext, before, self.report, self.ring)

    def absorb(self, command: str, result: Completed) -> dict[int, dict[str, object]]:
        """Apply *command*'s untagged responses (EXISTS, EXPUNGE, FETCH) in order, checking
        each; the FETCH items by UID."""
        fetched: dict[int, dict[str, object]] = {}
        for response in result.untagged:
            self.apply(command, response, fetched)
        return fetched

    def apply(self, command: str, response: Response,
              fetched: dict[int, dict[str, object]]) -> None:
        if isinstance(response, Exists):
            if response.n < len(self.seq):
                raise self._fail(SEQ_UID, f"{response.n} EXISTS after {len(self.seq)} were "
                                 "announced, without EXPUNGE")
            added = response.n - len(self.seq)
            self.seq.extend([None] * added)
            self.floor.extend([self.max_uid] * added)
        elif isinstance(response, Expunge):
            if command in NO_EXPUNGE_COMMANDS:
                raise self._fail(NO_EXPUNGE, f"untagged {response.seq} EXPUNGE while "
                                 f"responding to {command}")
            if not 1 <= response.seq <= len(self.seq):
                raise self._fail(SEQ_UID, f"{response.seq} EXPUNGE, but only {len(self.seq)} "
                                 "messages were announced")
            uid = self.seq.pop(response.seq - 1)
            self.floor.pop(response.seq - 1)
            if uid is not None:
                self.flags.pop(uid, None)
                self.modseq.pop(uid, None)
                self.expunged.append(uid)
                del self.expunged[:-1000]
        elif isinstance(response, Fetch):
            self._fetch(response, fetched)
        elif isinstance(response, Vanished):
            # RFC 7162 §3.2.10: only after ENABLE QRESYNC, which a load session never sends;
            # the view would drift from the server's without it.
            raise self._fail(SEQ_UID, "VANISHED, but QRESYNC was not enabled")

    def _fetch(self, response: Fetch, fetched: dict[int, dict[str, object]]) -> None:
        number, items = response.seq, response.items
        if not 1 <= number <= len(self.seq):
            raise self._fail(SEQ_UID, f"FETCH response for message {number}, but "
                             f"{len(self.seq)} were announced")
        known = self.seq[number - 1]
        uid = items.get("UID")
        if isinstance(uid, int):
            if known is None:
                self._learn(number, uid)
            elif known != uid:
                raise self._fail(SEQ_UID, f"message {number} was UID {known}, now FETCH says "
                                 f"UID {uid}, with no EXPUNGE announced in between")
        elif known is None:
            return
        else:
            uid = known
        if "FLAGS" in items and isinstance(items["FLAGS"], tuple):
            self.flags[uid] = frozenset(str(f) for f in items["FLAGS"])
        modseq = items.get("MODSEQ")
        if isinstance(modseq, tuple) and modseq and isinstance(modseq[0], int):
            modseq = modseq[0]
        if isinstance(modseq, int):
            before = self.modseq.get(uid, 0)
            if modseq < before:
                raise self._fail(STORE_MODSEQ, f"MODSEQ of UID {uid} went back from {before} "
                                 f"to {modseq}")
            self.modseq[uid] = modseq
        fetched.setdefault(uid, {}).update(items)

    def _learn(self, number: int, uid: int) -> None:
        before = next((u for u in reversed(self.seq[:number - 1]) if u is not None), None)
        after = next((u for u in self.seq[number:] if u is not None), None)
        if (before is not None and uid <= before) or (after is not None and uid >= after):
            raise self._fail(SEQ_UID, f"message {number} is UID {uid}, out of order with UIDs "
                             f"{before} and {after} around it")
        if uid in self.seq:
            raise self._fail(SEQ_UID, f"message {number} is UID {uid}, which is message "
                             f"{self.seq.index(uid) + 1} already")
        floor = self.floor[number - 1]
        if uid <= floor:
            raise self._fail(UID_MONOTONIC, f"message {number}, new since SELECT, got UID "
                             f"{uid}, not above UID {floor} seen before it")
        self.seq[number - 1] = uid
        self.max_uid = max(self.max_uid, uid)

    # -- helpers for the users ------------------------------------------------------------------

    def known(self) -> list[int]:
        return [u for u in self.seq if u is not None]

    def seq_of(self, uid: int) -> int | None:
        try:
            return self.seq.index(uid) + 1
        except ValueError:
            return None

    def token_seen(self, uid: int, token: str) -> None:
        self.facts.observed(self.uidvalidity, uid, token, self.report, self.ring)

    def check_keywords(self, keywords: Iterable[str], since: float) -> None:
        """After a NOOP begun at *since*: every message's state of each manager keyword is the
        one its owner last stored (IMAP-SESSIONS-AGREE)."""
        for uid in self.known():
            flags = self.flags.get(uid)
            if flags is None:
                continue
            for keyword in keywords:
                expected = self.facts.expected(uid, keyword, since)
                if expected is None:
                    continue
                state, owner = expected
                if (keyword in flags) != state:
                    self.report(AGREE, self.facts.name, f"UID {uid}: the keyword {keyword} was "
                                f"{'set' if state else 'cleared'} by its session before this "
                                f"NOOP, and this session reports FLAGS {sorted(flags)}",
                                [self.ring, owner])
                    raise ViewBroken
