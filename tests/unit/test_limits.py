"""Authentication throttling by client address and by account (reference_agents/limits.py):
the rules on a fake clock, the ``[limits]`` config table, and both servers sharing one
throttle over real sockets."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.protocol import sasl
from reference_agents.accounts import Account, AccountStore, hash_password
from reference_agents.config import ProviderConfig, ProviderPorts
from reference_agents.imapd import IMAPServer
from reference_agents.limits import AuthLimits, AuthThrottle, ConnectionLimits, limits_from
from reference_agents.mailstore import MemoryStore
from reference_agents.smtpd import SMTPServers
from reference_agents.tls import TLSMaterial
from reference_agents.topology import ConfigError, settings_from_dict
from tests.unit.test_imapd import RawClient, base_config, serving

HOST = "127.0.0.1"
OTHER = "127.0.0.2"  # a second client address (loopback, bound as the source)
PASSWORD = "right-password"
TIMEOUT = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the rules ---------------------------------------------------------------------------------


def test_delay_doubles_per_failure_up_to_the_cap_then_the_address_is_refused() -> None:
    clock = Clock()
    throttle = AuthThrottle(AuthLimits(base_delay=0.5, max_delay=3.0, refuse_after=5), clock)
    assert throttle.before("10.0.0.1", "alice").wait == 0.0
    waits = []
    for _ in range(4):
        throttle.failed("10.0.0.1", "alice")
        verdict = throttle.before("10.0.0.1", "alice")
        assert not verdict.refuse
        waits.append(verdict.wait)
    assert waits == [0.5, 1.0, 2.0, 3.0]
    throttle.failed("10.0.0.1", "alice")
    assert throttle.before("10.0.0.1", "alice").refuse
    # Another address is not slowed by this one's failures.
    assert throttle.before("10.0.0.2", "alice") == throttle.before("10.0.0.3", None)
    assert throttle.before("10.0.0.2", "alice").wait == 0.0


def test_failures_expire_with_the_window_and_a_success_clears_the_address() -> None:
    clock = Clock()
    throttle = AuthThrottle(AuthLimits(window=60.0, refuse_after=2), clock)
    throttle.failed("a", "alice")
    throttle.failed("a", "alice")
    assert throttle.before("a").refuse
    clock.now += 61
    assert throttle.before("a") == throttle.before("never-failed")
    throttle.failed("a", "alice")
    throttle.succeeded("a")
    assert throttle.before("a").wait == 0.0


def test_an_account_under_attack_is_refused_only_to_addresses_that_failed() -> None:
    clock = Clock()
    throttle = AuthThrottle(AuthLimits(refuse_after=100, account_refuse_after=3), clock)
    for attacker in ("x1", "x2", "x3"):
        throttle.failed(attacker, "Alice")
    assert throttle.before("x1", "alice").refuse
    assert not throttle.before("x1", "bob").refuse
    # The real user, from an address with no failures: never locked out.
    assert throttle.before("home", "ALICE") == throttle.before("home", None)
    assert not throttle.before("home", "alice").refuse


def test_memory_is_bounded_in_keys_and_in_failures_per_key() -> None:
    throttle = AuthThrottle(AuthLimits(refuse_after=3, account_refuse_after=4, max_tracked=50))
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}", f"user{i}")
    assert throttle.tracked() == (50, 50)
    for _ in range(1000):
        throttle.failed("one", "one")
    assert len(throttle._addresses._by_key["one"]) == 3
    assert len(throttle._accounts._by_key["one"]) == 4


#: A fixture of test_imapd, used here.
__all__ = ["base_config"]


def test_limits_table_of_the_serve_config() -> None:
    limits, connections = limits_from({"auth_window": 30, "auth_delay": 0.05,
                                       "auth_refuse_after": 4, "max_connections": 9,
                                       "preauth_timeout": 5}, "serve.toml")
    assert (limits.window, limits.base_delay, limits.refuse_after) == (30.0, 0.05, 4)
    assert (connections.max_connections, connections.preauth_timeout) == (9, 5.0)
    assert connections.max_connections_per_address == 200
    settings = settings_from_dict({"limits": {"auth_account_refuse_after": 7}},
                                  source="serve.toml", base=Path("/tmp"))
    assert settings.auth_limits.account_refuse_after == 7
    for bad, message in (({"auth_windw": 3}, "unknown key 'auth_windw'"),
                         ({"auth_refuse_after": 0}, "auth_refuse_after: expected a whole number"),
                         ({"auth_delay": "fast"}, "auth_delay: expected a number"),
                         ({"auth_refuse_after": True}, "auth_refuse_after: expected")):
        with pytest.raises(ConfigError, match=message) as info:
            settings_from_dict({"limits": bad}, source="serve.toml", base=Path("/tmp"))
        assert "\n" not in str(info.value) and str(info.value).startswith("serve.toml: limits: ")
    with pytest.raises(ConfigError, match="limits: expected dict"):
        settings_from_dict({"limits": 3}, source="serve.toml", base=Path("/tmp"))


# -- both servers of one provider, over real sockets ---------------------------------------------


@dataclass
class Provider:
    config: ProviderConfig
    tls: TLSMaterial
    imap_port: int
    submission_port: int


@contextmanager
def provider(tmp_path: Path, limits: AuthLimits,
             connections: ConnectionLimits | None = None) -> Iterator[Provider]:
    tls = TLSMaterial.create(tmp_path / "tls")
    accounts = AccountStore([Account("alice", "alice@example.org", hash_password(PASSWORD))],
                            ["example.org"])
    config = ProviderConfig(
        domain="example.org", address=HOST, hostname="mail.example.org", data_dir=tmp_path,
        accounts=accounts, server_tls=tls.server_context([HOST]), client_tls=tls.client_context(),
        dns_server=(HOST, 53), ports=ProviderPorts(submission=0, submissions=0, smtp=0, imap=0,
                                                   imaps=0),
        login_disabled_without_tls=False, tls=False, auth_limits=limits,
        connection_limits=connections or ConnectionLimits(),
    )
    store = MemoryStore()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def queue(mail_from: str, recipients: object, data: bytes) -> str:
        return "Q1"

    imap = IMAPServer(config=config, store=store, host=HOST, port=0, implicit_tls=False,
                      auth_failure_delay=0.0)
    smtp = SMTPServers(config, queue)
    try:
        asyncio.run_coroutine_threadsafe(imap.start(), loop).result(TIMEOUT)
        asyncio.run_coroutine_threadsafe(smtp.start(), loop).result(TIMEOUT)
        yield Provider(config, tls, imap.port, smtp.ports["submission"])
    finally:
        asyncio.run_coroutine_threadsafe(smtp.stop(), loop).result(TIMEOUT)
        asyncio.run_coroutine_threadsafe(imap.stop(), loop).result(TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()
        store.close()


class Raw(RawClient):
    """One IMAP connection from *source*, past its greeting."""

    def __init__(self, port: int, source: str = HOST) -> None:
        super().__init__(socket.create_connection((HOST, port), timeout=TIMEOUT,
                                                  source_address=(source, 0)))
        self.line()  # greeting

    def login(self, tag: str, password: str) -> list[bytes]:
        self.send(f"{tag} LOGIN alice {password}\r\n".encode())
        return self.until_tagged(tag.encode())


def test_the_last_failure_a_connection_takes_is_answered_before_bye(tmp_path: Path) -> None:
    with provider(tmp_path, AuthLimits(base_delay=0.0)) as p:
        client = Raw(p.imap_port)
        for n in range(1, 5):
            assert b"NO [AUTHENTICATIONFAILED]" in client.login(f"a{n}", "wrong")[-1]
        client.send(b"a5 LOGIN alice wrong\r\n")
        first, second = client.line(), client.line()
        # RFC 9051 §3.4 / §7.1.5: the command is answered; BYE comes after it, then the close.
        assert first.startswith(b"a5 NO [AUTHENTICATIONFAILED]")
        assert second.startswith(b"* BYE")
        assert client.closed()
        client.close()


def test_failures_on_many_connections_throttle_the_address_for_imap_and_smtp(
        tmp_path: Path) -> None:
    with provider(tmp_path, AuthLimits(base_delay=0.0, refuse_after=6)) as p:
        for n in range(3):  # three connections, two guesses each
            client = Raw(p.imap_port)
            for m in range(2):
                assert b"[AUTHENTICATIONFAILED]" in client.login(f"c{n}{m}", "wrong")[-1]
            client.close()
        # The address is refused now, right password or not, as a temporary failure...
        client = Raw(p.imap_port)
        assert client.login("r1", PASSWORD)[-1].startswith(b"r1 NO [UNAVAILABLE]")
        client.close()
        # ... by the submission server as well (one throttle per provider): 454 4.7.0.
        with smtplib.SMTP(HOST, p.submission_port, local_hostname="client.invalid",
                          timeout=TIMEOUT) as smtp:
            smtp.ehlo()
            code, text = smtp.docmd("AUTH", "PLAIN " + sasl.plain_initial_response(
                "alice", PASSWORD))
            assert (code, text[:5]) == (454, b"4.7.0")
        # Another address logs in at once: its user is not locked out.
        client = Raw(p.imap_port, source=OTHER)
        assert client.login("o1", PASSWORD)[-1].startswith(b"o1 OK")
        client.close()


def test_smtp_failures_slow_the_next_imap_attempt_from_that_address(tmp_path: Path) -> None:
    limits = AuthLimits(base_delay=0.3, max_delay=0.3, refuse_after=100)
    with provider(tmp_path, limits) as p:
        with smtplib.SMTP(HOST, p.submission_port, local_hostname="client.invalid",
                          timeout=TIMEOUT) as smtp:
            smtp.ehlo()
            code, _ = smtp.docmd("AUTH", "PLAIN " + sasl.plain_initial_response("alice", "no"))
            assert code == 535
        assert p.config.auth_throttle.before(HOST, "alice").wait == pytest.approx(0.3)
        client = Raw(p.imap_port)
        started = time.monotonic()
        assert client.login("s1", PASSWORD)[-1].startswith(b"s1 OK")
        assert time.monotonic() - started >= 0.25
        client.close()
        # The success cleared the address.
        assert p.config.auth_throttle.before(HOST, "alice").wait == 0.0


# -- connections per listener and per address ------------------------------------------------------


def test_connections_past_the_limits_are_refused_and_the_others_go_on(tmp_path: Path) -> None:
    limits = ConnectionLimits(max_connections=4, max_connections_per_address=2)
    with provider(tmp_path, AuthLimits(), limits) as p:
        kept = [Raw(p.imap_port), Raw(p.imap_port)]
        # A third from the same address: BYE as the greeting, then the close.
        third = RawClient(socket.create_connection((HOST, p.imap_port), timeout=TIMEOUT))
        assert third.line().startswith(b"* BYE [UNAVAILABLE]")
        assert third.closed()
        third.close()
        # Another address still gets in, up to the listener's total.
        others = [Raw(p.imap_port, source=OTHER), Raw(p.imap_port, source="127.0.0.5")]
        fifth = RawClient(socket.create_connection((HOST, p.imap_port), timeout=TIMEOUT,
                                                   source_address=("127.0.0.6", 0)))
        assert fifth.line().startswith(b"* BYE [UNAVAILABLE]")
        fifth.close()
        # The sessions that were let in work on.
        assert kept[0].login("k1", PASSWORD)[-1].startswith(b"k1 OK")
        for client in (*kept, *others):
            client.close()
        # SMTP likewise, per listener: 421 4.7.0 as the greeting past two from one address.
        held = [smtplib.SMTP(HOST, p.submission_port, local_hostname="c.invalid",
                             timeout=TIMEOUT) for _ in range(2)]
        refused = socket.create_connection((HOST, p.submission_port), timeout=TIMEOUT)
        assert refused.recv(512).startswith(b"421 4.7.0 ")
        assert refused.recv(512) == b""
        refused.close()
        assert held[0].noop()[0] == 250
        for smtp in held:
            smtp.quit()


def test_a_client_that_never_logs_in_is_logged_out_early(tmp_path: Path) -> None:
    with provider(tmp_path, AuthLimits(), ConnectionLimits(preauth_timeout=0.5)) as p:
        idle = Raw(p.imap_port)
        started = time.monotonic()
        assert idle.line().startswith(b"* BYE")
        assert idle.closed() and time.monotonic() - started < 5
        idle.close()
        # Once logged in, the long autologout applies.
        working = Raw(p.imap_port)
        assert working.login("w1", PASSWORD)[-1].startswith(b"w1 OK")
        time.sleep(1.0)
        working.send(b"w2 NOOP\r\n")
        assert working.until_tagged(b"w2")[-1].startswith(b"w2 OK")
        working.close()


def test_an_idle_tls_connection_holds_little_python_memory(
        base_config: tuple[ProviderConfig, TLSMaterial]) -> None:
    """asyncio gives each TLS connection a 256 KiB read buffer of its own; the servers bound it
    (reference_agents/tls.py), so 100 idle IMAPS connections cost well under 64 KiB each of
    Python-allocated memory (OpenSSL's own is measured by benchmarks/connections.py)."""
    with serving(base_config, implicit_tls=True) as srv:
        context = srv.tls.client_context()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            held = []
            for _ in range(100):
                sock = context.wrap_socket(socket.create_connection((HOST, srv.port),
                                                                    timeout=TIMEOUT),
                                           server_hostname=HOST)
                sock.recv(4096)  # the greeting: the server's side is set up
                held.append(sock)
            time.sleep(0.5)
            per_connection = (tracemalloc.get_traced_memory()[0] - before) / len(held)
        finally:
            tracemalloc.stop()
        for sock in held:
            sock.close()
    assert per_connection < 64 * 1024, f"{per_connection / 1024:.1f} KiB per connection"


def test_processes_serving_one_listener_share_its_connection_limits() -> None:
    from reference_agents.limits import ConnectionLimits

    limits = ConnectionLimits(max_connections=1000, max_connections_per_address=7)
    assert limits.share_of(1) is limits
    shared = limits.share_of(2)
    assert (shared.max_connections, shared.max_connections_per_address) == (500, 4)
    assert shared.preauth_timeout == limits.preauth_timeout
    assert limits.share_of(64).max_connections_per_address == 1  # never 0

