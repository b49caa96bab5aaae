"""FETCH 1:* (BODYSTRUCTURE) over 10,000 messages of the structure corpus: the reference IMAP
server beside Dovecot, in one run, with one driver.

    python benchmarks/fetch_bodystructure.py [--messages 10000] [--rounds 5] [--no-dovecot]

Two workers, each a process of this script, fill one fresh mailbox of their server with the
corpus messages of suites/imap/corpus (those a plain literal can carry: the NUL and the
may-refuse ones are left out), cycled to --messages, through the server itself (APPEND with
LITERAL+, pipelined). Then the driver asks them in turn, one round each, to time
``FETCH 1:* (BODYSTRUCTURE)`` over implicit TLS with the harness's own client (strict parser
included; every response is checked to hold a BODYSTRUCTURE). Alternating the rounds spreads
the noise of a shared machine over both servers alike.

- The reference agents run as ``mailharness serve`` in a process of their own, on this host.
- Dovecot (Debian's package, the configuration of servers/) runs in the network namespace of
  ``servers/netns.sh``, started and stopped by ``servers/run_independent.py`` as in
  ``.ci/independent``; this needs root and the packages that script installs. Without them, or
  with --no-dovecot, only the reference server is measured and no ratio is printed. The run
  holds /tmp/mailharness-independent.lock while the namespace exists, so it never overlaps
  another user of it.

Round 1 is reported apart: it is the first time each server computes the structures (Dovecot
keeps them in its index cache after that). The figure is the median of the later rounds, in
messages per second, and the ratio reference/Dovecot.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.beside import (  # noqa: E402
    Worker,
    independent_missing,
    independent_servers,
    reply,
    requests,
    start_worker,
)
from benchmarks.imap_fetch import append_batch, connect  # noqa: E402
from benchmarks.served import served_topology  # noqa: E402
from harness.clients.imap import IMAPClient  # noqa: E402
from harness.targets import Target, load_target  # noqa: E402
from suites.imap.corpus import cases  # noqa: E402

BATCH = 100


def corpus_messages() -> list[tuple[str, bytes]]:
    """(name, bytes) of the corpus messages any server takes in a plain literal."""
    chosen = [(c.name, c.data) for c in cases()
              if c.expected.get("append") not in ("literal8", "may-refuse")]
    if not chosen:
        raise RuntimeError("suites/imap/corpus holds no message for a plain APPEND")
    return chosen


# -- the worker: one server, one mailbox, timed FETCHes on request -----------------------------


async def fill(client: IMAPClient, mailbox: str, messages: int) -> None:
    """APPEND *messages* corpus messages with LITERAL+, BATCH commands in flight at a time."""
    if "LITERAL+" not in client.capabilities:
        raise RuntimeError("the server does not offer LITERAL+")
    corpus = [data for _, data in corpus_messages()]
    for start in range(0, messages, BATCH):
        await append_batch(client, mailbox, [(i, corpus[i % len(corpus)])
                                             for i in range(start, min(start + BATCH, messages))])


async def timed_fetch(client: IMAPClient, messages: int) -> float:
    started = time.perf_counter()
    result, found = await client.fetch("1:*", "(BODYSTRUCTURE)")
    took = time.perf_counter() - started
    if not result.ok or len(found) != messages:
        raise RuntimeError(f"FETCH answered {result.status} with {len(found)} of {messages}")
    if not all(isinstance(v.get("BODYSTRUCTURE"), tuple) for v in found.values()):
        raise RuntimeError("a FETCH response holds no BODYSTRUCTURE")
    return took


async def serve_requests(target: Target, messages: int) -> None:
    """Fill, say ``ready``, then answer each ``fetch`` line on stdin with the seconds taken."""
    mailbox = f"bench-structure-{uuid.uuid4().hex[:8]}"
    client = await connect(target)
    try:
        created = await client.command(f"CREATE {mailbox}")
        if not created.ok:
            raise RuntimeError(f"CREATE answered {created.status}")
        started = time.perf_counter()
        await fill(client, mailbox, messages)
        filled = time.perf_counter() - started
        selected = await client.select(mailbox, readonly=True)
        if selected.exists != messages:
            raise RuntimeError(f"{selected.exists} messages after the fill, not {messages}")
        reply({"ready": True, "fill_seconds": filled})
        loop = asyncio.get_running_loop()
        pending = requests()
        while await loop.run_in_executor(None, next, pending, None) is not None:
            reply({"seconds": await timed_fetch(client, messages)})
        await client.command("CLOSE")
        await client.command(f"DELETE {mailbox}")
        await client.logout()
    finally:
        await client.close()


def worker(target_file: str | None, messages: int) -> None:
    if target_file:
        asyncio.run(serve_requests(load_target(Path(target_file)), messages))
    else:
        with served_topology() as target:
            asyncio.run(serve_requests(target, messages))


# -- the driver ---------------------------------------------------------------------------------


def start(label: str, messages: int, target_file: Path | None = None) -> Worker:
    worker, ready = start_worker(label, Path(__file__).resolve(), ["--messages", str(messages)],
                                 target_file=target_file)
    print(f"{label}: filled {messages} messages in {ready['fill_seconds']:.1f} s", flush=True)
    return worker


def drive(workers: list[Worker], messages: int, rounds: int) -> None:
    taken: dict[str, list[float]] = {w.label: [] for w in workers}
    for n in range(1, rounds + 1):
        for w in workers:
            took = float(w.ask({"fetch": True})["seconds"])
            taken[w.label].append(took)
            print(f"round {n} {w.label}: {took:.2f} s = {messages / took:,.0f} messages/s",
                  flush=True)
    rates: dict[str, float] = {}
    for label, seconds in taken.items():
        rates[label] = messages / statistics.median(seconds[1:] or seconds)
        print(f"{label}: round 1 {messages / seconds[0]:,.0f} messages/s; median of rounds "
              f"2-{len(seconds)} {rates[label]:,.0f} messages/s")
    if len(rates) == 2:
        first = taken["dovecot"][0] / taken["reference"][0]
        print(f"ratio reference/dovecot: {rates['reference'] / rates['dovecot']:.2f} "
              f"(round 1: {first:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=("compare", "worker"), default="compare")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-dovecot", action="store_true", help="measure the reference only")
    parser.add_argument("--target", help="worker: the target file (default: mailharness serve)")
    args = parser.parse_args()
    if args.messages < 1 or args.rounds < 1:
        parser.error("--messages and --rounds must be at least 1")
    if args.mode == "worker":
        worker(args.target, args.messages)
        return
    names = [n for n, _ in corpus_messages()]
    print(f"corpus: {len(names)} messages ({', '.join(names)}), cycled to {args.messages}")
    missing = "--no-dovecot" if args.no_dovecot else independent_missing()
    workers: list[Worker] = []
    try:
        workers.append(start("reference", args.messages))
        if missing:
            print(f"dovecot: not measured ({missing})")
            drive(workers, args.messages, args.rounds)
            return
        with independent_servers() as target_file:
            workers.append(start("dovecot", args.messages, target_file))
            try:
                drive(workers, args.messages, args.rounds)
            finally:
                workers.pop().finish()
    finally:
        for w in workers:
            w.finish()


if __name__ == "__main__":
    main()
