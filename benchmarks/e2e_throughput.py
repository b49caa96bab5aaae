"""End-to-end throughput: N messages submitted to the MSA until all are visible over IMAP,
driven by the harness's own clients and by Python's smtplib + imaplib, in one run.

    python benchmarks/e2e_throughput.py [--messages 1000] [--sessions 8] [--rounds 3]
        [--driver harness|stdlib|both]

Starts the reference agents in a process of their own (`mailharness serve`), then, --rounds
times, runs each driver in turn against them (the order alternating from one round to the next,
so a slow patch of the shared machine does not always fall on the same one). A driver submits
--messages messages of 1.5 kB (benchmarks/compare.py's, the same for both) from
alice@example.org to bob@example.net over --sessions concurrent STARTTLS + AUTH PLAIN
submission sessions, one transaction after the other on each, and waits until bob's INBOX holds
them all, asked by STATUS every 0.1 s on one session over implicit TLS.

- harness: harness.suite.open_submission and SMTPClient.mail/rcpt/data on asyncio tasks,
  with their transcripts; STATUS through IMAPClient;
- stdlib: benchmarks/compare.py's submission workload (smtplib on threads; imaplib).

Neither pipelines. Prints each round's figures, the median of each driver, and the ratio
harness/stdlib: messages per second accepted (250 to the end of data), end to end (from the
first MAIL to the last message visible), and the CPU time the driver's process spent per
message (the machine's cores are shared with the agents, so a costly driver slows them too)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.compare import _message  # noqa: E402
from benchmarks.compare import submission as stdlib_submission  # noqa: E402
from benchmarks.served import served_topology  # noqa: E402
from harness.clients.imap import IMAPClient  # noqa: E402
from harness.protocol.imap.response_values import Status  # noqa: E402
from harness.suite import Evidence, open_submission  # noqa: E402
from harness.targets import Target  # noqa: E402

DRIVERS = ("harness", "stdlib")
#: How long a run may take before the messages not yet visible make it fail.
VISIBLE_TIMEOUT = 600.0
POLL_INTERVAL = 0.1


async def _submit_batch(target: Target, indexes: range, run: str, evidence: Evidence) -> None:
    alice = target.sender.accounts[0]
    bob = target.receiver.accounts[0]
    client = await open_submission(target, evidence)
    try:
        for i in indexes:
            await client.mail(alice.address)
            await client.rcpt(bob.address)
            reply = await client.data(_message(i, run))
            if reply.code != 250:
                raise RuntimeError(f"message {i}: the end of data answered {reply.code}")
        await client.quit()
    finally:
        await client.close()


async def _watcher(target: Target) -> IMAPClient:
    endpoint = target.receiver.imaps
    if endpoint is None:
        raise RuntimeError("the target has no IMAPS endpoint")
    bob = target.receiver.accounts[0]
    client = await IMAPClient.connect(endpoint.host, endpoint.port, implicit_tls=True,
                                      ssl_context=target.client_ssl_context())
    try:
        login = await client.login(bob.user, bob.password)
        if not login.ok:
            raise RuntimeError(f"LOGIN {bob.user} answered {login.status}")
    except BaseException:
        await client.close()
        raise
    return client


async def _inbox_count(client: IMAPClient) -> int:
    result = await client.command("STATUS INBOX (MESSAGES)")
    found = [r.items.get("MESSAGES") for r in result.untagged if isinstance(r, Status)]
    if not result.ok or not found or not isinstance(found[0], int):
        raise RuntimeError(f"STATUS INBOX answered {result.status} {result.untagged!r}")
    return found[0]


async def harness_submission(target: Target, messages: int, sessions: int) -> dict[str, float]:
    """The harness driver: seconds until every message was accepted, and until visible."""
    run = uuid.uuid4().hex[:8]
    evidence = Evidence()
    watcher = await _watcher(target)
    try:
        before = await _inbox_count(watcher)
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for k in range(sessions):
                group.create_task(_submit_batch(target, range(k, messages, sessions), run, evidence))
        accepted = time.perf_counter() - started
        while await _inbox_count(watcher) < before + messages:
            if time.perf_counter() - started > VISIBLE_TIMEOUT:
                raise TimeoutError(f"the messages were not all visible within {VISIBLE_TIMEOUT:g} s")
            await asyncio.sleep(POLL_INTERVAL)
        visible = time.perf_counter() - started
        await watcher.logout()
    finally:
        await watcher.close()
    # The transcripts are kept whole, as for any test: every session's bytes are there.
    if len(evidence.transcripts) != sessions or not all(t.sent() for t in evidence.transcripts):
        raise RuntimeError("a submission session left no transcript")
    return {"accepted_seconds": accepted, "visible_seconds": visible}


def measure(target: Target, driver: str, messages: int, sessions: int) -> dict[str, float]:
    """One run of *driver*, with the CPU time this process (the driver alone: the agents run
    in `mailharness serve`) spent on it."""
    cpu = time.process_time()
    if driver == "harness":
        figures = asyncio.run(harness_submission(target, messages, sessions))
    else:
        figures = stdlib_submission(target, messages, sessions)
    return {**figures, "cpu_seconds": time.process_time() - cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--driver", choices=(*DRIVERS, "both"), default="both")
    args = parser.parse_args()
    if min(args.messages, args.sessions, args.rounds) < 1:
        parser.error("counts must be at least 1")
    drivers = list(DRIVERS) if args.driver == "both" else [args.driver]
    got: dict[str, list[dict[str, float]]] = {d: [] for d in drivers}
    print(f"{args.messages} messages of 1.5 kB over {args.sessions} STARTTLS + AUTH PLAIN "
          f"submission sessions, {args.rounds} round(s)", flush=True)
    with served_topology() as target:
        for n in range(args.rounds):
            for driver in drivers if n % 2 == 0 else drivers[::-1]:
                figures = measure(target, driver, args.messages, args.sessions)
                got[driver].append(figures)
                print(f"  round {n + 1} {driver:7}: accepted {args.messages / figures['accepted_seconds']:6.1f} "
                      f"msg/s, end to end {args.messages / figures['visible_seconds']:6.1f} msg/s, "
                      f"driver CPU {1000 * figures['cpu_seconds'] / args.messages:.2f} ms/msg",
                      flush=True)
    for key, label in (("accepted_seconds", "accepted (250 to the end of data)"),
                       ("visible_seconds", "end to end (submitted to visible over IMAP)")):
        rates = {d: args.messages / statistics.median(f[key] for f in figures)
                 for d, figures in got.items()}
        line = f"{label}: " + "; ".join(f"{d} {rate:.1f} msg/s" for d, rate in rates.items())
        if len(rates) == 2:
            line += f"; ratio harness/stdlib {rates['harness'] / rates['stdlib']:.2f}"
        print(line, flush=True)
    cpu = {d: 1000 * statistics.median(f["cpu_seconds"] for f in figures) / args.messages
           for d, figures in got.items()}
    line = "driver CPU: " + "; ".join(f"{d} {ms:.2f} ms/msg" for d, ms in cpu.items())
    if len(cpu) == 2:
        line += f"; ratio harness/stdlib {cpu['harness'] / cpu['stdlib']:.2f} (lower is better)"
    print(line, flush=True)


if __name__ == "__main__":
    main()
