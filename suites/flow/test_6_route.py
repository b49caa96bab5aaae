"""Step 6 — route: the receiver MTA takes mail for its users, refuses relaying and unknown users."""

from __future__ import annotations

import pytest

from harness.protocol.smtp import Reply
from harness.suite import (
    TRACE_FIELDS,
    Evidence,
    account,
    check,
    field_name,
    make_message,
    open_mx,
    precondition,
    run,
    split_added_fields,
    token,
)
from harness.targets import Target
from suites.flow.flow_helpers import Arrival, Place, arrival, first_arrival, readable, waited

pytestmark = pytest.mark.step(6)

FOREIGN = "example.com"


@pytest.mark.requirement("ROUTE-LOCAL-DELIVERY", "HANDOFF-RESPONSIBILITY")
def test_mail_for_local_user_is_accepted(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    mark = token()
    message = make_message(sender=f"someone@{FOREIGN}", recipient=rcpt.address,
                           subject="inbound", body="Straight to the MX.\r\n", mark=mark)

    async def scenario() -> None:
        client = await open_mx(target, evidence, target.receiver)
        try:
            result = await client.send_message(f"someone@{FOREIGN}", [rcpt.address], message)
            await client.quit()
        finally:
            await client.close()
        precondition(result.mail.code == 250, f"MAIL FROM:<someone@{FOREIGN}> answered {result.mail.code}")
        code = result.rcpts[0][1].code
        # RFC 5321 §3.6: a server accepts mail for the domains it provides mail service for.
        check("ROUTE-LOCAL-DELIVERY", code in (250, 251), f"RCPT TO:<{rcpt.address}> answered {code}")
        data = result.data.code if result.data is not None else None
        check("ROUTE-LOCAL-DELIVERY", data == 250, f"DATA for {rcpt.address} answered {data}")
        # RFC 5321 §6.1: after 250 to DATA the server "is accepting responsibility for
        # delivering or relaying the message".
        found = await arrival(target, evidence, target.receiver, mark)
        check("HANDOFF-RESPONSIBILITY", found is not None,
              f"the message {mark}, accepted with 250, {'reached' if found else 'did not reach'} "
              f"{rcpt.address} INBOX {waited(target)}")

    run(scenario())


@pytest.mark.requirement("ROUTE-NO-OPEN-RELAY")
def test_relay_for_foreign_domain_is_refused(target: Target, evidence: Evidence) -> None:
    async def scenario() -> Reply:
        client = await open_mx(target, evidence, target.receiver)
        try:
            mail = await client.mail(f"someone@{FOREIGN}")
            precondition(mail.code == 250, f"MAIL FROM:<someone@{FOREIGN}> answered {mail.code}")
            return await client.rcpt(f"victim@{FOREIGN}")
        finally:
            await client.close()

    reply = run(scenario())
    # RFC 5321 §3.6.2 / §7.1: relaying for arbitrary clients makes an open relay; "If it
    # declines to relay mail to a particular address for policy reasons, a 550 response SHOULD
    # be returned" (any 5yz refuses it).
    check("ROUTE-NO-OPEN-RELAY", reply.is_permanent,
          f"RCPT TO:<victim@{FOREIGN}> from an unauthenticated client answered {reply.code}")


@pytest.mark.requirement("ROUTE-UNKNOWN-USER")
def test_unknown_local_user_is_refused(target: Target, evidence: Evidence) -> None:
    domain = target.receiver.domain
    unknown = f"no-such-user-{token()}@{domain}"
    mark = token()
    # The envelope sender is a mailbox the harness reads, so that a bounce can be seen.
    reader = target.sender if target.sender.accounts else None
    sender = reader.accounts[0].address if reader is not None else f"someone@{FOREIGN}"
    message = make_message(sender=sender, recipient=unknown, subject="unknown user",
                           body="For a mailbox that does not exist.\r\n", mark=mark)
    # Where the message may go once accepted: a mailbox of the domain (a catch-all), or back
    # to the sender as a notification.
    places = [Place(target.receiver, i) for i, a in enumerate(target.receiver.accounts)
              if readable(target.receiver) and a.address.rpartition("@")[2].lower() == domain.lower()]
    if reader is not None and readable(reader):
        places.append(Place(reader))

    async def scenario() -> tuple[Reply, Reply | None, Arrival | None]:
        client = await open_mx(target, evidence, target.receiver)
        try:
            mail = await client.mail(sender)
            precondition(mail.code == 250, f"MAIL FROM:<{sender}> answered {mail.code}")
            rcpt = await client.rcpt(unknown)
            if not rcpt.is_positive:
                return rcpt, None, None
            data = await client.data(message)
            await client.quit()
        finally:
            await client.close()
        if not data.is_positive:
            return rcpt, data, None
        return rcpt, data, await first_arrival(target, evidence, places, mark)

    rcpt, data, found = run(scenario())
    # RFC 5321 §3.3: "If the recipient is known not to be a deliverable address, the SMTP
    # server returns a 550 reply, typically with a string such as "no such user - " and the
    # mailbox name (other circumstances and reply codes are possible)."
    if not rcpt.is_positive:
        check("ROUTE-UNKNOWN-USER", rcpt.is_permanent,
              f"RCPT TO:<{unknown}> answered {rcpt.code}"
              f"{'' if rcpt.is_permanent else ': neither refused (5yz) nor accepted'}")
        return
    # What the server takes for a deliverable address is its own (a catch-all takes any local
    # part); a server that verifies recipients only after the data "SHOULD treat a failure ...
    # as a "subsequent failure" and return a mail message" (§3.3). Either way the accepted
    # message is delivered or bounced, never dropped.
    assert data is not None
    precondition(not data.is_transient, f"RCPT TO:<{unknown}> answered {rcpt.code}, then DATA {data.code}")
    if data.is_permanent:
        outcome = f"the data was refused with {data.code}"
    elif found is not None:
        outcome = f"the message reached {found.place.shown()}"
    else:
        shown = ", ".join(p.shown() for p in places) or "no mailbox the harness can read"
        outcome = (f"the message {mark} reached none of {shown} {waited(target)}: "
                   "neither delivered nor bounced")
    check("ROUTE-UNKNOWN-USER", data.is_permanent or found is not None,
          f"RCPT TO:<{unknown}> answered {rcpt.code} and DATA {data.code}; {outcome}")


@pytest.mark.requirement("TRACE-RECEIVED")
def test_received_trace_is_prepended(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    mark = token()
    message = make_message(sender=f"someone@{FOREIGN}", recipient=rcpt.address,
                           subject="trace", body="Who touched me?\r\n", mark=mark)

    async def scenario() -> bytes:
        client = await open_mx(target, evidence, target.receiver)
        try:
            result = await client.send_message(f"someone@{FOREIGN}", [rcpt.address], message)
            await client.quit()
        finally:
            await client.close()
        data = result.data.code if result.data is not None else None
        precondition(data == 250, f"the MX did not take the message (DATA answered {data})")
        found = await arrival(target, evidence, target.receiver, mark)
        precondition(found is not None, f"the message {mark} did not reach {rcpt.address} INBOX {waited(target)}")
        assert found is not None
        return found.data

    added, rest = split_added_fields(run(scenario()), message)
    # RFC 5321 §4.4: "it MUST insert trace ("time stamp" or "Received") information at the
    # beginning of the message content"
    check("TRACE-RECEIVED", not rest, f"the delivered message differs from the sent one from {rest[:80]!r}"
          if rest else "the delivered message is the sent one with fields prepended")
    names = [field_name(f) for f in added]
    check("TRACE-RECEIVED", "received" in names, f"prepended fields: {names}")
    check("TRACE-RECEIVED", set(names) <= TRACE_FIELDS,
          f"prepended non-trace fields: {sorted(set(names) - TRACE_FIELDS)}")
