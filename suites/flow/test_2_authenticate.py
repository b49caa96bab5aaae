"""Step 2 — authenticate: AUTH required before MAIL, bad credentials refused, no plaintext AUTH before TLS."""

from __future__ import annotations

import pytest

from harness.protocol.smtp import Reply
from harness.suite import Evidence, account, check, need, open_submission, run, smtp_connect
from harness.targets import Target

pytestmark = pytest.mark.step(2)


@pytest.mark.requirement("AUTH-REQUIRED")
def test_mail_without_auth_is_refused(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> Reply:
        client = await open_submission(target, evidence, login=False)
        try:
            return await client.mail(acct.address)
        finally:
            await client.close()

    reply = run(scenario())
    # RFC 6409 §4.3: "The MSA MUST by default issue an error response to the MAIL command
    # if the session has not been authenticated"; RFC 4954 §6 names 530 5.7.0.
    check("AUTH-REQUIRED", reply.code == 530, f"MAIL before AUTH answered {reply.code}")
    check("AUTH-REQUIRED", reply.enhanced is None or str(reply.enhanced) == "5.7.0",
          f"530 to MAIL before AUTH, enhanced code {reply.enhanced}")


@pytest.mark.requirement("AUTH-BAD-CREDENTIALS", "AUTH-REQUIRED")
def test_wrong_password_is_refused(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> tuple[Reply, Reply]:
        client = await open_submission(target, evidence, login=False)
        try:
            auth = await client.auth_plain(acct.user, acct.password + "-wrong")
            mail = await client.mail(acct.address)
            return auth, mail
        finally:
            await client.close()

    auth, mail = run(scenario())
    # RFC 4954 §6: 535 5.7.8 "Authentication credentials invalid".
    check("AUTH-BAD-CREDENTIALS", auth.code == 535, f"AUTH with a wrong password answered {auth.code}")
    check("AUTH-BAD-CREDENTIALS", auth.enhanced is None or str(auth.enhanced) == "5.7.8",
          f"535 to AUTH with a wrong password, enhanced code {auth.enhanced}")
    # RFC 6409 §4.3: after a failed AUTH the session is still not authenticated, so MAIL is
    # refused.
    check("AUTH-REQUIRED", not mail.is_positive, f"MAIL after a failed AUTH answered {mail.code}")


@pytest.mark.requirement("AUTH-NO-PLAINTEXT")
def test_no_plaintext_auth_before_tls(target: Target, evidence: Evidence) -> None:
    endpoint = target.sender.submission
    need(endpoint is not None and not endpoint.implicit_tls, "target has no clear-text submission port")
    acct = account(target.sender)

    async def scenario() -> tuple[str, Reply]:
        assert endpoint is not None
        client = await smtp_connect(target, evidence, endpoint, "submission")
        try:
            await client.ehlo()
            need("STARTTLS" in client.extensions,
                 "submission port offers no STARTTLS (so clear-text AUTH is the only way)")
            offered = client.extensions.get("AUTH", "")
            return offered, await client.auth_plain(acct.user, acct.password)
        finally:
            await client.close()

    offered, reply = run(scenario())
    # RFC 4954 §4: "A server implementation MUST implement a configuration in which it does NOT
    # permit any plaintext password mechanisms, unless either the STARTTLS command has been
    # negotiated or some other mechanism that protects the session from password snooping".
    check("AUTH-NO-PLAINTEXT", not reply.is_positive, f"AUTH PLAIN before STARTTLS answered {reply.code}")
    # RFC 4954 §6: 538 5.7.11 "Encryption required for requested authentication mechanism".
    check("AUTH-NO-PLAINTEXT", "PLAIN" not in offered.upper().split() or reply.code == 538,
          f"AUTH before TLS offers {offered or 'no mechanism'!r}; AUTH PLAIN answered {reply.code}")


@pytest.mark.requirement("SUBMIT-SENDER-RIGHTS")
def test_cannot_send_as_someone_else(target: Target, evidence: Evidence) -> None:
    need(len(target.sender.accounts) >= 2, "target lists fewer than two sender accounts")
    other = target.sender.accounts[1]

    async def scenario() -> tuple[Reply, Reply | None]:
        client = await open_submission(target, evidence)
        try:
            mail = await client.mail(other.address)
            rcpt = await client.rcpt(other.address) if mail.is_positive else None
            return mail, rcpt
        finally:
            await client.close()

    mail, rcpt = run(scenario())
    # RFC 6409 §6.1: the MSA checks that the submitter is authorised to use the address.
    refused = not mail.is_positive or (rcpt is not None and not rcpt.is_positive)
    check("SUBMIT-SENDER-RIGHTS", refused,
          f"MAIL FROM:<{other.address}> as {target.sender.accounts[0].user} answered {mail.code}"
          f"{f', RCPT {rcpt.code}' if rcpt else ''}")
    code = mail.code if not mail.is_positive else rcpt.code if rcpt else 0
    # RFC 6409 §6.1: "Reply code 550 with an appropriate enhanced status code ... such as 5.7.1"
    # (553 and 554 name the same refusal of the address or the transaction, RFC 5321 §4.2.2).
    check("SUBMIT-SENDER-RIGHTS", code in (550, 553, 554), f"the address was refused with {code}")
