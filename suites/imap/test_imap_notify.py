"""IMAP in depth — NOTIFY (RFC 5465): STATUS at NOTIFY SET STATUS, notifications between commands
for other mailboxes, the selected mailbox, mailbox names and subscriptions, NOTIFY NONE, and the
refusals of unpaired and unsupported events.

Skipped where the server does not advertise NOTIFY. One session (the watcher) sets NOTIFY and
waits without sending a command; a second session of the same account makes the changes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from harness.clients.imap import IMAPClient, IMAPTimeout
from harness.protocol.imap.responses import Exists, Fetch, List, Response, Status
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, cleanup, mbox, message, scratch, select, session

pytestmark = pytest.mark.step(9)

#: How long the watcher waits for a notification (a server may poll its store).
WAIT = 10.0


@contextlib.asynccontextmanager
async def _pair(target: Target, evidence: Evidence) -> AsyncIterator[tuple[IMAPClient, IMAPClient, str]]:
    """The watcher, the other session, and a scratch mailbox (skipped without NOTIFY)."""
    async with session(target, evidence) as watcher, scratch(watcher) as name, \
            session(target, evidence) as other:
        if not watcher.capabilities:
            await watcher.capability()
        need("NOTIFY" in watcher.capabilities, "the server does not offer NOTIFY (RFC 5465)")
        yield watcher, other, name


async def _notify(client: IMAPClient, args: str) -> None:
    result = await client.command(f"NOTIFY {args}")
    precondition(result.ok, f"NOTIFY {args} answered {result.status}")


async def _wait_for(client: IMAPClient, wanted: Callable[[Response], bool],
                    seconds: float = WAIT) -> list[Response]:
    """Unsolicited responses read without a command, until one is *wanted* (it is last) or
    *seconds* pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    seen: list[Response] = []
    while (left := deadline - loop.time()) > 0:
        try:
            response = await client.read_response(left)
        except IMAPTimeout:
            break
        seen.append(response)
        if wanted(response):
            break
    return seen


def _status_of(name: str) -> Callable[[Response], bool]:
    return lambda r: isinstance(r, Status) and r.mailbox == name


def _list_of(name: str) -> Callable[[Response], bool]:
    return lambda r: isinstance(r, List) and r.mailbox == name


def _shown(seen: list[Response]) -> str:
    return ", ".join(type(r).__name__ for r in seen) or "nothing"


@pytest.mark.requirement("IMAP-NOTIFY-STATUS")
def test_imap_notify_set_status(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _pair(target, evidence) as (watcher, _, name):
            await append(watcher, name, message(token()))
            result = await watcher.command(f"NOTIFY SET STATUS (MAILBOXES {mbox(name)} "
                                           "(MessageNew MessageExpunge))")
            statuses = [r for r in result.untagged if isinstance(r, Status) and r.mailbox == name]
            items = statuses[0].items if statuses else {}
            # RFC 5465 §3.1: with the STATUS indicator "the server MUST send a STATUS response
            # for that mailbox before NOTIFY's tagged OK.  If MessageNew is enabled, the STATUS
            # response MUST contain MESSAGES, UIDNEXT, and UIDVALIDITY."
            check("IMAP-NOTIFY-STATUS", result.ok and len(statuses) == 1
                  and items.get("MESSAGES") == 1 and isinstance(items.get("UIDNEXT"), int)
                  and isinstance(items.get("UIDVALIDITY"), int),
                  f"NOTIFY SET STATUS answered {result.status} with STATUS {items}")

    run(scenario())


@pytest.mark.requirement("IMAP-NOTIFY-OTHER-MAILBOX")
def test_imap_notify_other_mailbox_status(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _pair(target, evidence) as (watcher, other, name):
            await _notify(watcher, f"SET (MAILBOXES {mbox(name)} (MessageNew MessageExpunge))")
            await append(other, name, message(token()))
            seen = await _wait_for(watcher, _status_of(name))
            items = seen[-1].items if seen and isinstance(seen[-1], Status) else {}
            # RFC 5465 §5.2: "If the new/appended message is in another mailbox, the server
            # sends an unsolicited STATUS (UIDNEXT MESSAGES) response for the relevant mailbox";
            # §3.1: the client "listens for event notifications all the time (even when no
            # command is in progress)".
            check("IMAP-NOTIFY-OTHER-MAILBOX",
                  items.get("MESSAGES") == 1 and isinstance(items.get("UIDNEXT"), int),
                  f"after an APPEND elsewhere the watcher got {_shown(seen)}, STATUS {items}")
            await select(other, name)
            stored = await other.command("STORE 1 +FLAGS.SILENT (\\Deleted)")
            precondition(stored.ok, f"setup STORE answered {stored.status}")
            expunged = await other.expunge()
            precondition(expunged.ok, f"setup EXPUNGE answered {expunged.status}")
            seen = await _wait_for(watcher, _status_of(name))
            items = seen[-1].items if seen and isinstance(seen[-1], Status) else {}
            # RFC 5465 §5.3: "If the expunged message or messages are in another mailbox, the
            # server sends an unsolicited STATUS (UIDNEXT MESSAGES) response".
            check("IMAP-NOTIFY-OTHER-MAILBOX", items.get("MESSAGES") == 0,
                  f"after an EXPUNGE elsewhere the watcher got {_shown(seen)}, STATUS {items}")

    run(scenario())


@pytest.mark.requirement("IMAP-NOTIFY-SELECTED")
def test_imap_notify_selected_mailbox_exists(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _pair(target, evidence) as (watcher, other, name):
            await select(watcher, name)
            await _notify(watcher, "SET (SELECTED (MessageNew (UID) MessageExpunge))")
            await append(other, name, message(token()))
            seen = await _wait_for(watcher, lambda r: isinstance(r, Exists))
            counts = [r.n for r in seen if isinstance(r, Exists)]
            # RFC 5465 §5.2: "If the new/appended message is in the selected mailbox, the
            # server notifies the client by sending an unsolicited EXISTS response"; §6.1.1:
            # SELECTED asks for "immediate notifications".
            check("IMAP-NOTIFY-SELECTED", counts == [1],
                  f"after an APPEND to the selected mailbox the watcher got {_shown(seen)}")
            seen = await _wait_for(watcher, lambda r: isinstance(r, Fetch))
            uids = [r.items.get("UID") for r in seen if isinstance(r, Fetch)]
            # §5.2: the EXISTS is "followed by an unsolicited FETCH response containing the
            # information requested by the client".
            check("IMAP-NOTIFY-SELECTED", len(uids) == 1 and isinstance(uids[0], int),
                  f"after the EXISTS the watcher got {_shown(seen)}, UIDs {uids}")

    run(scenario())


@pytest.mark.requirement("IMAP-NOTIFY-MAILBOXNAME")
def test_imap_notify_mailbox_created_and_deleted(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _pair(target, evidence) as (watcher, other, _):
            new = token()
            await _notify(watcher, "SET (PERSONAL (MailboxName))")
            try:
                created = await other.command(f"CREATE {mbox(new)}")
                precondition(created.ok, f"setup CREATE answered {created.status}")
                seen = await _wait_for(watcher, _list_of(new))
                # RFC 5465 §5.4: "The server notifies the client by sending an unsolicited
                # LIST response for each affected mailbox name."
                check("IMAP-NOTIFY-MAILBOXNAME", bool(seen) and _list_of(new)(seen[-1]),
                      f"after a CREATE the watcher got {_shown(seen)}")
                deleted = await other.command(f"DELETE {mbox(new)}")
                precondition(deleted.ok, f"setup DELETE answered {deleted.status}")
                seen = await _wait_for(watcher, _list_of(new))
                attrs = ({a.lower() for a in seen[-1].attributes}
                         if seen and isinstance(seen[-1], List) else set())
                # §5.4: "If, after the event, the mailbox name does not refer to a mailbox
                # accessible to the client, the \\Nonexistent flag MUST be included."
                check("IMAP-NOTIFY-MAILBOXNAME", "\\nonexistent" in attrs,
                      f"after a DELETE the watcher got {_shown(seen)}, attributes {sorted(attrs)}")
            finally:
                await cleanup(other, new)

    run(scenario())


@pytest.mark.requirement("IMAP-NOTIFY-SUBSCRIPTION")
def test_imap_notify_subscription_change(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _pair(target, evidence) as (watcher, other, name):
            await _notify(watcher, "SET (PERSONAL (SubscriptionChange))")
            subscribed = await other.command(f"SUBSCRIBE {mbox(name)}")
            precondition(subscribed.ok, f"setup SUBSCRIBE answered {subscribed.status}")
            seen = await _wait_for(watcher, _list_of(name))
            attrs = ({a.lower() for a in seen[-1].attributes}
                     if seen and isinstance(seen[-1], List) else set())
            # RFC 5465 §5.5: "The server notifies the client by sending an unsolicited LIST
            # response for each affected mailbox name.  If and only if the mailbox is subscribed
            # after the event, the \\Subscribed attribute ... is included."
            check("IMAP-NOTIFY-SUBSCRIPTION", "\\subscribed" in attrs,
                  f"after a SUBSCRIBE the watcher got {_shown(seen)}, attributes {sorted(attrs)}")
            await other.command(f"UNSUBSCRIBE {mbox(name)}")

    run(scenario())


@pytest.mark.requirement("IMAP-NOTIFY-NONE")
def test_imap_notify_none_stops_notifications(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _pair(target, evidence) as (watcher, other, name):
            await _notify(watcher, f"SET (MAILBOXES {mbox(name)} (MessageNew MessageExpunge))")
            none = await watcher.command("NOTIFY NONE")
            check("IMAP-NOTIFY-NONE", none.ok, f"NOTIFY NONE answered {none.status}")
            await append(other, name, message(token()))
            seen = await _wait_for(watcher, _status_of(name), seconds=3.0)
            noop = await watcher.noop()
            told = [r for r in [*seen, *noop.untagged] if _status_of(name)(r)]
            # RFC 5465 §3.1: "NOTIFY NONE specifies that the client is not interested in any
            # kind of event happening on the server"; "The effect of a successful NOTIFY
            # command lasts until the next NOTIFY command".
            check("IMAP-NOTIFY-NONE", not told,
                  f"after NOTIFY NONE the watcher was still told of the mailbox: {told}")

    run(scenario())


@pytest.mark.requirement("IMAP-NOTIFY-PAIRED")
def test_imap_notify_message_new_alone_is_bad(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _pair(target, evidence) as (watcher, _, name):
            result = await watcher.command(f"NOTIFY SET (MAILBOXES {mbox(name)} (MessageNew))")
            # RFC 5465 §5: "If one of MessageNew or MessageExpunge is specified, then both
            # events MUST be specified.  Otherwise, the server MUST respond with the tagged BAD
            # response."
            check("IMAP-NOTIFY-PAIRED", result.status == "BAD",
                  f"NOTIFY SET with MessageNew alone answered {result.status}")

    run(scenario())


@pytest.mark.requirement("IMAP-NOTIFY-BADEVENT")
def test_imap_notify_unsupported_event_is_no(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with _pair(target, evidence) as (watcher, _, _name):
            result = await watcher.command("NOTIFY SET (PERSONAL (X-MAILHARNESS-EVENT))")
            # RFC 5465 §3.1: "If the client requests information for events of an unsupported
            # type, the server MUST refuse the command with a tagged NO response (not a BAD)."
            check("IMAP-NOTIFY-BADEVENT", result.status == "NO",
                  f"NOTIFY SET with an unknown event answered {result.status}")

    run(scenario())
