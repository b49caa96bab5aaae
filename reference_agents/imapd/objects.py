"""Object identifiers (RFC 8474: MAILBOXID, EMAILID, THREADID) and message previews (RFC 8970)."""

from __future__ import annotations

import hashlib
import html
import re
import secrets

from harness.protocol.imap.formatting import FetchValue, Raw
from harness.protocol.imap.headers import field_value, parse_fields
from harness.protocol.imap.mime import (
    MimePart,
    UnknownTransferEncoding,
    decode_transfer_encoding,
    parse_mime,
    split_message,
)
from reference_agents.imapd.context import HandlerContext
from reference_agents.mailstore import MailboxInfo

#: RFC 8970 §3.3: "The server SHOULD limit the length of the preview text to 200 preview
#: characters."
PREVIEW_LENGTH = 200
_MSG_ID = re.compile(rb"<[^<>\s]+>")
_TAG = re.compile(r"<[^>]*>")
_INVISIBLE = re.compile(r"(?is)<(script|style|head)\b.*?</\1\s*>")


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\x00".join(parts)).hexdigest()[:24]


# -- RFC 8474 ----------------------------------------------------------------------------------


def mailbox_id(s: HandlerContext, info: MailboxInfo) -> str:
    """The mailbox's MAILBOXID, from its UIDVALIDITY: each new mailbox gets a UIDVALIDITY no
    other mailbox of the store ever had, and RENAME keeps it. RFC 8474 §4: "The server MUST
    return the same MAILBOXID for a mailbox with the same name and UIDVALIDITY." and "MUST NOT
    report the same MAILBOXID for two mailboxes at the same time"."""
    if s.config.has_quirk("imap_mailboxid_shared"):
        return "F1"  # quirk: every mailbox has the same MAILBOXID
    if s.config.has_quirk("imap_mailboxid_renamed_new"):
        # quirk: the MAILBOXID follows the name, so RENAME gives the mailbox a new one
        return "F" + _digest(info.name.encode("utf-8"), b"%d" % info.uidvalidity)
    return f"F{info.uidvalidity}"


def email_id(s: HandlerContext, data: bytes, uidvalidity: int, uid: int) -> str:
    """The message's EMAILID: a digest of its content, which COPY and MOVE keep. RFC 8474 §5.1:
    "The server MUST return the same EMAILID as the source message for the matching
    destination message in the COPYUID pairing after a COPY or MOVE command" (and identical
    content appended again MAY get the same one)."""
    if s.config.has_quirk("imap_emailid_unstable"):
        return "M" + secrets.token_hex(12)  # quirk: a new EMAILID every time
    if s.config.has_quirk("imap_emailid_per_mailbox"):
        # quirk: the EMAILID names the copy (mailbox and UID), so COPY/MOVE give a new one
        return "M" + _digest(data, b"%d/%d" % (uidvalidity, uid))
    return "M" + _digest(data)


def thread_id(s: HandlerContext, data: bytes) -> str:
    """The message's THREADID: a digest of the first message-id its References (else
    In-Reply-To, else Message-ID) names, so that a reply shares the thread of what it answers.
    It depends on the content alone: RFC 8474 §5.2 "The server MUST return the same THREADID
    for all messages with the same EMAILID" and "MUST NOT change the THREADID of a message once
    reported"."""
    if s.config.has_quirk("imap_threadid_is_emailid"):
        # quirk: the THREADID is the EMAILID's value (§5.2: "The server MUST NOT use the same
        # ObjectID value for both EMAILIDs and THREADIDs.")
        return "M" + _digest(data)
    fields = parse_fields(split_message(data)[0])
    for name in ("references", "in-reply-to", "message-id"):
        value = field_value(fields, name)
        found = _MSG_ID.search(value) if value is not None else None
        if found is not None:
            return "T" + _digest(found.group(0))
    return "T" + _digest(b"thread", data)


def object_id(s: HandlerContext, name: str, data: bytes, uidvalidity: int, uid: int) -> str:
    """The message's EMAILID or THREADID (*name*)."""
    if name == "EMAILID":
        return email_id(s, data, uidvalidity, uid)
    return thread_id(s, data)


def objectid_value(s: HandlerContext, name: str, data: bytes, uidvalidity: int,
                   uid: int) -> FetchValue:
    """FETCH EMAILID / THREADID (RFC 8474 §5.3): ``(objectid)``."""
    return Raw(f"({object_id(s, name, data, uidvalidity, uid)})".encode("ascii"))


# -- RFC 8970 ----------------------------------------------------------------------------------


def _first_text(part: MimePart) -> MimePart | None:
    """The first text/plain leaf, else the first text/html one (attachments skipped)."""
    leaves: list[MimePart] = []

    def walk(p: MimePart) -> None:
        if p.is_multipart:
            for child in p.children:
                walk(child)
        elif p.encapsulated is None:
            disposition = field_value(p.fields(), "content-disposition") or b""
            if p.maintype == "text" and not disposition.strip().lower().startswith(b"attachment"):
                leaves.append(p)

    walk(part)
    for subtype in ("plain", "html"):
        for leaf in leaves:
            if leaf.subtype == subtype:
                return leaf
    return None


def _decoded_text(s: HandlerContext, part: MimePart) -> str:
    fields = part.fields()
    encoding = (field_value(fields, "content-transfer-encoding") or b"7bit").decode(
        "ascii", "replace").strip()
    body = part.body
    if not s.config.has_quirk("imap_preview_encoded"):  # quirk: the octets as transferred
        try:
            body = decode_transfer_encoding(encoding, body, textual=True)
        except UnknownTransferEncoding:
            return ""
    charset = dict(part.params).get("CHARSET", b"us-ascii").decode("ascii", "replace")
    try:
        text = body.decode(charset, "replace")
    except LookupError:
        text = body.decode("utf-8", "replace")
    if part.subtype == "html" and not s.config.has_quirk("imap_preview_markup"):
        # RFC 8970 §3.3: "The server SHOULD remove any formatting markup" (quirk: kept)
        text = html.unescape(_TAG.sub(" ", _INVISIBLE.sub(" ", text)))
    return text


def preview(s: HandlerContext, data: bytes) -> str:
    """The preview of a message (RFC 8970 §3.3): the start of its first text part, decoded,
    markup removed, white space collapsed; "" when it has no text part (§3.2: "In such cases,
    the server MUST return a zero-length string")."""
    part = _first_text(parse_mime(data))
    if part is None:
        return ""
    text = " ".join(_decoded_text(s, part).split())
    # RFC 8970 §3.3: "The server MUST NOT output preview text longer than 256 preview
    # characters." (quirk imap_preview_too_long: cut at 300)
    limit = 300 if s.config.has_quirk("imap_preview_too_long") else PREVIEW_LENGTH
    return text[:limit]


def preview_value(s: HandlerContext, data: bytes) -> FetchValue:
    """FETCH PREVIEW (RFC 8970 §3.2); the same with LAZY, as a preview here costs no more than
    the message read. §3.2: "A server MUST NOT return NIL to a FETCH PREVIEW request made
    without the LAZY modifier." (quirk imap_preview_nil: NIL all the same)"""
    if s.config.has_quirk("imap_preview_nil"):
        return None
    return preview(s, data)
