"""`mailharness load`: senders and readers against a target for a bounded time or count, a
progress line while it runs, a one-screen summary and JSON results at the end.

The run has three phases: load (senders and readers, until ``duration`` is over or
``max_messages`` are sent), delivery (readers only, until every accepted message is found or
the target's delivery timeout is over), and the verdict (the ledger's invariants). Ctrl-C ends
the load phase early; the verdict and the results are written all the same."""

from __future__ import annotations

import ipaddress
import json
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from harness.load.imapview import MailboxFacts
from harness.load.ledger import Ledger
from harness.load.users import Budget, Manager, Reader, Sender, User
from harness.targets import Account as TargetAccount
from harness.targets import Endpoint, Target


class LoadError(Exception):
    """A load run that cannot start: one line for the user."""


@dataclass(frozen=True)
class LoadOptions:
    duration: float = 30.0
    max_messages: int = 100_000
    senders: int = 4
    #: MX injectors: unauthenticated inbound mail to the receiver's MX.
    injectors: int = 0
    readers_per_mailbox: int = 1
    #: IMAP managers per mailbox: sessions that STORE, COPY, MOVE, APPEND and EXPUNGE there
    #: together, checked against each other (harness/load/imapview.py).
    managers_per_mailbox: int = 2
    size: int = 1500
    #: (octets, weight) pairs: message sizes drawn by weight (a profile's ``sizes``); empty,
    #: every message is about *size*.
    sizes: tuple[tuple[int, float], ...] = ()
    seed: int = 1
    #: Messages per second over all senders and injectors (None: as fast as they can).
    rate: float | None = None
    allow_remote: bool = False
    #: Seconds after the load for the last messages to arrive (None: the target's).
    delivery_timeout: float | None = None

    def check(self) -> None:
        if self.duration <= 0 or self.max_messages < 1 or self.senders < 0 or self.injectors < 0:
            raise LoadError("--duration and --max-messages must be positive, --senders and "
                            "--injectors not negative")
        if self.rate is not None and self.rate <= 0:
            raise LoadError("--rate must be positive")
        if self.senders + self.injectors < 1:
            raise LoadError("at least one sender or injector is needed")
        if self.readers_per_mailbox < 0 or self.managers_per_mailbox < 0 or self.size < 100:
            raise LoadError("--readers and --managers must not be negative, --size at least "
                            "100 octets")
        if self.readers_per_mailbox + self.managers_per_mailbox < 1:
            raise LoadError("at least one reader or manager per mailbox is needed to find the "
                            "mail")


def _endpoints(target: Target) -> list[Endpoint]:
    found = []
    for provider in (target.sender, target.receiver):
        for name in ("submission", "submissions", "mx", "imap", "imaps"):
            endpoint = getattr(provider, name, None)
            if endpoint is not None:
                found.append(endpoint)
    return found


def check_addresses(target: Target, allow_remote: bool) -> None:
    """Load goes to loopback only unless the user names a remote target explicitly."""
    remote = sorted({e.host for e in _endpoints(target)
                     if not ipaddress.ip_address(e.host).is_loopback})
    if remote and not allow_remote:
        raise LoadError(f"the target has non-loopback addresses ({', '.join(remote)}): "
                        "pass --allow-remote to load them")


def mailboxes(target: Target) -> list[tuple[TargetAccount, Endpoint]]:
    """The recipients and where to read them: the receiver's first account, and a second
    account of the sender's provider (local delivery) when it has one."""
    chosen: list[tuple[TargetAccount, Endpoint]] = []
    for provider, index in ((target.receiver, 0), (target.sender, 1)):
        endpoint = provider.imaps or provider.imap
        if endpoint is not None and len(provider.accounts) > index:
            chosen.append((provider.accounts[index], endpoint))
    if not chosen:
        raise LoadError("the target has no account to read over IMAP")
    return chosen


@dataclass
class LoadResult:
    seconds: float
    ledger: Ledger
    interrupted: bool
    #: Seconds from the start to the end of the delivery phase.
    ended: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.ledger.violation_counts

    def to_json(self) -> dict[str, Any]:
        counts = self.ledger.counts()
        return {
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "counts": counts,
            "rates": {"accepted_per_second": counts["accepted"] / self.seconds if self.seconds else 0.0},
            "latency": {k: v.summary() for k, v in self.ledger.latency.items()},
            "histograms": {k: v.to_json() for k, v in self.ledger.latency.items()},
            "imap_commands": {k: v.summary() for k, v in sorted(self.ledger.imap_commands.items())},
            "smtp_commands": {k: v.summary() for k, v in sorted(self.ledger.smtp_commands.items())},
            "timeline": self.ledger.timeline.to_json(self.ledger.timeline.started + self.ended),
            "load_seconds": round(self.seconds, 3),
            "errors": dict(self.ledger.errors),
            "violation_counts": dict(self.ledger.violation_counts),
            "violations": [v.to_json() for v in self.ledger.violations],
        }

    def summary(self) -> str:
        c = self.ledger.counts()
        lat = {k: v.summary() for k, v in self.ledger.latency.items()}
        lines = [
            f"load: {self.seconds:.1f} s{' (interrupted)' if self.interrupted else ''}, "
            f"{c['accepted']} accepted ({c['accepted'] / max(self.seconds, 1e-9):.1f}/s), "
            f"{c['delivered']} delivered, {c['refused']} refused, {c['duplicates']} duplicated, "
            f"{c['errors']} errors",
        ]
        for kind in ("submit", "delivery", "imap"):
            s = lat[kind]
            lines.append(f"  {kind:9} p50 {1000 * s['p50']:8.1f} ms  p90 {1000 * s['p90']:8.1f} ms  "
                         f"p99 {1000 * s['p99']:8.1f} ms  max {1000 * s['max']:8.1f} ms  "
                         f"({int(s['count'])})")
        for what, table in (("submission by step", self.ledger.smtp_commands),
                            ("imap by command", self.ledger.imap_commands)):
            by_name = sorted(table.items(), key=lambda kv: -kv[1].count)
            if by_name:
                lines.append(f"  {what}, p50/p99 ms: " + ", ".join(
                    f"{name} {1000 * h.percentile(0.5):.1f}/{1000 * h.percentile(0.99):.1f} "
                    f"({h.count})" for name, h in by_name[:8]))
        for kind, n in sorted(self.ledger.errors.items()):
            lines.append(f"  error {kind}: {n}")
        for requirement, n in sorted(self.ledger.violation_counts.items()):
            first = next(v for v in self.ledger.violations if v.requirement == requirement)
            sessions = f" [{', '.join(first.sessions)}]" if first.sessions else ""
            lines.append(f"  VIOLATION {requirement}: {n} (first: {first.token}: "
                         f"{first.detail}{sessions})")
        lines.append("load: no invariant violated" if self.ok else
                     f"load: {c['violations']} invariant violations")
        return "\n".join(lines)


def timeline_interval(duration: float) -> float:
    """1 s for runs up to 5 minutes; longer runs get wider intervals, about 300 of them."""
    return float(max(1, round(duration / 300)))


def run_load(target: Target, options: LoadOptions, *, out: TextIO = sys.stderr,
             interrupted: Callable[[], bool] = lambda: False) -> LoadResult:
    options.check()
    check_addresses(target, options.allow_remote)
    chosen = mailboxes(target)
    if options.senders and not target.sender.accounts:
        raise LoadError("the target's sender has no account to submit with")
    # A few hundred points for the charts, however long the run.
    ledger = Ledger(interval=timeline_interval(options.duration))
    stop_senders, stop_readers = threading.Event(), threading.Event()
    budget = Budget.of(options.max_messages, options.rate)
    rng = random.Random(options.seed)
    senders = [Sender(target, ledger, stop_senders, account=target.sender.accounts[0],
                      recipients=[a.address for a, _ in chosen], size=options.size,
                      sizes=options.sizes, budget=budget, rng=random.Random(rng.random()))
               for _ in range(options.senders)]
    if options.injectors:
        if target.receiver.mx is None:
            raise LoadError("--injectors needs the receiver's MX in the target")
        receiver_box = [a.address for a, _ in chosen[:1]]
        senders += [Sender(target, ledger, stop_senders, account=None, recipients=receiver_box,
                           size=options.size, sizes=options.sizes, budget=budget,
                           rng=random.Random(rng.random()),
                           endpoint=target.receiver.mx) for _ in range(options.injectors)]
    facts = {a.address: MailboxFacts(f"{a.address} INBOX") for a, _ in chosen}
    readers: list[User] = [Reader(target, ledger, stop_readers, account=a, imaps=e,
                                   facts=facts[a.address])
                            for a, e in chosen for _ in range(options.readers_per_mailbox)]
    readers += [Manager(target, ledger, stop_readers, account=a, imaps=e, facts=facts[a.address],
                        index=i, of=options.managers_per_mailbox, rng=random.Random(rng.random()))
                for a, e in chosen for i in range(options.managers_per_mailbox)]
    threads = [threading.Thread(target=u.run, name=f"load {u.name} {i}", daemon=True)
               for i, u in enumerate([*senders, *readers])]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    sender_threads = threads[:len(senders)]
    was_interrupted = False

    tty = out.isatty()
    last_line = [0.0]

    def progress(phase: str, remaining: float) -> None:
        """One line, rewritten in place on a terminal; elsewhere a line every 5 s."""
        now = time.monotonic()
        if not tty and now - last_line[0] < 5.0:
            return
        last_line[0] = now
        c = ledger.counts()
        elapsed = now - started
        line = (f"{phase} {elapsed:6.1f} s ({remaining:5.1f} s left)  accepted {c['accepted']} "
                f"({c['accepted'] / max(elapsed, 1e-9):.1f}/s)  delivered {c['delivered']}  "
                f"errors {c['errors']}  violations {c['violations']}")
        out.write(f"\r{line} " if tty else f"{line}\n")
        out.flush()

    try:
        deadline = started + options.duration
        while time.monotonic() < deadline and any(t.is_alive() for t in sender_threads):
            if interrupted():
                was_interrupted = True
                break
            progress("load", deadline - time.monotonic())
            time.sleep(min(1.0, max(deadline - time.monotonic(), 0.01)))
    except KeyboardInterrupt:
        was_interrupted = True
    stop_senders.set()
    for thread in sender_threads:
        thread.join(30)
    load_seconds = time.monotonic() - started
    timeout = options.delivery_timeout if options.delivery_timeout is not None else target.delivery_timeout
    delivery_deadline = time.monotonic() + timeout
    waited_out = True
    try:
        while ledger.outstanding() and time.monotonic() < delivery_deadline:
            if interrupted():
                raise KeyboardInterrupt
            progress("delivery", delivery_deadline - time.monotonic())
            time.sleep(0.2)
    except KeyboardInterrupt:
        was_interrupted, waited_out = True, False
    stop_readers.set()
    for thread in threads[len(senders):]:
        thread.join(30)
    if tty:
        out.write("\n")
    if waited_out:  # a delivery phase cut short proves no loss
        ledger.finish()
    return LoadResult(load_seconds, ledger, was_interrupted, time.monotonic() - started)


def write_json(result: LoadResult, path: Path) -> None:
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
