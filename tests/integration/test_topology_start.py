"""The topology's shared MX port can be taken between choosing it and binding it: start again."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

from reference_agents import topology
from reference_agents.mailstore import MaildirStore
from reference_agents.topology import Topology, TopologySettings


def test_port_taken_after_choice_is_chosen_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = TopologySettings(data_dir=tmp_path)
    chosen: list[int] = []
    real = topology.common_free_port
    with socket.socket() as thief:
        # Another process takes the port on the sender's address right after it was chosen.
        thief.bind((settings.sender_address, 0))
        thief.listen()
        stolen = thief.getsockname()[1]

        def choose(addresses: Sequence[str], preferred: int | None = None) -> int:
            port = stolen if not chosen else real(addresses, preferred)
            chosen.append(port)
            return port

        monkeypatch.setattr(topology, "common_free_port", choose)

        async def start_and_stop() -> int:
            running = Topology(settings)
            await running.start()
            try:
                return running.outbound_port
            finally:
                await running.stop()

        port = asyncio.run(start_and_stop())
    assert chosen[0] == stolen and port == chosen[-1] != stolen and len(chosen) == 2
    # Nothing of the failed attempt is left holding the data directory.
    MaildirStore(tmp_path / "example.org" / "mail").close()


def test_port_taken_every_time_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = TopologySettings(data_dir=tmp_path)
    with socket.socket() as thief:
        thief.bind((settings.sender_address, 0))
        thief.listen()
        stolen = thief.getsockname()[1]
        monkeypatch.setattr(topology, "common_free_port", lambda *_a, **_k: stolen)
        running = Topology(settings)
        with pytest.raises(OSError, match="in use"):
            asyncio.run(running.start())
    assert running.providers == {} and running.dns is None
