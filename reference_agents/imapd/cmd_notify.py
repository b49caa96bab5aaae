"""NOTIFY (RFC 5465): the command, and the notifications a session sends between commands for the
mailboxes and events it asked for."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.protocol.imap.commands import Command, FetchItem, Notify, NotifyGroup
from harness.protocol.imap.formatting import (
    FetchValue,
    Raw,
    format_fetch_response,
    format_flags,
    format_list_response,
    format_status_response,
)
from harness.protocol.imap.mime import UnknownTransferEncoding
from reference_agents.imapd.cmd_selected import _item_value, _needs_content
from reference_agents.imapd.context import HandlerContext
from reference_agents.imapd.handler_helpers import user_of
from reference_agents.imapd.state import Handler, Result
from reference_agents.imapd.utf8 import utf8_allowed
from reference_agents.mailstore import DELIMITER, NoSuchMailbox, NoSuchMessage

MESSAGE_EVENTS = frozenset({"MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange"})
#: The events this server reports (RFC 5465 §3.1: BADEVENT "MUST list names of all events
#: supported by the server").
SUPPORTED = ("MessageNew", "MessageExpunge", "FlagChange", "MailboxName", "SubscriptionChange")


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the session last knew of one watched mailbox."""

    uidvalidity: int
    uidnext: int
    messages: int
    highestmodseq: int
    unseen: int


@dataclass(slots=True)
class NotifyState:
    """A session's NOTIFY SET: its groups, and the last state of what they watch."""

    groups: tuple[NotifyGroup, ...]
    selected: NotifyGroup | None
    seen: dict[str, _Seen] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    subscribed: set[str] = field(default_factory=set)

    def events_for(self, name: str, subscribed: set[str]) -> set[str]:
        """The events asked for *name* by the groups other than SELECTED (RFC 5465 §6)."""
        events: set[str] = set()
        for group in self.groups:
            f = group.filter
            # RFC 5465 §6.3: "If the IMAP server cannot easily compute this set, it MUST treat
            # "inboxes" as equivalent to "personal"."
            if (f in ("PERSONAL", "INBOXES") or (f == "SUBSCRIBED" and name in subscribed)
                    or (f == "MAILBOXES" and name in group.mailboxes)
                    or (f == "SUBTREE" and any(name == m or name.startswith(m + DELIMITER)
                                               for m in group.mailboxes))):
                events |= set(group.events)
        return events


def _check(groups: tuple[NotifyGroup, ...], s: HandlerContext) -> Result | None:
    """The refusals of RFC 5465 §5, §6.1 and §3.1, or None."""
    unpaired_ok = s.config.has_quirk("imap_notify_unpaired_ok")  # quirk: MessageNew alone is OK
    if sum(g.filter in ("SELECTED", "SELECTED-DELAYED") for g in groups) > 1:
        # §6.1: "Only one of the mailbox specifiers affecting the currently selected mailbox can
        # be specified in any NOTIFY command."
        return Result("BAD", "one SELECTED or SELECTED-DELAYED at most")
    for group in groups:
        events = set(group.events)
        if ("MessageNew" in events) != ("MessageExpunge" in events) and not unpaired_ok:
            # §5: "If one of MessageNew or MessageExpunge is specified, then both events MUST
            # be specified.  Otherwise, the server MUST respond with the tagged BAD response."
            return Result("BAD", "MessageNew and MessageExpunge go together")
        if (events & {"FlagChange", "AnnotationChange"}
                and not {"MessageNew", "MessageExpunge"} <= events):
            # §5: "If the FlagChange and/or AnnotationChange events are specified, MessageNew
            # and MessageExpunge MUST also be specified by the client.  Otherwise, the server
            # MUST respond with the tagged BAD response."
            return Result("BAD", "FlagChange needs MessageNew and MessageExpunge")
        selected = group.filter in ("SELECTED", "SELECTED-DELAYED")
        if selected and events - MESSAGE_EVENTS and events <= set(SUPPORTED):
            # §6.1: "It is an error to specify other types of events with either the SELECTED
            # or the SELECTED-DELAYED selector."
            return Result("BAD", "only message events for SELECTED")
        if group.fetch and not selected:
            return Result("BAD", "fetch attributes only for SELECTED")  # §8 (the ABNF's note)
    unknown = {e for g in groups for e in g.events} - set(SUPPORTED)
    if unknown and s.config.has_quirk("imap_notify_badevent_bad"):
        return Result("BAD", "unknown event")  # quirk: BAD, not NO
    if unknown:
        # §3.1: "If the client requests information for events of an unsupported type, the
        # server MUST refuse the command with a tagged NO response (not a BAD).  This response
        # SHOULD contain the BADEVENT response code, which MUST list names of all events
        # supported by the server."
        return Result("NO", "unsupported event", "BADEVENT (" + " ".join(SUPPORTED) + ")")
    return None


def _snapshot(s: HandlerContext, name: str) -> _Seen | None:
    try:
        info = s.store.mailbox_info(user_of(s), name)
        messages = s.store.messages(user_of(s), name)
    except (NoSuchMailbox, KeyError):
        return None
    return _Seen(info.uidvalidity, info.uidnext, info.exists, info.highestmodseq,
                 sum(1 for m in messages if "\\Seen" not in m.flags))


def _watched(s: HandlerContext, state: NotifyState) -> dict[str, set[str]]:
    """Every mailbox with events asked for, but the selected one's message events (RFC 5465
    §3.1: those "will be those specified by the SELECTED/SELECTED-DELAYED mailbox specifier")."""
    selected = s.selected.name if s.selected is not None else None
    out: dict[str, set[str]] = {}
    for name in s.store.list_mailboxes(user_of(s)):
        events = state.events_for(name, state.subscribed)
        if name == selected:
            events -= MESSAGE_EVENTS
        if events:
            out[name] = events
    return out


def flag_changes_with_uid(s: HandlerContext) -> bool:
    """NOTIFY asked for FlagChange in the selected mailbox (RFC 5465 §5.1: the FETCH "MUST
    include UID and FLAGS")."""
    return (s.notify is not None and s.notify.selected is not None
            and "FlagChange" in s.notify.selected.events)


def absorb(s: HandlerContext) -> None:
    """Take the store's present state as known, without telling the client (after its own
    commands: RFC 5465 §5, "The server SHOULD omit notifying the client if the event is caused
    by this client")."""
    state = s.notify
    if state is None or s.user is None:
        return
    state.names = set(s.store.list_mailboxes(user_of(s)))
    state.subscribed = set(s.store.subscriptions(user_of(s)))
    state.seen = {name: seen for name in _watched(s, state)
                  if (seen := _snapshot(s, name)) is not None}


def push(s: HandlerContext) -> None:
    """Send what changed since the session last looked (between commands)."""
    state = s.notify
    if state is None or s.user is None:
        return
    if state.selected is not None and state.selected.events and s.selected is not None:
        # RFC 5465 §5.2, §5.3: EXISTS (and FETCH) for new messages and EXPUNGE for expunged
        # ones, at once for SELECTED; SELECTED-DELAYED holds expunges back (§6.1.2).
        expunge = state.selected.filter == "SELECTED" and not s.config.has_quirk(
            "imap_notify_selected_silent")
        if expunge:
            sel = s.selected
            known = sel.uids[-1] if sel.uids else 0
            s.sync_selected(allow_expunge=True)
            if state.selected.fetch and s.selected is sel:
                _fetch_new(s, [u for u in sel.uids if u > known], state.selected.fetch)
    names = set(s.store.list_mailboxes(user_of(s)))
    subscribed = set(s.store.subscriptions(user_of(s)))
    utf8 = utf8_allowed(s)
    for name in sorted(names ^ state.names):
        if "MailboxName" in state.events_for(name, subscribed | state.subscribed):
            # RFC 5465 §5.4: "an unsolicited LIST response for each affected mailbox name.  If,
            # after the event, the mailbox name does not refer to a mailbox accessible to the
            # client, the \\Nonexistent flag MUST be included."
            gone = name not in names and not s.config.has_quirk("imap_notify_deleted_listed")
            s.write(format_list_response("LIST", ["\\NonExistent"] if gone else [], DELIMITER,
                                         name, utf8=utf8))
    changed = set() if s.config.has_quirk("imap_notify_subscription_silent") else (
        subscribed ^ state.subscribed)  # quirk: subscription changes are never told
    for name in sorted(changed):
        if "SubscriptionChange" in state.events_for(name, subscribed | state.subscribed):
            # RFC 5465 §5.5: "If and only if the mailbox is subscribed after the event, the
            # \\Subscribed attribute ... is included."
            attrs = ["\\Subscribed"] if name in subscribed else []
            if name not in names:
                attrs.append("\\NonExistent")
            s.write(format_list_response("LIST", attrs, DELIMITER, name, utf8=utf8))
    state.names, state.subscribed = names, subscribed
    seen: dict[str, _Seen] = {}
    for name, events in _watched(s, state).items():
        now = _snapshot(s, name)
        if now is None:
            continue
        seen[name] = now
        before = state.seen.get(name)
        if before is None or events.isdisjoint(MESSAGE_EVENTS) or before == now:
            continue
        items = _changed_items(s, before, now, events)
        if items:
            s.write(format_status_response(name, [(k, getattr(now, _FIELD[k])) for k in items],
                                           utf8=utf8))
    state.seen = seen


def _fetch_new(s: HandlerContext, uids: list[int], items: tuple[FetchItem, ...]) -> None:
    """RFC 5465 §5.2: after the EXISTS, "an unsolicited FETCH response containing the
    information requested by the client" for each new message (the client's own APPENDs and
    COPYs were absorbed after its command, so they get none: "A FETCH response SHOULD NOT be
    generated for a new message created by the client on this particular connection")."""
    sel = s.selected
    if sel is None or not uids:
        return
    infos = {m.uid: m for m in s.store.messages(user_of(s), sel.name)}
    for uid in uids:
        info, seq = infos.get(uid), sel.seq_of(uid)
        if info is None or seq is None:
            continue
        try:
            data = s.store.read(user_of(s), sel.name, uid) if _needs_content(items) else b""
        except NoSuchMessage:
            continue
        values: list[tuple[str, FetchValue]] = []
        for item in items:
            if item.name == "UID" and item.section is None:
                values.append(("UID", uid))
            elif item.name == "FLAGS" and item.section is None:
                values.append(("FLAGS", Raw(format_flags(sel.shown_flags(uid, info.flags)))))
            elif item.name == "MODSEQ":
                values.append(("MODSEQ", sel.modseq_value(info)))
            else:
                try:
                    values.append((item.response_name(), _item_value(item, data, info, s)))
                except UnknownTransferEncoding:
                    continue
        s.write(format_fetch_response(seq, values))


_FIELD = {"MESSAGES": "messages", "UIDNEXT": "uidnext", "UIDVALIDITY": "uidvalidity",
          "HIGHESTMODSEQ": "highestmodseq", "UNSEEN": "unseen"}


def _changed_items(s: HandlerContext, before: _Seen, now: _Seen, events: set[str]) -> list[str]:
    """The STATUS items that tell the change of a mailbox other than the selected one."""
    if s.config.has_quirk("imap_notify_other_silent"):
        return []  # quirk: changes in other mailboxes are never told
    items: list[str] = []
    if before.uidvalidity != now.uidvalidity:
        items.append("UIDVALIDITY")  # §5.1: "MUST notify the client about mailbox UIDVALIDITY changes"
    if (before.messages, before.uidnext) != (now.messages, now.uidnext):
        # §5.2, §5.3: "an unsolicited STATUS (UIDNEXT MESSAGES) response for the relevant
        # mailbox", with HIGHESTMODSEQ once CONDSTORE is enabled.
        items += ["UIDNEXT", "MESSAGES"] + (["HIGHESTMODSEQ"] if s.condstore else [])
    elif "FlagChange" in events and before.highestmodseq != now.highestmodseq:
        # §5.1: with CONDSTORE "at least HIGHESTMODSEQ and UIDVALIDITY"; without, the server
        # "MAY also include the UNSEEN data item", else "does not notify the client".
        if s.condstore:
            items += ["HIGHESTMODSEQ", "UIDVALIDITY"]
        elif before.unseen != now.unseen:
            items += ["UNSEEN"]
    return list(dict.fromkeys(items))


async def notify(s: HandlerContext, cmd: Command) -> Result:
    assert isinstance(cmd.args, Notify)
    if cmd.args.groups is None:
        if s.config.has_quirk("imap_notify_none_ignored"):
            return Result("OK", "NOTIFY NONE completed")  # quirk: the old events stay on
        s.notify = None  # RFC 5465 §3.1: "NOTIFY NONE ... not interested in any kind of event"
        return Result("OK", "NOTIFY NONE completed")
    refusal = _check(cmd.args.groups, s)
    if refusal is not None:
        return refusal
    selected = next((g for g in cmd.args.groups
                     if g.filter in ("SELECTED", "SELECTED-DELAYED")), None)
    state = NotifyState(cmd.args.groups, selected)
    s.notify = state
    absorb(s)
    # RFC 5465 §3.1: "A successful NOTIFY SET command MUST cause the server to immediately return
    # any accumulated changes to the currently selected mailbox ... an implicit NOOP command"
    # (the dispatcher's sync after the command).
    if cmd.args.status and not s.config.has_quirk("imap_notify_no_status"):
        # §3.1: "the server MUST send a STATUS response for that mailbox before NOTIFY's tagged
        # OK.  If MessageNew is enabled, the STATUS response MUST contain MESSAGES, UIDNEXT, and
        # UIDVALIDITY ... If either AnnotationChange or FlagChange are included and the server
        # also supports the CONDSTORE ... the STATUS response MUST contain UIDVALIDITY and
        # HIGHESTMODSEQ."
        for name, events in _watched(s, state).items():
            now = state.seen.get(name)
            if now is None or events.isdisjoint(MESSAGE_EVENTS):
                continue
            items = ["MESSAGES", "UIDNEXT", "UIDVALIDITY"]
            if "FlagChange" in events:
                items.append("HIGHESTMODSEQ")
            s.write(format_status_response(name, [(k, getattr(now, _FIELD[k])) for k in items],
                                           utf8=utf8_allowed(s)))
    return Result("OK", "NOTIFY completed")


COMMANDS: dict[str, Handler] = {"NOTIFY": notify}
