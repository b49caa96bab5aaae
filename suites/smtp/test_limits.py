"""SMTP limits (RFC 5321 §4.5.3, RFC 1870): command and text line length, recipients, message size."""

from __future__ import annotations

import pytest

from harness.clients.smtp import SMTPConnectionClosed
from harness.protocol.smtp import Reply, data_payload
from harness.suite import (
    Evidence,
    account,
    make_message,
    need,
    open_mx_plain,
    open_submission,
    run,
    send_pipelined,
    token,
    wait_delivery,
)
from harness.targets import Target

pytestmark = pytest.mark.step(1)

#: How many RCPT commands the recipient-limit check sends at most.
MAX_RCPT_PROBE = 1100
RCPT_BATCH = 100


@pytest.mark.requirement("SMTP-LINE-COMMAND")
def test_smtp_long_command_line_keeps_session(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[int, int | None]:
        client = await open_submission(target, evidence, login=False)
        try:
            line = "NOOP " + "x" * 795  # 802 octets with CRLF: over 512, under common buffers
            await client.send_raw(line.encode() + b"\r\n")
            long_reply = (await client.read_reply()).code
            try:
                after: int | None = (await client.noop()).code
            except SMTPConnectionClosed:
                after = None
            return long_reply, after
        except SMTPConnectionClosed:
            return 0, None
        finally:
            await client.close()

    long_reply, after = run(scenario())
    # RFC 5321 §4.5.3.1.4: "The maximum total length of a command line including the command word
    # and the <CRLF> is 512 octets", yet §4.5.3.1: "implementation techniques that impose no
    # limits on the length of these objects should be used"; §4.5.3.1.10: "Errors due to
    # exceeding these limits may be reported by using the reply codes ... 500 Line too long".
    # So: 500, or the NOOP done (250; 501 for its argument) — as ONE command, never a dropped
    # session or a second reply from the rest of the line.
    assert long_reply in (250, 500, 501), f"an 802-octet command line answered {long_reply or 'nothing'}"
    assert after == 250, f"NOOP after the long line answered {after}: the session did not go on"


@pytest.mark.requirement("SMTP-LINE-TEXT")
def test_smtp_text_line_over_1000_refused_or_kept(target: Target, evidence: Evidence) -> None:
    sender = account(target.sender)
    mark = token()
    body = b"y" * 1500 + b"\r\nshort line\r\n"
    message = make_message(sender=sender.address, recipient=sender.address, subject="long line",
                           body=body, mark=mark)

    async def scenario() -> tuple[Reply, int, bytes | None]:
        client = await open_submission(target, evidence)
        try:
            result = await client.send_message(sender.address, [sender.address], message)
            assert result.data is not None, f"the transaction stopped before DATA: {result}"
            after = (await client.noop()).code
        finally:
            await client.close()
        if not result.data.is_positive:
            return result.data, after, None
        need(target.sender.imap is not None or target.sender.imaps is not None,
             "the long line was accepted and the target gives no IMAP access to check it")
        return result.data, after, (await wait_delivery(target, evidence, target.sender, mark))[1]

    data, after, delivered = run(scenario())
    # RFC 5321 §4.5.3.1.6: "The maximum total length of a text line including the <CRLF> is 1000
    # octets"; §4.5.3.1.10: such errors "may be reported" (500 Line too long, 552, 554). A server
    # may also take the line (§4.5.3.1: "implementation techniques that impose no limits ...
    # should be used") — but then deliver it as it came, not cut or folded.
    assert after == 250, f"NOOP after the long-line message answered {after}"
    if delivered is None:
        assert data.is_permanent, f"a message with a 1502-octet line was answered {data.code}"
    else:
        assert b"y" * 1500 + b"\r\n" in delivered, (
            "the 1502-octet line was accepted and then cut or folded on delivery"
        )


async def _rcpt_codes(target: Target, evidence: Evidence, count: int) -> list[int]:
    rcpt = account(target.receiver)
    client = await open_mx_plain(target, evidence, target.receiver)
    try:
        assert (await client.mail("someone@example.com")).code == 250
        codes: list[int] = []
        pipelining = "PIPELINING" in client.extensions
        while len(codes) < count and all(c in (250, 251) for c in codes):
            batch = min(RCPT_BATCH if pipelining else 1, count - len(codes))
            replies = await send_pipelined(client, [f"RCPT TO:<{rcpt.address}>"] * batch)
            codes.extend(r.code for r in replies)
        await client.rset()
        return codes
    finally:
        await client.close()


@pytest.mark.requirement("SMTP-RCPT-MIN-100")
@pytest.mark.step(6)
def test_smtp_100_recipients_accepted(target: Target, evidence: Evidence) -> None:
    codes = run(_rcpt_codes(target, evidence, 100))
    refused = [i + 1 for i, c in enumerate(codes) if c not in (250, 251)]
    # RFC 5321 §4.5.3.1.8: "The minimum total number of recipients that MUST be buffered is 100
    # recipients.  Rejection of messages (for excessive recipients) with fewer than 100 RCPT
    # commands is a violation of this specification."
    assert not refused, f"RCPT #{refused[0]} of 100 answered {codes[refused[0] - 1]}"


@pytest.mark.requirement("SMTP-RCPT-LIMIT-452")
@pytest.mark.step(6)
def test_smtp_recipients_over_limit_get_452(target: Target, evidence: Evidence) -> None:
    codes = run(_rcpt_codes(target, evidence, MAX_RCPT_PROBE))
    refused = [(i + 1, c) for i, c in enumerate(codes) if c not in (250, 251)]
    need(refused, f"server accepted all {len(codes)} recipients: no limit to check")
    number, code = refused[0]
    # RFC 5321 §4.5.3.1.10: "If an SMTP server has an implementation limit on the number of RCPT
    # commands and this limit is exhausted, it MUST use a response code of 452"
    assert code == 452, f"RCPT #{number} over the recipient limit answered {code}, not 452"


@pytest.mark.requirement("SIZE-DATA-552")
@pytest.mark.step(6)
def test_smtp_message_over_size_is_552(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    mark = token()

    async def scenario() -> tuple[int, Reply | None, int]:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            size = client.extensions.get("SIZE", "").strip()
            limit = int(size) if size.isdigit() else 0
            if not 0 < limit <= 64 * 1024 * 1024:
                return limit, None, 0
            line = b"z" * 998 + b"\r\n"
            head = make_message(sender="someone@example.com", recipient=rcpt.address,
                                subject="too big", body="", mark=mark)
            body = line * (limit // len(line) + 2)
            await client.mail("someone@example.com")
            await client.rcpt(rcpt.address)
            if (await client.command("DATA")).code != 354:
                return limit, None, 0
            client.transcript.note(f"sending {len(head) + len(body)} octets (SIZE {limit})")
            await client.send_raw(data_payload(head + body))
            final = await client.read_reply(60.0)
            return limit, final, (await client.noop()).code
        finally:
            await client.close()

    limit, final, after = run(scenario())
    need(limit, "MX advertises no SIZE limit (or one over 64 MiB)")
    assert final is not None, "DATA was not accepted for a local recipient"
    # RFC 1870 §6: a message over the fixed maximum is refused with "552 message size exceeds
    # fixed maximium message size"; RFC 5321 §4.5.3.1.10 names 552 "Too much mail data".
    assert final.code == 552, f"a message over SIZE {limit} answered {final.code}"
    assert after == 250, f"NOOP after the refused message answered {after}"
