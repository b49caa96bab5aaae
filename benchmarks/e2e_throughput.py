"""End-to-end throughput: N messages submitted to the MSA until all are visible over IMAP.

    python benchmarks/e2e_throughput.py [--messages 1000] [--sessions 8]

Starts the reference agents in a process of their own (`mailharness serve`), submits the
messages from alice@example.org to bob@example.net over STARTTLS + AUTH on concurrent sessions,
and waits until bob's INBOX holds all of them (IMAP SELECT over TLS). Prints messages/second."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.served import served_topology  # noqa: E402
from harness.clients.imap import IMAPClient  # noqa: E402
from harness.suite import Evidence, make_message, open_submission  # noqa: E402
from harness.targets import Target  # noqa: E402


async def _submit_batch(target: Target, indexes: list[int], run_id: str) -> None:
    sender = target.sender.accounts[0]
    rcpt = target.receiver.accounts[0]
    client = await open_submission(target, Evidence())
    try:
        for i in indexes:
            message = make_message(sender=sender.address, recipient=rcpt.address,
                                   subject=f"bench {i}", body=f"message {i}\r\n" * 20,
                                   mark=f"{run_id}-{i}")
            await client.mail(sender.address)
            await client.rcpt(rcpt.address)
            reply = await client.data(message)
            if reply.code != 250:
                raise RuntimeError(f"message {i}: DATA answered {reply.code}")
        await client.quit()
    finally:
        await client.close()


async def _count_inbox(target: Target) -> int:
    endpoint = target.receiver.imaps
    assert endpoint is not None
    acct = target.receiver.accounts[0]
    client = await IMAPClient.connect(endpoint.host, endpoint.port, implicit_tls=True,
                                      ssl_context=target.client_ssl_context())
    try:
        await client.login(acct.user, acct.password)
        selected = await client.select("INBOX", readonly=True)
        await client.logout()
        return selected.exists
    finally:
        await client.close()


async def main(messages: int, sessions: int) -> None:
    with served_topology() as target:
        before = await _count_inbox(target)
        batches = [list(range(s, messages, sessions)) for s in range(sessions)]
        start = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for batch in batches:
                group.create_task(_submit_batch(target, batch, "bench"))
        submitted = time.perf_counter()
        while (count := await _count_inbox(target)) - before < messages:
            if time.perf_counter() - start > 600:
                raise TimeoutError(f"only {count - before} of {messages} arrived in 600 s")
            await asyncio.sleep(0.05)
        done = time.perf_counter()
    print(f"messages:            {messages} ({sessions} submission sessions)")
    print(f"submission:          {submitted - start:.2f} s ({messages / (submitted - start):.1f} msg/s accepted by the MSA)")
    print(f"end to end:          {done - start:.2f} s")
    print(f"throughput:          {messages / (done - start):.1f} messages/second (submitted → visible over IMAP)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.sessions))
