"""What a load run counts and checks: the ledger of accepted messages against what the readers
find, and latency histograms of bounded size.

Invariants checked here, each a violation with the requirement it breaks:

- HANDOFF-RESPONSIBILITY (RFC 5321 §6.1): a message accepted with 250 that has not arrived
  when the delivery timeout is over is lost;
- DELIVER-ONCE (RFC 5321 §6.1): a message that arrives twice (one token under two UIDs of a
  mailbox), in a mailbox it was not sent to, or although it was refused;
- DELIVER-INTACT (RFC 5321 §4.5.2): a message whose body no longer matches its own digest.

The IMAP sessions' own invariants are checked by harness/load/imapview.py and reported here
with the same `violate`."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.clients.blocking import Ring


class Histogram:
    """Latencies in logarithmic buckets (10 % wide, 0.1 ms to about 10 minutes): constant
    memory however long the run, percentiles within 10 %."""

    _BASE = 1e-4
    _GROWTH = 1.1
    _BUCKETS = 170

    def __init__(self) -> None:
        self.counts = [0] * self._BUCKETS
        self.count = 0
        self.total = 0.0
        self.maximum = 0.0

    def add(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        index = 0 if seconds <= self._BASE else int(math.log(seconds / self._BASE, self._GROWTH))
        self.counts[min(index, self._BUCKETS - 1)] += 1
        self.count += 1
        self.total += seconds
        self.maximum = max(self.maximum, seconds)

    def percentile(self, share: float) -> float:
        """The upper edge of the bucket holding the *share* (0-1) quantile; 0 when empty."""
        if not self.count:
            return 0.0
        wanted = max(1, math.ceil(share * self.count))
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= wanted:
                return min(self._BASE * self._GROWTH ** (index + 1), self.maximum)
        return self.maximum

    def summary(self) -> dict[str, float]:
        return {"count": self.count, "p50": self.percentile(0.5), "p90": self.percentile(0.9),
                "p99": self.percentile(0.99), "max": self.maximum,
                "mean": self.total / self.count if self.count else 0.0}

    def to_json(self) -> dict[str, object]:
        """The buckets themselves (for a histogram chart, or to merge runs): bucket *i* holds
        latencies up to ``base * growth ** (i + 1)`` seconds."""
        last = max((i for i, n in enumerate(self.counts) if n), default=-1)
        return {"base": self._BASE, "growth": self._GROWTH, "counts": self.counts[:last + 1],
                **self.summary()}

    def merge(self, other: Histogram) -> None:
        for index, n in enumerate(other.counts):
            self.counts[index] += n
        self.count += other.count
        self.total += other.total
        self.maximum = max(self.maximum, other.maximum)


#: The event counts of a timeline point, beside its latencies.
TIMELINE_COUNTS = ("accepted", "delivered", "imap", "errors", "violations")


class Timeline:
    """Counts and latency percentiles per interval of the run, for the charts. Only the current
    interval has histograms; a closed one keeps its summaries, so memory grows with the number
    of intervals (the runner picks the interval so that a run has a few hundred), not with the
    events."""

    def __init__(self, started: float, interval: float = 1.0) -> None:
        self.started, self.interval = started, interval
        self.points: list[dict[str, object]] = []
        self._index = 0
        self._counts: dict[str, int] = dict.fromkeys(TIMELINE_COUNTS, 0)
        self._latency: dict[str, Histogram] = {}

    def _roll(self, now: float) -> None:
        index = int(max(now - self.started, 0.0) // self.interval)
        while index > self._index:
            self._close()
            self._index += 1

    def _close(self) -> None:
        point: dict[str, object] = {"t": round(self._index * self.interval, 3), **self._counts}
        point["latency"] = {k: h.summary() for k, h in self._latency.items()}
        self.points.append(point)
        self._counts = dict.fromkeys(TIMELINE_COUNTS, 0)
        self._latency = {}

    def count(self, now: float, kind: str) -> None:
        self._roll(now)
        self._counts[kind] += 1

    def latency(self, now: float, kind: str, seconds: float) -> None:
        self._roll(now)
        self._latency.setdefault(kind, Histogram()).add(seconds)

    def to_json(self, now: float) -> dict[str, object]:
        """The points up to *now*, the interval in progress last."""
        self._roll(now)
        current = {"t": round(self._index * self.interval, 3), **self._counts,
                   "latency": {k: h.summary() for k, h in self._latency.items()}}
        return {"interval": self.interval, "points": [*self.points, current]}


@dataclass(frozen=True, slots=True)
class Violation:
    """One invariant broken: the requirement, the message (token) or mailbox it is about, what
    was seen, and the sessions involved with their last lines (harness/clients/blocking.Ring)."""

    requirement: str
    token: str
    detail: str
    sessions: tuple[str, ...] = ()
    transcripts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    at: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {"requirement": self.requirement, "token": self.token, "detail": self.detail,
                "at": round(self.at, 3), "sessions": list(self.sessions),
                "transcripts": {name: list(lines) for name, lines in self.transcripts}}


#: Violations kept in full (with transcripts); past it only counted by requirement.
MAX_KEPT_VIOLATIONS = 200


@dataclass(slots=True)
class _Sent:
    mailbox: str
    at: float


#: Command names the per-command IMAP latencies keep (a server's odd answers cannot grow it).
MAX_COMMAND_NAMES = 32

#: Seconds, and how many, a message found before its sender recorded its 250 (or refusal) is
#: held for it; past that it is another run's mail.
EARLY_WINDOW = 60.0
MAX_EARLY = 10_000

#: Seconds a delivered message is remembered, to see a second copy of it (DELIVER-ONCE): past
#: that, memory stays flat however long the run, and a copy that comes later is not seen.
DUPLICATE_WINDOW = 300.0


class Ledger:
    """Thread-safe: senders record what was accepted or refused, readers what they found.

    Memory: a message is held from its 250 until it is found (the outstanding ones), then for
    DUPLICATE_WINDOW seconds more; counts are counters, histograms of constant size."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *,
                 interval: float = 1.0, duplicate_window: float = DUPLICATE_WINDOW) -> None:
        self._clock = clock
        self.timeline = Timeline(clock(), interval)
        self._lock = threading.Lock()
        self._outstanding: dict[str, _Sent] = {}
        #: token -> (mailbox, UID, when found), oldest first.
        self._delivered: OrderedDict[str, tuple[str, int, float]] = OrderedDict()
        self._duplicate_window = duplicate_window
        self._refused: set[str] = set()
        #: (token, mailbox, UID) already reported (a body, a copy, a wrong mailbox), so that
        #: each is reported once however many sessions read it.
        self._reported: set[tuple[str, str, int]] = set()
        self._corrupt: set[tuple[str, str, int]] = set()
        #: Messages found before their sender recorded the reply: token -> (mailbox, UID,
        #: ring, when), for EARLY_WINDOW seconds.
        self._early: OrderedDict[str, tuple[str, int, Ring | None, float]] = OrderedDict()
        self._accepted = 0
        self.violations: list[Violation] = []
        #: Every violation by requirement, those past MAX_KEPT_VIOLATIONS included.
        self.violation_counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.duplicates = 0
        self.refused_but_arrived = 0
        self.latency: dict[str, Histogram] = {"submit": Histogram(), "delivery": Histogram(),
                                              "imap": Histogram()}
        #: IMAP latency by command name, submission latency by step (at most
        #: MAX_COMMAND_NAMES names each).
        self.imap_commands: dict[str, Histogram] = {}
        self.smtp_commands: dict[str, Histogram] = {}

    def accepted(self, token: str, mailbox: str, took: float) -> None:
        with self._lock:
            now = self._clock()
            self._outstanding[token] = _Sent(mailbox, now)
            self._accepted += 1
            self.latency["submit"].add(took)
            self.timeline.count(now, "accepted")
            self.timeline.latency(now, "submit", took)
            early = self._early.pop(token, None)
            if early is not None:  # found before its 250 was recorded
                self._outstanding[token] = _Sent(mailbox, early[3])
                self._found(token, early[0], early[1], early[2], early[3])

    def refused(self, token: str) -> None:
        with self._lock:
            self._refused.add(token)
            early = self._early.pop(token, None)
            if early is not None:
                self._found(token, early[0], early[1], early[2], early[3])

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1
            self.timeline.count(self._clock(), "errors")

    def smtp_command(self, took: float, step: str) -> None:
        """A step of a submission session (connect, EHLO, STARTTLS, AUTH, transaction) took
        *took* seconds."""
        with self._lock:
            self._by_name(self.smtp_commands, step, took)

    @staticmethod
    def _by_name(table: dict[str, Histogram], name: str, took: float) -> None:
        histogram = table.get(name)
        if histogram is None and len(table) < MAX_COMMAND_NAMES:
            histogram = table[name] = Histogram()
        if histogram is not None:
            histogram.add(took)

    def imap_command(self, took: float, command: str = "") -> None:
        """An IMAP command took *took* seconds; *command* is its name (``UID FETCH``), for the
        latencies per command."""
        with self._lock:
            self.latency["imap"].add(took)
            if command:
                self._by_name(self.imap_commands, command, took)
            now = self._clock()
            self.timeline.count(now, "imap")
            self.timeline.latency(now, "imap", took)

    def violate(self, requirement: str, token: str, detail: str,
                rings: Iterable[Ring | None] = ()) -> None:
        """Record a violation of *requirement*, with the transcripts of the sessions in
        *rings* as they are now."""
        with self._lock:
            self._violate(requirement, token, detail, rings)

    def _violate(self, requirement: str, token: str, detail: str,
                 rings: Iterable[Ring | None] = ()) -> None:
        now = self._clock()
        self.violation_counts[requirement] += 1
        self.timeline.count(now, "violations")
        if len(self.violations) >= MAX_KEPT_VIOLATIONS:
            return
        kept = [r for r in rings if r is not None]
        self.violations.append(Violation(
            requirement, token, detail, tuple(r.name for r in kept),
            tuple((r.name, r.snapshot()) for r in kept), now - self.timeline.started))

    def found(self, token: str, mailbox: str, uid: int, intact: bool,
              ring: Ring | None = None) -> None:
        """A reader fetched the message *token* as *uid* of *mailbox*."""
        with self._lock:
            now = self._clock()
            key = (token, mailbox, uid)
            if not intact and key not in self._corrupt:
                self._corrupt.add(key)
                self._violate("DELIVER-INTACT", token, f"{mailbox} UID {uid}: the body does not "
                              "match its digest", [ring])
            self._found(token, mailbox, uid, ring, now)

    def _found(self, token: str, mailbox: str, uid: int, ring: Ring | None, now: float) -> None:
        key = (token, mailbox, uid)
        sent = self._outstanding.get(token)
        if sent is not None:
            if sent.mailbox != mailbox:
                self._once(key, "DELIVER-ONCE", f"sent to {sent.mailbox}, arrived in "
                           f"{mailbox} as UID {uid}", ring)
                return  # still outstanding: it has not arrived where it was sent
            del self._outstanding[token]
            self._delivered[token] = (mailbox, uid, now)
            self.latency["delivery"].add(now - sent.at)
            self.timeline.count(now, "delivered")
            self.timeline.latency(now, "delivery", now - sent.at)
            self._forget_delivered(now)
            return
        first = self._delivered.get(token)
        if first is not None:
            if first[:2] == (mailbox, uid):
                return  # read again
            if first[0] == mailbox:
                if self._once(key, "DELIVER-ONCE", f"{mailbox} has it twice, as UIDs "
                              f"{first[1]} and {uid}", ring):
                    self.duplicates += 1
            else:
                self._once(key, "DELIVER-ONCE", f"sent to {first[0]}, arrived in {mailbox} "
                           f"as UID {uid} too", ring)
            return
        if token in self._refused:
            if self._once(key, "DELIVER-ONCE", f"{mailbox} UID {uid}: the message was "
                          "refused, and arrived", ring):
                self.refused_but_arrived += 1
            return
        # Another run's message, one whose 250 we never read, or one found before its
        # sender recorded the 250 (a server may store it before it replies, RFC 5321
        # §4.2.5): kept a while for accepted() or refused().
        self._early[token] = (mailbox, uid, ring, now)
        while self._early:
            oldest, (_, _, _, at) = next(iter(self._early.items()))
            if now - at <= EARLY_WINDOW and len(self._early) <= MAX_EARLY:
                break
            del self._early[oldest]

    def _once(self, key: tuple[str, str, int], requirement: str, detail: str,
              ring: Ring | None) -> bool:
        """Report *requirement* for *key* unless it was reported already; whether it was new."""
        if key in self._reported:
            return False
        self._reported.add(key)
        self._violate(requirement, key[0], detail, [ring])
        return True

    def _forget_delivered(self, now: float) -> None:
        while self._delivered:
            token, (_, _, seen) = next(iter(self._delivered.items()))
            if now - seen <= self._duplicate_window:
                return
            del self._delivered[token]

    def outstanding(self) -> int:
        with self._lock:
            return len(self._outstanding)

    def finish(self) -> None:
        """The delivery timeout is over: every accepted message not found is lost."""
        with self._lock:
            for token, sent in self._outstanding.items():
                self._violate("HANDOFF-RESPONSIBILITY", token,
                              f"accepted for {sent.mailbox} and never arrived")

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"accepted": self._accepted, "refused": len(self._refused),
                    "delivered": self._accepted - len(self._outstanding),
                    "duplicates": self.duplicates, "refused_but_arrived": self.refused_but_arrived,
                    "errors": sum(self.errors.values()),
                    "violations": sum(self.violation_counts.values())}
