"""Step 8 — log in: IMAP STARTTLS, LOGINDISABLED before TLS, good and bad credentials."""

from __future__ import annotations

import pytest

from harness.clients.imap import CommandResult
from harness.suite import Evidence, account, check, imap_connector, imap_secure, need, run
from harness.targets import Endpoint, Target

pytestmark = pytest.mark.step(8)


def _clear_imap(target: Target) -> Endpoint:
    endpoint = target.receiver.imap
    need(endpoint is not None, "target has no clear-text IMAP endpoint (imap://)")
    assert endpoint is not None
    return endpoint


@pytest.mark.requirement("IMAP-STARTTLS")
def test_starttls(target: Target, evidence: Evidence) -> None:
    endpoint = _clear_imap(target)

    async def scenario() -> tuple[bool, CommandResult, bool, frozenset[str]]:
        client = await imap_connector(target, evidence, target.receiver, endpoint)()
        try:
            offered = "STARTTLS" in client.capabilities
            result = await client.starttls(target.client_ssl_context())
            return offered, result, client.is_tls, client.capabilities
        finally:
            await client.close()

    offered, result, tls, caps = run(scenario())
    check("IMAP-STARTTLS", offered, f"STARTTLS in the capabilities of the clear-text port: {offered}")
    # RFC 9051 §6.2.1: on OK the client starts TLS; capabilities must be asked for again.
    check("IMAP-STARTTLS", result.status == "OK", f"STARTTLS answered {result.status}")
    check("IMAP-STARTTLS", tls, f"TLS negotiated after OK to STARTTLS: {tls}")
    check("IMAP-STARTTLS", "STARTTLS" not in caps, f"capabilities after TLS started: {sorted(caps)}")


@pytest.mark.requirement("IMAP-LOGINDISABLED")
def test_no_clear_text_login(target: Target, evidence: Evidence) -> None:
    endpoint = _clear_imap(target)
    acct = account(target.receiver)

    async def scenario() -> tuple[frozenset[str], CommandResult]:
        client = await imap_connector(target, evidence, target.receiver, endpoint)()
        try:
            caps = client.capabilities
            need("STARTTLS" in caps, "IMAP endpoint offers no STARTTLS, so clear text is all it has")
            return caps, await client.login(acct.user, acct.password)
        finally:
            await client.close()

    caps, result = run(scenario())
    # RFC 9051 §6.2.3: "A server implementation MUST implement a configuration in which it does
    # not permit any plaintext password mechanisms, unless the STARTTLS command has been
    # negotiated"; such a server advertises LOGINDISABLED.
    check("IMAP-LOGINDISABLED", result.status != "OK", f"LOGIN over clear text answered {result.status}")
    check("IMAP-LOGINDISABLED", "LOGINDISABLED" in caps,
          f"LOGIN over clear text answered {result.status}; capabilities {sorted(caps)}")


async def _login(target: Target, evidence: Evidence, password: str) -> CommandResult:
    acct = account(target.receiver)
    client = await imap_connector(target, evidence, target.receiver)()
    try:
        await imap_secure(client, target)
        return await client.login(acct.user, password)
    finally:
        await client.close()


@pytest.mark.requirement("IMAP-LOGIN")
def test_login_with_valid_credentials(target: Target, evidence: Evidence) -> None:
    result = run(_login(target, evidence, account(target.receiver).password))
    # RFC 9051 §6.2.3: "OK - login completed, now in authenticated state".
    check("IMAP-LOGIN", result.status == "OK", f"LOGIN with valid credentials answered {result.status}")


@pytest.mark.requirement("IMAP-LOGIN-BAD")
def test_login_with_wrong_password(target: Target, evidence: Evidence) -> None:
    result = run(_login(target, evidence, account(target.receiver).password + "-wrong"))
    # RFC 9051 §6.2.3: "NO - login failure: user name or password rejected".
    check("IMAP-LOGIN-BAD", result.status == "NO", f"LOGIN with a wrong password answered {result.status}")
