"""The observer of the IMAP mailbox model (``harness.models.imap_mailbox``): what absorbs and
checks each response the server sends a session, and keeps the model's truth in step with it.

``MailboxObserver`` is a mixin of ``MailboxModel``. It holds no state of its own: its class
annotations declare the state of the model (set in ``MailboxModel.__init__``) that it reads and
writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

from harness.checks import CheckFailed
from harness.clients.imap import CommandResult
from harness.clients.transcript import Transcript
from harness.models.imap_mailbox_values import (
    ADDRESS_KEYS,
    AGREE,
    NEW_KEYWORD,
    NO_EXPUNGE,
    NO_EXPUNGE_COMMANDS,
    RECENT,
    RECENT_ONCE,
    RECIPIENTS,
    SEARCH,
    SEARCH_ADDRESS,
    SENDERS,
    SEQ_UID,
    STATIC,
    STATIC_ITEMS,
    UID_MONOTONIC,
    UIDVALIDITY,
    ModelViolation,
    SearchKey,
    TrueMessage,
    View,
    code_of,
    flag_set,
    search_hits,
    status_of,
)
from harness.protocol.imap.responses import (
    ESearch,
    Exists,
    Expunge,
    Fetch,
    Flags,
    Recent,
    Search,
    UntaggedStatus,
)
from harness.protocol.imap.seqset import SequenceSet
from harness.suite import precondition as setup_step

T = TypeVar("T")


class MailboxObserver:
    """Absorbing and checking responses, for ``MailboxModel``: each check raises the
    ``ModelViolation`` of the one requirement it breaks."""

    #: The requirements a check of the model has reached, over every example of a run.
    judged: set[str]
    #: The failure this example raised, and how long each of its transcripts was then.
    failure: CheckFailed | None
    failure_at: list[tuple[Transcript, int]]
    transcripts: list[Transcript]
    failed: bool
    mailbox: str
    caps: frozenset[str]
    truth: dict[int, TrueMessage]
    #: UIDs of messages expunged since they were appended (a session not yet told may still
    #: see them in UID SEARCH results).
    expunged: set[int]
    max_uid: int
    pending: list[tuple[bytes, frozenset[str]]]  # arrivals whose UID is unknown
    #: The addr-specs of each appended body's From and To (SENDERS, RECIPIENTS).
    correspondents: dict[bytes, tuple[str, str]]
    static: dict[tuple[int, str], object]
    stored_keywords: set[str]
    recent_reported: bool
    recent_owner: dict[int, tuple[str, int]]
    step: int
    command: str

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
            raise self._violate(requirement, view, f"{what} answered {status_of(result)}")

    def _step_ok(self, view: View, result: CommandResult, what: str) -> None:
        """*what* is a step the model depends on but does not judge (suites/imap does): when it
        is not answered OK, the open requirements are not reached."""
        setup_step(result.ok, f"session {view.name}, step {self.step}: {what} answered "
                   f"{status_of(result)}")

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
            code = code_of(response)
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
        sender, recipient = self.correspondents.get(body, (SENDERS[0][1], RECIPIENTS[0][1]))
        self.truth[uid] = TrueMessage(uid, body, flags, self.step, sender, recipient)

    def _check_keywords(self, view: View, flags: frozenset[str]) -> None:
        """RFC 3501 §7.2.6 / RFC 9051 §7.3.5: FLAGS lists "the flags that are applicable for
        this mailbox"; a keyword new to the mailbox gets a new FLAGS response before a FETCH
        shows it (IMAP-FLAGS-NEW-KEYWORD). A keyword neither FLAGS nor PERMANENTFLAGS ever
        announced, nor one of the model's own under ``\\*``, is also a disagreement."""
        for flag in flags:
            if flag.startswith("\\"):
                continue
            self._judge(NEW_KEYWORD)
            if flag in view.keywords:
                continue
            if flag in view.permanent or (view.permanent_star and flag in self.stored_keywords):
                raise self._violate(NEW_KEYWORD, view, f"keyword {flag!r} in FETCH FLAGS is not "
                                    f"in the last FLAGS response {sorted(view.keywords)}")
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

    def _search_result(self, view: View, key: SearchKey, text: str, uids: list[int],
                       by_uid: bool, result: CommandResult) -> None:
        """Absorb the answer to SEARCH *text* (UID SEARCH with *by_uid*) and judge its hits by
        *key* against the truth; *uids* are the model's UIDs when the command was sent."""
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
        requirement = SEARCH_ADDRESS if key.kind in ADDRESS_KEYS else SEARCH
        self._judge(requirement)
        if missing or wrong:
            raise self._violate(requirement, view, f"SEARCH {text} missed UIDs {missing} and returned "
                                f"UIDs {wrong} that do not match (flags: " + ", ".join(
                                    f"{u}={sorted(self.truth[u].flags)}" for u in sorted(self.truth)
                                ) + ")")

    def _check_validity(self, view: View, validity: object, requirement: str) -> None:
        """RFC 4315 §3: the first value of APPENDUID and COPYUID is the destination mailbox's
        UIDVALIDITY."""
        self._judge(requirement)
        if view.uidvalidity is not None and validity != view.uidvalidity:
            code = requirement.removeprefix("IMAP-")
            raise self._violate(requirement, view, f"{code} names UIDVALIDITY {validity}, the "
                                f"mailbox has {view.uidvalidity}")
