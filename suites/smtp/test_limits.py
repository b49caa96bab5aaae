"""SMTP limits (RFC 5321 §4.5.3, RFC 1870): command and text line length, recipients, message size."""

from __future__ import annotations

import pytest

from harness.clients.smtp import SMTPConnectionClosed
from harness.protocol.smtp import data_payload
from harness.suite import (
    Evidence,
    account,
    check,
    make_message,
    need,
    open_mx_plain,
    open_submission,
    precondition,
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
    async def scenario() -> None:
        client = await open_submission(target, evidence, login=False)
        try:
            line = "NOOP " + "x" * 795  # 802 octets with CRLF: over 512, under common buffers
            # RFC 5321 §4.5.3.1.4: "The maximum total length of a command line including the
            # command word and the <CRLF> is 512 octets", yet §4.5.3.1: "implementation
            # techniques that impose no limits on the length of these objects should be used";
            # §4.5.3.1.10: "Errors due to exceeding these limits may be reported by using the
            # reply codes ... 500 Line too long". So: 500, or the NOOP done (250; 501 for its
            # argument) — as ONE command, never a dropped session or a second reply from the
            # rest of the line.
            await client.send_raw(line.encode() + b"\r\n")
            try:
                long_reply = (await client.read_reply()).code
            except SMTPConnectionClosed:
                long_reply = 0
            check("SMTP-LINE-COMMAND", long_reply in (250, 500, 501),
                  f"an 802-octet command line answered {long_reply or 'nothing: the connection closed'}")
            try:
                # Sent as is (not refused for lines left over), so that a second reply to the
                # long line is read here, as the NOOP's.
                after: int | None = (await send_pipelined(client, ["NOOP"]))[0].code
            except SMTPConnectionClosed:
                after = None
            check("SMTP-LINE-COMMAND", after == 250,
                  f"NOOP after the long line answered {after or 'nothing: the connection closed'}")
        finally:
            await client.close()

    run(scenario())


@pytest.mark.requirement("SMTP-LINE-TEXT")
def test_smtp_text_line_over_1000_refused_or_kept(target: Target, evidence: Evidence) -> None:
    sender = account(target.sender)
    mark = token()
    body = b"y" * 1500 + b"\r\nshort line\r\n"
    message = make_message(sender=sender.address, recipient=sender.address, subject="long line",
                           body=body, mark=mark)

    async def scenario() -> None:
        client = await open_submission(target, evidence)
        try:
            result = await client.send_message(sender.address, [sender.address], message)
            precondition(result.data is not None, f"the transaction stopped before DATA: {result}")
            assert result.data is not None
            after = (await client.noop()).code
        finally:
            await client.close()
        # RFC 5321 §4.5.3.1.6: "The maximum total length of a text line including the <CRLF> is
        # 1000 octets"; §4.5.3.1.10: such errors "may be reported" (500 Line too long, 552,
        # 554). A server may also take the line (§4.5.3.1: "implementation techniques that
        # impose no limits ... should be used") — but then deliver it as it came, not cut or
        # folded.
        check("SMTP-LINE-TEXT", after == 250, f"NOOP after the long-line message answered {after}")
        if not result.data.is_positive:
            check("SMTP-LINE-TEXT", result.data.is_permanent,
                  f"a message with a 1502-octet line was answered {result.data.code}")
            return
        need(target.sender.imap is not None or target.sender.imaps is not None,
             "the long line was accepted and the target gives no IMAP access to check it")
        delivered = (await wait_delivery(target, evidence, target.sender, mark))[1]
        check("SMTP-LINE-TEXT", b"y" * 1500 + b"\r\n" in delivered,
              "the 1502-octet line was accepted and then cut or folded on delivery")

    run(scenario())


async def _rcpt_codes(target: Target, evidence: Evidence, count: int) -> list[int]:
    rcpt = account(target.receiver)
    client = await open_mx_plain(target, evidence, target.receiver)
    try:
        mail = (await client.mail("someone@example.com")).code
        precondition(mail == 250, f"MAIL FROM:<someone@example.com> answered {mail}")
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
    check("SMTP-RCPT-MIN-100", not refused,
          f"RCPT #{refused[0]} of 100 answered {codes[refused[0] - 1]}" if refused else "all 100 accepted")


@pytest.mark.requirement("SMTP-RCPT-LIMIT-452")
@pytest.mark.step(6)
def test_smtp_recipients_over_limit_get_452(target: Target, evidence: Evidence) -> None:
    codes = run(_rcpt_codes(target, evidence, MAX_RCPT_PROBE))
    refused = [(i + 1, c) for i, c in enumerate(codes) if c not in (250, 251)]
    need(refused, f"server accepted all {len(codes)} recipients: no limit to check")
    number, code = refused[0]
    # RFC 5321 §4.5.3.1.10: "If an SMTP server has an implementation limit on the number of RCPT
    # commands and this limit is exhausted, it MUST use a response code of 452"
    check("SMTP-RCPT-LIMIT-452", code == 452, f"RCPT #{number} over the recipient limit answered {code}, not 452")


@pytest.mark.requirement("SIZE-DATA-552")
@pytest.mark.step(6)
def test_smtp_message_over_size_is_552(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)
    mark = token()

    async def scenario() -> None:
        client = await open_mx_plain(target, evidence, target.receiver)
        try:
            size = client.extensions.get("SIZE", "").strip()
            limit = int(size) if size.isdigit() else 0
            need(0 < limit <= 64 * 1024 * 1024, "MX advertises no SIZE limit (or one over 64 MiB)")
            line = b"z" * 998 + b"\r\n"
            head = make_message(sender="someone@example.com", recipient=rcpt.address,
                                subject="too big", body="", mark=mark)
            body = line * (limit // len(line) + 2)
            mail = (await client.mail("someone@example.com")).code
            precondition(mail == 250, f"MAIL FROM:<someone@example.com> answered {mail}")
            code = (await client.rcpt(rcpt.address)).code
            precondition(code in (250, 251), f"RCPT TO:<{rcpt.address}> answered {code}")
            data = (await client.command("DATA")).code
            precondition(data == 354, f"DATA for a local recipient answered {data}")
            client.transcript.note(f"sending {len(head) + len(body)} octets (SIZE {limit})")
            await client.send_raw(data_payload(head + body))
            final = (await client.read_reply(60.0)).code
            # RFC 1870 §6: a message over the fixed maximum is refused with "552 message size
            # exceeds fixed maximium message size"; RFC 5321 §4.5.3.1.10 names 552 "Too much
            # mail data".
            check("SIZE-DATA-552", final == 552, f"a message over SIZE {limit} answered {final}")
            after = (await client.noop()).code
            check("SIZE-DATA-552", after == 250, f"NOOP after the refused message answered {after}")
        finally:
            await client.close()

    run(scenario())
