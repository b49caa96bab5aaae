"""What a target is (endpoints, accounts, DNS control, TLS trust) and how it is loaded from TOML or URLs."""

from __future__ import annotations

import math
import ssl
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from harness.errors import FileProblem
from harness.protocol.smtp.grammar import ip_literal

#: Default port per URL scheme.
DEFAULT_PORTS: Mapping[str, int] = MappingProxyType(
    {"smtp": 25, "smtps": 465, "imap": 143, "imaps": 993}
)
#: Schemes that start TLS immediately on connection.
IMPLICIT_TLS_SCHEMES: frozenset[str] = frozenset({"smtps", "imaps"})
#: Loopback addresses the harness may bind scriptable MX sinks on, unless the target says otherwise.
DEFAULT_SINK_ADDRESSES: tuple[str, ...] = tuple(f"127.0.0.{n}" for n in range(5, 10))
DEFAULT_DELIVERY_TIMEOUT = 30.0
DEFAULT_DNS_PORT = 53

#: The URL scheme each endpoint key of a provider accepts.
ENDPOINT_SCHEMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "submission": ("smtp",),
        "submissions": ("smtps",),
        "mx": ("smtp",),
        "imap": ("imap",),
        "imaps": ("imaps",),
    }
)

_TOP_KEYS = frozenset(
    {
        "name", "description", "embedded", "quirks", "ca_file", "tls_verify", "allow_plaintext",
        "delivery_timeout", "sink_addresses", "dns", "sender", "receiver",
    }
)
_PROVIDER_KEYS = frozenset({*ENDPOINT_SCHEMES, "domain", "outbound_port", "mailbox_junk", "accounts"})
_ACCOUNT_KEYS = frozenset({"user", "password", "address"})
_DNS_KEYS = frozenset({"server", "update"})


class TargetError(FileProblem):
    """A bad target description; ``str()`` is one line: ``<file>: <key>: <problem>``."""

    def located(self, *, source: str, key: str) -> TargetError:
        """The same problem, attributed to ``source`` and ``key`` (kept if already set)."""
        return TargetError(self.problem, source=self.source or source, key=self.key or key)


def _address(host: str) -> str:
    """``host`` normalised if it is an IPv4 or IPv6 address literal; TargetError otherwise."""
    try:
        return ip_literal(host)
    except ValueError as error:
        raise TargetError(str(error)) from None


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _split_host_port(text: str, default_port: int) -> tuple[str, int]:
    """Parse ``HOST[:PORT]`` (IPv6 as ``[ADDR]:PORT``) into an IP literal and a port."""
    parts = urlsplit("//" + text)
    if parts.path or parts.query or parts.fragment or parts.username is not None:
        raise TargetError(f"expected ADDRESS[:PORT], got {text!r}")
    try:
        port = parts.port
    except ValueError:
        raise TargetError(f"port must be a number in 1-65535 (got {text!r})") from None
    host = parts.hostname
    if not host:
        raise TargetError(f"no address in {text!r}")
    if port is None:
        port = default_port
    if not 1 <= port <= 65535:
        raise TargetError(f"port must be a number in 1-65535 (got {port})")
    return _address(host), port


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One service to connect to: ``scheme://address:port``; the address is an IP literal."""

    scheme: str
    host: str
    port: int

    @property
    def implicit_tls(self) -> bool:
        return self.scheme in IMPLICIT_TLS_SCHEMES

    @property
    def url(self) -> str:
        return f"{self.scheme}://{_host_for_url(self.host)}:{self.port}"

    @classmethod
    def parse(cls, url: str, *, allowed: Sequence[str]) -> Endpoint:
        """Parse ``smtp://127.0.0.2:587`` and the like; the port defaults per scheme."""
        scheme, sep, rest = url.partition("://")
        scheme = scheme.lower()
        wanted = " or ".join(f"{s}://ADDRESS[:PORT]" for s in allowed)
        if not sep or scheme not in allowed:
            raise TargetError(f"expected {wanted}, got {url!r}")
        if scheme not in DEFAULT_PORTS:
            raise TargetError(f"unsupported scheme {scheme!r}")
        rest = rest.removesuffix("/")
        if not rest or any(c in rest for c in "/?#@"):
            raise TargetError(f"expected {wanted}, got {url!r}")
        host, port = _split_host_port(rest, DEFAULT_PORTS[scheme])
        return cls(scheme, host, port)


@dataclass(frozen=True, slots=True)
class Account:
    """A mailbox the harness may log in to and send as."""

    user: str
    password: str
    address: str


@dataclass(frozen=True, slots=True)
class ProviderTarget:
    """One mail provider under test (a domain and its services); unused services are None."""

    domain: str
    submission: Endpoint | None
    submissions: Endpoint | None
    mx: Endpoint | None
    imap: Endpoint | None
    imaps: Endpoint | None
    outbound_port: int | None
    accounts: tuple[Account, ...]
    mailbox_junk: str = "Junk"

    def account(self, index: int = 0) -> Account:
        if 0 <= index < len(self.accounts):
            return self.accounts[index]
        raise LookupError(
            f"provider {self.domain} has {len(self.accounts)} account(s); "
            f"account {index} is not configured"
        )


@dataclass(frozen=True, slots=True)
class DNSControl:
    """The zone server the target's MTA resolves through; ``update`` allows RFC 2136 UPDATEs."""

    host: str
    port: int
    update: bool

    @property
    def server(self) -> str:
        return f"{_host_for_url(self.host)}:{self.port}"


@dataclass(frozen=True, slots=True)
class Target:
    """Everything the suites need to know about the system under test."""

    name: str
    description: str
    sender: ProviderTarget
    receiver: ProviderTarget
    dns: DNSControl | None
    ca_file: Path | None
    tls_verify: bool
    sink_addresses: tuple[str, ...] = DEFAULT_SINK_ADDRESSES
    delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT
    embedded: bool = False
    quirks: tuple[str, ...] = ()
    #: The target has no TLS: the suites may LOGIN and AUTH in plain text, and every TLS check
    #: is not applicable (``allow_plaintext = true``, or --allow-plaintext).
    allow_plaintext: bool = False

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context trusting ``ca_file`` (else the system CAs); no checks if not tls_verify."""
        try:
            ctx = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file is not None else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise TargetError(f"cannot load CA certificates: {exc}", key="ca_file") from None
        if not self.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


# --- loading TOML -------------------------------------------------------------------------


class _Table:
    """Typed, key-tracking access to one TOML table; every error names file and key."""

    def __init__(
        self, source: str, prefix: str, data: Mapping[str, object], known: frozenset[str]
    ) -> None:
        self.source = source
        self.prefix = prefix
        self.data = data
        for name in data:
            if name not in known:
                raise self.error(name, "unknown key")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, problem: str) -> TargetError:
        return TargetError(problem, source=self.source, key=self.key(name))

    def _get(self, name: str, kind: str, required: bool) -> object:
        if name not in self.data:
            if required:
                raise self.error(name, f"missing required key ({kind})")
            return None
        return self.data[name]

    def _wrong(self, name: str, kind: str, value: object) -> TargetError:
        return self.error(name, f"expected {kind}, got {value!r}")

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self._get(name, "a string", required)
        if value is not None and not isinstance(value, str):
            raise self._wrong(name, "a string", value)
        return value

    def nonempty(self, name: str) -> str:
        value = self.string(name, required=True)
        assert value is not None
        if not value.strip():
            raise self.error(name, "must not be empty")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, "true or false", False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._wrong(name, "true or false", value)
        return value

    def port(self, name: str) -> int | None:
        value = self._get(name, "a port number", False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(name, "a port number", value)
        if not 1 <= value <= 65535:
            raise self.error(name, f"port must be in 1-65535 (got {value})")
        return value

    def positive(self, name: str, default: float) -> float:
        value = self._get(name, "a number of seconds", False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(name, "a number of seconds", value)
        if not math.isfinite(value) or value <= 0:
            raise self.error(name, f"must be a positive number of seconds (got {value!r})")
        return float(value)

    def strings(self, name: str) -> tuple[str, ...] | None:
        value = self._get(name, "a list of strings", False)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong(name, "a list of strings", value)
        return tuple(value)

    def table(self, name: str, known: frozenset[str], *, required: bool = False) -> _Table | None:
        value = self._get(name, "a table", required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._wrong(name, "a table", value)
        return _Table(self.source, self.key(name), value, known)

    def tables(self, name: str, known: frozenset[str]) -> list[_Table]:
        value = self._get(name, "an array of tables", False)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._wrong(name, "an array of tables ([[...]])", value)
        return [
            _Table(self.source, f"{self.key(name)}[{i}]", v, known) for i, v in enumerate(value)
        ]

    def endpoint(self, name: str) -> Endpoint | None:
        url = self.string(name)
        if url is None:
            return None
        try:
            return Endpoint.parse(url, allowed=ENDPOINT_SCHEMES[name])
        except TargetError as exc:
            raise exc.located(source=self.source, key=self.key(name)) from None


def _domain(table: _Table) -> str:
    domain = table.nonempty("domain")
    if "@" in domain or any(c.isspace() for c in domain):
        raise table.error("domain", f"not a domain name: {domain!r}")
    return domain


def _check_address(address: str, *, source: str, key: str) -> str:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address):
        raise TargetError(f"not an email address: {address!r}", source=source, key=key)
    return address


def _default_address(user: str, domain: str) -> str:
    return user if "@" in user else f"{user}@{domain}"


def _account(table: _Table, domain: str) -> Account:
    user = table.nonempty("user")
    password = table.string("password", required=True)
    assert password is not None
    address = table.string("address")
    if address is None:
        address = _default_address(user, domain)
    _check_address(address, source=table.source, key=table.key("address"))
    return Account(user, password, address)


def _check_accounts(provider: ProviderTarget, *, source: str, key: str) -> None:
    logs_in = (provider.submission, provider.submissions, provider.imap, provider.imaps)
    if not provider.accounts and any(e is not None for e in logs_in):
        raise TargetError(
            "at least one account is needed when submission or IMAP is given",
            source=source,
            key=key,
        )


def _provider(table: _Table) -> ProviderTarget:
    domain = _domain(table)
    mailbox_junk = table.string("mailbox_junk")
    if mailbox_junk is not None and not mailbox_junk.strip():
        raise table.error("mailbox_junk", "must not be empty")
    provider = ProviderTarget(
        domain=domain,
        submission=table.endpoint("submission"),
        submissions=table.endpoint("submissions"),
        mx=table.endpoint("mx"),
        imap=table.endpoint("imap"),
        imaps=table.endpoint("imaps"),
        outbound_port=table.port("outbound_port"),
        accounts=tuple(_account(t, domain) for t in table.tables("accounts", _ACCOUNT_KEYS)),
        mailbox_junk=mailbox_junk if mailbox_junk is not None else "Junk",
    )
    _check_accounts(provider, source=table.source, key=table.key("accounts"))
    return provider


def _dns(table: _Table) -> DNSControl:
    server = table.nonempty("server")
    try:
        host, port = _split_host_port(server, DEFAULT_DNS_PORT)
    except TargetError as exc:
        raise exc.located(source=table.source, key=table.key("server")) from None
    return DNSControl(host, port, table.boolean("update", False))


def _ip_list(table: _Table, name: str) -> tuple[str, ...] | None:
    values = table.strings(name)
    if values is None:
        return None
    try:
        return tuple(_address(v) for v in values)
    except TargetError as exc:
        raise exc.located(source=table.source, key=table.key(name)) from None


def load_target(path: str | Path) -> Target:
    """Read a target TOML file; any problem is a one-line TargetError naming file and key."""
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TargetError(f"cannot read: {exc.strerror or exc}", source=source) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise TargetError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", source=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"invalid TOML: {exc}", source=source) from None

    top = _Table(source, "", data, _TOP_KEYS)
    name = top.nonempty("name")
    description = top.string("description") or ""
    ca_file: Path | None = None
    ca_text = top.string("ca_file")
    if ca_text is not None:
        ca_file = (path.parent / Path(ca_text).expanduser()).resolve()
        if not ca_file.is_file():
            raise top.error("ca_file", f"no such file: {ca_file}")
    dns_table = top.table("dns", _DNS_KEYS)
    sender_table = top.table("sender", _PROVIDER_KEYS, required=True)
    assert sender_table is not None
    sender = _provider(sender_table)
    receiver_table = top.table("receiver", _PROVIDER_KEYS)
    receiver = sender if receiver_table is None else _provider(receiver_table)
    sinks = _ip_list(top, "sink_addresses")
    return Target(
        name=name,
        description=description,
        sender=sender,
        receiver=receiver,
        dns=None if dns_table is None else _dns(dns_table),
        ca_file=ca_file,
        tls_verify=top.boolean("tls_verify", True),
        sink_addresses=DEFAULT_SINK_ADDRESSES if sinks is None else sinks,
        delivery_timeout=top.positive("delivery_timeout", DEFAULT_DELIVERY_TIMEOUT),
        embedded=top.boolean("embedded", False),
        quirks=top.strings("quirks") or (),
        allow_plaintext=top.boolean("allow_plaintext", False),
    )


# --- from command-line URLs ---------------------------------------------------------------

_CLI = "command line"


def _parse_account(spec: str, *, key: str, domain: str | None) -> Account:
    user, sep, rest = spec.partition(":")
    if not sep or not user:
        raise TargetError(
            "expected USER:PASSWORD or USER:PASSWORD:ADDRESS", source=_CLI, key=key
        )
    password, address = rest, ""
    head, sep, tail = rest.rpartition(":")
    if sep and "@" in tail:
        password, address = head, tail
    if not address:
        if "@" not in user and domain is None:
            raise TargetError(
                f"user {user!r} has no domain; give USER:PASSWORD:ADDRESS or a domain",
                source=_CLI,
                key=key,
            )
        address = _default_address(user, domain or "")
    _check_address(address, source=_CLI, key=key)
    return Account(user, password, address)


def _cli_endpoint(url: str | None, key: str, allowed: Sequence[str]) -> Endpoint | None:
    if url is None:
        return None
    try:
        return Endpoint.parse(url, allowed=allowed)
    except TargetError as exc:
        raise exc.located(source=_CLI, key=key) from None


def target_from_urls(
    *,
    submission: str | None,
    mx: str | None,
    imap: str | None,
    accounts: Sequence[str],
    domain: str | None,
    name: str = "command line",
    ca_file: str | None = None,
    tls_verify: bool = True,
) -> Target:
    """A target where one host plays sender and receiver, from URLs and ``user:password`` specs.

    ``submission`` may be smtp:// (STARTTLS, port 587 by convention) or smtps:// (implicit TLS);
    ``imap`` may be imap:// or imaps://. Without ``domain`` the first account's domain is used."""
    sub = _cli_endpoint(submission, "submission", ("smtp", "smtps"))
    box = _cli_endpoint(imap, "imap", ("imap", "imaps"))
    if domain is None:
        if not accounts:
            raise TargetError("give a domain or at least one account", source=_CLI, key="domain")
        first = _parse_account(accounts[0], key="account 1", domain=None)
        domain = first.address.rpartition("@")[2]
    parsed = tuple(
        _parse_account(spec, key=f"account {i + 1}", domain=domain)
        for i, spec in enumerate(accounts)
    )
    if not domain or "@" in domain or any(c.isspace() for c in domain):
        raise TargetError(f"not a domain name: {domain!r}", source=_CLI, key="domain")
    ca_path: Path | None = None
    if ca_file is not None:
        ca_path = Path(ca_file).expanduser().resolve()
        if not ca_path.is_file():
            raise TargetError(f"no such file: {ca_path}", source=_CLI, key="ca_file")
    provider = ProviderTarget(
        domain=domain,
        submission=sub if sub is not None and not sub.implicit_tls else None,
        submissions=sub if sub is not None and sub.implicit_tls else None,
        mx=_cli_endpoint(mx, "mx", ("smtp",)),
        imap=box if box is not None and not box.implicit_tls else None,
        imaps=box if box is not None and box.implicit_tls else None,
        outbound_port=None,
        accounts=parsed,
    )
    _check_accounts(provider, source=_CLI, key="accounts")
    return Target(
        name=name,
        description="",
        sender=provider,
        receiver=provider,
        dns=None,
        ca_file=ca_path,
        tls_verify=tls_verify,
    )


# --- writing TOML -------------------------------------------------------------------------

_TOML_ESCAPES: Mapping[str, str] = MappingProxyType(
    {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
)


def _toml_str(value: str) -> str:
    out: list[str] = []
    for ch in value:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def _toml_bool(value: bool) -> str:
    return "true" if value else "false"


def _dump_provider(key: str, provider: ProviderTarget) -> list[str]:
    lines = [f"[{key}]", f"domain = {_toml_str(provider.domain)}"]
    for name in ENDPOINT_SCHEMES:
        endpoint: Endpoint | None = getattr(provider, name)
        if endpoint is not None:
            lines.append(f"{name} = {_toml_str(endpoint.url)}")
    if provider.outbound_port is not None:
        lines.append(f"outbound_port = {provider.outbound_port}")
    lines.append(f"mailbox_junk = {_toml_str(provider.mailbox_junk)}")
    for account in provider.accounts:
        lines += [
            "",
            f"[[{key}.accounts]]",
            f"user = {_toml_str(account.user)}",
            f"password = {_toml_str(account.password)}",
            f"address = {_toml_str(account.address)}",
        ]
    return lines


def dump_target(target: Target) -> str:
    """TOML text that load_target reads back to an equal Target (ca_file written absolute)."""
    lines = [
        f"name = {_toml_str(target.name)}",
        f"description = {_toml_str(target.description)}",
        f"embedded = {_toml_bool(target.embedded)}",
        f"quirks = {_toml_list(target.quirks)}",
    ]
    if target.ca_file is not None:
        lines.append(f"ca_file = {_toml_str(str(target.ca_file.resolve()))}")
    lines += [
        f"tls_verify = {_toml_bool(target.tls_verify)}",
        f"allow_plaintext = {_toml_bool(target.allow_plaintext)}",
        f"delivery_timeout = {float(target.delivery_timeout)!r}",
        f"sink_addresses = {_toml_list(target.sink_addresses)}",
    ]
    if target.dns is not None:
        lines += [
            "",
            "[dns]",
            f"server = {_toml_str(target.dns.server)}",
            f"update = {_toml_bool(target.dns.update)}",
        ]
    lines += ["", *_dump_provider("sender", target.sender)]
    lines += ["", *_dump_provider("receiver", target.receiver)]
    return "\n".join(lines) + "\n"
