"""The load generator's clients beside Python's own smtplib and imaplib: the same workload against
the reference agents, in one run, and the ratio of each figure.

    python benchmarks/load_vs_stdlib.py [--submission] [--imap] [--rounds 5] [--messages 300]
        [--sessions 4] [--size 1500] [--imap-sessions 4] [--imap-seconds 6]
        [--mailbox-messages 20] [--served] [--json PATH]

The agents are the embedded ones (`mailharness.embedded.embedded_target`: on a thread of this
process, so the drivers and the agents share one interpreter, as `mailharness load` does with its
default target), or with --served `mailharness serve` in a process of its own
(benchmarks/served.py), where a driver's cost no longer slows the agents down and only shows as
this process's CPU. Both drivers use the target's TLS context (`Target.client_ssl_context()`, one
per session, as the load's users make it), the same number of threads, the same messages and the
same recipients. Two workloads (without --submission or --imap, both), the IMAP one first so
that the mailbox it reads holds a known number of messages. Each starts with a short warm-up
round of each driver, not counted, then --rounds rounds per driver, alternating (ours first in
odd rounds, stdlib first in even ones) so that the noise of a shared machine falls on both alike:

- submission: --messages messages per round, shared by --sessions threads (one
  `harness.load.users.Budget`), each one submission session after another of up to 100
  messages, STARTTLS + AUTH PLAIN as alice. Each message is made in its thread as the load's
  senders make it (a token, a recipient drawn from the load's recipients, bob@example.net and
  carol@example.org, `harness.load.messages.make_message` of --size octets, from a random
  generator seeded alike for both drivers). Ours is `mailharness load`'s `Sender` itself
  (blocking client, PIPELINING where offered, its ledger); stdlib is smtplib (``starttls``,
  ``login``, ``sendmail``: one command at a time). The figure: messages accepted per second,
  from the first connection to the last reply. After each round, untimed, the benchmark waits
  until every message of the round is in its INBOX, so that one round's deliveries do not run
  into the next;
- IMAP: --imap-sessions sessions over implicit TLS as bob, each logged in and with INBOX
  selected (--mailbox-messages messages, APPENDed first) before the clock starts, then for
  --imap-seconds ``UID FETCH 1:* (UID FLAGS)`` and ``NOOP`` in turn. Ours is
  `harness.clients.blocking.BlockingIMAP` (``command``, every response parsed), stdlib is
  imaplib (``uid("FETCH", ...)``, ``noop()``). The figure: commands completed per second.

Beside each rate, the CPU per message or command: this process's (the drivers, and the embedded
agents), and with --served the agents' processes' (from /proc; with its 10 ms ticks, a short
round's is coarse). Each side's figure is the median over its rounds; the ratio is ours /
stdlib (below 1: the load generator's clients drive less than the stdlib's), and "within 10 %"
means a ratio of rates between 0.9 and 1.1. A round with a failure ends the run (exit 1): a
figure with errors in it compares nothing. --json PATH writes every round and median.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import imaplib
import json
import os
import random
import re
import smtplib
import ssl
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.load_ceiling import own_cpu, process_tree_cpu  # noqa: E402
from benchmarks.served import serve_process  # noqa: E402
from harness.clients.blocking import BlockingClientError, BlockingIMAP  # noqa: E402
from harness.load.ledger import Ledger  # noqa: E402
from harness.load.messages import make_message  # noqa: E402
from harness.load.runner import mailboxes  # noqa: E402
from harness.load.users import Budget, Sender  # noqa: E402
from harness.targets import Account, Endpoint, Target  # noqa: E402
from mailharness.embedded import embedded_target  # noqa: E402

TIMEOUT = 60.0
#: What both drivers say in EHLO (smtplib would otherwise look up the machine's own name).
LOCAL_HOSTNAME = "load.mailharness.invalid"
#: Messages per submission session, as `Sender`'s default.
PER_SESSION = 100
DELIVERY_TIMEOUT = 300.0
DRIVERS = ("ours", "stdlib")
#: The warm-up round of each driver before a workload's rounds (not counted): the agents'
#: first sessions, caches and mailboxes warm for both alike.
WARM_UP_MESSAGES = 50
WARM_UP_SECONDS = 1.0


def _endpoint(endpoint: Endpoint | None, what: str) -> Endpoint:
    if endpoint is None:
        raise RuntimeError(f"the target has no {what} endpoint")
    return endpoint


def _stdlib_imap(target: Target, account: Account) -> imaplib.IMAP4_SSL:
    endpoint = _endpoint(target.receiver.imaps, "IMAPS")
    imap = imaplib.IMAP4_SSL(endpoint.host, endpoint.port, ssl_context=target.client_ssl_context(),
                             timeout=TIMEOUT)
    imap.login(account.user, account.password)
    return imap


def _rng(round_: int, thread: int) -> random.Random:
    """The random generator of one thread of one round: the same for both drivers."""
    return random.Random(f"load-vs-stdlib {round_} {thread}")


@dataclass(frozen=True)
class Span:
    """A timed part of a round: wall seconds, CPU seconds of this process (the drivers, and the
    embedded agents), and of the served agents' processes (None when embedded)."""

    seconds: float
    cpu: float
    agents_cpu: float | None


class Stopwatch:
    """Wall clock and CPU from `start` to `stop`; *agents* is the pid of served agents."""

    def __init__(self, agents: int | None) -> None:
        self.agents = agents
        self._started: tuple[float, float, float | None] = (0.0, 0.0, None)

    def _now(self) -> tuple[float, float, float | None]:
        return (time.perf_counter(), own_cpu(),
                None if self.agents is None else process_tree_cpu(self.agents))

    def start(self) -> None:
        self._started = self._now()

    def stop(self) -> Span:
        (wall, cpu, agents), (wall0, cpu0, agents0) = self._now(), self._started
        return Span(wall - wall0, cpu - cpu0,
                    None if agents is None or agents0 is None else agents - agents0)


# -- submission ---------------------------------------------------------------------------------


class Submission:
    """One submission round's setting: the target, the sender, the recipients."""

    def __init__(self, target: Target, sessions: int, size: int, clock: Stopwatch) -> None:
        self.target, self.sessions, self.size, self.clock = target, sessions, size, clock
        self.endpoint = _endpoint(target.sender.submission, "submission")
        self.account = target.sender.accounts[0]
        self.recipients = [a.address for a, _ in mailboxes(target)]

    def ours(self, messages: int, round_: int) -> tuple[int, Span, list[str]]:
        """`mailharness load`'s senders: (accepted, seconds, errors)."""
        ledger, stop, budget = Ledger(), threading.Event(), Budget.of(messages)
        senders = [Sender(self.target, ledger, stop, account=self.account,
                          recipients=self.recipients, size=self.size, budget=budget,
                          rng=_rng(round_, i), per_session=PER_SESSION, endpoint=self.endpoint)
                   for i in range(self.sessions)]
        span = _run_threads([s.run for s in senders], self.clock)
        errors = [f"{kind} ({n})" for kind, n in ledger.errors.items()]
        return ledger.counts()["accepted"], span, errors

    def stdlib(self, messages: int, round_: int) -> tuple[int, Span, list[str]]:
        """smtplib, doing what a `Sender` does: (accepted, seconds, errors)."""
        budget, sent, errors = Budget.of(messages), [0] * self.sessions, list[str]()

        def send(index: int) -> None:
            rng = _rng(round_, index)
            try:
                while self._stdlib_session(rng, budget, sent, index):
                    pass
            except (smtplib.SMTPException, OSError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

        span = _run_threads([functools.partial(send, i) for i in range(self.sessions)],
                            self.clock)
        return sum(sent), span, errors

    def _stdlib_session(self, rng: random.Random, budget: Budget, sent: list[int],
                        index: int) -> bool:
        """One smtplib session of up to PER_SESSION messages, each counted in
        ``sent[index]``; False once the budget is spent."""
        address = self.account.address
        with smtplib.SMTP(self.endpoint.host, self.endpoint.port, local_hostname=LOCAL_HOSTNAME,
                          timeout=TIMEOUT) as smtp:
            smtp.ehlo()
            smtp.starttls(context=self.target.client_ssl_context())
            smtp.ehlo()
            smtp.login(self.account.user, self.account.password)
            for _ in range(PER_SESSION):
                if not budget.take():
                    return False
                token = uuid.uuid4().hex[:24]
                recipient = rng.choice(self.recipients)
                message = make_message(token, address, recipient, self.size, rng)
                smtp.sendmail(address, [recipient], message)
                sent[index] += 1
        return True


def _run_threads(work: list[Callable[[], None]], clock: Stopwatch) -> Span:
    """Run each of *work* in a thread of its own; the span until the last one ended."""
    threads = [threading.Thread(target=w, daemon=True) for w in work]
    clock.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return clock.stop()


class Deliveries:
    """The recipients' INBOXes, read (untimed) with imaplib STATUS between rounds."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.boxes = mailboxes(target)

    def count(self) -> int:
        total = 0
        for account, endpoint in self.boxes:
            imap = imaplib.IMAP4_SSL(endpoint.host, endpoint.port,
                                     ssl_context=self.target.client_ssl_context(), timeout=TIMEOUT)
            try:
                imap.login(account.user, account.password)
                status, data = imap.status("INBOX", "(MESSAGES)")
                found = re.search(rb"MESSAGES (\d+)", data[0] or b"") if status == "OK" else None
                if found is None:
                    raise RuntimeError(f"STATUS INBOX answered {status} {data!r}")
                total += int(found[1])
            finally:
                imap.logout()
        return total

    def wait_for(self, expected: int) -> float:
        """Wait until the INBOXes hold *expected* messages in all; the seconds it took."""
        started = time.perf_counter()
        while self.count() < expected:
            if time.perf_counter() - started > DELIVERY_TIMEOUT:
                raise TimeoutError(f"fewer than {expected} messages delivered after "
                                   f"{DELIVERY_TIMEOUT:g} s")
            time.sleep(0.2)
        return time.perf_counter() - started


# -- IMAP ---------------------------------------------------------------------------------------


class _OurSession:
    def __init__(self, target: Target, account: Account) -> None:
        endpoint = _endpoint(target.receiver.imaps, "IMAPS")
        self.imap = BlockingIMAP.connect(endpoint.host, endpoint.port, timeout=TIMEOUT,
                                         ssl_context=target.client_ssl_context(),
                                         server_hostname=endpoint.host)
        if not self.imap.login(account.user, account.password).ok:
            raise BlockingClientError("LOGIN refused")
        self._ok(self.imap.command("SELECT INBOX").ok, "SELECT")

    @staticmethod
    def _ok(ok: bool, what: str) -> None:
        if not ok:
            raise BlockingClientError(f"{what} refused")

    def pair(self) -> None:
        self._ok(self.imap.command("UID FETCH 1:* (UID FLAGS)").ok, "UID FETCH")
        self._ok(self.imap.command("NOOP").ok, "NOOP")

    def close(self) -> None:
        self.imap.logout()


class _StdlibSession:
    def __init__(self, target: Target, account: Account) -> None:
        self.imap = _stdlib_imap(target, account)
        self._ok(self.imap.select("INBOX")[0], "SELECT")

    @staticmethod
    def _ok(status: str, what: str) -> None:
        if status != "OK":
            raise imaplib.IMAP4.error(f"{what} answered {status}")

    def pair(self) -> None:
        self._ok(self.imap.uid("FETCH", "1:*", "(UID FLAGS)")[0], "UID FETCH")
        self._ok(self.imap.noop()[0], "NOOP")

    def close(self) -> None:
        self.imap.logout()


def imap_round(target: Target, driver: str, sessions: int, seconds: float,
               clock: Stopwatch) -> tuple[int, Span | None, list[str]]:
    """*sessions* sessions of *driver*, opened, then the clock: (commands, span, errors)."""
    account = target.receiver.accounts[0]
    kind = _OurSession if driver == "ours" else _StdlibSession
    ready, stop = threading.Barrier(sessions + 1), threading.Event()
    counts, errors = [0] * sessions, list[str]()

    def work(index: int) -> None:
        try:
            session = kind(target, account)
        except (BlockingClientError, imaplib.IMAP4.error, OSError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            ready.abort()
            return
        try:
            ready.wait()
            while not stop.is_set():
                session.pair()
                counts[index] += 2
            session.close()
        except threading.BrokenBarrierError:
            session.close()
        except (BlockingClientError, imaplib.IMAP4.error, OSError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(sessions)]
    for thread in threads:
        thread.start()
    try:
        ready.wait(TIMEOUT)
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join(TIMEOUT)
        return 0, None, errors or ["the sessions did not open in time"]
    clock.start()
    time.sleep(seconds)
    done, span = sum(counts), clock.stop()
    stop.set()
    for thread in threads:
        thread.join(TIMEOUT)
    return done, span, errors


def fill_inbox(target: Target, messages: int, size: int) -> int:
    """APPEND to bob's INBOX until it holds *messages*; how many it holds."""
    account = target.receiver.accounts[0]
    imap = _stdlib_imap(target, account)
    try:
        held = int(imap.select("INBOX")[1][0] or 0)
        rng = random.Random("load-vs-stdlib mailbox")
        for n in range(held, messages):
            message = make_message(f"mailbox{n}", "load@example.com", account.address, size, rng)
            status, data = imap.append("INBOX", None, None, message)
            if status != "OK":
                raise RuntimeError(f"APPEND answered {status} {data!r}")
        return int(imap.select("INBOX")[1][0] or 0)
    finally:
        imap.logout()


# -- the rounds ---------------------------------------------------------------------------------


def _order(round_: int) -> tuple[str, str]:
    return DRIVERS if round_ % 2 else DRIVERS[::-1]


def _round_name(round_: int) -> str:
    return f"round {round_}" if round_ else "warm-up"


def _round_figures(round_: int, unit: str, count: int, span: Span) -> dict[str, Any]:
    """A round's figures: the count, the rate, and the CPU per item (this process's; the
    served agents' too when they run apart)."""
    item = unit[:-1]
    figures: dict[str, Any] = {
        "round": round_, unit: count, "seconds": round(span.seconds, 3),
        f"{unit}_per_second": round(count / span.seconds, 1),
        f"cpu_ms_per_{item}": round(1000 * span.cpu / max(count, 1), 4)}
    if span.agents_cpu is not None:
        figures[f"agents_cpu_ms_per_{item}"] = round(1000 * span.agents_cpu / max(count, 1), 4)
    return figures


def _cpu_note(figures: dict[str, Any], item: str) -> str:
    note = f", CPU {figures[f'cpu_ms_per_{item}']:.3f} ms/{item}"
    agents = figures.get(f"agents_cpu_ms_per_{item}")
    return note + ("" if agents is None else f" (agents' {agents:.3f})")


def _summary(unit: str, figures: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The medians of each side, their ratios, and whether the rate's is within 10 %."""
    summary: dict[str, Any] = {"rounds": figures}
    item = unit[:-1]
    for key in (f"{unit}_per_second", f"cpu_ms_per_{item}", f"agents_cpu_ms_per_{item}"):
        if key not in figures["ours"][0]:
            continue
        ours = statistics.median(f[key] for f in figures["ours"])
        stdlib = statistics.median(f[key] for f in figures["stdlib"])
        summary[key] = {"ours_median": round(ours, 4), "stdlib_median": round(stdlib, 4),
                        "ratio": round(ours / stdlib, 3) if stdlib else 0.0}
    rate = summary[f"{unit}_per_second"]
    summary.update(ours_median=rate["ours_median"], stdlib_median=rate["stdlib_median"],
                   ratio=rate["ratio"], within_10_percent=0.9 <= rate["ratio"] <= 1.1)
    return summary


def _lines(name: str, unit: str, summary: dict[str, Any]) -> str:
    item = unit[:-1]
    lines = [f"{name}: ours {summary['ours_median']:,.1f} {unit}/s, stdlib "
             f"{summary['stdlib_median']:,.1f} {unit}/s (medians); ratio ours/stdlib "
             f"{summary['ratio']:.3f}, "
             f"{'within' if summary['within_10_percent'] else 'NOT within'} ±10 %"]
    for key, what in ((f"cpu_ms_per_{item}", "this process's CPU"),
                      (f"agents_cpu_ms_per_{item}", "the agents' CPU")):
        if key in summary:
            cpu = summary[key]
            lines.append(f"  {what} per {item}: ours {cpu['ours_median']:.3f} ms, stdlib "
                         f"{cpu['stdlib_median']:.3f} ms; ratio ours/stdlib {cpu['ratio']:.3f}")
    return "\n".join(lines)


class RoundFailed(RuntimeError):
    """A round had errors: its figure would compare nothing."""


def run_imap(target: Target, args: argparse.Namespace, clock: Stopwatch) -> dict[str, Any]:
    held = fill_inbox(target, args.mailbox_messages, args.size)
    print(f"IMAP: {args.imap_sessions} sessions over implicit TLS on an INBOX of {held} "
          f"messages, UID FETCH 1:* (UID FLAGS) and NOOP in turn, {args.imap_seconds:g} s a round",
          flush=True)
    figures: dict[str, list[dict[str, Any]]] = {d: [] for d in DRIVERS}
    for round_ in range(args.rounds + 1):
        for driver in _order(round_):
            done, span, errors = imap_round(target, driver, args.imap_sessions,
                                            args.imap_seconds if round_ else WARM_UP_SECONDS,
                                            clock)
            if errors or span is None or not done:
                raise RoundFailed(f"IMAP round {round_} {driver}: {errors[:3]}")
            one = _round_figures(round_, "commands", done, span)
            if round_:
                figures[driver].append(one)
            print(f"  {_round_name(round_)} {driver:6}: {done:7d} commands in {span.seconds:.2f} s, "
                  f"{one['commands_per_second']:9.1f} commands/s{_cpu_note(one, 'command')}",
                  flush=True)
    summary = _summary("commands", figures)
    print(_lines("IMAP", "commands", summary), flush=True)
    return {"sessions": args.imap_sessions, "mailbox_messages": held,
            "seconds_per_round": args.imap_seconds, **summary}


def run_submission(target: Target, args: argparse.Namespace, clock: Stopwatch) -> dict[str, Any]:
    submission = Submission(target, args.sessions, args.size, clock)
    deliveries = Deliveries(target)
    print(f"submission: {args.messages} messages of {args.size} octets a round over "
          f"{args.sessions} STARTTLS + AUTH sessions, to {', '.join(submission.recipients)}",
          flush=True)
    expected = deliveries.count()
    figures: dict[str, list[dict[str, Any]]] = {d: [] for d in DRIVERS}
    for round_ in range(args.rounds + 1):
        for driver in _order(round_):
            run = submission.ours if driver == "ours" else submission.stdlib
            messages = args.messages if round_ else min(args.messages, WARM_UP_MESSAGES)
            accepted, span, errors = run(messages, round_)
            if errors or accepted != messages:
                raise RoundFailed(f"submission round {round_} {driver}: {accepted} of "
                                  f"{messages} accepted; {errors[:3]}")
            expected += accepted
            waited = deliveries.wait_for(expected)
            one = _round_figures(round_, "messages", accepted, span)
            one["delivery_wait_seconds"] = round(waited, 2)
            if round_:
                figures[driver].append(one)
            print(f"  {_round_name(round_)} {driver:6}: {accepted:5d} messages in {span.seconds:.2f} s, "
                  f"{one['messages_per_second']:8.1f} msg/s{_cpu_note(one, 'message')} "
                  f"(all delivered {waited:.1f} s later)", flush=True)
    summary = _summary("messages", figures)
    print(_lines("submission", "messages", summary), flush=True)
    return {"sessions": args.sessions, "messages_per_round": args.messages, "size": args.size,
            **summary}


@contextlib.contextmanager
def _agents(served: bool) -> Iterator[tuple[Target, int | None]]:
    """The agents' target, and the pid of their process when they run apart."""
    if served:
        with serve_process(prefix="mailharness-load-vs-stdlib-") as (process, target):
            assert process.process is not None
            yield target, process.process.pid
    else:
        with embedded_target(prefix="mailharness-load-vs-stdlib-") as target:
            yield target, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submission", action="store_true",
                        help="the submission workload (default: both)")
    parser.add_argument("--imap", action="store_true", help="the IMAP workload (default: both)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per driver")
    parser.add_argument("--messages", type=int, default=300, help="messages per round")
    parser.add_argument("--sessions", type=int, default=4, help="submission threads")
    parser.add_argument("--size", type=int, default=1500, help="octets per message")
    parser.add_argument("--imap-sessions", type=int, default=4)
    parser.add_argument("--imap-seconds", type=float, default=6.0, help="seconds per IMAP round")
    parser.add_argument("--mailbox-messages", type=int, default=20,
                        help="messages in the INBOX the IMAP sessions read")
    parser.add_argument("--served", action="store_true",
                        help="the agents in a process of their own (mailharness serve)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if min(args.rounds, args.messages, args.sessions, args.size, args.imap_sessions) < 1 or (
            args.imap_seconds <= 0 or args.mailbox_messages < 0):
        parser.error("--rounds, --messages, --sessions, --size, --imap-sessions and "
                     "--imap-seconds must be positive")
    both = not (args.submission or args.imap)
    data: dict[str, Any] = {
        "benchmark": "load_vs_stdlib", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(sys.argv), "cpus": os.cpu_count(),
        "agents": "served" if args.served else "embedded", "rounds": args.rounds,
        "python": sys.version.split()[0], "openssl": ssl.OPENSSL_VERSION,
    }
    try:
        with _agents(args.served) as (target, pid):
            print(f"the reference agents ({data['agents']}), {args.rounds} rounds per driver, "
                  "alternating", flush=True)
            clock = Stopwatch(pid)
            if args.imap or both:
                data["imap"] = run_imap(target, args, clock)
            if args.submission or both:
                data["submission"] = run_submission(target, args, clock)
    except RoundFailed as exc:
        print(f"load_vs_stdlib: {exc}", file=sys.stderr)
        sys.exit(1)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
