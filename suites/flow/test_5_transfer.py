"""Step 5 — transfer: the sender MTA retries after 4yz and bounces (with a null sender) after 5yz."""

from __future__ import annotations

import pytest

from harness.sink import SinkServer
from harness.suite import (
    SCRIPTED_ZONE,
    Evidence,
    ScriptedDNS,
    account,
    header_values,
    make_message,
    need,
    run,
    scripted_dns,
    submit,
    token,
    wait_delivery,
)
from harness.targets import Target

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

    async def scenario() -> int:
        async with SinkServer(dns.sinks[4], dns.outbound_port) as sink:
            sink.script_data(["451 4.3.0 Try again later"])
            evidence.note("the MX answers the first DATA with 451")
            await _send_via_scripted_mx(target, evidence, dns, "retry", mark)
            got = await sink.wait_for_message(target.delivery_timeout + 10)
            assert mark.encode() in got.data
            evidence.note(f"delivered after {sink.connections} connection(s)")
            return sink.connections

    # RFC 5321 §4.5.4.1: "mail that cannot be transmitted immediately MUST be queued and
    # periodically retried by the sender."
    assert run(scenario()) >= 2


@pytest.mark.requirement("TRANSFER-BOUNCE", "BOUNCE-NULL-SENDER")
def test_permanent_failure_bounces_to_sender(target: Target, evidence: Evidence) -> None:
    dns = scripted_dns(target, sinks=5)
    need(target.sender.imap is not None or target.sender.imaps is not None,
         "target gives no IMAP access to the sender's mailbox, where the bounce arrives")
    mark = token()

    async def scenario() -> bytes:
        async with SinkServer(dns.sinks[4], dns.outbound_port) as sink:
            sink.script_rcpt(["550 5.1.1 No such user here"])
            evidence.note("the MX refuses RCPT with 550 5.1.1")
            await _send_via_scripted_mx(target, evidence, dns, "bounce", mark)
            # RFC 5321 §6.1: "... it MUST construct an "undeliverable mail" notification message
            # and send it to the originator of the undeliverable mail".
            _, bounce = await wait_delivery(target, evidence, target.sender, mark)
            return bounce

    bounce = run(scenario())
    paths = header_values(bounce, "Return-Path")
    # RFC 5321 §4.5.5: notifications such as non-delivery reports are "required by existing and
    # proposed Standards to be sent with a null reverse-path" (MAIL FROM:<>).
    assert paths, "the bounce has no Return-Path (the envelope sender is not visible)"
    assert paths[0] == "<>", f"bounce was sent with reverse-path {paths[0]}"
