"""The reference IMAP server in worker processes (reference_agents/imapd/workers.py): the
kernel spreads connections over them, they share one mail store without losing the order of
UIDs and mod-sequences, a change made in one process wakes IDLE in another at once, and a
worker that dies is replaced.

IDLE's own poll is set to 30 s here, so a wake-up within a few seconds can only come from the
change notification between the processes."""

from __future__ import annotations

import contextlib
import dataclasses
import imaplib
import os
import re
import signal
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.targets import Target
from reference_agents.imapd.workers import IMAPWorkers
from reference_agents.topology import Topology, TopologySettings, TopologyThread

WORKERS = 2
#: Seconds within which a change must reach an IDLE session in another process.
WAKE_BOUND = 3.0
TIMEOUT = 20.0


@contextlib.contextmanager
def running(settings: TopologySettings) -> Iterator[tuple[Target, Topology]]:
    """The embedded topology on a thread, with IDLE's own poll at 30 s."""
    runner = TopologyThread(dataclasses.replace(settings, idle_poll_interval=30.0))
    try:
        yield runner.start(), runner.topology
    finally:
        runner.stop()


@contextlib.contextmanager
def running_workers(settings: TopologySettings) -> Iterator[tuple[Target, IMAPWorkers]]:
    """`running`, and example.net's IMAP workers, all of them up."""
    with running(settings) as (target, topology):
        workers = topology.providers["example.net"].imap_workers
        assert workers is not None and len(workers.pids) == settings.imap_workers
        yield target, workers


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, IMAPWorkers]]:
    settings = TopologySettings(data_dir=tmp_path_factory.mktemp("workers"), imap_workers=WORKERS)
    with running_workers(settings) as served:
        yield served


def _login(target: Target) -> imaplib.IMAP4_SSL:
    endpoint = target.receiver.imaps
    assert endpoint is not None
    bob = target.receiver.accounts[0]
    client = imaplib.IMAP4_SSL(endpoint.host, endpoint.port,
                               ssl_context=target.client_ssl_context(), timeout=TIMEOUT)
    client.login(bob.user, bob.password)
    return client


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[8:-1]))
    return inodes


def _serving_pid(client: imaplib.IMAP4_SSL, pids: list[int]) -> int | None:
    """The process holding the server end of *client*'s connection (from /proc/net/tcp: the
    socket whose remote port is the client's local port)."""
    host, port = client.sock.getsockname()[:2]
    remote = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == remote:
            inode = int(fields[9])
            for pid in pids:
                if inode in _socket_inodes(pid):
                    return pid
    return None


def _one_per_worker(target: Target, workers: IMAPWorkers) -> dict[int, imaplib.IMAP4_SSL]:
    """A logged-in session on each worker (connections land by hash: open until both have
    one, bounded)."""
    found: dict[int, imaplib.IMAP4_SSL] = {}
    spare = []
    for _ in range(40):
        client = _login(target)
        pid = _serving_pid(client, workers.pids)
        if pid is not None and pid not in found:
            found[pid] = client
        else:
            spare.append(client)
        if len(found) == WORKERS:
            break
    for client in spare:
        client.logout()
    assert len(found) == WORKERS, f"40 connections reached only workers {sorted(found)}"
    return found


class _Idler:
    """An IDLE session on *mailbox*, reading untagged responses on a thread of its own."""

    def __init__(self, client: imaplib.IMAP4_SSL, mailbox: str) -> None:
        self.client = client
        status, data = client.select(mailbox)
        assert status == "OK", data
        client.send(b"i1 IDLE\r\n")
        assert client.readline().startswith(b"+")
        self.lines: list[bytes] = []
        self.seen = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                line = self.client.readline()
            except OSError:
                return
            if not line:
                return
            self.lines.append(line)
            if re.match(rb"\* \d+ EXISTS", line):
                self.seen.set()
            if line.startswith(b"i1 "):
                return

    def done(self) -> None:
        self.client.send(b"DONE\r\n")
        self._thread.join(TIMEOUT)
        self.client.logout()


def test_connections_spread_over_the_workers(served: tuple[Target, IMAPWorkers]) -> None:
    target, workers = served
    clients = [_login(target) for _ in range(16)]
    try:
        serving = [_serving_pid(c, workers.pids) for c in clients]
    finally:
        for client in clients:
            client.logout()
    assert None not in serving, "a connection is not held by any worker"
    # 16 connections hashed over 2 workers all on one: a chance of 2 in 65536.
    assert set(serving) == set(workers.pids), serving


def test_a_delivery_by_the_provider_wakes_idle_in_a_worker(
        served: tuple[Target, IMAPWorkers]) -> None:
    target, _ = served
    idler = _Idler(_login(target), "INBOX")
    try:
        mx = target.receiver.mx
        assert mx is not None
        started = time.monotonic()
        with smtplib.SMTP(mx.host, mx.port, local_hostname="client.example.com",
                          timeout=TIMEOUT) as smtp:
            smtp.sendmail("someone@example.com", ["bob@example.net"],
                          b"From: someone@example.com\r\nSubject: wake\r\n\r\nwake up\r\n")
        assert idler.seen.wait(WAKE_BOUND + 10), idler.lines
        elapsed = time.monotonic() - started
    finally:
        idler.done()
    assert elapsed < WAKE_BOUND, f"EXISTS came {elapsed:.2f} s after the delivery"


def test_an_append_in_one_worker_wakes_idle_in_the_other(
        served: tuple[Target, IMAPWorkers]) -> None:
    target, workers = served
    first, second = _one_per_worker(target, workers).values()
    first.create("workers-wake")
    idler = _Idler(second, "workers-wake")
    try:
        started = time.monotonic()
        status, data = first.append("workers-wake", None, None,
                                    b"Subject: across\r\n\r\nfrom the other worker\r\n")
        assert status == "OK", data
        assert idler.seen.wait(WAKE_BOUND + 10), idler.lines
        elapsed = time.monotonic() - started
    finally:
        idler.done()
        first.delete("workers-wake")
        first.logout()
    assert elapsed < WAKE_BOUND, f"EXISTS came {elapsed:.2f} s after the APPEND"


def test_appends_from_both_workers_get_distinct_ascending_uids_and_modseqs(
        served: tuple[Target, IMAPWorkers]) -> None:
    target, workers = served
    sessions = list(_one_per_worker(target, workers).values())
    sessions[0].create("workers-race")
    uids: list[list[int]] = [[] for _ in sessions]

    def append(i: int) -> None:
        for n in range(40):
            status, data = sessions[i].append(
                "workers-race", None, None, f"Subject: race {i} {n}\r\n\r\nx\r\n".encode())
            assert status == "OK", data
            found = re.search(rb"APPENDUID \d+ (\d+)", data[0])
            assert found is not None, data
            uids[i].append(int(found[1]))

    threads = [threading.Thread(target=append, args=(i,)) for i in range(len(sessions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        reader = sessions[0]
        reader.select("workers-race")
        status, data = reader.uid("FETCH", "1:*", "(MODSEQ)")
        assert status == "OK", data
    finally:
        reader.close()
        reader.delete("workers-race")
        for session in sessions:
            session.logout()
    every = [uid for each in uids for uid in each]
    assert len(every) == 40 * len(sessions) and len(set(every)) == len(every)
    for each in uids:  # each session's own APPENDs got ascending UIDs
        assert each == sorted(each)
    modseqs = [int(m) for m in re.findall(rb"MODSEQ \((\d+)\)", b" ".join(
        d for d in data if isinstance(d, bytes)))]
    assert len(modseqs) == len(every) and len(set(modseqs)) == len(modseqs), modseqs


def test_a_worker_that_dies_is_replaced(served: tuple[Target, IMAPWorkers]) -> None:
    target, workers = served
    survivors = _one_per_worker(target, workers)
    victim = workers.pids[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (victim in workers.pids
                                           or len(workers.pids) < WORKERS):
        time.sleep(0.1)
    assert victim not in workers.pids and len(workers.pids) == WORKERS, workers.pids
    # The other worker's session never noticed; new connections are served.
    for pid, client in survivors.items():
        if pid != victim:
            assert client.noop()[0] == "OK"
            client.logout()
        else:
            client.shutdown()  # its worker is gone: nothing to log out from
    clients = [_login(target) for _ in range(4)]
    for client in clients:
        assert client.noop()[0] == "OK"
        client.logout()


def test_workers_die_with_the_provider(tmp_path: Path) -> None:
    """A worker asks the kernel to kill it when its parent ends (PR_SET_PDEATHSIG): a
    provider that is killed leaves no worker holding its ports."""
    import subprocess
    import sys
    code = (
        "import time\n"
        "from pathlib import Path\n"
        "from reference_agents.topology import Topology, TopologySettings, TopologyThread\n"
        f"r = TopologyThread(TopologySettings(data_dir=Path({str(tmp_path)!r}), imap_workers=2))\n"
        "r.start()\n"
        "print(*r.topology.providers['example.net'].imap_workers.pids, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.05)
        left = [p for p in pids if Path(f"/proc/{p}/stat").exists()
                and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
        assert not left, f"workers {left} outlived their provider"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        assert parent.stdout is not None
        parent.stdout.close()


def test_tls_context_of_a_worker_trusts_the_topology_ca(
        served: tuple[Target, IMAPWorkers]) -> None:
    target, _ = served
    endpoint = target.receiver.imaps
    assert endpoint is not None and target.ca_file is not None
    context = ssl.create_default_context(cafile=str(target.ca_file))
    with socket.create_connection((endpoint.host, endpoint.port), timeout=TIMEOUT) as raw, \
            context.wrap_socket(raw, server_hostname="mail.example.net") as tls:
        assert tls.recv(512).startswith(b"* OK")
