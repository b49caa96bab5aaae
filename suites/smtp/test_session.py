"""SMTP session and commands (RFC 5321): EHLO/HELO, command order, RSET, NOOP, VRFY, QUIT, reply codes."""

from __future__ import annotations

import pytest

from harness.clients.smtp import SMTPClient
from harness.protocol.smtp import SessionState, expected_reply_codes
from harness.suite import (
    Evidence,
    account,
    open_mx_plain,
    open_submission,
    replies_until_closed,
    run,
    token,
)
from harness.targets import Target

pytestmark = pytest.mark.step(1)


def _codes(replies: list[tuple[str, int]]) -> str:
    return ", ".join(f"{line!r} → {code}" for line, code in replies)


@pytest.mark.requirement("SMTP-EHLO-SYNTAX")
def test_smtp_ehlo_without_domain_is_501(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, int]:
        client = await open_submission(target, evidence, login=False)
        try:
            ehlo = (await client.command("EHLO")).code
            helo = (await client.command("HELO")).code
            return ehlo, helo
        finally:
            await client.close()

    ehlo, helo = run(scenario())
    # RFC 5321 §4.1.1.1: ehlo = "EHLO" SP ( Domain / address-literal ) CRLF; §4.3.2 lists 501
    # ("Syntax error in parameters or arguments") for EHLO and HELO.
    assert ehlo == 501, f"EHLO without a domain answered {ehlo}"
    assert helo == 501, f"HELO without a domain answered {helo}"


@pytest.mark.requirement("SMTP-HELO")
def test_smtp_helo_is_supported(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, int]:
        client = await open_submission(target, evidence, login=False)
        try:
            helo = await client.helo()
            noop = await client.noop()
            return helo.code, noop.code
        finally:
            await client.close()

    helo, noop = run(scenario())
    # RFC 5321 §4.5.1: "the following commands MUST be supported to conform to this
    # specification: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY"
    assert helo == 250, f"HELO answered {helo}"
    assert noop == 250, f"NOOP after HELO answered {noop}"


@pytest.mark.requirement("SMTP-EHLO-RESET")
def test_smtp_ehlo_mid_transaction_resets_it(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> tuple[int, int, int, int]:
        client = await open_submission(target, evidence)
        try:
            mail = (await client.mail(acct.address)).code
            rcpt = (await client.rcpt(acct.address)).code
            await client.ehlo()
            data = (await client.command("DATA")).code
            if data == 354:
                return mail, rcpt, data, 0  # the server now reads mail data: stop here
            mail_again = (await client.mail(acct.address)).code
            return mail, rcpt, data, mail_again
        finally:
            await client.close()

    mail, rcpt, data, mail_again = run(scenario())
    assert (mail, rcpt) == (250, 250), f"MAIL/RCPT answered {mail}/{rcpt}"
    # RFC 5321 §4.1.4: "If it is issued after the session begins and the EHLO command is
    # acceptable to the SMTP server, the SMTP server MUST clear all buffers and reset the state
    # exactly as if a RSET command had been issued."
    assert data in (503, 554), f"DATA after EHLO (transaction cleared) answered {data}"
    assert mail_again == 250, f"MAIL after EHLO answered {mail_again} (transaction not cleared)"


@pytest.mark.requirement("SMTP-COMMAND-ORDER")
def test_smtp_commands_out_of_order_get_503(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> list[tuple[str, int]]:
        client = await open_submission(target, evidence)
        try:
            seen = []
            for line in (f"RCPT TO:<{acct.address}>", "DATA", f"MAIL FROM:<{acct.address}>",
                         f"MAIL FROM:<{acct.address}>", "DATA"):
                seen.append((line, (await client.command(line)).code))
            return seen
        finally:
            await client.close()

    seen = run(scenario())
    # RFC 5321 §4.1.4: "If there was no MAIL, or no RCPT, command, or all such commands were
    # rejected, the server MAY return a "command out of sequence" (503) or "no valid
    # recipients" (554) reply in response to the DATA command" (§3.3); and "a 503 failure reply
    # MUST be returned" to commands out of sequence.
    expected = [503, (503, 554), 250, 503, (503, 554)]
    for (line, code), want in zip(seen, expected, strict=True):
        ok = code in want if isinstance(want, tuple) else code == want
        assert ok, f"{line!r} out of order answered {code}, expected {want} ({_codes(seen)})"


@pytest.mark.requirement("SMTP-REPLY-CODES")
def test_smtp_reply_codes_are_the_ones_listed(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> list[tuple[str, SessionState, int]]:
        client = await open_submission(target, evidence)
        try:
            seen = []
            for line in ("NOOP", "HELP", "VRFY postmaster", "RSET", f"MAIL FROM:<{acct.address}>",
                         f"RCPT TO:<{acct.address}>", "RSET", "EXPN postmaster", "NOOP x",
                         "HELP MAIL", "QUIT"):
                state = client.state
                reply = await client.command(line)
                seen.append((line, state, reply.code))
            return seen
        finally:
            await client.close()

    for line, state, code in run(scenario()):
        verb = line.split()[0]
        allowed = expected_reply_codes(state, verb)
        # RFC 5321 §4.3.2: "the list of possible replies for each command ... SMTP servers SHOULD
        # NOT use reply codes other than those listed" (and 500, 501, 421 for any command).
        assert code in allowed, f"{line!r} in state {state.name} answered {code}; allowed {sorted(allowed)}"


@pytest.mark.requirement("SMTP-PARAM-SYNTAX")
def test_smtp_malformed_arguments_get_501(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> list[tuple[str, int]]:
        client = await open_submission(target, evidence)
        try:
            seen = []
            for line in ("MAIL", "MAIL TO:<x@example.com>", f"MAIL FROM:<{acct.address}"):
                seen.append((line, (await client.command(line)).code))
            await client.rset()
            seen.append(("MAIL (valid)", (await client.mail(acct.address)).code))
            for line in ("RCPT", "RCPT FROM:<x@example.com>", f"RCPT TO:<{acct.address}"):
                seen.append((line, (await client.command(line)).code))
            seen.append(("RCPT (valid)", (await client.rcpt(acct.address)).code))
            seen.append(("DATA x", (await client.command("DATA x")).code))
            return seen
        finally:
            await client.close()

    seen = run(scenario())
    # RFC 5321 §4.3.2 lists 501 "Syntax error in parameters or arguments" for MAIL, RCPT and
    # DATA; 553 ("mailbox name not allowed") is used by some servers for a malformed path.
    for line, code in seen:
        if line.endswith("(valid)"):
            assert code == 250, f"{line} answered {code} ({_codes(seen)})"
        else:
            assert code in (501, 553), f"{line!r} answered {code}, not 501 ({_codes(seen)})"


@pytest.mark.requirement("SMTP-RSET")
def test_smtp_rset_discards_the_transaction(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> tuple[int, int, int]:
        client = await open_submission(target, evidence)
        try:
            await client.mail(acct.address)
            await client.rcpt(acct.address)
            rset = (await client.rset()).code
            data = (await client.command("DATA")).code
            if data == 354:
                return rset, data, 0  # the server now reads mail data: stop here
            mail = (await client.mail(acct.address)).code
            return rset, data, mail
        finally:
            await client.close()

    rset, data, mail = run(scenario())
    # RFC 5321 §4.1.1.5: "any stored sender, recipients, and mail data MUST be discarded, and all
    # buffers and state tables cleared.  The receiver MUST send a "250 OK" reply"
    assert rset == 250, f"RSET answered {rset}"
    assert data in (503, 554), f"DATA after RSET answered {data}: the recipients were kept"
    assert mail == 250, f"MAIL after RSET answered {mail}: the sender was kept"


@pytest.mark.requirement("SMTP-NOOP")
def test_smtp_noop_is_250(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, int]:
        client = await open_submission(target, evidence, login=False)
        try:
            return (await client.noop()).code, (await client.command("NOOP ignored argument")).code
        finally:
            await client.close()

    bare, with_arg = run(scenario())
    # RFC 5321 §4.1.1.9: "This command does not affect any parameters or previously entered
    # commands. ... If a parameter string is specified, servers SHOULD ignore it." and the
    # receiver sends a "250 OK" reply.
    assert bare == 250, f"NOOP answered {bare}"
    assert with_arg == 250, f"NOOP with an argument answered {with_arg}"


@pytest.mark.requirement("SMTP-VRFY-NO-FALSE-250")
@pytest.mark.step(6)
def test_smtp_vrfy_does_not_confirm_unknown_users(target: Target, evidence: Evidence) -> None:
    nobody = f"no-such-user-{token()}@{target.receiver.domain}"

    async def scenario() -> int:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            return (await client.vrfy(nobody)).code
        finally:
            await client.close()

    code = run(scenario())
    # RFC 5321 §3.5.3: "A server MUST NOT return a 250 code in response to a VRFY or EXPN command
    # unless it has actually verified the address."
    assert code != 250, f"VRFY {nobody} (no such user) answered 250"
    assert code in expected_reply_codes(SessionState.READY, "VRFY"), f"VRFY answered {code}"


@pytest.mark.requirement("SMTP-UNKNOWN-COMMAND")
def test_smtp_unknown_command_is_500(target: Target, evidence: Evidence) -> None:
    async def scenario() -> int:
        client = await open_submission(target, evidence, login=False)
        try:
            return (await client.command("XMAILHARNESS unknown")).code
        finally:
            await client.close()

    code = run(scenario())
    # RFC 5321 §4.2.4: "reply code 500 ... command unrecognized"; 502 "command not implemented"
    # is the other refusal in use.
    assert code in (500, 502), f"an unknown command answered {code}"


@pytest.mark.requirement("SMTP-QUIT")
def test_smtp_quit_is_221_and_closes(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, bool]:
        client = await open_submission(target, evidence, login=False)
        try:
            reply = await client.command("QUIT")
            _, closed = await replies_until_closed(client, limit=1, timeout=3.0)
            return reply.code, closed
        finally:
            await client.close()

    code, closed = run(scenario())
    # RFC 5321 §4.1.1.10: "This command specifies that the receiver MUST send a "221 OK" reply,
    # and then close the transmission channel."
    assert code == 221, f"QUIT answered {code}"
    assert closed, "the server kept the connection open after 221"


async def _mx_transaction(client: SMTPClient, mail_from: str, rcpts: list[str]) -> list[int]:
    codes = [(await client.mail(mail_from)).code]
    for rcpt in rcpts:
        codes.append((await client.rcpt(rcpt)).code)
    await client.rset()
    return codes


@pytest.mark.requirement("SMTP-NULL-SENDER")
@pytest.mark.step(6)
def test_smtp_null_reverse_path_is_accepted(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)

    async def scenario() -> list[int]:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            return await _mx_transaction(client, "", [rcpt.address])
        finally:
            await client.close()

    mail, rcpt_code = run(scenario())
    # RFC 1123 §5.2.9: "Support empty reverse path" is a MUST; notifications (RFC 5321 §4.5.5)
    # are sent with MAIL FROM:<>.
    assert mail == 250, f"MAIL FROM:<> answered {mail}"
    assert rcpt_code in (250, 251), f"RCPT after MAIL FROM:<> answered {rcpt_code}"


@pytest.mark.requirement("SMTP-POSTMASTER")
@pytest.mark.step(6)
def test_smtp_postmaster_is_accepted(target: Target, evidence: Evidence) -> None:
    domain = target.receiver.domain

    async def scenario() -> list[int]:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            return await _mx_transaction(client, f"someone@{token()}.example.com",
                                         ["postmaster", f"postmaster@{domain}", f"PostMaster@{domain}"])
        finally:
            await client.close()

    mail, bare, qualified, mixed = run(scenario())
    assert mail == 250, f"MAIL answered {mail}"
    # RFC 5321 §4.5.1: "RCPT commands that specify a mailbox for postmaster at any of the domains
    # for which the SMTP server provides mail service, as well as the special case of "RCPT
    # TO:<Postmaster>" (with no domain specification), MUST be supported."
    assert bare in (250, 251), f"RCPT TO:<postmaster> answered {bare}"
    assert qualified in (250, 251), f"RCPT TO:<postmaster@{domain}> answered {qualified}"
    assert mixed in (250, 251), f"RCPT TO:<PostMaster@{domain}> (case-insensitive) answered {mixed}"
