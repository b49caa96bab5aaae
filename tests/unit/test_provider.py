"""A provider that cannot start gives its resources back, so a retry on the same data works."""

from __future__ import annotations

import asyncio
import errno
import socket
from pathlib import Path

import pytest

from reference_agents.accounts import AccountStore
from reference_agents.config import ProviderConfig, ProviderPorts
from reference_agents.mailstore import MaildirStore
from reference_agents.provider import Provider
from reference_agents.tls import TLSMaterial

HOST = "127.0.0.1"


def test_port_in_use_releases_the_mail_store(tmp_path: Path) -> None:
    tls = TLSMaterial.create(tmp_path / "tls")
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        busy = taken.getsockname()[1]
        config = ProviderConfig(
            domain="example.net", address=HOST, hostname="mail.example.net",
            data_dir=tmp_path / "data", accounts=AccountStore([], ["example.net"]),
            server_tls=tls.server_context([HOST]), client_tls=tls.client_context(),
            dns_server=(HOST, 53),
            ports=ProviderPorts(submission=0, submissions=0, smtp=0, imap=0, imaps=busy),
        )
        provider = Provider(config)
        with pytest.raises(OSError) as failure:
            asyncio.run(provider.start())
        assert failure.value.errno == errno.EADDRINUSE
    # The failed provider stopped its listeners and unlocked its store: a second one opens it.
    store = MaildirStore(tmp_path / "data" / "mail")
    store.close()

    async def start_and_stop() -> None:
        again = Provider(config)
        await again.start()
        await again.stop()

    asyncio.run(start_and_stop())
