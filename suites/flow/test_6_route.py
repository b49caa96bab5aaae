"""Step 6 — route: the receiver MTA takes mail for its users, refuses relaying and unknown users."""

from __future__ import annotations

import pytest

from harness.protocol.smtp import Reply
from harness.suite import (
    TRACE_FIELDS,
    Evidence,
    account,
    field_name,
    make_message,
    open_mx,
    run,
    split_added_fields,
    token,
    wait_delivery,
)
from harness.targets import Target

pytestmark = pytest.mark.step(6)

FOREIGN = "example.com"


@pytest.mark.requirement("ROUTE-LOCAL-DELIVERY")
def test_mail_for_local_user_is_accepted(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    mark = token()
    message = make_message(sender=f"someone@{FOREIGN}", recipient=rcpt.address,
                           subject="inbound", body="Straight to the MX.\r\n", mark=mark)

    async def scenario() -> tuple[Reply, Reply | None]:
        client = await open_mx(target, evidence, target.receiver)
        try:
            result = await client.send_message(f"someone@{FOREIGN}", [rcpt.address], message)
            await client.quit()
        finally:
            await client.close()
        if result.data is not None and result.data.is_positive:
            await wait_delivery(target, evidence, target.receiver, mark)
        return result.rcpts[0][1], result.data

    rcpt_reply, data_reply = run(scenario())
    assert rcpt_reply.code in (250, 251), f"RCPT for local user answered {rcpt_reply.code}"
    assert data_reply is not None and data_reply.code == 250, "DATA was not accepted"


@pytest.mark.requirement("ROUTE-NO-OPEN-RELAY")
def test_relay_for_foreign_domain_is_refused(target: Target, evidence: Evidence) -> None:
    async def scenario() -> Reply:
        client = await open_mx(target, evidence, target.receiver)
        try:
            mail = await client.mail(f"someone@{FOREIGN}")
            assert mail.code == 250, f"MAIL answered {mail.code}"
            return await client.rcpt(f"victim@{FOREIGN}")
        finally:
            await client.close()

    reply = run(scenario())
    # RFC 5321 §3.6.2 / §7.1: relaying for arbitrary clients makes an open relay.
    assert reply.is_permanent, f"RCPT for a foreign domain from an unauthenticated client answered {reply.code}"


@pytest.mark.requirement("ROUTE-UNKNOWN-USER")
def test_unknown_local_user_is_refused(target: Target, evidence: Evidence) -> None:
    async def scenario() -> Reply:
        client = await open_mx(target, evidence, target.receiver)
        try:
            await client.mail(f"someone@{FOREIGN}")
            return await client.rcpt(f"no-such-user-{token()}@{target.receiver.domain}")
        finally:
            await client.close()

    reply = run(scenario())
    # RFC 5321 §3.3: "... if the recipient is known not to be a deliverable address, the SMTP
    # server returns a 550 reply"
    assert reply.code == 550, f"RCPT for an unknown user answered {reply.code}"


@pytest.mark.requirement("TRACE-RECEIVED")
def test_received_trace_is_prepended(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    mark = token()
    message = make_message(sender=f"someone@{FOREIGN}", recipient=rcpt.address,
                           subject="trace", body="Who touched me?\r\n", mark=mark)

    async def scenario() -> bytes:
        client = await open_mx(target, evidence, target.receiver)
        try:
            await client.send_message(f"someone@{FOREIGN}", [rcpt.address], message)
            await client.quit()
        finally:
            await client.close()
        return (await wait_delivery(target, evidence, target.receiver, mark))[1]

    added, rest = split_added_fields(run(scenario()), message)
    assert not rest, "the delivered message is not the sent one with fields prepended"
    names = [field_name(f) for f in added]
    # RFC 5321 §4.4: "it MUST insert trace ("time stamp" or "Received") information at the
    # beginning of the message content"
    assert "received" in names, f"no Received field was prepended (prepended: {names})"
    assert set(names) <= TRACE_FIELDS, f"non-trace fields prepended: {sorted(set(names) - TRACE_FIELDS)}"
