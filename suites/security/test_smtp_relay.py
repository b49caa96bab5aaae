"""Open relay with tricky address forms (RFC 5321 §3.6.2): percent hack, source route, quoted local part, bang path, trailing dot, IP literal — on the MX and on submission without AUTH.

Two kinds of evidence. The RCPT reply: a recipient that names a foreign destination (the plain
address, a source route, a trailing dot, an address literal) answered 250 or 251 for an
unauthenticated client is the finding, with or without DNS control. Arrival: where the harness
controls the target's DNS, the foreign domain points at a harness sink, and any message that
reaches it was relayed, whatever form carried it. The forms that keep a local domain (percent
hack, quoted local part, bang path) may be accepted as local mailboxes (a catch-all does), so
they are judged by arrival only.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.clients.smtp import SMTPClient
from harness.sink import SinkServer
from harness.suite import (
    SCRIPTED_ZONE,
    Evidence,
    check,
    dns_control,
    make_message,
    open_mx_plain,
    open_submission,
    run,
    token,
)
from harness.targets import ProviderTarget, Target

pytestmark = pytest.mark.step(6)

#: How long a relayed message gets to show up at the sink when a relay attempt was accepted.
RELAY_WINDOW = 5.0
#: The foreign domain without DNS control (RFC 2606 reserves it; no server is responsible for it).
FOREIGN = "example.com"


@dataclass(frozen=True)
class Form:
    name: str
    path: str
    #: The path names the foreign destination itself, so accepting it is accepting to relay.
    foreign_destination: bool


def relay_forms(user: str, foreign: str, local: str, literal_ip: str) -> list[Form]:
    """The RCPT paths that each name a mailbox at *foreign* (or at *literal_ip*)."""
    return [
        Form("plain", f"<{user}@{foreign}>", True),
        Form("percent hack", f"<{user}%{foreign}@{local}>", False),
        # RFC 5321 §3.6.1: a server "MAY ignore the route information and simply send to the
        # final destination specified as the last element in the route and SHOULD do so".
        Form("source route", f"<@{local}:{user}@{foreign}>", True),
        Form("quoted local part", f'<"{user}@{foreign}"@{local}>', False),
        Form("bang path", f"<{foreign}!{user}@{local}>", False),
        Form("trailing dot", f"<{user}@{foreign}.>", True),
        Form("IP literal", f"<{user}@[{literal_ip}]>", True),
    ]


@dataclass
class Attempt:
    form: Form
    rcpt: int
    data: int | None

    @property
    def rcpt_accepted(self) -> bool:
        return self.rcpt // 100 == 2

    def describe(self) -> str:
        return f"{self.form.name} ({self.form.path} → {self.rcpt})"


async def _attempt(client: SMTPClient, mail_from: str, form: Form, message: bytes) -> Attempt:
    mail = await client.mail(mail_from)
    rcpt = await client.command(f"RCPT TO:{form.path}")
    data: int | None = None
    if mail.is_positive and rcpt.is_positive:
        data = (await client.data(message)).code
    else:
        await client.rset()
    return Attempt(form, rcpt.code, data)


def _check_no_relay(
    target: Target, evidence: Evidence, provider: ProviderTarget, opener: str, mail_from: str,
    plain_requirement: str,
) -> None:
    dns = dns_control(target, provider)
    mark = token()
    foreign = f"{mark}.{SCRIPTED_ZONE}" if dns is not None else FOREIGN
    # An address the harness owns (a sink address), never one of the server's own.
    literal_ip = dns.sinks[0] if dns is not None else target.sink_addresses[0]
    forms = relay_forms("victim", foreign, provider.domain, literal_ip)

    async def attempts() -> list[Attempt]:
        client = (await open_mx_plain(target, evidence, provider) if opener == "mx"
                  else await open_submission(target, evidence, login=False))
        results = []
        try:
            for form in forms:
                message = make_message(sender=mail_from, recipient=form.path.strip("<>"),
                                       subject=f"relay test: {form.name}", body="Relay me?\r\n",
                                       mark=mark)
                results.append(await _attempt(client, mail_from, form, message))
        finally:
            await client.close()
        return results

    async def scenario() -> tuple[list[Attempt], int | None]:
        if dns is None:
            evidence.note("no DNS control: judged by the RCPT replies only; the forms with a "
                          "local domain (percent hack, quoted local part, bang path) are not judged")
            return await attempts(), None
        sink_ip, port = dns.sinks[0], dns.outbound_port
        async with SinkServer(sink_ip, port) as sink:
            await dns.point(evidence, foreign, mx=[(10, sink_ip)])
            evidence.note(f"{sink_ip}:{port} is a harness sink; {foreign} points at it")
            results = await attempts()
            if any(a.data == 250 for a in results):
                evidence.note(f"a relay attempt was accepted: watching the sink for {RELAY_WINDOW} s")
                try:
                    await sink.wait_for_message(RELAY_WINDOW)
                except TimeoutError:
                    pass
            return results, len(sink.messages)

    results, relayed = run(scenario())
    for a in results:
        evidence.note(f"{a.form.name}: RCPT TO:{a.form.path} → {a.rcpt}"
                      + (f", DATA → {a.data}" if a.data else ""))
    plain, *tricky = results
    # RFC 5321 §3.6.2: "If it declines to relay mail to a particular address for policy reasons,
    # a 550 response SHOULD be returned." RFC 6409 §4.3 (submission): MAIL from a session that
    # has not authenticated gets an error, so no recipient can be accepted there either.
    check(plain_requirement, not plain.rcpt_accepted,
          f"RCPT TO:{plain.form.path} for a foreign domain, from an unauthenticated client, "
          f"answered {plain.rcpt}")
    direct = [a for a in tricky if a.form.foreign_destination and a.rcpt_accepted]
    check("RELAY-ADDRESS-FORMS", not direct,
          f"accepted for an unauthenticated client, recipients that name a foreign destination: "
          f"{', '.join(a.describe() for a in direct)}")
    if relayed is not None:
        accepted = [a.describe() for a in tricky if a.data == 250]
        check("RELAY-ADDRESS-FORMS", relayed == 0,
              f"{relayed} message(s) reached the sink for {foreign}: relayed for an "
              f"unauthenticated client; accepted: {', '.join(accepted)}")


@pytest.mark.requirement("ROUTE-NO-OPEN-RELAY", "RELAY-ADDRESS-FORMS")
def test_smtp_no_relay_through_tricky_addresses_on_mx(target: Target, evidence: Evidence) -> None:
    _check_no_relay(target, evidence, target.receiver, "mx", "someone@example.com",
                    "ROUTE-NO-OPEN-RELAY")


@pytest.mark.requirement("AUTH-REQUIRED", "RELAY-ADDRESS-FORMS")
@pytest.mark.step(2)
def test_smtp_no_relay_through_tricky_addresses_on_submission(target: Target, evidence: Evidence) -> None:
    _check_no_relay(target, evidence, target.sender, "submission", f"someone@{target.sender.domain}",
                    "AUTH-REQUIRED")
