"""The embedded topology: a DNS zone server, example.org and example.net providers, an example.com sink."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import threading
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.dns import ZoneServer
from harness.sink import SinkServer
from harness.targets import Account as TargetAccount
from harness.targets import DNSControl, Endpoint, ProviderTarget, Target, dump_target
from reference_agents.accounts import Account, AccountStore, hash_password
from reference_agents.allowances import check_allowances
from reference_agents.config import DEFAULT_QUOTA, ProviderConfig, ProviderPorts, Quota
from reference_agents.durable import replace_file
from reference_agents.imapd.workers import default_worker_count
from reference_agents.limits import AuthLimits, ConnectionLimits, limits_from
from reference_agents.processes import default_process_count
from reference_agents.provider import Provider
from reference_agents.quirks import check_quirks
from reference_agents.tls import TLSMaterial

STANDARD_PORTS = ProviderPorts(submission=587, submissions=465, smtp=25, imap=143, imaps=993)
#: With ``base_port = N`` each service listens on N + its offset: the standard port numbers.
BASE_OFFSETS = {"smtp": 25, "dns": 53, "imap": 143, "submissions": 465, "submission": 587,
                "imaps": 993}
FREE_PORTS = ProviderPorts(submission=0, submissions=0, smtp=0, imap=0, imaps=0)


class ConfigError(Exception):
    """A bad topology configuration; ``str()`` is one line naming the file and the problem."""


@dataclass(frozen=True)
class AccountSpec:
    user: str
    password: str
    address: str
    #: The account's own quota; None: the topology's.
    quota: Quota | None = None


#: The second receiver account has a small quota (1 MiB, 50 messages), so that the quota suite
#: can reach it with a few APPENDs; the others have the default.
SMALL_QUOTA = Quota(storage_kib=1024, messages=50)
#: serve's delivery_nice unless the config says otherwise.
DEFAULT_DELIVERY_NICE = 10

DEFAULT_ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec("alice@example.org", "alice-password", "alice@example.org"),
    AccountSpec("carol@example.org", "carol-password", "carol@example.org"),
    AccountSpec("bob@example.net", "bob-password", "bob@example.net"),
    AccountSpec("dave@example.net", "dave-password", "dave@example.net", SMALL_QUOTA),
)


@dataclass(frozen=True)
class TopologySettings:
    """What `mailharness serve` and the pytest plugin start. Addresses follow DESIGN.md."""

    data_dir: Path
    standard_ports: bool = False
    #: Fixed ports: N+25 (every MX host), N+587, N+465, N+143, N+993 and the DNS server on
    #: N+53 (unless dns_port is given); a port that cannot be bound stops the start. 0: none.
    base_port: int = 0
    dns_address: str = "127.0.0.1"
    dns_port: int = 0
    sender_address: str = "127.0.0.2"
    receiver_address: str = "127.0.0.3"
    sink_address: str = "127.0.0.4"
    sink_addresses: tuple[str, ...] = ("127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9")
    accounts: tuple[AccountSpec, ...] = DEFAULT_ACCOUNTS
    quirks: frozenset[str] = frozenset()
    #: RFC-permitted variants (reference_agents/allowances.py), read by the agents like quirks.
    allowances: frozenset[str] = frozenset()
    #: False: every agent runs without TLS and takes AUTH/LOGIN in plain text (the target it
    #: describes says allow_plaintext = true).
    tls: bool = True
    retry_schedule: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 30.0)
    max_queue_lifetime: float = 5 * 24 * 3600.0
    delivery_timeout: float = 30.0
    max_message_size: int = 10 * 1024 * 1024
    idle_poll_interval: float = 1.0
    #: Authentication throttling and connection limits (``[limits]``; reference_agents/limits.py).
    auth_limits: AuthLimits = AuthLimits()
    connection_limits: ConnectionLimits = ConnectionLimits()
    #: Every account's quota (RFC 9208) but those with their own.
    quota: Quota = DEFAULT_QUOTA
    #: IMAP worker processes per provider (reference_agents/imapd/workers.py); 0 serves IMAP
    #: on the topology's own event loop.
    imap_workers: int = 0
    #: The queue runner and the MDA of each provider in a process of their own
    #: (reference_agents/delivery.py); False runs them on the topology's own event loop.
    delivery_process: bool = False
    #: Seconds the MTA keeps an outbound session open for the next message to the same host
    #: (reference_agents/session_cache.py); 0 opens a new connection for every message.
    outbound_session_cache: float = 2.0
    #: The nice value of the delivery processes (0-19): they yield the CPU to the listeners'
    #: sessions while those are busy.
    delivery_nice: int = 0


_SETTING_KEYS = {
    "data_dir", "standard_ports", "base_port", "dns_port", "quirks", "allowances", "tls", "retry_schedule", "max_queue_lifetime",
    "delivery_timeout", "max_message_size", "accounts", "limits", "quota_storage",
    "quota_messages", "imap_workers", "delivery_process", "outbound_session_cache",
    "delivery_nice",
}


def _quota(raw: dict[str, Any], where: str, default: Quota) -> Quota:
    """``quota_storage`` (KiB) and ``quota_messages`` of a table; a missing key keeps
    *default*'s limit, 0 is a limit of nothing (RFC 9208 §3.1.2: "0 indicates that any usage is
    prohibited")."""
    limits: dict[str, int | None] = {}
    for key, current in (("quota_storage", default.storage_kib),
                         ("quota_messages", default.messages)):
        value = raw.get(key, current)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise ConfigError(f"{where}: {key}: expected a number >= 0, got {value!r}")
        limits[key] = value
    return Quota(limits["quota_storage"], limits["quota_messages"])


def load_settings(path: Path, *, data_dir: Path | None = None) -> TopologySettings:
    """Read a `mailharness serve` TOML config; every problem is a one-line ConfigError."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return settings_from_dict(raw, source=str(path), base=path.parent, data_dir=data_dir)


def settings_from_dict(
    raw: dict[str, Any], *, source: str, base: Path, data_dir: Path | None = None
) -> TopologySettings:
    for key in raw:
        if key not in _SETTING_KEYS:
            raise ConfigError(f"{source}: unknown key {key!r} (known: {', '.join(sorted(_SETTING_KEYS))})")

    def typed(key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = raw.get(key, default)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            raise ConfigError(f"{source}: {key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    defaults = TopologySettings(data_dir=Path("mailharness-data"))
    chosen_dir = data_dir or base / typed("data_dir", str, "mailharness-data")
    try:
        quirks = check_quirks(typed("quirks", list, []))
    except ValueError as exc:
        raise ConfigError(f"{source}: quirks: {exc}") from None
    try:
        allowances = check_allowances(typed("allowances", list, []))
    except ValueError as exc:
        raise ConfigError(f"{source}: allowances: {exc}") from None
    schedule = typed("retry_schedule", list, list(defaults.retry_schedule))
    if not schedule or not all(isinstance(s, int | float) and s > 0 for s in schedule):
        raise ConfigError(f"{source}: retry_schedule: expected a non-empty list of positive seconds")
    try:
        auth_limits, connection_limits = limits_from(typed("limits", dict, {}), source)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    quota = _quota(raw, source, defaults.quota)
    workers = raw.get("imap_workers", "auto")
    if workers == "auto":
        workers = default_worker_count()
    elif isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= 64:
        raise ConfigError(f"{source}: imap_workers: expected \"auto\" or a number 0-64, "
                          f"got {workers!r}")
    delivery = raw.get("delivery_process", "auto")
    if delivery == "auto":
        delivery = default_process_count() > 1
    elif not isinstance(delivery, bool):
        raise ConfigError(f"{source}: delivery_process: expected \"auto\", true or false, "
                          f"got {delivery!r}")
    session_cache = typed("outbound_session_cache", (int, float), defaults.outbound_session_cache)
    if not 0 <= session_cache <= 300:
        raise ConfigError(f"{source}: outbound_session_cache: expected seconds from 0 to 300, "
                          f"got {session_cache!r}")
    nice = typed("delivery_nice", int, DEFAULT_DELIVERY_NICE)
    if not 0 <= nice <= 19:
        raise ConfigError(f"{source}: delivery_nice: expected a number 0-19, got {nice!r}")
    accounts = defaults.accounts
    if "accounts" in raw:
        accounts = tuple(_account(a, source, i, quota)
                         for i, a in enumerate(typed("accounts", list, [])))
    base_port = typed("base_port", int, 0)
    if base_port and not 1024 <= base_port <= 65535 - max(BASE_OFFSETS.values()):
        raise ConfigError(f"{source}: base_port: expected 0 (none) or a number from 1024 to "
                          f"{65535 - max(BASE_OFFSETS.values())}, got {base_port!r}")
    if base_port and raw.get("standard_ports") is True:
        raise ConfigError(f"{source}: base_port and standard_ports = true exclude each other")
    settings = TopologySettings(
        data_dir=chosen_dir,
        standard_ports=typed("standard_ports", bool, True) and not base_port,
        base_port=base_port,
        dns_port=typed("dns_port", int, base_port + BASE_OFFSETS["dns"] if base_port else 5300),
        quirks=quirks,
        allowances=allowances,
        tls=typed("tls", bool, True),
        retry_schedule=tuple(float(s) for s in schedule),
        max_queue_lifetime=float(typed("max_queue_lifetime", (int, float), defaults.max_queue_lifetime)),
        delivery_timeout=float(typed("delivery_timeout", (int, float), defaults.delivery_timeout)),
        max_message_size=typed("max_message_size", int, defaults.max_message_size),
        accounts=accounts,
        auth_limits=auth_limits,
        connection_limits=connection_limits,
        quota=quota,
        imap_workers=workers,
        delivery_process=delivery,
        outbound_session_cache=float(session_cache),
        delivery_nice=nice,
    )
    if not 0 <= settings.dns_port <= 65535:
        raise ConfigError(f"{source}: dns_port: {settings.dns_port} is not a port number")
    for domain in ("example.org", "example.net"):
        if not any(a.address.endswith("@" + domain) for a in settings.accounts):
            raise ConfigError(f"{source}: accounts: no account at {domain}")
    return settings


def _account(raw: Any, source: str, index: int, quota: Quota) -> AccountSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: accounts[{index}]: expected a table")
    unknown = set(raw) - {"user", "password", "address", "quota_storage", "quota_messages"}
    if unknown:
        raise ConfigError(f"{source}: accounts[{index}]: unknown key {sorted(unknown)[0]!r}")
    for key in ("user", "password"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{source}: accounts[{index}]: {key} is missing")
    address = raw.get("address", raw["user"])
    if not isinstance(address, str) or address.count("@") != 1:
        raise ConfigError(f"{source}: accounts[{index}]: address {address!r} is not user@domain")
    if address.rsplit("@", 1)[1].lower() not in ("example.org", "example.net"):
        raise ConfigError(f"{source}: accounts[{index}]: {address} is not at example.org or example.net")
    own = None
    if "quota_storage" in raw or "quota_messages" in raw:
        own = _quota(raw, f"{source}: accounts[{index}]", quota)
    return AccountSpec(raw["user"], raw["password"], address, own)


def _bindable(address: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def common_free_port(addresses: Sequence[str], preferred: int | None = None) -> int:
    """A TCP port free on every one of *addresses* (MX hosts must share the outbound port)."""
    if preferred and all(_bindable(a, preferred) for a in addresses):
        return preferred
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((addresses[0], 0))
            port = int(sock.getsockname()[1])
        if all(_bindable(a, port) for a in addresses):
            return port
    raise OSError(errno.EADDRINUSE, "no port is free on all of " + ", ".join(addresses))


def _ports(address: str, standard: bool, smtp_port: int, base: int = 0) -> ProviderPorts:
    if base:
        return ProviderPorts(smtp=smtp_port, **{
            name: base + BASE_OFFSETS[name]
            for name in ("submission", "submissions", "imap", "imaps")})
    if not standard:
        return replace(FREE_PORTS, smtp=smtp_port)
    chosen = {
        name: (port if _bindable(address, port) else 0)
        for name, port in (("submission", 587), ("submissions", 465), ("imap", 143), ("imaps", 993))
    }
    return ProviderPorts(smtp=smtp_port, **chosen)


def _check_fixed_ports(s: TopologySettings) -> None:
    """With base_port, name the first fixed port that another process holds (asyncio's bind
    error does not say which)."""
    services = [(a, "smtp") for a in (s.sender_address, s.receiver_address, s.sink_address,
                                      *s.sink_addresses)]
    services += [(a, name) for a in (s.sender_address, s.receiver_address)
                 for name in ("submission", "imap", *(("submissions", "imaps") if s.tls else ()))]
    if s.dns_port == s.base_port + BASE_OFFSETS["dns"]:
        services.append((s.dns_address, "dns"))
    for address, name in services:
        port = s.base_port + BASE_OFFSETS[name]
        kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if name == "dns" else (socket.SOCK_STREAM,)
        if not all(_bindable(address, port, kind) for kind in kinds):
            raise OSError(errno.EADDRINUSE, f"{address}:{port} ({name}, base_port + "
                                            f"{BASE_OFFSETS[name]}) is in use")


_START_ATTEMPTS = 3


def _in_use(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE


@dataclass
class Topology:
    """Everything the embedded target needs, started together on one event loop."""

    settings: TopologySettings
    tls: TLSMaterial | None = None
    dns: ZoneServer | None = None
    providers: dict[str, Provider] = field(default_factory=dict)
    sink: SinkServer | None = None
    outbound_port: int = 0

    async def start(self) -> None:
        """Start every agent; on failure, stop what did start before raising.

        The shared MX port is chosen free, then bound a moment later: another process may take
        it in between. Then the topology chooses again rather than fail."""
        for attempt in range(_START_ATTEMPTS):
            try:
                await self._start_once()
                return
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    await self.stop()
                # Fixed ports: choosing again would choose the same.
                if not (_in_use(exc) and attempt + 1 < _START_ATTEMPTS) or self.settings.base_port:
                    raise

    async def _start_once(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        if s.base_port:
            _check_fixed_ports(s)
        self.tls = await asyncio.to_thread(TLSMaterial.load_or_create, s.data_dir / "tls")
        self.dns = ZoneServer(s.dns_address, s.dns_port)
        await self.dns.start()
        mx_addresses = [s.sender_address, s.receiver_address, s.sink_address, *s.sink_addresses]
        if s.base_port:
            self.outbound_port = s.base_port + BASE_OFFSETS["smtp"]
        else:
            self.outbound_port = common_free_port(mx_addresses, 25 if s.standard_ports else None)
        hashed = await asyncio.to_thread(
            lambda: [Account(a.user, a.address, hash_password(a.password)) for a in s.accounts]
        )
        for domain, address in (("example.org", s.sender_address), ("example.net", s.receiver_address)):
            hostname = f"mail.{domain}"
            self.dns.add_zone(domain)
            self.dns.add_record(f"{domain}.", "MX", f"10 {hostname}.")
            self.dns.add_record(f"{hostname}.", "A", address)
            accounts = AccountStore([a for a in hashed if a.domain == domain], [domain])
            # Kept in the data directory and reused while valid, so that a client that pins
            # it keeps working after a restart; IMAP workers load it from the file too (a
            # context does not cross processes).
            tls_file = s.data_dir / "tls" / f"{hostname}.pem"
            server_tls = await asyncio.to_thread(self.tls.server_files, [hostname, address],
                                                 tls_file)
            config = ProviderConfig(
                domain=domain,
                address=address,
                hostname=hostname,
                data_dir=s.data_dir / domain,
                accounts=accounts,
                server_tls=server_tls,
                server_tls_file=tls_file,
                imap_workers=s.imap_workers,
                delivery_process=s.delivery_process,
                client_tls=self.tls.client_context(),
                ca_file=self.tls.ca_file,
                dns_server=(s.dns_address, self.dns.port),
                ports=_ports(address, s.standard_ports, self.outbound_port, s.base_port),
                outbound_port=self.outbound_port,
                quirks=s.quirks | s.allowances,
                tls=s.tls,
                login_disabled_without_tls=s.tls,
                max_message_size=s.max_message_size,
                retry_schedule=s.retry_schedule,
                max_queue_lifetime=s.max_queue_lifetime,
                idle_poll_interval=s.idle_poll_interval,
                outbound_session_cache=s.outbound_session_cache,
                delivery_nice=s.delivery_nice,
                auth_limits=s.auth_limits,
                connection_limits=s.connection_limits,
                quota=s.quota,
                user_quotas=tuple((a.user, a.quota) for a in s.accounts
                                  if a.quota is not None and a.address.endswith("@" + domain)),
            )
            provider = Provider(config)
            await provider.start()
            self.providers[domain] = provider
        self.dns.add_zone("example.com")
        self.dns.add_record("example.com.", "MX", "10 mx.example.com.")
        self.dns.add_record("mx.example.com.", "A", s.sink_address)
        self.sink = SinkServer(s.sink_address, self.outbound_port, hostname="mx.example.com")
        await self.sink.start()
        # A zone of its own for suites that script DNS with RFC 2136 UPDATE.
        self.dns.add_zone("test.mailharness.invalid")

    async def stop(self) -> None:
        """Stop whatever is running; calling it again does nothing."""
        if self.sink is not None:
            await self.sink.stop()
            self.sink = None
        for provider in reversed(list(self.providers.values())):
            await provider.stop()
        self.providers.clear()
        if self.dns is not None:
            await self.dns.stop()
            self.dns = None

    def target(self, *, embedded: bool = True) -> Target:
        """Describe the running topology as a harness Target (what a target file would say).

        ``embedded`` is False when the agents run on their own (`mailharness serve`) and the
        suites reach them through a target file."""
        assert self.tls is not None and self.dns is not None
        s = self.settings

        def provider_target(domain: str) -> ProviderTarget:
            p = self.providers[domain]
            ports, address = p.ports, p.config.address
            return ProviderTarget(
                domain=domain,
                submission=Endpoint("smtp", address, ports["submission"]),
                submissions=Endpoint("smtps", address, ports["submissions"]) if s.tls else None,
                mx=Endpoint("smtp", address, ports["smtp"]),
                imap=Endpoint("imap", address, ports["imap"]),
                imaps=Endpoint("imaps", address, ports["imaps"]) if s.tls else None,
                outbound_port=self.outbound_port,
                accounts=tuple(
                    TargetAccount(a.user, a.password, a.address)
                    for a in s.accounts if a.address.endswith("@" + domain)
                ),
            )

        return Target(
            name=("reference agents" if embedded else "reference agents (mailharness serve)")
            + (f" with quirks: {', '.join(sorted(s.quirks))}" if s.quirks else "")
            + (f" with allowances: {', '.join(sorted(s.allowances))}" if s.allowances else ""),
            description="mailharness embedded topology: example.org → example.net, DNS on "
                        f"{s.dns_address}:{self.dns.port}",
            sender=provider_target("example.org"),
            receiver=provider_target("example.net"),
            dns=DNSControl(s.dns_address, self.dns.port, True),
            ca_file=self.tls.ca_file,
            tls_verify=True,
            sink_addresses=s.sink_addresses,
            delivery_timeout=s.delivery_timeout,
            embedded=embedded,
            quirks=tuple(sorted(s.quirks)),
            allow_plaintext=not s.tls,
        )

    def write_target_file(self, path: Path) -> None:
        # Atomic: a script polling for the file must never read it half-written.
        replace_file(path, dump_target(self.target(embedded=False)).encode("utf-8"))


class TopologyThread:
    """Runs a Topology on an event loop of its own in a background thread (for the pytest plugin)."""

    def __init__(self, settings: TopologySettings) -> None:
        self.topology = Topology(settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="mailharness-topology", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.topology.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.topology.stop()

    def start(self, timeout: float = 60.0) -> Target:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the embedded topology did not start in time")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self.topology.target()

    def stop(self, timeout: float = 30.0) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
