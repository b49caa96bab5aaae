"""The stateful model of one IMAP mailbox shared by two concurrent sessions, checked from the outside.

``MailboxModel`` is a hypothesis ``RuleBasedStateMachine``. Its rules are synchronous; the machine
owns an asyncio event loop (made in ``__init__``, closed in ``teardown``) on which its two
``IMAPClient`` sessions live. Setup (an ``initialize`` rule) logs both sessions into the
receiver's first account, CREATEs a fresh mailbox and a scratch mailbox and SELECTs the first in
both sessions (each in IMAP4rev1, or IMAP4rev2 when offered — hypothesis picks); teardown DELETEs
them.

The model knows every message because only its own sessions touch the fresh mailbox: the
"truth" is what they did (UIDs from APPENDUID/COPYUID, or learnt right after an APPEND/COPY);
each session's "view" is what the server told that session (EXISTS, EXPUNGE, FETCH). Every
untagged response is checked as it is absorbed, and each rule checks what it is about:

- IMAP-SEQ-UID-STABLE: no sequence number is used that EXISTS did not announce; EXISTS never
  shrinks; a sequence number keeps its UID until an announced EXPUNGE; nothing is expunged that
  was not removed.
- IMAP-NO-EXPUNGE-DURING-FETCH: no untagged EXPUNGE while answering FETCH, STORE or SEARCH
  (the UID forms may carry one: RFC 9051 §7.5.1 note).
- IMAP-STATIC-DATA: RFC822.SIZE, INTERNALDATE, ENVELOPE, BODYSTRUCTURE and BODY[] of a UID are
  the same at every fetch, in any session; BODY[] is the appended message, RFC822.SIZE its length.
- IMAP-SEARCH-CORRECT: SEARCH / UID SEARCH (SEARCH or ESEARCH responses) return exactly the
  model's matches among the messages the session had been told of (with their UIDs) when the
  SEARCH response came. What the session had not been told of yet may go either way: a message
  expunged by the other session, a flag change, and a message the other session added whose
  EXISTS comes after the SEARCH response (RFC 9051 §5.2 obliges a server to send a size update
  it observes during a command, not to observe it before computing the result).
- IMAP-SESSIONS-AGREE: flags reported by FETCH are the model's flags; after a checkpoint (NOOP in
  every session) each session's view holds the model's UIDs, count and flags, and an explicit
  FETCH FLAGS agrees; keywords in FETCH were announced by FLAGS or PERMANENTFLAGS (``\\*`` for
  those the model itself stored); MODSEQ and HIGHESTMODSEQ never go backwards in a session where
  CONDSTORE is offered.
- IMAP-RECENT: in IMAP4rev1, no two selections see one message as ``\\Recent``, and exactly one
  does for a message that arrived while both were selected — checked only once the server has
  ever reported ``\\Recent`` (suites/imap checks that a server keeps recent state at all).
- IMAP-UID-MONOTONIC: a new message's UID is above every UID the mailbox ever had; UIDNEXT after
  SELECT is above them too.
- IMAP-UIDVALIDITY-STABLE: a SELECT of the same mailbox reports the same UIDVALIDITY.
- IMAP-APPENDUID / IMAP-COPYUID: an APPENDUID or COPYUID code names the mailbox's UIDVALIDITY,
  and COPYUID maps every source UID.
- IMAP-RESPONSE-SYNTAX: every response parses (the strict parser raises ``RemoteProtocolError``).

A violation raises ``ModelViolation``, the ``CheckFailed`` of the one requirement it breaks, with
the session and the step; a malformed response is the ``grammar_failure`` of IMAP-RESPONSE-SYNTAX
with the offending bytes. A step the model depends on but does not judge (LOGIN, CREATE, SELECT,
APPEND, STORE, COPY, EXPUNGE, NOOP answered other than OK) is a ``precondition``: the open
requirements are not reached. Hypothesis re-raises the failure of the example it reports, and the
plugin takes the verdict from that exception. When every example passes, each requirement that a
check of the model reached passes; the others (no IMAP4rev1 session saw ``\\Recent``, no
APPENDUID...) are not applicable. The transcripts of both sessions of the failing example are kept
in the evidence; those of passing examples are dropped so that a run of hundreds of examples does
not carry them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import uuid
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from harness.checks import CheckFailed, Mark, current, grammar_failure
from harness.clients.imap import CommandResult, IMAPClient
from harness.clients.transcript import Transcript
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.imap.responses import (
    ESearch,
    Exists,
    Expunge,
    Fetch,
    Flags,
    Recent,
    Response,
    ResponseCode,
    Search,
    Status,
    UntaggedStatus,
)
from harness.protocol.imap.seqset import SequenceSet
from harness.requirements import REGISTRY
from harness.suite import Evidence, account, imap_connector, imap_secure, token
from harness.suite import precondition as setup_step
from harness.targets import Target

T = TypeVar("T")

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
#: Every requirement the model can red (for the suite test's marker).
REQUIREMENTS = (SEQ_UID, NO_EXPUNGE, STATIC, SEARCH, AGREE, RECENT_ONCE, UID_MONOTONIC,
                UIDVALIDITY, APPENDUID, COPYUID, SYNTAX)
#: Why a requirement the model never got to check is not applicable to the target.
UNCHECKED = {
    RECENT_ONCE: "no IMAP4rev1 session was told of a \\Recent message",
    UIDVALIDITY: "no session selected the mailbox again with a UIDVALIDITY",
    APPENDUID: "no APPEND was answered with APPENDUID (UIDPLUS)",
    COPYUID: "no COPY or MOVE was answered with COPYUID (UIDPLUS)",
}

#: Every rule (one to four commands) must finish within this many seconds.
STEP_TIMEOUT = 30.0
#: Cleanup after an example is best effort, bounded by this.
CLEANUP_TIMEOUT = 10.0
#: Transcripts of the model's sessions are named with this prefix.
TRANSCRIPT_PREFIX = "imap model"

SYSTEM_FLAGS = ("\\Seen", "\\Flagged", "\\Deleted", "\\Answered", "\\Draft")
KEYWORDS = ("$Label1", "mh_red", "mh_blue")
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


@dataclass(frozen=True, slots=True)
class SearchKey:
    """One SEARCH key of a small grammar; ``repr`` is valid Python for the reproducer.

    kind: a flag key (``SEEN``, ``UNSEEN``...), ``ALL``, ``KEYWORD``/``UNKEYWORD`` (``arg`` the
    keyword), ``UID`` (``lo``/``hi`` index the model's UIDs at run time), ``NOT`` or ``OR``."""

    kind: str
    arg: str = ""
    lo: int = 0
    hi: int = 0
    sub: tuple[SearchKey, ...] = ()

    def text(self, uids: Sequence[int]) -> str:
        if self.kind in ("KEYWORD", "UNKEYWORD"):
            return f"{self.kind} {self.arg}"
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
_simple_keys = st.sampled_from(SIMPLE_KEYS)
search_keys = st.one_of(
    _simple_keys,
    _simple_keys.map(lambda k: SearchKey("NOT", sub=(k,))),
    st.tuples(_simple_keys, _simple_keys).map(lambda ks: SearchKey("OR", sub=ks)),
)
#: Flags to APPEND or STORE; \Deleted twice as likely, so that EXPUNGE and SEARCH DELETED
#: often have something to act on.
flag_lists = st.lists(
    st.sampled_from(["\\Deleted", *SYSTEM_FLAGS, *KEYWORDS]), min_size=0, max_size=3, unique=True
)
#: Messages appended before the sessions select the mailbox: (kind, lines, flags).
seed_messages = st.lists(
    st.tuples(st.sampled_from(["plain", "multipart"]), st.integers(0, 4), flag_lists), max_size=3
)
#: Picks: indexes into the candidate messages, taken modulo their number at run time.
picks = st.lists(st.integers(0, 1000), min_size=1, max_size=3)


def make_body(kind: str, lines: int, mark: str) -> bytes:
    """A small well-formed message: text/plain or multipart/mixed, *lines* body lines."""
    head = (
        f"From: Model Sender <model@example.com>\r\nTo: bob@example.net\r\n"
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


def _status(result: CommandResult) -> str:
    return result.status + (f" [{result.code.name}]" if result.code else "")


def _code(response: Response | CommandResult) -> ResponseCode | None:
    code = getattr(response, "code", None)
    return code if isinstance(code, ResponseCode) else None


def _uid_list(text: object) -> list[int]:
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
            hits.extend(_uid_list(response.data["ALL"]))
    return hits


# --- the machine ------------------------------------------------------------------------------


class MailboxModel(RuleBasedStateMachine):
    """One fresh mailbox, two concurrent sessions, random operations, invariants from outside."""

    def __init__(self, target: Target, evidence: Evidence, judged: set[str] | None = None) -> None:
        super().__init__()
        self.target = target
        self.evidence = evidence
        #: The requirements a check of the model has reached, over every example of a run.
        self.judged: set[str] = set() if judged is None else judged
        #: The failure this example raised, and how long each of its transcripts was then.
        self.failure: CheckFailed | None = None
        self.failure_at: list[tuple[Transcript, int]] = []
        self.loop = asyncio.new_event_loop()
        self.views: list[View] = []
        self.transcripts: list[Transcript] = []
        self.failed = False
        self.ready = False
        self.mailbox = ""
        self.scratch = ""
        self.caps: frozenset[str] = frozenset()
        self.truth: dict[int, TrueMessage] = {}
        #: UIDs of messages expunged since they were appended (a session not yet told may still
        #: see them in UID SEARCH results).
        self.expunged: set[int] = set()
        self.max_uid = 0
        self.pending: list[tuple[bytes, frozenset[str]]] = []  # arrivals whose UID is unknown
        self.static: dict[tuple[int, str], object] = {}
        self.stored_keywords: set[str] = set()
        self.scratch_count = 0
        self.recent_reported = False
        self.recent_owner: dict[int, tuple[str, int]] = {}
        self.step = 0
        self.command = "setup"

    # -- running coroutines ---------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        self.step += 1
        self.command = what
        try:
            done = self.loop.run_until_complete(asyncio.wait_for(coro, STEP_TIMEOUT))
        except RemoteProtocolError as exc:
            # RFC 9051 §9: a response the strict parser refuses breaks the grammar, whatever
            # the step was about.
            raise self._failure(grammar_failure(exc, f"step {self.step}, {what}")) from exc
        except BaseException:
            self.failed = True
            raise
        self._judge(SYNTAX)
        return done

    def _judge(self, *requirements: str) -> None:
        """A check of each of *requirements* was made (it held, or it raised)."""
        self.judged.update(requirements)

    def _failure(self, failure: CheckFailed) -> CheckFailed:
        """Remember *failure* and the transcripts up to it, for its evidence marks."""
        self.failed = True
        self.failure = failure
        self.failure_at = [(t, len(t.entries)) for t in self.transcripts if t.entries]
        return failure

    def _violate(self, requirement: str, view: View | str, detail: str) -> CheckFailed:
        name = view if isinstance(view, str) else view.name
        return self._failure(ModelViolation(requirement, name, self.step, self.command, detail))

    def _expect_ok(self, view: View, result: CommandResult, requirement: str, what: str) -> None:
        """*what*, which the model judges as a check of *requirement*, must have answered OK."""
        if not result.ok:
            raise self._violate(requirement, view, f"{what} answered {_status(result)}")

    def _step_ok(self, view: View, result: CommandResult, what: str) -> None:
        """*what* is a step the model depends on but does not judge (suites/imap does): when it
        is not answered OK, the open requirements are not reached."""
        setup_step(result.ok, f"session {view.name}, step {self.step}: {what} answered "
                   f"{_status(result)}")

    # -- setup and teardown ---------------------------------------------------------------------

    @initialize(rev2=st.tuples(st.booleans(), st.booleans()), seed=seed_messages)
    def setup(self, rev2: tuple[bool, bool], seed: list[tuple[str, int, list[str]]]) -> None:
        self._run(self._setup(rev2, seed), "setup: LOGIN, CREATE, APPEND, SELECT in both sessions")
        self.ready = True

    async def _open(self, name: str) -> IMAPClient:
        provider = self.target.receiver
        acct = account(provider)
        client = await imap_connector(self.target, self.evidence, provider)()
        client.transcript.name = f"{TRANSCRIPT_PREFIX} session {name} ({client.transcript.name})"
        self.transcripts.append(client.transcript)
        await imap_secure(client, self.target)
        login = await client.login(acct.user, acct.password)
        setup_step(login.ok, f"session {name}: LOGIN as {acct.user} answered {_status(login)}")
        if login.code is None or login.code.name != "CAPABILITY":
            await client.capability()  # RFC 9051 §6.2.3: capabilities may change at login
        return client

    async def _setup(self, rev2: tuple[bool, bool], seed: list[tuple[str, int, list[str]]]) -> None:
        for name, wants_rev2 in zip(("A", "B"), rev2, strict=True):
            client = await self._open(name)
            view = View(name, client)
            self.views.append(view)
            wanted = []
            if wants_rev2 and "IMAP4REV2" in client.capabilities:
                wanted.append("IMAP4rev2")
                view.rev2 = True
            if "CONDSTORE" in client.capabilities and "ENABLE" in client.capabilities:
                wanted.append("CONDSTORE")
            if wanted:
                result = await client.command("ENABLE " + " ".join(wanted))
                self._step_ok(view, result, "ENABLE")
        self.caps = self.views[0].client.capabilities
        mark = token()
        self.mailbox, self.scratch = f"{mark}-model", f"{mark}-scratch"
        first = self.views[0]
        for name in (self.mailbox, self.scratch):
            created = await first.client.command(f"CREATE {name}")
            self._step_ok(first, created, f"CREATE {name}")
        for kind, lines, flags in seed:
            # Before any SELECT: PERMANENTFLAGS is not known yet, so system flags only.
            await self._append(first, kind, lines, [f for f in flags if f.startswith("\\")],
                               selected=False)
        for view in self.views:
            await self._select(view)

    async def _select(self, view: View) -> None:
        selected = await view.client.select(self.mailbox)
        self._step_ok(view, selected.result, f"SELECT {self.mailbox}")
        if view.uidvalidity is not None and selected.uidvalidity is not None:
            # RFC 9051 §2.3.1.1: the UIDs of the mailbox persist, so UIDVALIDITY stays.
            self._judge(UIDVALIDITY)
            if selected.uidvalidity != view.uidvalidity:
                raise self._violate(UIDVALIDITY, view, f"UIDVALIDITY went from "
                                    f"{view.uidvalidity} to {selected.uidvalidity} with the same "
                                    "mailbox")
        if selected.uidnext is not None:
            self._judge(UID_MONOTONIC)
            if selected.uidnext <= self.max_uid:
                raise self._violate(UID_MONOTONIC, view, f"UIDNEXT {selected.uidnext} is not "
                                    f"above UID {self.max_uid} the mailbox already had")
        view.uidvalidity = selected.uidvalidity
        view.selection += 1
        view.selected_step = self.step
        view.seq = [None] * selected.exists
        view.flags.clear()
        view.recent.clear()
        view.modseq.clear()
        view.highest_modseq = 0
        view.keywords = {f for f in selected.flags if not f.startswith("\\")}
        permanent = selected.permanent_flags or ()
        view.permanent = {f for f in permanent if f != "\\*"}
        view.permanent_star = "\\*" in permanent
        if selected.recent:
            self.recent_reported = True
        for response in selected.result.untagged:
            code = _code(response)
            if code is not None and code.name == "HIGHESTMODSEQ" and isinstance(code.value, int):
                view.highest_modseq = code.value  # the last one is the new mailbox's
        if selected.exists != len(self.truth) + len(self.pending):
            raise self._violate(AGREE, view, f"SELECT reported {selected.exists} EXISTS but the "
                                f"mailbox holds {len(self.truth)} messages")
        if selected.exists:
            fetched, _ = await view.client.fetch(f"1:{selected.exists}", self._items("UID FLAGS"))
            self._expect_ok(view, fetched, SEQ_UID, "FETCH 1:n (UID FLAGS) after SELECT")
            self._absorb(view, "FETCH", fetched)
            self._check_all_known(view)

    def teardown(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(asyncio.wait_for(self._cleanup(), CLEANUP_TIMEOUT))
            for view in self.views:
                if not view.client.closed:
                    with contextlib.suppress(Exception):
                        self.loop.run_until_complete(view.client.close())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            self._keep_transcripts()

    async def _cleanup(self) -> None:
        if not self.mailbox:
            return
        for view in self.views[1:]:
            with contextlib.suppress(Exception):
                await view.client.logout()
            await view.client.close()
        first = self.views[0].client
        if self.failed or first.closed:
            # A fresh session: one broken by a finding cannot be trusted with the cleanup.
            await first.close()
            first = await self._open("cleanup")
        try:
            await first.command("UNSELECT" if "UNSELECT" in self.caps else "CLOSE")
            for name in (self.mailbox, self.scratch):
                await first.command(f"DELETE {name}")
            await first.logout()
        finally:
            await first.close()

    def _keep_transcripts(self) -> None:
        """Keep the transcripts of the last failing example only (the one hypothesis reports)."""
        mine = {id(t) for t in self.transcripts}
        kept = self.evidence.transcripts
        if self.failed:
            kept[:] = [t for t in kept
                       if id(t) in mine or not t.name.startswith(TRANSCRIPT_PREFIX)]
        else:
            kept[:] = [t for t in kept if id(t) not in mine]
        if self.failure is not None:
            # The failure's evidence: this example's transcripts up to the failing step, at
            # their places in the evidence as kept (those of earlier examples are gone).
            place = {id(t): i for i, t in enumerate(kept)}
            self.failure.marks = tuple(Mark(place[id(t)], n) for t, n in self.failure_at
                                       if id(t) in place)

    # -- absorbing responses ----------------------------------------------------------------------

    def _items(self, items: str) -> str:
        if "CONDSTORE" in self.caps:
            items += " MODSEQ"
        return f"({items})"

    def _absorb(self, view: View, command: str, result: CommandResult) -> dict[int, frozenset[str]]:
        """Apply the untagged responses of *command* to *view*, checking each; return the flags
        reported per UID."""
        reported: dict[int, frozenset[str]] = {}
        self._judge(SEQ_UID)
        if command in NO_EXPUNGE_COMMANDS:
            self._judge(NO_EXPUNGE)
        for response in result.untagged:
            if isinstance(response, Exists):
                if response.n < len(view.seq):
                    raise self._violate(SEQ_UID, view, f"{response.n} EXISTS after "
                                        f"{len(view.seq)} were announced, without EXPUNGE")
                view.seq.extend([None] * (response.n - len(view.seq)))
            elif isinstance(response, Expunge):
                self._expunge(view, command, response.seq)
            elif isinstance(response, Fetch):
                self._fetch_response(view, response, reported)
            elif isinstance(response, Flags):
                view.keywords = {f for f in response.flags if not f.startswith("\\")}
            elif isinstance(response, Recent):
                if response.n:
                    self.recent_reported = True
            elif isinstance(response, UntaggedStatus) and response.code is not None:
                code = response.code
                if code.name == "PERMANENTFLAGS" and isinstance(code.value, tuple):
                    view.permanent = {str(f) for f in code.value if f != "\\*"}
                    view.permanent_star = "\\*" in code.value
                elif code.name == "HIGHESTMODSEQ" and isinstance(code.value, int):
                    if code.value < view.highest_modseq:
                        raise self._violate(AGREE, view, f"HIGHESTMODSEQ went back from "
                                            f"{view.highest_modseq} to {code.value}")
                    view.highest_modseq = code.value
        for uid, flags in reported.items():
            message = self.truth.get(uid)
            if message is not None:
                self._judge(AGREE)
            if message is not None and flags != message.flags:
                raise self._violate(AGREE, view, f"FETCH reported FLAGS {sorted(flags)} for UID "
                                    f"{uid}, but its flags are {sorted(message.flags)}")
        return reported

    def _expunge(self, view: View, command: str, number: int) -> None:
        if command in NO_EXPUNGE_COMMANDS:
            raise self._violate(NO_EXPUNGE, view, f"untagged {number} EXPUNGE while "
                                f"responding to {command}")
        if not 1 <= number <= len(view.seq):
            raise self._violate(SEQ_UID, view, f"{number} EXPUNGE, but only {len(view.seq)} "
                                "messages were announced")
        uid = view.seq.pop(number - 1)
        if uid is None:
            return
        view.flags.pop(uid, None)
        if uid in self.truth:
            raise self._violate(SEQ_UID, view, f"{number} EXPUNGE removed UID {uid}, "
                                "which nobody expunged")

    def _fetch_response(self, view: View, response: Fetch, reported: dict[int, frozenset[str]]) -> None:
        number, items = response.seq, response.items
        if number > len(view.seq):
            raise self._violate(SEQ_UID, view, f"FETCH response for message {number}, but only "
                                f"{len(view.seq)} were announced by EXISTS")
        known = view.seq[number - 1]
        uid = items.get("UID")
        if isinstance(uid, int):
            if known is None:
                self._learn(view, number, uid)
            elif known != uid:
                raise self._violate(SEQ_UID, view, f"message {number} was UID {known}, now FETCH "
                                    f"says UID {uid}, with no EXPUNGE in between")
        else:
            uid = known
        if uid is None:
            return
        if "FLAGS" in items:
            raw = items["FLAGS"]
            assert isinstance(raw, tuple)
            flags = flag_set(str(f) for f in raw)
            self._check_keywords(view, flags)
            if any(str(f).lower() == RECENT.lower() for f in raw):
                self._saw_recent(view, uid)
            view.flags[uid] = flags
            reported[uid] = flags
        modseq = items.get("MODSEQ")
        if isinstance(modseq, int):
            before = view.modseq.get(uid, 0)
            if modseq < before:
                raise self._violate(AGREE, view, f"MODSEQ of UID {uid} went back from {before} "
                                    f"to {modseq}")
            view.modseq[uid] = modseq
        for name in STATIC_ITEMS:
            if name in items:
                self._check_static(view, uid, name, items[name])

    def _learn(self, view: View, number: int, uid: int) -> None:
        """Sequence number *number* of *view* turns out to be *uid* (first time it is told)."""
        before = [u for u in view.seq[: number - 1] if u is not None]
        after = [u for u in view.seq[number:] if u is not None]
        if (before and uid <= before[-1]) or (after and uid >= after[0]):
            raise self._violate(SEQ_UID, view, f"message {number} is UID {uid}, out of order "
                                f"with UIDs {before[-1:]}..{after[:1]} around it")
        if uid in view.seq:
            raise self._violate(SEQ_UID, view, f"UID {uid} reported for two sequence numbers")
        view.seq[number - 1] = uid
        if uid in self.truth or uid in self.expunged:
            return
        # A message the model has not registered: one of its own arrivals without UIDPLUS.
        if uid <= self.max_uid:
            raise self._violate(UID_MONOTONIC, view, f"new message got UID {uid}, not above UID "
                                f"{self.max_uid} the mailbox already had")
        if not self.pending:
            raise self._violate(SEQ_UID, view, f"UID {uid} appeared, but nobody added a message")
        body, flags = self.pending.pop(0)
        self._register(view, uid, body, flags)

    def _register(self, view: View, uid: int, body: bytes, flags: frozenset[str]) -> None:
        self._judge(UID_MONOTONIC)
        if uid in self.truth or uid in self.expunged or uid <= self.max_uid:
            raise self._violate(UID_MONOTONIC, view, f"new message got UID {uid}, not above UID "
                                f"{self.max_uid} the mailbox already had"
                                + (" (a UID used before)" if uid in self.expunged else ""))
        self.max_uid = uid
        self.truth[uid] = TrueMessage(uid, body, flags, self.step)

    def _check_keywords(self, view: View, flags: frozenset[str]) -> None:
        for flag in flags:
            if flag.startswith("\\") or flag in view.keywords or flag in view.permanent:
                continue
            if view.permanent_star and flag in self.stored_keywords:
                continue
            raise self._violate(AGREE, view, f"keyword {flag!r} in FETCH FLAGS was never "
                                "announced by FLAGS or PERMANENTFLAGS")

    def _check_static(self, view: View, uid: int, name: str, value: object) -> None:
        self._judge(STATIC)
        message = self.truth.get(uid)
        if message is not None and name == "BODY[]" and value != message.body:
            raise self._violate(STATIC, view, f"BODY[] of UID {uid} is not the message that was "
                                f"stored ({len(value) if isinstance(value, bytes) else value!r} "
                                f"octets, stored {len(message.body)})")
        if message is not None and name == "RFC822.SIZE" and value != len(message.body):
            raise self._violate(STATIC, view, f"RFC822.SIZE of UID {uid} is {value}, but the "
                                f"message has {len(message.body)} octets")
        first = self.static.setdefault((uid, name), value)
        if first != value:
            raise self._violate(STATIC, view, f"{name} of UID {uid} changed from {first!r} to "
                                f"{value!r}")

    def _saw_recent(self, view: View, uid: int) -> None:
        self.recent_reported = True
        self._judge(RECENT_ONCE)
        owner = (view.name, view.selection)
        first = self.recent_owner.setdefault(uid, owner)
        if first != owner:
            raise self._violate(RECENT_ONCE, view, f"UID {uid} is \\Recent in session {first[0]} "
                                f"(selection {first[1]}) and in session {view.name} too")
        view.recent.add(uid)

    def _check_all_known(self, view: View) -> None:
        unknown = [i + 1 for i, u in enumerate(view.seq) if u is None]
        if unknown:
            raise self._violate(SEQ_UID, view, f"no UID reported for messages {unknown}")

    async def _resolve(self, view: View) -> None:
        """Fetch the UID and flags of every message of *view* whose UID or flags it has not
        been told (a server may announce a new message by EXISTS alone)."""
        unknown = [i + 1 for i, u in enumerate(view.seq) if u is None or u not in view.flags]
        if unknown:
            numbers = SequenceSet.from_ints(unknown).format()
            fetched, _ = await view.client.fetch(numbers, self._items("UID FLAGS"))
            self._expect_ok(view, fetched, SEQ_UID, f"FETCH {numbers} (UID FLAGS)")
            self._absorb(view, "FETCH", fetched)
            self._check_all_known(view)

    async def _arrivals(self, view: View, what: str) -> None:
        """After an APPEND/COPY without UIDPLUS codes: learn the new UIDs in this session."""
        if not self.pending:
            return
        noop = await view.client.noop()
        self._absorb(view, "NOOP", noop)
        await self._resolve(view)
        if self.pending:
            raise self._violate(AGREE, view, f"{what} completed OK, but the session was not "
                                "told of the new message(s) by its next NOOP")

    # -- helpers for rules ------------------------------------------------------------------------

    def _settled(self, view: View) -> list[tuple[int, int]]:
        """(sequence number, UID) of messages this session knows that still exist."""
        return [(i + 1, u) for i, u in enumerate(view.seq) if u is not None and u in self.truth]

    @staticmethod
    def _pick(candidates: Sequence[T], choice: Sequence[int]) -> list[T]:
        return [candidates[i] for i in sorted({c % len(candidates) for c in choice})]

    def _usable(self, view: View, flags: Sequence[str]) -> list[str]:
        return [f for f in flags if f.startswith("\\") or view.may_create_keyword(f)]

    # -- rules ------------------------------------------------------------------------------------

    @precondition(lambda self: self.ready)
    @rule(session=st.integers(0, 1), kind=st.sampled_from(["plain", "multipart"]),
          lines=st.integers(0, 6), flags=flag_lists)
    def append(self, session: int, kind: str, lines: int, flags: list[str]) -> None:
        view = self.views[session]
        self._run(self._append(view, kind, lines, flags), f"APPEND {kind} {flags}")

    async def _append(self, view: View, kind: str, lines: int, flags: list[str], *,
                      selected: bool = True) -> None:
        usable = self._usable(view, flags)
        body = make_body(kind, lines, uuid.uuid4().hex)
        result = await view.client.append(self.mailbox, body, usable)
        self._step_ok(view, result, "APPEND")
        self.stored_keywords.update(f for f in usable if not f.startswith("\\"))
        new_flags = flag_set(usable)
        code = result.code
        if code is not None and code.name == "APPENDUID" and isinstance(code.value, tuple):
            validity, uids = code.value
            self._check_validity(view, validity, APPENDUID)
            (uid,) = _uid_list(uids)
            self._register(view, uid, body, new_flags)
        else:
            self.pending.append((body, new_flags))
        if selected:
            self._absorb(view, "APPEND", result)
            await self._arrivals(view, "APPEND")

    def _check_validity(self, view: View, validity: object, requirement: str) -> None:
        """RFC 4315 §3: the first value of APPENDUID and COPYUID is the destination mailbox's
        UIDVALIDITY."""
        self._judge(requirement)
        if view.uidvalidity is not None and validity != view.uidvalidity:
            code = requirement.removeprefix("IMAP-")
            raise self._violate(requirement, view, f"{code} names UIDVALIDITY {validity}, the "
                                f"mailbox has {view.uidvalidity}")

    @precondition(lambda self: self.ready and self.truth)
    @rule(session=st.integers(0, 1), choice=picks, mode=st.sampled_from(["+", "-", ""]),
          flags=flag_lists, silent=st.booleans(), by_uid=st.booleans())
    def store(self, session: int, choice: list[int], mode: str, flags: list[str], silent: bool,
              by_uid: bool) -> None:
        view = self.views[session]
        verb = f"{'UID ' if by_uid else ''}STORE {mode}FLAGS{'.SILENT' if silent else ''} {flags}"
        self._run(self._store(view, choice, mode, flags, silent, by_uid), verb)

    async def _store(self, view: View, choice: list[int], mode: str, flags: list[str],
                     silent: bool, by_uid: bool) -> None:
        settled = self._settled(view)
        if not settled:
            return
        targets = self._pick(settled, choice)
        usable = self._usable(view, flags)
        change = flag_set(usable)
        for _, uid in targets:
            message = self.truth[uid]
            if mode == "+":
                message.flags = message.flags | change
            elif mode == "-":
                message.flags = message.flags - change
            else:
                message.flags = change
        self.stored_keywords.update(f for f in usable if not f.startswith("\\"))
        numbers = SequenceSet.from_ints(u if by_uid else s for s, u in targets).format()
        result = await view.client.store(numbers, mode, usable, uid=by_uid, silent=silent)
        self._step_ok(view, result, "STORE")
        self._absorb(view, "UID STORE" if by_uid else "STORE", result)
        for _, uid in targets:
            # The client knows what it stored (with .SILENT the server says nothing).
            view.flags[uid] = self.truth[uid].flags

    @precondition(lambda self: self.ready and self.truth)
    @rule(session=st.integers(0, 1), choice=picks, by_uid=st.booleans())
    def delete(self, session: int, choice: list[int], by_uid: bool) -> None:
        """What a client does to delete: STORE +FLAGS (\\Deleted), EXPUNGE later (or never)."""
        view = self.views[session]
        self._run(self._store(view, choice, "+", ["\\Deleted"], False, by_uid),
                  f"{'UID ' if by_uid else ''}STORE +FLAGS (\\Deleted)")

    @precondition(lambda self: self.ready and self.truth)
    @rule(session=st.integers(0, 1), choice=picks, by_uid=st.booleans(),
          items=st.lists(st.sampled_from(FETCH_ITEMS), min_size=1, max_size=4, unique=True),
          stale=st.booleans())
    def fetch(self, session: int, choice: list[int], by_uid: bool, items: list[str],
              stale: bool) -> None:
        view = self.views[session]
        self._run(self._fetch(view, choice, by_uid, items, stale),
                  f"{'UID ' if by_uid else ''}FETCH {items}")

    async def _fetch(self, view: View, choice: list[int], by_uid: bool, items: list[str],
                     stale: bool) -> None:
        # Any message the session was told of (with *stale*, also those the other session
        # expunged: the server may answer with their data or NO, never with EXPUNGE).
        numbered = [(i + 1, u) for i, u in enumerate(view.seq)
                    if stale or u is None or u in self.truth]
        if by_uid:
            numbered = [(s, u) for s, u in numbered if u is not None]
        if not numbered:
            return
        targets = self._pick(numbered, choice)
        numbers = SequenceSet.from_ints(u if by_uid and u else s for s, u in targets).format()
        wanted = self._items(" ".join(["UID", *items]))
        result, _ = await view.client.fetch(numbers, wanted, uid=by_uid)
        # A message the session has not resolved may be one the other session expunged.
        ghosts = [u for _, u in targets if u is None or u not in self.truth]
        if not result.ok and not (result.status == "NO" and ghosts):
            raise self._violate(STATIC, view, f"FETCH {numbers} answered {result.status}")
        self._absorb(view, "UID FETCH" if by_uid else "FETCH", result)
        if result.ok:
            got = {r.items.get("UID") for r in result.untagged if isinstance(r, Fetch)}
            missing = [u for _, u in targets if u is not None and u in self.truth and u not in got]
            if missing:
                raise self._violate(SEQ_UID, view, f"FETCH {numbers} completed OK without "
                                    f"data for UIDs {missing}")

    @precondition(lambda self: self.ready)
    @rule(session=st.integers(0, 1), key=search_keys, by_uid=st.booleans())
    def search(self, session: int, key: SearchKey, by_uid: bool) -> None:
        view = self.views[session]
        uids = sorted(self.truth)
        text = key.text(uids)
        self._run(self._search(view, key, text, uids, by_uid),
                  f"{'UID ' if by_uid else ''}SEARCH {text}")

    @precondition(lambda self: self.ready and self.truth)
    @rule(session=st.integers(0, 1), key=st.sampled_from(FLAG_KEYS), by_uid=st.booleans())
    def search_flag(self, session: int, key: SearchKey, by_uid: bool) -> None:
        """SEARCH by one flag key: how a client finds unseen, flagged or deleted messages."""
        self.search(session, key, by_uid)

    async def _search(self, view: View, key: SearchKey, text: str, uids: list[int],
                      by_uid: bool) -> None:
        result, _ = await view.client.search(text, uid=by_uid)
        self._expect_ok(view, result, SEARCH, "SEARCH")
        command = "UID SEARCH" if by_uid else "SEARCH"
        # The result is judged by what the session had been told when the SEARCH response came.
        # What it was told later in the command (an EXISTS after the SEARCH response, the new
        # message's UID and flags, a flag change) the result may reflect or not: RFC 9051 §5.2
        # obliges a server to send a size update "if a mailbox size change is observed during
        # the processing of a command", not to observe it before computing the result, and lets
        # flag updates wait for the next allowed moment.
        at = next((i for i, r in enumerate(result.untagged) if isinstance(r, Search | ESearch)),
                  len(result.untagged))
        self._absorb(view, command, replace(result, untagged=result.untagged[:at]))
        judged = set(view.known())
        told = dict(view.flags)
        self._absorb(view, command, replace(result, untagged=result.untagged[at:]))
        hits = search_hits(result)
        found: set[int] = set()
        for hit in hits:
            if by_uid:
                found.add(hit)
                continue
            # A number above those announced before the SEARCH response is a new message if
            # its EXISTS follows in the command.
            if hit > len(view.seq):
                raise self._violate(SEQ_UID, view, f"SEARCH returned message {hit}, but only "
                                    f"{len(view.seq)} were announced")
            uid = view.seq[hit - 1]
            if uid is not None:
                found.add(uid)
        known = set(view.known())
        # A flag change by the other session that this one had not been told of may be judged
        # either way: a server may search the session's view (Dovecot) or the mailbox.
        either = {u for u in judged if u in self.truth and told.get(u) != self.truth[u].flags
                  and key.matches(self.truth[u], uids) != key.matches(
                      replace(self.truth[u], flags=told.get(u, frozenset())), uids)}
        expected = {u for u in judged if u in self.truth and key.matches(self.truth[u], uids)}
        missing = sorted(expected - found - either)
        # A message found must match, whether or not the session had been told of it; one the
        # mailbox never had cannot be found.
        wrong = sorted(u for u in found - either
                       if (u in self.truth and not key.matches(self.truth[u], uids))
                       or (u not in self.truth and u not in known and u not in judged
                           and u not in self.expunged))
        self._judge(SEARCH)
        if missing or wrong:
            raise self._violate(SEARCH, view, f"SEARCH {text} missed UIDs {missing} and returned "
                                f"UIDs {wrong} that do not match (flags: " + ", ".join(
                                    f"{u}={sorted(self.truth[u].flags)}" for u in sorted(self.truth)
                                ) + ")")

    @precondition(lambda self: self.ready and self.truth)
    @rule(session=st.integers(0, 1), choice=picks, move=st.booleans(), to_self=st.booleans(),
          by_uid=st.booleans())
    def copy(self, session: int, choice: list[int], move: bool, to_self: bool,
             by_uid: bool) -> None:
        view = self.views[session]
        move = move and "MOVE" in self.caps
        to_self = to_self and not move
        verb = f"{'UID ' if by_uid else ''}{'MOVE' if move else 'COPY'}"
        self._run(self._copy(view, choice, move, to_self, by_uid),
                  f"{verb} to {'the same mailbox' if to_self else 'scratch'}")

    async def _copy(self, view: View, choice: list[int], move: bool, to_self: bool,
                    by_uid: bool) -> None:
        settled = self._settled(view)
        if not settled:
            return
        targets = self._pick(settled, choice)
        numbers = SequenceSet.from_ints(u if by_uid else s for s, u in targets).format()
        dest = self.mailbox if to_self else self.scratch
        verb = ("UID " if by_uid else "") + ("MOVE" if move else "COPY")
        sources = [self.truth[u] for _, u in targets]
        if move:
            for message in sources:
                del self.truth[message.uid]
                self.expunged.add(message.uid)
        result = await view.client.command(f"{verb} {numbers} {dest}")
        self._step_ok(view, result, verb)
        copyuid = next((c for c in (_code(r) for r in (*result.untagged, result))
                        if c is not None and c.name == "COPYUID"), None)
        if to_self:
            if copyuid is not None and isinstance(copyuid.value, tuple):
                validity, source_set, dest_set = copyuid.value
                self._check_validity(view, validity, COPYUID)
                pairs = dict(zip(_uid_list(source_set), _uid_list(dest_set), strict=False))
                for message in sorted(sources, key=lambda m: m.uid):
                    new_uid = pairs.get(message.uid)
                    if new_uid is None:
                        raise self._violate(COPYUID, view, f"COPYUID does not map UID "
                                            f"{message.uid}")
                    self._register(view, new_uid, message.body, message.flags)
            else:
                self.pending.extend((m.body, m.flags) for m in sorted(sources, key=lambda m: m.uid))
        else:
            self.scratch_count += len(sources)
        self._absorb(view, verb, result)
        await self._arrivals(view, verb)
        if not to_self:
            status = await view.client.command(f"STATUS {self.scratch} (MESSAGES)")
            self._step_ok(view, status, "STATUS")
            self._absorb(view, "STATUS", status)
            counts = [r.items.get("MESSAGES") for r in status.untagged if isinstance(r, Status)]
            if counts != [self.scratch_count]:
                raise self._violate(AGREE, view, f"STATUS of the destination says MESSAGES "
                                    f"{counts} after {verb}, expected {self.scratch_count}")

    @precondition(lambda self: self.ready and any("\\Deleted" in m.flags
                                                  for m in self.truth.values()))
    @rule(session=st.integers(0, 1), choice=picks, by_uid=st.booleans())
    def expunge(self, session: int, choice: list[int], by_uid: bool) -> None:
        view = self.views[session]
        by_uid = by_uid and "UIDPLUS" in self.caps
        self._run(self._expunge_rule(view, choice, by_uid),
                  "UID EXPUNGE" if by_uid else "EXPUNGE")

    async def _expunge_rule(self, view: View, choice: list[int], by_uid: bool) -> None:
        if by_uid:
            # UIDs this session was told of, as a client would name them.
            settled = [u for _, u in self._settled(view)]
            if not settled:
                return
            named = self._pick(settled, choice)
            doomed = [u for u in named if "\\Deleted" in self.truth[u].flags]
            command = f"UID EXPUNGE {SequenceSet.from_ints(named).format()}"
        else:
            doomed = [u for u, m in self.truth.items() if "\\Deleted" in m.flags]
            command = "EXPUNGE"
            if doomed and (None in view.seq or not set(doomed) <= set(view.known())):
                # RFC 9051 §6.4.3 does not say whether EXPUNGE removes a \Deleted message this
                # session has not been told of yet (another session's APPEND): Dovecot leaves
                # it, others remove it. Tell the session first, so the outcome is defined.
                await self._noop(view)
                await self._resolve(view)
        for uid in doomed:
            del self.truth[uid]
            self.expunged.add(uid)
        result = await view.client.command(command)
        self._step_ok(view, result, command)
        self._absorb(view, command, result)
        left = sorted(set(doomed) & set(view.known()))
        if left:
            raise self._violate(SEQ_UID, view, f"{command} did not announce the removal of UIDs "
                                f"{left} with untagged EXPUNGE")

    @precondition(lambda self: self.ready and self.truth)
    @rule(session=st.integers(0, 1), choice=picks, then=st.sampled_from(["FETCH", "SEARCH"]))
    def expunge_race(self, session: int, choice: list[int], then: str) -> None:
        """The classic race: one session deletes and expunges, the other, not yet told, uses
        sequence numbers at once (RFC 9051 §7.5.1: no EXPUNGE may come while answering)."""
        view, other = self.views[session], self.views[1 - session]
        self._run(self._expunge_race(view, other, choice, then),
                  f"STORE +FLAGS.SILENT (\\Deleted), EXPUNGE, then {then} in the other session")

    async def _expunge_race(self, view: View, other: View, choice: list[int], then: str) -> None:
        await self._store(view, choice, "+", ["\\Deleted"], True, False)
        self.command = "EXPUNGE"
        await self._expunge_rule(view, [0], False)
        self.command = f"{then} after the other session's EXPUNGE"
        if then == "FETCH":
            await self._fetch(other, list(range(len(other.seq))), False, ["FLAGS"], True)
        else:
            uids = sorted(self.truth)
            await self._search(other, SearchKey("ALL"), "ALL", uids, False)

    @precondition(lambda self: self.ready)
    @rule(session=st.integers(0, 1))
    def noop(self, session: int) -> None:
        view = self.views[session]
        self._run(self._noop(view), "NOOP")

    async def _noop(self, view: View) -> None:
        result = await view.client.noop()
        self._step_ok(view, result, "NOOP")
        self._absorb(view, "NOOP", result)

    @precondition(lambda self: self.ready)
    @rule(session=st.integers(0, 1))
    def reselect(self, session: int) -> None:
        view = self.views[session]
        self._run(self._select(view), f"SELECT {self.mailbox} again")

    @precondition(lambda self: self.ready)
    @rule()
    def checkpoint(self) -> None:
        self._run(self._checkpoint(), "checkpoint: NOOP in every session")

    async def _checkpoint(self) -> None:
        expected = sorted(self.truth)
        for view in self.views:
            await self._noop(view)
        for view in self.views:
            await self._resolve(view)
            seen = view.seq
            if seen != expected:
                raise self._violate(AGREE, view, f"after NOOP the session sees {len(seen)} "
                                    f"messages, UIDs {seen}; the mailbox holds {len(expected)}, "
                                    f"UIDs {expected}")
            self._judge(AGREE)
            stale = {u: sorted(view.flags.get(u, ())) for u in expected
                     if view.flags.get(u) != self.truth[u].flags}
            if stale:
                raise self._violate(AGREE, view, "after NOOP the session was not told of flag "
                                    f"changes: it has {stale}, the mailbox " + str(
                                        {u: sorted(self.truth[u].flags) for u in stale}))
        if not expected:
            return
        for view in self.views:
            fetched, _ = await view.client.fetch("1:*", self._items("UID FLAGS"))
            self._expect_ok(view, fetched, AGREE, "FETCH 1:* (UID FLAGS)")
            self._absorb(view, "FETCH", fetched)
        if self.recent_reported and not any(v.rev2 for v in self.views):
            since = max(v.selected_step for v in self.views)
            for uid in expected:
                if self.truth[uid].arrived_step <= since:
                    continue
                self._judge(RECENT_ONCE)
                owners = [v.name for v in self.views if uid in v.recent]
                if len(owners) != 1:
                    raise self._violate(RECENT_ONCE, "A+B", f"UID {uid} arrived while both sessions "
                                        f"had the mailbox selected; \\Recent in {owners or 'none'}"
                                        ", not in exactly one")


def run_model(target: Target, evidence: Evidence, *, examples: int, steps: int = 20) -> None:
    """Run the model as a test: *examples* examples of up to *steps* rules each. A violation
    ends it with the failure of its requirement; when every example passes, each requirement a
    check reached passes and the others are not applicable."""
    judged: set[str] = set()
    # hypothesis documents a factory here ("a function that returns a state machine"), while
    # its annotation names the class.
    run_state_machine_as_test(
        lambda: MailboxModel(target, evidence, judged),  # type: ignore[arg-type]
        settings=settings(
            max_examples=examples, stateful_step_count=steps, deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            # No shrinking: each example talks to a server (tens of milliseconds a step), so
            # shrinking would take minutes; the failing program is at most *steps* rules long
            # and the failure names its step.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
    opened = current()
    if opened is None:
        return
    for requirement in REQUIREMENTS:
        if requirement in judged:
            opened.passed(requirement, f"held in every example ({examples} of up to {steps} "
                          "steps, two sessions)")
        else:
            opened.not_applicable(requirement, UNCHECKED.get(
                requirement, "no example of the model reached a check of it"))
