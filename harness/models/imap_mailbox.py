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
- IMAP-SEARCH-ADDRESS: the same, for SEARCH FROM / TO an addr-spec, over messages whose From and
  To spell their addresses with comments, old-style trailing names and groups (SENDERS,
  RECIPIENTS): the search matches the address, not the header's raw text.
- IMAP-SESSIONS-AGREE: flags reported by FETCH are the model's flags; after a checkpoint (NOOP in
  every session) each session's view holds the model's UIDs, count and flags, and an explicit
  FETCH FLAGS agrees; keywords in FETCH were announced by FLAGS or PERMANENTFLAGS (``\\*`` for
  those the model itself stored); MODSEQ and HIGHESTMODSEQ never go backwards in a session where
  CONDSTORE is offered.
- IMAP-FLAGS-NEW-KEYWORD: a keyword in FETCH FLAGS is in the last FLAGS response that session
  had: a keyword new to the mailbox, set by either session, gets a FLAGS response first.
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
import uuid
from collections.abc import Coroutine
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

from harness.checks import Mark, current, grammar_failure
from harness.clients.imap import IMAPClient
from harness.models.imap_mailbox_observer import MailboxObserver
from harness.models.imap_mailbox_values import (
    ADDRESS_KEYS,
    AGREE,
    APPENDUID,
    COPYUID,
    FETCH_ITEMS,
    FLAG_KEYS,
    NO_EXPUNGE,
    RECENT_ONCE,
    RECIPIENTS,
    REQUIREMENTS,
    SEARCH,
    SENDERS,
    SEQ_UID,
    STATIC,
    SYNTAX,
    UID_MONOTONIC,
    UIDVALIDITY,
    UNCHECKED,
    ModelViolation,
    SearchKey,
    Seed,
    TrueMessage,
    View,
    code_of,
    correspondents,
    flag_lists,
    flag_set,
    make_body,
    picks,
    search_hits,
    search_keys,
    seed_messages,
    status_of,
    uid_list,
)
from harness.protocol.errors import RemoteProtocolError
from harness.protocol.imap.responses import Fetch, Status
from harness.protocol.imap.seqset import SequenceSet
from harness.suite import Evidence, account, imap_connector, imap_secure, token
from harness.suite import precondition as setup_step
from harness.targets import Target

#: The names other modules import from here (the model's values are in imap_mailbox_values).
__all__ = [
    "AGREE", "APPENDUID", "COPYUID", "NO_EXPUNGE", "RECENT_ONCE", "REQUIREMENTS", "SEARCH",
    "SEQ_UID", "STATIC", "SYNTAX", "UID_MONOTONIC", "UIDVALIDITY", "MailboxModel",
    "ModelViolation", "SearchKey", "TrueMessage", "View", "flag_set", "make_body", "run_model",
    "search_hits",
]

T = TypeVar("T")

#: Every rule (one to four commands) must finish within this many seconds.
STEP_TIMEOUT = 30.0
#: Cleanup after an example is best effort, bounded by this.
CLEANUP_TIMEOUT = 10.0
#: Transcripts of the model's sessions are named with this prefix.
TRANSCRIPT_PREFIX = "imap model"


# --- the machine ------------------------------------------------------------------------------


class MailboxModel(MailboxObserver, RuleBasedStateMachine):
    """One fresh mailbox, two concurrent sessions, random operations, invariants from outside."""

    def __init__(self, target: Target, evidence: Evidence, judged: set[str] | None = None) -> None:
        super().__init__()
        self.target = target
        self.evidence = evidence
        # The state the observer (MailboxObserver) declares.
        self.judged = set() if judged is None else judged
        self.failure = None
        self.failure_at = []
        self.loop = asyncio.new_event_loop()
        self.views: list[View] = []
        self.transcripts = []
        self.failed = False
        self.ready = False
        self.mailbox = ""
        self.scratch = ""
        self.caps = frozenset()
        self.truth = {}
        self.expunged = set()
        self.max_uid = 0
        self.pending = []
        self.correspondents = {}
        self.static = {}
        self.stored_keywords = set()
        self.scratch_count = 0
        self.recent_reported = False
        self.recent_owner = {}
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

    # -- setup and teardown ---------------------------------------------------------------------

    @initialize(rev2=st.tuples(st.booleans(), st.booleans()), seed=seed_messages)
    def setup(self, rev2: tuple[bool, bool], seed: list[Seed]) -> None:
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
        setup_step(login.ok, f"session {name}: LOGIN as {acct.user} answered {status_of(login)}")
        if login.code is None or login.code.name != "CAPABILITY":
            await client.capability()  # RFC 9051 §6.2.3: capabilities may change at login
        return client

    async def _setup(self, rev2: tuple[bool, bool], seed: list[Seed]) -> None:
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
        for kind, lines, flags, who in seed:
            # Before any SELECT: PERMANENTFLAGS is not known yet, so system flags only.
            await self._append(first, kind, lines, [f for f in flags if f.startswith("\\")],
                               who, selected=False)
        for view in self.views:
            await self._select(view)

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

    # -- rules ------------------------------------------------------------------------------------

    @precondition(lambda self: self.ready)
    @rule(session=st.integers(0, 1), kind=st.sampled_from(["plain", "multipart"]),
          lines=st.integers(0, 6), flags=flag_lists, who=correspondents)
    def append(self, session: int, kind: str, lines: int, flags: list[str],
               who: tuple[int, int]) -> None:
        view = self.views[session]
        self._run(self._append(view, kind, lines, flags, who), f"APPEND {kind} {flags} {who}")

    async def _append(self, view: View, kind: str, lines: int, flags: list[str],
                      who: tuple[int, int], *, selected: bool = True) -> None:
        usable = self._usable(view, flags)
        body = make_body(kind, lines, uuid.uuid4().hex, who)
        self.correspondents[body] = (SENDERS[who[0]][1], RECIPIENTS[who[1]][1])
        result = await view.client.append(self.mailbox, body, usable)
        self._step_ok(view, result, "APPEND")
        self.stored_keywords.update(f for f in usable if not f.startswith("\\"))
        new_flags = flag_set(usable)
        code = result.code
        if code is not None and code.name == "APPENDUID" and isinstance(code.value, tuple):
            validity, uids = code.value
            self._check_validity(view, validity, APPENDUID)
            (uid,) = uid_list(uids)
            self._register(view, uid, body, new_flags)
        else:
            self.pending.append((body, new_flags))
        if selected:
            self._absorb(view, "APPEND", result)
            await self._arrivals(view, "APPEND")

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

    @precondition(lambda self: self.ready and self.truth)
    @rule(session=st.integers(0, 1), choice=st.integers(0, 1000),
          kind=st.sampled_from(ADDRESS_KEYS), by_uid=st.booleans())
    def search_address(self, session: int, choice: int, kind: str, by_uid: bool) -> None:
        """SEARCH FROM / TO the address of a message in the mailbox: how a client finds a
        correspondent's mail. The answer must hold that message (and every other with the
        address), however its header spells it."""
        message = self.truth[sorted(self.truth)[choice % len(self.truth)]]
        address = message.sender if kind == "FROM" else message.recipient
        self.search(session, SearchKey(kind, address), by_uid)

    async def _search(self, view: View, key: SearchKey, text: str, uids: list[int],
                      by_uid: bool) -> None:
        result, _ = await view.client.search(text, uid=by_uid)
        self._expect_ok(view, result, SEARCH, "SEARCH")
        self._search_result(view, key, text, uids, by_uid, result)

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
        copyuid = next((c for c in (code_of(r) for r in (*result.untagged, result))
                        if c is not None and c.name == "COPYUID"), None)
        if to_self:
            if copyuid is not None and isinstance(copyuid.value, tuple):
                validity, source_set, dest_set = copyuid.value
                self._check_validity(view, validity, COPYUID)
                pairs = dict(zip(uid_list(source_set), uid_list(dest_set), strict=False))
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
            # Saved examples are of another server, or of this one with other faults (the
            # quirk tests share this state machine): replaying them proves nothing here.
            database=None,
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
