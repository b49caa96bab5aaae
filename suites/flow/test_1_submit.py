"""Step 1 — submit: the MSA's SMTP dialogue on 587 (STARTTLS) and 465 (implicit TLS)."""

from __future__ import annotations

import pytest

from harness.clients.smtp import SMTPTimeout
from harness.protocol.smtp import Reply
from harness.suite import Evidence, check, fail, need, run, smtp_connect
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
    check("SMTP-GREETING-220", code == 220, f"the greeting is {code}")


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

    # RFC 5321 §4.2: a malformed reply fails SMTP-REPLY-SYNTAX (run() reports its bytes).
    code, extensions, stray = run(scenario())
    # RFC 5321 §4.2.1: "the format for multiline replies requires that every line, except the
    # last, begin with the reply code, followed immediately by a hyphen"
    check("SMTP-REPLY-SYNTAX", stray is None,
          f"after the EHLO reply: {stray.raw!r}" if stray else "nothing followed the EHLO reply")
    # RFC 5321 §4.1.1.1: the EHLO response is 250, its lines after the first naming the
    # extensions the server supports.
    check("SMTP-EHLO-250", code == 250, f"EHLO answered {code}")
    check("SMTP-EHLO-250", extensions, f"EHLO lists the extensions {sorted(extensions)}")


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
    # RFC 8314 §3.3 and RFC 3207 §4: the submission port offers STARTTLS; the server answers
    # it 220, negotiates TLS, and the client then issues EHLO again (RFC 3207 §4.2).
    check("SUBMIT-STARTTLS", offered, f"STARTTLS advertised on the submission port: {offered}")
    check("SUBMIT-STARTTLS", code == 220, f"STARTTLS answered {code}")
    check("SUBMIT-STARTTLS", tls, f"TLS negotiated after 220 to STARTTLS: {tls}")
    check("SUBMIT-STARTTLS", ehlo_again == 250, f"EHLO after STARTTLS answered {ehlo_again}")


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
        raise fail("SUBMIT-IMPLICIT-TLS", f"the TLS handshake on the submissions port failed: {exc!r}") from None
    # RFC 8314 §3.3: "... the client MUST immediately start the TLS negotiation"
    check("SUBMIT-IMPLICIT-TLS", tls, f"the submissions connection is TLS: {tls}")
    check("SUBMIT-IMPLICIT-TLS", code == 250, f"EHLO over implicit TLS answered {code}")
