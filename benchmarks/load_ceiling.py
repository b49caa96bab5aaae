"""The load generator's own ceiling on SMTP: how many messages per second one `mailharness load`
process drives when the server costs next to nothing.

    python benchmarks/load_ceiling.py [--seconds 10] [--sessions 1 4 8] [--size 1500]

The server is the harness's own sink (harness/sink.py, aiosmtpd), in a process of its own so
that it does not share the generator's interpreter; it records nothing but a count. The
generator is `mailharness load`'s sender (harness/load/users.py) on the blocking client, without
TLS or AUTH (an MX injector), --sessions threads at once. For each session count: messages per
second, and the generator's CPU per message (user + system of this process). A generator that
uses a whole core at a rate below the server's is its own bottleneck.

The IMAP side (a trivial IMAP responder) is not measured yet.
"""

from __future__ import annotations

import argparse
import random
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.load.ledger import Ledger  # noqa: E402
from harness.load.users import Budget, Sender  # noqa: E402
from harness.targets import Endpoint, ProviderTarget, Target  # noqa: E402

_SINK = """
import asyncio, sys
from aiosmtpd.smtp import SMTP
class Count:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Ok"
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Count(), hostname="sink.mailharness.invalid", decode_data=False),
        "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def _target(port: int) -> Target:
    mx = Endpoint("smtp", "127.0.0.1", port)
    provider = ProviderTarget(domain="example.net", submission=None, submissions=None, mx=mx,
                              imap=None, imaps=None, outbound_port=None, accounts=())
    return Target(name="sink", description="load ceiling", sender=provider, receiver=provider,
                  dns=None, ca_file=None, tls_verify=False, allow_plaintext=True)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(target: Target, sessions: int, seconds: float, size: int) -> tuple[float, float]:
    """(messages per second, generator CPU ms per message) over *seconds*."""
    ledger, stop = Ledger(), threading.Event()
    budget = Budget.of(10**9)
    users = [Sender(target, ledger, stop, account=None, recipients=["bob@example.net"],
                    size=size, budget=budget, rng=random.Random(i), endpoint=target.receiver.mx)
             for i in range(sessions)]
    threads = [threading.Thread(target=u.run, daemon=True) for u in users]
    cpu, started = _cpu(), time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(30)
    elapsed, cpu = time.monotonic() - started, _cpu() - cpu
    sent = ledger.counts()["accepted"]
    if ledger.errors:
        print(f"  errors: {dict(ledger.errors)}")
    return sent / elapsed, 1000 * cpu / max(sent, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--size", type=int, default=1500)
    args = parser.parse_args()
    if args.seconds <= 0 or min(args.sessions) < 1:
        parser.error("--seconds and --sessions must be positive")
    sink = subprocess.Popen([sys.executable, "-c", _SINK], stdout=subprocess.PIPE)
    try:
        assert sink.stdout is not None
        port = int(sink.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
        target = _target(port)
        print(f"{args.size}-octet messages to an aiosmtpd sink in its own process, "
              f"{args.seconds:g} s each")
        for sessions in args.sessions:
            rate, cpu = measure(target, sessions, args.seconds, args.size)
            print(f"  {sessions:3d} sessions: {rate:8.1f} msg/s, generator CPU {cpu:.3f} ms/msg "
                  f"({rate * cpu / 10:.0f} % of a core)")
    finally:
        sink.terminate()
        sink.wait(10)


if __name__ == "__main__":
    main()
