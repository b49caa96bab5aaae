"""SMTP AUTH (RFC 4954, 4616, 6409): required before MAIL, PLAIN and LOGIN, cancel, bad base64, unknown mechanism, once, not in a transaction."""

from __future__ import annotations

import base64

import pytest

from harness.clients.smtp import SMTPClient
from harness.protocol import sasl
from harness.suite import Evidence, account, check, need, open_submission, precondition, run
from harness.targets import Target

pytestmark = pytest.mark.step(2)


def _need_mechanism(client: SMTPClient, mechanism: str) -> None:
    offered = client.extensions.get("AUTH", "").upper().split()
    need(mechanism in offered, f"submission server does not offer AUTH {mechanism} (AUTH {' '.join(offered)})")


@pytest.mark.requirement("AUTH-REQUIRED")
def test_smtp_mail_before_auth_is_refused(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> None:
        # EHLO, and STARTTLS with a new EHLO when offered: what a submission client does before AUTH.
        client = await open_submission(target, evidence, login=False)
        try:
            reply = await client.mail(acct.address)
        finally:
            await client.close()
        # RFC 6409 §4.3: "The MSA MUST, by default, issue an error response to the MAIL command
        # if the session has not been authenticated using [SMTP-AUTH]"; "Reply code 530
        # [SMTP-AUTH] is used for this purpose" (RFC 4954 §6: 530 5.7.0 "SHOULD be returned by
        # any command other than AUTH, EHLO, HELO, NOOP, RSET, or QUIT when server policy
        # requires authentication"). The MUST is the error response, so any 4yz or 5yz holds.
        check("AUTH-REQUIRED", reply.code // 100 in (4, 5),
              f"MAIL FROM:<{acct.address}> before AUTH answered {reply.code} {reply.enhanced or ''}".rstrip())

    run(scenario())


@pytest.mark.requirement("AUTH-PLAIN")
def test_smtp_auth_plain_both_forms(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> None:
        # RFC 4616 §2 and RFC 4954 §4: the initial response may come with the AUTH command, or
        # the server sends an empty challenge ("334 ") and the client answers it.
        first = await open_submission(target, evidence, login=False)
        try:
            _need_mechanism(first, "PLAIN")
            initial = (await first.auth_plain(acct.user, acct.password)).code
            check("AUTH-PLAIN", initial == 235, f"AUTH PLAIN with an initial response answered {initial}")
        finally:
            await first.close()
        second = await open_submission(target, evidence, login=False)
        try:
            await second.send_raw(b"AUTH PLAIN\r\n")
            challenge = (await second.read_reply()).code
            check("AUTH-PLAIN", challenge == 334,
                  f"AUTH PLAIN without an initial response answered {challenge}, not 334")
            await second.send_raw(sasl.plain_initial_response(acct.user, acct.password).encode() + b"\r\n")
            final = (await second.read_reply()).code
            check("AUTH-PLAIN", final == 235, f"the PLAIN response after 334 answered {final}")
        finally:
            await second.close()

    run(scenario())


@pytest.mark.requirement("AUTH-LOGIN")
def test_smtp_auth_login(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            _need_mechanism(client, "LOGIN")
            code = (await client.auth_login(acct.user, acct.password)).code
        finally:
            await client.close()
        # RFC 4954 §3: "The AUTH EHLO keyword contains as a parameter a space-separated list of
        # the names of available [SASL] mechanisms": an advertised mechanism completes with 235
        # for valid credentials.
        check("AUTH-LOGIN", code == 235, f"AUTH LOGIN with valid credentials answered {code}")

    run(scenario())


@pytest.mark.requirement("AUTH-CANCEL")
def test_smtp_auth_cancel_is_501(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            _need_mechanism(client, "PLAIN")
            await client.send_raw(b"AUTH PLAIN\r\n")
            challenge = (await client.read_reply()).code
            precondition(challenge == 334, f"AUTH PLAIN without an initial response answered {challenge}")
            await client.send_raw(b"*\r\n")
            code = (await client.read_reply()).code
        finally:
            await client.close()
        # RFC 4954 §4: "If the client wishes to cancel an authentication exchange, it issues a
        # line with a single "*".  If the server receives such a response, it MUST reject the
        # AUTH command by sending a 501 reply."
        check("AUTH-CANCEL", code == 501, f"cancelling AUTH with \"*\" answered {code}")

    run(scenario())


@pytest.mark.requirement("AUTH-BAD-BASE64")
def test_smtp_auth_bad_base64_is_501(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            _need_mechanism(client, "PLAIN")
            # RFC 4954 §4: "If the server cannot [BASE64] decode any client response, it MUST
            # reject the AUTH command with a 501 reply."
            inline = (await client.command("AUTH PLAIN not*base64!")).code
            check("AUTH-BAD-BASE64", inline == 501, f"an initial response that is not base64 answered {inline}")
            await client.send_raw(b"AUTH PLAIN\r\n")
            if (await client.read_reply()).code != 334:
                return  # no empty challenge: the PLAIN test judges that
            await client.send_raw(b"%%%not-base64%%%\r\n")
            continued = (await client.read_reply()).code
            check("AUTH-BAD-BASE64", continued == 501,
                  f"a response to 334 that is not base64 answered {continued}")
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("AUTH-UNKNOWN-MECHANISM")
def test_smtp_auth_unknown_mechanism_is_504(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            need("AUTH" in client.extensions, "submission server does not advertise AUTH")
            code = (await client.command("AUTH X-MAILHARNESS-NONE")).code
        finally:
            await client.close()
        # RFC 4954 §4: "If the requested authentication mechanism is not supported, the server
        # rejects the AUTH command with a 504 reply."
        check("AUTH-UNKNOWN-MECHANISM", code == 504, f"AUTH with an unsupported mechanism answered {code}")

    run(scenario())


@pytest.mark.requirement("AUTH-ONCE")
def test_smtp_second_auth_is_503(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> None:
        client = await open_submission(target, evidence)  # authenticated once already
        try:
            code = (await client.auth_plain(acct.user, acct.password)).code
        finally:
            await client.close()
        # RFC 4954 §4: "After a successful AUTH command completes, a server MUST reject any
        # further AUTH commands with a 503 reply."
        check("AUTH-ONCE", code == 503, f"a second AUTH answered {code}")

    run(scenario())


@pytest.mark.requirement("AUTH-IN-TRANSACTION")
def test_smtp_auth_during_transaction_is_503(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> None:
        client = await open_submission(target, evidence)
        try:
            # MAIL needs AUTH on a submission port, so the transaction starts authenticated.
            mail = (await client.mail(acct.address)).code
            precondition(mail == 250, f"MAIL after AUTH answered {mail}")
            response = base64.b64encode(f"\0{acct.user}\0{acct.password}".encode()).decode()
            code = (await client.command(f"AUTH PLAIN {response}")).code
        finally:
            await client.close()
        # RFC 4954 §4: "The AUTH command is not permitted during a mail transaction.  An AUTH
        # command issued during a mail transaction MUST be rejected with a 503 reply."
        check("AUTH-IN-TRANSACTION", code == 503, f"AUTH during a mail transaction answered {code}")

    run(scenario())
