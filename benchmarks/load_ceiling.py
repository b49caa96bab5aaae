"""The load generator's own ceiling: how many messages per second, and IMAP commands per second,
one `mailharness load` process drives when the server costs next to nothing.

    python benchmarks/load_ceiling.py [--smtp] [--imap] [--seconds 10] [--sessions 1 4 8]
        [--size 1500] [--imap-sessions 1 4 16] [--imap-driver client reader]
        [--imap-messages 3] [--json PATH]

Without --smtp or --imap, both run. Each server is in a process of its own, so that it does not
share the generator's interpreter; for each session count the figures are over --seconds, and
the generator's CPU is user + system of this process (the server's, from /proc, is printed
beside it). A generator that uses a whole core at a rate below the server's is its own
bottleneck.

- SMTP: the server is the harness's own sink (harness/sink.py, aiosmtpd); it records nothing but
  a count. The generator is `mailharness load`'s sender (harness/load/users.py) on the blocking
  client, without TLS or AUTH (an MX injector), --sessions threads at once: messages per second
  and generator CPU per message.
- IMAP: the server is a trivial responder (`--serve-imap`, below) that answers every command at
  once from canned responses: LOGIN, CAPABILITY, SELECT (EXISTS, UIDVALIDITY 1, UIDNEXT), NOOP,
  FETCH, UID FETCH of ``n:*`` (the messages at or above n, else the last one, as RFC 9051
  §6.4.8 has it) with --imap-messages fixed messages of --size octets, STORE, SEARCH and LOGOUT.
  The generator is --imap-sessions threads, each one `BlockingIMAP` session, for each driver:

  - ``client``: the blocking client alone, logged in and selected before the clock starts, in a
    loop of ``UID FETCH n:* (UID FLAGS BODY.PEEK[])`` (n above the highest UID read),
    ``NOOP``, ``FETCH 1:* (UID FLAGS)`` and ``UID STORE 1 +FLAGS ($Load0)``;
  - ``reader``: `mailharness load`'s reader (harness/load/users.py) without IDLE and with no
    pause between polls, so every command also goes through the session's view checks and
    the ledger; its session's LOGIN, SELECT and FETCH 1:* are inside the clock.

  Commands per second (completed, tagged OK) and generator CPU per command.

--json PATH writes every figure (see `main`) for a later comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.clients.blocking import BlockingClientError, BlockingIMAP  # noqa: E402
from harness.load.ledger import Ledger  # noqa: E402
from harness.load.messages import make_message  # noqa: E402
from harness.load.users import Budget, Reader, Sender  # noqa: E402
from harness.protocol.imap.response_values import Fetch  # noqa: E402
from harness.targets import Account, Endpoint, ProviderTarget, Target  # noqa: E402

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

#: The account the IMAP generator logs in as (the responder takes any).
IMAP_ACCOUNT = Account(user="bob", password="bob-password", address="bob@example.net")


def _target(*, mx: Endpoint | None = None, imap: Endpoint | None = None) -> Target:
    provider = ProviderTarget(domain="example.net", submission=None, submissions=None, mx=mx,
                              imap=imap, imaps=None, outbound_port=None,
                              accounts=(IMAP_ACCOUNT,))
    return Target(name="sink", description="load ceiling", sender=provider, receiver=provider,
                  dns=None, ca_file=None, tls_verify=False, allow_plaintext=True)


def own_cpu() -> float:
    """Seconds of CPU (user + system) this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float | None:
    """Seconds of CPU (user + system) process *pid* has used, from /proc; None without it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree_cpu(pid: int) -> float | None:
    """Seconds of CPU process *pid* and its living descendants have used (an agent's IMAP
    workers and delivery process), from /proc; None without it."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text()
                                               .rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grew = {pid}, True
    while grew:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    own = process_cpu(pid)
    return None if own is None else own + sum(process_cpu(p) or 0.0 for p in tree - {pid})


class _Server:
    """A server process started by this benchmark: its port, and its CPU since `mark`."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the server did not start: {line!r}")
        self.port = int(line)
        with socket.create_connection(("127.0.0.1", self.port), timeout=10):
            pass
        self._mark: float | None = None

    def mark(self) -> None:
        self._mark = process_cpu(self.process.pid)

    def cpu_since_mark(self) -> float | None:
        now = process_cpu(self.process.pid)
        return None if now is None or self._mark is None else now - self._mark

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _figures(count: int, elapsed: float, cpu: float, server_cpu: float | None,
             unit: str) -> dict[str, Any]:
    per_second = count / elapsed
    per_item = 1000 * cpu / max(count, 1)
    return {unit: count, "seconds": round(elapsed, 3), f"{unit}_per_second": round(per_second, 1),
            f"generator_cpu_ms_per_{unit[:-1]}": round(per_item, 4),
            "generator_core_percent": round(100 * cpu / elapsed, 1),
            "server_core_percent": (None if server_cpu is None
                                    else round(100 * server_cpu / elapsed, 1))}


def _server_note(figures: dict[str, Any], what: str) -> str:
    share = figures["server_core_percent"]
    return "" if share is None else f"; {what} {share:.0f} % of a core"


# -- SMTP ---------------------------------------------------------------------------------------


def measure_smtp(target: Target, sessions: int, seconds: float, size: int,
                 server: _Server | None = None) -> dict[str, Any]:
    """*sessions* MX injectors for *seconds*: the figures of `_figures`, and the errors."""
    ledger, stop = Ledger(), threading.Event()
    budget = Budget.of(10**9)
    users = [Sender(target, ledger, stop, account=None, recipients=["bob@example.net"],
                    size=size, budget=budget, rng=random.Random(i), endpoint=target.receiver.mx)
             for i in range(sessions)]
    threads = [threading.Thread(target=u.run, daemon=True) for u in users]
    if server is not None:
        server.mark()
    cpu, started = own_cpu(), time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(30)
    elapsed, cpu = time.monotonic() - started, own_cpu() - cpu
    server_cpu = server.cpu_since_mark() if server is not None else None
    figures = _figures(ledger.counts()["accepted"], elapsed, cpu, server_cpu, "messages")
    figures["errors"] = dict(ledger.errors)
    return {"sessions": sessions, **figures}


def run_smtp(args: argparse.Namespace) -> list[dict[str, Any]]:
    sink = _Server([sys.executable, "-c", _SINK])
    results = []
    try:
        target = _target(mx=Endpoint("smtp", "127.0.0.1", sink.port))
        print(f"SMTP: {args.size}-octet messages to an aiosmtpd sink in its own process, "
              f"{args.seconds:g} s each", flush=True)
        for sessions in args.sessions:
            figures = measure_smtp(target, sessions, args.seconds, args.size, sink)
            if figures["errors"]:
                print(f"  errors: {figures['errors']}")
            rate, cpu = figures["messages_per_second"], figures["generator_cpu_ms_per_message"]
            print(f"  {sessions:3d} sessions: {rate:8.1f} msg/s, generator CPU {cpu:.3f} ms/msg "
                  f"({rate * cpu / 10:.0f} % of a core{_server_note(figures, 'sink')})",
                  flush=True)
            results.append(figures)
    finally:
        sink.stop()
    return results


# -- IMAP: the trivial responder ----------------------------------------------------------------

_LITERAL = re.compile(rb"\{(\d+)(\+?)\}$")
_CAPABILITIES = b"IMAP4rev1 LITERAL+ UIDPLUS MOVE"


class _Canned:
    """Every response the responder sends, made once: a mailbox of *messages* fixed messages."""

    def __init__(self, messages: int, size: int) -> None:
        bodies = [make_message(f"ceiling{uid}", "load@example.com", IMAP_ACCOUNT.address, size,
                               random.Random(uid)) for uid in range(1, messages + 1)]
        self.count = messages
        self.with_body = [b"* %d FETCH (UID %d FLAGS () BODY[] {%d}\r\n%s)\r\n"
                          % (uid, uid, len(body), body) for uid, body in enumerate(bodies, 1)]
        self.flags_only = [b"* %d FETCH (UID %d FLAGS ())\r\n" % (uid, uid)
                           for uid in range(1, messages + 1)]
        self.select = (b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                       b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"
                       b" flags\r\n* %d EXISTS\r\n* OK [UIDVALIDITY 1] UIDs valid\r\n"
                       b"* OK [UIDNEXT %d] predicted next UID\r\n" % (messages, messages + 1))
        self.search = b"* SEARCH" + b"".join(b" %d" % n for n in range(1, messages + 1)) + b"\r\n"

    def uid_fetch(self, numbers: bytes, body: bool) -> bytes:
        """``UID FETCH`` of ``n``, ``a:b`` or ``n:*`` (UID i is message i): the messages named;
        ``n:*`` names the last one when n is above it."""
        first, colon, last = numbers.partition(b":")
        low = int(first) if first.isdigit() else self.count
        if not colon:
            high = low
        elif last == b"*":
            low, high = min(low, self.count), self.count
        else:
            high = int(last) if last.isdigit() else low
            low, high = min(low, high), max(low, high)
        canned = self.with_body if body else self.flags_only
        return b"".join(canned[uid - 1] for uid in range(max(low, 1), min(high, self.count) + 1))

    def answer(self, tag: bytes, words: list[bytes], line: bytes) -> tuple[bytes, bool]:
        """The responses to one command, and whether the connection closes after them."""
        name = words[1].upper() if len(words) > 1 else b""
        if name == b"UID" and len(words) > 2:
            name = b"UID " + words[2].upper()
        if name in (b"LOGIN", b"NOOP", b"CHECK", b"CREATE", b"EXPUNGE", b"UID EXPUNGE"):
            return b"%s OK %s completed\r\n" % (tag, name), False
        if name == b"CAPABILITY":
            return b"* CAPABILITY %s\r\n%s OK CAPABILITY completed\r\n" % (_CAPABILITIES, tag), False
        if name in (b"SELECT", b"EXAMINE"):
            return self.select + b"%s OK [READ-WRITE] %s completed\r\n" % (tag, name), False
        if name == b"UID FETCH" and len(words) > 3:
            fetched = self.uid_fetch(words[3], b"BODY" in line.upper())
            return fetched + b"%s OK UID FETCH completed\r\n" % tag, False
        if name == b"FETCH":
            return b"".join(self.flags_only) + b"%s OK FETCH completed\r\n" % tag, False
        if name in (b"STORE", b"UID STORE"):
            return (b"* 1 FETCH (UID 1 FLAGS ($Load0))\r\n%s OK %s completed\r\n"
                    % (tag, name)), False
        if name in (b"SEARCH", b"UID SEARCH"):
            return self.search + b"%s OK SEARCH completed\r\n" % tag, False
        if name == b"LOGOUT":
            return b"* BYE logging out\r\n%s OK LOGOUT completed\r\n" % tag, True
        return b"%s BAD command unknown here\r\n" % tag, False


class _Responder(asyncio.Protocol):
    """One connection: lines in, canned responses out, at once. A literal is skipped (with a
    continuation request unless it is LITERAL+); the command is the line it began."""

    def __init__(self, canned: _Canned) -> None:
        self.canned = canned
        self.buffer = b""
        self.skip = 0
        self.pending = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"* OK [CAPABILITY %s] trivial responder ready\r\n" % _CAPABILITIES)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        out: list[bytes] = []
        while True:
            if self.skip:
                taken = min(self.skip, len(self.buffer))
                self.buffer, self.skip = self.buffer[taken:], self.skip - taken
                if self.skip:
                    break
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end], self.buffer[end + 2:]
            literal = _LITERAL.search(line)
            if literal is not None:
                self.pending = self.pending or line
                self.skip = int(literal[1])
                if not literal[2]:
                    out.append(b"+ go ahead\r\n")
                continue
            line, self.pending = self.pending or line, b""
            words = line.split()
            if not words:
                continue
            answer, close = self.canned.answer(words[0], words, line)
            out.append(answer)
            if close:
                self.transport.write(b"".join(out))
                self.transport.close()
                return
        if out:
            self.transport.write(b"".join(out))


def serve_imap(messages: int, size: int) -> None:
    """The trivial IMAP responder on a free port of 127.0.0.1, until killed; prints the port."""
    canned = _Canned(messages, size)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Responder(canned), "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# -- IMAP: the generator ------------------------------------------------------------------------


def _client_session(port: int, ready: threading.Barrier, stop: threading.Event,
                    counts: list[int], index: int, errors: list[str]) -> None:
    """The ``client`` driver's session: open, then the loop of commands until *stop*."""
    try:
        imap = BlockingIMAP.connect("127.0.0.1", port)
        try:
            if not imap.login(IMAP_ACCOUNT.user, IMAP_ACCOUNT.password).ok:
                raise BlockingClientError("LOGIN refused")
            if not imap.command("SELECT INBOX").ok:
                raise BlockingClientError("SELECT refused")
        except BaseException:
            imap.close()
            raise
    except BaseException as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        ready.abort()
        return
    try:
        ready.wait()
        next_uid, done = 1, 0
        while not stop.is_set():
            fetched = imap.command(f"UID FETCH {next_uid}:* (UID FLAGS BODY.PEEK[])")
            for response in fetched.untagged:
                uid = response.items.get("UID") if isinstance(response, Fetch) else None
                if isinstance(uid, int) and uid >= next_uid:
                    next_uid = uid + 1
            results = (fetched, imap.command("NOOP"), imap.command("FETCH 1:* (UID FLAGS)"),
                       imap.command("UID STORE 1 +FLAGS ($Load0)"))
            for result in results:
                if not result.ok:
                    raise BlockingClientError(f"answered {result.tagged.status}")
            done += len(results)
            counts[index] = done
        imap.logout()
    except threading.BrokenBarrierError:
        imap.close()
    except BaseException as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        imap.close()


def measure_imap_client(server: _Server, sessions: int, seconds: float) -> dict[str, Any]:
    """*sessions* `BlockingIMAP` sessions in the ``client`` loop for *seconds*."""
    ready, stop = threading.Barrier(sessions + 1), threading.Event()
    counts, errors = [0] * sessions, list[str]()
    threads = [threading.Thread(target=_client_session,
                                args=(server.port, ready, stop, counts, i, errors), daemon=True)
               for i in range(sessions)]
    for thread in threads:
        thread.start()
    try:
        ready.wait(60)
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join(30)
        raise RuntimeError(f"an IMAP session did not open: {errors[:1]}") from None
    server.mark()
    cpu, started = own_cpu(), time.monotonic()
    time.sleep(seconds)
    done = sum(counts)
    elapsed, cpu = time.monotonic() - started, own_cpu() - cpu
    server_cpu = server.cpu_since_mark()
    stop.set()
    for thread in threads:
        thread.join(30)
    figures = _figures(done, elapsed, cpu, server_cpu, "commands")
    return {"driver": "client", "sessions": sessions, **figures,
            "errors": {e: errors.count(e) for e in set(errors)}}


def measure_imap_reader(server: _Server, sessions: int, seconds: float) -> dict[str, Any]:
    """*sessions* of the load's readers (no IDLE, no pause) for *seconds*."""
    target = _target(imap=Endpoint("imap", "127.0.0.1", server.port))
    ledger, stop = Ledger(), threading.Event()
    users = [Reader(target, ledger, stop, account=IMAP_ACCOUNT, imaps=Endpoint(
        "imap", "127.0.0.1", server.port), poll=0.0, idle=False) for _ in range(sessions)]
    threads = [threading.Thread(target=u.run, daemon=True) for u in users]
    server.mark()
    cpu, started = own_cpu(), time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    done = ledger.latency["imap"].count
    elapsed, cpu = time.monotonic() - started, own_cpu() - cpu
    server_cpu = server.cpu_since_mark()
    stop.set()
    for thread in threads:
        thread.join(30)
    figures = _figures(done, elapsed, cpu, server_cpu, "commands")
    return {"driver": "reader", "sessions": sessions, **figures, "errors": dict(ledger.errors),
            "violations": dict(ledger.violation_counts)}


IMAP_DRIVERS = {"client": measure_imap_client, "reader": measure_imap_reader}


def run_imap(args: argparse.Namespace) -> list[dict[str, Any]]:
    responder = _Server([sys.executable, str(Path(__file__).resolve()), "--serve-imap",
                         "--imap-messages", str(args.imap_messages), "--size", str(args.size)])
    results = []
    try:
        print(f"IMAP: a trivial responder in its own process, {args.imap_messages} messages of "
              f"{args.size} octets, {args.seconds:g} s each", flush=True)
        for driver in args.imap_driver:
            for sessions in args.imap_sessions:
                figures = IMAP_DRIVERS[driver](responder, sessions, args.seconds)
                problems = {**figures["errors"], **figures.get("violations", {})}
                if problems:
                    print(f"  errors: {problems}")
                rate = figures["commands_per_second"]
                cpu = figures["generator_cpu_ms_per_command"]
                print(f"  {driver:6} {sessions:3d} sessions: {rate:8.1f} commands/s, generator "
                      f"CPU {cpu:.3f} ms/command ({figures['generator_core_percent']:.0f} % of a "
                      f"core{_server_note(figures, 'responder')})", flush=True)
                results.append(figures)
    finally:
        responder.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smtp", action="store_true", help="the SMTP ceiling (default: both)")
    parser.add_argument("--imap", action="store_true", help="the IMAP ceiling (default: both)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--size", type=int, default=1500)
    parser.add_argument("--imap-sessions", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--imap-driver", nargs="+", choices=sorted(IMAP_DRIVERS),
                        default=["client", "reader"])
    parser.add_argument("--imap-messages", type=int, default=3,
                        help="messages in the responder's mailbox")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--serve-imap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_imap:
        serve_imap(args.imap_messages, args.size)
        return
    if (args.seconds <= 0 or min(args.sessions) < 1 or min(args.imap_sessions) < 1
            or args.imap_messages < 0 or args.size < 1):
        parser.error("--seconds, --sessions, --imap-sessions and --size must be positive")
    both = not (args.smtp or args.imap)
    data: dict[str, Any] = {"benchmark": "load_ceiling", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                            "command": " ".join(sys.argv), "cpus": os.cpu_count(),
                            "seconds": args.seconds, "size": args.size}
    if args.smtp or both:
        data["smtp"] = run_smtp(args)
    if args.imap or both:
        data["imap_messages"] = args.imap_messages
        data["imap"] = run_imap(args)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
