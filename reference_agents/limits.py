"""Limits the agents of one provider share: connections per listener and per client address,
and authentication throttling by client address and by account, for SMTP AUTH and IMAP
LOGIN/AUTHENTICATE alike.

Connections: past ``max_connections`` open sessions on one listener, or
``max_connections_per_address`` from one client address, a new connection is greeted with a
refusal and closed: SMTP ``421 4.7.0`` (RFC 5321 §3.1: the 421 greeting of a server that
cannot take the connection), IMAP ``* BYE`` (RFC 9051 §7.1.5: the greeting of a server that
will not accept the connection). A client that has not logged in to IMAP is logged out after
``preauth_timeout`` seconds without a command (RFC 9051 §5.4 asks for 30 minutes only once a
session is authenticated).

RFC 9051 §11.7: "A server SHOULD have mechanisms in place to limit or delay failed
AUTHENTICATE/LOGIN attempts." A limit per connection alone is no limit: a guesser opens more
connections. So failures are counted per client address, over all of a provider's listeners
and connections, and per account, over all addresses:

- Every authentication attempt from an address with failures in the window waits first,
  ``base_delay`` doubled for each failure after the first, at most ``max_delay``.
- At ``refuse_after`` failures in the window, the address's attempts are refused at once, as a
  temporary failure (SMTP 454 4.7.0, RFC 4954 §6; IMAP NO [UNAVAILABLE], RFC 5530 §3), until
  the window has moved past them. A success from the address clears its count.
- At ``account_refuse_after`` failures for one account (from any address), attempts for that
  account are refused the same way, but only from addresses that have failures of their own:
  the real user, logging in from another address, is never locked out.

Memory is bounded: at most ``refuse_after`` (or ``account_refuse_after``) timestamps per key,
and at most ``max_tracked`` keys, the oldest dropped first.

Across processes (IMAP workers beside the SMTP listeners): every process keeps the counts of
all of them. A failure or success is `share`d, as a datagram of the store's change bus
(reference_agents/mailstore/changes.py), with the others, which record it as their own
(`failed_elsewhere`, `succeeded_elsewhere`), so a guesser spread over the processes is counted
once. The connection limits are divided instead: each of N processes serving one listener
takes its share (`ConnectionLimits.share_of`), so together they never take more than the
limit.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class AuthLimits:
    """The authentication throttle's settings (``[limits]`` in the `mailharness serve` config)."""

    #: Seconds a failure counts for.
    window: float = 600.0
    #: Seconds the second attempt after a failure waits; doubled per further failure.
    base_delay: float = 0.1
    max_delay: float = 5.0
    #: Failures in the window after which an address is refused.
    refuse_after: int = 30
    #: Failures in the window for one account after which failing addresses are refused it.
    account_refuse_after: int = 100
    max_tracked: int = 10_000


@dataclass(frozen=True)
class ConnectionLimits:
    """Connections each listener takes (``[limits]`` in the `mailharness serve` config)."""

    max_connections: int = 1000
    max_connections_per_address: int = 200
    #: Seconds an IMAP client that has not logged in may stay silent.
    preauth_timeout: float = 60.0

    def share_of(self, processes: int) -> ConnectionLimits:
        """The limits each of *processes* processes serving the same listener applies: its
        share of the connections, rounded up (the kernel spreads a client's connections over
        them, SO_REUSEPORT)."""
        if processes <= 1:
            return self
        return replace(self, max_connections=-(-self.max_connections // processes),
                       max_connections_per_address=-(-self.max_connections_per_address
                                                     // processes))


#: ``[limits]`` keys of the `mailharness serve` config → (settings class, field).
LIMIT_KEYS: dict[str, tuple[type[AuthLimits] | type[ConnectionLimits], str]] = {
    "auth_window": (AuthLimits, "window"),
    "auth_delay": (AuthLimits, "base_delay"),
    "auth_max_delay": (AuthLimits, "max_delay"),
    "auth_refuse_after": (AuthLimits, "refuse_after"),
    "auth_account_refuse_after": (AuthLimits, "account_refuse_after"),
    "max_connections": (ConnectionLimits, "max_connections"),
    "max_connections_per_address": (ConnectionLimits, "max_connections_per_address"),
    "preauth_timeout": (ConnectionLimits, "preauth_timeout"),
}


def limits_from(raw: Mapping[str, Any], source: str) -> tuple[AuthLimits, ConnectionLimits]:
    """The settings of a ``[limits]`` table; ValueError names the first bad key in one line."""
    unknown = sorted(set(raw) - set(LIMIT_KEYS))
    if unknown:
        raise ValueError(f"{source}: limits: unknown key {unknown[0]!r} "
                         f"(known: {', '.join(sorted(LIMIT_KEYS))})")
    values: dict[type, dict[str, Any]] = {AuthLimits: {}, ConnectionLimits: {}}
    for key, value in raw.items():
        kind, name = LIMIT_KEYS[key]
        whole = {f.name: f.type for f in fields(kind)}[name] == "int"
        ok = (isinstance(value, int) if whole else isinstance(value, int | float)) and not isinstance(value, bool)
        if not ok or value < 0 or (whole and value < 1):
            wanted = "a whole number of at least 1" if whole else "a number of seconds, 0 or more"
            raise ValueError(f"{source}: limits: {key}: expected {wanted}, got {value!r}")
        values[kind][name] = value if whole else float(value)
    return AuthLimits(**values[AuthLimits]), ConnectionLimits(**values[ConnectionLimits])


class _Failures:
    """Timestamps of recent failures per key, bounded in keys and in timestamps per key."""

    def __init__(self, window: float, keep: int, max_keys: int, clock: Callable[[], float]) -> None:
        self.window = window
        self.keep = max(keep, 1)
        self.max_keys = max(max_keys, 1)
        self.clock = clock
        self._by_key: OrderedDict[str, deque[float]] = OrderedDict()

    def count(self, key: str) -> int:
        stamps = self._by_key.get(key)
        if stamps is None:
            return 0
        horizon = self.clock() - self.window
        while stamps and stamps[0] <= horizon:
            stamps.popleft()
        if not stamps:
            del self._by_key[key]
            return 0
        return len(stamps)

    def add(self, key: str) -> None:
        stamps = self._by_key.pop(key, None)
        if stamps is None:
            stamps = deque(maxlen=self.keep)
        stamps.append(self.clock())
        self._by_key[key] = stamps  # most recent last
        while len(self._by_key) > self.max_keys:
            self._by_key.popitem(last=False)

    def clear(self, key: str) -> None:
        self._by_key.pop(key, None)

    def __len__(self) -> int:
        return len(self._by_key)


@dataclass(frozen=True)
class Verdict:
    """What to do with one authentication attempt: refuse it (temporarily) or wait first."""

    refuse: bool
    wait: float


#: ``publish(event, address, user)``: event "failed" or "succeeded".
AuthPublisher = Callable[[str, str, str | None], None]


class AuthThrottle:
    """Failure counts of one provider, shared by its SMTP and IMAP servers, and with the
    provider's other processes through `share` (the events of the others arrive on a thread of
    their own, hence the lock)."""

    def __init__(self, limits: AuthLimits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or AuthLimits()
        lim = self.limits
        self._addresses = _Failures(lim.window, lim.refuse_after, lim.max_tracked, clock)
        self._accounts = _Failures(lim.window, lim.account_refuse_after, lim.max_tracked, clock)
        self._lock = threading.Lock()
        self._publish: AuthPublisher | None = None

    def share(self, publish: AuthPublisher | None) -> None:
        """Tell *publish* of every failure and success recorded here (None: stop)."""
        self._publish = publish

    def before(self, address: str, user: str | None = None) -> Verdict:
        """The verdict for an attempt from *address* (for account *user*, when known)."""
        lim = self.limits
        with self._lock:
            failures = self._addresses.count(address)
            refused_account = (user is not None and failures > 0
                               and self._accounts.count(user.lower()) >= lim.account_refuse_after)
        if failures >= lim.refuse_after or refused_account:
            return Verdict(True, 0.0)
        if not failures:
            return Verdict(False, 0.0)
        return Verdict(False, min(lim.max_delay, lim.base_delay * 2 ** (failures - 1)))

    def failed(self, address: str, user: str | None) -> None:
        self.failed_elsewhere(address, user)
        if self._publish is not None:
            self._publish("failed", address, user)

    def succeeded(self, address: str) -> None:
        self.succeeded_elsewhere(address)
        if self._publish is not None:
            self._publish("succeeded", address, None)

    def failed_elsewhere(self, address: str, user: str | None) -> None:
        """A failure another process recorded (not passed on)."""
        with self._lock:
            self._addresses.add(address)
            if user:
                self._accounts.add(user.lower())

    def succeeded_elsewhere(self, address: str) -> None:
        with self._lock:
            self._addresses.clear(address)

    def tracked(self) -> tuple[int, int]:
        """(addresses, accounts) with failures on record: for tests of the bounds."""
        with self._lock:
            return len(self._addresses), len(self._accounts)
