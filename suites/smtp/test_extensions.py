"""SMTP service extensions: SIZE (RFC 1870), PIPELINING (RFC 2920), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034)."""

from __future__ import annotations

import contextlib

import pytest

from harness.protocol.smtp import Reply
from harness.sink import SinkServer
from harness.suite import (
    SCRIPTED_ZONE,
    Evidence,
    account,
    make_message,
    need,
    open_mx_plain,
    open_submission,
    run,
    scripted_dns,
    send_pipelined,
    submit,
    token,
    wait_delivery,
)
from harness.targets import Target

pytestmark = pytest.mark.step(1)


@pytest.mark.requirement("SIZE-MAIL-552")
def test_smtp_mail_size_over_limit_is_552(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> tuple[str | None, int]:
        client = await open_submission(target, evidence)
        try:
            size = client.extensions.get("SIZE")
            if not size or not size.strip().isdigit() or int(size) == 0:
                return size, 0
            return size, (await client.mail(acct.address, [f"SIZE={int(size) + 1}"])).code
        finally:
            await client.close()

    size, code = run(scenario())
    need(size and size.strip().isdigit() and int(size) > 0, "server advertises no fixed SIZE limit")
    # RFC 1870 §6.1: "If the indicated size is larger than the server's fixed maximum message
    # size, the server responds with code "552 message size exceeds fixed maximium message size"."
    assert code == 552, f"MAIL SIZE={int(str(size)) + 1} (over SIZE {size}) answered {code}"


@pytest.mark.requirement("PIPELINING-ORDER")
@pytest.mark.step(6)
def test_smtp_pipelined_group_answered_in_order(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    mark = token()
    nobody = f"no-such-user-{mark}@{target.receiver.domain}"
    message = make_message(sender="someone@example.com", recipient=rcpt.address,
                           subject="pipelining", body="One write, four commands.\r\n", mark=mark)

    async def scenario() -> tuple[bool, list[Reply], Reply | None]:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            if "PIPELINING" not in client.extensions:
                return False, [], None
            replies = await send_pipelined(
                client,
                ["MAIL FROM:<someone@example.com>", f"RCPT TO:<{rcpt.address}>",
                 f"RCPT TO:<{nobody}>", "DATA"],
                timeout=5.0,
            )
            final = None
            if replies[-1].code == 354:
                from harness.protocol.smtp import data_payload

                await client.send_raw(data_payload(message))
                final = await client.read_reply()
            await client.quit()
            return True, replies, final
        finally:
            await client.close()

    offered, replies, final = run(scenario())
    need(offered, "MX does not advertise PIPELINING")
    codes = [r.code for r in replies]
    # RFC 2920 §3.2: a server offering pipelining "MUST respond to commands in the order they are
    # received from the client."
    assert codes[0] == 250, f"pipelined MAIL answered {codes}"
    assert codes[1] in (250, 251), f"pipelined RCPT (local user) answered {codes}"
    assert codes[2] == 550, f"pipelined RCPT (unknown user) answered {codes}"
    assert codes[3] == 354, f"pipelined DATA answered {codes}"
    assert final is not None and final.code == 250, f"end of data answered {final}"


@pytest.mark.requirement("8BITMIME-PARAM")
def test_smtp_body_parameter_accepted(target: Target, evidence: Evidence) -> None:
    acct = account(target.sender)

    async def scenario() -> tuple[bool, int, int]:
        client = await open_submission(target, evidence)
        try:
            if "8BITMIME" not in client.extensions:
                return False, 0, 0
            eight = (await client.mail(acct.address, ["BODY=8BITMIME"])).code
            await client.rset()
            seven = (await client.mail(acct.address, ["BODY=7BIT"])).code
            await client.rset()
            return True, eight, seven
        finally:
            await client.close()

    offered, eight, seven = run(scenario())
    need(offered, "submission server does not advertise 8BITMIME")
    # RFC 6152 §3: "one optional parameter using the keyword BODY is added to the MAIL FROM
    # command.  The value associated with this parameter is a keyword indicating whether a
    # 7-bit message (in strict compliance with [RFC5321]) or a MIME message (in strict compliance
    # with [RFC2046] and [RFC2045]) with arbitrary octet content is being sent."
    assert eight == 250, f"MAIL BODY=8BITMIME answered {eight}"
    assert seven == 250, f"MAIL BODY=7BIT answered {seven}"


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

    async def scenario() -> bytes:
        await submit(target, evidence, message, [rcpt.address])
        return (await wait_delivery(target, evidence, target.receiver, mark))[1]

    delivered = run(scenario())
    # RFC 6152 §3: with BODY=8BITMIME the message "with arbitrary octet content" is carried as is.
    assert body in delivered, "the 8-bit body did not arrive octet for octet"


@pytest.mark.requirement("SMTPUTF8-ADDRESS")
@pytest.mark.step(6)
def test_smtp_utf8_sender_accepted_where_advertised(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)

    async def scenario() -> tuple[bool, int, int]:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            if "SMTPUTF8" not in client.extensions:
                return False, 0, 0
            await client.send_raw("MAIL FROM:<jörg@bücher.example> SMTPUTF8\r\n".encode())
            mail = (await client.read_reply()).code
            rcpt_code = (await client.rcpt(rcpt.address)).code if mail == 250 else 0
            await client.rset()
            return True, mail, rcpt_code
        finally:
            await client.close()

    offered, mail, rcpt_code = run(scenario())
    need(offered, "MX does not advertise SMTPUTF8")
    # RFC 6531 §3.4: with the SMTPUTF8 parameter, the reverse-path may contain UTF-8 characters
    # (§3.3 extends the Mailbox syntax); a server announcing SMTPUTF8 takes them.
    assert mail == 250, f"MAIL FROM a UTF-8 address with SMTPUTF8 answered {mail}"
    assert rcpt_code in (250, 251), f"RCPT after a UTF-8 MAIL FROM answered {rcpt_code}"


@pytest.mark.requirement("SMTPUTF8-NO-DOWNGRADE")
@pytest.mark.step(5)
def test_smtp_utf8_address_not_relayed_to_a_hop_without_smtputf8(target: Target,
                                                                   evidence: Evidence) -> None:
    dns = scripted_dns(target, sinks=5)
    need(target.sender.imap is not None or target.sender.imaps is not None,
         "target gives no IMAP access to the sender's mailbox, where the bounce arrives")
    mark = token()
    sender = account(target.sender)

    async def scenario() -> tuple[int, list[str], bytes | None]:
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
            return sink.connections, list(sink.smtputf8_violations), bounce

    connections, violations, bounce = run(scenario())
    # RFC 6531 §3.2: "If the SMTPUTF8 SMTP extension is not offered by the SMTP server, the
    # SMTPUTF8-aware SMTP client MUST NOT transmit an internationalized email address". What it
    # does instead is its choice: it "SHOULD reject the message" (a bounce), or "MAY choose to
    # requeue the message and try later" — so the bounce is noted, not required.
    assert connections >= 1, "the MTA never reached the recipient's MX, so nothing was judged"
    assert not violations, f"the MTA sent to a hop without SMTPUTF8: {violations}"
    evidence.note("a non-delivery notification reached the sender" if bounce is not None else
                  "no bounce within the wait: the MTA holds the message (allowed)")


@pytest.mark.requirement("ENHANCED-CODES")
@pytest.mark.step(6)
def test_smtp_enhanced_codes_match_the_reply_class(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    nobody = f"no-such-user-{token()}@{target.receiver.domain}"

    async def scenario() -> tuple[bool, list[tuple[str, Reply]]]:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            if "ENHANCEDSTATUSCODES" not in client.extensions:
                return False, []
            seen = []
            for line in ("NOOP", "RSET", "DATA", "RCPT TO:<x@example.com>", "XMAILHARNESS",
                         "MAIL FROM:<someone@example.com>", f"RCPT TO:<{rcpt.address}>",
                         f"RCPT TO:<{nobody}>", "RCPT TO:<victim@example.com>", "RSET", "QUIT"):
                seen.append((line, await client.command(line)))
            return True, seen
        finally:
            await client.close()

    offered, seen = run(scenario())
    need(offered, "MX does not advertise ENHANCEDSTATUSCODES")
    for line, reply in seen:
        # RFC 2034 §3: "the text part of all 2xx, 4xx, and 5xx SMTP responses other than the
        # initial greeting and any response to HELO or EHLO are prefaced with a status code";
        # RFC 3463 §2: the class sub-code matches the reply's success, transient or permanent
        # failure.
        assert reply.enhanced is not None, f"{line!r} → {reply.code} carries no enhanced status code"
        assert reply.enhanced.klass == reply.code // 100, (
            f"{line!r} → {reply.code} {reply.enhanced}: class does not match the reply code"
        )
