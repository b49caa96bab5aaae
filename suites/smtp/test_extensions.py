"""SMTP service extensions: SIZE (RFC 1870), PIPELINING (RFC 2920), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034)."""

from __future__ import annotations

import contextlib

import pytest

from harness.clients.smtp import SMTPConnectionClosed, SMTPTimeout
from harness.protocol.smtp import (
    END_DATA,
    Reply,
    SessionState,
    command_verb,
    data_payload,
    event_for_reply,
    expected_reply_codes,
    transition,
)
from harness.sink import SinkServer
from harness.suite import (
    SCRIPTED_ZONE,
    Evidence,
    account,
    check,
    make_message,
    need,
    open_mx_plain,
    open_submission,
    precondition,
    run,
    scripted_dns,
    submit,
    token,
    wait_delivery,
)
from harness.targets import Target

pytestmark = pytest.mark.step(1)

#: How long a reply to a pipelined command may take.
PIPELINED_REPLY_WAIT = 5.0


@pytest.mark.requirement("SIZE-MAIL-552")
def test_smtp_mail_size_over_limit_is_552(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> None:
        client = await open_submission(target, evidence)
        try:
            size = client.extensions.get("SIZE", "").strip()
            need(size.isdigit() and int(size) > 0, "server advertises no fixed SIZE limit")
            code = (await client.mail(acct.address, [f"SIZE={int(size) + 1}"])).code
        finally:
            await client.close()
        # RFC 1870 §6.1: "If the indicated size is larger than the server's fixed maximum
        # message size, the server responds with code "552 message size exceeds fixed maximium
        # message size"."
        check("SIZE-MAIL-552", code == 552, f"MAIL SIZE={int(size) + 1} (over SIZE {size}) answered {code}")

    run(scenario())


def _pipelined_allowed(state: SessionState, verb: str) -> frozenset[int]:
    """The replies RFC 5321 §4.3.2 lists for *verb* in *state*. DATA may also be answered 354
    when no recipient was accepted: RFC 5321 §4.1.4 says the server "MAY return" 503 or 554
    then, and RFC 2920 §3.2 (3) only that it "SHOULD issue a positive response to the DATA
    command if and only if one or more valid RCPT TO addresses have been previously received"."""
    if verb == "DATA" and state in (SessionState.READY, SessionState.MAIL):
        state = SessionState.RCPT
    return expected_reply_codes(state, verb)


@pytest.mark.requirement("PIPELINING-ORDER")
@pytest.mark.step(6)
def test_smtp_pipelined_group_answered_in_order(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    mark = token()
    nobody = f"no-such-user-{mark}@{target.receiver.domain}"
    message = make_message(sender="someone@example.com", recipient=rcpt.address,
                           subject="pipelining", body="One write, four commands.\r\n", mark=mark)
    lines = ["MAIL FROM:<someone@example.com>", f"RCPT TO:<{rcpt.address}>", f"RCPT TO:<{nobody}>", "DATA"]

    async def scenario() -> None:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            need("PIPELINING" in client.extensions, "MX does not advertise PIPELINING")
            # RFC 2920 §3.2: a server offering pipelining "(1) MUST respond to commands in the
            # order they are received from the client" and "(9) MUST NOT flush or otherwise lose
            # the contents of the TCP input buffer": one reply per command, each one RFC 5321
            # allows for that command where it stands. Which codes it is (a catch-all MX takes
            # the unknown recipient, RFC 5321 §3.3) is not a matter of pipelining.
            await client.send_raw(b"".join(line.encode() + b"\r\n" for line in lines))
            state, accepted = client.state, 0
            seen: list[str] = []
            for line in lines:
                shown = ", ".join(seen) or "none"
                reply: Reply | None = None
                lost = ""
                try:
                    reply = await client.read_reply(PIPELINED_REPLY_WAIT)
                except SMTPTimeout:
                    lost = f"none within {PIPELINED_REPLY_WAIT:.0f} s"
                except SMTPConnectionClosed:
                    lost = "the connection closed"
                check("PIPELINING-ORDER", reply is not None,
                      f"{len(seen)} replies to {len(lines)} pipelined commands ({shown}), then {lost}")
                assert reply is not None
                verb = command_verb(line)
                seen.append(f"{line.split(':')[0]} → {reply.code}")
                allowed = _pipelined_allowed(state, verb)
                check("PIPELINING-ORDER", reply.code in allowed,
                      f"reply #{len(seen)} ({reply.code}) is not one RFC 5321 lists for {line!r} in "
                      f"state {state.name}: replies {', '.join(seen)}")
                precondition(reply.code != 421, f"the server closed the session (421): {', '.join(seen)}")
                if verb == "DATA" and reply.code == 354:
                    state = SessionState.DATA
                else:
                    state = transition(state, event_for_reply(verb, reply.code))
                accepted += verb == "RCPT" and reply.code in (250, 251)
            if state is SessionState.DATA:
                # RFC 2920 §3.2 (4): with no valid recipient the message is empty.
                await client.send_raw(data_payload(message) if accepted else b".\r\n")
                final = await client.read_reply()
                allowed = expected_reply_codes(SessionState.DATA, END_DATA)
                check("PIPELINING-ORDER", final.code in allowed,
                      f"the end of data answered {final.code}; allowed {sorted(allowed)}")
            await client.quit()
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("8BITMIME-PARAM")
def test_smtp_body_parameter_accepted(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> None:
        client = await open_submission(target, evidence)
        try:
            need("8BITMIME" in client.extensions, "submission server does not advertise 8BITMIME")
            # RFC 6152 §3: "one optional parameter using the keyword BODY is added to the MAIL
            # FROM command.  The value associated with this parameter is a keyword indicating
            # whether a 7-bit message (in strict compliance with [RFC5321]) or a MIME message
            # (in strict compliance with [RFC2046] and [RFC2045]) with arbitrary octet content
            # is being sent."
            for body in ("8BITMIME", "7BIT"):
                code = (await client.mail(acct.address, [f"BODY={body}"])).code
                check("8BITMIME-PARAM", code == 250, f"MAIL BODY={body} answered {code}")
                rset = (await client.rset()).code
                precondition(rset == 250, f"RSET answered {rset}")
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("8BITMIME-PRESERVE")
@pytest.mark.step(7)
def test_smtp_8bit_body_delivered_intact(target: Target, evidence: Evidence) -> None:
    sender = account(target.sender)
    rcpt = account(target.receiver)
    mark = token()
    body = "Grüße aus Köln — 8-bit über alles: ÆØÅ æøå ñ ß €\r\n".encode()
    message = make_message(sender=sender.address, recipient=rcpt.address, subject="8bit",
                           body=body, mark=mark,
                           extra=[("MIME-Version", "1.0"),
                                  ("Content-Type", "text/plain; charset=utf-8"),
                                  ("Content-Transfer-Encoding", "8bit")])

    async def scenario() -> None:
        await submit(target, evidence, message, [rcpt.address])  # needs 8BITMIME advertised
        delivered = (await wait_delivery(target, evidence, target.receiver, mark))[1]
        # RFC 6152 §3: with BODY=8BITMIME the message "with arbitrary octet content" is carried
        # as is.
        check("8BITMIME-PRESERVE", body in delivered, "the 8-bit body did not arrive octet for octet")

    run(scenario())


@pytest.mark.requirement("SMTPUTF8-ADDRESS")
@pytest.mark.step(6)
def test_smtp_utf8_sender_accepted_where_advertised(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)

    async def scenario() -> None:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            need("SMTPUTF8" in client.extensions, "MX does not advertise SMTPUTF8")
            # RFC 6531 §3.4: with the SMTPUTF8 parameter, the reverse-path may contain UTF-8
            # characters (§3.3 extends the Mailbox syntax); a server announcing SMTPUTF8 takes
            # them.
            await client.send_raw("MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\n".encode())
            mail = (await client.read_reply()).code
            check("SMTPUTF8-ADDRESS", mail == 250, f"MAIL FROM a UTF-8 address with SMTPUTF8 answered {mail}")
            code = (await client.rcpt(rcpt.address)).code
            check("SMTPUTF8-ADDRESS", code in (250, 251), f"RCPT after a UTF-8 MAIL FROM answered {code}")
            await client.rset()
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTPUTF8-NO-DOWNGRADE")
@pytest.mark.step(5)
def test_smtp_utf8_address_not_relayed_to_a_hop_without_smtputf8(target: Target,
                                                                   evidence: Evidence) -> None:
    dns = scripted_dns(target, sinks=5)
    need(target.sender.imap is not None or target.sender.imaps is not None,
         "target gives no IMAP access to the sender's mailbox, where the bounce arrives")
    mark = token()
    sender = account(target.sender)

    async def scenario() -> None:
        async with SinkServer(dns.sinks[4], dns.outbound_port, offer_smtputf8=False) as sink:
            domain = f"utf8-{mark}.{SCRIPTED_ZONE}"
            await dns.point(evidence, domain, mx=[(10, dns.sinks[4])])
            evidence.note("the MX of the recipient's domain does not offer SMTPUTF8")
            recipient = f"jörg-{mark}@{domain}"
            message = make_message(sender=sender.address, recipient=recipient,
                                   subject="UTF-8 address", body="Für Jörg.\r\n", mark=mark)
            await submit(target, evidence, message, [recipient])
            bounce: bytes | None = None
            with contextlib.suppress(AssertionError, TimeoutError):
                # Until the bounce arrives (or the wait ends: an MTA MAY hold the message).
                bounce = (await wait_delivery(target, evidence, target.sender, mark))[1]
            connections, violations = sink.connections, list(sink.smtputf8_violations)
        # RFC 6531 §3.2: "If the SMTPUTF8 SMTP extension is not offered by the SMTP server, the
        # SMTPUTF8-aware SMTP client MUST NOT transmit an internationalized email address".
        # What it does instead is its choice: it "SHOULD reject the message" (a bounce), or
        # "MAY choose to requeue the message and try later" — so the bounce is noted, not
        # required.
        precondition(connections >= 1, "the MTA never reached the recipient's MX, so nothing was judged")
        check("SMTPUTF8-NO-DOWNGRADE", not violations, f"the MTA sent to a hop without SMTPUTF8: {violations}")
        evidence.note("a non-delivery notification reached the sender" if bounce is not None else
                      "no bounce within the wait: the MTA holds the message (allowed)")

    run(scenario())


@pytest.mark.requirement("ENHANCED-CODES")
@pytest.mark.step(6)
def test_smtp_enhanced_codes_match_the_reply_class(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    nobody = f"no-such-user-{token()}@{target.receiver.domain}"

    async def scenario() -> None:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            need("ENHANCEDSTATUSCODES" in client.extensions, "MX does not advertise ENHANCEDSTATUSCODES")
            for line in ("NOOP", "RSET", "DATA", "RCPT TO:<x@example.com>", "XMAILHARNESS",
                         "MAIL FROM:<someone@example.com>", f"RCPT TO:<{rcpt.address}>",
                         f"RCPT TO:<{nobody}>", "RCPT TO:<victim@example.com>", "RSET", "QUIT"):
                reply = await client.command(line)
                # RFC 2034 §3: "the text part of all 2xx, 4xx, and 5xx SMTP responses other than
                # the initial greeting and any response to HELO or EHLO are prefaced with a
                # status code"; RFC 3463 §2: the class sub-code matches the reply's success,
                # transient or permanent failure.
                check("ENHANCED-CODES", reply.enhanced is not None,
                      f"{line!r} → {reply.code} carries no enhanced status code")
                check("ENHANCED-CODES", reply.enhanced is not None and reply.enhanced.klass == reply.code // 100,
                      f"{line!r} → {reply.code} {reply.enhanced}: class does not match the reply code")
        finally:
            await client.close()

    run(scenario())
