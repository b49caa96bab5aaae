"""IMAP commands of the selected state (RFC 9051 §6.4): FETCH, STORE, SEARCH, COPY, EXPUNGE..."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable

from harness.protocol.imap.commands import (
    Command,
    Copy,
    Fetch,
    FetchItem,
    Store,
    UidExpunge,
)
from harness.protocol.imap.formatting import (
    FetchValue,
    Raw,
    binary_value,
    format_fetch_response,
    format_flags,
    format_internaldate,
    format_vanished,
    message_literal,
)
from harness.protocol.imap.headers import (
    parse_fields,
)
from harness.protocol.imap.mime import (
    UnknownTransferEncoding,
    apply_partial,
    binary_section,
    bodystructure,
    envelope,
    section_bytes,
    split_message,
)
from harness.protocol.imap.seqset import SequenceSet
from harness.protocol.imap.state import Transition
from reference_agents.imapd.cmd_auth import earlier_vanished, trycreate_code
from reference_agents.imapd.cmd_quota import over_quota
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.handler_helpers import bad_sequence_set, selected_of
from reference_agents.imapd.objects import objectid_value, preview_value
from reference_agents.imapd.state import Handler, Result
from reference_agents.imapd.utf8 import legacy_envelope, utf8_allowed
from reference_agents.mailstore import (
    InvalidMailboxName,
    MessageInfo,
    NoSuchMailbox,
    NoSuchMessage,
    normalize_flags,
)

_SEEN = "\\Seen"
_DELETED = "\\Deleted"




async def check(s: HandlerContext, cmd: Command) -> Result:
    return Result("OK", "CHECK completed")


async def _expunge_deleted(s: HandlerContext, uids: list[int] | None) -> list[int]:
    user, sel = selected_of(s)
    infos = s.store.messages(user, sel.name)
    doomed = [m.uid for m in infos if _DELETED in m.flags and (uids is None or m.uid in uids)]
    if not doomed:
        return []
    removed = await asyncio.to_thread(s.store.expunge, user, sel.name, doomed)
    sel.own_expunges.update(removed)
    return removed


async def close(s: HandlerContext, cmd: Command) -> Result:
    _, sel = selected_of(s)
    if sel.read_only and s.config.has_quirk("imap_close_examine_no"):
        return Result("NO", "mailbox is read-only", "READ-ONLY")  # quirk: CLOSE refused
    if not sel.read_only:
        # RFC 9051 §6.4.1: CLOSE permanently removes \Deleted messages, with no untagged
        # EXPUNGE responses.
        await _expunge_deleted(s, None)
        if s.config.has_quirk("imap_close_sends_expunge"):  # quirk: EXPUNGEs reported
            s.sync_selected(allow_expunge=True)
    s.advance(Transition.DESELECT)
    return Result("OK", "CLOSE completed")


async def unselect(s: HandlerContext, cmd: Command) -> Result:
    _, sel = selected_of(s)
    if s.config.has_quirk("imap_unselect_expunges") and not sel.read_only:
        await _expunge_deleted(s, None)  # quirk: UNSELECT expunges like CLOSE
    # RFC 9051 §6.4.2: UNSELECT "frees a session's resources associated with the selected
    # mailbox and returns the server to the authenticated state.  This command performs the
    # same actions as CLOSE, except that no messages are permanently removed".
    s.advance(Transition.DESELECT)
    return Result("OK", "UNSELECT completed")


async def expunge(s: HandlerContext, cmd: Command) -> Result:
    _, sel = selected_of(s)
    if sel.read_only:
        return Result("NO", "mailbox is read-only", "READ-ONLY")
    if s.config.has_quirk("imap_expunge_ignored"):  # quirk: EXPUNGE removes nothing
        return Result("OK", "EXPUNGE completed")
    await _expunge_deleted(s, None)
    # The dispatcher's sync sends one untagged EXPUNGE per removed message.
    return Result("OK", "EXPUNGE completed")


async def uid_expunge(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, UidExpunge)
    _, sel = selected_of(s)
    if sel.read_only:
        return Result("NO", "mailbox is read-only", "READ-ONLY")
    pairs = sel.resolve(cmd.args.seqset, uid=True) or []
    if s.config.has_quirk("imap_uid_expunge_all"):  # quirk: every \Deleted message goes
        await _expunge_deleted(s, None)
        return Result("OK", "UID EXPUNGE completed")
    # RFC 4315 §2.1: "The UID EXPUNGE command permanently removes all messages that both have
    # the \Deleted flag set and have a UID that is included in the specified sequence set"
    await _expunge_deleted(s, [uid for _, uid in pairs])
    return Result("OK", "UID EXPUNGE completed")


# -- FETCH --------------------------------------------------------------------------------------


def _needs_content(items: tuple[FetchItem, ...]) -> bool:
    return any(i.name not in ("FLAGS", "UID", "RFC822.SIZE", "INTERNALDATE", "MODSEQ")
               for i in items)


def _binary_value(item: FetchItem, data: bytes, s: HandlerContext) -> FetchValue:
    """BINARY[part] and BINARY.SIZE[part] (RFC 9051 §6.4.5). Raises UnknownTransferEncoding."""
    assert item.section is not None
    if s.config.has_quirk("imap_binary_not_decoded"):  # quirk: the part as stored, encoded
        decoded = section_bytes(data, item.section)
    else:
        try:
            decoded = binary_section(data, item.section.part)
        except UnknownTransferEncoding:
            if not s.config.has_quirk("imap_unknown_cte_raw"):
                raise
            decoded = section_bytes(data, item.section)  # quirk: the raw octets, no NO
    if item.name == "BINARY.SIZE":
        if decoded is not None and s.config.has_quirk("imap_binary_size_encoded"):
            return len(section_bytes(data, item.section) or b"")  # quirk: the encoded size
        return None if decoded is None else len(decoded)
    return None if decoded is None else Raw(binary_value(apply_partial(decoded, item.partial)))


def _item_value(item: FetchItem, data: bytes, info: MessageInfo, s: HandlerContext) -> FetchValue:
    name = item.name
    if name in ("BINARY", "BINARY.SIZE"):
        return _binary_value(item, data, s)
    if name in ("EMAILID", "THREADID"):
        assert s.selected is not None
        return objectid_value(s, name, data, s.selected.uidvalidity, info.uid)
    if name == "PREVIEW":
        return preview_value(s, data)
    if item.section is not None:
        content = section_bytes(data, item.section)
        if (s.config.has_quirk("imap_header_fields_case_sensitive") and content is not None
                and item.section.text == "HEADER.FIELDS" and not item.section.part):
            # quirk: field names compared with their case
            header = split_message(data)[0]
            content = b"".join(f.raw for f in parse_fields(header)
                               if f.raw.split(b":", 1)[0].decode("ascii", "replace")
                               in item.section.fields) + b"\r\n"
        if (s.config.has_quirk("imap_section_text_with_header") and item.section.text == "TEXT"
                and not item.section.part):
            content = data  # quirk: BODY[TEXT] includes the header
        partial = item.partial
        if partial is not None and s.config.has_quirk("imap_partial_off_by_one"):
            partial = (partial[0] + 1, partial[1])  # quirk: starts one octet late
        return None if content is None else Raw(message_literal(apply_partial(content, partial)))
    if name == "RFC822.SIZE":
        size = info.size
        if s.config.has_quirk("imap_wrong_size"):  # quirk: size one octet short
            size -= 1
        if s.config.has_quirk("imap_size_changes"):  # quirk: the size alternates by one
            s.size_flip ^= 1
            size += s.size_flip
        if s.config.has_quirk("imap_rfc822_size_lf") and data:
            size = len(data.replace(b"\r\n", b"\n"))  # quirk: counted with LF line ends
        return size
    if name == "INTERNALDATE":
        return Raw(format_internaldate(info.internaldate))
    if name == "ENVELOPE":
        header = split_message(data)[0]
        if s.config.has_quirk("imap_envelope_no_subject"):  # quirk: the subject is lost
            header = re.sub(rb"(?im)^subject:.*\r?\n(?:[ \t].*\r?\n)*", b"", header)
        if s.config.has_quirk("imap_envelope_no_groups"):  # quirk: group syntax dropped
            header = re.sub(rb"(?im)^((?:to|cc|bcc):)(.*)$",
                            lambda m: m.group(1) + re.sub(rb"[^,;<>\"@:]+:|;", b"", m.group(2)),
                            header)
        if not utf8_allowed(s) and any(b > 0x7F for b in header):
            return Raw(legacy_envelope(s, header))
        return Raw(envelope(header))
    if name == "BODYSTRUCTURE":
        if s.config.has_quirk("imap_bodystructure_lf_sizes"):  # quirk: sizes of LF line ends
            return Raw(bodystructure(data.replace(b"\r\n", b"\n"), extensible=True))
        if s.config.has_quirk("imap_bodystructure_flat"):  # quirk: always one text part
            return Raw(bodystructure(b"\r\n" + split_message(data)[1], extensible=True))
        return Raw(bodystructure(data, extensible=True))
    if name == "BODY":
        return Raw(bodystructure(data, extensible=False))
    if name == "RFC822":
        return Raw(message_literal(data))
    if name == "RFC822.HEADER":
        return Raw(message_literal(split_message(data)[0]))
    if name == "RFC822.TEXT":
        return Raw(message_literal(split_message(data)[1]))
    raise AssertionError(f"unhandled fetch item {name}")


#: Messages whose files one FETCH reads per trip to a thread (and between which the event loop
#: serves the other sessions).
FETCH_BATCH = 32


def _read_messages(s: HandlerContext, user: str, mailbox: str,
                   uids: list[int]) -> dict[int, bytes | None]:
    """The content of each of *uids* (None for one expunged meanwhile); runs on a thread."""
    found: dict[int, bytes | None] = {}
    for uid in uids:
        try:
            found[uid] = s.store.read(user, mailbox, uid)
        except NoSuchMessage:
            found[uid] = None
    return found


async def _fetch(s: HandlerContext, cmd: Command, uid_cmd: bool) -> Result | None:
    assert isinstance(cmd.args, Fetch)
    user, sel = selected_of(s)
    pairs = sel.resolve(cmd.args.seqset, uid=uid_cmd)
    if pairs is None:
        return bad_sequence_set()
    items = cmd.args.items
    if any(i.lazy for i in items) and s.config.has_quirk("imap_preview_lazy_refused"):
        return Result("BAD", "PREVIEW modifiers not supported")  # quirk: LAZY refused
    if (uid_cmd and not any(i.name == "UID" for i in items)
            and not s.config.has_quirk("imap_uid_fetch_no_uid")):  # quirk: UID left out
        # RFC 9051 §6.4.9: UID FETCH responses always include the UID.
        items = (FetchItem("UID"), *items)
    changedsince = cmd.args.changedsince
    if cmd.args.vanished:
        # RFC 7162 §3.2.6: VANISHED is a UID FETCH modifier, only with CHANGEDSINCE, and only
        # after ENABLE QRESYNC; otherwise "the server MUST return a tagged BAD response".
        if not uid_cmd or changedsince is None or not s.qresync:
            return Result("BAD", "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC")
        if not s.config.has_quirk("imap_qresync_fetch_vanished_ignored"):  # quirk: left out
            vanished = earlier_vanished(s, sel.name, changedsince, cmd.args.seqset)
            if vanished:
                # "Any VANISHED (EARLIER) responses MUST be returned before any FETCH responses"
                s.write(format_vanished(vanished, earlier=True))
    if changedsince is not None or any(i.name == "MODSEQ" for i in items):
        s.enable_condstore()  # RFC 7162 §3.1: FETCH MODSEQ / CHANGEDSINCE enable CONDSTORE
    if changedsince is not None and s.config.has_quirk("imap_changedsince_ignored"):
        changedsince = None  # quirk: every message is returned
    if changedsince is not None and not any(i.name == "MODSEQ" for i in items):
        # RFC 7162 §3.1.4.1: "it implicitly adds the MODSEQ FETCH message data item".
        items = (*items, FetchItem("MODSEQ"))
    sets_seen = any(i.sets_seen for i in items)
    if not sets_seen and s.config.has_quirk("imap_peek_sets_seen"):  # quirk: PEEK sets \Seen
        sets_seen = any(i.section is not None for i in items)
    infos = {m.uid: m for m in s.store.messages(user, sel.name)}
    missing = False
    content: dict[int, bytes | None] = {}
    needs_content = _needs_content(items)
    for index, (seq, uid) in enumerate(pairs):
        if s.conn.closed:
            # The client has gone: nobody reads the rest (RFC 9051 §3.4 — the session is over).
            return None
        if index % FETCH_BATCH == 0:
            # Message files are read on a thread, a batch at a time, so that a long FETCH
            # neither blocks the event loop on the disk nor keeps it from other sessions.
            if needs_content:
                batch = [u for _, u in pairs[index:index + FETCH_BATCH]]
                content = await asyncio.to_thread(_read_messages, s, user, sel.name, batch)
            else:
                await asyncio.sleep(0)
        info = infos.get(uid)
        if info is None:
            missing = True  # expunged by another session; reported at the next allowed moment
            continue
        if changedsince is not None and info.modseq <= changedsince:
            continue  # RFC 7162 §3.1.4.1: only messages "that have a mod-sequence bigger"
        data = b""
        if needs_content:
            found = content.get(uid)
            if found is None:
                missing = True
                continue
            data = found
        flags = sel.flags.get(uid, info.flags)
        flags_changed = False
        # quirk imap_examine_sets_seen: \Seen set in a read-only mailbox
        writable = not sel.read_only or s.config.has_quirk("imap_examine_sets_seen")
        if sets_seen and writable and _SEEN not in info.flags:
            # RFC 9051 §6.4.5: BODY[<section>] — "The \Seen flag is implicitly set; if this
            # causes the flags to change, they SHOULD be included as part of the FETCH
            # responses."
            try:
                # Off the event loop: the store fsyncs, and other sessions must not wait.
                new, modseq = await _change_flags(s, user, sel.name, uid, info.flags,
                                                  lambda f: f | {_SEEN})
            except NoSuchMessage:
                missing = True
                continue
            info = dataclasses.replace(info, flags=new, modseq=modseq)
            flags = new
            flags_changed = True
            sel.flags[uid] = new
        values: list[tuple[str, FetchValue]] = []
        for item in items:
            if item.name == "FLAGS" and item.section is None:
                values.append(("FLAGS", Raw(format_flags(sel.shown_flags(uid, flags)))))
            elif item.name == "UID" and item.section is None:
                values.append(("UID", uid))
            elif item.name == "MODSEQ":
                values.append(("MODSEQ", sel.modseq_value(info)))
            else:
                try:
                    values.append((item.response_name(), _item_value(item, data, info, s)))
                except UnknownTransferEncoding:
                    # RFC 9051 §7.5.2: "If the server does not know how to decode the section's
                    # Content-Transfer-Encoding, it MUST fail the request and issue a "NO"
                    # response that contains the "UNKNOWN-CTE" response code."
                    return Result("NO", "unknown Content-Transfer-Encoding", "UNKNOWN-CTE")
        if flags_changed and not any(n == "FLAGS" for n, _ in values):
            values.append(("FLAGS", Raw(format_flags(sel.shown_flags(uid, flags)))))
        if (s.condstore and any(n == "FLAGS" for n, _ in values)
                and not any(n == "MODSEQ" for n, _ in values)):
            # RFC 7162 §3.1: once enabled, FETCH responses carry the mod-sequence.
            values.append(("MODSEQ", sel.modseq_value(info)))
        if s.condstore and flags_changed and not any(n == "UID" for n, _ in values):
            values.insert(0, ("UID", uid))  # RFC 7162 §3.2.4: an implicit \Seen, with its UID
        expunge_during = not uid_cmd and s.config.has_quirk("imap_expunge_during_fetch")
        if expunge_during:
            # quirk imap_expunge_during_fetch: numbered as the EXPUNGEs already sent left it
            seq = sel.seq_of(uid) or seq
        response = format_fetch_response(seq, values)
        if (s.config.has_quirk("imap_fetch_unbalanced_paren")
                and any(i.name == "FLAGS" and i.section is None for i in cmd.args.items)):
            response = response[:-3] + b"\r\n"  # quirk: msg-att = "(" ... ")" left open
        s.write(response)
        if expunge_during:
            # quirk: pending EXPUNGEs go out between FETCH responses (RFC 9051 §7.5.1 forbids);
            # flag changes wait, so that the FETCH responses still to come, made from the
            # command's snapshot, do not report flags or MODSEQ older than those just sent
            s.sync_selected(allow_expunge=True, report_flags=False)
        await s.flush()
    if missing:
        return Result("NO", "some messages no longer exist", "EXPUNGEISSUED")
    return Result("OK", f"{cmd.name} completed")


async def fetch(s: HandlerContext, cmd: Command) -> Result | None:
    return await _fetch(s, cmd, uid_cmd=False)


async def uid_fetch(s: HandlerContext, cmd: Command) -> Result | None:
    return await _fetch(s, cmd, uid_cmd=True)


# -- STORE --------------------------------------------------------------------------------------


async def _store(s: HandlerContext, cmd: Command, uid_cmd: bool) -> Result:
    assert isinstance(cmd.args, Store)
    user, sel = selected_of(s)
    if sel.read_only:
        return Result("NO", "mailbox is read-only", "READ-ONLY")
    pairs = sel.resolve(cmd.args.seqset, uid=uid_cmd)
    if pairs is None:
        return bad_sequence_set()
    try:
        change = normalize_flags(cmd.args.flags)
    except ValueError as exc:
        return Result("BAD", str(exc))
    unchangedsince = cmd.args.unchangedsince
    if unchangedsince is not None:
        s.enable_condstore()  # RFC 7162 §3.1: STORE UNCHANGEDSINCE enables CONDSTORE
        if s.config.has_quirk("imap_unchangedsince_ignored"):
            unchangedsince = None  # quirk: the condition is not tested
    infos = {m.uid: m for m in s.store.messages(user, sel.name)}
    missing = False
    modified: list[int] = []
    mode = cmd.args.mode
    if mode == "" and s.config.has_quirk("imap_store_replace_adds"):  # quirk: FLAGS acts as +
        mode = "+"
    silent = cmd.args.silent and not s.config.has_quirk("imap_store_silent_ignored")
    for seq, uid in pairs:
        info = infos.get(uid)
        if info is None:
            missing = True
            continue
        if unchangedsince is not None and info.modseq > unchangedsince:
            # RFC 7162 §3.1.3: "the requested operation MUST NOT be performed"; the message
            # goes into the MODIFIED response code.
            modified.append(uid if uid_cmd else seq)
            continue
        def apply(flags: frozenset[str], mode: str = mode) -> frozenset[str]:
            if mode == "+":
                return flags | change
            if mode == "-":
                return flags - change
            return change

        new, modseq = apply(info.flags), info.modseq
        if new != info.flags:
            try:
                # Off the event loop: the store fsyncs, and other sessions must not wait.
                # quirk imap_modseq_race: the mod-sequence from the mailbox's version when this
                # session last looked, which another session's STORE may have taken since
                stale = sel.seen_version if s.config.has_quirk("imap_modseq_race") else None
                new, modseq = await _change_flags(s, user, sel.name, uid, info.flags, apply,
                                                  stale_version=stale)
            except NoSuchMessage:
                missing = True
                continue
        sel.flags[uid] = new
        for line in sel.keywords_update([new]):
            s.write(line)
        # RFC 7162 §3.1.3: with UNCHANGEDSINCE "An untagged FETCH response MUST be sent, even if
        # the .SILENT suffix is specified, and the response MUST include the MODSEQ message data
        # item." Otherwise RFC 9051 §6.4.6: with .SILENT "the server SHOULD NOT send an untagged
        # FETCH"; without, "the server returns an untagged FETCH response indicating the current
        # state of the flags", with UID STORE including the UID (§6.4.9).
        conditional = cmd.args.unchangedsince is not None
        # quirk imap_store_silent: no untagged FETCH after STORE
        if not conditional and (silent or s.config.has_quirk("imap_store_silent")):
            continue
        # RFC 7162 §3.2.4: once CONDSTORE is enabled, untagged FETCH responses caused by STORE
        # carry the UID too.
        values: list[tuple[str, FetchValue]] = [("UID", uid)] if uid_cmd or s.condstore else []
        if not silent:
            values.append(("FLAGS", Raw(format_flags(sel.shown_flags(uid, new)))))
        if conditional or s.condstore:
            values.append(("MODSEQ", sel.modseq_value(dataclasses.replace(info, modseq=modseq))))
        s.write(format_fetch_response(seq, values))
    if modified:
        # RFC 7162 §3.1.3: "the server MUST return in the tagged response a MODIFIED response
        # code" with the message set (or UIDs) that failed the UNCHANGEDSINCE test.
        return Result("OK", "conditional STORE failed for some messages",
                      "MODIFIED " + SequenceSet.from_ints(modified).format())
    if missing:
        return Result("NO", "some messages no longer exist", "EXPUNGEISSUED")
    return Result("OK", f"{cmd.name} completed")


async def _change_flags(s: HandlerContext, user: str, mailbox: str, uid: int,
                        snapshot: frozenset[str],
                        change: Callable[[frozenset[str]], frozenset[str]], *,
                        stale_version: int | None = None) -> tuple[frozenset[str], int]:
    """Apply *change* to the message's flags as they are in the store now, atomically (RFC 9051
    §6.4.6: +FLAGS adds to the flags, -FLAGS removes; a change another session made meanwhile
    stays); the new flags and mod-sequence. Quirk imap_flags_lost_update: the flags are
    computed from the command's *snapshot* and written over whatever is there."""
    if s.config.has_quirk("imap_flags_lost_update"):
        new = change(snapshot)
        modseq = await asyncio.to_thread(s.store.set_flags, user, mailbox, uid, new,
                                         stale_version=stale_version)
        return new, modseq
    return await asyncio.to_thread(s.store.change_flags, user, mailbox, uid, change,
                                   stale_version=stale_version)


async def store(s: HandlerContext, cmd: Command) -> Result:
    return await _store(s, cmd, uid_cmd=False)


async def uid_store(s: HandlerContext, cmd: Command) -> Result:
    return await _store(s, cmd, uid_cmd=True)


# -- COPY / MOVE --------------------------------------------------------------------------------


async def _copy(s: HandlerContext, cmd: Command, uid_cmd: bool, move: bool) -> Result:
    assert isinstance(cmd.args, Copy)
    user, sel = selected_of(s)
    if move and sel.read_only:
        return Result("NO", "mailbox is read-only", "READ-ONLY")
    pairs = sel.resolve(cmd.args.seqset, uid=uid_cmd)
    if pairs is None:
        return bad_sequence_set()
    try:
        dest = s.store.mailbox_info(user, cmd.args.mailbox)
    except (NoSuchMailbox, InvalidMailboxName):
        # RFC 9051 §6.4.7: "If the destination mailbox does not exist, a server SHOULD return
        # an error. It SHOULD NOT automatically create the mailbox." ... [TRYCREATE].
        return Result("NO", "no such mailbox", trycreate_code(s))
    infos = {m.uid: m for m in s.store.messages(user, sel.name)}
    wanted = [infos[uid] for _, uid in pairs if uid in infos]
    # RFC 9208 §4.3.1: OVERQUOTA when the copies would put the user over a limit; nothing is
    # copied (RFC 9051 §6.4.7: "If the COPY command is unsuccessful for any reason, server
    # implementations MUST restore the destination mailbox to its state before the COPY").
    refused = over_quota(s, user, len(wanted), sum(m.size for m in wanted))
    if refused is not None:
        return refused
    source: list[int] = []
    target: list[int] = []
    for _, uid in pairs:
        info = infos.get(uid)
        if info is None:
            continue
        try:
            data = s.store.read(user, sel.name, uid)
        except NoSuchMessage:
            continue
        # quirk imap_copy_drops_flags: the copy has no flags
        flags = frozenset() if s.config.has_quirk("imap_copy_drops_flags") else info.flags
        new_uid = await asyncio.to_thread(s.store.append, user, dest.name, data, flags,
                                          info.internaldate)
        source.append(uid)
        target.append(new_uid)
    code = None
    if source and not s.config.has_quirk("imap_copy_no_copyuid"):  # quirk: no COPYUID
        # RFC 4315 §3: COPYUID uidvalidity source-uids dest-uids
        code = (f"COPYUID {dest.uidvalidity} {SequenceSet.from_ints(source).format()} "
                f"{SequenceSet.from_ints(target).format()}")
    if not move:
        return Result("OK", f"{cmd.name} completed", code)
    if code is not None:
        # RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
        s.untagged("OK", "moved", code=code)
    if source and not s.config.has_quirk("imap_move_no_expunge"):  # quirk: source kept
        # RFC 6851 §3.3: "the original message is removed from the source mailbox"; the
        # dispatcher's sync then sends the untagged EXPUNGE responses.
        sel.own_expunges.update(await asyncio.to_thread(s.store.expunge, user, sel.name, source))
    return Result("OK", f"{cmd.name} completed")


async def copy(s: HandlerContext, cmd: Command) -> Result:
    return await _copy(s, cmd, uid_cmd=False, move=False)


async def uid_copy(s: HandlerContext, cmd: Command) -> Result:
    return await _copy(s, cmd, uid_cmd=True, move=False)


async def move(s: HandlerContext, cmd: Command) -> Result:
    return await _copy(s, cmd, uid_cmd=False, move=True)


async def uid_move(s: HandlerContext, cmd: Command) -> Result:
    return await _copy(s, cmd, uid_cmd=True, move=True)


COMMANDS: dict[str, Handler] = {
    "CHECK": check,
    "CLOSE": close,
    "UNSELECT": unselect,
    "EXPUNGE": expunge,
    "UID EXPUNGE": uid_expunge,
    "FETCH": fetch,
    "UID FETCH": uid_fetch,
    "STORE": store,
    "UID STORE": uid_store,
    "COPY": copy,
    "UID COPY": uid_copy,
    "MOVE": move,
    "UID MOVE": uid_move,
}
