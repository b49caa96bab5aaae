"""SMTP session and commands (RFC 5321): EHLO/HELO, command order, RSET, NOOP, VRFY, QUIT, reply codes."""

from __future__ import annotations

import pytest

from harness.protocol.smtp import SessionState, expected_reply_codes
from harness.suite import (
    Evidence,
    account,
    check,
    open_mx_plain,
    open_submission,
    precondition,
    replies_until_closed,
    run,
    token,
)
from harness.targets import Target

pytestmark = pytest.mark.step(1)


@pytest.mark.requirement("SMTP-EHLO-SYNTAX")
def test_smtp_ehlo_without_domain_is_501(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            # RFC 5321 §4.1.1.1: ehlo = "EHLO" SP ( Domain / address-literal ) CRLF; §4.3.2
            # lists 501 ("Syntax error in parameters or arguments") for EHLO and HELO.
            ehlo = (await client.command("EHLO")).code
            check("SMTP-EHLO-SYNTAX", ehlo == 501, f"EHLO without a domain answered {ehlo}")
            helo = (await client.command("HELO")).code
            check("SMTP-EHLO-SYNTAX", helo == 501, f"HELO without a domain answered {helo}")
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-HELO")
def test_smtp_helo_is_supported(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            # RFC 5321 §4.5.1: "the following commands MUST be supported to conform to this
            # specification: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY"
            helo = (await client.helo()).code
            check("SMTP-HELO", helo == 250, f"HELO answered {helo}")
            noop = (await client.noop()).code
            check("SMTP-HELO", noop == 250, f"NOOP after HELO answered {noop}")
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-EHLO-RESET")
def test_smtp_ehlo_mid_transaction_resets_it(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> None:
        client = await open_submission(target, evidence)
        try:
            mail = (await client.mail(acct.address)).code
            precondition(mail == 250, f"MAIL FROM:<{acct.address}> answered {mail}")
            rcpt = (await client.rcpt(acct.address)).code
            precondition(rcpt in (250, 251), f"RCPT TO:<{acct.address}> answered {rcpt}")
            # RFC 5321 §4.1.4: "If it is issued after the session begins and the EHLO command
            # is acceptable to the SMTP server, the SMTP server MUST clear all buffers and reset
            # the state exactly as if a RSET command had been issued."
            ehlo = (await client.ehlo()).code
            precondition(ehlo == 250, f"EHLO in the transaction answered {ehlo}")
            data = (await client.command("DATA")).code
            check("SMTP-EHLO-RESET", data in (503, 554),
                  f"DATA after EHLO answered {data}: the recipients were kept")
            mail_again = (await client.mail(acct.address)).code
            check("SMTP-EHLO-RESET", mail_again == 250,
                  f"MAIL after EHLO answered {mail_again}: the sender was kept")
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-COMMAND-ORDER")
def test_smtp_commands_out_of_order_get_503(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)
    mail = f"MAIL FROM:<{acct.address}>"

    async def scenario() -> None:
        client = await open_submission(target, evidence)
        try:
            # RFC 5321 §4.1.4: "If there was no MAIL, or no RCPT, command, or all such commands
            # were rejected, the server MAY return a "command out of sequence" (503) or "no
            # valid recipients" (554) reply in response to the DATA command" (§3.3); and "a 503
            # failure reply MUST be returned" to commands out of sequence.
            for line, allowed in ((f"RCPT TO:<{acct.address}>", (503,)), ("DATA", (503, 554))):
                code = (await client.command(line)).code
                check("SMTP-COMMAND-ORDER", code in allowed,
                      f"{line!r} before MAIL answered {code}, expected {allowed}")
            first = (await client.command(mail)).code
            precondition(first == 250, f"{mail!r} answered {first}")
            nested = (await client.command(mail)).code
            check("SMTP-COMMAND-ORDER", nested == 503, f"a second {mail!r} answered {nested}, not 503")
            data = (await client.command("DATA")).code
            check("SMTP-COMMAND-ORDER", data in (503, 554),
                  f"DATA without a recipient answered {data}, expected 503 or 554")
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-REPLY-CODES")
def test_smtp_reply_codes_are_the_ones_listed(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> None:
        client = await open_submission(target, evidence)
        try:
            # VRFY without an argument breaks vrfy = "VRFY" SP String CRLF (RFC 5321 §4.1.1.6):
            # 501 is the likely answer, but any VRFY reply of §4.3.2 (a 252 too) is allowed.
            for line in ("NOOP", "HELP", "VRFY postmaster", "VRFY", "RSET", f"MAIL FROM:<{acct.address}>",
                         f"RCPT TO:<{acct.address}>", "RSET", "EXPN postmaster", "NOOP x",
                         "HELP MAIL", "QUIT"):
                state = client.state
                code = (await client.command(line)).code
                allowed = expected_reply_codes(state, line.split()[0])
                # RFC 5321 §4.3.2: "the list of possible replies for each command ... SMTP
                # servers SHOULD NOT use reply codes other than those listed" (and 500, 501, 421
                # for any command). HELP: "S: 211, 214  E: 502, 504".
                check("SMTP-REPLY-CODES", code in allowed,
                      f"{line!r} in state {state.name} answered {code}; allowed {sorted(allowed)}")
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-PARAM-SYNTAX")
def test_smtp_malformed_arguments_get_501(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    def refused(line: str, code: int) -> None:
        # RFC 5321 §4.3.2 lists 501 "Syntax error in parameters or arguments" for MAIL and
        # RCPT; 553 ("mailbox name not allowed") is used by some servers for a malformed path.
        check("SMTP-PARAM-SYNTAX", code in (501, 553), f"{line!r} answered {code}, not 501")

    async def scenario() -> None:
        client = await open_submission(target, evidence)
        try:
            for line in ("MAIL", "MAIL TO:<x@example.com>", f"MAIL FROM:<{acct.address}"):
                refused(line, (await client.command(line)).code)
            rset = (await client.rset()).code
            precondition(rset == 250, f"RSET answered {rset}")
            mail = (await client.mail(acct.address)).code
            precondition(mail == 250, f"MAIL FROM:<{acct.address}> answered {mail}")
            for line in ("RCPT", "RCPT FROM:<x@example.com>", f"RCPT TO:<{acct.address}"):
                refused(line, (await client.command(line)).code)
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-NO-PARAMETERS")
def test_smtp_rset_data_quit_with_argument_refused(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    def refused(line: str, code: int) -> None:
        # RFC 5321 §4.1.1: "Several commands (RSET, DATA, QUIT) are specified as not permitting
        # parameters.  In the absence of specific extensions offered by the server and accepted
        # by the client, clients MUST NOT send such parameters and servers SHOULD reject
        # commands containing them as having invalid syntax." (500 and 501 are the syntax
        # errors of §4.2.2.)
        check("SMTP-NO-PARAMETERS", code in (500, 501), f"{line!r} answered {code}, not 501")

    async def scenario() -> None:
        client = await open_submission(target, evidence)
        try:
            refused("RSET x", (await client.command("RSET x")).code)
            mail = (await client.mail(acct.address)).code
            precondition(mail == 250, f"MAIL FROM:<{acct.address}> answered {mail}")
            rcpt = (await client.rcpt(acct.address)).code
            precondition(rcpt in (250, 251), f"RCPT TO:<{acct.address}> answered {rcpt}")
            # A 354 fails the check, and closing the connection then abandons the transaction.
            refused("DATA x", (await client.command("DATA x")).code)
            refused("QUIT x", (await client.command("QUIT x")).code)
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-RSET")
def test_smtp_rset_discards_the_transaction(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> None:
        client = await open_submission(target, evidence)
        try:
            mail = (await client.mail(acct.address)).code
            precondition(mail == 250, f"MAIL FROM:<{acct.address}> answered {mail}")
            rcpt = (await client.rcpt(acct.address)).code
            precondition(rcpt in (250, 251), f"RCPT TO:<{acct.address}> answered {rcpt}")
            # RFC 5321 §4.1.1.5: "any stored sender, recipients, and mail data MUST be
            # discarded, and all buffers and state tables cleared.  The receiver MUST send a
            # "250 OK" reply"
            rset = (await client.rset()).code
            check("SMTP-RSET", rset == 250, f"RSET answered {rset}")
            data = (await client.command("DATA")).code
            check("SMTP-RSET", data in (503, 554), f"DATA after RSET answered {data}: the recipients were kept")
            again = (await client.mail(acct.address)).code
            check("SMTP-RSET", again == 250, f"MAIL after RSET answered {again}: the sender was kept")
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-NOOP")
def test_smtp_noop_is_250(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            # RFC 5321 §4.1.1.9: "This command does not affect any parameters or previously
            # entered commands. ... If a parameter string is specified, servers SHOULD ignore
            # it." and the receiver sends a "250 OK" reply.
            bare = (await client.noop()).code
            check("SMTP-NOOP", bare == 250, f"NOOP answered {bare}")
            with_arg = (await client.command("NOOP ignored argument")).code
            check("SMTP-NOOP", with_arg == 250, f"NOOP with an argument answered {with_arg}")
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-VRFY-NO-FALSE-250", "SMTP-REPLY-CODES")
@pytest.mark.step(6)
def test_smtp_vrfy_does_not_confirm_unknown_users(target: Target, evidence: Evidence) -> None:
    nobody = f"no-such-user-{token()}@{target.receiver.domain}"

    async def scenario() -> None:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            code = (await client.vrfy(nobody)).code
        finally:
            await client.close()
        # RFC 5321 §3.5.3: "A server MUST NOT return a 250 code in response to a VRFY or EXPN
        # command unless it has actually verified the address." 252 ("Cannot VRFY user, but
        # will accept message and attempt delivery", §3.5.3 and §7.3) is the honest answer of a
        # server that does not verify.
        check("SMTP-VRFY-NO-FALSE-250", code != 250, f"VRFY {nobody} (no such user) answered 250")
        allowed = expected_reply_codes(SessionState.READY, "VRFY")
        check("SMTP-REPLY-CODES", code in allowed, f"VRFY answered {code}; allowed {sorted(allowed)}")

    run(scenario())


@pytest.mark.requirement("SMTP-UNKNOWN-COMMAND")
def test_smtp_unknown_command_is_500(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            code = (await client.command("XMAILHARNESS unknown")).code
        finally:
            await client.close()
        # RFC 5321 §4.2.4: "If the command is not recognized, code 500 SHOULD be returned";
        # 502 "command not implemented" is the other refusal in use.
        check("SMTP-UNKNOWN-COMMAND", code in (500, 502), f"an unknown command answered {code}")

    run(scenario())


@pytest.mark.requirement("SMTP-QUIT")
def test_smtp_quit_is_221_and_closes(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            # RFC 5321 §4.1.1.10: "This command specifies that the receiver MUST send a "221
            # OK" reply, and then close the transmission channel."
            code = (await client.command("QUIT")).code
            check("SMTP-QUIT", code == 221, f"QUIT answered {code}")
            _, closed = await replies_until_closed(client, limit=1, timeout=3.0)
            check("SMTP-QUIT", closed, "the server kept the connection open after 221")
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-NULL-SENDER")
@pytest.mark.step(6)
def test_smtp_null_reverse_path_is_accepted(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)

    async def scenario() -> None:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            # RFC 1123 §5.2.9: "Support empty reverse path" is a MUST; notifications (RFC 5321
            # §4.5.5) are sent with MAIL FROM:<>.
            mail = (await client.mail("")).code
            check("SMTP-NULL-SENDER", mail == 250, f"MAIL FROM:<> answered {mail}")
            code = (await client.rcpt(rcpt.address)).code
            check("SMTP-NULL-SENDER", code in (250, 251),
                  f"RCPT TO:<{rcpt.address}> after MAIL FROM:<> answered {code}")
            await client.rset()
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-POSTMASTER")
@pytest.mark.step(6)
def test_smtp_postmaster_is_accepted(target: Target, evidence: Evidence) -> None:
    domain = target.receiver.domain
    sender = f"someone@{token()}.example.com"

    async def scenario() -> None:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            mail = (await client.mail(sender)).code
            precondition(mail == 250, f"MAIL FROM:<{sender}> answered {mail}")
            # RFC 5321 §4.5.1: "RCPT commands that specify a mailbox for postmaster at any of
            # the domains for which the SMTP server provides mail service, as well as the
            # special case of "RCPT TO:<Postmaster>" (with no domain specification), MUST be
            # supported."  The local part is case-insensitive.
            for rcpt in ("postmaster", f"postmaster@{domain}", f"PostMaster@{domain}"):
                code = (await client.rcpt(rcpt)).code
                check("SMTP-POSTMASTER", code in (250, 251), f"RCPT TO:<{rcpt}> answered {code}")
            await client.rset()
        finally:
            await client.close()

    run(scenario())
