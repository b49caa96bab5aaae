"""Step 4 — resolve: the sender MTA finds the receiver through DNS MX records, in preference order."""

from __future__ import annotations

import pytest

from harness.sink import SinkServer
from harness.suite import (
    SCRIPTED_ZONE,
    Evidence,
    account,
    check,
    make_message,
    run,
    scripted_dns,
    submit,
    token,
)
from harness.targets import Target

pytestmark = pytest.mark.step(4)


@pytest.mark.requirement("MX-PREFERENCE")
def test_lowest_preference_first_and_fallback(target: Target, evidence: Evidence) -> None:
    dns = scripted_dns(target, sinks=3)
    mark = token()
    domain = f"{mark}.{SCRIPTED_ZONE}"
    dead, best, worse = dns.sinks[0], dns.sinks[1], dns.sinks[2]
    sender = account(target.sender)

    async def scenario() -> tuple[int, int]:
        async with SinkServer(best, dns.outbound_port) as good, \
                SinkServer(worse, dns.outbound_port) as backup:
            # Nothing listens on *dead*: the MTA must fall back to the next preference.
            await dns.point(evidence, domain, mx=[(5, dead), (10, best), (20, worse)])
            message = make_message(sender=sender.address, recipient=f"user@{domain}",
                                   subject="mx preference", body="Which MX?\r\n", mark=mark)
            await submit(target, evidence, message, [f"user@{domain}"])
            try:
                got = await good.wait_for_message(target.delivery_timeout)
                evidence.note(f"{best} received MAIL FROM:<{got.mail_from}>")
            except TimeoutError:
                evidence.note(f"{best} received nothing within {target.delivery_timeout:.0f} s")
            return len(good.messages), len(backup.messages)

    at_best, at_worse = run(scenario())
    # RFC 5321 §5.1: "the SMTP client MUST try ... in order of preference, lowest first"
    check("MX-PREFERENCE", at_best == 1 and at_worse == 0,
          f"MX 5 unreachable: MX 10 got {at_best} message(s), MX 20 got {at_worse}")


@pytest.mark.requirement("MX-IMPLICIT")
def test_a_record_is_implicit_mx(target: Target, evidence: Evidence) -> None:
    dns = scripted_dns(target, sinks=4)
    mark = token()
    domain = f"{mark}.{SCRIPTED_ZONE}"
    sender = account(target.sender)

    async def scenario() -> bytes | None:
        async with SinkServer(dns.sinks[3], dns.outbound_port) as sink:
            await dns.point(evidence, domain, a=dns.sinks[3])
            message = make_message(sender=sender.address, recipient=f"user@{domain}",
                                   subject="implicit mx", body="No MX here.\r\n", mark=mark)
            await submit(target, evidence, message, [f"user@{domain}"])
            try:
                return (await sink.wait_for_message(target.delivery_timeout)).data
            except TimeoutError:
                return None

    data = run(scenario())
    # RFC 5321 §5.1: "If an empty list of MXs is returned, the address is treated as if it was
    # associated with an implicit MX RR, with a preference of 0, pointing to that host."
    check("MX-IMPLICIT", data is not None and mark.encode() in data,
          f"the host of {domain}'s A record received {'the' if data else 'no'} message {mark} "
          f"within {target.delivery_timeout:.0f} s")
