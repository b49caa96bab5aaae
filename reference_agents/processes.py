"""Agent processes: the IMAP workers and the delivery process, started beside the provider.

The provider starts each one as a fresh interpreter (not fork: the provider has threads and an
event loop; not multiprocessing's spawn, which would re-run the caller's ``__main__``), with a
pickled spec on standard input and a readiness pipe: the child writes ``ready`` once it
serves. A child dies with the provider (``PR_SET_PDEATHSIG``), so a SIGKILL of the provider
leaves no child holding its ports or its queue; a child that dies on its own is started again.
Postfix (master and its daemons) and Dovecot (master and its imap processes) work this way."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import os
import pickle
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from reference_agents import serverlog
from reference_agents.config import ProviderConfig

_log = logging.getLogger(__name__)
#: Seconds a child has to come up (import, attach, listen) before start() fails.
START_SECONDS = 60.0
#: Seconds a child has to end its work after SIGTERM before it is killed.
STOP_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1
#: The directory holding the reference_agents package, for the children's import path.
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]

Spawn = Callable[[], tuple["subprocess.Popen[bytes]", int]]


def default_process_count() -> int:
    """Cores this process may run on: "auto" starts child processes only with more than one."""
    return len(os.sched_getaffinity(0))


def config_fields(config: ProviderConfig) -> dict[str, Any]:
    """The provider's configuration as picklable fields (an SSLContext does not cross a process
    boundary: `rebuild_config` makes the contexts again from ``server_tls_file`` and
    ``ca_file``)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.init and f.name not in ("server_tls", "client_tls")}


def rebuild_config(fields: dict[str, Any]) -> ProviderConfig:
    """The configuration `config_fields` describes, with its TLS contexts loaded from files."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_file: Path | None = fields.get("server_tls_file")
    if tls_file is not None:
        server_tls.load_cert_chain(tls_file)
    ca_file: Path | None = fields.get("ca_file")
    client_tls = (ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
                  if ca_file is not None else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    return ProviderConfig(**fields, server_tls=server_tls, client_tls=client_tls)


def spawn(module: str, spec: object, args: Sequence[str],
          pass_fds: Sequence[int] = ()) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``module.main()`` in a fresh interpreter with *spec* pickled on its standard input;
    the process and the read end of its readiness pipe. Call it from the event loop's own
    thread: PR_SET_PDEATHSIG fires when the thread that forked the child ends, and that one
    lasts as long as the provider."""
    ready_r, ready_w = os.pipe()
    argv = [sys.executable, "-c", f"from {module} import main; main()", str(ready_w), *args]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(_PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env,
                                   pass_fds=[ready_w, *pass_fds])
    except BaseException:
        os.close(ready_r)
        raise
    finally:
        os.close(ready_w)
    assert process.stdin is not None
    with process.stdin:
        process.stdin.write(pickle.dumps(spec))
    return process, ready_r


class Children:
    """Child processes of one kind (*what*, for messages), each under a key, started with a
    `Spawn` and started again by `supervise` when one dies."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._spawners: dict[int, Spawn] = {}
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes.values()]

    async def start(self, key: int, start: Spawn) -> None:
        """Start child *key* and wait until it serves; RuntimeError if it does not."""
        self._spawners[key] = start
        process, ready_r = start()
        self._processes[key] = process
        await self._wait_ready(key, ready_r)

    async def _wait_ready(self, key: int, ready_r: int) -> None:
        def wait() -> bytes:
            with open(ready_r, "rb") as f:  # closes ready_r
                return f.read(6)
        try:
            message = await asyncio.wait_for(asyncio.to_thread(wait), START_SECONDS)
        except TimeoutError:
            message = b""
        if message != b"ready\n":
            process = self._processes[key]
            raise RuntimeError(f"{self.what} {key} did not start (exit code {process.poll()})")

    def supervise(self) -> None:
        """From now on, start again a child that ends while the provider runs."""
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for key, process in list(self._processes.items()):
                if process.poll() is not None:
                    _log.warning("%s %d ended (exit code %s); starting another",
                                 self.what, key, process.returncode)
                    try:
                        await self.start(key, self._spawners[key])
                    except (RuntimeError, OSError) as exc:
                        _log.error("%s", exc)

    async def stop(self) -> None:
        """SIGTERM every child, and SIGKILL the ones still there after STOP_SECONDS."""
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


# --------------------------------------------------------------------------- in the child


def _die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent ends (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def child_main(run: Callable[[Any, list[str], int], Coroutine[Any, Any, None]]) -> None:
    """The body of a child: ``argv`` = ready-fd and *run*'s own arguments, the pickled spec
    on standard input (from the provider, never from a user); ``run(spec, args, ready_fd)``
    serves until SIGTERM and calls `signal_ready` once it serves."""
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        return
    ready_fd = int(sys.argv[1])
    spec = pickle.loads(sys.stdin.buffer.read())
    serverlog.configure_from_environment()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(spec, sys.argv[2:], ready_fd))


def signal_ready(ready_fd: int) -> None:
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)


def stop_requested() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (for the running event loop)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    return stopping
