"""IMAP in depth — authentication: AUTHENTICATE PLAIN with and without SASL-IR, cancelling it."""

from __future__ import annotations

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import Continuation, Tagged
from harness.suite import (
    Evidence,
    account,
    check,
    imap_connector,
    imap_secure,
    need,
    precondition,
    run,
)
from harness.targets import Target
from suites.imap.imap_helpers import next_raw_tag, until_tagged

pytestmark = pytest.mark.step(8)


async def _tls_session(target: Target, evidence: Evidence) -> IMAPClient:
    client = await imap_connector(target, evidence, target.receiver)()
    try:
        await imap_secure(client, target)
        need("AUTH=PLAIN" in client.capabilities, "server does not offer AUTH=PLAIN")
    except BaseException:
        await client.close()
        raise
    return client


@pytest.mark.requirement("IMAP-AUTHENTICATE-PLAIN")
def test_imap_authenticate_plain(target: Target, evidence: Evidence) -> None:
    acct = account(target.receiver)

    async def scenario(initial: bool) -> bool:
        """AUTHENTICATE PLAIN (with the SASL-IR initial response if *initial*); whether the
        server advertises SASL-IR."""
        client = await _tls_session(target, evidence)
        try:
            sasl_ir = "SASL-IR" in client.capabilities
            if initial and not sasl_ir:
                return False
            result = await client.authenticate_plain(acct.user, acct.password,
                                                     initial_response=initial)
            # RFC 9051 §6.2.2: AUTHENTICATE with valid credentials completes OK; with SASL-IR
            # the initial response is sent with the command (RFC 4959), else after an empty "+".
            way = "with an initial response" if initial else "after an empty challenge"
            check("IMAP-AUTHENTICATE-PLAIN", result.ok,
                  f"AUTHENTICATE PLAIN {way} answered {result.status}")
            return sasl_ir
        finally:
            await client.close()

    if run(scenario(False)):
        run(scenario(True))


@pytest.mark.requirement("IMAP-AUTH-CANCEL")
def test_imap_authenticate_cancel(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await _tls_session(target, evidence)
        try:
            tag = next_raw_tag()
            await client.send_raw(tag.encode() + b" AUTHENTICATE PLAIN\r\n")
            first = await client.read_response(10.0)
            while not isinstance(first, Continuation | Tagged):
                first = await client.read_response(10.0)
            precondition(isinstance(first, Continuation),
                         f"AUTHENTICATE PLAIN without an initial response answered "
                         f"{getattr(first, 'status', first)} instead of a continuation request")
            await client.send_raw(b"*\r\n")
            tagged, _ = await until_tagged(client, tag)
            # RFC 9051 §6.2.2: "If the client wishes to cancel an authentication exchange, it
            # issues a line consisting of a single "*".  If the server receives such a
            # response, it MUST reject the AUTHENTICATE command by sending a tagged BAD
            # response."
            check("IMAP-AUTH-CANCEL", tagged is not None,
                  "the server closed the connection after a cancelled AUTHENTICATE")
            assert tagged is not None
            check("IMAP-AUTH-CANCEL", tagged.status == "BAD",
                  f"cancelled AUTHENTICATE answered {tagged.status}, not BAD")
        finally:
            await client.close()

    run(scenario())
