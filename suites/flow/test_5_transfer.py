"""Step 5 — transfer: the sender MTA retries after 4yz and bounces (with a null sender) after 5yz."""

from __future__ import annotations

import pytest

from harness.sink import SinkServer
from harness.suite import (
    SCRIPTED_ZONE,
    Evidence,
    ScriptedDNS,
    account,
    check,
    header_values,
    make_message,
    need,
    precondition,
    run,
    scripted_dns,
    submit,
    token,
)
from harness.targets import Target
from suites.flow.flow_helpers import arrival, waited

pytestmark = pytest.mark.step(5)


async def _send_via_scripted_mx(
    target: Target, evidence: Evidence, dns: ScriptedDNS, kind: str, mark: str
) -> str:
    """Point a fresh domain's MX at the fifth sink address and submit one message to it."""
    domain = f"{kind}-{mark}.{SCRIPTED_ZONE}"
    await dns.point(evidence, domain, mx=[(10, dns.sinks[4])])
    sender, recipient = account(target.sender), f"user@{domain}"
    message = make_message(sender=sender.address, recipient=recipient, subject=kind,
                           body=f"Testing {kind}.\r\n", mark=mark)
    await submit(target, evidence, message, [recipient])
    return recipient


@pytest.mark.requirement("TRANSFER-RETRY")
def test_temporary_failure_is_retried(target: Target, evidence: Evidence) -> None:
    dns = scripted_dns(target, sinks=5)
    mark = token()

    async def scenario() -> tuple[bytes | None, int]:
        async with SinkServer(dns.sinks[4], dns.outbound_port) as sink:
            sink.script_data(["451 4.3.0 Try again later"])
            evidence.note("the MX answers the first DATA with 451")
            await _send_via_scripted_mx(target, evidence, dns, "retry", mark)
            try:
                got = await sink.wait_for_message(target.delivery_timeout + 10)
            except TimeoutError:
                return None, sink.connections
            evidence.note(f"delivered after {sink.connections} connection(s)")
            return got.data, sink.connections

    data, connections = run(scenario())
    # RFC 5321 §4.5.4.1: "mail that cannot be transmitted immediately MUST be queued and
    # periodically retried by the sender."
    check("TRANSFER-RETRY", data is not None and mark.encode() in data,
          f"after 451 to DATA the message {mark} was {'sent again' if data else 'not sent again'} within "
          f"{target.delivery_timeout + 10:.0f} s ({connections} connection(s))")
    check("TRANSFER-RETRY", connections >= 2,
          f"the message was accepted in connection {connections}, the first one got 451")


@pytest.mark.requirement("TRANSFER-BOUNCE", "BOUNCE-NULL-SENDER")
def test_permanent_failure_bounces_to_sender(target: Target, evidence: Evidence) -> None:
    dns = scripted_dns(target, sinks=5)
    need(target.sender.imap is not None or target.sender.imaps is not None,
         "target gives no IMAP access to the sender's mailbox, where the bounce arrives")
    mark = token()

    async def scenario() -> bytes | None:
        async with SinkServer(dns.sinks[4], dns.outbound_port) as sink:
            sink.script_rcpt(["550 5.1.1 No such user here"])
            evidence.note("the MX refuses RCPT with 550 5.1.1")
            await _send_via_scripted_mx(target, evidence, dns, "bounce", mark)
            found = await arrival(target, evidence, target.sender, mark)
            return None if found is None else found.data

    bounce = run(scenario())
    sender = account(target.sender).address
    # RFC 5321 §6.1: "... it MUST construct an "undeliverable mail" notification message and
    # send it to the originator of the undeliverable mail".
    check("TRANSFER-BOUNCE", bounce is not None,
          f"after 550 5.1.1 to RCPT {'a' if bounce else 'no'} notification about {mark} reached "
          f"{sender} INBOX {waited(target)}")
    assert bounce is not None
    paths = header_values(bounce, "Return-Path")
    # RFC 5321 §4.4: the delivery server records the reverse-path in Return-Path; without it
    # the notification's envelope sender cannot be seen.
    precondition(paths, "the notification has no Return-Path field: its reverse-path is not visible")
    # RFC 5321 §4.5.5: notifications such as non-delivery reports are "required by existing and
    # proposed Standards to be sent with a null reverse-path" (MAIL FROM:<>).
    check("BOUNCE-NULL-SENDER", paths[0] == "<>", f"the notification was sent with reverse-path {paths[0]}")
