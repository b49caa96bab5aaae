"""MSA throughput with a neutral driver: Python's own smtplib, not the harness's client.

    python benchmarks/msa_smtplib.py [--messages 1000] [--sessions 8]

Starts the reference agents in a process of their own (`mailharness serve`), then opens
*sessions* threads, each one smtplib session to the submission port with STARTTLS and AUTH
PLAIN, and sends its share of *messages* from alice@example.org to bob@example.net. Prints the
messages per second the MSA accepted (250 to the end of data). The same driver can be pointed
at any submission server with --target FILE, so two servers are compared in one run."""

from __future__ import annotations

import argparse
import smtplib
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.served import served_topology  # noqa: E402
from harness.suite import make_message  # noqa: E402
from harness.targets import Target, load_target  # noqa: E402

#: smtplib would otherwise send the machine's own name, looked up through the system resolver.
CLIENT_NAME = "bench.mailharness.invalid"


def _session(target: Target, count: int, offset: int, errors: list[str]) -> None:
    endpoint = target.sender.submission
    assert endpoint is not None
    sender, rcpt = target.sender.accounts[0], target.receiver.accounts[0]
    try:
        with smtplib.SMTP(endpoint.host, endpoint.port, local_hostname=CLIENT_NAME, timeout=60) as smtp:
            smtp.starttls(context=target.client_ssl_context())
            smtp.login(sender.user, sender.password)
            for i in range(offset, offset + count):
                message = make_message(sender=sender.address, recipient=rcpt.address,
                                       subject=f"bench {i}", body=f"message {i}\r\n" * 20,
                                       mark=f"smtplib-{i}")
                smtp.sendmail(sender.address, [rcpt.address], message)
    except Exception as exc:  # noqa: BLE001 - reported, the run fails
        errors.append(f"{type(exc).__name__}: {exc}")


def run(target: Target, messages: int, sessions: int) -> float:
    share = [messages // sessions + (1 if s < messages % sessions else 0) for s in range(sessions)]
    errors: list[str] = []
    threads = [threading.Thread(target=_session, args=(target, n, sum(share[:s]), errors))
               for s, n in enumerate(share)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"msa_smtplib: {len(errors)} session(s) failed: {errors[0]}")
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--target", type=Path, help="a target file (default: the reference agents)")
    args = parser.parse_args()
    context = nullcontext(load_target(args.target)) if args.target else served_topology()
    with context as target:
        rate = run(target, args.messages, args.sessions)
    print(f"messages:  {args.messages} ({args.sessions} smtplib sessions, STARTTLS + AUTH PLAIN)")
    print(f"accepted:  {rate:.1f} messages/second")


if __name__ == "__main__":
    main()
