"""Step 4 — resolve: the sender MTA finds the receiver through DNS MX records, in preference order."""

from __future__ import annotations

import pytest

from harness.dns import send_update
from harness.sink import SinkServer
from harness.suite import Evidence, account, make_message, need, run, submit, token
from harness.targets import Target

pytestmark = pytest.mark.step(4)

ZONE = "test.mailharness.invalid"


def _dns_controlled(target: Target) -> tuple[str, int, int, tuple[str, ...]]:
    need(target.dns is not None and target.dns.update,
         "target's MTA does not resolve through a zone server the harness may update")
    need(target.sender.outbound_port is not None, "target does not give its MTA's outbound port")
    need(len(target.sink_addresses) >= 3, "target gives fewer than three sink addresses")
    assert target.dns is not None and target.sender.outbound_port is not None
    return target.dns.host, target.dns.port, target.sender.outbound_port, target.sink_addresses


@pytest.mark.requirement("MX-PREFERENCE")
def test_lowest_preference_first_and_fallback(target: Target, evidence: Evidence) -> None:
    dns_host, dns_port, port, sinks = _dns_controlled(target)
    mark = token()
    domain = f"{mark}.{ZONE}"
    dead, best, worse = sinks[0], sinks[1], sinks[2]
    sender = account(target.sender)

    async def scenario() -> tuple[int, int]:
        async with SinkServer(best, port) as good, SinkServer(worse, port) as backup:
            await send_update(dns_host, dns_port, ZONE, add=[
                (f"{domain}.", 60, "MX", f"5 dead.{domain}."),
                (f"{domain}.", 60, "MX", f"10 best.{domain}."),
                (f"{domain}.", 60, "MX", f"20 worse.{domain}."),
                (f"dead.{domain}.", 60, "A", dead),  # nothing listens here
                (f"best.{domain}.", 60, "A", best),
                (f"worse.{domain}.", 60, "A", worse),
            ])
            evidence.note(f"MX for {domain}: 5 → {dead} (closed), 10 → {best}, 20 → {worse}")
            message = make_message(sender=sender.address, recipient=f"user@{domain}",
                                   subject="mx preference", body="Which MX?\r\n", mark=mark)
            await submit(target, evidence, message, [f"user@{domain}"])
            got = await good.wait_for_message(target.delivery_timeout)
            evidence.note(f"{best} received MAIL FROM:<{got.mail_from}>")
            return len(good.messages), len(backup.messages)

    at_best, at_worse = run(scenario())
    # RFC 5321 §5.1: "the SMTP client MUST try ... in order of preference, lowest first"
    assert at_best == 1 and at_worse == 0, f"best MX got {at_best}, worse MX got {at_worse}"


@pytest.mark.requirement("MX-IMPLICIT")
def test_a_record_is_implicit_mx(target: Target, evidence: Evidence) -> None:
    dns_host, dns_port, port, sinks = _dns_controlled(target)
    mark = token()
    domain = f"{mark}.{ZONE}"
    sender = account(target.sender)

    async def scenario() -> bytes:
        address = sinks[3 % len(sinks)]
        async with SinkServer(address, port) as sink:
            await send_update(dns_host, dns_port, ZONE, add=[(f"{domain}.", 60, "A", address)])
            evidence.note(f"{domain} has no MX, only A {address}")
            message = make_message(sender=sender.address, recipient=f"user@{domain}",
                                   subject="implicit mx", body="No MX here.\r\n", mark=mark)
            await submit(target, evidence, message, [f"user@{domain}"])
            return (await sink.wait_for_message(target.delivery_timeout)).data

    # RFC 5321 §5.1: "If an empty list of MXs is returned, the address is treated as if it was
    # associated with an implicit MX RR, with a preference of 0, pointing to that host."
    assert mark.encode() in run(scenario())
