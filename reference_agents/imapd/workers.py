"""The reference IMAP server on every core: worker processes sharing one mail store.

The provider's process reserves the IMAP ports and starts *count* worker processes (fresh
interpreters, so nothing of the parent's threads or event loop is inherited). Each worker
runs its own event loop and its own `IMAPServer`, listening on the same address and port with
SO_REUSEPORT, so the kernel spreads new connections over the workers by a hash of the
client's address and port; a busy worker does not take every connection of a burst. The workers attach to
the provider's `MaildirStore` (which the provider has `share`d) and tell one another, and
hear from the provider's MDA, of every change through a `ChangeBus`, so IDLE and NOTIFY
report another process's delivery or STORE as promptly as their own.

A worker dies with the provider (``PR_SET_PDEATHSIG``), so a SIGKILL of the provider leaves no
worker holding its ports; a worker that dies on its own is started again.

What is per process: the authentication throttle and the connection limits count what
reaches one worker (a client spread over *count* workers may get up to *count* times the
limit); the IMAP sessions themselves never need another worker's state."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import os
import pickle
import signal
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_agents.config import ProviderConfig
from reference_agents.imapd.server import IMAPServer
from reference_agents.mailstore import MaildirStore
from reference_agents.mailstore.changes import ChangeBus, new_group
from reference_agents.smtpd.listeners import loopback_socket

_log = logging.getLogger(__name__)
#: Seconds a worker has to come up (import, attach, listen) before start() fails.
START_SECONDS = 60.0
#: Seconds a worker has to end its sessions after SIGTERM before it is killed.
STOP_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1
#: The directory holding the reference_agents package, for the workers' import path.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def default_worker_count() -> int:
    """IMAP worker processes for "auto": one per core this process may run on, and none (the
    server in the provider's own process) on a single core."""
    cores = len(os.sched_getaffinity(0))
    return cores if cores > 1 else 0


@dataclass(frozen=True)
class _WorkerSpec:
    """What a worker needs to rebuild the provider's configuration (an SSLContext does not
    cross a process boundary: the worker loads the certificate from ``server_tls_file``)."""

    fields: dict[str, Any]
    member: int
    group: str
    size: int


def _config_fields(config: ProviderConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.init and f.name not in ("server_tls", "client_tls")}


def _reserve(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) with SO_REUSEPORT but not listening: it keeps the port
    (chosen free when *port* is 0) for the workers, whose listening sockets join it there,
    and takes no connection itself (Linux hands a connection to a listening socket only)."""
    return loopback_socket(host, port, option=socket.SO_REUSEPORT)


class IMAPWorkers:
    """*count* worker processes serving the provider's IMAP (and IMAPS) listeners."""

    def __init__(self, *, config: ProviderConfig, store: MaildirStore, count: int) -> None:
        if count < 1:
            raise ValueError("IMAPWorkers needs at least one worker")
        if config.tls and config.server_tls_file is None:
            raise ValueError("IMAP workers need config.server_tls_file to load the certificate")
        self.config = config
        self.store = store
        self.count = count
        self._sockets: dict[str, socket.socket] = {}
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._bus: ChangeBus | None = None
        self._group = ""
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def ports(self) -> dict[str, int]:
        return {name: int(sock.getsockname()[1]) for name, sock in self._sockets.items()}

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes.values()]

    async def start(self) -> None:
        host = self.config.address
        self._sockets["imap"] = _reserve(host, self.config.ports.imap)
        if self.config.tls:
            self._sockets["imaps"] = _reserve(host, self.config.ports.imaps)
        # Recovery must be over before any worker writes (MaildirStore.share).
        await asyncio.to_thread(self.store.share, [a.username for a in self.config.accounts])
        self._group = new_group()
        self._bus = ChangeBus(self.store, self._group, 0, self.count + 1)
        ready = [(member, self._spawn(member)) for member in range(1, self.count + 1)]
        for member, ready_r in ready:
            await self._wait_ready(member, ready_r)
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    def _spawn(self, member: int) -> int:
        """Start worker *member*; the read end of its readiness pipe."""
        # A fresh interpreter (not fork: the provider has threads and an event loop; not
        # multiprocessing's spawn, which would re-run the caller's __main__), started from the
        # event loop's own thread: PR_SET_PDEATHSIG fires when the thread that forked the
        # worker ends, and this one lasts as long as the provider.
        spec = _WorkerSpec(_config_fields(self.config), member, self._group, self.count + 1)
        ready_r, ready_w = os.pipe()
        ports = self.ports
        argv = [sys.executable, "-c", "from reference_agents.imapd.workers import main; main()",
                str(ready_w), str(ports.get("imap", -1)), str(ports.get("imaps", -1))]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(_PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
        try:
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env,
                                       pass_fds=[ready_w])
        finally:
            os.close(ready_w)
        assert process.stdin is not None
        with process.stdin:
            process.stdin.write(pickle.dumps(spec))
        self._processes[member] = process
        return ready_r

    async def _wait_ready(self, member: int, ready_r: int) -> None:
        def wait() -> bytes:
            with open(ready_r, "rb") as f:  # closes ready_r
                return f.read(6)
        try:
            message = await asyncio.wait_for(asyncio.to_thread(wait), START_SECONDS)
        except TimeoutError:
            message = b""
        if message != b"ready\n":
            process = self._processes[member]
            raise RuntimeError(f"IMAP worker {member} of {self.config.domain} did not start "
                               f"(exit code {process.poll()})")

    async def _supervise(self) -> None:
        """Start again a worker that died while the provider runs."""
        while True:
            await asyncio.sleep(1.0)
            for member, process in list(self._processes.items()):
                if process.poll() is None:
                    continue
                _log.warning("IMAP worker %d of %s ended (exit code %s); starting another",
                             member, self.config.domain, process.returncode)
                ready_r = self._spawn(member)
                try:
                    await self._wait_ready(member, ready_r)
                except RuntimeError as exc:
                    _log.error("%s", exc)

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        processes = list(self._processes.values())
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.to_thread(process.wait, STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        self._processes.clear()
        if self._bus is not None:
            self._bus.close()
            self._bus = None
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


# --------------------------------------------------------------------------- in the worker


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent ends (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def main() -> None:
    """The body of one worker process: ``argv`` = ready-fd imap-port imaps-port (-1: none),
    and the pickled `_WorkerSpec` on standard input (from the provider, never from a user)."""
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        return
    ready_fd, imap_port, imaps_port = (int(a) for a in sys.argv[1:4])
    spec = pickle.loads(sys.stdin.buffer.read())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(spec, imap_port, imaps_port, ready_fd))


async def _serve(spec: _WorkerSpec, imap_port: int, imaps_port: int, ready_fd: int) -> None:
    fields = dict(spec.fields)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_file: Path | None = fields.get("server_tls_file")
    if tls_file is not None:
        server_tls.load_cert_chain(tls_file)
    config = ProviderConfig(**fields, server_tls=server_tls,
                            client_tls=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    store = MaildirStore.attach(config.data_dir / "mail")
    bus = ChangeBus(store, spec.group, spec.member, spec.size)
    servers: list[IMAPServer] = []
    try:
        for port, implicit in ((imap_port, False), (imaps_port, True)):
            if port < 0:
                continue
            server = IMAPServer(config=config, store=store, host=config.address,
                                port=port, implicit_tls=implicit, reuse_port=True)
            await server.start()
            servers.append(server)
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
        await stopping.wait()
    finally:
        for server in servers:
            await server.stop()
        bus.close()
        store.close()
