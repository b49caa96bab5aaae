"""STARTTLS (RFC 3207) and implicit TLS (RFC 8314): syntax, state reset, not re-offered, once, not required on the MX."""

from __future__ import annotations

import pytest

from harness.clients.smtp import SMTPClient
from harness.suite import Evidence, account, need, open_submission, run, smtp_connect
from harness.targets import Endpoint, Target

pytestmark = pytest.mark.step(1)


def _submission(target: Target) -> Endpoint:
    endpoint = target.sender.submission
    need(endpoint is not None and not endpoint.implicit_tls, "target has no STARTTLS submission port")
    assert endpoint is not None
    return endpoint


async def _plain_ehlo(target: Target, evidence: Evidence, endpoint: Endpoint) -> SMTPClient:
    client = await smtp_connect(target, evidence, endpoint, "submission")
    await client.ehlo()
    if "STARTTLS" not in client.extensions:
        await client.close()
        need(False, "submission port does not offer STARTTLS")
    return client


@pytest.mark.requirement("STARTTLS-SYNTAX")
def test_smtp_starttls_with_argument_is_501(target: Target, evidence: Evidence) -> None:
    endpoint = _submission(target)

    async def scenario() -> int:
        client = await _plain_ehlo(target, evidence, endpoint)
        try:
            return (await client.command("STARTTLS now")).code
        finally:
            await client.close()

    code = run(scenario())
    # RFC 3207 §4: "501 Syntax error (no parameters allowed)"
    assert code == 501, f"STARTTLS with an argument answered {code}"


@pytest.mark.requirement("STARTTLS-RESET")
def test_smtp_starttls_forgets_the_ehlo(target: Target, evidence: Evidence) -> None:
    endpoint = _submission(target)
    acct = account(target.sender)

    async def scenario() -> tuple[int, int, int]:
        client = await smtp_connect(target, evidence, endpoint, "submission")
        try:
            # Does this server insist on EHLO before MAIL at all?  Only then can it be seen to
            # have forgotten the EHLO.
            before = (await client.mail(acct.address)).code
            await client.ehlo()
            tls = (await client.starttls(target.client_ssl_context())).code
            after = (await client.mail(acct.address)).code if tls == 220 else 0
            return before, tls, after
        finally:
            await client.close()

    before, tls, after = run(scenario())
    need(before == 503, f"server answers MAIL before any EHLO with {before}, not 503")
    assert tls == 220, f"STARTTLS answered {tls}"
    # RFC 3207 §4.2: "The server MUST discard any knowledge obtained from the client, such as the
    # argument to the EHLO command, which was not obtained from the TLS negotiation itself."
    assert after == 503, f"MAIL after TLS without a new EHLO answered {after}, not 503"


@pytest.mark.requirement("STARTTLS-NOT-REOFFERED")
def test_smtp_starttls_not_offered_after_tls(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[bool, list[str]]:
        client = await open_submission(target, evidence, login=False)
        try:
            return client.is_tls, sorted(client.extensions)
        finally:
            await client.close()

    tls, extensions = run(scenario())
    need(tls, "submission session is not TLS")
    # RFC 3207 §4.2: "A server MUST NOT return the STARTTLS extension in response to an EHLO
    # command received after a TLS handshake has completed."
    assert "STARTTLS" not in extensions, f"EHLO over TLS lists STARTTLS: {extensions}"


@pytest.mark.requirement("STARTTLS-NOT-REOFFERED")
def test_smtp_starttls_not_offered_on_implicit_tls(target: Target, evidence: Evidence) -> None:
    async def scenario() -> list[str]:
        client = await open_submission(target, evidence, implicit=True, login=False)
        try:
            return sorted(client.extensions)
        finally:
            await client.close()

    extensions = run(scenario())
    # RFC 3207 §4.2 (the session is TLS from the first byte, RFC 8314 §3.3).
    assert "STARTTLS" not in extensions, f"EHLO on the implicit TLS port lists STARTTLS: {extensions}"


@pytest.mark.requirement("STARTTLS-ONCE")
def test_smtp_second_starttls_is_refused(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[bool, int]:
        client = await open_submission(target, evidence, login=False)
        try:
            return client.is_tls, (await client.command("STARTTLS")).code
        finally:
            await client.close()

    tls, code = run(scenario())
    need(tls, "submission session is not TLS")
    # RFC 3207 §4.2: "A client MUST NOT attempt to start a TLS session if a TLS session is already
    # active"; a server must not pretend to start a second one.
    assert code >= 400, f"STARTTLS inside TLS answered {code}"


@pytest.mark.requirement("STARTTLS-NOT-REQUIRED-MX")
@pytest.mark.step(6)
def test_smtp_mx_does_not_require_starttls(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    endpoint = target.receiver.mx
    need(endpoint is not None and not endpoint.implicit_tls, "target has no clear-text mx endpoint")

    async def scenario() -> tuple[int, int]:
        assert endpoint is not None
        client = await smtp_connect(target, evidence, endpoint, "mx")
        try:
            await client.ehlo("relay.mailharness.invalid")
            mail = (await client.mail("someone@example.com")).code
            rcpt_code = (await client.rcpt(rcpt.address)).code
            await client.rset()
            return mail, rcpt_code
        finally:
            await client.close()

    mail, rcpt_code = run(scenario())
    # RFC 3207 §4: "A publicly-referenced SMTP server MUST NOT require use of the STARTTLS
    # extension in order to deliver mail locally."
    assert mail == 250, f"MAIL in clear text on the MX answered {mail}"
    assert rcpt_code in (250, 251), f"RCPT for a local user in clear text answered {rcpt_code}"
