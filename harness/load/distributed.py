"""A load run spread over processes or machines (the Locust users, harness/load/locust_users.py),
without Locust: what a worker sends to the master, and how the master merges it into one ledger
and one verdict.

Each worker keeps its own `WorkerLedger`: a `Ledger` that also keeps every event for the next
batch to the master. A message is checked where it is read (its token and digest are in it,
harness/load/messages.py), but it may be read on another worker than the one that sent it, so
only the master can tell whether an accepted message arrived. The master's `MergedLedger` feeds
the events of every worker, in the order of their times, into one `Ledger`, whose invariants are
the same as a single-process run's: HANDOFF-RESPONSIBILITY, DELIVER-ONCE, DELIVER-INTACT.
The IMAP sessions' invariants (harness/load/imapview.py) are checked on the worker, among its
own sessions, and come as the violations its users report.

A batch is a dict of lists, strings and numbers only (Locust sends it with msgpack):

- ``worker``, ``index``: the worker's Locust id and index; ``seq``: its batches in order;
- ``until``: the worker's clock (``time.time()``) when the batch was taken; every later event of
  that worker is later than it;
- ``events``: ``["a", t, token, mailbox, took]`` accepted, ``["r", t, token]`` refused,
  ``["f", t, token, mailbox, uid, intact, transcript]`` found, ``["e", t, kind]`` an error,
  ``["v", t, requirement, token, detail, transcripts, role]`` a violation a user found itself
  (the IMAP sessions' invariants, say; *role* the kind of user, ``"manager"`` or ``"reader"``,
  "" when not known); a transcript is ``[session, [line, ...]]``;
- ``imap``: the IMAP command latencies since the last batch, as histogram buckets;
  ``imap_roles``: those commands by the role of the user that sent them;
- ``sessions``: the users of each role the worker runs now (IMAP sessions: a reader or manager
  each);
- ``drained``: the worker's senders have stopped (no ``a`` event follows); ``final``: its last.

Times are the workers' wall clocks: delivery latency across machines is only as good as their
clocks agree (NTP). The verdict is not: a message found on one worker before the master has
the other worker's word that it was accepted waits for that word."""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.clients.blocking import Ring
from harness.load.ledger import Histogram, Ledger
from harness.load.runner import LoadResult

#: What a worker tells Locust's statistics: (kind, seconds, problem). Kind is "accepted",
#: "imap" or "error"; problem is the error's kind, or None.
RequestHook = Callable[[str, float, str | None], None]

#: The first letter of the tokens of the messages managers APPEND themselves (users.Manager),
#: which no sender's token (hex digits) has: mail that is no sender's, not sent to the master.
APPENDED_PREFIX = "m"


def histogram_delta(histogram: Histogram) -> dict[str, Any]:
    """*histogram* as a batch carries it: its buckets (trailing empty ones cut) and totals."""
    last = max((i for i, n in enumerate(histogram.counts) if n), default=-1)
    return {"counts": histogram.counts[:last + 1], "count": histogram.count,
            "total": histogram.total, "maximum": histogram.maximum}


def histogram_of(data: dict[str, Any]) -> Histogram:
    """The histogram a batch carries, to merge (`Histogram.merge`)."""
    histogram = Histogram()
    for index, n in enumerate(data.get("counts", [])[:len(histogram.counts)]):
        histogram.counts[index] = int(n)
    histogram.count = int(data.get("count", 0))
    histogram.total = float(data.get("total", 0.0))
    histogram.maximum = float(data.get("maximum", 0.0))
    return histogram


def _transcripts(rings: Iterable[Ring | None]) -> list[list[Any]]:
    return [[r.name, list(r.snapshot())] for r in rings if r is not None]


def _rings(transcripts: Iterable[list[Any]] | None) -> list[Ring]:
    """Rings holding the lines a worker sent, so that the master's ledger keeps them."""
    rings = []
    for name, lines in transcripts or ():
        ring = Ring(str(name), size=max(len(lines), 1))
        ring.lines.extend(str(line) for line in lines)
        rings.append(ring)
    return rings


class WorkerLedger(Ledger):
    """A worker's ledger: counts and checks what its own users see, as any Ledger, and keeps
    each event for the next batch (`take_batch`). *on_request* is told of each submission,
    IMAP command and error, for Locust's statistics.

    Violations the ledger finds itself (from ``found``) are not sent: the master finds them
    again from the events, with every worker's events at hand; those a user reports with
    ``violate`` are. *role* tells the role of the user calling (``"reader"``, ``"manager"``),
    for the IMAP commands and violations by role; ``sessions`` is set by the worker.

    A message a manager APPENDed (APPENDED_PREFIX) is not sent as found, unless damaged: it is
    no sender's mail, and the master would only count it as mail from elsewhere."""

    def __init__(self, worker: str, *, index: int = 0, on_request: RequestHook | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 role: Callable[[], str] | None = None) -> None:
        super().__init__(clock)
        self.worker, self.index, self.on_request, self.role = worker, index, on_request, role
        #: Users by role that the worker runs now (sent with every batch).
        self.sessions: dict[str, int] = {}
        self._wall = wall
        self._outbox_lock = threading.Lock()
        self._events: list[list[Any]] = []
        self._imap = Histogram()
        self._imap_roles: Counter[str] = Counter()
        self._seq = 0
        #: ``.inside``: this thread (greenlet) is in one of the Ledger's own methods, whose
        #: violations are not sent.
        self._local = threading.local()

    def _keep(self, event: list[Any]) -> None:
        with self._outbox_lock:
            self._events.append(event)

    def _tell(self, kind: str, seconds: float, problem: str | None = None) -> None:
        if self.on_request is not None:
            self.on_request(kind, seconds, problem)

    def accepted(self, token: str, mailbox: str, took: float) -> None:
        self._local.inside = True
        try:
            super().accepted(token, mailbox, took)
        finally:
            self._local.inside = False
        self._keep(["a", self._wall(), token, mailbox, took])
        self._tell("accepted", took)

    def refused(self, token: str) -> None:
        super().refused(token)
        self._keep(["r", self._wall(), token])

    def error(self, kind: str) -> None:
        super().error(kind)
        self._keep(["e", self._wall(), kind])
        self._tell("error", 0.0, kind)

    def _role(self) -> str:
        return self.role() if self.role is not None else ""

    def imap_command(self, took: float, command: str = "") -> None:
        super().imap_command(took, command)
        role = self._role()
        with self._outbox_lock:
            self._imap.add(took)
            if role:
                self._imap_roles[role] += 1
        self._tell("imap", took)

    def found(self, token: str, mailbox: str, uid: int, intact: bool,
              ring: Ring | None = None) -> None:
        self._local.inside = True
        try:
            super().found(token, mailbox, uid, intact, ring)
        finally:
            self._local.inside = False
        if intact and token.startswith(APPENDED_PREFIX):
            return
        # The transcript only where this worker already knows it is needed (a damaged body):
        # a ring per message found would be most of the traffic.
        transcript = _transcripts([ring]) if ring is not None and not intact else []
        self._keep(["f", self._wall(), token, mailbox, uid, intact, transcript])

    def violate(self, requirement: str, token: str, detail: str,
                rings: Iterable[Ring | None] = ()) -> None:
        rings = list(rings)
        super().violate(requirement, token, detail, rings)
        if not getattr(self._local, "inside", False):
            self._keep(["v", self._wall(), requirement, token, detail, _transcripts(rings),
                        self._role()])

    def take_batch(self, *, drained: bool = False, final: bool = False) -> dict[str, Any]:
        """The events since the last batch, to send to the master."""
        with self._outbox_lock:
            events, self._events = self._events, []
            imap, self._imap = self._imap, Histogram()
            roles, self._imap_roles = self._imap_roles, Counter()
            self._seq += 1
            return {"worker": self.worker, "index": self.index, "seq": self._seq,
                    "until": self._wall(), "events": events, "imap": histogram_delta(imap),
                    "imap_roles": dict(roles), "sessions": dict(self.sessions),
                    "drained": drained, "final": final}


@dataclass
class WorkerFigures:
    """What the master heard from one worker."""

    index: int = -1
    batches: int = 0
    accepted: int = 0
    refused: int = 0
    found: int = 0
    errors: int = 0
    violations: int = 0
    imap_commands: int = 0
    #: IMAP commands by the role of the user that sent them (``manager``, ``reader``).
    imap_by_role: dict[str, int] = field(default_factory=dict)
    #: Users by role it runs, as of its latest batch.
    sessions: dict[str, int] = field(default_factory=dict)
    #: The violations its users reported, by requirement; and by role, then requirement.
    violation_counts: dict[str, int] = field(default_factory=dict)
    violations_by_role: dict[str, dict[str, int]] = field(default_factory=dict)
    drained: bool = False
    final: bool = False
    #: The ``until`` of its latest batch (its wall clock).
    until: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["until"]
        return data


def _bump(counts: dict[str, int], key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


_COUNTED = {"a": "accepted", "r": "refused", "f": "found", "e": "errors", "v": "violations"}


class MergedLedger:
    """The master's view: every worker's events in one `Ledger` (``ledger``), whose clock is
    the time of the event being applied.

    Events wait in a heap until every worker still sending has sent a batch taken after them
    (the watermark), then go into the ledger in time order. A message found before its
    acceptance is known (the sending worker's batch not in yet, or a clock behind) waits for
    it; at the verdict the remaining ones go in as they are (the ledger ignores mail it did not
    send: another run's)."""

    def __init__(self, started: float, *, interval: float = 1.0) -> None:
        self.started = started
        self._now = started
        self.ledger = Ledger(clock=lambda: self._now, interval=interval)
        self.workers: dict[str, WorkerFigures] = {}
        self._pending: list[tuple[float, int, str, list[Any]]] = []
        self._serial = itertools.count()
        self._pending_accepted = 0
        #: Tokens accepted or refused: a message found is judged only once its token is here.
        self._known: set[str] = set()
        self._early: dict[str, list[tuple[str, list[Any]]]] = {}
        #: token -> the worker that sent it, until a reader on another worker finds it.
        self._sent_by: dict[str, str] = {}
        #: Messages found by a reader on another worker than the one that sent them.
        self.crossed = 0
        #: Messages found that no worker sent (an earlier run's mail in the mailbox).
        self.unknown_found = 0
        #: Events that came after the verdict, and were not counted.
        self.late_events = 0
        self.judged = False

    # --- taking batches ---

    def add(self, batch: dict[str, Any]) -> None:
        events: list[list[Any]] = list(batch.get("events", []))
        if self.judged:
            self.late_events += len(events)
            return
        worker = str(batch["worker"])
        figures = self.workers.setdefault(worker, WorkerFigures())
        figures.index = int(batch.get("index", -1))
        figures.batches += 1
        figures.until = max(figures.until, float(batch["until"]))
        for event in events:
            kind = event[0]
            if kind in _COUNTED:
                setattr(figures, _COUNTED[kind], getattr(figures, _COUNTED[kind]) + 1)
            if kind == "a":
                self._pending_accepted += 1
            elif kind == "v":
                requirement, role = str(event[2]), str(event[6]) if len(event) > 6 else ""
                _bump(figures.violation_counts, requirement)
                _bump(figures.violations_by_role.setdefault(role or "user", {}), requirement)
            heapq.heappush(self._pending, (float(event[1]), next(self._serial), worker, event))
        imap = histogram_of(batch.get("imap", {}))
        for role, n in dict(batch.get("imap_roles") or {}).items():
            _bump(figures.imap_by_role, str(role), int(n))
        if "sessions" in batch:
            figures.sessions = {str(k): int(v) for k, v in dict(batch["sessions"]).items()}
        if imap.count:
            figures.imap_commands += imap.count
            self.ledger.latency["imap"].merge(imap)
            heapq.heappush(self._pending, (figures.until, next(self._serial), worker,
                                           ["i", figures.until, imap.count]))
        figures.drained = figures.drained or bool(batch.get("drained"))
        figures.final = figures.final or bool(batch.get("final"))
        self._apply(self._watermark())

    def _watermark(self) -> float:
        sending = [f.until for f in self.workers.values() if not f.final]
        return min(sending) if sending else math.inf

    def _apply(self, upto: float) -> None:
        while self._pending and self._pending[0][0] <= upto:
            _, _, worker, event = heapq.heappop(self._pending)
            self._event(worker, event)

    def _event(self, worker: str, event: list[Any]) -> None:
        kind, at = event[0], float(event[1])
        self._now = at
        if kind == "a":
            token = str(event[2])
            self._pending_accepted -= 1
            self.ledger.accepted(token, str(event[3]), float(event[4]))
            self._known.add(token)
            self._sent_by[token] = worker
            self._release(token)
        elif kind == "r":
            token = str(event[2])
            self.ledger.refused(token)
            self._known.add(token)
            self._release(token)
        elif kind == "f":
            if str(event[2]) in self._known:
                self._found(worker, event)
            else:
                self._early.setdefault(str(event[2]), []).append((worker, event))
        elif kind == "e":
            self.ledger.error(str(event[2]))
        elif kind == "v":
            self.ledger.violate(str(event[2]), str(event[3]), str(event[4]), _rings(event[5]))
        elif kind == "i":
            for _ in range(int(event[2])):
                self.ledger.timeline.count(at, "imap")

    def _release(self, token: str) -> None:
        for worker, event in self._early.pop(token, ()):
            self._found(worker, event)

    def _found(self, worker: str, event: list[Any]) -> None:
        _, at, token, mailbox, uid, intact = event[:6]
        self._now = float(at)
        rings = _rings(event[6] if len(event) > 6 else None)
        self.ledger.found(str(token), str(mailbox), int(uid), bool(intact),
                          rings[0] if rings else None)
        sender = self._sent_by.get(str(token))
        if sender and sender != worker:
            self.crossed += 1
            self._sent_by[str(token)] = ""  # counted once

    # --- the delivery phase and the verdict ---

    def outstanding(self) -> int:
        """Accepted messages not found yet, those still waiting in the heap included."""
        self._apply(self._watermark())
        return self.ledger.outstanding() + self._pending_accepted

    def drained(self, workers: Iterable[str] = ()) -> bool:
        """Every worker heard from, and every one of *workers*, has said its senders stopped."""
        names = set(self.workers) | set(workers)
        return all(n in self.workers and self.workers[n].drained for n in names)

    def judge(self, *, now: float, load_seconds: float, waited_out: bool,
              interrupted: bool = False) -> LoadResult:
        """Apply every event left and give the verdict; with *waited_out* False (the delivery
        phase cut short) no message counts as lost."""
        self._apply(math.inf)
        for token in list(self._early):
            for worker, event in self._early.pop(token):
                self.unknown_found += 1
                self._found(worker, event)
        self._now = now
        if waited_out:
            self.ledger.finish()
        self.judged = True
        return LoadResult(load_seconds, self.ledger, interrupted, max(now - self.started, 0.0))

    def roles(self) -> dict[str, dict[str, Any]]:
        """By role of user (``manager``, ``reader``; ``user`` for a violation whose role was
        not sent): the users running on every worker as of its latest batch, their IMAP
        commands, and the violations they reported by requirement."""
        roles: dict[str, dict[str, Any]] = {}

        def role(name: str) -> dict[str, Any]:
            return roles.setdefault(name, {"sessions": 0, "imap_commands": 0,
                                           "violation_counts": {}})

        for f in self.workers.values():
            for name, n in f.sessions.items():
                role(name)["sessions"] += n
            for name, n in f.imap_by_role.items():
                role(name)["imap_commands"] += n
            for name, counts in f.violations_by_role.items():
                for requirement, n in counts.items():
                    _bump(role(name)["violation_counts"], requirement, n)
        return dict(sorted(roles.items()))

    def to_json(self, result: LoadResult) -> dict[str, Any]:
        """`LoadResult.to_json`, and what was merged from where."""
        return {
            **result.to_json(),
            "distributed": {"workers": len(self.workers), "crossed": self.crossed,
                            "unknown_found": self.unknown_found,
                            "late_events": self.late_events,
                            "batches": sum(f.batches for f in self.workers.values()),
                            "roles": self.roles()},
            "workers": {name: f.to_json() for name, f in sorted(self.workers.items())},
        }

    def summary(self, result: LoadResult) -> str:
        """`LoadResult.summary`, with a line per role of IMAP user (its sessions, commands
        and violations by requirement) and a line per worker before the verdict."""
        lines = result.summary().splitlines()
        verdict = lines.pop()
        lines.append(f"  {len(self.workers)} workers; {self.crossed} messages found on "
                     "another worker than the one that sent them")
        for name, r in self.roles().items():
            found = ", ".join(f"{k} {n}" for k, n in sorted(r["violation_counts"].items()))
            lines.append(f"  {name}s: {r['sessions']} sessions, {r['imap_commands']} IMAP "
                         f"commands, {f'violations {found}' if found else 'no violation'}")
        for name, f in sorted(self.workers.items(), key=lambda item: item[1].index):
            by_role = ", ".join(f"{n} {k}" for k, n in sorted(f.imap_by_role.items()))
            violations = "".join(f", {k} {n}" for k, n in sorted(f.violation_counts.items()))
            lines.append(f"  worker {f.index} {name}: {f.accepted} accepted, {f.found} found, "
                         f"{f.refused} refused, {f.errors} errors, {f.imap_commands} IMAP "
                         f"commands{f' ({by_role})' if by_role else ''}, {f.batches} batches"
                         f"{violations}")
        lines.append(verdict)
        return "\n".join(lines)
