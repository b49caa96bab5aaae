"""STARTTLS command injection (RFC 3207 §4.2, CVE-2011-0411): clear-text commands pipelined after STARTTLS must be discarded."""

from __future__ import annotations

import pytest

from harness.suite import (
    Evidence,
    check,
    need,
    precondition,
    replies_until_closed,
    run,
    smtp_connect,
)
from harness.targets import Endpoint, Target

pytestmark = pytest.mark.step(1)


async def _inject(target: Target, evidence: Evidence, endpoint: Endpoint, label: str) -> tuple[bool, int, list[int]]:
    client = await smtp_connect(target, evidence, endpoint, label)
    try:
        await client.ehlo()
        if "STARTTLS" not in client.extensions:
            return False, 0, []
        # One write: STARTTLS and an injected RSET behind it, as a man in the middle would add.
        await client.send_raw(b"STARTTLS\r\nRSET\r\n")
        reply = await client.read_reply()
        if reply.code != 220:
            return True, reply.code, []
        await client.negotiate_tls(target.client_ssl_context())
        await client.send_raw(b"NOOP\r\nQUIT\r\n")
        replies, _ = await replies_until_closed(client, limit=5, timeout=3.0)
        return True, 220, [r.code for r in replies]
    finally:
        await client.close()


def _check(offered: bool, code: int, codes: list[int]) -> None:
    need(offered, "port does not offer STARTTLS")
    need(code != 454, "STARTTLS is offered but temporarily unavailable (454)")
    precondition(code == 220, f"STARTTLS answered {code}")
    # RFC 3207 §4.2: "Upon completion of the TLS handshake, the SMTP protocol is reset to the
    # initial state ... The server MUST discard any knowledge obtained from the client, such as
    # the argument to the EHLO command, which was not obtained from the TLS negotiation itself."
    # Clear-text input after STARTTLS was not obtained from TLS: the RSET must not be answered.
    check("STARTTLS-DISCARD-BUFFER", codes == [250, 221],
          f"replies over TLS to NOOP, QUIT were {codes}: the RSET sent in clear text after "
          "STARTTLS was executed inside TLS" if len(codes) > 2 else f"replies over TLS: {codes}")


@pytest.mark.requirement("STARTTLS-DISCARD-BUFFER")
def test_smtp_starttls_injection_submission(target: Target, evidence: Evidence) -> None:
    endpoint = target.sender.submission
    need(endpoint is not None and not endpoint.implicit_tls, "target has no STARTTLS submission port")
    assert endpoint is not None
    _check(*run(_inject(target, evidence, endpoint, "submission")))


@pytest.mark.requirement("STARTTLS-DISCARD-BUFFER")
@pytest.mark.step(6)
def test_smtp_starttls_injection_mx(target: Target, evidence: Evidence) -> None:
    endpoint = target.receiver.mx
    need(endpoint is not None and not endpoint.implicit_tls, "target has no clear-text mx endpoint")
    assert endpoint is not None
    _check(*run(_inject(target, evidence, endpoint, "mx")))
