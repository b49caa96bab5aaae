"""IMAP in depth — removing messages: UID EXPUNGE (RFC 4315), CLOSE and UNSELECT."""

from __future__ import annotations

import pytest

from harness.clients.imap import IMAPClient
from harness.protocol.imap.responses import Expunge
from harness.suite import Evidence, check, need, precondition, run, token
from harness.targets import Target
from suites.imap.imap_helpers import append, message, scratch, select, session, uids

pytestmark = pytest.mark.step(9)


async def _three_deleted(client: IMAPClient, name: str) -> list[int]:
    """Three messages APPENDed with \\Deleted to *name*, selected; their UIDs."""
    for _ in range(3):
        await append(client, name, message(token()), ["\\Deleted"])
    await select(client, name)
    found = await uids(client)
    precondition(len(found) == 3, f"UID SEARCH ALL found {found} after three APPENDs")
    return found


@pytest.mark.requirement("IMAP-UID-EXPUNGE")
def test_imap_uid_expunge_only_named(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            need("UIDPLUS" in client.capabilities, "server does not advertise UIDPLUS")
            before = await _three_deleted(client, name)
            result = await client.command(f"UID EXPUNGE {before[1]}")
            check("IMAP-UID-EXPUNGE", result.ok, f"UID EXPUNGE answered {result.status}")
            expunged = [r.seq for r in result.untagged if isinstance(r, Expunge)]
            after = await uids(client)
            # RFC 4315 §2.1: "The UID EXPUNGE command permanently removes all messages that both
            # have the \Deleted flag set and have a UID that is included in the specified
            # sequence set from the currently selected mailbox."
            check("IMAP-UID-EXPUNGE", after == [before[0], before[2]],
                  f"after UID EXPUNGE {before[1]} of UIDs {before}: {after}")
            check("IMAP-UID-EXPUNGE", expunged == [2], f"untagged EXPUNGE {expunged}, not [2]")

    run(scenario())


@pytest.mark.requirement("IMAP-CLOSE")
def test_imap_close_expunges_silently(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            await _three_deleted(client, name)
            result = await client.close_mailbox()
            # RFC 9051 §6.4.1: CLOSE "permanently removes all messages that have the \Deleted
            # flag set from the currently selected mailbox ... No untagged EXPUNGE responses are
            # sent."
            check("IMAP-CLOSE", result.ok, f"CLOSE answered {result.status}")
            expunges = sum(1 for r in result.untagged if isinstance(r, Expunge))
            check("IMAP-CLOSE", expunges == 0, f"CLOSE sent {expunges} untagged EXPUNGE responses")
            left = (await select(client, name, readonly=True)).exists
            check("IMAP-CLOSE", left == 0, f"{left} \\Deleted messages left after CLOSE")

    run(scenario())


@pytest.mark.requirement("IMAP-UNSELECT")
def test_imap_unselect_keeps_deleted(target: Target, evidence: Evidence) -> None:
    async def scenario() -> None:
        async with session(target, evidence) as client, scratch(client) as name:
            need("UNSELECT" in client.capabilities, "server does not advertise UNSELECT")
            await _three_deleted(client, name)
            result = await client.command("UNSELECT")
            # RFC 9051 §6.4.2: UNSELECT "performs the same actions as CLOSE, except that no
            # messages are permanently removed from the currently selected mailbox."
            check("IMAP-UNSELECT", result.ok, f"UNSELECT answered {result.status}")
            left = (await select(client, name, readonly=True)).exists
            check("IMAP-UNSELECT", left == 3, f"{3 - left} \\Deleted messages removed by UNSELECT")

    run(scenario())


@pytest.mark.requirement("IMAP-CLOSE-READONLY")
def test_imap_close_after_examine_removes_nothing(target: Target, evidence: Evidence) -> None:
    async def scenario() -> tuple[str, int, int]:
        async with session(target, evidence) as client, scratch(client) as name:
            for _ in range(3):
                await append(client, name, message(token()), ["\\Deleted"])
            examined = await select(client, name, readonly=True)
            result = await client.close_mailbox()
            left = (await select(client, name, readonly=True)).exists
            return result.status, left, examined.exists

    status, left, before = run(scenario())
    # RFC 9051 §6.4.1: "No messages are removed, and no error is given, if the mailbox is
    # selected by an EXAMINE command or is otherwise selected as read-only."
    check("IMAP-CLOSE-READONLY", status == "OK", f"CLOSE after EXAMINE answered {status}")
    check("IMAP-CLOSE-READONLY", left == before == 3,
          f"CLOSE after EXAMINE of 3 \\Deleted messages left {left}")
