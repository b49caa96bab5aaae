"""Step 1 — submit: the MSA's SMTP dialogue on 587 (STARTTLS) and 465 (implicit TLS)."""

from __future__ import annotations

import pytest

from harness.clients.smtp import SMTPTimeout
from harness.protocol.smtp import Reply
from harness.suite import Evidence, need, run, smtp_connect
from harness.targets import Target

pytestmark = pytest.mark.step(1)

#: How long to listen for reply lines that should not be there.
STRAY_WAIT = 0.5


@pytest.mark.requirement("SMTP-GREETING-220")
def test_greeting_is_220(target: Target, evidence: Evidence) -> None:
    endpoint = target.sender.submission
    need(endpoint is not None, "target has no submission endpoint")

    async def scenario() -> int:
        assert endpoint is not None
        client = await smtp_connect(target, evidence, endpoint, "submission")
        try:
            return client.greeting.code
        finally:
            await client.close()

    code = run(scenario())
    # RFC 5321 §4.3.1: "the server will send a 220 reply if it is ready (or a 554 ...)"
    assert code == 220, f"greeting code {code}"


@pytest.mark.requirement("SMTP-EHLO-250", "SMTP-REPLY-SYNTAX")
def test_ehlo_lists_extensions(target: Target, evidence: Evidence) -> None:
    endpoint = target.sender.submission
    need(endpoint is not None, "target has no submission endpoint")

    async def scenario() -> tuple[int, dict[str, str], Reply | None]:
        assert endpoint is not None
        client = await smtp_connect(target, evidence, endpoint, "submission")
        try:
            reply = await client.ehlo()
            # A server sends nothing more until the next command: lines arriving now mean the
            # multiline reply was cut short by a line without its hyphen.
            try:
                stray: Reply | None = await client.read_reply(timeout=STRAY_WAIT)
            except SMTPTimeout:
                stray = None
            return reply.code, dict(client.extensions), stray
        finally:
            await client.close()

    # RFC 5321 §4.2: a malformed reply fails the test (run() reports its bytes).
    code, extensions, stray = run(scenario())
    assert code == 250, f"EHLO answered {code}"
    # RFC 5321 §4.2.1: "the format for multiline replies requires that every line, except the
    # last, begin with the reply code, followed immediately by a hyphen"
    assert stray is None, f"more reply lines followed the end of the EHLO reply: {stray.raw!r}"
    assert extensions, "EHLO reply lists no service extensions"


@pytest.mark.requirement("SUBMIT-STARTTLS")
def test_starttls_then_ehlo_again(target: Target, evidence: Evidence) -> None:
    endpoint = target.sender.submission
    need(endpoint is not None, "target has no submission endpoint")

    async def scenario() -> tuple[bool, int, bool, int]:
        assert endpoint is not None
        client = await smtp_connect(target, evidence, endpoint, "submission")
        try:
            await client.ehlo()
            offered = "STARTTLS" in client.extensions
            reply = await client.starttls(target.client_ssl_context())
            if reply.code != 220:
                return offered, reply.code, False, 0
            again = await client.ehlo()
            return offered, reply.code, client.is_tls, again.code
        finally:
            await client.close()

    offered, code, tls, ehlo_again = run(scenario())
    assert offered, "STARTTLS is not advertised on the submission port"
    assert code == 220, f"STARTTLS answered {code}"
    assert tls, "TLS was not negotiated after 220"
    assert ehlo_again == 250, f"EHLO after STARTTLS answered {ehlo_again}"


@pytest.mark.requirement("SUBMIT-IMPLICIT-TLS")
def test_submissions_starts_with_tls(target: Target, evidence: Evidence) -> None:
    endpoint = target.sender.submissions
    need(endpoint is not None, "target has no submissions (implicit TLS) endpoint")

    async def scenario() -> tuple[bool, int]:
        assert endpoint is not None
        client = await smtp_connect(target, evidence, endpoint, "submissions")
        try:
            reply = await client.ehlo()
            return client.is_tls, reply.code
        finally:
            await client.close()

    try:
        tls, code = run(scenario())
    except (OSError, TimeoutError) as exc:
        raise AssertionError(f"TLS handshake on the submissions port failed: {exc!r}") from None
    # RFC 8314 §3.3: "... the client MUST immediately start the TLS negotiation"
    assert tls, "connection is not TLS"
    assert code == 250, f"EHLO over implicit TLS answered {code}"
