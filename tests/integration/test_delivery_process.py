"""The queue runner and the MDA in a process of their own (reference_agents/delivery.py):
mail submitted to one provider crosses both providers' delivery processes into the mailbox,
once; the IMAP server in the provider's own process hears of the delivery through the change
notification (IDLE's own poll is 30 s here); a delivery process that dies is replaced, and
the mail queued meanwhile is delivered."""

from __future__ import annotations

import os
import signal
import smtplib
import time
import uuid
from collections.abc import Iterator

import pytest

from harness.targets import Target
from reference_agents.topology import Topology, TopologySettings
from tests.integration.test_imap_workers import _Idler, _login, running

TIMEOUT = 20.0
#: Seconds within which a submitted message must wake IDLE (two hops, two processes each).
ARRIVAL_BOUND = 10.0
DELIVERY_NICE = 7


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, Topology]]:
    with running(TopologySettings(data_dir=tmp_path_factory.mktemp("delivery"),
                                  delivery_process=True, delivery_nice=DELIVERY_NICE)) as served:
        yield served


def _delivery_pid(topology: Topology, domain: str) -> int:
    delivery = topology.providers[domain].delivery
    assert delivery is not None and len(delivery.pids) == 1
    return delivery.pids[0]


def _submit(target: Target, subject: str) -> None:
    endpoint = target.sender.submission
    alice = target.sender.accounts[0]
    with smtplib.SMTP(endpoint.host, endpoint.port, local_hostname="client.example.org",
                      timeout=TIMEOUT) as smtp:
        smtp.starttls(context=target.client_ssl_context())
        smtp.login(alice.user, alice.password)
        refused = smtp.sendmail(alice.address, ["bob@example.net"],
                                f"From: {alice.address}\r\nTo: bob@example.net\r\n"
                                f"Subject: {subject}\r\n\r\nacross the processes\r\n".encode())
    assert refused == {}


def _count(target: Target, subject: str) -> int:
    client = _login(target)
    try:
        client.select("INBOX", readonly=True)
        status, data = client.search(None, "SUBJECT", f'"{subject}"')
        assert status == "OK"
        return len(data[0].split())
    finally:
        client.logout()


def test_submitted_mail_crosses_the_delivery_processes_once(
        served: tuple[Target, Topology]) -> None:
    target, topology = served
    pids = {_delivery_pid(topology, d) for d in ("example.org", "example.net")}
    assert os.getpid() not in pids and len(pids) == 2
    subject = f"split {uuid.uuid4().hex}"
    idler = _Idler(_login(target), "INBOX")
    try:
        started = time.monotonic()
        _submit(target, subject)
        assert idler.seen.wait(ARRIVAL_BOUND + 20), idler.lines
        elapsed = time.monotonic() - started
    finally:
        idler.done()
    assert elapsed < ARRIVAL_BOUND, f"EXISTS came {elapsed:.2f} s after the submission"
    assert _count(target, subject) == 1
    # The provider's own process keeps no queue entries: it only enqueues.
    assert len(topology.providers["example.org"].queue) == 0


def test_a_delivery_process_that_dies_is_replaced(served: tuple[Target, Topology]) -> None:
    """...and its replacement removes what a dead one left in the queue's tmp/ and in the
    mailboxes' tmp/ (an hour and 36 hours old), not what is being written now."""
    from reference_agents.delivery import MAILDIR_TMP_AGE, QUEUE_TMP_AGE

    target, topology = served
    victim = _delivery_pid(topology, "example.org")
    data_dir = topology.providers["example.org"].config.data_dir
    maildir_tmp = next((data_dir / "mail").glob("*/*/tmp"))
    left = [data_dir / "queue" / "tmp" / "dead.json.0", maildir_tmp / "dead-delivery"]
    fresh = [data_dir / "queue" / "tmp" / "busy.msg.0", maildir_tmp / "busy-delivery"]
    for path, age in zip(left, (QUEUE_TMP_AGE, MAILDIR_TMP_AGE), strict=True):
        path.write_bytes(b"half")
        os.utime(path, (time.time() - age - 60,) * 2)
    for path in fresh:
        path.write_bytes(b"half")
    os.kill(victim, signal.SIGKILL)
    subject = f"after the kill {uuid.uuid4().hex}"
    _submit(target, subject)  # accepted while no delivery process runs: it waits in the queue
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and _count(target, subject) == 0:
        time.sleep(0.2)
    assert _count(target, subject) == 1
    assert _delivery_pid(topology, "example.org") != victim
    assert [p.exists() for p in left + fresh] == [False, False, True, True]
    for path in fresh:
        path.unlink()


def test_the_delivery_processes_run_at_their_nice_value_and_the_listeners_do_not(
        served: tuple[Target, Topology]) -> None:
    _, topology = served
    own = os.getpriority(os.PRIO_PROCESS, 0)
    for domain in ("example.org", "example.net"):
        pid = _delivery_pid(topology, domain)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(own + DELIVERY_NICE, 19)
    assert os.getpriority(os.PRIO_PROCESS, 0) == own

