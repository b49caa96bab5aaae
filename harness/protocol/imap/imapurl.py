"""IMAP URLs of one message or message part on the same server (RFC 5092), as CATENATE's URL
parts name them (RFC 4469 §3): the relative forms, parsed to the message they point at."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from harness.protocol.imap.command_parser import parse_section
from harness.protocol.imap.command_values import Section
from harness.protocol.imap.lexer import ParseError


class BadUrl(ValueError):
    """The URL is not a relative IMAP URL of a message or part (answer NO [BADURL url])."""


@dataclass(frozen=True, slots=True)
class MessageUrl:
    """What a URL names: a message by UID in a mailbox (None: the selected mailbox, RFC 4469
    §3: "When in the selected state, the base URL is considered "imap://user@server/mailbox"),
    optionally checked against UIDVALIDITY, and a section and partial range of it."""

    mailbox: str | None
    uidvalidity: int | None
    uid: int
    section: Section | None = None
    #: RFC 5092 §3: partial-range = number ["." nz-number]: (offset, length or None).
    partial: tuple[int, int | None] | None = None


_NZ = r"[1-9][0-9]{0,9}"
#: RFC 5092 §11: the keywords of iuid-only, isection-only, ipartial-only and uidvalidity
#: ("The URL ... keywords are case-insensitive": the RFC's own examples write ";section=").
_UID = re.compile(rf";UID=({_NZ})\Z", re.IGNORECASE)
_VALIDITY = re.compile(rf"(.*);UIDVALIDITY=({_NZ})\Z", re.IGNORECASE | re.DOTALL)
_SECTION = re.compile(r";SECTION=(.+)\Z", re.IGNORECASE | re.DOTALL)
_PARTIAL = re.compile(r";PARTIAL=([0-9]{1,10})(?:\.([1-9][0-9]{0,9}))?\Z", re.IGNORECASE)
#: RFC 3986 §2: unreserved and sub-delims, ":" and "@" (pchar), and pct-encoded.
_PCHARS = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*\Z")


def _decode(text: str) -> str:
    # RFC 5092 §3.2 (enc-mailbox, enc-section): %-encoded octets of a UTF-8 string.
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadUrl("bad %-encoding") from exc


def parse_message_url(url: str) -> MessageUrl:
    """Parse a relative IMAP URL (RFC 5092 §7: iabsolute-path / irelative-path) that names a
    message: ``/mailbox[;UIDVALIDITY=v]/;UID=u[/;SECTION=s][/;PARTIAL=o.l]``, the same without
    the leading "/", or ``;UID=u[...]`` for the selected mailbox. Raise BadUrl."""
    if url.startswith("//") or re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", url):
        # RFC 4469 §3: "only relative IMAP message or message part URLs (i.e., those having
        # no scheme or <iserver>) are used."
        raise BadUrl("not a relative URL")
    if "?" in url or "#" in url:
        raise BadUrl("a search or fragment names no single message")
    segments = url.removeprefix("/").split("/")
    if not all(_PCHARS.match(s) for s in segments):
        raise BadUrl("not URL characters")
    mailbox: str | None = None
    validity: int | None = None
    if not segments[0].upper().startswith(";UID="):
        # imailbox-ref = enc-mailbox [uidvalidity]; the mailbox may span hierarchy levels.
        cut = next((i for i, s in enumerate(segments) if s.upper().startswith(";UID=")), None)
        if cut is None or cut == 0:
            raise BadUrl("no ;UID=")
        name = "/".join(segments[:cut])
        m = _VALIDITY.match(name)
        if m is not None:
            name, validity = m.group(1), int(m.group(2))
        if not name or ";" in name:
            raise BadUrl("bad mailbox")
        mailbox = _decode(name)
        segments = segments[cut:]
    elif url.startswith("/"):
        raise BadUrl("no mailbox")
    m = _UID.match(segments[0])
    if m is None:
        raise BadUrl("bad ;UID=")
    uid = int(m.group(1))
    section: Section | None = None
    partial: tuple[int, int | None] | None = None
    rest = segments[1:]
    if rest and (m := _SECTION.match(rest[0])):
        try:
            section = parse_section(_decode(m.group(1)))
        except ParseError as exc:
            raise BadUrl("bad ;SECTION=") from exc
        rest = rest[1:]
    if rest and (m := _PARTIAL.match(rest[0])):
        partial = (int(m.group(1)), int(m.group(2)) if m.group(2) else None)
        rest = rest[1:]
    if rest:
        raise BadUrl("unexpected URL segment")
    if uid >= 2**32 or (validity is not None and validity >= 2**32):
        raise BadUrl("number out of range")
    return MessageUrl(mailbox, validity, uid, section, partial)
