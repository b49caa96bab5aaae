"""Open relay with tricky address forms (RFC 5321 §3.6.2): percent hack, source route, quoted local part, bang path, trailing dot, IP literal — on the MX and on submission without AUTH."""

from __future__ import annotations

import pytest

from harness.clients.smtp import SMTPClient
from harness.sink import SinkServer
from harness.suite import (
    SCRIPTED_ZONE,
    Evidence,
    check,
    make_message,
    open_mx_plain,
    open_submission,
    run,
    scripted_dns,
    token,
)
from harness.targets import ProviderTarget, Target

pytestmark = pytest.mark.step(6)

#: How long a relayed message gets to show up at the sink when a relay attempt was accepted.
RELAY_WINDOW = 5.0


def relay_forms(user: str, foreign: str, local: str, sink_ip: str) -> list[tuple[str, str]]:
    """(name, RCPT path) pairs that each name a mailbox at *foreign* (or at the sink's IP)."""
    return [
        ("plain", f"<{user}@{foreign}>"),
        ("percent hack", f"<{user}%{foreign}@{local}>"),
        ("source route", f"<@{local}:{user}@{foreign}>"),
        ("quoted local part", f'<"{user}@{foreign}"@{local}>'),
        ("bang path", f"<{foreign}!{user}@{local}>"),
        ("trailing dot", f"<{user}@{foreign}.>"),
        ("IP literal", f"<{user}@[{sink_ip}]>"),
    ]


async def _attempt(client: SMTPClient, mail_from: str, path: str, message: bytes) -> tuple[int, int | None]:
    mail = await client.mail(mail_from)
    rcpt = await client.command(f"RCPT TO:{path}")
    data: int | None = None
    if mail.is_positive and rcpt.is_positive:
        data = (await client.data(message)).code
    else:
        await client.rset()
    return rcpt.code, data


def _check_no_relay(
    target: Target, evidence: Evidence, provider: ProviderTarget, opener: str, mail_from: str
) -> None:
    dns = scripted_dns(target, sinks=1, provider=provider)
    mark = token()
    foreign = f"{mark}.{SCRIPTED_ZONE}"
    sink_ip, port = dns.sinks[0], dns.outbound_port
    local = provider.domain

    async def scenario() -> tuple[list[tuple[str, str, int, int | None]], int]:
        async with SinkServer(sink_ip, port) as sink:
            await dns.point(evidence, foreign, mx=[(10, sink_ip)])
            evidence.note(f"{sink_ip}:{port} is a harness sink")
            client = (await open_mx_plain(target, evidence, provider) if opener == "mx"
                      else await open_submission(target, evidence, login=False))
            results = []
            try:
                for name, path in relay_forms("victim", foreign, local, sink_ip):
                    message = make_message(sender=mail_from, recipient=path.strip("<>"),
                                           subject=f"relay test: {name}", body="Relay me?\r\n",
                                           mark=mark)
                    rcpt, data = await _attempt(client, mail_from, path, message)
                    results.append((name, path, rcpt, data))
            finally:
                await client.close()
            if any(data is not None and data == 250 for *_, data in results):
                evidence.note(f"a relay attempt was accepted: watching the sink for {RELAY_WINDOW} s")
                try:
                    await sink.wait_for_message(RELAY_WINDOW)
                except TimeoutError:
                    pass
            return results, len(sink.messages)

    results, relayed = run(scenario())
    for name, path, rcpt, data in results:
        evidence.note(f"{name}: RCPT TO:{path} → {rcpt}" + (f", DATA → {data}" if data else ""))
    accepted = [f"{name} ({path})" for name, path, rcpt, data in results if data == 250]
    # RFC 5321 §3.6.2: "If it declines to relay mail to a particular address for policy reasons, a
    # 550 response SHOULD be returned."  Mail accepted for an address that hides a foreign domain
    # must at least never leave for that domain.
    check("RELAY-ADDRESS-FORMS", relayed == 0,
          f"{relayed} message(s) reached the sink for {foreign}: relayed for an unauthenticated "
          f"client through {', '.join(accepted)}")


@pytest.mark.requirement("RELAY-ADDRESS-FORMS")
def test_smtp_no_relay_through_tricky_addresses_on_mx(target: Target, evidence: Evidence) -> None:
    _check_no_relay(target, evidence, target.receiver, "mx", "someone@example.com")


@pytest.mark.requirement("RELAY-ADDRESS-FORMS")
@pytest.mark.step(2)
def test_smtp_no_relay_through_tricky_addresses_on_submission(target: Target, evidence: Evidence) -> None:
    _check_no_relay(target, evidence, target.sender, "submission", f"someone@{target.sender.domain}")
