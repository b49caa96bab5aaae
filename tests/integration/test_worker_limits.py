"""Limits hold across the IMAP worker processes (reference_agents/limits.py): failed logins
spread over both workers and the SMTP listeners of the provider's own process are counted
once, and the workers together never take more connections from one address than the limit."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
import time
from collections.abc import Iterator

import pytest

from harness.targets import Target
from reference_agents.imapd.workers import IMAPWorkers
from reference_agents.limits import AuthLimits, ConnectionLimits
from reference_agents.topology import TopologySettings
from tests.integration.test_imap_workers import _serving_pid, running_workers

WORKERS = 2
REFUSE_AFTER = 6
PER_ADDRESS = 4
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, IMAPWorkers]]:
    settings = TopologySettings(
        data_dir=tmp_path_factory.mktemp("worker-limits"), imap_workers=WORKERS,
        auth_limits=AuthLimits(refuse_after=REFUSE_AFTER, base_delay=0.01, max_delay=0.05),
        connection_limits=ConnectionLimits(max_connections_per_address=PER_ADDRESS))
    with running_workers(settings) as served:
        yield served


def _imaps(target: Target) -> imaplib.IMAP4_SSL:
    endpoint = target.receiver.imaps
    assert endpoint is not None
    return imaplib.IMAP4_SSL(endpoint.host, endpoint.port,
                             ssl_context=target.client_ssl_context(), timeout=TIMEOUT)


def test_failed_logins_over_every_process_are_counted_once(
        served: tuple[Target, IMAPWorkers]) -> None:
    """One failed LOGIN per connection, on whichever worker the kernel picks: the attempt after
    REFUSE_AFTER failures is refused as a temporary failure (NO [UNAVAILABLE]), and so is SMTP
    AUTH on example.net's submission port, in the provider's own process (454)."""
    target, workers = served
    bob = target.receiver.accounts[0]
    pids: set[int] = set()
    refused_at = None
    for attempt in range(1, 3 * REFUSE_AFTER):
        client = _imaps(target)
        try:
            pid = _serving_pid(client, workers.pids)
            assert pid is not None
            pids.add(pid)
            try:
                client.login(bob.user, "wrong password")
            except imaplib.IMAP4.error as exc:
                if "UNAVAILABLE" in str(exc):
                    refused_at = attempt
                    break
                assert "AUTHENTICATIONFAILED" in str(exc), exc
                # The other processes hear of it by datagram, within microseconds; a loaded CI
                # machine may take longer to schedule the receiving thread.
                time.sleep(0.05)
        finally:
            try:
                client.logout()
            except (imaplib.IMAP4.error, OSError, ssl.SSLError):
                pass
    assert refused_at == REFUSE_AFTER + 1, (refused_at, pids)
    # The SMTP listeners in the provider's own process count the IMAP workers' failures too.
    submission = target.receiver.submission
    assert submission is not None
    with smtplib.SMTP(submission.host, submission.port, local_hostname="client.example.net",
                      timeout=TIMEOUT) as smtp:
        smtp.starttls(context=target.client_ssl_context())
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            smtp.login(bob.user, bob.password)
    assert refused.value.smtp_code == 454


def test_the_workers_together_take_no_more_than_the_per_address_limit(
        served: tuple[Target, IMAPWorkers]) -> None:
    target, workers = served
    clients: list[imaplib.IMAP4_SSL] = []
    accepted = refused = 0
    try:
        for _ in range(4 * PER_ADDRESS):
            try:
                client = _imaps(target)
            except imaplib.IMAP4.error:
                refused += 1  # * BYE as the greeting
                continue
            clients.append(client)
            accepted += 1
        serving = {_serving_pid(c, workers.pids) for c in clients}
    finally:
        for client in clients:
            try:
                client.logout()
            except (imaplib.IMAP4.error, OSError, ssl.SSLError):
                pass
    assert 0 < accepted <= PER_ADDRESS, (accepted, refused)
    assert refused == 4 * PER_ADDRESS - accepted
    assert None not in serving
