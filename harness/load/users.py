"""The simulated users of a load run, on the blocking clients (harness/clients/blocking.py), so
the same code runs in a thread here and as a Locust user under gevent.

- `Sender`: one submission session (STARTTLS or implicit TLS, AUTH PLAIN), sending
  self-verifying messages (harness/load/messages.py), PIPELINING where offered; as an *MX
  injector* (``account`` None), the same without AUTH, from outside, to the receiver's MX.
- `Reader`: one IMAP session on a recipient's INBOX, fetching what is new by UID and telling
  the ledger what it found.

A failure is counted by kind and the user starts a new session after a back-off that doubles up
to 2 s, so a target that slows down or refuses is measured, not run into."""

from __future__ import annotations

import itertools
import random
import re
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.clients.blocking import (
    BlockingClientError,
    BlockingIMAP,
    BlockingProtocolError,
    BlockingSMTP,
    Completed,
    Ring,
)
from harness.load.imapview import (
    STORE_MODSEQ,
    UID_MONOTONIC,
    MailboxFacts,
    SessionView,
    ViewBroken,
)
from harness.load.ledger import Ledger
from harness.load.messages import inspect, make_message
from harness.targets import Account as TargetAccount
from harness.targets import Endpoint, Target

MAX_BACKOFF = 2.0


@dataclass(frozen=True)
class Budget:
    """Messages the senders may still send, shared by all of them (``--max-messages``), and
    the pace they may send them at (``--rate``, messages per second over all senders; None:
    as fast as the target takes them)."""

    lock: threading.Lock
    left: list[int]
    rate: float | None = None
    #: When the next message may start (time.monotonic), with a rate.
    next_at: list[float] = field(default_factory=lambda: [0.0])

    @classmethod
    def of(cls, count: int, rate: float | None = None) -> Budget:
        return cls(threading.Lock(), [count], rate)

    def take(self) -> bool:
        with self.lock:
            if self.left[0] <= 0:
                return False
            self.left[0] -= 1
            return True

    def wait_turn(self, stop: threading.Event) -> None:
        """With a rate, wait for this message's slot: the senders share one schedule, so the
        rate holds however many there are (an open loop: a slow target does not slow it)."""
        if self.rate is None:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(self.next_at[0], now)
            self.next_at[0] = slot + 1 / self.rate
        if slot > now:
            stop.wait(slot - now)


class User:
    def __init__(self, target: Target, ledger: Ledger, stop: threading.Event, name: str) -> None:
        self.target, self.ledger, self.stop, self.name = target, ledger, stop, name
        self._backoff = 0.1
        #: Set by a user whose work is over (a sender whose budget is spent).
        self.done = False

    def run(self) -> None:
        while not self.stop.is_set() and not self.done:
            try:
                self.session()
                self._backoff = 0.1
            except (BlockingClientError, OSError) as exc:
                self.ledger.error(f"{self.name}: {error_kind(exc)}")
                self.stop.wait(self._backoff)
                self._backoff = min(self._backoff * 2, MAX_BACKOFF)

    def session(self) -> None:
        raise NotImplementedError


def error_kind(exc: BaseException) -> str:
    """A failure's kind for the counts: its message with the numbers taken out (the port,
    a tag), so that the kinds stay few."""
    text = re.sub(r"\d+", "N", str(exc) or type(exc).__name__)
    return text if len(text) <= 80 else text[:77] + "..."


#: The envelope sender of an MX injector's mail: a domain of the topology's outside world.
INJECTOR_SENDER = "load@example.com"


class Sender(User):
    """Submits as *account* to the sender's submission endpoint; with *account* None, injects
    without AUTH into *endpoint* (an MX) as INJECTOR_SENDER."""

    def __init__(self, target: Target, ledger: Ledger, stop: threading.Event, *,
                 account: TargetAccount | None, recipients: list[str], size: int, budget: Budget,
                 rng: random.Random, per_session: int = 100,
                 endpoint: Endpoint | None = None,
                 sizes: Sequence[tuple[int, float]] = ()) -> None:
        super().__init__(target, ledger, stop, "sender" if account is not None else "injector")
        self.account, self.recipients, self.size = account, recipients, size
        #: Sizes drawn by weight for each message (a profile's ``sizes``); else *size*.
        self.sizes = [n for n, _ in sizes]
        self.weights = [w for _, w in sizes]
        self.budget, self.rng, self.per_session = budget, rng, per_session
        provider = target.sender
        self.endpoint = endpoint or provider.submission or provider.submissions
        self.address = account.address if account is not None else INJECTOR_SENDER

    def _step(self, name: str, started: float) -> float:
        """Record how long step *name* of the session took; the time now."""
        now = time.monotonic()
        self.ledger.smtp_command(now - started, name)
        return now

    def _connect(self) -> BlockingSMTP:
        context = self.target.client_ssl_context()
        endpoint = self.endpoint
        if endpoint is None:
            raise BlockingClientError("the target has no endpoint to send to")
        started = time.monotonic()
        smtp = BlockingSMTP.connect(endpoint.host, endpoint.port, implicit_tls=endpoint.implicit_tls,
                                    ssl_context=context, server_hostname=endpoint.host,
                                    local_hostname="load.mailharness.invalid")
        try:
            started = self._step("connect", started)  # TCP, TLS if implicit, the greeting
            smtp.ehlo()
            started = self._step("EHLO", started)
            if not smtp.is_tls and smtp.supports("STARTTLS") and not self.target.allow_plaintext:
                smtp.starttls(context, endpoint.host)
                started = self._step("STARTTLS", started)  # the handshake and EHLO again
            if self.account is not None:
                reply = smtp.auth_plain(self.account.user, self.account.password)
                self._step("AUTH", started)
                if reply.code != 235:
                    raise BlockingClientError(f"AUTH answered {reply.code}")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def session(self) -> None:
        smtp = self._connect()
        try:
            for _ in range(self.per_session):
                if self.stop.is_set():
                    return
                if not self.budget.take():
                    self.done = True
                    return
                self.budget.wait_turn(self.stop)
                if self.stop.is_set():
                    return
                token = uuid.uuid4().hex[:24]
                recipient = self.rng.choice(self.recipients)
                size = self.rng.choices(self.sizes, self.weights)[0] if self.sizes else self.size
                message = make_message(token, self.address, recipient, size, self.rng)
                started = time.monotonic()
                sent = smtp.send(self.address, [recipient], message)
                self._step("transaction", started)  # MAIL to the reply after the data
                if sent.accepted:
                    self.ledger.accepted(token, recipient, time.monotonic() - started)
                else:
                    self.ledger.refused(token)
                    self.ledger.error("sender: refused")
        finally:
            smtp.quit()


class _ImapUser(User):
    """An IMAP session on one mailbox of *account*, with its view checked (imapview): the
    connection, LOGIN, SELECT, and every command timed and absorbed into the view."""

    def __init__(self, target: Target, ledger: Ledger, stop: threading.Event, name: str, *,
                 account: TargetAccount, imaps: Endpoint, facts: MailboxFacts | None,
                 mailbox: str = "INBOX") -> None:
        super().__init__(target, ledger, stop, name)
        self.account, self.endpoint, self.mailbox = account, imaps, mailbox
        self.facts = facts or MailboxFacts(f"{account.address} {mailbox}")
        self.ring: Ring | None = None
        self.view: SessionView | None = None
        self.condstore = False
        #: The UID above the highest this user has read (kept over its sessions).
        self.next_uid = 1
        #: The tokens of the messages read, by UID (a manager's, pruned as they go).
        self.tokens: dict[int, str] = {}
        self._fetched: dict[int, dict[str, object]] = {}
        #: The UIDVALIDITY the UIDs above (next_uid, tokens) belong to.
        self._validity: int | None = None

    #: Whether the tokens of messages read are kept (a manager acts on them; a reader does not).
    keeps_tokens = False

    def _report(self, requirement: str, about: str, detail: str,
                rings: Iterable[Ring | None]) -> None:
        self.ledger.violate(requirement, about, f"{self.name}: {detail}", rings)

    def _open(self) -> BlockingIMAP:
        context = self.target.client_ssl_context() if self.endpoint.implicit_tls else None
        self.ring = Ring(f"{self.name} {next(_SESSIONS)}")
        imap = BlockingIMAP.connect(self.endpoint.host, self.endpoint.port, ssl_context=context,
                                    server_hostname=self.endpoint.host, ring=self.ring)
        try:
            if not imap.login(self.account.user, self.account.password).ok:
                raise BlockingClientError("LOGIN refused")
            self.condstore = "CONDSTORE" in imap.capabilities
            self.view = SessionView(self.facts, self._report, self.ring)
            before = self.facts.highest()
            selected = self._command(imap, f"SELECT {self.mailbox}"
                                     + (" (CONDSTORE)" if self.condstore else ""), absorb=False)
            self.view.selected(selected, before)
            if self.view.uidvalidity != self._validity:
                # A new UIDVALIDITY (or the first): the UIDs read before name nothing now
                # (RFC 9051 §2.3.1.1), so read the mailbox again from its first UID.
                if self._validity is not None:
                    self.next_uid, self.tokens = 1, {}
                self._validity = self.view.uidvalidity
            if self.view.seq:
                self._command(imap, "FETCH 1:* (UID FLAGS" + (" MODSEQ)" if self.condstore else ")"))
        except BaseException:
            imap.close()
            raise
        return imap

    def _command(self, imap: BlockingIMAP, command: str, *literals: bytes,
                 absorb: bool = True, ok: bool = True) -> Completed:
        """Send *command*, time it, apply its responses to the view; with *ok*, anything but
        OK ends the session (counted as an error)."""
        started = time.monotonic()
        result = imap.command(command, *literals)
        self.ledger.imap_command(time.monotonic() - started, _command_name(command))
        if absorb and self.view is not None:
            self._fetched = self.view.absorb(_command_name(command), result)
        code = result.tagged.code
        if ok and not result.ok and not (code is not None and code.name == "EXPUNGEISSUED"):
            # RFC 9051 §7.1: NO [EXPUNGEISSUED] is the answer for messages another session
            # expunged; the rest of the answer stands.
            raise BlockingClientError(f"{_command_name(command)} answered {result.tagged.status}"
                                      + (f" [{code.name}]" if code is not None else ""))
        return result

    def _new_messages(self, imap: BlockingIMAP, found_to_ledger: bool) -> list[int]:
        """Fetch the messages above the highest UID the session has read; check each one's
        token and digest; the UIDs read."""
        assert self.view is not None
        start = self.next_uid
        # A reader reads as a mail client does, BODY[] setting \Seen (RFC 9051 §6.4.5); a
        # manager peeks.
        section = "BODY.PEEK[]" if self.keeps_tokens else "BODY[]"
        self._command(imap, f"UID FETCH {start}:* (UID FLAGS {section})")
        read = []
        for uid, items in sorted(self._fetched.items()):
            body = items.get("BODY[]")
            if uid < start or not isinstance(body, bytes):
                continue  # n:* also names the last message when n is past it
            self.next_uid = max(self.next_uid, uid + 1)
            found = inspect(body)
            if found is None:
                continue
            self.view.token_seen(uid, found.token)
            if self.keeps_tokens:
                self.tokens[uid] = found.token
            read.append(uid)
            if found_to_ledger and self.mailbox == "INBOX" and not found.token.startswith("m"):
                # (a token beginning "m" is a manager's own APPEND: no sender's)
                self.ledger.found(found.token, self.account.address, uid, found.intact, self.ring)
        return read

    def run(self) -> None:
        while not self.stop.is_set() and not self.done:
            try:
                self.session()
                self._backoff = 0.1
            except ViewBroken:
                self.ledger.error(f"{self.name}: session ended after a violation")
            except BlockingProtocolError as exc:
                self.ledger.violate("IMAP-RESPONSE-SYNTAX", self.facts.name,
                                    f"{self.name}: {exc}", [self.ring])
            except (BlockingClientError, OSError) as exc:
                self.ledger.error(f"{self.name}: {error_kind(exc)}")
                self.stop.wait(self._backoff)
                self._backoff = min(self._backoff * 2, MAX_BACKOFF)


_SESSIONS = itertools.count(1)


def _command_name(command: str) -> str:
    words = command.split()
    if words and words[0].upper() == "UID" and len(words) > 1:
        return f"UID {words[1].upper()}"
    return words[0].upper() if words else ""


class Reader(_ImapUser):
    """Reads *account*'s INBOX as mail arrives: IDLE (RFC 2177) where offered, for up to *poll*
    seconds at a time, else NOOP every *poll* seconds; then every message above the highest UID
    read, each checked against its digest and reported to the ledger."""

    def __init__(self, target: Target, ledger: Ledger, stop: threading.Event, *,
                 account: TargetAccount, imaps: Endpoint, poll: float = 0.2,
                 facts: MailboxFacts | None = None, idle: bool = True) -> None:
        super().__init__(target, ledger, stop, "reader", account=account, imaps=imaps,
                         facts=facts)
        self.poll, self.use_idle = poll, idle

    def session(self) -> None:
        imap = self._open()
        assert self.view is not None
        try:
            idle = self.use_idle and "IDLE" in imap.capabilities
            while not self.stop.is_set():
                self._new_messages(imap, found_to_ledger=True)
                if idle:
                    started = time.monotonic()
                    result = imap.idle(self.poll)
                    self.ledger.imap_command(time.monotonic() - started, "IDLE")
                    self.view.absorb("IDLE", result)
                    if not result.ok:
                        raise BlockingClientError(f"IDLE answered {result.tagged.status}")
                else:
                    self.stop.wait(self.poll)
                    self._command(imap, "NOOP")
        finally:
            imap.logout()


#: The mailbox managers copy and move messages into.
ARCHIVE = "Load-Archive"


class Manager(_ImapUser):
    """One of *of* sessions that manage a mailbox together: each reads what arrives (as a
    reader does), then runs operations picked at random — STORE of its own keyword
    ``$Load<index>`` (on messages whose UID modulo *of* is *index*, so the expected state of
    every keyword is known exactly), NOOP with the check that the other managers' keyword
    changes were reported, FETCH 1:* and SEARCH (sequence-number forms, where an EXPUNGE is
    forbidden), COPY and MOVE to ARCHIVE, APPEND, and EXPUNGE of its oldest messages when the
    mailbox holds more than *keep*.

    Where managers in other processes work on the same mailbox (Locust workers), each process
    gives its managers a *keyword_prefix* of their own (the keywords ``<prefix><index>``, those
    of the *of* managers sharing *facts*, which alone know what was stored) and a *share*
    ``(slot, slots)``: the messages whose UID modulo *slots* is *slot* (default ``(index,
    of)``), so that no two managers anywhere act on one message."""

    keeps_tokens = True
    OPERATIONS = (("store", 4), ("noop", 3), ("scan", 2), ("search", 1), ("copy", 1),
                  ("move", 1), ("append", 1), ("churn", 2))

    def __init__(self, target: Target, ledger: Ledger, stop: threading.Event, *,
                 account: TargetAccount, imaps: Endpoint, facts: MailboxFacts, index: int,
                 of: int, rng: random.Random, keep: int = 40, pause: float = 0.05,
                 per_session: int = 200, keyword_prefix: str = "$Load",
                 share: tuple[int, int] | None = None) -> None:
        super().__init__(target, ledger, stop, f"manager {index}", account=account, imaps=imaps,
                         facts=facts)
        self.index, self.of, self.rng, self.keep = index, of, rng, keep
        self.pause, self.per_session = pause, per_session
        self.keyword = f"{keyword_prefix}{index}"
        self.keywords = [f"{keyword_prefix}{i}" for i in range(of)]
        self.slot, self.slots = share if share is not None else (index, of)
        self.operations = [name for name, weight in self.OPERATIONS for _ in range(weight)]
        #: This manager's drafts mailbox (see _churn): the UIDVALIDITY and the highest UID its
        #: APPENDs got there, and the draft(s) still there.
        self.drafts = f"Load-Drafts-{keyword_prefix.strip('$')}{index}"
        self.drafts_imap: BlockingIMAP | None = None
        self.drafts_validity: int | None = None
        self.drafts_high = 0
        self.drafts_held: list[int] = []

    def session(self) -> None:
        imap = self._open()
        try:
            created = self._command(imap, f"CREATE {ARCHIVE}", ok=False)
            del created  # NO when it exists already
            for turn in range(self.per_session):
                if self.stop.is_set():
                    return
                if turn % 20 == 19 and self.view is not None:
                    present = set(self.view.known())  # another manager's EXPUNGE took some
                    self.tokens = {u: t for u, t in self.tokens.items() if u in present}
                # The operation comes first after the pause: what other sessions changed in the
                # meantime is still to be announced, so a FETCH, STORE or SEARCH here meets
                # the expunges it must not announce.
                getattr(self, f"_{self.rng.choice(self.operations)}")(imap)
                if self.view is not None and len(self.view.seq) > self.keep:
                    self._expunge(imap)
                self._new_messages(imap, found_to_ledger=True)
                self.stop.wait(self.pause)
        finally:
            if self.drafts_imap is not None:
                drafts, self.drafts_imap = self.drafts_imap, None
                drafts.logout()
            imap.logout()

    def _mine(self) -> list[int]:
        """Messages of this manager's share that it has read (so the ledger has them)."""
        assert self.view is not None
        return [u for u in self.view.known() if u % self.slots == self.slot and u in self.tokens]

    def _store(self, imap: BlockingIMAP) -> None:
        assert self.view is not None
        mine = self._mine()
        if not mine:
            return
        chosen = self.rng.sample(mine, min(len(mine), self.rng.randint(1, 3)))
        adding = [u for u in chosen if self.keyword not in self.view.flags.get(u, frozenset())]
        for uids, sign in ((adding, "+"), ([u for u in chosen if u not in adding], "-")):
            if not uids:
                continue
            by_uid = self.rng.random() < 0.5
            numbers = [u if by_uid else self.view.seq_of(u) for u in uids]
            if None in numbers:
                continue
            before = {u: (self.view.modseq.get(u), self.view.flags.get(u)) for u in uids}
            store = self.facts.store_begins(uids, self.keyword)
            state: bool | None = None
            try:
                result = self._command(imap, ("UID STORE " if by_uid else "STORE ")
                                       + ",".join(str(n) for n in numbers)
                                       + f" {sign}FLAGS ({self.keyword})", ok=False)
                # A keyword outside PERMANENTFLAGS may be kept for this session only: the
                # others' view of it is not known (RFC 9051 §7.1).
                if result.ok and self.view.keeps(self.keyword):
                    state = sign == "+"
                if result.ok and self.condstore:
                    self._store_modseqs(store, uids, before, sign)
            except ViewBroken:
                if not by_uid:
                    self.facts.taint(self.keyword)
                raise
            finally:
                self.facts.store_ends(uids, self.keyword, state, self.ring)

    def _store_modseqs(self, store: int, uids: list[int],
                       before: dict[int, tuple[int | None, frozenset[str] | None]],
                       sign: str) -> None:
        """The mod-sequences a STORE that changed *uids* reported: each above the one the
        session knew (RFC 7162 §3.1.3), and none another STORE got (§3.1). The MODSEQ of a
        STORE's FETCH is the message's as it is when the response is made, a later change's
        if another session (a reader's implicit \\Seen) changed the message since: it is the
        STORE's own only when the FLAGS are what the session knew with this keyword changed."""
        for uid in uids:
            items = self._fetched.get(uid, {})
            modseq = _modseq(items)
            if modseq is None:
                continue
            known, flags = before.get(uid, (None, None))
            if known is not None and modseq <= known:
                self._report(STORE_MODSEQ, self.facts.name, f"STORE changed the flags of UID "
                             f"{uid}, and its MODSEQ stayed {modseq} (was {known})", [self.ring])
                raise ViewBroken
            shown = items.get("FLAGS")
            if flags is None or not isinstance(shown, tuple):
                continue
            mine = flags | {self.keyword} if sign == "+" else flags - {self.keyword}
            if frozenset(str(f) for f in shown) - {"\\Recent"} == mine - {"\\Recent"}:
                self.facts.modseq(store, modseq, self._report, self.ring)

    def _noop(self, imap: BlockingIMAP) -> None:
        assert self.view is not None
        since = time.monotonic()
        self._command(imap, "NOOP")
        self.view.check_keywords([k for k in self.keywords if k != self.keyword], since)

    def _scan(self, imap: BlockingIMAP) -> None:
        assert self.view is not None
        if self.view.seq:
            self._command(imap, "FETCH 1:* (UID FLAGS" + (" MODSEQ)" if self.condstore else ")"))

    def _search(self, imap: BlockingIMAP) -> None:
        self._command(imap, f"SEARCH KEYWORD {self.keyword}")

    def _copy(self, imap: BlockingIMAP) -> None:
        mine = self._mine()
        if mine:
            self._command(imap, f"UID COPY {self.rng.choice(mine)} {ARCHIVE}", ok=False)

    def _move(self, imap: BlockingIMAP) -> None:
        mine = self._mine()
        if not mine or "MOVE" not in imap.capabilities:
            return
        uid = self.rng.choice(mine)
        self.facts.forget([uid])
        self._command(imap, f"UID MOVE {uid} {ARCHIVE}", ok=False)

    def _append(self, imap: BlockingIMAP) -> int | None:
        """APPEND a message of this manager's own (the ledger does not know its token); its
        UID from APPENDUID (RFC 4315), checked as a UID seen."""
        token = f"m{uuid.uuid4().hex[:23]}"  # "m": not a sender's (their tokens are hex)
        message = make_message(token, self.account.address, self.account.address, 600, self.rng)
        result = self._command(imap, f"APPEND {self.mailbox} {{}}", message, ok=False)
        code = result.tagged.code
        if result.ok and code is not None and code.name == "APPENDUID" and self.view is not None:
            validity, uid = code.value if isinstance(code.value, tuple) else (None, None)
            if isinstance(uid, int) and validity == self.view.uidvalidity:
                self.view.token_seen(uid, token)
                return uid
        return None

    def _churn(self, imap: BlockingIMAP) -> None:
        """What a client does to save a draft again: delete and expunge the old version in this
        manager's own drafts mailbox, then APPEND the new one. Every UID APPENDUID gives there
        must be above every UID given before (RFC 9051 §2.3.1.1: "Unique identifiers are
        assigned in a strictly ascending fashion in the mailbox"), also when the one expunged
        was the highest. The mailbox is this manager's alone, so no delivery interleaves."""
        if "UIDPLUS" not in imap.capabilities:
            return
        drafts = self._drafts_session()
        if self.drafts_held:
            uids = ",".join(str(u) for u in self.drafts_held)
            self._command(drafts, f"UID STORE {uids} +FLAGS.SILENT (\\Deleted)", absorb=False)
            self._command(drafts, f"UID EXPUNGE {uids}", absorb=False)
            self.drafts_held = []
        token = f"m{uuid.uuid4().hex[:23]}"
        message = make_message(token, self.account.address, self.account.address, 400, self.rng)
        result = self._command(drafts, f"APPEND {self.drafts} {{}}", message, absorb=False,
                               ok=False)
        code = result.tagged.code
        if not (result.ok and code is not None and code.name == "APPENDUID"
                and isinstance(code.value, tuple)):
            return
        validity, uid = code.value
        if not isinstance(uid, int):
            return
        if validity != self.drafts_validity:
            self.drafts_validity, self.drafts_high = validity, 0
        if uid <= self.drafts_high:
            self._report(UID_MONOTONIC, self.drafts, f"APPEND to {self.drafts} got UID {uid} "
                         f"(APPENDUID {validity} {uid}), but UID {self.drafts_high} was given "
                         "there before: UIDs must ascend", [self.ring])
        self.drafts_high = max(self.drafts_high, uid)
        self.drafts_held = [uid]

    def _drafts_session(self) -> BlockingIMAP:
        """A second session of this manager's, with its drafts mailbox selected (so that its
        main session's view of the shared mailbox is not disturbed); the same transcript ring."""
        if self.drafts_imap is None:
            context = self.target.client_ssl_context() if self.endpoint.implicit_tls else None
            imap = BlockingIMAP.connect(self.endpoint.host, self.endpoint.port,
                                        ssl_context=context, server_hostname=self.endpoint.host,
                                        ring=self.ring)
            try:
                if not imap.login(self.account.user, self.account.password).ok:
                    raise BlockingClientError("LOGIN refused")
                self._command(imap, f"CREATE {self.drafts}", absorb=False, ok=False)  # NO: exists
                self._command(imap, f"SELECT {self.drafts}", absorb=False)
            except BaseException:
                imap.close()
                raise
            self.drafts_imap = imap
        return self.drafts_imap

    def _expunge(self, imap: BlockingIMAP) -> None:
        """Delete and expunge the oldest messages of this manager's share."""
        mine = self._mine()[: max(len(self._mine()) - self.keep // (2 * self.slots), 0)]
        if not mine:
            return
        uids = ",".join(str(u) for u in mine)
        self.facts.forget(mine)
        self._command(imap, f"UID STORE {uids} +FLAGS.SILENT (\\Deleted)", ok=False)
        if "UIDPLUS" in imap.capabilities and self.rng.random() < 0.5:
            self._command(imap, f"UID EXPUNGE {uids}", ok=False)
        else:
            self._command(imap, "EXPUNGE", ok=False)
        assert self.view is not None
        for uid in mine:
            self.tokens.pop(uid, None)


def _modseq(items: dict[str, object]) -> int | None:
    value = items.get("MODSEQ")
    if isinstance(value, tuple) and value and isinstance(value[0], int):
        return value[0]
    return value if isinstance(value, int) else None
