"""IMAP FETCH throughput: UID FETCH 1:* (FLAGS UID RFC822.SIZE BODY.PEEK[]) of N small messages.

    python benchmarks/imap_fetch.py [--messages 10000] [--fill-sessions 8] [--repeat 3]

Starts the reference agents in a process of their own (`mailharness serve`), fills one fresh mailbox of
bob@example.net with N small messages, then times the FETCH over implicit TLS with the harness's
own client (strict parser and transcript included) and prints messages per second.

The fill goes through the IMAP server itself, as any client would: APPEND with LITERAL+
(RFC 7888) non-synchronising literals, pipelined in batches on several sessions. Every APPEND is
durable (fsync of the message and the directory, committed index row), so the fill is the slow
part; its rate is printed too."""

from __future__ import annotations

import argparse
import asyncio
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

BATCH = 100


def small_message(i: int, run: str) -> bytes:
    return (
        f"From: bench@example.com\r\nTo: bob@example.net\r\nSubject: fetch bench {i}\r\n"
        f"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <{run}.{i}@bench.invalid>\r\n\r\n"
        + f"Small message number {i}.\r\n" * 8
    ).encode("ascii")


async def connect(target: Target) -> IMAPClient:
    endpoint = target.receiver.imaps
    assert endpoint is not None
    account = target.receiver.accounts[0]
    client = await IMAPClient.connect(endpoint.host, endpoint.port, implicit_tls=True,
                                      ssl_context=target.client_ssl_context(), timeout=120.0,
                                      transcript=Transcript("bench"))
    result = await client.login(account.user, account.password)
    if not result.ok:
        raise RuntimeError(f"LOGIN answered {result.status}")
    return client


async def append_batch(client: IMAPClient, mailbox: str, batch: list[tuple[int, bytes]]) -> None:
    """APPEND each (number, message) of *batch* with LITERAL+, all in flight at once, and
    wait for every tagged OK."""
    await client.send_raw(b"".join(
        b"F%d APPEND %s {%d+}\r\n%s\r\n" % (i, mailbox.encode(), len(m), m) for i, m in batch))
    done = 0
    while done < len(batch):
        response = await client.read_response()
        if isinstance(response, Tagged):
            if not response.ok:
                raise RuntimeError(f"APPEND {response.tag} answered {response.status}")
            done += 1


async def fill(target: Target, mailbox: str, indexes: list[int], run: str) -> None:
    """APPEND the messages *indexes* with LITERAL+, BATCH commands in flight at a time."""
    client = await connect(target)
    try:
        if "LITERAL+" not in client.capabilities:
            raise RuntimeError("the server does not offer LITERAL+")
        for start in range(0, len(indexes), BATCH):
            await append_batch(client, mailbox, [(i, small_message(i, run))
                                                 for i in indexes[start : start + BATCH]])
        await client.logout()
    finally:
        await client.close()


async def main(messages: int, fill_sessions: int, repeat: int) -> None:
    with served_topology() as target:
        run = uuid.uuid4().hex[:8]
        mailbox = f"bench-{run}"
        client = await connect(target)
        try:
            created = await client.command(f"CREATE {mailbox}")
            assert created.ok, created
            started = time.perf_counter()
            shares = [list(range(k, messages, fill_sessions)) for k in range(fill_sessions)]
            async with asyncio.TaskGroup() as group:
                for share in shares:
                    group.create_task(fill(target, mailbox, share, run))
            filled = time.perf_counter() - started
            print(f"fill: {messages} APPENDs (LITERAL+, pipelined, {fill_sessions} sessions) "
                  f"in {filled:.1f} s = {messages / filled:,.0f} messages/s")
            selected = await client.select(mailbox, readonly=True)
            assert selected.exists == messages, f"{selected.exists} messages, not {messages}"
            for attempt in range(1, repeat + 1):
                started = time.perf_counter()
                result, found = await client.fetch("1:*", "(FLAGS UID RFC822.SIZE BODY.PEEK[])",
                                                   uid=True)
                took = time.perf_counter() - started
                assert result.ok and len(found) == messages, (result.status, len(found))
                octets = sum(len(v["BODY[]"]) for v in found.values()  # type: ignore[arg-type]
                             if isinstance(v.get("BODY[]"), bytes))
                print(f"UID FETCH 1:* (FLAGS UID RFC822.SIZE BODY.PEEK[]) #{attempt}: "
                      f"{messages} messages, {octets / 1e6:.1f} MB in {took:.2f} s = "
                      f"{messages / took:,.0f} messages/s")
            await client.logout()
        finally:
            await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--fill-sessions", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.fill_sessions, args.repeat))
