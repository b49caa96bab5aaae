"""IMAP commands of the authenticated state (RFC 9051 §6.3), also valid when a mailbox is selected."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from harness.protocol.imap.commands import (
    Append,
    Command,
    Enable,
    ListArgs,
    MailboxArg,
    Status,
)
from harness.protocol.imap.formatting import (
    format_continuation,
    format_flags,
    format_list_response,
    format_status_response,
)
from reference_agents.imapd.selected import SelectedMailbox
from reference_agents.imapd.state import Handler, Result, State, Transition
from reference_agents.mailstore import (
    DELIMITER,
    InvalidMailboxName,
    MailboxExists,
    NoSuchMailbox,
)

if TYPE_CHECKING:
    from reference_agents.imapd.session import Session

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
#: RFC 6154 §2: the special-use attribute of each special mailbox.
SPECIAL_USE = {"Junk": "\\Junk"}


def _user(s: Session) -> str:
    assert s.user is not None
    return s.user


# -- SELECT / EXAMINE ---------------------------------------------------------------------------


async def _select(s: Session, cmd: Command, read_only: bool) -> Result:
    assert isinstance(cmd.args, MailboxArg)
    user = _user(s)
    if s.state is State.SELECTED:
        # RFC 9051 §6.3.2: a new SELECT first deselects; the OK [CLOSED] response marks when.
        s.advance(Transition.DESELECT)
        s.untagged("OK", "previous mailbox closed", code="CLOSED")
    try:
        info = s.store.mailbox_info(user, cmd.args.mailbox)
        version = s.store.version(user, cmd.args.mailbox)
        messages = s.store.messages(user, cmd.args.mailbox)
    except (NoSuchMailbox, InvalidMailboxName):
        return Result("NO", "no such mailbox", "NONEXISTENT")
    sel = SelectedMailbox(info.name, read_only, info.uidvalidity, messages, version)
    keywords = sorted({f for m in messages for f in m.flags if not f.startswith("\\")})
    s.untagged("FLAGS", format_flags([*SYSTEM_FLAGS, *keywords]).decode("utf-8"))
    s.untagged(f"{sel.exists} EXISTS")
    if not s.rev2:
        s.untagged("0 RECENT")  # RFC 3501 §6.3.1: "REQUIRED untagged response"
    s.untagged("OK", "UIDs valid", code=f"UIDVALIDITY {info.uidvalidity}")
    uidnext = info.uidnext
    if s.config.has_quirk("imap_uidnext_off_by_one") and messages:
        uidnext = messages[-1].uid  # quirk: UIDNEXT not greater than every UID
    s.untagged("OK", "predicted next UID", code=f"UIDNEXT {uidnext}")
    permanent = "()" if read_only else "(" + " ".join([*SYSTEM_FLAGS, "\\*"]) + ")"
    s.untagged("OK", "flags that can be changed", code=f"PERMANENTFLAGS {permanent}")
    if s.rev2:
        # RFC 9051 §6.3.2: "The server MUST return a LIST response with the mailbox name."
        s.write(format_list_response("LIST", [], DELIMITER, info.name))
    s.selected = sel
    s.advance(Transition.SELECT)
    mode = "READ-ONLY" if read_only else "READ-WRITE"
    return Result("OK", f"{cmd.name} completed", mode)


async def select(s: Session, cmd: Command) -> Result:
    return await _select(s, cmd, read_only=False)


async def examine(s: Session, cmd: Command) -> Result:
    return await _select(s, cmd, read_only=True)


# -- mailbox management ------------------------------------------------------------------------


async def create(s: Session, cmd: Command) -> Result:
    assert isinstance(cmd.args, MailboxArg)
    name = cmd.args.mailbox
    # RFC 9051 §6.3.4: a trailing hierarchy separator declares intent to create children.
    if name.endswith(DELIMITER) and len(name) > 1:
        name = name.rstrip(DELIMITER)
    if name.upper() == "INBOX":
        return Result("NO", "INBOX always exists", "ALREADYEXISTS")
    try:
        s.store.create_mailbox(_user(s), name)
    except MailboxExists:
        return Result("NO", "mailbox already exists", "ALREADYEXISTS")
    except InvalidMailboxName as exc:
        return Result("NO", str(exc), "CANNOT")
    return Result("OK", "CREATE completed")


async def delete(s: Session, cmd: Command) -> Result:
    assert isinstance(cmd.args, MailboxArg)
    if cmd.args.mailbox == "INBOX":
        # RFC 9051 §6.3.5: "It is an error to attempt to delete INBOX".
        return Result("NO", "cannot delete INBOX", "CANNOT")
    if s.selected is not None and s.selected.name == cmd.args.mailbox:
        return Result("NO", "mailbox is selected; close it first", "INUSE")
    try:
        s.store.delete_mailbox(_user(s), cmd.args.mailbox)
    except NoSuchMailbox:
        return Result("NO", "no such mailbox", "NONEXISTENT")
    except InvalidMailboxName as exc:
        return Result("NO", str(exc), "CANNOT")
    return Result("OK", "DELETE completed")


async def subscribe(s: Session, cmd: Command) -> Result:
    assert isinstance(cmd.args, MailboxArg)
    # Every mailbox counts as subscribed (LSUB lists them all).
    try:
        s.store.mailbox_info(_user(s), cmd.args.mailbox)
    except (NoSuchMailbox, InvalidMailboxName):
        return Result("NO", "no such mailbox", "NONEXISTENT")
    return Result("OK", f"{cmd.name} completed")


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """RFC 9051 §6.3.9: "*" matches zero or more characters, "%" the same but not the
    hierarchy delimiter; the reference is prefixed to the pattern."""
    full = reference + pattern
    if full[:5].upper() == "INBOX" and (len(full) == 5 or full[5] in (DELIMITER, "*", "%")):
        full = "INBOX" + full[5:]
    out = []
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(DELIMITER)}]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


async def list_(s: Session, cmd: Command) -> Result:
    assert isinstance(cmd.args, ListArgs)
    kind = cmd.name
    if cmd.args.pattern == "":
        # RFC 9051 §6.3.9: an empty pattern asks for the hierarchy delimiter and root name.
        s.write(format_list_response(kind, ["\\Noselect"], DELIMITER, ""))
        return Result("OK", f"{kind} completed")
    names = s.store.list_mailboxes(_user(s))
    regex = pattern_regex(cmd.args.reference, cmd.args.pattern)
    for name in names:
        if not regex.fullmatch(name):
            continue
        has_children = any(other.startswith(name + DELIMITER) for other in names)
        attrs = ["\\HasChildren" if has_children else "\\HasNoChildren"]
        if name in SPECIAL_USE:
            attrs.append(SPECIAL_USE[name])
        s.write(format_list_response(kind, attrs, DELIMITER, name))
    return Result("OK", f"{kind} completed")


async def status(s: Session, cmd: Command) -> Result:
    assert isinstance(cmd.args, Status)
    user = _user(s)
    try:
        info = s.store.mailbox_info(user, cmd.args.mailbox)
        messages = s.store.messages(user, cmd.args.mailbox)
    except (NoSuchMailbox, InvalidMailboxName):
        return Result("NO", "no such mailbox", "NONEXISTENT")
    values = {
        "MESSAGES": info.exists,
        "UIDNEXT": info.uidnext,
        "UIDVALIDITY": info.uidvalidity,
        "UNSEEN": sum(1 for m in messages if "\\Seen" not in m.flags),
        "DELETED": sum(1 for m in messages if "\\Deleted" in m.flags),
        "SIZE": sum(m.size for m in messages),
        "RECENT": 0,
    }
    s.write(format_status_response(info.name, [(k, values[k]) for k in cmd.args.items]))
    return Result("OK", "STATUS completed")


async def append(s: Session, cmd: Command) -> Result:
    assert isinstance(cmd.args, Append)
    user = _user(s)
    try:
        info = s.store.mailbox_info(user, cmd.args.mailbox)
    except (NoSuchMailbox, InvalidMailboxName):
        # RFC 9051 §6.3.12: "If the destination mailbox does not exist, a server MUST return
        # an error, and MUST NOT automatically create the mailbox." ... with TRYCREATE.
        return Result("NO", "no such mailbox", "TRYCREATE")
    if not cmd.args.message:
        return Result("NO", "empty message")
    try:
        uid = await asyncio.to_thread(s.store.append, user, info.name, cmd.args.message,
                                      cmd.args.flags, cmd.args.date)
    except NoSuchMailbox:
        return Result("NO", "no such mailbox", "TRYCREATE")
    except ValueError as exc:
        return Result("BAD", str(exc))
    # RFC 4315 §3: APPENDUID uidvalidity uid
    return Result("OK", "APPEND completed", f"APPENDUID {info.uidvalidity} {uid}")


async def enable(s: Session, cmd: Command) -> Result:
    assert isinstance(cmd.args, Enable)
    if s.state is not State.AUTHENTICATED:
        # RFC 5161 §3.1: ENABLE is valid "only ... in the authenticated state".
        return Result("BAD", "ENABLE only before selecting a mailbox")
    enabled = []
    if "IMAP4REV2" in cmd.args.capabilities:
        s.rev2 = True
        enabled.append("IMAP4rev2")
    s.write(b"* ENABLED" + b"".join(b" " + c.encode("ascii") for c in enabled) + b"\r\n")
    return Result("OK", "ENABLE completed")


async def namespace(s: Session, cmd: Command) -> Result:
    # RFC 2342 §5: personal namespace "" with delimiter "/", no others.
    s.write(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
    return Result("OK", "NAMESPACE completed")


async def idle(s: Session, cmd: Command) -> Result:
    """RFC 2177: report mailbox changes as they happen until the client sends DONE."""
    s.write(format_continuation("idling"))
    await s.flush()
    poll = max(s.config.idle_poll_interval, 0.01)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + s.autologout
    while True:
        if s.config.has_quirk("imap_idle_no_notify"):  # quirk: IDLE reports nothing
            pass
        elif s.state is State.SELECTED:
            s.sync_selected(allow_expunge=True)
            await s.flush()
        if s.state is State.LOGOUT:
            return Result("NO", "mailbox gone")
        line = s.reader.next_line()
        if line is not None:
            if line.strip().upper() == b"DONE":
                return Result("OK", "IDLE terminated")
            return Result("BAD", "expected DONE")
        if loop.time() >= deadline:
            raise TimeoutError
        if not await s.wait_wakeup(min(poll, deadline - loop.time())):
            s.advance(Transition.LOGOUT)
            return Result("BAD", "connection closed")


COMMANDS: dict[str, Handler] = {
    "SELECT": select,
    "EXAMINE": examine,
    "CREATE": create,
    "DELETE": delete,
    "SUBSCRIBE": subscribe,
    "UNSUBSCRIBE": subscribe,
    "LIST": list_,
    "LSUB": list_,
    "STATUS": status,
    "APPEND": append,
    "ENABLE": enable,
    "NAMESPACE": namespace,
    "IDLE": idle,
}
