"""STARTTLS (RFC 3207) and implicit TLS (RFC 8314): syntax, state reset, not re-offered, once, not required on the MX."""

from __future__ import annotations

import pytest

from harness.clients.smtp import SMTPClient
from harness.suite import (
    Evidence,
    account,
    check,
    need,
    open_submission,
    precondition,
    run,
    smtp_connect,
)
from harness.targets import Endpoint, Target

pytestmark = pytest.mark.step(1)


def _submission(target: Target) -> Endpoint:
    endpoint = target.sender.submission
    need(endpoint is not None and not endpoint.implicit_tls, "target has no STARTTLS submission port")
    assert endpoint is not None
    return endpoint


async def _plain_ehlo(target: Target, evidence: Evidence, endpoint: Endpoint) -> SMTPClient:
    client = await smtp_connect(target, evidence, endpoint, "submission")
    try:
        ehlo = (await client.ehlo()).code
        precondition(ehlo == 250, f"EHLO answered {ehlo}")
        need("STARTTLS" in client.extensions, "submission port does not offer STARTTLS")
    except BaseException:
        await client.close()
        raise
    return client


@pytest.mark.requirement("STARTTLS-SYNTAX")
def test_smtp_starttls_with_argument_is_501(target: Target, evidence: Evidence) -> None:
    endpoint = _submission(target)

    async def scenario() -> None:
        client = await _plain_ehlo(target, evidence, endpoint)
        try:
            code = (await client.command("STARTTLS now")).code
        finally:
            await client.close()
        # RFC 3207 §4: "501 Syntax error (no parameters allowed)"
        check("STARTTLS-SYNTAX", code == 501, f"STARTTLS with an argument answered {code}")

    run(scenario())


@pytest.mark.requirement("STARTTLS-RESET")
def test_smtp_starttls_forgets_the_ehlo(target: Target, evidence: Evidence) -> None:
    endpoint = _submission(target)
    acct = account(target.sender)

    async def scenario() -> None:
        client = await smtp_connect(target, evidence, endpoint, "submission")
        try:
            # Does this server insist on EHLO before MAIL at all? Only then can it be seen to
            # have forgotten the EHLO. (RFC 5321 §4.1.4 puts that MUST on the client: a server
            # may take MAIL first.)
            before = (await client.mail(acct.address)).code
            need(before == 503, f"server answers MAIL before any EHLO with {before}, not 503")
            ehlo = (await client.ehlo()).code
            precondition(ehlo == 250, f"EHLO answered {ehlo}")
            need("STARTTLS" in client.extensions, "submission port does not offer STARTTLS")
            tls = (await client.starttls(target.client_ssl_context())).code
            need(tls != 454, "STARTTLS is offered but temporarily unavailable (454)")
            precondition(tls == 220, f"STARTTLS answered {tls}, not 220")
            after = (await client.mail(acct.address)).code
        finally:
            await client.close()
        # RFC 3207 §4.2: "The server MUST discard any knowledge obtained from the client, such
        # as the argument to the EHLO command, which was not obtained from the TLS negotiation
        # itself."
        check("STARTTLS-RESET", after == 503, f"MAIL after TLS without a new EHLO answered {after}, not 503")

    run(scenario())


@pytest.mark.requirement("STARTTLS-NOT-REOFFERED")
def test_smtp_starttls_not_offered_after_tls(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            need(client.is_tls, "submission session is not TLS")
            extensions = sorted(client.extensions)
        finally:
            await client.close()
        # RFC 3207 §4.2: "A server MUST NOT return the STARTTLS extension in response to an
        # EHLO command received after a TLS handshake has completed."
        check("STARTTLS-NOT-REOFFERED", "STARTTLS" not in extensions,
              f"EHLO over TLS lists STARTTLS: {extensions}")

    run(scenario())


@pytest.mark.requirement("STARTTLS-NOT-REOFFERED")
def test_smtp_starttls_not_offered_on_implicit_tls(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await open_submission(target, evidence, implicit=True, login=False)
        try:
            extensions = sorted(client.extensions)
        finally:
            await client.close()
        # RFC 3207 §4.2 (the session is TLS from the first byte, RFC 8314 §3.3).
        check("STARTTLS-NOT-REOFFERED", "STARTTLS" not in extensions,
              f"EHLO on the implicit TLS port lists STARTTLS: {extensions}")

    run(scenario())


@pytest.mark.requirement("STARTTLS-ONCE")
def test_smtp_second_starttls_is_refused(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            need(client.is_tls, "submission session is not TLS")
            code = (await client.command("STARTTLS")).code
        finally:
            await client.close()
        # RFC 3207 §4.2: "A client MUST NOT attempt to start a TLS session if a TLS session is
        # already active"; a server must not pretend to start a second one.
        check("STARTTLS-ONCE", code >= 400, f"STARTTLS inside TLS answered {code}")

    run(scenario())


@pytest.mark.requirement("STARTTLS-NOT-REQUIRED-MX")
@pytest.mark.step(6)
def test_smtp_mx_does_not_require_starttls(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    endpoint = target.receiver.mx
    need(endpoint is not None and not endpoint.implicit_tls, "target has no clear-text mx endpoint")
    assert endpoint is not None

    async def scenario() -> None:
        client = await smtp_connect(target, evidence, endpoint, "mx")
        try:
            ehlo = (await client.ehlo("relay.mailharness.invalid")).code
            precondition(ehlo == 250, f"EHLO answered {ehlo}")
            # RFC 3207 §4: "A publicly-referenced SMTP server MUST NOT require use of the
            # STARTTLS extension in order to deliver mail locally." (Whether it offers STARTTLS
            # at all does not matter here.)
            mail = (await client.mail("someone@example.com")).code
            check("STARTTLS-NOT-REQUIRED-MX", mail == 250, f"MAIL in clear text on the MX answered {mail}")
            code = (await client.rcpt(rcpt.address)).code
            check("STARTTLS-NOT-REQUIRED-MX", code in (250, 251),
                  f"RCPT TO:<{rcpt.address}> (a local user) in clear text answered {code}")
            await client.rset()
        finally:
            await client.close()

    run(scenario())
