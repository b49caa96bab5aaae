"""Configuration of the reference agents: one provider (domain) and the whole topology."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from reference_agents.accounts import AccountStore
from reference_agents.allowances import ALLOWANCES
from reference_agents.limits import AuthLimits, AuthThrottle, ConnectionLimits
from reference_agents.quirks import QUIRKS


@dataclass(frozen=True)
class ProviderPorts:
    """Listening ports; 0 means "a free high port chosen at start"."""

    submission: int = 587  # STARTTLS
    submissions: int = 465  # implicit TLS
    smtp: int = 25  # inbound MX
    imap: int = 143  # STARTTLS
    imaps: int = 993  # implicit TLS


@dataclass(frozen=True)
class Quota:
    """A user's limits (RFC 9208 §5): ``storage_kib`` in units of 1024 octets (STORAGE),
    ``messages`` a count (MESSAGE), over all the user's mailboxes; None is no limit."""

    storage_kib: int | None = None
    messages: int | None = None


#: Large enough that no suite but the quota one comes near it.
DEFAULT_QUOTA = Quota(storage_kib=1024 * 1024, messages=100_000)


@dataclass(frozen=True)
class ProviderConfig:
    """Everything one provider's agents (MSA, MTA, MDA, IMAP) need to run.

    ``outbound_port`` is the TCP port the MTA connects to on the hosts an MX lookup names
    (25 on the Internet; a high port in tests, where every MX listens on the same one).
    ``dns_server`` is (address, port) of the zone server the MTA resolves through — never the
    system resolver."""

    domain: str
    address: str
    hostname: str
    data_dir: Path
    accounts: AccountStore
    server_tls: ssl.SSLContext
    client_tls: ssl.SSLContext
    dns_server: tuple[str, int]
    ports: ProviderPorts = field(default_factory=ProviderPorts)
    outbound_port: int = 25
    quirks: frozenset[str] = frozenset()
    max_message_size: int = 10 * 1024 * 1024
    #: Seconds between delivery attempts after a temporary failure (last value repeats).
    retry_schedule: tuple[float, ...] = (1.0, 2.0, 5.0, 15.0, 60.0, 300.0)
    #: Seconds after which a message still undelivered is bounced.
    max_queue_lifetime: float = 5 * 24 * 3600.0
    #: Timeout for outbound SMTP connections and replies.
    smtp_timeout: float = 30.0
    #: Seconds an outbound SMTP session stays open after a delivery, for the next message to
    #: the same host (reference_agents/session_cache.py); 0 closes it after every message.
    outbound_session_cache: float = 2.0
    login_disabled_without_tls: bool = True
    #: False runs every agent without TLS (no STARTTLS, no implicit-TLS ports) and lets AUTH
    #: and LOGIN through in plain text: a development setup, tested with allow_plaintext.
    tls: bool = True
    spam_threshold: float = 5.0
    idle_poll_interval: float = 1.0
    auth_limits: AuthLimits = AuthLimits()
    connection_limits: ConnectionLimits = ConnectionLimits()
    #: The failure counts every listener of this provider shares (made from auth_limits).
    auth_throttle: AuthThrottle = field(init=False, compare=False, repr=False)
    #: Every user's quota (RFC 9208), unless *user_quotas* names the user's own.
    quota: Quota = DEFAULT_QUOTA
    user_quotas: tuple[tuple[str, Quota], ...] = ()
    #: IMAP worker processes (reference_agents/imapd/workers.py); 0 serves IMAP in the
    #: provider's own process, on its event loop.
    imap_workers: int = 0
    #: The server certificate chain and key (PEM) behind *server_tls*, for processes that
    #: build their own context (IMAP workers); None when the agents run in one process.
    server_tls_file: Path | None = None
    #: The MTA's queue runner and the MDA in a process of their own
    #: (reference_agents/delivery.py); False runs them on the provider's event loop.
    delivery_process: bool = False
    #: The delivery process's nice value (os.nice): queue work yields the CPU to the sessions
    #: of the SMTP and IMAP listeners when they compete for it, and has it all when they idle.
    delivery_nice: int = 0
    #: The CA (PEM) *client_tls* trusts, for processes that build their own client context
    #: (the delivery process, for STARTTLS to the next hop); None: not needed.
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "auth_throttle", AuthThrottle(self.auth_limits))

    def quota_of(self, user: str) -> Quota:
        """The quota of login name *user*."""
        return dict(self.user_quotas).get(user, self.quota)

    def has_quirk(self, name: str) -> bool:
        """Whether quirk *name* is on. A name that is no quirk raises KeyError, so a misspelt
        name in an agent fails loudly instead of leaving the fault off for ever."""
        if name not in QUIRKS:
            raise KeyError(f"unknown quirk {name!r}")
        return name in self.quirks

    def allows(self, name: str) -> bool:
        """Whether allowance *name* (reference_agents/allowances.py) is on; an unknown name
        raises KeyError, as for has_quirk."""
        if name not in ALLOWANCES:
            raise KeyError(f"unknown allowance {name!r}")
        return name in self.quirks
