"""RFC 3464 delivery status notifications: the bounce the MTA sends when delivery fails."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime

CRLF = b"\r\n"
_LINE_BREAKS = re.compile(r"[\r\n]+\s*")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def _one_line(text: str) -> str:
    """Header field values are one line: fold reply lines into one, drop control characters."""
    text = _LINE_BREAKS.sub(" ", text).strip()
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _address_type(address: str) -> str:
    """RFC 3464 §2.3.2 address type: rfc822, or utf-8 (RFC 6533) for a non-ASCII address."""
    return "rfc822" if address.isascii() else "utf-8"


def _date(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment)


def _original_headers(message: bytes) -> bytes:
    """The header section of *message*, CRLF line endings, without the blank line."""
    match = _HEADER_END.search(message)
    header = message[: match.start()] if match else message
    lines = header.replace(b"\r\n", b"\n").split(b"\n")
    return CRLF.join(lines).rstrip(CRLF) + CRLF


def build_dsn(
    *,
    reporting_mta: str,
    original_from: str,
    failed: Sequence[tuple[str, str, str]],
    original_message: bytes,
    arrival: datetime,
    domain: str,
) -> bytes:
    """A multipart/report; report-type=delivery-status message telling *original_from* that
    the *failed* recipients (address, status such as "5.1.1", the remote server's diagnostic)
    could not be delivered. CRLF line endings; ready to enqueue with a null reverse-path."""
    if not original_from:
        # RFC 5321 §6.1: "if this address is null ("<>"), the receiver-SMTP MUST NOT send a
        # notification."
        raise ValueError("no DSN for a message with a null reverse-path")
    if not failed:
        raise ValueError("a DSN reports at least one failed recipient")
    boundary = f"=_dsn_{secrets.token_hex(12)}"
    now = datetime.now(UTC)
    message_id = f"<{secrets.token_hex(16)}.dsn@{domain}>"

    header_lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{domain}>",
        f"To: <{original_from}>",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {format_datetime(now)}",
        f"Message-ID: {message_id}",
        # RFC 3834 §5: automatic responses are marked "auto-replied".
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "Content-Transfer-Encoding: 8bit",
    ]

    human = [
        f"This is the mail system at host {reporting_mta}.",
        "",
        "Your message could not be delivered to one or more recipients.",
        "It is attached below (headers only).",
        "",
    ]
    for recipient, status, diagnostic in failed:
        human.append(f"<{recipient}>: {status} {_one_line(diagnostic)}".rstrip())

    # RFC 3464 §2.2: per-message fields, a blank line, then one block per recipient.
    status_lines = [
        f"Reporting-MTA: dns; {reporting_mta}",
        f"Arrival-Date: {_date(arrival)}",
    ]
    for recipient, status, diagnostic in failed:
        status_lines.append("")
        status_lines.append(f"Final-Recipient: {_address_type(recipient)}; {recipient}")
        # RFC 3464 §2.3.3: "failed" - could not be delivered to the recipient.
        status_lines.append("Action: failed")
        status_lines.append(f"Status: {status}")
        if diagnostic:
            status_lines.append(f"Diagnostic-Code: smtp; {_one_line(diagnostic)}")
        status_lines.append(f"Last-Attempt-Date: {format_datetime(now)}")

    def part(content_type: str, body: bytes) -> bytes:
        return (
            f"--{boundary}".encode() + CRLF
            + f"Content-Type: {content_type}".encode() + CRLF
            + CRLF
            + body
        )

    def text(lines: list[str]) -> bytes:
        return CRLF.join(line.encode("utf-8") for line in lines) + CRLF

    return (
        text(header_lines)
        + CRLF
        + b"This is a MIME-encapsulated message." + CRLF
        + CRLF
        + part('text/plain; charset="utf-8"', text(human))
        + CRLF
        + part("message/delivery-status", text(status_lines))
        + CRLF
        + part("text/rfc822-headers", _original_headers(original_message))
        + CRLF
        + f"--{boundary}--".encode() + CRLF
    )
