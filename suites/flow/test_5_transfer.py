"""Step 5 — transfer: the sender MTA retries after 4yz and bounces (with a null sender) after 5yz."""

from __future__ import annotations

import pytest

from harness.dns import send_update
from harness.sink import SinkServer
from harness.suite import (
    Evidence,
    account,
    header_values,
    make_message,
    need,
    run,
    submit,
    token,
    wait_delivery,
)
from harness.targets import Target

pytestmark = pytest.mark.step(5)

ZONE = "test.mailharness.invalid"


def _scripted_mx(target: Target) -> tuple[str, int, int, str]:
    need(target.dns is not None and target.dns.update,
         "target's MTA does not resolve through a zone server the harness may update")
    need(target.sender.outbound_port is not None, "target does not give its MTA's outbound port")
    need(len(target.sink_addresses) >= 5, "target gives fewer than five sink addresses")
    assert target.dns is not None and target.sender.outbound_port is not None
    return target.dns.host, target.dns.port, target.sender.outbound_port, target.sink_addresses[4]


@pytest.mark.requirement("TRANSFER-RETRY")
def test_temporary_failure_is_retried(target: Target, evidence: Evidence) -> None:
    dns_host, dns_port, port, address = _scripted_mx(target)
    mark = token()
    domain = f"retry-{mark}.{ZONE}"
    sender = account(target.sender)

    async def scenario() -> int:
        async with SinkServer(address, port) as sink:
            sink.script_data(["451 4.3.0 Try again later"])
            await send_update(dns_host, dns_port, ZONE, add=[
                (f"{domain}.", 60, "MX", f"10 mx.{domain}."), (f"mx.{domain}.", 60, "A", address),
            ])
            evidence.note(f"MX for {domain} → {address}, which answers the first DATA with 451")
            message = make_message(sender=sender.address, recipient=f"user@{domain}",
                                   subject="retry", body="Deliver me on the second try.\r\n", mark=mark)
            await submit(target, evidence, message, [f"user@{domain}"])
            got = await sink.wait_for_message(target.delivery_timeout + 10)
            assert mark.encode() in got.data
            evidence.note(f"delivered after {sink.connections} connection(s)")
            return sink.connections

    # RFC 5321 §4.5.4.1: "mail that cannot be transmitted immediately MUST be queued and
    # periodically retried by the sender."
    assert run(scenario()) >= 2


@pytest.mark.requirement("TRANSFER-BOUNCE", "BOUNCE-NULL-SENDER")
def test_permanent_failure_bounces_to_sender(target: Target, evidence: Evidence) -> None:
    dns_host, dns_port, port, address = _scripted_mx(target)
    need(target.sender.imap is not None or target.sender.imaps is not None,
         "target gives no IMAP access to the sender's mailbox, where the bounce arrives")
    mark = token()
    domain = f"bounce-{mark}.{ZONE}"
    sender = account(target.sender)

    async def scenario() -> bytes:
        async with SinkServer(address, port) as sink:
            sink.script_rcpt(["550 5.1.1 No such user here"])
            await send_update(dns_host, dns_port, ZONE, add=[
                (f"{domain}.", 60, "MX", f"10 mx.{domain}."), (f"mx.{domain}.", 60, "A", address),
            ])
            evidence.note(f"MX for {domain} → {address}, which refuses RCPT with 550 5.1.1")
            message = make_message(sender=sender.address, recipient=f"nobody@{domain}",
                                   subject="bounce", body="This must come back.\r\n", mark=mark)
            await submit(target, evidence, message, [f"nobody@{domain}"])
            # RFC 5321 §6.1: "... it MUST construct an "undeliverable mail" notification message
            # and send it to the originator of the undeliverable mail".
            _, bounce = await wait_delivery(target, evidence, target.sender, mark)
            return bounce

    bounce = run(scenario())
    paths = header_values(bounce, "Return-Path")
    # RFC 5321 §4.5.5: "All other types of messages (i.e., any message which is not required by
    # a Standards-Track RFC to have a null reverse-path) SHOULD be sent with a valid, non-null
    # reverse-path" — and notifications MUST use the null one: "MAIL FROM:<>".
    assert paths, "the bounce has no Return-Path (the envelope sender is not visible)"
    assert paths[0] == "<>", f"bounce was sent with reverse-path {paths[0]}"
