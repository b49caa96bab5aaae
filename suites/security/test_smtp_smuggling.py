"""SMTP smuggling (RFC 5321 §4.1.1.4): end-of-data variants with a bare LF or CR must neither end DATA nor start a second transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from harness.clients.smtp import SMTPClient
from harness.suite import (
    Evidence,
    account,
    check,
    make_message,
    open_mx_plain,
    open_submission,
    precondition,
    replies_until_closed,
    run,
    token,
)
from harness.targets import Target

pytestmark = pytest.mark.step(6)

#: Every "end of data" a lenient parser might take, with a bare LF or a bare CR.
VARIANTS: tuple[bytes, ...] = (
    b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r", b"\n.\r", b"\r.\r\n", b"\r.\n",
)


async def _smuggle(
    open_session: Callable[[], Awaitable[SMTPClient]], mail_from: str, rcpt: str, variant: bytes
) -> tuple[list[int], bool]:
    """Send one message whose body holds *variant* and a whole second transaction behind it,
    then QUIT; return the codes of every reply after 354 and whether the server closed."""
    mark = token()
    client = await open_session()
    try:
        precondition((await client.mail(mail_from)).is_positive, "MAIL refused")
        precondition((await client.rcpt(rcpt)).is_positive, "RCPT refused")
        precondition((await client.command("DATA")).code == 354, "DATA refused")
        head = make_message(sender=mail_from, recipient=rcpt, subject="smuggling", body="",
                            mark=mark).rstrip(b"\r\n")
        smuggled = (
            f"MAIL FROM:<{mail_from}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n"
            f"Subject: smuggled {mark}\r\n\r\nsmuggled\r\n"
        ).encode()
        await client.send_raw(head + b"\r\nfirst part" + variant + smuggled + b".\r\nQUIT\r\n")
        replies, closed = await replies_until_closed(client, limit=8, timeout=5.0)
        return [r.code for r in replies], closed
    finally:
        await client.close()


def _check(results: list[tuple[bytes, list[int], bool]]) -> None:
    # RFC 5321 §4.1.1.4: "the sequence "<LF>.<LF>" (bare line feeds, without carriage
    # returns) MUST NOT be treated as equivalent to <CRLF>.<CRLF> as the end of mail data
    # indication."  One reply for the whole data (accepted with the smuggled text inside the
    # body, or refused), then 221 — never the replies of a second transaction. Every variant is
    # tried; the finding lists each one the server took as an end of data.
    smuggled = [f"{variant!r} (replies after 354: {codes})" for variant, codes, _closed in results
                if not (len(codes) == 2 and codes[-1] == 221 and (codes[0] == 250 or codes[0] >= 500))]
    check("SMTP-BARE-LF-END", not smuggled,
          f"{len(smuggled)} of {len(results)} variants ended DATA and let a smuggled transaction "
          f"run: {'; '.join(smuggled)}")


@pytest.mark.requirement("SMTP-BARE-LF-END")
def test_smtp_smuggling_mx(target: Target, evidence: Evidence) -> None:
    rcpt = account(target.receiver)

    async def scenario() -> list[tuple[bytes, list[int], bool]]:
        async def opener() -> SMTPClient:
            return await open_mx_plain(target, evidence, target.receiver)

        return [(v, *(await _smuggle(opener, "someone@example.com", rcpt.address, v))) for v in VARIANTS]

    _check(run(scenario()))


@pytest.mark.requirement("SMTP-BARE-LF-END")
@pytest.mark.step(1)
def test_smtp_smuggling_submission(target: Target, evidence: Evidence) -> None:
    sender = account(target.sender)
    rcpt = account(target.receiver)

    async def scenario() -> list[tuple[bytes, list[int], bool]]:
        async def opener() -> SMTPClient:
            return await open_submission(target, evidence)

        return [(v, *(await _smuggle(opener, sender.address, rcpt.address, v))) for v in VARIANTS]

    _check(run(scenario()))
