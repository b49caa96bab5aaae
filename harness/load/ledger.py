"""What a load run counts and checks: the ledger of accepted messages against what the readers
find, and latency histograms of bounded size.

Invariants checked here, each a violation with the requirement it breaks:

- HANDOFF-RESPONSIBILITY (RFC 5321 §6.1): a message accepted with 250 that has not arrived
  when the delivery timeout is over is lost;
- IMAP-FETCH-BODY (RFC 9051 §6.4.5): a message whose body no longer matches its own digest.

Duplicates (one token under two UIDs of one mailbox) and messages that arrive although they
were refused are counted and reported; they break no MUST of their own (RFC 5321 §6.1 asks
only to keep the window for duplicates short)."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


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


@dataclass(frozen=True, slots=True)
class Violation:
    requirement: str
    token: str
    detail: str


@dataclass
class _Sent:
    mailbox: str
    at: float
    seen_at: float | None = None
    uids: set[int] = field(default_factory=set)


class Ledger:
    """Thread-safe: senders record what was accepted or refused, readers what they found."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sent: dict[str, _Sent] = {}
        self._refused: set[str] = set()
        self.violations: list[Violation] = []
        self.errors: Counter[str] = Counter()
        self.duplicates = 0
        self.refused_but_arrived = 0
        self.latency: dict[str, Histogram] = {"submit": Histogram(), "delivery": Histogram(),
                                              "imap": Histogram()}

    def accepted(self, token: str, mailbox: str, took: float) -> None:
        with self._lock:
            self._sent[token] = _Sent(mailbox, self._clock())
            self.latency["submit"].add(took)

    def refused(self, token: str) -> None:
        with self._lock:
            self._refused.add(token)

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def imap_command(self, took: float) -> None:
        with self._lock:
            self.latency["imap"].add(took)

    def found(self, token: str, mailbox: str, uid: int, intact: bool) -> None:
        """A reader fetched the message *token* as *uid* of *mailbox*."""
        with self._lock:
            if not intact:
                self.violations.append(Violation(
                    "IMAP-FETCH-BODY", token, f"{mailbox} UID {uid}: the body does not match "
                                              "its digest"))
            sent = self._sent.get(token)
            if sent is None:
                if token in self._refused:
                    self.refused_but_arrived += 1
                return  # another run's message, or one whose 250 we never read
            if uid in sent.uids:
                return  # read again
            sent.uids.add(uid)
            if len(sent.uids) > 1:
                self.duplicates += 1
                return
            sent.seen_at = self._clock()
            self.latency["delivery"].add(sent.seen_at - sent.at)

    def outstanding(self) -> int:
        with self._lock:
            return sum(1 for s in self._sent.values() if s.seen_at is None)

    def finish(self) -> None:
        """The delivery timeout is over: every accepted message not found is lost."""
        with self._lock:
            for token, sent in self._sent.items():
                if sent.seen_at is None:
                    self.violations.append(Violation(
                        "HANDOFF-RESPONSIBILITY", token,
                        f"accepted for {sent.mailbox} and never arrived"))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"accepted": len(self._sent), "refused": len(self._refused),
                    "delivered": sum(1 for s in self._sent.values() if s.seen_at is not None),
                    "duplicates": self.duplicates, "refused_but_arrived": self.refused_but_arrived,
                    "errors": sum(self.errors.values()), "violations": len(self.violations)}
