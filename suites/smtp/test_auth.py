"""SMTP AUTH (RFC 4954, 4616): PLAIN and LOGIN, cancel, bad base64, unknown mechanism, once, not in a transaction."""

from __future__ import annotations

import base64

import pytest

from harness.protocol import sasl
from harness.suite import Evidence, account, need, open_submission, run
from harness.targets import Target

pytestmark = pytest.mark.step(2)


def _mechanisms(offered: str) -> list[str]:
    return offered.upper().split()


@pytest.mark.requirement("AUTH-PLAIN")
def test_smtp_auth_plain_both_forms(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> tuple[list[str], int, int, int]:
        first = await open_submission(target, evidence, login=False)
        try:
            offered = _mechanisms(first.extensions.get("AUTH", ""))
            initial = (await first.auth_plain(acct.user, acct.password)).code
        finally:
            await first.close()
        second = await open_submission(target, evidence, login=False)
        try:
            await second.send_raw(b"AUTH PLAIN\r\n")
            challenge = await second.read_reply()
            final = 0
            if challenge.code == 334:
                await second.send_raw(sasl.plain_initial_response(acct.user, acct.password).encode() + b"\r\n")
                final = (await second.read_reply()).code
            return offered, initial, challenge.code, final
        finally:
            await second.close()

    offered, initial, challenge, final = run(scenario())
    need("PLAIN" in offered, "submission server does not offer AUTH PLAIN")
    # RFC 4616 §2 and RFC 4954 §4: the initial response may come with the AUTH command, or the
    # server sends an empty challenge ("334 ") and the client answers it.
    assert initial == 235, f"AUTH PLAIN with an initial response answered {initial}"
    assert challenge == 334, f"AUTH PLAIN without an initial response answered {challenge}, not 334"
    assert final == 235, f"the PLAIN response after 334 answered {final}"


@pytest.mark.requirement("AUTH-LOGIN")
def test_smtp_auth_login(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> tuple[list[str], int]:
        client = await open_submission(target, evidence, login=False)
        try:
            offered = _mechanisms(client.extensions.get("AUTH", ""))
            if "LOGIN" not in offered:
                return offered, 0
            return offered, (await client.auth_login(acct.user, acct.password)).code
        finally:
            await client.close()

    offered, code = run(scenario())
    need("LOGIN" in offered, "submission server does not offer AUTH LOGIN")
    # RFC 4954 §4: an advertised mechanism completes with 235 for valid credentials.
    assert code == 235, f"AUTH LOGIN with valid credentials answered {code}"


@pytest.mark.requirement("AUTH-CANCEL")
def test_smtp_auth_cancel_is_501(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, int]:
        client = await open_submission(target, evidence, login=False)
        try:
            await client.send_raw(b"AUTH PLAIN\r\n")
            challenge = (await client.read_reply()).code
            if challenge != 334:
                return challenge, 0
            await client.send_raw(b"*\r\n")
            return challenge, (await client.read_reply()).code
        finally:
            await client.close()

    challenge, code = run(scenario())
    assert challenge == 334, f"AUTH PLAIN without an initial response answered {challenge}"
    # RFC 4954 §4: "If the client wishes to cancel an authentication exchange, it issues a line
    # with a single "*".  If the server receives such a response, it MUST reject the AUTH command
    # by sending a 501 reply."
    assert code == 501, f"cancelling AUTH with \"*\" answered {code}"


@pytest.mark.requirement("AUTH-BAD-BASE64")
def test_smtp_auth_bad_base64_is_501(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, int]:
        client = await open_submission(target, evidence, login=False)
        try:
            inline = (await client.command("AUTH PLAIN not*base64!")).code
            await client.send_raw(b"AUTH PLAIN\r\n")
            if (await client.read_reply()).code != 334:
                return inline, 0
            await client.send_raw(b"%%%not-base64%%%\r\n")
            return inline, (await client.read_reply()).code
        finally:
            await client.close()

    inline, continued = run(scenario())
    # RFC 4954 §4: "If the server cannot [BASE64] decode any client response, it MUST reject the
    # AUTH command with a 501 reply."
    assert inline == 501, f"an initial response that is not base64 answered {inline}"
    assert continued in (0, 501), f"a response to 334 that is not base64 answered {continued}"


@pytest.mark.requirement("AUTH-UNKNOWN-MECHANISM")
def test_smtp_auth_unknown_mechanism_is_504(target: Target, evidence: Evidence) -> None:
    async def scenario() -> int:
        client = await open_submission(target, evidence, login=False)
        try:
            return (await client.command("AUTH X-MAILHARNESS-NONE")).code
        finally:
            await client.close()

    code = run(scenario())
    # RFC 4954 §4: "If the requested authentication mechanism is not supported, the server rejects
    # the AUTH command with a 504 reply."
    assert code == 504, f"AUTH with an unsupported mechanism answered {code}"


@pytest.mark.requirement("AUTH-ONCE")
def test_smtp_second_auth_is_503(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> int:
        client = await open_submission(target, evidence)
        try:
            return (await client.auth_plain(acct.user, acct.password)).code
        finally:
            await client.close()

    code = run(scenario())
    # RFC 4954 §4: "After a successful AUTH command completes, a server MUST reject any further
    # AUTH commands with a 503 reply."
    assert code == 503, f"a second AUTH answered {code}"


@pytest.mark.requirement("AUTH-IN-TRANSACTION")
def test_smtp_auth_during_transaction_is_503(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> tuple[int, int]:
        client = await open_submission(target, evidence)
        try:
            # MAIL needs AUTH on a submission port, so the transaction starts authenticated.
            mail = (await client.mail(acct.address)).code
            token = base64.b64encode(f"\0{acct.user}\0{acct.password}".encode()).decode()
            return mail, (await client.command(f"AUTH PLAIN {token}")).code
        finally:
            await client.close()

    mail, code = run(scenario())
    assert mail == 250, f"MAIL after AUTH answered {mail}"
    # RFC 4954 §4: "The AUTH command is not permitted during a mail transaction.  An AUTH command
    # issued during a mail transaction MUST be rejected with a 503 reply."
    assert code == 503, f"AUTH during a mail transaction answered {code}"
