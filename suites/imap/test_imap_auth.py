"""IMAP in depth — authentication: AUTHENTICATE PLAIN with and without SASL-IR, cancelling it."""

from __future__ import annotations

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import Continuation, Tagged
from harness.suite import Evidence, account, imap_connector, need, run
from harness.targets import Target
from suites.imap.imap_helpers import next_raw_tag, until_tagged

pytestmark = pytest.mark.step(8)


async def _tls_session(target: Target, evidence: Evidence) -> IMAPClient:
    client = await imap_connector(target, evidence, target.receiver)()
    if not client.is_tls:
        need("STARTTLS" in client.capabilities, "IMAP endpoint offers neither TLS nor STARTTLS")
        assert (await client.starttls(target.client_ssl_context())).ok, "STARTTLS refused"
    need("AUTH=PLAIN" in client.capabilities, "server does not offer AUTH=PLAIN")
    return client


@pytest.mark.requirement("IMAP-AUTHENTICATE-PLAIN")
def test_imap_authenticate_plain(target: Target, evidence: Evidence) -> None:
    acct = account(target.receiver)

    async def scenario(initial: bool) -> str:
        client = await _tls_session(target, evidence)
        try:
            if initial:
                need("SASL-IR" in client.capabilities, "server does not advertise SASL-IR")
            result = await client.authenticate_plain(acct.user, acct.password,
                                                     initial_response=initial)
            return result.status
        finally:
            await client.close()

    # RFC 9051 §6.2.2: AUTHENTICATE with valid credentials completes OK; with SASL-IR the
    # initial response is sent with the command (RFC 4959), else after an empty "+".
    after_continuation = run(scenario(False))
    assert after_continuation == "OK", f"AUTHENTICATE PLAIN (challenge) answered {after_continuation}"
    with_initial = run(scenario(True))
    assert with_initial == "OK", f"AUTHENTICATE PLAIN with initial response answered {with_initial}"


@pytest.mark.requirement("IMAP-AUTH-CANCEL")
def test_imap_authenticate_cancel(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[bool, str | None]:
        client = await _tls_session(target, evidence)
        try:
            tag = next_raw_tag()
            await client.send_raw(tag.encode() + b" AUTHENTICATE PLAIN\r\n")
            first = await client.read_response(10.0)
            if isinstance(first, Tagged):
                return False, first.status
            assert isinstance(first, Continuation), f"expected '+', got {first!r}"
            await client.send_raw(b"*\r\n")
            tagged, _ = await until_tagged(client, tag)
            return True, tagged.status if tagged else None
        finally:
            await client.close()

    challenged, status = run(scenario())
    need(challenged, "server answered AUTHENTICATE PLAIN without a challenge")
    # RFC 9051 §6.2.2: "If the client wishes to cancel an authentication exchange, it issues a
    # line consisting of a single "*".  If the server receives such a response, it MUST reject
    # the AUTHENTICATE command by sending a tagged BAD response."
    assert status == "BAD", f"cancelled AUTHENTICATE answered {status}, not BAD"


