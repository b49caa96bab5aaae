"""Self-verifying messages for load runs: each carries a token and a digest of its own body, so
the reader that finds it can tell, alone, which message it is and whether it arrived intact —
no reader needs the sender's state (Locust workers on other machines included)."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

#: The header field that carries ``token SP digest``.
TOKEN_FIELD = "X-Load-Token"
_TOKEN_RE = re.compile(rb"^X-Load-Token: ([A-Za-z0-9._-]{1,64}) ([0-9a-f]{32})\r?$",
                       re.MULTILINE | re.IGNORECASE)
_WORDS = ("mail", "load", "queue", "relay", "inbox", "token", "header", "body", "line", "flow")


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


def make_message(token: str, sender: str, recipient: str, size: int,
                 rng: random.Random) -> bytes:
    """A plain-text message of about *size* octets from *sender* to *recipient*. It has a Date
    and a Message-ID of its own, so that an MSA adds nothing but trace fields above it."""
    lines: list[str] = []
    total = 0
    while total < max(size - 300, 1):
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 12)))
        lines.append(line)
        total += len(line) + 2
    body = ("\r\n".join(lines) + "\r\n").encode("ascii")
    head = (f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: load {token}\r\n"
            "Date: Fri, 04 Dec 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{token}@load.mailharness.invalid>\r\n"
            f"{TOKEN_FIELD}: {token} {_digest(body)}\r\n\r\n")
    return head.encode("ascii") + body


@dataclass(frozen=True, slots=True)
class Found:
    """What a reader learns from a message it fetched: its token, and whether its body is the
    one the digest names."""

    token: str
    intact: bool


def inspect(message: bytes) -> Found | None:
    """The token of a load message, and whether its body is intact; None for any other mail."""
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        return None
    match = _TOKEN_RE.search(head)
    if match is None:
        return None
    return Found(match.group(1).decode("ascii"), _digest(body) == match.group(2).decode("ascii"))
