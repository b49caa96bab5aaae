"""The reference agents beside Postfix + Dovecot: the same neutral stdlib workloads against
both, in one run, and the ratio of each figure.

    sudo .venv/bin/python benchmarks/compare.py [--messages 1000] [--sessions 8]
        [--imap-sessions 10 50] [--imap-seconds 20] [--rounds 3] [--reference-only]

The driver is Python's own smtplib and imaplib (threads, one connection each), so neither
side is measured with the harness's clients. Workloads, each run in turn on both servers
(benchmarks/beside.py), --rounds times:

- (a) submission: --messages messages of 1.5 kB from alice@example.org to bob@example.net
  over --sessions STARTTLS + AUTH submission sessions; messages accepted (250 to DATA) per
  second;
- (b) end to end: the same run, until bob's INBOX (STATUS over implicit TLS, every 0.1 s)
  holds them all: messages per second from the first MAIL to the last one visible;
- (c) IMAP with persistent sessions: N sessions (each over implicit TLS, logged in once, on
  a mailbox of its own holding 50 messages) doing for --imap-seconds a mix of SELECT,
  FETCH (FLAGS / header / whole body), STORE, SEARCH, APPEND and STORE \\Deleted + EXPUNGE;
  commands per second and the 99th percentile of a command's time.

The figure of a workload is the median over its rounds; the ratio is reference / independent
(above 1: the reference agents are faster; for p99, above 1: slower). Without root or the
packages (see .ci/independent), or with --reference-only, only the reference agents run.
"""

from __future__ import annotations

import argparse
import imaplib
import random
import re
import smtplib
import ssl
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.beside import (  # noqa: E402
    Worker,
    independent_missing,
    independent_servers,
    reply,
    requests,
    start_worker,
)
from benchmarks.served import served_topology  # noqa: E402
from harness.targets import Endpoint, Target, load_target  # noqa: E402

TIMEOUT = 60.0
MAILBOX_MESSAGES = 50


def _address(endpoint: Endpoint | None, what: str) -> tuple[str, int]:
    if endpoint is None:
        raise RuntimeError(f"the target has no {what} endpoint")
    return endpoint.host, endpoint.port


def _message(i: int, run: str) -> bytes:
    head = (f"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: compare {run} {i}\r\n"
            f"Date: Thu, 03 Dec 2026 12:00:00 +0000\r\nMessage-ID: <{run}.{i}@compare.invalid>"
            "\r\n\r\n")
    line = f"Line of message {i} in run {run}, padding the body to about 1.5 kB.\r\n"
    return (head + line * max(1, (1500 - len(head)) // len(line))).encode("ascii")


def _imaps(target: Target, context: ssl.SSLContext) -> imaplib.IMAP4_SSL:
    host, port = _address(target.receiver.imaps, "IMAPS")
    imap = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=TIMEOUT)
    bob = target.receiver.accounts[0]
    imap.login(bob.user, bob.password)
    return imap


def _inbox_count(imap: imaplib.IMAP4_SSL) -> int:
    status, data = imap.status("INBOX", "(MESSAGES)")
    found = re.search(rb"MESSAGES (\d+)", data[0] or b"") if status == "OK" else None
    if found is None:
        raise RuntimeError(f"STATUS INBOX answered {status} {data!r}")
    return int(found[1])


def submission(target: Target, messages: int, sessions: int) -> dict[str, float]:
    """Workloads (a) and (b): seconds until every message was accepted, and until visible."""
    context = target.client_ssl_context()
    host, port = _address(target.sender.submission, "submission")
    alice = target.sender.accounts[0]
    run = uuid.uuid4().hex[:8]
    watcher = _imaps(target, context)
    errors: list[BaseException] = []
    try:
        before = _inbox_count(watcher)

        def send(indexes: range) -> None:
            try:
                with smtplib.SMTP(host, port, local_hostname="compare.client.invalid",
                                  timeout=TIMEOUT) as smtp:
                    smtp.starttls(context=context)
                    smtp.login(alice.user, alice.password)
                    for i in indexes:
                        smtp.sendmail(alice.address, ["bob@example.net"], _message(i, run))
            except BaseException as exc:  # reported below, after the other threads
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(range(k, messages, sessions),))
                   for k in range(sessions)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        accepted = time.perf_counter() - started
        if errors:
            raise RuntimeError(f"submission failed: {errors[0]!r}")
        deadline = started + 600
        while _inbox_count(watcher) < before + messages:
            if time.perf_counter() > deadline:
                raise TimeoutError("the messages were not all visible within 600 s")
            time.sleep(0.1)
        visible = time.perf_counter() - started
    finally:
        watcher.logout()
    return {"accepted_seconds": accepted, "visible_seconds": visible}


class _Session:
    """One persistent IMAP session of workload (c), on a mailbox of its own."""

    def __init__(self, target: Target, context: ssl.SSLContext, name: str, run: str) -> None:
        self.imap = _imaps(target, context)
        self.name = name
        self.run = run
        self.rng = random.Random(name)
        self.imap.create(name)
        for i in range(MAILBOX_MESSAGES):
            self.imap.append(name, None, None, _message(i, run))
        self.imap.select(name)
        self.latencies: list[float] = []

    def _timed(self, command: str, *args: Any) -> Any:
        started = time.perf_counter()
        status, data = getattr(self.imap, command)(*args)
        self.latencies.append(time.perf_counter() - started)
        if status != "OK":
            raise RuntimeError(f"{command} {args!r} answered {status} {data!r}")
        return data

    def step(self) -> None:
        count = int(self._timed("select", self.name)[0] or 0)
        n = str(self.rng.randint(1, max(count, 1)))
        choice = self.rng.random()
        if choice < 0.25:
            self._timed("fetch", "1:*", "(FLAGS)")
        elif choice < 0.45:
            self._timed("fetch", n, "(BODY.PEEK[HEADER])")
        elif choice < 0.6:
            self._timed("fetch", n, "(BODY.PEEK[])")
        elif choice < 0.75:
            self._timed("store", n, "+FLAGS", "(\\Seen)")
        elif choice < 0.85:
            self._timed("search", None, "UNSEEN")
        elif choice < 0.95 or count < MAILBOX_MESSAGES // 2:
            self._timed("append", self.name, None, None, _message(count, self.run))
        else:
            self._timed("store", n, "+FLAGS", "(\\Deleted)")
            self._timed("expunge")

    def close(self) -> None:
        try:
            self.imap.close()
            self.imap.delete(self.name)
            self.imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def imap_sessions(target: Target, sessions: int, seconds: float) -> dict[str, float]:
    """Workload (c): commands per second and latency percentiles over all sessions."""
    context = target.client_ssl_context()
    run = uuid.uuid4().hex[:8]
    opened = [_Session(target, context, f"compare-{run}-{k}", run) for k in range(sessions)]
    errors: list[BaseException] = []
    stop = time.perf_counter() + seconds

    def work(session: _Session) -> None:
        try:
            while time.perf_counter() < stop:
                session.step()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in opened]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    for s in opened:
        s.close()
    if errors:
        raise RuntimeError(f"IMAP session failed: {errors[0]!r}")
    latencies = sorted(x for s in opened for x in s.latencies)
    quantiles = statistics.quantiles(latencies, n=100)
    return {"commands": len(latencies), "seconds": took, "p50": quantiles[49],
            "p99": quantiles[98]}


def worker(target_file: str | None) -> None:
    def serve(target: Target) -> None:
        reply({"ready": True})
        for request in requests():
            if request["workload"] == "submission":
                reply(submission(target, int(request["messages"]), int(request["sessions"])))
            else:
                reply(imap_sessions(target, int(request["sessions"]), float(request["seconds"])))

    if target_file:
        serve(load_target(Path(target_file)))
    else:
        with served_topology() as target:
            serve(target)


# -- the driver ---------------------------------------------------------------------------------


def _rounds(workers: list[Worker], request: dict[str, Any], rounds: int) -> dict[str, list[dict[str, float]]]:
    got: dict[str, list[dict[str, float]]] = {w.label: [] for w in workers}
    for n in range(1, rounds + 1):
        for w in workers:
            figures = w.ask(request)
            if "error" in figures:
                raise RuntimeError(f"{w.label}: {figures['error']}")
            got[w.label].append(figures)
            print(f"  round {n} {w.label}: " + ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()),
                flush=True)
    return got


def _report(name: str, unit: str, values: dict[str, float], higher_is_better: bool = True) -> None:
    line = f"{name}: " + "; ".join(f"{label} {value:,.1f} {unit}" for label, value in values.items())
    if len(values) == 2:
        ours, theirs = values["reference"], values["independent"]
        line += f"; ratio reference/independent {ours / theirs:.2f}"
        if not higher_is_better:
            line += " (lower is better)"
    print(line, flush=True)


def drive(workers: list[Worker], args: argparse.Namespace) -> None:
    request = {"workload": "submission", "messages": args.messages, "sessions": args.sessions}
    print(f"(a)+(b) {args.messages} messages over {args.sessions} submission sessions")
    got = _rounds(workers, request, args.rounds)
    _report("(a) submission accepted", "msg/s", {
        label: args.messages / statistics.median(f["accepted_seconds"] for f in figures)
        for label, figures in got.items()})
    _report("(b) end to end, submitted to visible over IMAP", "msg/s", {
        label: args.messages / statistics.median(f["visible_seconds"] for f in figures)
        for label, figures in got.items()})
    for sessions in args.imap_sessions:
        request = {"workload": "imap", "sessions": sessions, "seconds": args.imap_seconds}
        print(f"(c) IMAP, {sessions} persistent sessions for {args.imap_seconds:g} s")
        got = _rounds(workers, request, args.rounds)
        _report(f"(c) IMAP {sessions} sessions", "commands/s", {
            label: statistics.median(f["commands"] / f["seconds"] for f in figures)
            for label, figures in got.items()})
        _report(f"(c) IMAP {sessions} sessions p99", "ms", {
            label: 1000 * statistics.median(f["p99"] for f in figures)
            for label, figures in got.items()}, higher_is_better=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=("compare", "worker"), default="compare")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--imap-sessions", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--imap-seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reference-only", action="store_true")
    parser.add_argument("--target", help="worker: the target file (default: mailharness serve)")
    args = parser.parse_args()
    if min(args.messages, args.sessions, args.rounds, *args.imap_sessions) < 1:
        parser.error("counts must be at least 1")
    script = Path(__file__).resolve()
    if args.mode == "worker":
        worker(args.target)
        return
    missing = "--reference-only" if args.reference_only else independent_missing()
    workers: list[Worker] = []
    try:
        workers.append(start_worker("reference", script, [])[0])
        if missing:
            print(f"Postfix + Dovecot: not measured ({missing})")
            drive(workers, args)
            return
        with independent_servers() as target_file:
            workers.append(start_worker("independent", script, [], target_file=target_file)[0])
            try:
                drive(workers, args)
            finally:
                workers.pop().finish()
    finally:
        for w in workers:
            w.finish()


if __name__ == "__main__":
    main()
