"""APPEND with several messages (MULTIAPPEND, RFC 3502) and with CATENATE parts (RFC 4469); a
plain one-message APPEND stays cmd_auth's."""

from __future__ import annotations

import asyncio
from datetime import datetime

from harness.protocol.imap.command_values import CatPart
from harness.protocol.imap.commands import Append, Command
from harness.protocol.imap.imapurl import BadUrl, MessageUrl, parse_message_url
from harness.protocol.imap.mime import apply_partial, encode_binary_parts, section_bytes
from harness.protocol.imap.seqset import SequenceSet
from reference_agents.imapd import cmd_auth
from reference_agents.imapd.cmd_quota import over_quota
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.handler_helpers import user_of
from reference_agents.imapd.state import Handler, Result
from reference_agents.mailstore import (
    InvalidMailboxName,
    NoSuchMailbox,
    NoSuchMessage,
    normalize_flags,
)

#: RFC 4469 §4.2: "The TOOBIG response code is returned if the resulting message will exceed
#: the 4-GB IMAP message limit."
IMAP_MESSAGE_LIMIT = 2**32 - 1

_Built = tuple[bytes, frozenset[str], datetime | None]


class _Refused(Exception):
    def __init__(self, result: Result) -> None:
        super().__init__(result.text)
        self.result = result


async def append(s: HandlerContext, cmd: Command) -> Result | None:
    assert isinstance(cmd.args, Append)
    args = cmd.args
    if not args.more and args.catenate is None:
        return await cmd_auth.append(s, cmd)
    user = user_of(s)
    try:
        info = s.store.mailbox_info(user, args.mailbox)
    except (NoSuchMailbox, InvalidMailboxName):
        # RFC 3502 §6.3.11: "If the destination mailbox does not exist, a server MUST return
        # an error, and MUST NOT automatically create the mailbox."
        return Result("NO", "no such mailbox", cmd_auth.trycreate_code(s))
    built: list[_Built] = []
    # quirk imap_multiappend_partial: the messages before a refused one are kept
    partial = s.config.has_quirk("imap_multiappend_partial")
    for i, one in enumerate(args.messages):
        try:
            if one.catenate is None:
                data = one.message
            else:
                data = await asyncio.to_thread(_catenate, s, user, one.catenate)
            built.append(_check(s, data, one.flags, one.date))
        except _Refused as refused:
            if partial:
                await _store(s, user, info.name, built)
            return refused.result
        if i == 0 and s.config.has_quirk("imap_multiappend_first_only"):
            break  # quirk: the further messages are read and dropped
    if s.config.has_quirk("imap_multiappend_flags_of_first"):
        # quirk: every message gets the flags and date of the first
        built = [(data, built[0][1], built[0][2]) for data, _, _ in built]
    # RFC 9208 §4.3.1: OVERQUOTA when the messages would take the user over a limit; a
    # MULTIAPPEND is all or nothing (RFC 3502 §6.3.11), so the whole command is judged at once.
    refused_quota = over_quota(s, user, len(built), sum(len(data) for data, _, _ in built))
    if refused_quota is not None:
        return refused_quota
    uids = await _store(s, user, info.name, built)
    if s.config.has_quirk("imap_multiappend_appenduid_last"):
        uids = uids[-1:]  # quirk: APPENDUID names the last message only
    # RFC 4315 §3: "the second value is a UID set containing the UIDs assigned to the appended
    # messages, in the order they were transmitted"; "the UID set form ... MUST NOT be used if
    # only a single message was appended".
    return Result("OK", "APPEND completed",
                  f"APPENDUID {info.uidvalidity} {SequenceSet.from_ints(uids)}")


def _check(s: HandlerContext, data: bytes, flags: tuple[str, ...],
           when: datetime | None) -> _Built:
    """One message, ready to store; _Refused when it cannot be (before anything is stored)."""
    if not data:
        # RFC 3502 §6.3.11: "A zero-length message literal argument is an error, and MUST
        # return a NO.  This can be used to cancel the append."
        raise _Refused(Result("NO", "empty message: APPEND cancelled"))
    if len(data) > max(s.config.max_message_size, 1) or len(data) > IMAP_MESSAGE_LIMIT:
        # RFC 4469 §4.2: "The server may also wish to return the TOOBIG response code if the
        # resulting message exceeds a server-specific message size limit."
        raise _Refused(Result("NO", "message too large", "TOOBIG"))
    try:
        checked = normalize_flags(flags)
    except ValueError as exc:
        raise _Refused(Result("NO", f"error in flags: {exc}")) from None
    return encode_binary_parts(data), checked, when


async def _store(s: HandlerContext, user: str, name: str, built: list[_Built]) -> list[int]:
    """Append every message, or none: RFC 3502 §6.3.11 "If the append is unsuccessful for any
    reason (including being cancelled), the mailbox MUST be restored to its state before the
    APPEND attempt; no partial appending is permitted." A store failure half way removes the
    messages already added, then propagates."""
    uids: list[int] = []
    try:
        for data, flags, when in built:
            uids.append(await asyncio.to_thread(s.store.append, user, name, data, flags, when))
    except BaseException:
        if uids:
            s.store.expunge(user, name, uids)
        raise
    return uids


def _catenate(s: HandlerContext, user: str, parts: tuple[CatPart, ...]) -> bytes:
    """RFC 4469 §3: "The APPEND command concatenates all the message parts": a TEXT part's
    octets, a URL part's "octets of the body part pointed to by that URL ... as if the literal
    returned in a FETCH BODY response were put in place of the message part specifier"."""
    out = bytearray()
    for part in parts:
        if part.kind == "TEXT":
            out += part.data
        else:
            piece = _url_octets(s, user, part.data)
            if s.config.has_quirk("imap_catenate_badurl_skipped") and piece is None:
                continue  # quirk: a URL that names nothing is left out, the APPEND goes on
            if piece is None:
                # RFC 4469 §4.1: "The BADURL response code contains the first URL specified as
                # a parameter to the APPEND command that has caused the operation to fail."
                text = part.data.decode("utf-8", "replace")
                shown = "".join(c for c in text if c != "]" and c.isprintable())
                raise _Refused(Result("NO", "CATENATE URL names nothing", f"BADURL {shown}"))
            out += piece
        if len(out) > IMAP_MESSAGE_LIMIT:
            # RFC 4469 §4.2: the server "still has to be defensive against misbehaving or
            # malicious clients that try to construct a message over the 4-GB limit."
            raise _Refused(Result("NO", "message too large", "TOOBIG"))
    if s.config.has_quirk("imap_catenate_text_first_only"):
        # quirk: only the first TEXT part is kept of a message built from TEXT parts only
        texts = [p.data for p in parts if p.kind == "TEXT"]
        if len(texts) == len(parts):
            return texts[0]
    return bytes(out)


def _url_octets(s: HandlerContext, user: str, raw: bytes) -> bytes | None:
    """The octets a URL of this server names, None when it names none (BADURL)."""
    try:
        url = parse_message_url(raw.decode("utf-8"))
    except (BadUrl, UnicodeDecodeError):
        return None
    name = _mailbox_of(s, url)
    if name is None:
        return None
    try:
        info = s.store.mailbox_info(user, name)
        if url.uidvalidity is not None and url.uidvalidity != info.uidvalidity:
            return None
        if not any(m.uid == url.uid for m in s.store.messages(user, info.name)):
            return None
        message = s.store.read(user, info.name, url.uid)
    except (KeyError, InvalidMailboxName, NoSuchMessage, ValueError):
        return None
    if url.section is None or s.config.has_quirk("imap_catenate_url_whole_message"):
        content: bytes | None = message  # quirk imap_catenate_url_whole_message: no section
    else:
        content = section_bytes(message, url.section)
    if content is None:
        return None
    if url.partial is not None:
        offset, length = url.partial
        content = apply_partial(content, (offset, length if length is not None else len(content)))
    return content


def _mailbox_of(s: HandlerContext, url: MessageUrl) -> str | None:
    if url.mailbox is None:
        # RFC 4469 §3: in the selected state the base URL is "imap://user@server/mailbox";
        # in the authenticated state there is no mailbox to be relative to.
        return s.selected.name if s.selected is not None else None
    name = url.mailbox
    if name.upper() == "INBOX" or name[:6].upper() == "INBOX/":
        return "INBOX" + name[5:]
    return name


COMMANDS: dict[str, Handler] = {"APPEND": append}
