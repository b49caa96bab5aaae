"""IMAP under concurrent load: S sessions doing SELECT / FETCH / STORE for a fixed time.

    python benchmarks/imap_sessions.py [--sessions 50] [--seconds 20] [--messages 200]

Starts the reference agents in a process of their own (`mailharness serve`), fills one mailbox of
bob@example.net with a few hundred small messages, then opens S sessions over implicit TLS, each
logged in, and runs them all at once for the given time: each session loops SELECT, a FETCH of a
few random messages (FLAGS UID RFC822.SIZE BODY.PEEK[]), and a STORE +FLAGS or -FLAGS (\\Flagged)
on one. Every command is timed from sending to its tagged completion (the harness's own client,
strict parser and transcript included). Prints commands per second and p50/p99 latency, overall
and per command. The run is bounded: no new command starts after the deadline, and each command
has a timeout."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.served import served_topology  # noqa: E402
from harness.clients.imap import IMAPClient  # noqa: E402
from harness.clients.transcript import Transcript  # noqa: E402
from harness.protocol.imap.responses import Tagged  # noqa: E402
from harness.targets import Target  # noqa: E402

COMMAND_TIMEOUT = 30.0


async def connect(target: Target) -> IMAPClient:
    endpoint = target.receiver.imaps
    assert endpoint is not None
    account = target.receiver.accounts[0]
    client = await IMAPClient.connect(endpoint.host, endpoint.port, implicit_tls=True,
                                      ssl_context=target.client_ssl_context(),
                                      timeout=COMMAND_TIMEOUT, transcript=Transcript("bench"))
    result = await client.login(account.user, account.password)
    if not result.ok:
        raise RuntimeError(f"LOGIN answered {result.status}")
    return client


async def fill(client: IMAPClient, mailbox: str, messages: int) -> None:
    """APPEND *messages* small messages, pipelined with LITERAL+ (RFC 7888)."""
    wire = b"".join(
        b"F%d APPEND %s {%d+}\r\n%s\r\n" % (i, mailbox.encode(), len(m), m)
        for i, m in (
            (i, (f"From: bench@example.com\r\nTo: bob@example.net\r\nSubject: load {i}\r\n\r\n"
                 + f"Message {i} of the session benchmark.\r\n" * 10).encode("ascii"))
            for i in range(messages)
        )
    )
    await client.send_raw(wire)
    done = 0
    while done < messages:
        response = await client.read_response()
        if isinstance(response, Tagged):
            if not response.ok:
                raise RuntimeError(f"APPEND answered {response.status}")
            done += 1


async def session(target: Target, mailbox: str, exists: int, seconds: float, seed: int,
                  latencies: dict[str, list[float]], ready: asyncio.Barrier) -> None:
    rng = random.Random(seed)
    client = await connect(target)
    try:
        await ready.wait()  # every session is logged in: start together
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            for name in ("SELECT", "FETCH", "STORE"):
                if loop.time() >= deadline:
                    break
                started = time.perf_counter()
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    if name == "SELECT":
                        selected = await client.select(mailbox)
                        ok = selected.result.ok
                    elif name == "FETCH":
                        first = rng.randrange(1, exists - 2)
                        result, _ = await client.fetch(
                            f"{first}:{first + 2}", "(FLAGS UID RFC822.SIZE BODY.PEEK[])")
                        ok = result.ok
                    else:
                        result = await client.store(str(rng.randrange(1, exists + 1)),
                                                    rng.choice("+-"), ["\\Flagged"])
                        ok = result.ok
                took = time.perf_counter() - started
                if not ok:
                    raise RuntimeError(f"{name} failed")
                latencies[name].append(took)
        await client.logout()
    finally:
        await client.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main(sessions: int, seconds: float, messages: int) -> None:
    with served_topology() as target:
        mailbox = f"load-{uuid.uuid4().hex[:8]}"
        admin = await connect(target)
        try:
            assert (await admin.command(f"CREATE {mailbox}")).ok
            await fill(admin, mailbox, messages)
            await admin.logout()
        finally:
            await admin.close()
        latencies: dict[str, list[float]] = {"SELECT": [], "FETCH": [], "STORE": []}
        ready = asyncio.Barrier(sessions + 1)
        async with asyncio.timeout(seconds + 120), asyncio.TaskGroup() as group:
            for k in range(sessions):
                group.create_task(session(target, mailbox, messages, seconds, k, latencies, ready))
            await ready.wait()
            started = time.perf_counter()
        elapsed = time.perf_counter() - started
        every = [x for values in latencies.values() for x in values]
        print(f"{sessions} sessions, SELECT/FETCH/STORE for {seconds:.0f} s on a mailbox of "
              f"{messages} messages: {len(every)} commands in {elapsed:.1f} s = "
              f"{len(every) / elapsed:,.0f} commands/s; latency p50 "
              f"{percentile(every, 0.5) * 1000:.1f} ms, p99 {percentile(every, 0.99) * 1000:.1f} ms")
        for name, values in latencies.items():
            print(f"  {name:6} {len(values):6} commands, p50 {percentile(values, 0.5) * 1000:6.1f} ms, "
                  f"p99 {percentile(values, 0.99) * 1000:6.1f} ms, "
                  f"mean {statistics.fmean(values) * 1000:6.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.seconds, args.messages))
