"""No client can stall the others: one authenticated IMAP client pipelines hundreds of
``FETCH 1:* BODY.PEEK[]`` over a full mailbox and disconnects; meanwhile the MX greets within
a second and another IMAP session's NOOP is answered within a second (`mailharness serve` in a
process of its own, bounded in count and time)."""

from __future__ import annotations

import asyncio
import imaplib
import os
import socket
import ssl
import threading
import time
from pathlib import Path

from benchmarks.imap_fetch import append_batch, connect
from benchmarks.served import ServeProcess
from harness.targets import Target

MESSAGES = 300
FETCHES = 200
#: The bound on a greeting or a NOOP while the abuse goes on.
LATENCY_BOUND = 1.0
SAMPLE_SECONDS = 6.0
#: CPU seconds the server may spend in the last 3 s of the sample, once the abusers have gone
#: (the sampler's greetings and NOOPs cost a few hundredths).
IDLE_CPU_BOUND = 0.5


def _cpu_seconds(pid: int) -> float:
    """utime + stime of process *pid* and its children (the IMAP workers), from /proc, in
    seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                for c in (task / "children").read_text().split()]
    return own + sum(_cpu_seconds(c) for c in children)


def _fill(target: Target) -> None:
    body = ("x" * 998 + "\r\n") * 10  # about 10 kB a message

    async def fill() -> None:
        client = await connect(target)
        try:
            for start in range(0, MESSAGES, 100):
                await append_batch(client, "INBOX", [
                    (i, f"From: a@example.org\r\nSubject: fair {i}\r\n\r\n{body}".encode())
                    for i in range(start, min(start + 100, MESSAGES))])
            await client.logout()
        finally:
            await client.close()

    asyncio.run(fill())


def _abuse(target: Target) -> None:
    """Log in, pipeline the FETCHes, read a little, and go."""
    endpoint = target.receiver.imaps
    assert endpoint is not None
    bob = target.receiver.accounts[0]
    sock = target.client_ssl_context().wrap_socket(
        socket.create_connection((endpoint.host, endpoint.port), timeout=30),
        server_hostname=endpoint.host)
    sock.recv(4096)
    sock.sendall(f"a LOGIN {bob.user} {bob.password}\r\nb SELECT INBOX\r\n".encode())
    sock.sendall(b"".join(b"f%d FETCH 1:* BODY.PEEK[]\r\n" % i for i in range(FETCHES)))
    sock.recv(65536)
    sock.close()


def _sample(target: Target, context: ssl.SSLContext, worst: dict[str, float],
            stop: threading.Event) -> None:
    mx = target.receiver.mx
    imaps = target.receiver.imaps
    assert mx is not None and imaps is not None
    bob = target.receiver.accounts[0]
    imap = imaplib.IMAP4_SSL(imaps.host, imaps.port, ssl_context=context, timeout=30)
    imap.login(bob.user, bob.password)
    try:
        while not stop.is_set():
            started = time.monotonic()
            with socket.create_connection((mx.host, mx.port), timeout=30) as smtp:
                assert smtp.recv(512).startswith(b"220")
            worst["greeting"] = max(worst["greeting"], time.monotonic() - started)
            started = time.monotonic()
            assert imap.noop()[0] == "OK"
            worst["noop"] = max(worst["noop"], time.monotonic() - started)
            time.sleep(0.05)
    finally:
        imap.logout()


def test_one_client_cannot_stall_the_others(tmp_path: Path) -> None:
    served = ServeProcess(tmp_path)
    target = served.start()
    try:
        _fill(target)
        worst = {"greeting": 0.0, "noop": 0.0}
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(target, target.client_ssl_context(),
                                                          worst, stop))
        sampler.start()
        time.sleep(0.5)
        for _ in range(3):  # three abusers, one after the other
            _abuse(target)
        assert served.process is not None
        time.sleep(SAMPLE_SECONDS - 3)
        # The abusers are gone: the commands they left behind are not run for nobody.
        cpu = _cpu_seconds(served.process.pid)
        time.sleep(3)
        idle_cpu = _cpu_seconds(served.process.pid) - cpu
        stop.set()
        sampler.join(60)
        assert not sampler.is_alive()
    finally:
        served.stop()
    assert worst["greeting"] < LATENCY_BOUND and worst["noop"] < LATENCY_BOUND, worst
    assert idle_cpu < IDLE_CPU_BOUND, f"{idle_cpu:.2f} CPU seconds after the abusers left"
