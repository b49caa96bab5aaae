"""Close means close: after LOGOUT (or a BYE) over implicit TLS the server closes the TCP
connection at once (RFC 9051 §6.1.3: "The server MUST send a BYE untagged response before the
(tagged) OK response, and then close the network connection"), and after QUIT on submissions
likewise (RFC 5321 §4.1.1.10). The client here never sends its own close_notify, as a client
waiting for the close would not: the server must not wait for it (RFC 8446 §6.1)."""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable

from reference_agents.config import ProviderConfig
from reference_agents.tls import TLSMaterial
from tests.unit.test_imapd import PASSWORD, base_config, serving
from tests.unit.test_smtpd import (
    FakeQueue,
    accounts,
    client_tls,
    make_config,
    serve,
    server_tls,
    tls,
)

HOST = "127.0.0.1"
#: The bound the issue sets: from the tagged OK (or the 221) to the TCP FIN.
CLOSE_SECONDS = 1.0


def _seconds_to_fin(sock: ssl.SSLSocket) -> float:
    """Read to the TLS close, then wait for the TCP FIN on the raw socket, without answering
    the server's close_notify; the seconds until the FIN."""
    started = time.monotonic()
    while sock.recv(65536):
        pass
    raw = socket.socket(fileno=os.dup(sock.fileno()))
    raw.settimeout(30)
    try:
        assert raw.recv(1) == b""
    finally:
        raw.close()
    return time.monotonic() - started


def _read_until(sock: ssl.SSLSocket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_imaps_logout_closes_at_once(base_config: tuple[ProviderConfig, TLSMaterial]) -> None:
    with serving(base_config, implicit_tls=True) as srv:
        for _ in range(2):
            sock = srv.tls.client_context().wrap_socket(
                socket.create_connection((HOST, srv.port), timeout=10), server_hostname=HOST)
            _read_until(sock, b"\r\n")
            sock.sendall(f"a LOGIN alice \"{PASSWORD}\"\r\n".encode())
            assert b"a OK" in _read_until(sock, b"a ")
            sock.sendall(b"b LOGOUT\r\n")
            assert b"* BYE" in _read_until(sock, b"b OK")
            assert _seconds_to_fin(sock) < CLOSE_SECONDS
            sock.close()


def test_imaps_bye_after_failed_logins_closes_at_once(
        base_config: tuple[ProviderConfig, TLSMaterial]) -> None:
    with serving(base_config, implicit_tls=True) as srv:
        sock = srv.tls.client_context().wrap_socket(
            socket.create_connection((HOST, srv.port), timeout=10), server_hostname=HOST)
        _read_until(sock, b"\r\n")
        for n in range(5):
            sock.sendall(f"f{n} LOGIN alice wrong\r\n".encode())
            _read_until(sock, f"f{n} NO".encode())
        assert _seconds_to_fin(sock) < CLOSE_SECONDS
        sock.close()


def test_submissions_quit_closes_at_once(make_config: Callable[..., ProviderConfig],
                                         client_tls: ssl.SSLContext) -> None:
    def client(ports: dict[str, int]) -> float:
        sock = client_tls.wrap_socket(
            socket.create_connection((HOST, ports["submissions"]), timeout=10),
            server_hostname=HOST)
        try:
            _read_until(sock, b"220 ")
            sock.sendall(b"QUIT\r\n")
            _read_until(sock, b"221 ")
            return _seconds_to_fin(sock)
        finally:
            sock.close()

    assert serve(make_config(), client, FakeQueue()) < CLOSE_SECONDS


#: Fixtures of the modules above, used here.
__all__ = ["accounts", "base_config", "client_tls", "make_config", "server_tls", "tls"]
