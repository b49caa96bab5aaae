"""AUTH abuse (RFC 4954 §4, §14): no clear-text AUTH where TLS is offered; repeated failures slowed down or cut off, but not before 3."""

from __future__ import annotations

import time

import pytest

from harness.clients.smtp import SMTPConnectionClosed
from harness.protocol.smtp import Reply
from harness.suite import (
    Evidence,
    account,
    check,
    need,
    open_submission,
    run,
    smtp_connect,
)
from harness.targets import Target

pytestmark = pytest.mark.step(2)

#: Failed attempts the throttle check makes at most.
MAX_ATTEMPTS = 10
#: How much slower the last failure must be than the first to count as slowed down.
SLOWDOWN = 0.3


async def _failures(target: Target, evidence: Evidence, attempts: int) -> tuple[list[tuple[int, float]], bool]:
    """(code, seconds) per failed AUTH PLAIN; True when the server closed the connection."""
    acct = account(target.sender)
    client = await open_submission(target, evidence, login=False)
    seen: list[tuple[int, float]] = []
    try:
        for n in range(attempts):
            started = time.monotonic()
            try:
                reply: Reply = await client.auth_plain(acct.user, f"{acct.password}-wrong-{n}")
            except SMTPConnectionClosed:
                return seen, True
            seen.append((reply.code, time.monotonic() - started))
            if reply.code == 421:
                return seen, True
        return seen, False
    finally:
        await client.close()


@pytest.mark.requirement("AUTH-FAILURE-THROTTLE")
def test_smtp_auth_failures_are_throttled(target: Target, evidence: Evidence) -> None:
    seen, closed = run(_failures(target, evidence, MAX_ATTEMPTS))
    evidence.note("failed AUTH attempts (code, seconds): " + ", ".join(f"{c} {t:.2f}" for c, t in seen))
    slowed = len(seen) >= 2 and seen[-1][1] - seen[0][1] >= SLOWDOWN
    # RFC 4954 §14: "Servers MAY implement a policy whereby the connection is dropped after a
    # number of failed authentication attempts"; slowing guesses down is the other defence.
    # A MAY: shown as offered or not offered, never red.
    check("AUTH-FAILURE-THROTTLE", closed or slowed,
          f"{len(seen)} failed AUTH attempts were answered without a slowdown "
          f"(first {seen[0][1]:.2f} s, last {seen[-1][1]:.2f} s) and without cutting the session off")


@pytest.mark.requirement("AUTH-NO-EARLY-DROP")
def test_smtp_auth_not_dropped_before_three_failures(target: Target, evidence: Evidence) -> None:
    seen, closed = run(_failures(target, evidence, 3))
    codes = [c for c, _ in seen]
    # RFC 4954 §14: "If they do so, they SHOULD NOT drop the connection until at least 3 attempts
    # to authenticate have failed."
    check("AUTH-NO-EARLY-DROP", not closed and codes == [535, 535, 535],
          f"three failed AUTH attempts got {codes} (closed: {closed})")


@pytest.mark.requirement("AUTH-NO-PLAINTEXT")
def test_smtp_auth_login_refused_in_clear_text(target: Target, evidence: Evidence) -> None:
    endpoint = target.sender.submission
    need(endpoint is not None and not endpoint.implicit_tls, "target has no clear-text submission port")
    acct = account(target.sender)

    async def scenario() -> tuple[bool, int]:
        assert endpoint is not None
        client = await smtp_connect(target, evidence, endpoint, "submission")
        try:
            await client.ehlo()
            if "STARTTLS" not in client.extensions:
                return False, 0
            return True, (await client.auth_login(acct.user, acct.password)).code
        finally:
            await client.close()

    offered, code = run(scenario())
    need(offered, "submission port offers no STARTTLS (so clear-text AUTH is the only way)")
    # RFC 4954 §4: a server "MUST implement a configuration in which it does NOT permit any
    # plaintext password mechanisms, unless either the STARTTLS command has been negotiated or
    # some other mechanism that protects the session from password snooping has been provided."
    check("AUTH-NO-PLAINTEXT", code != 235, "AUTH LOGIN succeeded (235) in clear text although STARTTLS is offered")
