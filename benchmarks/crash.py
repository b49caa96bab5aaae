"""Crash consistency of the reference agents: SIGKILL `mailharness serve` at random moments
while mail flows and IMAP clients work, restart it, and count what was lost, duplicated or
corrupted.

    python benchmarks/crash.py [--rounds 100] [--seed 1] [--senders 3]

Each round starts `mailharness serve` over the same data directory, runs stdlib clients
against it and kills it with SIGKILL after a random 0.5-2.5 s:

- senders (smtplib, STARTTLS + AUTH on submission) send alice@example.org's messages to
  bob@example.net (two hops: the example.org MTA relays to the example.net MX), to
  carol@example.org (local delivery) or to both; a message is *acknowledged* when DATA got 250;
- an IMAP client (imaplib over implicit TLS, as bob@example.net, in a mailbox of its own)
  APPENDs messages, sets flags and EXPUNGEs some of its own; an APPEND or EXPUNGE is
  acknowledged by its tagged OK.

After the last round the agents are started once more, left to empty their queues, and every
mailbox is read. For each acknowledged message and recipient exactly one copy must be there,
ending with the bytes sent (the agents only prepend trace fields): none is *lost*, more is
*duplicated*, other bytes are *corrupt*. An acknowledged APPEND must be there once, byte for
byte, unless its EXPUNGE was acknowledged, after which it must be gone (*resurrected*
otherwise). UIDVALIDITY of every mailbox must not change. Messages never acknowledged may be
there or not. The figures are per round and in total; the exit status is 1 when anything was
lost, corrupt or resurrected, or duplicates reach --max-duplicates (0.5 % by default).
"""

from __future__ import annotations

import argparse
import imaplib
import random
import re
import shutil
import smtplib
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.served import ServeProcess  # noqa: E402
from harness.targets import Endpoint, Target  # noqa: E402
from reference_agents.queue import MailQueue  # noqa: E402

MARK = re.compile(rb"^X-Crash-Mark: (\S+)\r?$", re.MULTILINE)
#: The IMAP client's own mailbox (bob's; the mail the senders send goes to his INBOX).
IMAP_MAILBOX = "crash-imap"
#: How long the last start may take to empty the queues before the mailboxes are read.
DRAIN_SECONDS = 90.0
TIMEOUT = 20.0


@dataclass
class Ledger:
    """What the clients were told (thread-safe: every worker appends under the lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    #: mark -> (recipients, bytes sent) for each message whose DATA got 250.
    sent: dict[str, tuple[tuple[str, ...], bytes]] = field(default_factory=dict)
    #: mark -> bytes, for each APPEND answered OK.
    appended: dict[str, bytes] = field(default_factory=dict)
    #: marks given \\Deleted (once asked for, the message may be gone: any later EXPUNGE
    #: removes it too), and those whose own EXPUNGE was answered OK (it must be gone).
    deleting: set[str] = field(default_factory=set)
    expunged: set[str] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)
    #: What went wrong, one line per mark (for the report).
    problems: list[str] = field(default_factory=list)


@dataclass
class RoundFigures:
    round: int
    acknowledged: int = 0
    appended: int = 0
    lost: int = 0
    duplicated: int = 0
    corrupt: int = 0
    resurrected: int = 0
    restart_seconds: float = 0.0


def _message(mark: str, recipients: tuple[str, ...], rng: random.Random) -> bytes:
    body = "".join(f"line {i} of {mark} {rng.getrandbits(64):016x}\r\n"
                   for i in range(rng.randint(5, 40)))
    return (f"From: alice@example.org\r\nTo: {', '.join(recipients)}\r\n"
            f"Subject: crash test {mark}\r\nDate: Thu, 03 Dec 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{mark}@crash.mailharness.invalid>\r\nX-Crash-Mark: {mark}\r\n\r\n"
            + body).encode("ascii")


def _endpoint(endpoint: Endpoint | None) -> tuple[str, int]:
    if endpoint is None:
        raise RuntimeError("the target lacks an endpoint the crash test needs")
    return endpoint.host, endpoint.port


def _sender(target: Target, context: ssl.SSLContext, ledger: Ledger, prefix: str,
            rng: random.Random, stop: threading.Event) -> None:
    host, port = _endpoint(target.sender.submission)
    alice = target.sender.accounts[0]
    choices = (("bob@example.net",), ("carol@example.org",),
               ("bob@example.net", "carol@example.org"))
    n = 0
    try:
        with smtplib.SMTP(host, port, local_hostname="crash.client.invalid",
                          timeout=TIMEOUT) as smtp:
            smtp.starttls(context=context)
            smtp.login(alice.user, alice.password)
            while not stop.is_set():
                n += 1
                mark = f"{prefix}-{n}"
                recipients = rng.choice(choices)
                data = _message(mark, recipients, rng)
                smtp.sendmail(alice.address, list(recipients), data)
                with ledger.lock:
                    ledger.sent[mark] = (recipients, data)
    except (OSError, smtplib.SMTPException) as exc:
        with ledger.lock:
            ledger.errors[f"smtp {type(exc).__name__}"] += 1


def _imap_worker(target: Target, context: ssl.SSLContext, ledger: Ledger, prefix: str,
                 rng: random.Random, stop: threading.Event) -> None:
    host, port = _endpoint(target.receiver.imaps)
    bob = target.receiver.accounts[0]
    mine: list[tuple[str, int]] = []  # (mark, uid) appended in this session
    n = 0
    try:
        imap = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=TIMEOUT)
        try:
            imap.login(bob.user, bob.password)
            imap.create(IMAP_MAILBOX)  # NO once it exists
            imap.select(IMAP_MAILBOX)
            while not stop.is_set():
                n += 1
                mark = f"{prefix}-a{n}"
                data = _message(mark, ("bob@example.net",), rng)
                status, detail = imap.append(IMAP_MAILBOX, "(\\Seen)", None, data)
                if status != "OK":
                    raise imaplib.IMAP4.error(f"APPEND answered {status}")
                with ledger.lock:
                    ledger.appended[mark] = data
                found = re.search(rb"APPENDUID \d+ (\d+)", detail[0] or b"")
                if found:
                    mine.append((mark, int(found[1])))
                if mine and rng.random() < 0.3:
                    gone_mark, uid = mine.pop(rng.randrange(len(mine)))
                    with ledger.lock:
                        ledger.deleting.add(gone_mark)
                    imap.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
                    status, _ = imap.expunge()
                    if status == "OK":
                        with ledger.lock:
                            ledger.expunged.add(gone_mark)
                elif mine:
                    imap.uid("STORE", str(rng.choice(mine)[1]), "+FLAGS.SILENT", "(\\Flagged)")
        finally:
            try:
                imap.shutdown()
            except OSError:
                pass
    except (OSError, imaplib.IMAP4.error, imaplib.IMAP4.abort) as exc:
        with ledger.lock:
            ledger.errors[f"imap {type(exc).__name__}"] += 1


def _run_round(served: ServeProcess, ledger: Ledger, number: int, senders: int,
               rng: random.Random) -> RoundFigures:
    figures = RoundFigures(number)
    started = time.monotonic()
    target = served.start()
    figures.restart_seconds = time.monotonic() - started
    context = target.client_ssl_context()
    stop = threading.Event()
    workers = [threading.Thread(target=_sender, args=(target, context, ledger, f"r{number}s{k}",
                                                      random.Random(rng.random()), stop))
               for k in range(senders)]
    workers.append(threading.Thread(target=_imap_worker, args=(
        target, context, ledger, f"r{number}", random.Random(rng.random()), stop)))
    for w in workers:
        w.start()
    time.sleep(rng.uniform(0.5, 2.5))
    served.kill()
    stop.set()
    for w in workers:
        w.join(TIMEOUT + 5)
    return figures


def _queues_empty(served: ServeProcess) -> bool:
    # Read as the delivery process reads them (the queue knows its own layout).
    return all(len(MailQueue(queue, recover=False)) == 0
               for queue in served.data_dir.glob("*/queue"))


def _read_all(target: Target, context: ssl.SSLContext) -> tuple[dict[str, list[bytes]], dict[str, int]]:
    """mark -> every copy found (in INBOX, Junk and the IMAP client's mailbox of bob and
    carol), and each mailbox's UIDVALIDITY."""
    copies: dict[str, list[bytes]] = {}
    validity: dict[str, int] = {}
    for provider, address in ((target.receiver, "bob@example.net"),
                              (target.sender, "carol@example.org")):
        account = next(a for a in provider.accounts if a.address == address)
        host, port = _endpoint(provider.imaps)
        imap = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=120)
        try:
            imap.login(account.user, account.password)
            for mailbox in ("INBOX", "Junk", IMAP_MAILBOX):
                status, data = imap.select(mailbox, readonly=True)
                if status != "OK":
                    continue
                uv = imap.response("UIDVALIDITY")[1]
                if uv and uv[0]:
                    validity[f"{address}/{mailbox}"] = int(uv[0])
                if int(data[0] or 0) == 0:
                    continue
                status, fetched = imap.fetch("1:*", "(BODY.PEEK[])")
                for item in fetched:
                    if isinstance(item, tuple):
                        body = item[1]
                        found = MARK.search(body)
                        if found:
                            copies.setdefault(found[1].decode(), []).append(body)
        finally:
            imap.logout()
    return copies, validity


def _tally(ledger: Ledger, copies: dict[str, list[bytes]], rounds: list[RoundFigures]) -> None:
    by_round = {f.round: f for f in rounds}

    def figures_of(mark: str) -> RoundFigures:
        return by_round[int(mark[1:].split("s")[0].split("-")[0])]

    for mark, (recipients, data) in ledger.sent.items():
        f = figures_of(mark)
        f.acknowledged += 1
        found = copies.get(mark, [])
        # One copy per recipient is expected; bob's and carol's are told apart by their mailbox
        # only through the count, so compare the totals.
        wanted = len(recipients)
        if len(found) < wanted:
            f.lost += wanted - len(found)
            ledger.problems.append(f"lost: {mark} to {', '.join(recipients)}: {len(found)} found")
        elif len(found) > wanted:
            f.duplicated += len(found) - wanted
            ledger.problems.append(f"duplicated: {mark} to {', '.join(recipients)}: "
                                   f"{len(found)} found")
        f.corrupt += sum(1 for body in found if not body.endswith(data))
    for mark, data in ledger.appended.items():
        f = figures_of(mark)
        f.appended += 1
        found = copies.get(mark, [])
        if mark in ledger.expunged:
            f.resurrected += len(found)
            continue
        if mark in ledger.deleting and not found:
            continue  # \Deleted, and expunged by an EXPUNGE whose answer the crash cut off
        if not found:
            f.lost += 1
            ledger.problems.append(f"lost: APPEND {mark}")
        f.duplicated += max(len(found) - 1, 0)
        f.corrupt += sum(1 for body in found if body != data)


def run(rounds: int, seed: int, senders: int, work: Path) -> tuple[list[RoundFigures], Ledger, bool]:
    """Run the rounds over *work*; (figures per round, the ledger, whether UIDVALIDITY held)."""
    rng = random.Random(seed)
    served = ServeProcess(work, 'retry_schedule = [0.2, 0.5, 1, 2]\n')
    ledger = Ledger()
    figures = [_run_round(served, ledger, n, senders, rng) for n in range(1, rounds + 1)]
    target = served.start()
    try:
        first_validity: dict[str, int] | None = None
        deadline = time.monotonic() + DRAIN_SECONDS
        while not _queues_empty(served) and time.monotonic() < deadline:
            time.sleep(0.2)
        context = target.client_ssl_context()
        copies, validity = _read_all(target, context)
        first_validity = validity
    finally:
        served.stop()
    # UIDVALIDITY across the restarts: read once more after a clean restart.
    target = served.start()
    try:
        _, again = _read_all(target, target.client_ssl_context())
    finally:
        served.stop()
    _tally(ledger, copies, figures)
    return figures, ledger, again == first_validity


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--max-duplicates", type=float, default=0.005,
                        help="the highest share of acknowledged messages that may be duplicated")
    args = parser.parse_args()
    if args.rounds < 1 or args.senders < 1:
        parser.error("--rounds and --senders must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="mailharness-crash-"))
    try:
        figures, ledger, validity_held = run(args.rounds, args.seed, args.senders, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("round  acknowledged  appended  lost  duplicated  corrupt  resurrected  restart s")
    for f in figures:
        print(f"{f.round:5}  {f.acknowledged:12}  {f.appended:8}  {f.lost:4}  {f.duplicated:10}"
              f"  {f.corrupt:7}  {f.resurrected:11}  {f.restart_seconds:9.2f}")
    total = {k: sum(getattr(f, k) for f in figures)
             for k in ("acknowledged", "appended", "lost", "duplicated", "corrupt", "resurrected")}
    restarts = sorted(f.restart_seconds for f in figures)
    acked = total["acknowledged"] + total["appended"]
    share = total["duplicated"] / acked if acked else 0.0
    print(f"total: {args.rounds} rounds, {total['acknowledged']} messages acknowledged, "
          f"{total['appended']} APPENDs acknowledged; lost {total['lost']}, duplicated "
          f"{total['duplicated']} ({share:.2%}), corrupt {total['corrupt']}, resurrected "
          f"{total['resurrected']}; UIDVALIDITY {'held' if validity_held else 'CHANGED'}; "
          f"restart {restarts[0]:.2f}-{restarts[-1]:.2f} s")
    print(f"client errors at the kills: {dict(ledger.errors)}")
    for line in ledger.problems:
        print(line)
    if args.keep:
        print(f"data directory kept: {work / 'data'}")
    bad = (total["lost"] or total["corrupt"] or total["resurrected"] or not validity_held
           or share >= args.max_duplicates)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
