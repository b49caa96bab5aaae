"""IMAP commands of the authenticated state (RFC 9051 §6.3), also valid when a mailbox is selected."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets

from harness.protocol.imap.commands import (
    Append,
    Command,
    Enable,
    ListArgs,
    MailboxArg,
    Rename,
    Status,
)
from harness.protocol.imap.formatting import (
    FetchValue,
    Raw,
    format_continuation,
    format_fetch_response,
    format_flags,
    format_list_response,
    format_status_response,
    format_vanished,
)
from harness.protocol.imap.mime import encode_binary_parts
from harness.protocol.imap.seqset import SequenceSet
from harness.protocol.imap.state import State, Transition
from reference_agents.imapd.cmd_quota import over_quota
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.handler_helpers import user_of
from reference_agents.imapd.objects import mailbox_id
from reference_agents.imapd.selected import SelectedMailbox
from reference_agents.imapd.state import Handler, Result
from reference_agents.imapd.utf8 import has_8bit_header, utf8_allowed
from reference_agents.mailstore import (
    DELIMITER,
    INBOX,
    MAX_NAME_LENGTH,
    InvalidMailboxName,
    MailboxExists,
    MessageInfo,
    NoSuchMailbox,
)

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
#: RFC 6154 §2 (RFC 9051 §7.3.1): the special-use attribute of each special mailbox.
SPECIAL_USE = {"Junk": "\\Junk", "Sent": "\\Sent", "Trash": "\\Trash", "Drafts": "\\Drafts"}
#: CREATE-SPECIAL-USE (RFC 6154 §3): the attributes CREATE (USE (...)) can give a mailbox.
CREATE_SPECIAL_USE = frozenset({"\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"})


def ensure_special_mailboxes(s: HandlerContext) -> None:
    """Every user has the special-use mailboxes (created at login when missing)."""
    user = user_of(s)
    existing = set(s.store.list_mailboxes(user))
    for name in SPECIAL_USE:
        if name not in existing:
            try:
                s.store.create_mailbox(user, name)
            except MailboxExists:
                pass



# -- SELECT / EXAMINE ---------------------------------------------------------------------------


def earlier_vanished(s: HandlerContext, name: str, since: int, uids: SequenceSet | None) -> list[int]:
    """The UIDs of *uids* (every UID when None) expunged from the mailbox with a mod-sequence
    above *since*: what a VANISHED (EARLIER) response reports (RFC 7162 §3.2.6). UIDs are never
    reused, so none of them is in the mailbox now."""
    user = user_of(s)
    largest = max(1, s.store.mailbox_info(user, name).uidnext - 1)
    return [uid for uid in s.store.vanished(user, name, since)
            if uids is None or uids.contains(uid, largest)]


def _qresync(s: HandlerContext, sel: SelectedMailbox, messages: list[MessageInfo],
             cmd: MailboxArg) -> None:
    """RFC 7162 §3.2.5.1: after the usual SELECT responses, the expunges (VANISHED (EARLIER))
    and flag changes (FETCH with UID, FLAGS, MODSEQ) since the client's mod-sequence, limited
    to its known UIDs. With another UIDVALIDITY the server "MUST ignore the remaining
    parameters". The seq-match-data only narrows what a server without expunge history must
    report; this one remembers every expunge, so it needs none."""
    param = cmd.qresync
    if param is None or param.uidvalidity != sel.uidvalidity:
        return
    if s.config.has_quirk("imap_qresync_select_ignored"):
        return  # quirk: the client is left to find the changes itself
    known = param.known_uids
    vanished = earlier_vanished(s, sel.name, param.modseq, known)
    if vanished:
        s.write(format_vanished(vanished, earlier=True))
    for seq, info in enumerate(messages, 1):
        # known-uids never holds "*" (the grammar forbids it), so no largest UID is needed.
        if info.modseq <= param.modseq or (known is not None
                                           and not known.contains(info.uid, info.uid)):
            continue
        values: list[tuple[str, FetchValue]] = [
            ("UID", info.uid), ("FLAGS", Raw(format_flags(sel.shown_flags(info.uid, info.flags)))),
            ("MODSEQ", sel.modseq_value(info))]
        s.write(format_fetch_response(seq, values))


async def _select(s: HandlerContext, cmd: Command, read_only: bool) -> Result:
    assert isinstance(cmd.args, MailboxArg)
    user = user_of(s)
    if (cmd.args.qresync is not None and not s.qresync
            and not s.config.has_quirk("imap_qresync_without_enable")):
        # RFC 7162 §3.2.5: "A server MUST respond with a tagged BAD response if the Quick
        # Resynchronization parameter ... is specified and the client hasn't issued "ENABLE
        # QRESYNC" in the current connection"; the mailbox selected before stays selected.
        return Result("BAD", "QRESYNC needs ENABLE QRESYNC first")
    if s.state is State.SELECTED:
        # RFC 9051 §6.3.2: a new SELECT first deselects; the OK [CLOSED] response marks when.
        s.advance(Transition.DESELECT)
        s.untagged("OK", "previous mailbox closed", code="CLOSED")
    if (s.config.has_quirk("imap_inbox_case_sensitive") and cmd.args.mailbox == INBOX
            and cmd.args.raw not in ("", INBOX)):
        return Result("NO", "no such mailbox", "NONEXISTENT")  # quirk: "inbox" is not INBOX
    try:
        info = s.store.mailbox_info(user, cmd.args.mailbox)
        version = s.store.version(user, cmd.args.mailbox)
        messages = s.store.messages(user, cmd.args.mailbox)
    except (NoSuchMailbox, InvalidMailboxName):
        return Result("NO", "no such mailbox", "NONEXISTENT")
    if s.config.has_quirk("imap_uidvalidity_changes"):  # quirk: a new UIDVALIDITY each time
        info = dataclasses.replace(info, uidvalidity=info.uidvalidity + secrets.randbelow(999) + 1)
    recent_above = None
    if not s.rev2:  # IMAP4rev2 has no \Recent (RFC 9051 Appendix E)
        newest = messages[-1].uid if messages else 0
        recent_above = s.take_recent(info.name, read_only, newest)
    sel = SelectedMailbox(info.name, read_only, info.uidvalidity, messages, version,
                          recent_above=recent_above,
                          freeze_modseq=s.config.has_quirk("imap_modseq_frozen"))
    sel.others_expunges_silent = s.config.has_quirk("imap_expunge_unannounced")
    if cmd.args.condstore or cmd.args.qresync is not None:
        # RFC 7162 §3.1.8: SELECT/EXAMINE (CONDSTORE) enables it; QRESYNC implies CONDSTORE.
        s.condstore = True
    # quirk imap_no_flags_for_new_keyword: later keywords get no FLAGS response
    sel.announce_keywords = not s.config.has_quirk("imap_no_flags_for_new_keyword")
    s.write(sel.flags_response())
    s.untagged(f"{sel.exists} EXISTS")
    if sel.recent is not None:
        # RFC 3501 §6.3.1: "<n> RECENT ... REQUIRED untagged response"
        s.untagged(f"{len(sel.recent)} RECENT")
    unseen = next((i for i, m in enumerate(messages, 1) if "\\Seen" not in m.flags), None)
    if not s.rev2 and unseen is not None and not s.config.has_quirk("imap_select_no_unseen"):
        # RFC 3501 §6.3.1: "REQUIRED OK untagged responses: UNSEEN, PERMANENTFLAGS, UIDNEXT,
        # UIDVALIDITY"; "OK [UNSEEN <n>] The message sequence number of the first unseen
        # message in the mailbox" (IMAP4rev2 dropped it, RFC 9051 Appendix E).
        s.untagged("OK", f"message {unseen} is the first unseen", code=f"UNSEEN {unseen}")
    s.untagged("OK", "UIDs valid", code=f"UIDVALIDITY {info.uidvalidity}")
    uidnext = info.uidnext
    if s.config.has_quirk("imap_uidnext_off_by_one") and messages:
        uidnext = messages[-1].uid  # quirk: UIDNEXT not greater than every UID
    s.untagged("OK", "predicted next UID", code=f"UIDNEXT {uidnext}")
    permanent = "()" if read_only else "(" + " ".join([*SYSTEM_FLAGS, "\\*"]) + ")"
    s.untagged("OK", "flags that can be changed", code=f"PERMANENTFLAGS {permanent}")
    # RFC 7162 §3.1.2.1: every SELECT/EXAMINE reports "the highest mod-sequence value of all
    # messages in the mailbox" (the mailbox version, which every change moves up).
    highest = max([version, *(m.modseq for m in messages)])
    if s.config.has_quirk("imap_highestmodseq_is_uidnext"):
        highest = info.uidnext  # quirk: UIDNEXT where HIGHESTMODSEQ belongs
    s.untagged("OK", "mod-sequences", code=f"HIGHESTMODSEQ {highest}")
    if not s.config.has_quirk("imap_select_no_mailboxid"):  # quirk: left out
        # RFC 8474 §4.2: "A server advertising the OBJECTID capability MUST return an untagged
        # OK response with the MAILBOXID response code on all successful SELECT and EXAMINE
        # commands."
        s.untagged("OK", "mailbox id", code=f"MAILBOXID ({mailbox_id(s, info)})")
    if s.rev2:
        # RFC 9051 §6.3.2: "The server MUST return a LIST response with the mailbox name."
        s.write(format_list_response("LIST", [], DELIMITER, info.name, utf8=True))
    _qresync(s, sel, messages, cmd.args)
    s.selected = sel
    s.advance(Transition.SELECT)
    mode = "READ-ONLY" if read_only else "READ-WRITE"
    return Result("OK", f"{cmd.name} completed", mode)


async def select(s: HandlerContext, cmd: Command) -> Result:
    return await _select(s, cmd, read_only=False)


async def examine(s: HandlerContext, cmd: Command) -> Result:
    return await _select(s, cmd, read_only=True)


# -- mailbox management ------------------------------------------------------------------------


async def create(s: HandlerContext, cmd: Command) -> Result | None:
    assert isinstance(cmd.args, MailboxArg)
    name = cmd.args.mailbox
    # RFC 9051 §6.3.4: a trailing hierarchy separator declares intent to create children.
    if name.endswith(DELIMITER) and len(name) > 1:
        name = name.rstrip(DELIMITER)
    if s.config.has_quirk("imap_long_name_crash") and len(name) > MAX_NAME_LENGTH:
        s.conn.abort()  # quirk: a long name drops the connection
        s.advance(Transition.LOGOUT)
        return None
    if s.config.has_quirk("imap_name_escapes") and name.startswith("../"):
        # quirk: "../<user>/<name>" creates <name> in another user's storage
        other, _, rest = name[3:].partition(DELIMITER)
        if other and rest:
            try:
                s.store.create_mailbox(other, rest)
            except (MailboxExists, InvalidMailboxName, ValueError):
                return Result("NO", "cannot create", "CANNOT")
            return Result("OK", "CREATE completed")
    if (s.config.has_quirk("imap_utf8_name_refused") and s.utf8
            and not cmd.args.raw.isascii()):
        return Result("BAD", "8-bit mailbox name")  # quirk: a UTF-8 quoted name is refused
    if name.upper() == "INBOX":
        return Result("NO", "INBOX always exists", "ALREADYEXISTS")
    unsupported = sorted(set(cmd.args.use) - CREATE_SPECIAL_USE)
    if unsupported:
        if s.config.has_quirk("imap_useattr_creates"):
            # quirk: the mailbox is created all the same, without the attribute
            s.store.create_mailbox(user_of(s), name)
            return Result("NO", f"{unsupported[0]} not supported", "USEATTR")
        # RFC 6154 §3: "If the server cannot create a mailbox with the designated special use
        # defined, for whatever reason, it MUST NOT create the mailbox, and MUST respond to the
        # CREATE command with a tagged NO response", with USEATTR when the special use is the
        # reason (\All and \Flagged would need virtual mailboxes, which this server has not).
        return Result("NO", f"{unsupported[0]} not supported", "USEATTR")
    # quirk imap_create_use_ignored: the attributes are not kept
    use = () if s.config.has_quirk("imap_create_use_ignored") else cmd.args.use
    try:
        s.store.create_mailbox(user_of(s), name, use)
    except MailboxExists:
        if s.config.has_quirk("imap_create_existing_ok"):  # quirk: CREATE existing is OK
            return Result("OK", "CREATE completed")
        return Result("NO", "mailbox already exists", "ALREADYEXISTS")
    if s.config.has_quirk("imap_create_no_mailboxid"):  # quirk: no MAILBOXID code
        return Result("OK", "CREATE completed")
    # RFC 8474 §4.1: "A server advertising the OBJECTID capability MUST include the MAILBOXID
    # response code in the tagged OK response to all successful CREATE commands."
    info = s.store.mailbox_info(user_of(s), name)
    return Result("OK", "CREATE completed", f"MAILBOXID ({mailbox_id(s, info)})")


async def delete(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, MailboxArg)
    if cmd.args.mailbox == "INBOX":
        if s.config.has_quirk("imap_delete_inbox_ok"):  # quirk: DELETE INBOX "succeeds"
            return Result("OK", "DELETE completed")
        # RFC 9051 §6.3.5: "It is an error to attempt to delete INBOX".
        return Result("NO", "cannot delete INBOX", "CANNOT")
    if s.selected is not None and s.selected.name == cmd.args.mailbox:
        return Result("NO", "mailbox is selected; close it first", "INUSE")
    s.store.delete_mailbox(user_of(s), cmd.args.mailbox)
    return Result("OK", "DELETE completed")


async def subscribe(s: HandlerContext, cmd: Command) -> Result:
    """SUBSCRIBE / UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8): the list is kept in the store."""
    assert isinstance(cmd.args, MailboxArg)
    user = user_of(s)
    adding = cmd.name == "SUBSCRIBE"
    if adding:
        try:
            s.store.mailbox_info(user, cmd.args.mailbox)
        except (NoSuchMailbox, InvalidMailboxName):
            return Result("NO", "no such mailbox", "NONEXISTENT")
    elif cmd.args.mailbox not in s.store.subscriptions(user):
        return Result("NO", "not subscribed", "NONEXISTENT")
    if adding and s.config.has_quirk("imap_subscribe_forgotten"):  # quirk: nothing recorded
        return Result("OK", f"{cmd.name} completed")
    s.store.set_subscribed(user, cmd.args.mailbox, adding)
    return Result("OK", f"{cmd.name} completed")


async def rename(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, Rename)
    user = user_of(s)
    old, new = cmd.args.old, cmd.args.new
    if s.selected is not None and s.selected.name == old:
        return Result("NO", "mailbox is selected; close it first", "INUSE")
    if s.config.has_quirk("imap_rename_loses_messages") and old != INBOX:
        # quirk: a fresh empty mailbox replaces the old one
        s.store.mailbox_info(user, old)
        s.store.create_mailbox(user, new)
        s.store.delete_mailbox(user, old)
    elif s.config.has_quirk("imap_rename_inbox_copies") and old == INBOX:
        # quirk: the messages are copied, INBOX keeps them
        s.store.create_mailbox(user, new)
        for m in s.store.messages(user, INBOX):
            data = s.store.read(user, INBOX, m.uid)
            s.store.append(user, new, data, m.flags, m.internaldate)
    else:
        # RFC 9051 §6.3.6: "Renaming INBOX is permitted ... It moves all messages in INBOX
        # to a new mailbox with the given name, leaving INBOX empty."
        await asyncio.to_thread(s.store.rename_mailbox, user, old, new)
    return Result("OK", "RENAME completed")


def pattern_regex(reference: str, pattern: str, *,
                  percent_is_star: bool = False) -> re.Pattern[str]:
    """RFC 9051 §6.3.9: "*" matches zero or more characters, "%" the same but not the
    hierarchy delimiter; the reference is prefixed to the pattern."""
    full = reference + pattern
    if full[:5].upper() == "INBOX" and (len(full) == 5 or full[5] in (DELIMITER, "*", "%")):
        full = "INBOX" + full[5:]
    out = []
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%" and percent_is_star:  # quirk imap_list_percent_is_star
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(DELIMITER)}]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


async def list_(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, ListArgs)
    args = cmd.args
    kind = cmd.name
    if args.patterns == ("",):
        # RFC 9051 §6.3.9: an empty pattern asks for the hierarchy delimiter and root name.
        s.write(format_list_response(kind, ["\\Noselect"], DELIMITER, ""))
        return Result("OK", f"{kind} completed")
    user = user_of(s)
    names = s.store.list_mailboxes(user)
    existing = set(names)
    subscribed = set(s.store.subscriptions(user))
    percent_is_star = s.config.has_quirk("imap_list_percent_is_star")
    regexes = [pattern_regex(args.reference, p, percent_is_star=percent_is_star)
               for p in args.patterns if p]

    def matches(name: str) -> bool:
        return any(r.fullmatch(name) for r in regexes)

    # quirk imap_list_no_delimiter: NIL where the delimiter belongs
    delimiter = None if s.config.has_quirk("imap_list_no_delimiter") else DELIMITER
    # quirk imap_mutf7_raw_utf8: UTF-8 names to an IMAP4rev1 client
    utf8 = utf8_allowed(s) or s.config.has_quirk("imap_mutf7_raw_utf8")
    if kind == "LSUB":
        # RFC 3501 §6.3.9: LSUB returns the names in the subscription list that match; and
        # "if "foo/bar" ... is subscribed but "foo" is not. A "%" wildcard to LSUB must return
        # foo, not foo/bar, in the LSUB response, and it MUST be flagged with the \Noselect
        # attribute." (quirk imap_lsub_no_noselect_parent: such parents are left out)
        parents = set()
        if not s.config.has_quirk("imap_lsub_no_noselect_parent"):
            parents = {DELIMITER.join(n.split(DELIMITER)[:i]) for n in subscribed if not matches(n)
                       for i in range(1, n.count(DELIMITER) + 1)} - subscribed
        for name in sorted(subscribed | parents):
            if matches(name):
                attrs = [] if name in existing and name not in parents else ["\\Noselect"]
                s.write(format_list_response(kind, attrs, delimiter, name, utf8=utf8))
        return Result("OK", f"{kind} completed")
    # RFC 9051 §6.3.9.1: selection options. SUBSCRIBED lists the subscription list (a name
    # that no longer exists is \NonExistent); SPECIAL-USE only mailboxes with a special use.
    # quirk imap_list_subscribed_ignored: the selection option is not applied
    by_subscription = ("SUBSCRIBED" in args.select
                       and not s.config.has_quirk("imap_list_subscribed_ignored"))
    special = not s.config.has_quirk("imap_special_use_missing")
    # The standard mailboxes' special uses and those CREATE (USE (...)) gave (RFC 6154 §3).
    uses: dict[str, list[str]] = {n: [a] for n, a in SPECIAL_USE.items()} if special else {}
    for n, given in s.store.special_uses(user).items():
        uses[n] = sorted({*uses.get(n, []), *given})
    candidates = sorted(subscribed) if by_subscription else names
    if "SPECIAL-USE" in args.select:
        candidates = [n for n in candidates if n in uses]
    listed: list[str] = []
    for name in candidates:
        if not matches(name):
            continue
        listed.append(name)
        attrs = [_children(name, names)] if name in existing else ["\\NonExistent"]
        if name in subscribed:
            attrs.append("\\Subscribed")
        attrs += uses.get(name, [])
        s.write(format_list_response(kind, attrs, delimiter, name, utf8=utf8,
                                     childinfo=_childinfo(s, args, name, subscribed)))
        _list_status(s, args, name, existing)
    if by_subscription and "RECURSIVEMATCH" in args.select:
        # RFC 9051 §6.3.9.6: a matching mailbox that is not selected itself but has a selected
        # descendant is returned with CHILDINFO ("SUBSCRIBED") — "only ... if at least one
        # matching child is not also being returned".
        unlisted = subscribed - set(listed)
        parents = {DELIMITER.join(n.split(DELIMITER)[:i]) for n in unlisted
                   for i in range(1, n.count(DELIMITER) + 1)}
        for name in sorted(parents - set(listed)):
            if not matches(name):
                continue
            attrs = [_children(name, names)] if name in existing else ["\\NonExistent"]
            s.write(format_list_response(kind, attrs, delimiter, name, utf8=utf8,
                                         childinfo=_childinfo(s, args, name, subscribed)))
            _list_status(s, args, name, existing)
    return Result("OK", f"{kind} completed")


def _children(name: str, names: list[str]) -> str:
    return ("\\HasChildren" if any(n.startswith(name + DELIMITER) for n in names)
            else "\\HasNoChildren")


def _childinfo(s: HandlerContext, args: ListArgs, name: str, subscribed: set[str]) -> tuple[str, ...]:
    """RFC 5258 §3.5 CHILDINFO: with SUBSCRIBED RECURSIVEMATCH, a mailbox with a subscribed
    descendant says so."""
    if ("RECURSIVEMATCH" not in args.select or "SUBSCRIBED" not in args.select
            or s.config.has_quirk("imap_list_no_childinfo")):  # quirk: CHILDINFO never sent
        return ()
    has = any(n.startswith(name + DELIMITER) for n in subscribed)
    return ("SUBSCRIBED",) if has else ()


def _list_status(s: HandlerContext, args: ListArgs, name: str, existing: set[str]) -> None:
    """RFC 9051 §6.3.9 / RFC 5819: RETURN (STATUS (...)) — a STATUS response after the LIST
    response of every selectable mailbox listed."""
    if "STATUS" not in args.returns or name not in existing:
        return
    if s.config.has_quirk("imap_list_status_missing"):  # quirk: no STATUS responses
        return
    found = _status_values(s, user_of(s), name, args.status)
    if found is not None:
        s.write(format_status_response(found[0], found[1], utf8=utf8_allowed(s)))


async def status(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, Status)
    found = _status_values(s, user_of(s), cmd.args.mailbox, cmd.args.items)
    if found is None:
        return Result("NO", "no such mailbox", "NONEXISTENT")
    name, values = found
    s.write(format_status_response(name, values, utf8=utf8_allowed(s)))
    return Result("OK", "STATUS completed")


def _status_values(s: HandlerContext, user: str, name: str,
                   items: tuple[str, ...]) -> tuple[str, list[tuple[str, int | str]]] | None:
    """The mailbox's canonical name and its STATUS data items (RFC 9051 §6.3.11); None if there
    is no such mailbox."""
    try:
        info = s.store.mailbox_info(user, name)
        messages = s.store.messages(user, name)
    except (NoSuchMailbox, InvalidMailboxName):
        return None
    values: dict[str, int | str] = {
        # quirk imap_status_wrong_count: one message too many
        "MESSAGES": info.exists + int(s.config.has_quirk("imap_status_wrong_count")),
        "UIDNEXT": info.uidnext,
        "UIDVALIDITY": info.uidvalidity,
        "UNSEEN": sum(1 for m in messages if "\\Seen" not in m.flags),
        "DELETED": sum(1 for m in messages if "\\Deleted" in m.flags),
        # RFC 8438 §3: "The total size of the mailbox in octets" (quirk imap_status_size_wrong:
        # half of it)
        "SIZE": sum(m.size if not s.config.has_quirk("imap_status_size_wrong") else m.size // 2
                    for m in messages),
        # Read only when asked for: it looks up the mailbox's recent mark (quirk
        # imap_status_recent_zero: always 0).
        "RECENT": (_recent_count(s, user, info.name, messages)
                   if "RECENT" in items and not s.config.has_quirk("imap_status_recent_zero") else 0),
        "HIGHESTMODSEQ": (info.uidnext if s.config.has_quirk("imap_highestmodseq_is_uidnext")
                          else info.highestmodseq),
        # RFC 8474 §4.3: "A server that advertises the OBJECTID capability MUST support the
        # MAILBOXID status attribute."
        "MAILBOXID": f"({mailbox_id(s, info)})",
        # RFC 9208 §4.1.4: "the amount of storage space that can be reclaimed by performing
        # EXPUNGE on the mailbox": the sizes of the \Deleted messages, which is what the store
        # holds (quirk imap_deleted_storage_all: of every message)
        "DELETED-STORAGE": sum(m.size for m in messages
                               if "\\Deleted" in m.flags
                               or s.config.has_quirk("imap_deleted_storage_all")),
    }
    if "HIGHESTMODSEQ" in items:
        s.enable_condstore()  # RFC 7162 §3.1: STATUS (HIGHESTMODSEQ) is an enabling command
    if s.config.has_quirk("imap_status_no_mailboxid"):
        items = tuple(k for k in items if k != "MAILBOXID")  # quirk: MAILBOXID left out
    return info.name, [(k, values[k]) for k in items]


def _recent_count(s: HandlerContext, user: str, name: str, messages: list[MessageInfo]) -> int:
    """STATUS RECENT: the messages no session has been told of yet (they would be \\Recent to
    the next to select), plus those \\Recent in this session if it has *name* selected. STATUS
    reads the mark and never moves it (RFC 3501 §6.3.10: "STATUS MUST NOT cause messages to lose
    the \\Recent flag")."""
    above = s.store.take_recent(user, name, upto=None)
    own = s.selected.recent if s.selected is not None and s.selected.name == name else None
    return sum(1 for m in messages if m.uid > above or (own is not None and m.uid in own))


async def append(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, Append)
    user = user_of(s)
    try:
        if s.config.has_quirk("imap_append_autocreate"):  # quirk: a missing mailbox is made
            try:
                s.store.create_mailbox(user, cmd.args.mailbox)
            except MailboxExists:
                pass
        info = s.store.mailbox_info(user, cmd.args.mailbox)
    except (NoSuchMailbox, InvalidMailboxName):
        # RFC 9051 §6.3.12: "If the destination mailbox does not exist, a server MUST return
        # an error and MUST NOT automatically create the mailbox.  Unless it is certain that
        # the destination mailbox cannot be created, the server MUST send the response code
        # "[TRYCREATE]" as the prefix of the text of the tagged NO response."
        return Result("NO", "no such mailbox", trycreate_code(s))
    if not cmd.args.message:
        return Result("NO", "empty message")
    if cmd.args.utf8 and s.config.has_quirk("imap_utf8_append_refused"):
        return Result("BAD", "UTF8 append data not supported")  # quirk
    if (not utf8_allowed(s) and has_8bit_header(cmd.args.message)
            and not s.config.has_quirk("imap_utf8_append_legacy_stored")):
        # RFC 6855 §4: "If an IMAP server supports "UTF8=ACCEPT" and the IMAP client has not
        # issued the "ENABLE UTF8=ACCEPT" command, the server MUST reject, with a "NO"
        # response, an "APPEND" command that includes any 8-bit character in message header
        # fields." (quirk imap_utf8_append_legacy_stored: stored all the same)
        return Result("NO", "8-bit header fields need ENABLE UTF8=ACCEPT")
    if s.config.has_quirk("imap_uid_reuse"):
        # quirk: UIDNEXT falls back to just above the highest UID left, so an expunged UID is
        # given out again (RFC 9051 §2.3.1.1 forbids)
        left = s.store.messages(user, info.name)
        s.store.force_uidnext(user, info.name, (left[-1].uid if left else 0) + 1)
    flags = () if s.config.has_quirk("imap_append_drops_flags") else cmd.args.flags
    # RFC 3516 §4.4, §6: a part holding NUL octets (appended with literal8) is stored in base64,
    # so that BODYSTRUCTURE and BODY[...] describe it in a CTE the base protocol accepts.
    message = encode_binary_parts(cmd.args.message)
    when = None if s.config.has_quirk("imap_append_ignores_date") else cmd.args.date
    refused = over_quota(s, user, 1, len(message))
    if refused is not None:
        return refused
    try:
        uid = await asyncio.to_thread(s.store.append, user, info.name, message, flags, when)
    except NoSuchMailbox:
        return Result("NO", "no such mailbox", trycreate_code(s))
    except ValueError as exc:
        return Result("BAD", str(exc))
    if s.config.has_quirk("imap_append_no_appenduid"):  # quirk: no APPENDUID
        return Result("OK", "APPEND completed")
    # RFC 4315 §3: APPENDUID uidvalidity uid
    return Result("OK", "APPEND completed", f"APPENDUID {info.uidvalidity} {uid}")


def trycreate_code(s: HandlerContext) -> str | None:
    if s.config.has_quirk("imap_trycreate_missing"):  # quirk: NO without [TRYCREATE]
        return None
    return "TRYCREATE"


async def enable(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, Enable)
    enabled = []
    if "IMAP4REV2" in cmd.args.capabilities:
        s.rev2 = True
        enabled.append("IMAP4rev2")
    if "CONDSTORE" in cmd.args.capabilities:
        s.enable_condstore()  # RFC 7162 §3.1: ENABLE CONDSTORE is an enabling command
        enabled.append("CONDSTORE")
    if "QRESYNC" in cmd.args.capabilities:
        # RFC 7162 §3.2.3: ENABLE QRESYNC is a CONDSTORE enabling command too, and from now on
        # the server "MUST start sending VANISHED responses ... instead of EXPUNGE responses".
        s.enable_condstore()
        s.qresync = True
        enabled.append("QRESYNC")
    if "UTF8=ACCEPT" in cmd.args.capabilities:
        # RFC 6855 §3: the client "accepts UTF-8 in quoted-strings and supports the
        # "UTF8=ACCEPT" extension" from now on.
        s.utf8 = True
        if not s.config.has_quirk("imap_utf8_not_enabled"):  # quirk: left out of ENABLED
            enabled.append("UTF8=ACCEPT")
    if not s.config.has_quirk("imap_enable_no_enabled"):  # quirk: no ENABLED response
        # RFC 5161 §3.1: "If the ENABLE command is successful, the server MUST send an
        # untagged ENABLED response".
        s.write(b"* ENABLED" + b"".join(b" " + c.encode("ascii") for c in enabled) + b"\r\n")
    return Result("OK", "ENABLE completed")


async def namespace(s: HandlerContext, cmd: Command) -> Result:
    # RFC 2342 §5: personal namespace "" with delimiter "/", no others.
    delimiter = b"." if s.config.has_quirk("imap_namespace_wrong_delimiter") else b"/"
    s.write(b'* NAMESPACE (("" "' + delimiter + b'")) NIL NIL\r\n')
    return Result("OK", "NAMESPACE completed")


async def idle(s: HandlerContext, cmd: Command) -> Result:
    """RFC 2177: report mailbox changes as they happen until the client sends DONE."""
    s.write(format_continuation("idling"))
    await s.flush()
    poll = max(s.config.idle_poll_interval, 0.01)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + s.autologout
    while True:
        if s.config.has_quirk("imap_idle_no_notify"):  # quirk: IDLE reports nothing
            pass
        elif s.config.has_quirk("imap_idle_slow") and loop.time() < s.idle_next_look:
            pass  # quirk: look for changes only every 3 seconds
        elif s.state is State.SELECTED:
            s.idle_next_look = loop.time() + 3.0
            s.sync_selected(allow_expunge=True)
            await s.flush()
        if s.notify is not None:
            # RFC 5465 §4: "while processing any IDLE command, the server MUST send exactly the
            # same events as instructed by the client using the NOTIFY command."
            s.notify_push()
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
    "RENAME": rename,
    "LIST": list_,
    "LSUB": list_,
    "STATUS": status,
    "APPEND": append,
    "ENABLE": enable,
    "NAMESPACE": namespace,
    "IDLE": idle,
}
