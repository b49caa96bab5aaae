"""The reference IMAP server on every core: worker processes sharing one mail store.

The provider's process reserves the IMAP ports and starts *count* worker processes
(reference_agents/processes.py: fresh interpreters, supervised, dying with the provider). Each worker
runs its own event loop and its own `IMAPServer`, listening on the same address and port with
SO_REUSEPORT, so the kernel spreads new connections over the workers by a hash of the
client's address and port; a busy worker does not take every connection of a burst. The workers attach to
the provider's `MaildirStore` (which the provider has `share`d) and tell one another, and
hear from the MDA, of every change through a `ChangeBus`, so IDLE and NOTIFY
report another process's delivery or STORE as promptly as their own.

Across the workers: the authentication throttle's failures are shared through the change bus,
so every worker (and the provider's SMTP listeners) counts the failures of all; the connection
limits are divided, each worker taking its share (`ConnectionLimits.share_of`). The IMAP
sessions themselves never need another worker's state."""

from __future__ import annotations

import dataclasses
import functools
import socket
from dataclasses import dataclass
from typing import Any

from reference_agents.config import ProviderConfig
from reference_agents.imapd.server import IMAPServer
from reference_agents.mailstore import MaildirStore
from reference_agents.mailstore.changes import ChangeBus
from reference_agents.processes import (
    Children,
    child_main,
    config_fields,
    default_process_count,
    rebuild_config,
    signal_ready,
    spawn,
    stop_requested,
)
from reference_agents.smtpd.listeners import loopback_socket


def default_worker_count() -> int:
    """IMAP worker processes for "auto": one per core this process may run on, and none (the
    server in the provider's own process) on a single core."""
    cores = default_process_count()
    return cores if cores > 1 else 0


@dataclass(frozen=True)
class _WorkerSpec:
    """What a worker needs: the provider's configuration (`config_fields`) and its place in
    the change-notification group."""

    fields: dict[str, Any]
    member: int
    group: str
    size: int
    #: How many workers serve the listeners: each takes its share of the connection limits.
    workers: int


def _reserve(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) with SO_REUSEPORT but not listening: it keeps the port
    (chosen free when *port* is 0) for the workers, whose listening sockets join it there,
    and takes no connection itself (Linux hands a connection to a listening socket only)."""
    return loopback_socket(host, port, option=socket.SO_REUSEPORT)


class IMAPWorkers:
    """*count* worker processes serving the provider's IMAP (and IMAPS) listeners: members
    *first* .. *first* + count - 1 of change group *group* (of *size* members). The provider
    has `share`d the store and joined the group before `start`."""

    def __init__(self, *, config: ProviderConfig, count: int, group: str, first: int,
                 size: int) -> None:
        if count < 1:
            raise ValueError("IMAPWorkers needs at least one worker")
        if config.tls and config.server_tls_file is None:
            raise ValueError("IMAP workers need config.server_tls_file to load the certificate")
        self.config = config
        self.count = count
        self._group, self._first, self._size = group, first, size
        self._sockets: dict[str, socket.socket] = {}
        self._children = Children(f"IMAP worker of {config.domain}")

    @property
    def ports(self) -> dict[str, int]:
        return {name: int(sock.getsockname()[1]) for name, sock in self._sockets.items()}

    @property
    def pids(self) -> list[int]:
        return self._children.pids

    async def start(self) -> None:
        host = self.config.address
        self._sockets["imap"] = _reserve(host, self.config.ports.imap)
        if self.config.tls:
            self._sockets["imaps"] = _reserve(host, self.config.ports.imaps)
        for member in range(self._first, self._first + self.count):
            await self._children.start(member, functools.partial(self._spawn, member))
        self._children.supervise()

    def _spawn(self, member: int) -> tuple[Any, int]:
        spec = _WorkerSpec(config_fields(self.config), member, self._group, self._size,
                           self.count)
        ports = self.ports
        return spawn("reference_agents.imapd.workers", spec,
                     [str(ports.get("imap", -1)), str(ports.get("imaps", -1))])

    async def stop(self) -> None:
        await self._children.stop()
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


# --------------------------------------------------------------------------- in the worker


def main() -> None:
    """The body of one worker process (``argv``: imap-port imaps-port, -1 for none)."""
    child_main(_serve)


async def _serve(spec: _WorkerSpec, args: list[str], ready_fd: int) -> None:
    imap_port, imaps_port = (int(a) for a in args[:2])
    config = rebuild_config(spec.fields)
    config = dataclasses.replace(
        config, connection_limits=config.connection_limits.share_of(spec.workers))
    stopping = stop_requested()
    store = MaildirStore.attach(config.data_dir / "mail")
    bus = ChangeBus(store, spec.group, spec.member, spec.size, throttle=config.auth_throttle)
    servers: list[IMAPServer] = []
    try:
        for port, implicit in ((imap_port, False), (imaps_port, True)):
            if port < 0:
                continue
            server = IMAPServer(config=config, store=store, host=config.address,
                                port=port, implicit_tls=implicit, reuse_port=True)
            await server.start()
            servers.append(server)
        signal_ready(ready_fd)
        await stopping.wait()
    finally:
        for server in servers:
            await server.stop()
        bus.close()
        store.close()
